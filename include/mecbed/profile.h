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
/* Read a profile for g: row count and op names must match g ("file:line:
 * what is wrong" otherwise). */
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

#endif
