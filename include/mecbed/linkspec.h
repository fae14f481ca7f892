/* mecbed: link specifications, the one grammar shared by `plan`, `run`,
 * `link test` and topology files:
 *   rate=20mbit,delay=10ms,jitter=2ms:normal,loss=0.5%,queue=100p,mtu=1500
 *   up.rate=5.85mbit,down.rate=20mbit,rtt=40ms
 *   trace=path/to/file:loop
 *   trace=5g.csv,format=csv,up.column=UL_bitrate,down.column=DL_bitrate,unit=kbit/s
 * Keys without a prefix apply to both directions; "up." (device -> server)
 * and "down." (server -> device) apply to one. docs/link-spec.md documents
 * every key. Keys outside this grammar belong to a link backend (netem's
 * registry, link.h): the parser keeps them in `extra` and hands them to the
 * check the backends install, which refuses keys no backend declares and
 * lets the declaring backend validate them. Impossible values are errors. */
#ifndef MECBED_LINKSPEC_H
#define MECBED_LINKSPEC_H

#include <stddef.h>

#include "mecbed/tracesrc.h"

enum { MB_JITTER_NONE = 0, MB_JITTER_UNIFORM, MB_JITTER_NORMAL, MB_JITTER_PARETO };
enum { MB_LOSS_NONE = 0, MB_LOSS_BERNOULLI, MB_LOSS_GILBERT_ELLIOTT };

#define MB_PATH_LEN 512

/* One direction of a link. */
typedef struct mb_link_dir {
    double rate_bps;      /* 0: unlimited (or given by the trace) */
    double delay_s;       /* one-way propagation delay */
    double jitter_s;      /* jitter scale */
    int jitter_dist;
    int loss_model;
    double loss;          /* Bernoulli drop probability */
    double ge_p, ge_r;    /* Gilbert-Elliott: P(good->bad), P(bad->good) */
    double ge_loss_good, ge_loss_bad;
    long queue_packets;   /* 0: default */
    long queue_bytes;     /* 0: not byte-limited */
    double aqm_target_s;  /* delay-based AQM target (0: drop-tail only) */
    double duplicate;     /* probability that a delivered packet is delivered twice (netem's duplicate) */
    double corrupt;       /* probability that one random bit of a packet is flipped (netem's corrupt) */
    double reorder;       /* probability that a packet skips the delay and jitter, overtaking those
                           * before it (netem's reorder; needs a delay) */
    long reorder_gap;     /* netem's gap N: only a packet that follows N-1 delayed ones may skip
                           * (0 or 1: any packet) */
    char trace[MB_PATH_LEN]; /* "" when none */
    int trace_loop;       /* 1 loop (default), 0 once */
    mb_trace_src trace_src; /* how to read the trace (format=, column=, unit=, ...; tracesrc.h) */
    double time_scale;    /* time dilation of the trace (mb_linkspec_dilate, timescale.h):
                           * loaders stretch it by this factor; 0 or 1: as written */
} mb_link_dir;

typedef struct mb_link_spec {
    mb_link_dir up, down;
    int mtu;              /* 0: 1500 */
    char extra[1024];     /* link backends' key=value pairs, verbatim and in the given order
                           * (e.g. "ns3=wifi,distance=20m"); "" when none */
} mb_link_spec;

/* The value of a link backend's key in s->extra ("ns3" -> "wifi"), copied
 * into buf; NULL when the spec does not have it. */
const char *mb_linkspec_extra(const mb_link_spec *s, const char *key, char *buf, size_t len);

/* Judges the keys in s->extra: 0, or -1 with a message naming the key. */
typedef int (*mb_linkspec_extra_check_fn)(const mb_link_spec *s, char *err, size_t errlen);
/* Installed by whoever knows the backends' keys (netem's registry, at load
 * time). Without one, every key outside the grammar is an unknown key. */
void mb_linkspec_set_extra_check(mb_linkspec_extra_check_fn fn);
/* The grammar's own keys, for error messages ("rate, delay, ..."). */
const char *mb_linkspec_generic_keys(void);
/* The value of a backend key into buf; NULL when absent. */
const char *mb_linkspec_extra_get(const mb_link_spec *s, const char *key, char *buf, size_t len);

/* A spec may also be written in tc-netem's words, as tc users do:
 * "delay 20ms 5ms distribution normal loss 1% rate 10mbit limit 100"
 * (also duplicate P, corrupt P, reorder P [gap N], loss gemodel p r 1-h 1-k).
 * mb_linkspec_parse reads both; these two do the translation: is text in
 * netem's words (it starts with a netem keyword and has no '=')? And its
 * key=value form into out; what netem says but mecbed does not emulate
 * (correlations, slot, ecn, 4-state loss) is an error naming it. */
int mb_linkspec_is_netem(const char *text);
int mb_linkspec_from_netem(const char *text, char *out, size_t outlen, char *err, size_t errlen);

/* Parse a spec. Returns 0, or -1 with a message naming the offending key in err. */
int mb_linkspec_parse(const char *text, mb_link_spec *out, char *err, size_t errlen);
/* Write a canonical spec string (round-trips through mb_linkspec_parse). */
int mb_linkspec_format(const mb_link_spec *s, char *buf, size_t len);
/* Round-trip time implied by the spec: up.delay + down.delay. */
double mb_linkspec_rtt(const mb_link_spec *s);

#endif
