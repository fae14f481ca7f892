/* Intra-DP operator-level partitioning: candidate generation, the
 * two-timeline evaluator and the search. See oplevel.h. */
#include "oplevel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double op_ms(const mb_oplevel_env *env, int site, int v)
{
    if (mb_split_is_free(env->g, v))
        return 0.0;
    return site == 0 ? env->t_dev[v] : env->t_edge[v];
}

/* Serialisation (occupies the link) and latency of a message. */
static double ser_ms(const mb_split_hop *h, int64_t bytes)
{
    double s = h->overhead_s;
    if (h->rate_bps > 0)
        s += (double)bytes * 8.0 / h->rate_bps;
    return s * 1e3;
}

/* ready: scratch of 2n doubles (NULL: allocated here). */
static double timeline_impl(const mb_oplevel_env *env, const mb_split_steps *st, double bound,
                            mb_oplevel_result *res, double *scratch)
{
    const mb_graph *g = env->g;
    int n = g->n_nodes;
    double *ready = scratch ? scratch : malloc(sizeof(double) * 2 * (size_t)n);
    if (!ready)
        return INFINITY;
    for (int i = 0; i < 2 * n; i++)
        ready[i] = -1;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].type == MB_OP_INPUT)
            ready[i] = 0; /* on the device at time 0 */
    double clock[2] = {0, 0}, link_free[2] = {0, 0}; /* link 0: up, 1: down */
    double busy[2] = {0, 0}, lbusy[2] = {0, 0};
    int64_t bytes[2] = {0, 0};
    double result = 0;
    for (int i = 0; i < st->n; i++) {
        const mb_split_step *s = &st->v[i];
        if (s->kind == MB_SPLIT_COMPUTE) {
            int site = s->site;
            const mb_node *nd = &g->nodes[s->node];
            double start = clock[site];
            for (int k = 0; k < nd->n_inputs; k++) {
                int u = nd->inputs[k];
                if (mb_split_is_const(g, u))
                    continue;
                if (ready[site * n + u] < 0) /* a plan bug: input never arrives */
                    goto fail;
                if (ready[site * n + u] > start)
                    start = ready[site * n + u];
            }
            double d = op_ms(env, site, s->node) * mb_split_area_frac(g, s->node, s->r);
            clock[site] = start + d;
            busy[site] += d;
            if (clock[site] > ready[site * n + s->node])
                ready[site * n + s->node] = clock[site];
            if (clock[site] > bound)
                goto fail;
        } else {
            int dir = s->site == 0 ? 0 : 1;
            const mb_split_hop *h = dir == 0 ? &env->up : &env->down;
            double r = ready[s->site * n + s->node];
            if (r < 0)
                goto fail;
            int64_t b = mb_split_region_bytes(g, s->node, s->r);
            double start = r > link_free[dir] ? r : link_free[dir];
            double ser = ser_ms(h, b);
            link_free[dir] = start + ser;
            lbusy[dir] += ser;
            bytes[dir] += b;
            double arrive = link_free[dir] + h->delay_s * 1e3;
            double *rt = &ready[s->to_site * n + s->node];
            if (arrive > *rt)
                *rt = arrive;
            if (arrive > bound)
                goto fail;
        }
    }
    for (int o = 0; o < g->n_outputs; o++) {
        double r = ready[g->outputs[o]]; /* on the device */
        if (r < 0) {
            result = INFINITY;
            break;
        }
        if (r > result)
            result = r;
    }
    if (!scratch)
        free(ready);
    if (res) {
        res->device_busy_ms = busy[0];
        res->edge_busy_ms = busy[1];
        res->up_ms = lbusy[0];
        res->down_ms = lbusy[1];
        res->bytes_up = bytes[0];
        res->bytes_down = bytes[1];
    }
    return result;
fail:
    if (!scratch)
        free(ready);
    return INFINITY;
}

double mb_oplevel_timeline(const mb_oplevel_env *env, const mb_split_steps *st, double bound,
                           mb_oplevel_result *res)
{
    return timeline_impl(env, st, bound, res, NULL);
}

static mb_region part_region(mb_region full, int dim, int64_t lo, int64_t hi)
{
    mb_region r = full;
    if (dim == MB_OPLEVEL_COLS) {
        r.w0 = full.w0 + lo;
        r.w1 = full.w0 + hi;
    } else {
        r.h0 = full.h0 + lo;
        r.h1 = full.h0 + hi;
    }
    return r;
}

static int add_full(mb_split_steps *out, const mb_graph *g, int kind, int v, int a, int b)
{
    return mb_split_steps_add(out, kind, v, a, b, mb_node_full_region(g, v));
}

/* Scratch regions are allocated per call: steps are built for every
 * candidate, and the O(n) allocation is small next to the backprop. */
/* lvp: liveness of g; rscratch: 2n regions (NULL: allocated here). */
static int steps_impl(const mb_oplevel_env *env, const mb_split_live *lvp, mb_region *rscratch,
                      const mb_oplevel_choice *ch, mb_split_steps *out)
{
    const mb_graph *g = env->g;
    int n = g->n_nodes, k = ch->k, m = ch->m, rc = 0;
    const mb_split_live lv = *lvp;
    for (int v = 0; v < k && !rc; v++)
        if (!mb_split_is_free(g, v))
            rc = add_full(out, g, MB_SPLIT_COMPUTE, v, 0, 0);
    if (k >= n || rc)
        goto done;
    if (lv.single[k] < 0) {
        rc = -1;
        goto done;
    }
    if (m == k) {
        rc = add_full(out, g, MB_SPLIT_SEND, lv.single[k], 0, 1);
    } else {
        int u0 = lv.single[k], u1 = lv.single[m];
        mb_region full = mb_node_full_region(g, u1);
        int64_t X = ch->dim == MB_OPLEVEL_COLS ? mb_region_cols(full) : mb_region_rows(full);
        if (u1 < 0 || ch->c <= 0 || ch->c >= X) {
            rc = -1;
            goto done;
        }
        mb_region parts[2] = {part_region(full, ch->dim, 0, ch->c), part_region(full, ch->dim, ch->c, X)};
        mb_region *rd = rscratch ? rscratch : malloc(sizeof(mb_region) * 2 * (size_t)n), *re = rd ? rd + n : NULL;
        if (!rd || mb_split_backprop(g, k, m, u1, 2, parts, rd) < 0) {
            if (!rscratch)
                free(rd);
            rc = -1;
            goto done;
        }
        /* the edge's input slice goes first so it overlaps the device's compute */
        rc = mb_split_steps_add(out, MB_SPLIT_SEND, u0, 0, 1, re[u0]);
        for (int v = k; v < m && !rc; v++)
            if (!mb_split_is_free(g, v) && !mb_region_empty(rd[v]))
                rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, 0, 0, rd[v]);
        for (int v = k; v < m && !rc; v++)
            if (!mb_split_is_free(g, v) && !mb_region_empty(re[v]))
                rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, 1, 1, re[v]);
        if (!rc && m < n)
            rc = mb_split_steps_add(out, MB_SPLIT_SEND, u1, 0, 1, rd[u1]);
        else if (!rc)
            rc = mb_split_steps_add(out, MB_SPLIT_SEND, u1, 1, 0, re[u1]);
        if (!rscratch)
            free(rd);
        if (m >= n)
            goto done;
    }
    for (int v = m; v < n && !rc; v++)
        if (!mb_split_is_free(g, v))
            rc = add_full(out, g, MB_SPLIT_COMPUTE, v, 1, 1);
    for (int o = 0; o < g->n_outputs && !rc; o++)
        rc = add_full(out, g, MB_SPLIT_SEND, g->outputs[o], 1, 0);
done:
    return rc;
}

int mb_oplevel_steps(const mb_oplevel_env *env, const mb_oplevel_choice *ch, mb_split_steps *out)
{
    mb_split_live lv;
    if (mb_split_live_init(&lv, env->g) < 0)
        return -1;
    int rc = steps_impl(env, &lv, NULL, ch, out);
    mb_split_live_free(&lv);
    return rc;
}

/* Scratch shared by every candidate of one search. */
typedef struct search_ctx {
    const mb_split_live *lv;
    mb_region *regions; /* 2n */
    double *ready;      /* 2n */
    mb_split_steps buf;
} search_ctx;

static double eval_choice(const mb_oplevel_env *env, const mb_oplevel_choice *ch, search_ctx *sc, double bound)
{
    sc->buf.n = 0;
    if (steps_impl(env, sc->lv, sc->regions, ch, &sc->buf) < 0)
        return INFINITY;
    return timeline_impl(env, &sc->buf, bound, NULL, sc->ready);
}

/* A window [k,m) can be split when every op in it is local (4-D:
 * spatially; 2-D/3-D: along tokens, features or heads, mb_region_axes) and
 * one tensor enters and one leaves. */
static int window_ok(const mb_graph *g, const mb_split_live *lv, const int *NL, int k, int m)
{
    if (NL[m] - NL[k] != 0)
        return 0;
    int u0 = lv->single[k], u1 = lv->single[m];
    return u0 >= 0 && u1 >= k && u1 < m && mb_split_region_rank(g, u0) && mb_split_region_rank(g, u1);
}

int mb_oplevel_search(const mb_oplevel_env *env, mb_oplevel_result *out, char *err, size_t errlen)
{
    const mb_graph *g = env->g;
    int n = g->n_nodes;
    memset(out, 0, sizeof(*out));
    mb_split_live lv;
    if (mb_split_live_init(&lv, g) < 0) {
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    int *pos = malloc(sizeof(int) * ((size_t)n + 2));
    int *NL = calloc((size_t)n + 1, sizeof(int));
    double *D = calloc((size_t)n + 2, sizeof(double));
    double *Es = calloc((size_t)n + 1, sizeof(double)); /* edge time of ops [v,n) */
    search_ctx sc = {&lv, malloc(sizeof(mb_region) * 2 * (size_t)n), malloc(sizeof(double) * 2 * (size_t)n), {0}};
    if (!pos || !NL || !D || !Es || !sc.regions || !sc.ready) {
        free(pos);
        free(NL);
        free(D);
        free(Es);
        free(sc.regions);
        free(sc.ready);
        mb_split_live_free(&lv);
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    int P = mb_split_cut_positions(&lv, pos);
    if (P == 0 || pos[P - 1] != n)
        pos[P++] = n;
    for (int v = 0; v < n; v++) {
        int fr = mb_split_is_free(g, v);
        NL[v + 1] = NL[v] + (!fr && (!g->nodes[v].local || !mb_split_region_rank(g, v)));
        D[v + 1] = D[v] + (fr ? 0 : env->t_dev[v]);
    }
    for (int v = n - 1; v >= 0; v--)
        Es[v] = Es[v + 1] + (mb_split_is_free(g, v) ? 0 : env->t_edge[v]);
    int64_t out_bytes = 0;
    for (int o = 0; o < g->n_outputs; o++)
        out_bytes += g->nodes[g->outputs[o]].out_bytes;
    /* the outputs come back after the edge's suffix, which starts after the device's prefix */
    double back_ms = ser_ms(&env->down, out_bytes) + env->down.delay_s * 1e3;
    double best = INFINITY;
    mb_oplevel_choice bc = {0};
    /* plain layer-wise cuts first: they give the bound that prunes windows */
    for (int i = 0; i < P; i++) {
        mb_oplevel_choice ch = {pos[i], pos[i], MB_OPLEVEL_COLS, 0, 0};
        double t = eval_choice(env, &ch, &sc, INFINITY);
        out->candidates++;
        if (t < best) {
            best = t;
            bc = ch;
        }
    }
    out->layerwise_ms = best;
    int maxw = env->max_window > 0 ? env->max_window : 16;
    int grid = env->grid > 0 ? env->grid : 20;
    for (int i = 0; i < P; i++) {
        int k = pos[i];
        if (D[k] >= best) { /* the device alone already takes longer */
            out->pruned++;
            continue;
        }
        for (int j = i + 1; j < P && j <= i + maxw; j++) {
            int m = pos[j];
            if (!window_ok(g, &lv, NL, k, m))
                break;
            if (m < n && D[k] + Es[m] + back_ms >= best) { /* a bound no split can beat */
                out->pruned++;
                continue;
            }
            mb_region full = mb_node_full_region(g, lv.single[m]);
            for (int dim = 0; dim < 2; dim++) {
                int64_t X = dim == MB_OPLEVEL_COLS ? mb_region_cols(full) : mb_region_rows(full);
                int64_t last_c = -1;
                for (int gi = 0; gi < grid && X >= 2; gi++) {
                    /* log-spaced on both ends: fine steps near "all on one side" */
                    int half = grid / 2;
                    double r = gi < half ? 0.5 * pow(2.0, -(double)(half - 1 - gi) * 6.0 / (half > 1 ? half - 1 : 1))
                                         : 1.0 - 0.5 * pow(2.0, -(double)(gi - half) * 6.0 / (grid - half > 1 ? grid - half - 1 : 1));
                    int64_t c = (int64_t)llround(r * (double)X);
                    if (c < 1)
                        c = 1;
                    if (c > X - 1)
                        c = X - 1;
                    if (c == last_c)
                        continue;
                    last_c = c;
                    mb_oplevel_choice ch = {k, m, dim, (double)c / (double)X, c};
                    double t = eval_choice(env, &ch, &sc, best);
                    out->candidates++;
                    if (!isfinite(t)) {
                        out->pruned++;
                        continue;
                    }
                    if (t < best) {
                        best = t;
                        bc = ch;
                    }
                }
            }
        }
    }
    out->ch = bc;
    sc.buf.n = 0;
    if (steps_impl(env, &lv, sc.regions, &bc, &sc.buf) == 0)
        out->latency_ms = timeline_impl(env, &sc.buf, INFINITY, out, sc.ready);
    else
        out->latency_ms = INFINITY;
    mb_split_steps_free(&sc.buf);
    free(sc.regions);
    free(sc.ready);
    free(pos);
    free(NL);
    free(D);
    free(Es);
    mb_split_live_free(&lv);
    if (!isfinite(out->latency_ms)) {
        snprintf(err, errlen, "oplevel: no feasible plan for %s", g->name);
        return -1;
    }
    return 0;
}

int mb_oplevel_table_build(const mb_oplevel_env *env, double lo_bps, double hi_bps, int per_octave,
                           mb_oplevel_table *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (lo_bps <= 0 || hi_bps <= lo_bps || per_octave < 1) {
        snprintf(err, errlen, "oplevel: bad bucket range %g..%g bit/s", lo_bps, hi_bps);
        return -1;
    }
    t->lo_bps = lo_bps;
    t->ratio = pow(2.0, 1.0 / per_octave);
    t->n = (int)ceil(log(hi_bps / lo_bps) / log(t->ratio));
    t->ch = calloc((size_t)t->n, sizeof(*t->ch));
    t->ms = calloc((size_t)t->n, sizeof(double));
    if (!t->ch || !t->ms) {
        mb_oplevel_table_free(t);
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    for (int i = 0; i < t->n; i++) {
        mb_oplevel_env e = *env;
        double rate = lo_bps * pow(t->ratio, i + 0.5);
        /* the bucket is the uplink rate; the downlink keeps its ratio to it */
        if (env->up.rate_bps > 0 && env->down.rate_bps > 0)
            e.down.rate_bps = env->down.rate_bps * rate / env->up.rate_bps;
        e.up.rate_bps = rate;
        mb_oplevel_result r;
        if (mb_oplevel_search(&e, &r, err, errlen) < 0) {
            mb_oplevel_table_free(t);
            return -1;
        }
        t->ch[i] = r.ch;
        t->ms[i] = r.latency_ms;
    }
    return 0;
}

const mb_oplevel_choice *mb_oplevel_table_lookup(const mb_oplevel_table *t, double rate_bps)
{
    if (!t->n)
        return NULL;
    int i = rate_bps > t->lo_bps ? (int)floor(log(rate_bps / t->lo_bps) / log(t->ratio)) : 0;
    if (i >= t->n)
        i = t->n - 1;
    return &t->ch[i];
}

void mb_oplevel_table_free(mb_oplevel_table *t)
{
    free(t->ch);
    free(t->ms);
    memset(t, 0, sizeof(*t));
}
