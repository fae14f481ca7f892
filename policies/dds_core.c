/* DDS resource game: envelopes of min-cut lines, best responses, the
 * equilibrium search and the two baselines. See dds.h. */
#include "dds.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int curve_add(mb_dds_curve *c, mb_dds_line l)
{
    for (int i = 0; i < c->n; i++)
        if (fabs(c->v[i].a - l.a) <= 1e-9 * (1 + fabs(l.a)) && fabs(c->v[i].w - l.w) <= 1e-9 * (1 + fabs(l.w)))
            return 0;
    if (c->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 16;
        mb_dds_line *nv = realloc(c->v, sizeof(*nv) * (size_t)nc);
        if (!nv)
            return -1;
        c->v = nv;
        c->cap = nc;
    }
    c->v[c->n++] = l;
    return 0;
}

static double line_at(mb_dds_line l, double y)
{
    return l.a + l.w * y;
}

/* Lines l (optimal at yl) and r (optimal at yr): if a cut beats both where
 * they cross, it is a new envelope piece; recurse on both sides. */
static int envelope(mb_dds_curve *c, mb_dds_cut_fn cut, void *ctx, int dev, double yl, mb_dds_line l, double yr,
                    mb_dds_line r, int depth)
{
    if (depth > 60 || fabs(l.w - r.w) <= 1e-12)
        return 0;
    double y = (r.a - l.a) / (l.w - r.w);
    if (!(y > yl && y < yr))
        return 0;
    mb_dds_line m;
    c->cuts++;
    if (cut(ctx, dev, y, &m) < 0)
        return -1;
    double lv = line_at(l, y);
    if (line_at(m, y) >= lv - 1e-9 * (1 + fabs(lv)))
        return 0;
    if (curve_add(c, m) < 0)
        return -1;
    if (envelope(c, cut, ctx, dev, yl, l, y, m, depth + 1) < 0)
        return -1;
    return envelope(c, cut, ctx, dev, y, m, yr, r, depth + 1);
}

int mb_dds_curve_build(mb_dds_curve *c, mb_dds_cut_fn cut, void *ctx, int dev, double y_lo, double y_hi)
{
    memset(c, 0, sizeof(*c));
    mb_dds_line l, r;
    c->cuts = 2;
    if (cut(ctx, dev, y_lo, &l) < 0 || cut(ctx, dev, y_hi, &r) < 0)
        return -1;
    if (curve_add(c, l) < 0 || curve_add(c, r) < 0)
        return -1;
    return envelope(c, cut, ctx, dev, y_lo, l, y_hi, r, 0);
}

mb_dds_line mb_dds_curve_best(const mb_dds_curve *c, double share)
{
    mb_dds_line best = {INFINITY, 0};
    for (int i = 0; i < c->n; i++) {
        double t;
        if (share <= 0) {
            if (c->v[i].w > 0)
                continue;
            t = c->v[i].a;
        } else {
            t = line_at(c->v[i], 1.0 / share);
        }
        if (t < line_at(best, share > 0 ? 1.0 / share : 0))
            best = c->v[i];
    }
    return best;
}

double mb_dds_curve_eval(const mb_dds_curve *c, double share)
{
    mb_dds_line l = mb_dds_curve_best(c, share);
    return share > 0 ? line_at(l, 1.0 / share) : l.a;
}

void mb_dds_curve_free(mb_dds_curve *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

double mb_dds_share(const mb_dds_game *g, const double *f, int i, double fi)
{
    if (fi <= 0)
        return 0;
    double sum = fi;
    for (int j = 0; j < g->n; j++)
        if (j != i)
            sum += f[j];
    return sum > g->F ? g->F * fi / sum : fi;
}

double mb_dds_cost(const mb_dds_game *g, const double *f, int i, double fi)
{
    return mb_dds_curve_eval(g->curve[i], mb_dds_share(g, f, i, fi)) + g->price * fi;
}

double mb_dds_best_response(const mb_dds_game *g, const double *f, int i)
{
    const int G = 96;
    double lo = g->F * 1e-4, hi = g->F;
    double best_x = 0, best_u = mb_dds_cost(g, f, i, 0);
    int best_k = -1;
    double xs[96];
    for (int k = 0; k < G; k++) {
        xs[k] = lo * pow(hi / lo, (double)k / (G - 1));
        double u = mb_dds_cost(g, f, i, xs[k]);
        if (u < best_u) {
            best_u = u;
            best_x = xs[k];
            best_k = k;
        }
    }
    if (best_k < 0)
        return 0;
    /* golden section between the grid neighbours of the best point */
    double a = best_k > 0 ? xs[best_k - 1] : lo, b = best_k < G - 1 ? xs[best_k + 1] : hi;
    const double phi = 0.6180339887498949;
    double x1 = b - phi * (b - a), x2 = a + phi * (b - a);
    double u1 = mb_dds_cost(g, f, i, x1), u2 = mb_dds_cost(g, f, i, x2);
    for (int it = 0; it < 40; it++) {
        if (u1 < u2) {
            b = x2;
            x2 = x1;
            u2 = u1;
            x1 = b - phi * (b - a);
            u1 = mb_dds_cost(g, f, i, x1);
        } else {
            a = x1;
            x1 = x2;
            u1 = u2;
            x2 = a + phi * (b - a);
            u2 = mb_dds_cost(g, f, i, x2);
        }
    }
    if (u1 < best_u) {
        best_u = u1;
        best_x = x1;
    }
    if (u2 < best_u)
        best_x = x2;
    return best_x;
}

void mb_dds_result_free(mb_dds_result *r)
{
    free(r->f);
    free(r->share);
    free(r->latency);
    free(r->cost);
    memset(r, 0, sizeof(*r));
}

int mb_dds_solve(const mb_dds_game *g, mb_dds_result *r)
{
    int n = g->n;
    memset(r, 0, sizeof(*r));
    r->f = calloc((size_t)n, sizeof(double));
    r->share = calloc((size_t)n, sizeof(double));
    r->latency = calloc((size_t)n, sizeof(double));
    r->cost = calloc((size_t)n, sizeof(double));
    if (!r->f || !r->share || !r->latency || !r->cost) {
        mb_dds_result_free(r);
        return -1;
    }
    /* start from equal shares */
    for (int i = 0; i < n; i++)
        r->f[i] = g->F / n;
    int max_rounds = g->max_rounds > 0 ? g->max_rounds : 200;
    double eps = g->eps > 0 ? g->eps : 1e-4;
    for (r->rounds = 1; r->rounds <= max_rounds; r->rounds++) {
        double moved = 0;
        for (int i = 0; i < n; i++) {
            double x = mb_dds_best_response(g, r->f, i);
            /* keep the old bid unless the new one is really better: stops
             * flip-flopping between equally good bids */
            if (mb_dds_cost(g, r->f, i, x) < mb_dds_cost(g, r->f, i, r->f[i]) - 1e-9) {
                double d = fabs(x - r->f[i]);
                if (d > moved)
                    moved = d;
                r->f[i] = x;
            }
        }
        if (moved <= eps * g->F) {
            r->converged = 1;
            break;
        }
    }
    if (r->rounds > max_rounds)
        r->rounds = max_rounds;
    r->mean_ms = r->max_ms = 0;
    r->util = 0;
    for (int i = 0; i < n; i++) {
        r->share[i] = mb_dds_share(g, r->f, i, r->f[i]);
        r->latency[i] = mb_dds_curve_eval(g->curve[i], r->share[i]);
        r->cost[i] = r->latency[i] + g->price * r->f[i];
        if (r->share[i] > 0 && mb_dds_curve_best(g->curve[i], r->share[i]).w > 0)
            r->util += r->share[i] / g->F;
        r->mean_ms += r->latency[i] / n;
        if (r->latency[i] > r->max_ms)
            r->max_ms = r->latency[i];
    }
    /* equal shares, each device's cut re-optimised for F/N */
    r->equal_mean_ms = r->equal_max_ms = 0;
    for (int i = 0; i < n; i++) {
        double t = mb_dds_curve_eval(g->curve[i], g->F / n);
        r->equal_mean_ms += t / n;
        if (t > r->equal_max_ms)
            r->equal_max_ms = t;
    }
    /* fixed-speed min cut: each plans for the whole server, then the server
     * is shared equally among the devices that use it */
    r->fixed_active = 0;
    for (int i = 0; i < n; i++)
        if (mb_dds_curve_best(g->curve[i], g->F).w > 0)
            r->fixed_active++;
    r->fixed_mean_ms = r->fixed_max_ms = 0;
    for (int i = 0; i < n; i++) {
        mb_dds_line l = mb_dds_curve_best(g->curve[i], g->F);
        double t = l.a + l.w * (l.w > 0 ? r->fixed_active / g->F : 0);
        r->fixed_mean_ms += t / n;
        if (t > r->fixed_max_ms)
            r->fixed_max_ms = t;
    }
    return 0;
}
