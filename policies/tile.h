/* D3-style tile-parallel partitioning (private to policies/).
 *
 * HPA: two boundaries a <= b in topological order split the DAG into a
 * device part [0,a), an edge part [a,b) and a cloud part [b,n). VSM: inside
 * the edge part, runs of spatially local ops are fused into stacks whose
 * output is cut into an N x M grid of tiles, one per edge node, each tile
 * computed from its own input region (halo recomputed), tile sizes
 * proportional to node speed; non-local ops run on the fastest edge node
 * (the leader), which scatters stack inputs and gathers tiles.
 *
 * Sites in this module: 0 = device, 1..n_edge = edge nodes, n_edge+1 =
 * cloud (when has_cloud). */
#ifndef MECBED_POLICIES_TILE_H
#define MECBED_POLICIES_TILE_H

#include "split_util.h"

#define MB_TILE_MAX_EDGE 16

typedef struct mb_tile_env {
    const mb_graph *g;
    int n_edge;                  /* K >= 0 */
    int has_cloud;
    const double *t_dev;         /* [n] ms per op on the device */
    const double *t_edge[MB_TILE_MAX_EDGE]; /* [K][n] ms per op on edge node k */
    const double *t_cloud;       /* [n], may be NULL when !has_cloud */
    /* ms to move `bytes` from site a to site b (module site numbering) */
    double (*xfer_ms)(void *ctx, int from, int to, int64_t bytes);
    void *ctx;
    int max_tiles;               /* cap on tiles per stack (0: n_edge) */
} mb_tile_env;

typedef struct mb_tile_seg {
    int q, p;           /* ops [q,p) */
    int tiled;          /* 0: whole segment on the leader */
    int grid_n, grid_m; /* strips x tiles per strip */
    int n_tiles;
    mb_region tile[MB_TILE_MAX_EDGE]; /* regions of the exit tensor */
    int site[MB_TILE_MAX_EDGE];       /* module site of each tile */
    double ms;
} mb_tile_seg;

typedef struct mb_tile_result {
    int a, b;             /* boundaries (positions) */
    int leader;           /* module site of the leader edge node */
    double latency_ms;
    double device_ms, up_ms, edge_ms, backbone_ms, cloud_ms, down_ms;
    int64_t backbone_bytes; /* edge <-> cloud, both directions */
    int64_t bytes_sent;     /* every transfer, all links */
    int n_segs;
    mb_tile_seg *segs;
} mb_tile_result;

/* Precomputed tables for one env (segment costs, DP); reusable by replan. */
typedef struct mb_tile_solver mb_tile_solver;

mb_tile_solver *mb_tile_solver_new(const mb_tile_env *env, char *err, size_t errlen);
void mb_tile_solver_free(mb_tile_solver *s);
/* Best (a,b) over every pair of cut positions. */
int mb_tile_solve(mb_tile_solver *s, mb_tile_result *out, char *err, size_t errlen);
/* D3's run-time adjustment: starting from boundaries (a,b) of an earlier
 * result, move each boundary by at most one cut position (the best of the
 * 3 x 3 neighbours under the solver's current costs). */
int mb_tile_adjust(mb_tile_solver *s, int a, int b, mb_tile_result *out, char *err, size_t errlen);
/* Evaluate given boundaries (positions must be cut positions or n). */
int mb_tile_eval(mb_tile_solver *s, int a, int b, mb_tile_result *out, char *err, size_t errlen);
void mb_tile_result_free(mb_tile_result *r);

/* The steps of a result, sites numbered as in this module. */
int mb_tile_steps(const mb_tile_env *env, const mb_tile_result *r, mb_split_steps *out);

/* Apportion `total` units to n parts by weight, each part >= 1 (needs total >= n). */
void mb_tile_apportion(int64_t total, const double *w, int n, int64_t *out);

#endif
