/* The `dds` policy: every device of the topology plays the resource game of
 * dds_core.c for one shared server; the plan is the planned device's min
 * cut under the share it holds at the equilibrium.
 *
 * Each device's latency curve T_i(share) comes from the DADS min cut of
 * mincut.c (the same cut the `mincut` policy makes) with the server's op
 * times scaled by 1/share. Devices with identical costs (same node type and
 * link) share one curve, so 64 devices on four kinds of link cost four
 * envelopes, not 64.
 *
 * Options: capacity=F (server capacity, 1 = the profiled server; default 1),
 * price=P (ms per unit of capacity bid; default 5% of the mean all-local
 * latency, so a whole server costs a device a twentieth of running alone),
 * eps=E (bid change, as a fraction of F, that ends the iteration; 1e-4),
 * rounds=N (at most; 200), server=NAME (default: the first edge site, else
 * the cloud), shares=game|equal (equal: the equal-shares baseline, every
 * device's cut planned for F/N of the server instead of its equilibrium
 * share).
 *
 * The plan carries the device's share of the server (mb_plan.share) when
 * its cut uses it: a node serving several devices runs each at its share
 * (runtime/rt_exec.c), and the run predicts the plan under it
 * (mb_plan_evaluate_shared), the game's own model.
 *
 * The host predicts the returned plan at its share (policies/registry.c;
 * metric latency_alone_ms keeps the full-speed figure); the game's own
 * latency at the equilibrium share is the metric latency_shared_ms, next to
 * the game's figures (rounds, server_util, mean/equal/fixed latencies over
 * all devices). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "dds.h"
#include "mincut.h"

typedef struct dds_world {
    const mb_graph *g;
    int n_dev, n_class;
    int dev_site[MB_MAX_SITES];
    int dev_class[MB_MAX_SITES];
    mb_cut_costs cc[MB_MAX_SITES]; /* per class */
    mb_dds_curve curve[MB_MAX_SITES];
    double *te_scaled;
    int *server_of;
} dds_world;

static int class_same(const mb_cut_costs *a, const mb_cut_costs *b)
{
    size_t sz = sizeof(double) * (size_t)a->n;
    return !memcmp(a->td, b->td, sz) && !memcmp(a->te, b->te, sz) && !memcmp(a->tx, b->tx, sz) &&
           !memcmp(a->rx, b->rx, sz);
}

/* Optimal cut of class `cls` with server times scaled by y = 1/share. */
static int world_cut(void *ctx, int cls, double y, mb_dds_line *line)
{
    dds_world *w = ctx;
    const mb_cut_costs *cc = &w->cc[cls];
    int n = cc->n;
    for (int v = 0; v < n; v++)
        w->te_scaled[v] = cc->te[v] * y;
    mb_cut_costs sc = {n, cc->td, w->te_scaled, cc->tx, cc->rx};
    double val = mb_dag_mincut(w->g, &sc, w->server_of);
    if (val < 0)
        return -1;
    double work = 0;
    for (int v = 0; v < n; v++)
        if (w->server_of[v])
            work += cc->te[v];
    line->w = work;
    line->a = val - y * work;
    return 0;
}

static void world_free(dds_world *w)
{
    for (int c = 0; c < w->n_class; c++) {
        mb_cut_costs_free(&w->cc[c]);
        mb_dds_curve_free(&w->curve[c]);
    }
    free(w->te_scaled);
    free(w->server_of);
}

static int pick_server(const mb_policy_input *in, char *err, size_t errlen)
{
    const mb_topology *t = in->topo;
    char name[64];
    const char *want = in->host->opt_string(in->options, "server", NULL, name, sizeof(name));
    if (want) {
        for (int s = 0; s < t->n_sites; s++)
            if (!strcmp(t->sites[s].name, want) && t->sites[s].role != MB_ROLE_DEVICE)
                return s;
        snprintf(err, errlen, "dds: server=%s is not an edge or cloud site of the topology", want);
        return -1;
    }
    /* the shared server: the first edge site, else the cloud */
    for (int role = MB_ROLE_EDGE; role <= MB_ROLE_CLOUD; role++)
        for (int s = 0; s < t->n_sites; s++)
            if ((int)t->sites[s].role == role)
                return s;
    snprintf(err, errlen, "dds: the topology has no edge or cloud site to share");
    return -1;
}

static int world_make(const mb_policy_input *in, int server, double F, dds_world *w, char *err, size_t errlen)
{
    const mb_topology *t = in->topo;
    memset(w, 0, sizeof(*w));
    w->g = in->g;
    int n = in->g->n_nodes;
    w->te_scaled = malloc(sizeof(double) * (size_t)n);
    w->server_of = malloc(sizeof(int) * (size_t)n);
    if (!w->te_scaled || !w->server_of) {
        snprintf(err, errlen, "dds: out of memory");
        return -1;
    }
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].role != MB_ROLE_DEVICE)
            continue;
        mb_cut_costs cc;
        if (mb_cut_costs_from_model(in->cost, s, server, &cc, err, errlen) < 0)
            return -1;
        int cls = -1;
        for (int c = 0; c < w->n_class && cls < 0; c++)
            if (class_same(&w->cc[c], &cc))
                cls = c;
        if (cls < 0) {
            cls = w->n_class++;
            w->cc[cls] = cc;
            /* share from F (whole server) down to 1e-4 F: the bid grid's range */
            if (mb_dds_curve_build(&w->curve[cls], world_cut, w, cls, 1.0 / F, 1e4 / F) < 0) {
                snprintf(err, errlen, "dds: min cut failed (out of memory)");
                return -1;
            }
            double local = 0;
            for (int v = 0; v < n; v++)
                local += cc.td[v];
            mb_dds_line all_local = {local, 0};
            mb_dds_curve *cv = &w->curve[cls];
            int have = 0;
            for (int i = 0; i < cv->n; i++)
                have |= cv->v[i].w == 0;
            if (!have) {
                mb_dds_line *nv = realloc(cv->v, sizeof(*nv) * ((size_t)cv->n + 1));
                if (!nv) {
                    snprintf(err, errlen, "dds: out of memory");
                    return -1;
                }
                cv->v = nv;
                cv->v[cv->n++] = all_local;
                cv->cap = cv->n;
            }
        } else {
            mb_cut_costs_free(&cc);
        }
        w->dev_site[w->n_dev] = s;
        w->dev_class[w->n_dev++] = cls;
    }
    if (w->n_dev == 0) {
        snprintf(err, errlen, "dds: the topology has no device site");
        return -1;
    }
    return 0;
}

static int dds_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    int server = pick_server(in, err, errlen);
    if (server < 0)
        return -1;
    double F = h->opt_double(in->options, "capacity", 1.0);
    if (!(F > 0)) {
        snprintf(err, errlen, "dds: capacity must be > 0");
        return -1;
    }
    dds_world w;
    int rc = -1;
    const mb_dds_curve **curves = NULL;
    mb_dds_result res = {0};
    int *site_of = NULL;
    if (world_make(in, server, F, &w, err, errlen) < 0)
        goto out;
    int me = -1;
    for (int i = 0; i < w.n_dev; i++)
        if (w.dev_site[i] == in->device)
            me = i;
    if (me < 0) {
        snprintf(err, errlen, "dds: the planned site %s is not a device", in->topo->sites[in->device].name);
        goto out;
    }
    double mean_local = 0;
    for (int i = 0; i < w.n_dev; i++)
        mean_local += mb_dds_curve_eval(&w.curve[w.dev_class[i]], 0) / w.n_dev;
    curves = malloc(sizeof(*curves) * (size_t)w.n_dev);
    site_of = malloc(sizeof(int) * (size_t)in->g->n_nodes);
    if (!curves || !site_of) {
        snprintf(err, errlen, "dds: out of memory");
        goto out;
    }
    for (int i = 0; i < w.n_dev; i++)
        curves[i] = &w.curve[w.dev_class[i]];
    mb_dds_game game = {
        .n = w.n_dev,
        .F = F,
        .price = h->opt_double(in->options, "price", 0.05 * mean_local),
        .eps = h->opt_double(in->options, "eps", 1e-4),
        .max_rounds = (int)h->opt_double(in->options, "rounds", 200),
        .curve = curves,
    };
    if (game.price < 0 || game.eps <= 0) {
        snprintf(err, errlen, "dds: price must be >= 0 and eps > 0");
        goto out;
    }
    char mbuf[16];
    const char *mode = h->opt_string(in->options, "shares", "game", mbuf, sizeof mbuf);
    int equal = !strcmp(mode, "equal");
    if (!equal && strcmp(mode, "game")) {
        snprintf(err, errlen, "dds: shares=%s: game (the equilibrium) or equal (F/N each)", mode);
        goto out;
    }
    if (mb_dds_solve(&game, &res) < 0) {
        snprintf(err, errlen, "dds: out of memory");
        goto out;
    }
    /* my cut under my equilibrium share, or under F/N (the equal-shares baseline) */
    double share = equal ? F / w.n_dev : res.share[me];
    mb_dds_line mine = mb_dds_curve_best(curves[me], share);
    int n = in->g->n_nodes;
    if (share > 0 && mine.w > 0) {
        mb_dds_line chk;
        if (world_cut(&w, w.dev_class[me], 1.0 / share, &chk) < 0) {
            snprintf(err, errlen, "dds: min cut failed");
            goto out;
        }
        for (int v = 0; v < n; v++)
            site_of[v] = w.server_of[v] ? server : in->device;
    } else {
        for (int v = 0; v < n; v++)
            site_of[v] = in->device;
    }
    if (h->plan_assign(out, in->g, site_of, err, errlen) < 0)
        goto out;
    /* The share the node gives this device when it serves several
     * (mb_plan.share: a fraction of the node, whose speed is the profiled
     * server's, i.e. capacity 1); only when the cut uses the server. */
    if (share > 0 && mine.w > 0)
        out->share[server] = fmin(1.0, share);
    int cuts = 0;
    for (int c = 0; c < w.n_class; c++)
        cuts += w.curve[c].cuts;
    h->plan_metric_set(out, "n_devices", w.n_dev);
    h->plan_metric_set(out, "device_classes", w.n_class);
    h->plan_metric_set(out, "mincuts", cuts);
    h->plan_metric_set(out, "rounds", res.rounds);
    h->plan_metric_set(out, "converged", res.converged);
    h->plan_metric_set(out, "price", game.price);
    h->plan_metric_set(out, "bid", res.f[me]);
    h->plan_metric_set(out, "share", share);
    h->plan_metric_set(out, "latency_shared_ms", equal ? mb_dds_curve_eval(curves[me], share) : res.latency[me]);
    h->plan_metric_set(out, "server_util", res.util);
    h->plan_metric_set(out, "mean_ms", equal ? res.equal_mean_ms : res.mean_ms);
    h->plan_metric_set(out, "max_ms", equal ? res.equal_max_ms : res.max_ms);
    h->plan_metric_set(out, "equal_mean_ms", res.equal_mean_ms);
    h->plan_metric_set(out, "fixed_mean_ms", res.fixed_mean_ms);
    h->plan_metric_set(out, "gain_vs_equal", res.equal_mean_ms / res.mean_ms);
    h->plan_metric_set(out, "gain_vs_fixed", res.fixed_mean_ms / res.mean_ms);
    if (equal)
        snprintf(out->note, sizeof(out->note),
                 "%d devices, equal shares: this device holds %.3f of the server; mean %.2f ms (equilibrium %.2f)",
                 w.n_dev, share, res.equal_mean_ms, res.mean_ms);
    else
        snprintf(out->note, sizeof(out->note),
                 "%d devices, %s after %d rounds; this device holds %.3f of the server; mean %.2f ms (equal %.2f, "
                 "fixed %.2f)",
                 w.n_dev, res.converged ? "equilibrium" : "NOT converged", res.rounds, share, res.mean_ms,
                 res.equal_mean_ms, res.fixed_mean_ms);
    rc = 0;
out:
    mb_dds_result_free(&res);
    free(curves);
    free(site_of);
    world_free(&w);
    return rc;
}

static const mb_policy_option dds_options[] = {
    {"server", MB_OPT_STRING, "", "the shared server by name (default: the first edge)"},
    {"capacity", MB_OPT_NUMBER, "1", "server capacity F in units of its node type (> 0)"},
    {"price", MB_OPT_NUMBER, "", "unit price p of a bid (default: 0.05 x the mean local latency)"},
    {"eps", MB_OPT_NUMBER, "1e-4", "convergence: no bid moves by more than eps"},
    {"rounds", MB_OPT_INT, "200", "at most this many best-response rounds"},
    {"shares", MB_OPT_STRING, "game", "game: the equilibrium's shares; equal: F/N each, every cut re-planned for it (the baseline)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_dds_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "dds",
    .summary = "DDS: devices bid for shares of one server; best response to a Nash equilibrium",
    .options = dds_options,
    .plan = dds_plan,
};
