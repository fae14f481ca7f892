/* The `oplevel` policy (Intra-DP): a layer-wise cut plus a window of local
 * ops split by columns or rows between the device and one server
 * (oplevel_core.c), in the common plan form.
 *
 * The core searches with its own two-timeline evaluator (fast, pruned);
 * the finalists (the best split window and the best plain cuts) are then
 * scored with the host's mb_plan_evaluate, the model every plan is judged
 * by, and the best kept. Plain cuts are built with plan_assign exactly as the
 * layer-wise policy builds them, so this policy's prediction can never be
 * worse than layer-wise's under the same cost model.
 *
 * Options: server=NAME (default: the first edge site, else the cloud);
 * window=N (cut positions a split window may span, default 16), grid=N
 * (device fractions tried per window, default 20); table=1 precomputes
 * the best plan per uplink-rate bucket in init (0.1 to 1000 Mbit/s,
 * per_octave=N buckets per octave, default 2) and plan/replan then only
 * look the bucket up and score it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "oplevel.h"

typedef struct oplevel_state {
    int server;
    mb_oplevel_table table;
    int have_table;
} oplevel_state;

static int pick_server(const mb_policy_input *in, char *err, size_t errlen)
{
    const mb_topology *t = in->topo;
    char name[64];
    const char *want = in->host->opt_string(in->options, "server", NULL, name, sizeof(name));
    if (want) {
        for (int s = 0; s < t->n_sites; s++)
            if (!strcmp(t->sites[s].name, want) && s != in->device)
                return s;
        snprintf(err, errlen, "oplevel: server=%s is not a site of the topology (other than the device)", want);
        return -1;
    }
    for (int role = MB_ROLE_EDGE; role <= MB_ROLE_CLOUD; role++)
        for (int s = 0; s < t->n_sites; s++)
            if ((int)t->sites[s].role == role && s != in->device)
                return s;
    snprintf(err, errlen, "oplevel: the topology has no edge or cloud site to split with");
    return -1;
}

/* Costs of (device, server) as the core's env; arrays in *buf (caller frees). */
static int make_env(const mb_policy_input *in, int server, mb_oplevel_env *e, double **buf, char *err,
                    size_t errlen)
{
    const mb_host *h = in->host;
    int n = in->g->n_nodes, dev = in->device;
    *buf = malloc(sizeof(double) * 2 * (size_t)n);
    if (!*buf) {
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    memset(e, 0, sizeof(*e));
    e->g = in->g;
    e->t_dev = *buf;
    e->t_edge = *buf + n;
    for (int v = 0; v < n; v++) {
        (*buf)[v] = h->op_ms(in->cost, dev, v);
        (*buf)[n + v] = h->op_ms(in->cost, server, v);
    }
    int ends[2][2] = {{dev, server}, {server, dev}};
    for (int d = 0; d < 2; d++) {
        mb_split_hop *hp = d == 0 ? &e->up : &e->down;
        int a = ends[d][0], b = ends[d][1];
        double delay_ms = h->delay_ms(in->cost, a, b);
        hp->rate_bps = h->rate_bps(in->cost, a, b);
        hp->delay_s = delay_ms / 1e3;
        hp->overhead_s = (h->xfer_ms(in->cost, a, b, 0) - delay_ms) / 1e3;
        if (!isfinite(delay_ms) || !isfinite(hp->overhead_s)) {
            snprintf(err, errlen, "oplevel: no route between %s and %s", in->topo->sites[a].name,
                     in->topo->sites[b].name);
            return -1;
        }
        if (hp->overhead_s < 0)
            hp->overhead_s = 0;
    }
    e->max_window = (int)h->opt_double(in->options, "window", 0);
    e->grid = (int)h->opt_double(in->options, "grid", 0);
    return 0;
}

/* Build a choice into out (cleared first). */
static int build(const mb_policy_input *in, const mb_oplevel_env *e, int server, const mb_oplevel_choice *ch,
                 mb_plan *out, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    const mb_graph *g = in->g;
    int n = g->n_nodes;
    h->plan_clear(out);
    if (ch->m == ch->k) {
        /* a plain cut, made exactly as whole-op policies make it */
        int *site = malloc(sizeof(int) * (size_t)n);
        if (!site) {
            snprintf(err, errlen, "oplevel: out of memory");
            return -1;
        }
        for (int v = 0; v < n; v++)
            site[v] = v < ch->k ? in->device : server;
        int rc = h->plan_assign(out, g, site, err, errlen);
        free(site);
        return rc;
    }
    mb_split_steps st = {0};
    int rc = mb_oplevel_steps(e, ch, &st);
    for (int i = 0; i < st.n && rc >= 0; i++) {
        const mb_split_step *s = &st.v[i];
        int a = s->site ? server : in->device, b = s->to_site ? server : in->device;
        rc = s->kind == MB_SPLIT_COMPUTE ? h->plan_compute(out, s->node, a, s->r) : h->plan_send(out, s->node, s->r, a, b);
    }
    mb_split_steps_free(&st);
    if (rc < 0)
        snprintf(err, errlen, "oplevel: could not build the plan (out of memory)");
    return rc < 0 ? -1 : 0;
}

static double score(const mb_policy_input *in, mb_plan *p, char *err, size_t errlen)
{
    if (in->host->plan_evaluate(p, in->cost, err, errlen) < 0)
        return NAN;
    return in->objective == MB_OBJ_ENERGY ? p->pred.energy_mj : p->pred.latency_ms;
}

static int finish(const mb_policy_input *in, const mb_oplevel_env *e, int server, const mb_oplevel_choice *ch,
                  const mb_oplevel_result *res, mb_plan *out, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    if (build(in, e, server, ch, out, err, errlen) < 0)
        return -1;
    const mb_graph *g = in->g;
    h->plan_metric_set(out, "cut", ch->k);
    h->plan_metric_set(out, "window_end", ch->m);
    h->plan_metric_set(out, "split_dim", ch->m > ch->k ? ch->dim : -1);
    /* the device's share of the split window; a plain cut has no window, so
     * no fraction (not NaN: the metric is absent, an empty sweep column) */
    if (ch->m > ch->k)
        h->plan_metric_set(out, "device_fraction", ch->r);
    if (res) {
        h->plan_metric_set(out, "model_ms", res->latency_ms);
        h->plan_metric_set(out, "candidates", (double)res->candidates);
        h->plan_metric_set(out, "pruned", (double)res->pruned);
    }
    if (ch->m > ch->k)
        snprintf(out->note, sizeof(out->note), "cut before %.60s; %.60s..%.60s split by %s, device %.1f%%",
                 g->nodes[ch->k].name, g->nodes[ch->k].name, g->nodes[ch->m - 1].name,
                 ch->dim == MB_OPLEVEL_COLS ? "columns" : "rows", 100.0 * ch->r);
    else
        snprintf(out->note, sizeof(out->note), "plain cut: device runs [0,%d), server the rest", ch->k);
    return 0;
}

static int oplevel_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    oplevel_state *st = in->state;
    int server = st ? st->server : pick_server(in, err, errlen);
    if (server < 0)
        return -1;
    mb_oplevel_env e;
    double *buf = NULL;
    if (make_env(in, server, &e, &buf, err, errlen) < 0) {
        free(buf);
        return -1;
    }
    int rc = -1;
    if (st && st->have_table) {
        const mb_oplevel_choice *ch = mb_oplevel_table_lookup(&st->table, e.up.rate_bps);
        rc = ch ? finish(in, &e, server, ch, NULL, out, err, errlen) : -1;
        if (rc == 0)
            in->host->plan_metric_set(out, "from_table", 1);
        free(buf);
        return rc;
    }
    mb_oplevel_result res;
    if (mb_oplevel_search(&e, &res, err, errlen) < 0) {
        free(buf);
        return -1;
    }
    /* finalists under the host's own model: the best window, every plain cut */
    mb_oplevel_choice best = res.ch;
    double best_v = INFINITY;
    mb_split_live lv;
    if (mb_split_live_init(&lv, in->g) < 0) {
        free(buf);
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    int n = in->g->n_nodes;
    int *pos = malloc(sizeof(int) * ((size_t)n + 2));
    int P = pos ? mb_split_cut_positions(&lv, pos) : 0;
    if (pos && (P == 0 || pos[P - 1] != n))
        pos[P++] = n;
    /* plain cuts by the core's timeline (the test suite checks it equals
     * the host's evaluation); with the latency objective only those within
     * 1 % of the best go on to the host, with energy all of them do */
    double *core_ms = pos ? malloc(sizeof(double) * (size_t)P) : NULL;
    double best_plain = INFINITY;
    mb_split_steps sb = {0};
    for (int i = 0; i < P && core_ms; i++) {
        mb_oplevel_choice ch = {pos[i], pos[i], MB_OPLEVEL_COLS, 0, 0};
        sb.n = 0;
        core_ms[i] = mb_oplevel_steps(&e, &ch, &sb) == 0 ? mb_oplevel_timeline(&e, &sb, INFINITY, NULL) : INFINITY;
        if (core_ms[i] < best_plain)
            best_plain = core_ms[i];
    }
    mb_split_steps_free(&sb);
    for (int i = -1; i < P && core_ms; i++) {
        mb_oplevel_choice ch = i < 0 ? res.ch : (mb_oplevel_choice){pos[i], pos[i], MB_OPLEVEL_COLS, 0, 0};
        if (i >= 0 && res.ch.m == res.ch.k && res.ch.k == pos[i])
            continue;
        if (i >= 0 && in->objective == MB_OBJ_LATENCY && !(core_ms[i] <= best_plain * 1.01 + 1e-6))
            continue;
        if (build(in, &e, server, &ch, out, err, errlen) < 0)
            continue;
        double v = score(in, out, err, errlen);
        if (!isnan(v) && v < best_v) {
            best_v = v;
            best = ch;
        }
    }
    free(core_ms);
    free(pos);
    mb_split_live_free(&lv);
    rc = isfinite(best_v) ? finish(in, &e, server, &best, &res, out, err, errlen) : -1;
    if (!isfinite(best_v) && !err[0])
        snprintf(err, errlen, "oplevel: no candidate could be evaluated");
    free(buf);
    return rc;
}

static int oplevel_init(const mb_policy_input *in, void **state, char *err, size_t errlen)
{
    oplevel_state *st = calloc(1, sizeof(*st));
    if (!st) {
        snprintf(err, errlen, "oplevel: out of memory");
        return -1;
    }
    st->server = pick_server(in, err, errlen);
    if (st->server < 0) {
        free(st);
        return -1;
    }
    if (in->host->opt_double(in->options, "table", 0) != 0) {
        mb_oplevel_env e;
        double *buf = NULL;
        int per_octave = (int)in->host->opt_double(in->options, "per_octave", 2);
        if (make_env(in, st->server, &e, &buf, err, errlen) < 0 ||
            mb_oplevel_table_build(&e, 0.1e6, 1000e6, per_octave, &st->table, err, errlen) < 0) {
            free(buf);
            free(st);
            return -1;
        }
        free(buf);
        st->have_table = 1;
    }
    *state = st;
    return 0;
}

static void oplevel_fini(void *state)
{
    oplevel_state *st = state;
    if (!st)
        return;
    mb_oplevel_table_free(&st->table);
    free(st);
}

static int oplevel_replan(const mb_policy_input *in, const mb_plan *prev, mb_plan *out, char *err, size_t errlen)
{
    (void)prev; /* the bucket table (or a fresh search) does not depend on the previous plan */
    return oplevel_plan(in, out, err, errlen);
}

static const mb_policy_option oplevel_options[] = {
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first non-device site)"},
    {"window", MB_OPT_INT, "16", "at most this many consecutive ops split together"},
    {"grid", MB_OPT_INT, "20", "device-fraction grid points searched per candidate"},
    {"table", MB_OPT_BOOL, "0", "precompute plans per bandwidth bucket at init"},
    {"per_octave", MB_OPT_INT, "2", "table buckets per octave of bandwidth"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_oplevel_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "oplevel",
    .summary = "Intra-DP: local operators split by columns/rows between device and server, overlapped",
    .options = oplevel_options,
    .init = oplevel_init,
    .fini = oplevel_fini,
    .plan = oplevel_plan,
    .replan = oplevel_replan,
};
