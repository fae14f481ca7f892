/* mecbed: per-op latency profiles, the measured basis of every cost model.
 *
 * A profile is a CSV file (`mecbed profile --model M --threads N --out p.csv`):
 *   # mecbed profile v1
 *   # model=resnet50 hash=0123abcd... threads=1 backend=cpu repeats=5
 *   # blas_core=SkylakeX ref_gflops=201.3 whole_ms=61.9 cpu=AMD EPYC ...
 *   op,name,type,ms,bytes_out,macs
 *   0,input,Input,0,602112,0
 *   1,conv1,Conv,1.234,3211264,118013952
 * ms is the median over `repeats` runs of mb_exec_run's per-op timing on this
 * machine. ref_gflops is the sgemm rate measured at profiling time with the
 * same threads; node types scale by it (nodetype.h). Pinned profiles of the
 * zoo are checked in under policies/profiles/ for reproducible plans. */
#ifndef MECBED_PROFILE_H
#define MECBED_PROFILE_H

#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/nodetype.h"

typedef struct mb_profile {
    char model[MB_NAME_LEN];
    uint64_t graph_hash;  /* 0 when unknown */
    int n_ops;            /* == graph's n_nodes */
    double *ms;           /* per node, ms on the profiled machine */
    int threads;
    int repeats;
    char backend[16];
    char blas_core[32];
    char cpu[128];
    double ref_gflops;    /* sgemm GFLOP/s measured when profiling (same threads) */
    double whole_ms;      /* median wall time of whole untimed runs, interleaved with the
                           * timed ones (0: not measured); compare with the sum of op times */
    uint64_t file_hash;   /* read from a file: the hash= it recorded (0: none). It differs from
                           * graph_hash when another version of the model (same ops, types and
                           * output sizes, other weights or attributes) was profiled */
} mb_profile;

/* All zeros, n_ops = g->n_nodes, ref_gflops = 0 (set it before use). */
mb_profile *mb_profile_new(const mb_graph *g);
void mb_profile_free(mb_profile *p);
/* Time every op with mb_exec_run on backend (name) with threads; median of
 * repeats runs after one warm-up. Also measures ref_gflops. */
mb_profile *mb_profile_measure(const mb_graph *g, const char *backend, int threads, int repeats,
                               char *err, size_t errlen);
/* sgemm rate (GFLOP/s) of this machine with n threads, measured on a
 * 512x512x512 product (median of a few runs). */
double mb_profile_sgemm_gflops(int threads);
int mb_profile_write_csv(const mb_profile *p, const mb_graph *g, const char *path, char *err,
                         size_t errlen);
/* Read a profile for g: row count, op names, op types and (when the file
 * has them) output sizes must match g, and header values be well formed
 * ("file:line: what is wrong" otherwise). A hash= of another version of g is
 * not an error: it is kept in file_hash for the caller to warn about (or,
 * as mb_profile_default does, to refuse). */
mb_profile *mb_profile_read_csv(const char *path, const mb_graph *g, char *err, size_t errlen);
/* The profile to plan with when none is given: the pinned one under
 * policies/profiles/<model>.csv if it matches g, else the cached one
 * ($XDG_CACHE_HOME/mecbed/<model>-<hash>.csv), else measured now (3 repeats,
 * 1 thread, cpu backend) and cached. *source receives which ("pinned",
 * "cached", "measured"). */
mb_profile *mb_profile_default(const mb_graph *g, const char **source, char *err, size_t errlen);
double mb_profile_total_ms(const mb_profile *p);
/* whole_ms / sum of op times (1 when whole_ms is unknown): a diagnostic of
 * what per-op timing misses (fusion and cache effects between ops, per-run
 * work outside any op). `mecbed profile` prints it; the cost model does not
 * apply it (see docs/policies.md, "Profiles"). */
double mb_profile_op_scale(const mb_profile *p);

/* Calibration: this machine's speed now, on the kernels of the model a run
 * uses. A run calibrates at its start and derives both the dilation of each
 * site (mb_calibration_site_factor) and the prediction from the same
 * record, so that a host that drifted since the profile was measured (other
 * load, frequency, a different BLAS core) moves neither; the record goes
 * into the run's results. */
typedef struct mb_calibration {
    char model[MB_NAME_LEN];
    char cpu[128];
    char blas_core[32];
    char backend[16];
    int threads;
    int repeats;
    int n_ops;
    double *ms_now;       /* per node: median ms now */
    double total_ms_now;  /* sum of ms_now */
    double gflops_now;    /* sgemm GFLOP/s now, same threads */
    double ref_total_ms;  /* sum of the reference profile's op times (0: none given) */
    double ref_gflops;    /* the reference profile's ref_gflops (0: none) */
    double host_scale;    /* total_ms_now / ref_total_ms: > 1 when this machine is
                           * slower now than the profiled one; 1 without a reference */
    double when;          /* Unix time (s) the calibration started */
    double took_s;        /* how long it took */
} mb_calibration;

/* Measure g now: one call of mb_exec_run with `repeats` passes (>= 3; the
 * first, cold, pass is outvoted by the median) on backend with threads, and
 * the sgemm rate. ref (optional): the profile predictions use (pinned or
 * cached); it must describe g. NULL with err on failure. */
mb_calibration *mb_calibrate(const mb_graph *g, const mb_profile *ref, const char *backend, int threads,
                             int repeats, char *err, size_t errlen);
void mb_calibration_free(mb_calibration *c);
/* A node type's op time over this machine's op time now, for the model the
 * calibration measured: the node type's factor against the reference
 * profile (speed, or ref_gflops / gflops), divided by host_scale. Without a
 * reference: speed, or gflops_now / gflops. > 1: the site is slower than
 * this machine (dilate its compute by the factor); < 1: faster (needs a
 * time dilation factor >= 1 / factor, mb_tdf_auto). NAN when the type gives
 * neither speed nor gflops. */
double mb_calibration_site_factor(const mb_calibration *c, const mb_nodetype *t);
/* The calibration as "key=value" pairs separated by spaces (a CSV meta
 * line) or as a JSON object. Return the length written (snprintf's). */
int mb_calibration_format(const mb_calibration *c, char *buf, size_t len);
int mb_calibration_json(const mb_calibration *c, char *buf, size_t len);

#endif
