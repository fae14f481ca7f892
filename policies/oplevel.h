/* Intra-DP-style operator-level partitioning (private to policies/).
 *
 * A plan is a layer-wise cut at position k plus, optionally, a window of
 * spatially local ops [k,m) whose outputs are split by columns (or rows)
 * between the device (first part) and the edge (rest): each side computes
 * its part from the input region that part needs (halos recomputed), the
 * edge receives just the slice of the window's input it lacks while the
 * device computes, and the device sends its slice of the window's output
 * when done. Candidates are scored by advancing a device and an edge
 * timeline in topological order over the plan's steps (two link queues,
 * up and down), so transfers overlap computation.
 *
 * Sites in this module: 0 = device, 1 = edge. */
#ifndef MECBED_POLICIES_OPLEVEL_H
#define MECBED_POLICIES_OPLEVEL_H

#include "split_util.h"

enum { MB_OPLEVEL_COLS = 0, MB_OPLEVEL_ROWS = 1 };

typedef struct mb_oplevel_env {
    const mb_graph *g;
    const double *t_dev;  /* [n] ms per op on the device */
    const double *t_edge; /* [n] ms per op on the edge */
    mb_split_hop up, down;
    int max_window;       /* cut positions a window may span (0: 16) */
    int grid;             /* r values tried per window (0: 20) */
} mb_oplevel_env;

typedef struct mb_oplevel_choice {
    int k, m;   /* cut at k; split window [k,m) (m == k: plain layer-wise) */
    int dim;    /* MB_OPLEVEL_COLS or MB_OPLEVEL_ROWS */
    double r;   /* device's fraction of the window output along dim */
    int64_t c;  /* device's extent of the window output along dim */
} mb_oplevel_choice;

typedef struct mb_oplevel_result {
    mb_oplevel_choice ch;
    double latency_ms;
    double device_busy_ms, edge_busy_ms;
    double up_ms, down_ms;          /* link busy time (serialisation) */
    int64_t bytes_up, bytes_down;
    long candidates, pruned;        /* search effort */
    double layerwise_ms;            /* best plain cut found on the way */
} mb_oplevel_result;

int mb_oplevel_search(const mb_oplevel_env *env, mb_oplevel_result *out, char *err, size_t errlen);
/* Steps of a choice (sites 0 device, 1 edge), in execution order. */
int mb_oplevel_steps(const mb_oplevel_env *env, const mb_oplevel_choice *ch, mb_split_steps *out);
/* Score a step list on the two timelines; stops early (returns +INF) once
 * any clock passes `bound`. Fills the busy/bytes fields of res if non-NULL. */
double mb_oplevel_timeline(const mb_oplevel_env *env, const mb_split_steps *st, double bound,
                           mb_oplevel_result *res);

/* Plans precomputed per bandwidth bucket: buckets are log-spaced uplink
 * rates; lookup returns the choice of the bucket containing rate_bps. */
typedef struct mb_oplevel_table {
    int n;
    double lo_bps, ratio;      /* bucket i covers [lo*ratio^i, lo*ratio^(i+1)) */
    mb_oplevel_choice *ch;
    double *ms;                /* predicted latency at the bucket's centre */
} mb_oplevel_table;

int mb_oplevel_table_build(const mb_oplevel_env *env, double lo_bps, double hi_bps, int per_octave,
                           mb_oplevel_table *t, char *err, size_t errlen);
const mb_oplevel_choice *mb_oplevel_table_lookup(const mb_oplevel_table *t, double rate_bps);
void mb_oplevel_table_free(mb_oplevel_table *t);

#endif
