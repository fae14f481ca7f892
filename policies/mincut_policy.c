/* DADS (Hu et al., INFOCOM 2019): s-t min cut of the DAG between the device
 * and one server (flow graph in mincut.c). Heavy-load mode (mode=heavy,
 * fps=F): when the cut's slowest stage cannot sustain F frames/s, DADS's DSH
 * re-cuts with the server's compute made dearer, on a shrinking grid of
 * scale factors, and keeps the plan whose slowest stage (device compute,
 * uplink, server compute) is smallest. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "mincut.h"
#include "policy_util.h"

/* The cut costs with transfer costs affine in bytes (two route queries), the
 * same extraction CIC uses online, so their decision times compare fairly. */
static int fast_costs(const mb_policy_input *in, int server, mb_cut_costs *cc, double te_scale,
                      char *err, size_t errlen)
{
    const mb_graph *g = in->g;
    const mb_host *h = in->host;
    int n = g->n_nodes;
    cc->n = n;
    cc->td = malloc(sizeof(double) * (size_t)n);
    cc->te = malloc(sizeof(double) * (size_t)n);
    cc->tx = malloc(sizeof(double) * (size_t)n);
    cc->rx = malloc(sizeof(double) * (size_t)n);
    if (!cc->td || !cc->te || !cc->tx || !cc->rx) {
        mb_cut_costs_free(cc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double up0 = h->xfer_ms(in->cost, in->device, server, 0);
    double up1 = h->xfer_ms(in->cost, in->device, server, 1000000) - up0;
    double dn0 = h->xfer_ms(in->cost, server, in->device, 0);
    double dn1 = h->xfer_ms(in->cost, server, in->device, 1000000) - dn0;
    if (!isfinite(up0) || !isfinite(dn0)) {
        mb_cut_costs_free(cc);
        snprintf(err, errlen, "no route between %s and %s", in->topo->sites[in->device].name,
                 in->topo->sites[server].name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int free_op = g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
        cc->td[i] = free_op ? 0 : h->op_ms(in->cost, in->device, i);
        cc->te[i] = free_op ? 0 : h->op_ms(in->cost, server, i) * te_scale;
        double mb = (double)g->nodes[i].out_bytes / 1e6;
        cc->tx[i] = up0 + up1 * mb;
        cc->rx[i] = dn0 + dn1 * mb;
    }
    return 0;
}

/* Slowest pipeline stage of an assignment: device compute, uplink bytes, server compute. */
static double slowest_stage(const mb_graph *g, const mb_cut_costs *cc, const int *srv)
{
    double dev = 0, edge = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (srv[i])
            edge += cc->te[i];
        else
            dev += cc->td[i];
    }
    double link = mb_dag_cut_cost(g, cc, srv) - dev - edge; /* the transfer part of the cut */
    return fmax(dev, fmax(link, edge));
}

static int mincut_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    const mb_graph *g = in->g;
    const mb_host *h = in->host;
    int server = mb_policy_pick_server(in, err, errlen);
    if (server < 0)
        return -1;
    char buf[16];
    const char *mode = h->opt_string(in->options, "mode", "light", buf, sizeof(buf));
    int heavy = !strcmp(mode, "heavy");
    if (!heavy && strcmp(mode, "light")) {
        snprintf(err, errlen, "mode=%s: expected light or heavy", mode);
        return -1;
    }
    mb_cut_costs cc;
    if (fast_costs(in, server, &cc, 1.0, err, errlen))
        return -1;
    int n = g->n_nodes;
    int *srv = malloc(sizeof(int) * (size_t)n), *where = malloc(sizeof(int) * (size_t)n);
    int rc = -1;
    if (!srv || !where) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    double value = mb_dag_mincut(g, &cc, srv);
    if (value < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    out->pred.cut_value_ms = value;
    if (heavy) {
        double fps = h->opt_double(in->options, "fps", 0);
        if (!(fps > 0)) {
            snprintf(err, errlen, "mode=heavy needs fps=<target frames per second>");
            goto out;
        }
        double budget = 1e3 / fps, best = slowest_stage(g, &cc, srv);
        int *cand = malloc(sizeof(int) * (size_t)n);
        if (!cand) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        /* DSH: grid over the server-cost scale, refined around the best point */
        double lo = 0.05, hi = 20.0, best_scale = 1.0;
        for (int round = 0; round < 3 && best > budget; round++) {
            for (int k = 0; k <= 8; k++) {
                double s = lo * pow(hi / lo, k / 8.0);
                mb_cut_costs sc;
                if (fast_costs(in, server, &sc, s, err, errlen)) {
                    free(cand);
                    goto out;
                }
                mb_dag_mincut(g, &sc, cand);
                mb_cut_costs_free(&sc);
                double st = slowest_stage(g, &cc, cand);
                if (st < best) {
                    best = st;
                    best_scale = s;
                    memcpy(srv, cand, sizeof(int) * (size_t)n);
                }
            }
            lo = best_scale / pow(hi / lo, 1.0 / 8.0);
            hi = best_scale * pow(hi / lo, 1.0 / 8.0);
        }
        free(cand);
        h->plan_metric_set(out, "slowest_stage_ms", best);
        h->plan_metric_set(out, "max_fps", best > 0 ? 1e3 / best : INFINITY);
        out->pred.cut_value_ms = mb_dag_cut_cost(g, &cc, srv);
    }
    int on_server = 0;
    for (int i = 0; i < n; i++) {
        where[i] = srv[i] ? server : in->device;
        on_server += srv[i] && g->nodes[i].type != MB_OP_CONSTANT;
    }
    if (h->plan_assign(out, g, where, err, errlen))
        goto out;
    snprintf(out->note, sizeof(out->note), "min cut: %d of %d ops on %s, cut value %.3f ms",
             on_server, mb_graph_n_ops(g), in->topo->sites[server].name, out->pred.cut_value_ms);
    h->plan_metric_set(out, "server_ops", on_server);
    rc = 0;
out:
    mb_cut_costs_free(&cc);
    free(srv);
    free(where);
    return rc;
}

static const mb_policy_option mincut_options[] = {
    {"mode", MB_OPT_STRING, "light", "light (min latency) or heavy (DSH: throughput, needs fps)"},
    {"fps", MB_OPT_NUMBER, "", "target frames per second for mode=heavy"},
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first non-device site)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_mincut_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "mincut",
    .summary = "DADS: s-t min cut of the DAG, shared outputs paid once (mode=heavy,fps=F for DSH)",
    .options = mincut_options,
    .plan = mincut_plan,
};
