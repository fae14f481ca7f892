/* mecbed: a goodput estimator for adaptive runs. An exponentially weighted
 * moving average of the rate recent transfers achieved on a link direction,
 * bytes over (transfer time - one-way delay): the part of a transfer's time
 * that depends on the rate. Small transfers say little about the rate
 * (their time is mostly delay and per-message overhead) and are skipped. */
#ifndef MECBED_GOODPUT_H
#define MECBED_GOODPUT_H

#include <stdint.h>

typedef struct mb_goodput {
    double alpha;     /* weight of a new sample above the estimate (0..1] */
    double alpha_down;/* weight of a sample below it: drops are acted on fast */
    double min_bytes; /* samples smaller than this are ignored */
    double est_bps;   /* current estimate, 0 before the first sample */
    int n;            /* samples used */
} mb_goodput;

/* alpha: weight of samples above the estimate, alpha_down: below it (a
 * link that got worse must be noticed before the next frame; one that got
 * better can wait). */
void mb_goodput_init(mb_goodput *g, double alpha, double alpha_down, double min_bytes);
/* A transfer of `bytes` took `seconds` end to end on a path whose one-way
 * delay is base_delay_s. Returns 1 when it updated the estimate. */
int mb_goodput_add(mb_goodput *g, int64_t bytes, double seconds, double base_delay_s);
double mb_goodput_bps(const mb_goodput *g);
/* |estimate - reference| / reference exceeds rel: time to re-plan. */
int mb_goodput_changed(const mb_goodput *g, double reference_bps, double rel);

#endif
