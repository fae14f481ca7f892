/* DDS-style resource game (private to policies/).
 *
 * N devices share one server of capacity F. Device i bids f_i in
 * [0, F] and gets share_i = f_i * min(1, F / sum_j f_j). Its latency
 * T_i(share) is the min-cut latency with the server's op times scaled by
 * 1/share (share 0: everything local); its cost is U_i = T_i + price*f_i.
 *
 * T_i is a minimum over cuts of lines A_c + W_c * y in y = 1/share (A: the
 * device and transfer part, W: server work at full capacity), a concave
 * piecewise-linear function. The core computes that lower envelope exactly
 * with a handful of min cuts (Eisner-Severance bisection on y), once per
 * class of identical devices, so best responses are cheap to evaluate. */
#ifndef MECBED_POLICIES_DDS_H
#define MECBED_POLICIES_DDS_H

#include <stddef.h>

/* One cut: T(y) = a + w*y. */
typedef struct mb_dds_line {
    double a, w;
} mb_dds_line;

typedef struct mb_dds_curve {
    int n, cap;
    mb_dds_line *v;  /* every line found; the envelope is their minimum */
    int cuts;        /* min cuts solved to build it */
} mb_dds_curve;

/* Min-cut oracle: the optimal cut when server times are multiplied by y;
 * returns 0 and the cut's line, or -1. */
typedef int (*mb_dds_cut_fn)(void *ctx, int dev, double y, mb_dds_line *line);

int mb_dds_curve_build(mb_dds_curve *c, mb_dds_cut_fn cut, void *ctx, int dev, double y_lo, double y_hi);
/* T at share s (s <= 0: the line with w == 0 only, i.e. all local). */
double mb_dds_curve_eval(const mb_dds_curve *c, double share);
/* The line achieving T at share s. */
mb_dds_line mb_dds_curve_best(const mb_dds_curve *c, double share);
void mb_dds_curve_free(mb_dds_curve *c);

typedef struct mb_dds_game {
    int n;                 /* devices */
    double F;              /* server capacity (1 = the profiled server) */
    double price;          /* ms per unit of capacity bid */
    double eps;            /* stop when no bid moves more than eps*F in a round */
    int max_rounds;
    const mb_dds_curve *const *curve; /* [n] T_i */
} mb_dds_game;

typedef struct mb_dds_result {
    double *f, *share, *latency, *cost; /* [n] at the end */
    int rounds, converged;
    double util;           /* share held by devices that run work on the server / F */
    double mean_ms, max_ms;
    /* baselines */
    double equal_mean_ms, equal_max_ms;   /* share F/N each, cut re-optimised for it */
    double fixed_mean_ms, fixed_max_ms;   /* cut planned for the whole server, then shared */
    int fixed_active;                     /* devices using the server in that baseline */
} mb_dds_result;

double mb_dds_share(const mb_dds_game *g, const double *f, int i, double fi);
double mb_dds_cost(const mb_dds_game *g, const double *f, int i, double fi);
/* Best response of device i to the others' bids in f: log grid, then golden
 * section around the best grid point; bid 0 (all local) is a candidate. */
double mb_dds_best_response(const mb_dds_game *g, const double *f, int i);
int mb_dds_solve(const mb_dds_game *g, mb_dds_result *r);
void mb_dds_result_free(mb_dds_result *r);

#endif
