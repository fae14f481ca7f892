/* The `tile` policy (D3): HPA device/edge/cloud boundaries with the edge
 * part's local ops tiled across the topology's edge nodes (tile_core.c),
 * turned into the common plan form. Registered like any plugin: it reaches
 * mecbed only through the mb_host table.
 *
 * Options (--policy-opt): k=N uses the first N edge nodes of the topology
 * (default all); max_tiles=N caps tiles per stack. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "tile.h"

typedef struct tile_bind {
    const mb_host *h;
    const mb_cost_model *c;
    int site[MB_TILE_MAX_EDGE + 2]; /* module site -> topology site */
    mb_tile_env env;
    double *buf;
} tile_bind;

static double bind_xfer(void *ctx, int a, int b, int64_t bytes)
{
    tile_bind *tb = ctx;
    return tb->h->xfer_ms(tb->c, tb->site[a], tb->site[b], bytes);
}

static void bind_free(tile_bind *tb)
{
    free(tb->buf);
    tb->buf = NULL;
}

/* Sites and per-op costs of this (model, topology, cost model). */
static int bind_make(const mb_policy_input *in, tile_bind *tb, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    const mb_topology *t = in->topo;
    const mb_graph *g = in->g;
    int n = g->n_nodes;
    memset(tb, 0, sizeof(*tb));
    tb->h = h;
    tb->c = in->cost;
    int k_max = (int)h->opt_double(in->options, "k", MB_TILE_MAX_EDGE);
    int max_tiles = (int)h->opt_double(in->options, "max_tiles", 0);
    if (k_max < 0 || max_tiles < 0) {
        snprintf(err, errlen, "tile: options k and max_tiles must be >= 0");
        return -1;
    }
    int K = 0, cloud = -1;
    tb->site[0] = in->device;
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].role == MB_ROLE_EDGE && K < k_max && K < MB_TILE_MAX_EDGE)
            tb->site[1 + K++] = s;
        else if (t->sites[s].role == MB_ROLE_CLOUD && cloud < 0)
            cloud = s;
    }
    tb->site[K + 1] = cloud;
    tb->buf = malloc(sizeof(double) * (size_t)n * (size_t)(K + 2));
    if (!tb->buf) {
        snprintf(err, errlen, "tile: out of memory");
        return -1;
    }
    mb_tile_env *e = &tb->env;
    e->g = g;
    e->n_edge = K;
    e->has_cloud = cloud >= 0;
    e->xfer_ms = bind_xfer;
    e->ctx = tb;
    e->max_tiles = max_tiles;
    for (int sidx = 0; sidx < K + 2; sidx++) {
        double *row = tb->buf + (size_t)sidx * n;
        int site = tb->site[sidx];
        for (int v = 0; v < n; v++)
            row[v] = site >= 0 ? h->op_ms(in->cost, site, v) : 0.0;
        if (sidx == 0)
            e->t_dev = row;
        else if (sidx <= K)
            e->t_edge[sidx - 1] = row;
        else
            e->t_cloud = cloud >= 0 ? row : NULL;
    }
    return 0;
}

static int emit(const mb_policy_input *in, tile_bind *tb, const mb_tile_result *r, mb_plan *out, char *err,
                size_t errlen)
{
    const mb_host *h = in->host;
    mb_split_steps st = {0};
    if (mb_tile_steps(&tb->env, r, &st) < 0) {
        mb_split_steps_free(&st);
        snprintf(err, errlen, "tile: out of memory building steps");
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < st.n && rc >= 0; i++) {
        const mb_split_step *s = &st.v[i];
        if (s->kind == MB_SPLIT_COMPUTE)
            rc = h->plan_compute(out, s->node, tb->site[s->site], s->r);
        else
            rc = h->plan_send(out, s->node, s->r, tb->site[s->site], tb->site[s->to_site]);
    }
    mb_split_steps_free(&st);
    if (rc < 0) {
        snprintf(err, errlen, "tile: out of memory");
        return -1;
    }
    int stacks = 0, tiles = 0;
    for (int i = 0; i < r->n_segs; i++)
        if (r->segs[i].tiled) {
            stacks++;
            tiles += r->segs[i].n_tiles;
        }
    h->plan_metric_set(out, "k_edges", tb->env.n_edge);
    h->plan_metric_set(out, "boundary_a", r->a);
    h->plan_metric_set(out, "boundary_b", r->b);
    h->plan_metric_set(out, "tiled_stacks", stacks);
    h->plan_metric_set(out, "tiles", tiles);
    h->plan_metric_set(out, "edge_cloud_bytes", (double)r->backbone_bytes);
    h->plan_metric_set(out, "model_ms", r->latency_ms);
    const mb_graph *g = in->g;
    int n = g->n_nodes;
    snprintf(out->note, sizeof(out->note), "device [0,%d) %.60s | edge [%d,%d) on %d node%s, %d tiled stack%s | cloud [%d,%d)",
             r->a, r->a > 0 ? g->nodes[r->a - 1].name : "-", r->a, r->b, tb->env.n_edge,
             tb->env.n_edge == 1 ? "" : "s", stacks, stacks == 1 ? "" : "s", r->b, n);
    return 0;
}

static int tile_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    tile_bind tb;
    if (bind_make(in, &tb, err, errlen) < 0)
        return -1;
    mb_tile_solver *s = mb_tile_solver_new(&tb.env, err, errlen);
    mb_tile_result r = {0};
    int rc = -1;
    if (s && mb_tile_solve(s, &r, err, errlen) == 0)
        rc = emit(in, &tb, &r, out, err, errlen);
    mb_tile_result_free(&r);
    mb_tile_solver_free(s);
    bind_free(&tb);
    return rc;
}

static double prev_metric(const mb_plan *p, const char *name)
{
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(p->metrics[i].name, name))
            return p->metrics[i].value;
    return NAN;
}

/* D3's run-time adjustment: from the previous boundaries, move each by at
 * most one cut position under the new costs, instead of a full search. */
static int tile_replan(const mb_policy_input *in, const mb_plan *prev, mb_plan *out, char *err, size_t errlen)
{
    double a = prev_metric(prev, "boundary_a"), b = prev_metric(prev, "boundary_b");
    if (isnan(a) || isnan(b))
        return tile_plan(in, out, err, errlen);
    tile_bind tb;
    if (bind_make(in, &tb, err, errlen) < 0)
        return -1;
    mb_tile_solver *s = mb_tile_solver_new(&tb.env, err, errlen);
    mb_tile_result r = {0};
    int rc = -1;
    if (s && mb_tile_adjust(s, (int)a, (int)b, &r, err, errlen) == 0) {
        rc = emit(in, &tb, &r, out, err, errlen);
        in->host->plan_metric_set(out, "moved", (r.a != (int)a) + (r.b != (int)b));
    }
    mb_tile_result_free(&r);
    mb_tile_solver_free(s);
    bind_free(&tb);
    return rc;
}

static const mb_policy_option tile_options[] = {
    {"k", MB_OPT_INT, "16", "at most this many edge nodes share the tiles (up to 16)"},
    {"max_tiles", MB_OPT_INT, "0", "at most this many tiles (0: no limit)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_tile_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "tile",
    .summary = "D3: device/edge/cloud boundaries, edge layers tiled across edge nodes with halos",
    .options = tile_options,
    .plan = tile_plan,
    .replan = tile_replan,
};
