/* Private helpers shared by the split policies (tile, oplevel, dds): where a
 * topological cut crosses a single tensor, how regions walk back through a
 * run of local ops, and the step list those policies build before turning
 * it into the common plan form. Not a public header: nothing outside
 * policies/ includes it. */
#ifndef MECBED_POLICIES_SPLIT_UTIL_H
#define MECBED_POLICIES_SPLIT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"

/* Liveness along the topological order. Position c (0..n) means "ops
 * [0,c) have run"; live(c) are the non-constant producers u < c whose tensor
 * is still needed at c (a consumer >= c, or a graph output). */
typedef struct mb_split_live {
    int n;
    int *last_use;   /* [n] largest consumer index, -1 if none */
    int *is_output;  /* [n] */
    int *n_live;     /* [n+1] |live(c)| */
    int *single;     /* [n+1] the one live tensor where n_live == 1, else -1 */
    int64_t *bytes;  /* [n+1] sum of out_bytes of live(c) */
    int min_pos;     /* smallest position with every graph input before it */
} mb_split_live;

int mb_split_live_init(mb_split_live *lv, const mb_graph *g);
void mb_split_live_free(mb_split_live *lv);
/* Positions c in [lv->min_pos, n] where exactly one tensor is live, in
 * increasing order; returns their count (out has room for n+1). */
int mb_split_cut_positions(const mb_split_live *lv, int *out);
/* 1 for graph constants: on every site, never sent, never live. */
int mb_split_is_const(const mb_graph *g, int i);
/* 1 for ops a plan never computes (graph inputs and constants). */
int mb_split_is_free(const mb_graph *g, int i);

/* Regions of every op in [q,p) needed to produce the parts want[0..nt) of
 * op `exit` (one part per site; hull over consumers inside the run), plus
 * the regions of the run's entry tensors (ops < q). reg[t*n + v] is part
 * t's region of op v; entries not needed are empty (all zero).
 *
 * The parts' regions of an op computed inside the run are then widened to
 * close gaps between them (a strided op skips input rows no output needs),
 * so that together they cover the op's whole output: the plan validator
 * asks every needed op to be computed in full somewhere. Parts must come
 * from a strip layout (rows split into bands, each band into columns).
 * Returns 0, or -1 if an op in the run is not 4-D. */
int mb_split_backprop(const mb_graph *g, int q, int p, int exit, int nt, const mb_region *want,
                      mb_region *reg);
mb_region mb_split_hull(mb_region a, mb_region b);
/* Fraction of op i's full output that region r covers (0 for empty). */
/* 1 when node i's output can be split in regions (ranks 2 to 4). */
int mb_split_region_rank(const mb_graph *g, int i);
double mb_split_area_frac(const mb_graph *g, int i, mb_region r);
/* Bytes of region r of op i's output (all batches and channels). */
int64_t mb_split_region_bytes(const mb_graph *g, int i, mb_region r);

/* One direction of a link as the split policies model it: a message
 * occupies the link for bytes*8/rate + overhead and arrives delay later. */
typedef struct mb_split_hop {
    double rate_bps; /* 0: unlimited */
    double delay_s;
    double overhead_s;
} mb_split_hop;

/* The steps a split policy decides, in execution order, before they are
 * turned into the common plan form: compute a region of an op on a site,
 * or send a region of an op's output from one site to another. */
enum { MB_SPLIT_COMPUTE = 0, MB_SPLIT_SEND = 1 };
typedef struct mb_split_step {
    int kind;
    int node;
    int site;    /* compute: where; send: from */
    int to_site; /* send only */
    mb_region r;
} mb_split_step;

typedef struct mb_split_steps {
    int n, cap;
    mb_split_step *v;
} mb_split_steps;

int mb_split_steps_add(mb_split_steps *s, int kind, int node, int site, int to_site, mb_region r);
void mb_split_steps_free(mb_split_steps *s);

#endif
