/* mecbed: link capacity traces (docs/traces.md). A trace says how much a link
 * can carry over time, either as a piecewise-constant rate (Pensieve / HSDPA
 * two-column files, NYU-METS per-second samples, mecbed's native format,
 * generated traces) or as delivery opportunities (Mahimahi: instants at which
 * one 1500-byte packet may leave). Readers, writers, seeded generators,
 * statistics, and the capacity queries the link emulator uses. */
#ifndef MECBED_TRACE_H
#define MECBED_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/tracesrc.h"

typedef enum mb_trace_kind { MB_TRACE_RATES = 0, MB_TRACE_OPPORTUNITIES } mb_trace_kind;

/* Times are integer nanoseconds from the trace's start (exact: bin edges,
 * outage lengths and the emulator's schedule compare integers). */
typedef struct mb_trace {
    mb_trace_kind kind;
    mb_trace_format format; /* format it was read from (NATIVE for generated traces) */
    int auto_detected;      /* the format was detected from the content, not given */
    size_t n;
    int64_t *t_ns;          /* from the trace's start, non-decreasing; t_ns[0] = 0 for rates */
    double *rate_bps;       /* RATES: rate from t_ns[i] until t_ns[i+1] (the last until period_ns) */
    int64_t period_ns;      /* length: a looping trace repeats after period_ns */
    double opp_bytes;       /* OPPORTUNITIES: bytes per opportunity (1500) */
    double sample_mean_bps; /* plain mean of the file's samples (what dataset READMEs quote) */
    /* what an importer did with the file (csv, twocol): rows read, rows
     * merged into a second/time already taken, seconds no row covered, rows
     * without a value */
    long n_rows, n_duplicates, n_gap_seconds, n_missing;
} mb_trace;

#define MB_NS_PER_S 1000000000LL
/* Seconds (finite, within +-9e9) to ns, rounded; and back. */
int64_t mb_trace_ns(double seconds);
static inline double mb_trace_period_s(const mb_trace *tr)
{
    return (double)tr->period_ns / 1e9;
}

/* Read a trace with the importer options of src (tracesrc.h; NULL: detect
 * the format, defaults). Errors read "file:line: what is wrong"; when the
 * format was detected, they add "(parsed as FMT, auto-detected; use
 * --format)". Returns NULL on error. */
mb_trace *mb_trace_read_src(const char *path, const mb_trace_src *src, char *err, size_t errlen);
/* The same with only a format (defaults for the rest). */
mb_trace *mb_trace_read(const char *path, mb_trace_format fmt, char *err, size_t errlen);
/* Write in a format; opportunity traces written as rates are averaged over
 * bin_s windows (and rate traces written as Mahimahi become opportunities). */
int mb_trace_write(const mb_trace *tr, const char *path, mb_trace_format fmt, double bin_s, char *err,
                   size_t errlen);
void mb_trace_free(mb_trace *tr);

/* A rate trace with n segments (copies t and rate). */
mb_trace *mb_trace_new_rates(size_t n, const int64_t *t_ns, const double *rate_bps, int64_t period_ns);
/* The same from times in seconds (rounded to ns). */
mb_trace *mb_trace_new_rates_s(size_t n, const double *t_s, const double *rate_bps, double period_s);
/* The trace as rates averaged over bin_s windows (exact capacity per
 * window: bin edges are integer ns, so every opportunity lands in exactly
 * one bin). NULL when bin_s < 1 ns or the trace would need > 1e8 bins. */
mb_trace *mb_trace_binned(const mb_trace *tr, double bin_s);

/* Bytes the link can carry in [t0, t1) (trace time, seconds; rounded to ns). */
double mb_trace_capacity(const mb_trace *tr, double t0, double t1, int loop);
double mb_trace_capacity_ns(const mb_trace *tr, int64_t t0_ns, int64_t t1_ns, int loop);

typedef struct mb_trace_stats {
    double duration_s;       /* one period */
    double mean_bps;         /* capacity over one period / period */
    double sample_mean_bps;  /* plain mean of the samples (for Mahimahi: = mean_bps) */
    double min_bps, max_bps; /* of the windowed rate */
    double p5_bps, p25_bps, p50_bps, p75_bps, p95_bps;
    double outage_s;         /* total time in stretches of zero capacity >= 100 ms (exact: integer ns) */
    int n_outages;
    double window_s;         /* window of the percentiles */
    size_t n_samples;
} mb_trace_stats;

int mb_trace_stats_compute(const mb_trace *tr, double window_s, mb_trace_stats *out);

/* Generators (seeded; every call with the same arguments gives the same trace).
 * Rates in bit/s, times in seconds; dt is the segment length. */
typedef enum mb_trace_gen_kind {
    MB_TRACE_GEN_CONSTANT = 0, /* rate */
    MB_TRACE_GEN_STEPS,        /* rates[] in turn, each for step_s */
    MB_TRACE_GEN_ONOFF,        /* rate for on_s, 0 for off_s, repeated */
    MB_TRACE_GEN_MARKOV,       /* good/bad states, mean dwell times, rates per state */
    MB_TRACE_GEN_WALK,         /* random walk within [min, max], sigma per step */
    MB_TRACE_GEN_5G,           /* 5G NR with LTE fallback: a walk within [min, max] (defaults 50..900
                                * Mbit/s) while on NR, bad_bps (default 30 Mbit/s) +-50 % on LTE,
                                * good/bad dwell means (default 10 s / 2 s), off_s without capacity at
                                * each switch (a handover; default 0) */
} mb_trace_gen_kind;

typedef struct mb_trace_gen {
    mb_trace_gen_kind kind;
    double duration_s;
    double dt_s;          /* segment length (markov, walk); default 0.1 s */
    uint64_t seed;
    double rate_bps;      /* constant, onoff, walk start */
    double rates_bps[32]; /* steps */
    int n_rates;
    double step_s;        /* steps */
    double on_s, off_s;   /* onoff */
    double good_bps, bad_bps, good_dwell_s, bad_dwell_s; /* markov */
    double min_bps, max_bps, sigma_bps;                  /* walk */
} mb_trace_gen;

int mb_trace_gen_kind_parse(const char *name); /* -1 if unknown */
mb_trace *mb_trace_generate(const mb_trace_gen *g, char *err, size_t errlen);

/* Capacity cursor: the link emulator's view of a trace. Packets are served in
 * FIFO order; serve() returns the time (seconds since the link's start) at
 * which `bytes` have been carried when service begins at `start` (start never
 * decreases between calls), or INFINITY when the trace never delivers them
 * (an endless outage, or a trace played once has ended). For opportunity
 * traces, bytes left over from an opportunity can carry the next packet if it
 * is already waiting at that instant (as Mahimahi does). */
typedef struct mb_trace_cursor {
    const mb_trace *tr;
    int loop;
    long long cycle;      /* which repetition */
    size_t i;             /* next segment / opportunity */
    int64_t credit_ns;
    double credit_bytes;
    double period_bytes;  /* capacity of one period */
} mb_trace_cursor;

/* Time dilation (timescale.h): stretch the trace by k in time and divide
 * its rates by k, so that under a run's TDF k it carries the same bytes per
 * emulated second. Opportunity traces keep their bytes per opportunity
 * (their instants spread out). 0, or -1 with err when k is not >= 1 and
 * finite. */
int mb_trace_dilate(mb_trace *tr, double k, char *err, size_t errlen);
/* The trace of one direction of a link spec, read with the direction's
 * importer options (format=, column=, unit=, ...: d->trace_src) and dilated
 * by its time_scale: how every link backend, the planners' cost model, the
 * sweep and the link test load a trace. NULL with err when d has no trace
 * or it cannot be read. */
struct mb_link_dir;
mb_trace *mb_trace_read_dir(const struct mb_link_dir *d, char *err, size_t errlen);

void mb_trace_cursor_init(mb_trace_cursor *c, const mb_trace *tr, int loop);
double mb_trace_serve(mb_trace_cursor *c, double start, double bytes);
/* The same in integer ns (INT64_MAX: never). The schedule is exact: segment
 * edges and opportunities are integers, only the time a rate needs for a
 * packet's bits is rounded (to the nearest ns). */
int64_t mb_trace_serve_ns(mb_trace_cursor *c, int64_t start_ns, double bytes);

#endif
