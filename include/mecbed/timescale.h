/* mecbed: the run's time dilation factor (TDF), one mechanism for every
 * clock of a run. With TDF k >= 1 the whole emulated world runs k times
 * slower than wall time (time-warped network emulation, Gupta et al.,
 * NSDI 2006; DieCast, NSDI 2008): a site k times faster than this machine is
 * then emulated exactly, because its op, which takes this machine k times
 * its emulated time, fits the dilated clock. Every clock of the run scales
 * with k: link rates (divided), delays, jitter, AQM targets and traces
 * (stretched), frame release, timeouts, the radio's state machine.
 * Reported figures are emulated time. docs/runtime.md, "Emulating node
 * speed and time dilation", explains the model and its limits. */
#ifndef MECBED_TIMESCALE_H
#define MECBED_TIMESCALE_H

#include <stddef.h>

#include "mecbed/linkspec.h"

/* A run longer than this factor is worth a warning (mb_tdf_warning). */
#define MB_TDF_WARN 4.0

/* Emulated seconds -> wall seconds (x k), and back (/ k). k < 1 counts as 1. */
double mb_tdf_to_wall(double k, double emulated_s);
double mb_tdf_to_emulated(double k, double wall_s);

/* The smallest TDF that emulates every site: site_factor[i] is site i's op
 * time over this machine's op time now (> 1: slower, emulated by dilating
 * its compute; < 1: faster). k = max(1, 1 / min factor), rounded up to a
 * hundredth so the fastest site's compute needs no shortening. Factors that
 * are not positive and finite (sites not emulated: real devices) are
 * ignored. */
double mb_tdf_auto(const double *site_factor, int n);

/* The dilation a site gets under TDF k: factor x k (>= 1 when k is at
 * least mb_tdf_auto's). */
double mb_tdf_site_slowdown(double k, double site_factor);

/* When k makes a run long (k > MB_TDF_WARN): write into buf a sentence
 * saying so and how long a run of emulated_s seconds will take, and return
 * 1; else buf is "" and 0. */
int mb_tdf_warning(double k, double emulated_s, char *buf, size_t len);

/* The link as it must be emulated under TDF k: rates / k, delays, jitter
 * and AQM targets x k, traces stretched by k (time_scale, which trace
 * loaders honour: mb_trace_read_dir), queues, losses and the MTU unchanged
 * (they count packets and bytes, not time). in and out may be the same.
 * 0, or -1 with err when k is not >= 1 and finite. */
int mb_linkspec_dilate(const mb_link_spec *in, double k, mb_link_spec *out, char *err, size_t errlen);

#endif
