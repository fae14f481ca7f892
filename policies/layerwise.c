/* Neurosurgeon (Kang et al., ASPLOS 2017): the best single split point.
 * Ops run in topological order; the device runs a prefix, the server the
 * rest. Like Neurosurgeon, only split points where at most one tensor
 * crosses are candidates (option cuts=any admits every prefix, paying for
 * every tensor that crosses). Latency objective: prefix sums make a decision
 * O(n). Energy objective: each candidate is judged by the host's cost model
 * (mb_host.plan_evaluate), the device energy it reports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "mincut.h"
#include "policy_util.h"

static int assign_prefix(const mb_graph *g, int k, int device, int server, int *where)
{
    for (int i = 0; i < g->n_nodes; i++)
        where[i] = (g->nodes[i].type == MB_OP_INPUT || i <= k) ? device : server;
    return 0;
}

static int layerwise_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    const mb_graph *g = in->g;
    const mb_host *h = in->host;
    int n = g->n_nodes;
    int server = mb_policy_pick_server(in, err, errlen);
    if (server < 0)
        return -1;
    char buf[16];
    const char *cuts = h->opt_string(in->options, "cuts", "single", buf, sizeof(buf));
    int any = !strcmp(cuts, "any");
    if (!any && strcmp(cuts, "single")) {
        snprintf(err, errlen, "cuts=%s: expected single or any", cuts);
        return -1;
    }
    double *cost = calloc((size_t)n + 1, sizeof(double));     /* latency of split after k */
    double *cross = calloc((size_t)n + 2, sizeof(double));    /* difference array of tx */
    int *cnt = calloc((size_t)n + 2, sizeof(int));            /* difference array of count */
    double *suf_te = calloc((size_t)n + 2, sizeof(double));
    double *suf_rx = calloc((size_t)n + 2, sizeof(double));
    int *last = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int *where = malloc(sizeof(int) * (size_t)(n ? n : 1));
    int rc = -1;
    if (!cost || !cross || !cnt || !suf_te || !suf_rx || !last || !where) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* transfer cost is affine in bytes: one route query for each direction */
    double up0 = h->xfer_ms(in->cost, in->device, server, 0);
    double up1 = h->xfer_ms(in->cost, in->device, server, 1000000) - up0;
    double dn0 = h->xfer_ms(in->cost, server, in->device, 0);
    double dn1 = h->xfer_ms(in->cost, server, in->device, 1000000) - dn0;
    for (int i = 0; i < n; i++)
        last[i] = -1;
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k];
            if (v > last[u])
                last[u] = v;
        }
    for (int u = 0; u < n; u++) {
        if (g->nodes[u].type == MB_OP_CONSTANT || last[u] < 0)
            continue;
        int from = g->nodes[u].type == MB_OP_INPUT ? 0 : u; /* inputs are on the device from the start */
        double tx = up0 + up1 * (double)g->nodes[u].out_bytes / 1e6;
        /* u crosses split k for from <= k < last[u] */
        cross[from] += tx;
        cross[last[u]] -= tx;
        cnt[from] += 1;
        cnt[last[u]] -= 1;
    }
    for (int i = n - 1; i >= 0; i--) {
        int free_op = g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
        suf_te[i] = suf_te[i + 1] + (free_op ? 0 : h->op_ms(in->cost, server, i));
        double rx = 0;
        for (int k = 0; k < g->n_outputs; k++)
            if (g->outputs[k] == i && g->nodes[i].type != MB_OP_INPUT &&
                g->nodes[i].type != MB_OP_CONSTANT)
                rx = dn0 + dn1 * (double)g->nodes[i].out_bytes / 1e6;
        suf_rx[i] = suf_rx[i + 1] + rx;
    }
    double pre_td = 0, run_x = 0, best = INFINITY, best_e = INFINITY;
    int run_c = 0, best_k = n - 1;
    /* the cut right after the leading graph inputs (and constants) is always
     * a candidate, whatever the number of inputs: it is Neurosurgeon's "all
     * on the server" option (BERT sends ids, token types and mask) */
    int lead = 0;
    while (lead < n && (g->nodes[lead].type == MB_OP_INPUT || g->nodes[lead].type == MB_OP_CONSTANT))
        lead++;
    for (int k = 0; k < n; k++) {
        int free_op = g->nodes[k].type == MB_OP_INPUT || g->nodes[k].type == MB_OP_CONSTANT;
        pre_td += free_op ? 0 : h->op_ms(in->cost, in->device, k);
        run_x += cross[k];
        run_c += cnt[k];
        if (!any && run_c > 1 && k != lead - 1)
            continue;
        if (free_op && k != n - 1 && g->nodes[k].type == MB_OP_CONSTANT)
            continue;
        double lat = pre_td + run_x + suf_te[k + 1] + suf_rx[k + 1];
        cost[k] = lat;
        if (in->objective == MB_OBJ_ENERGY) {
            mb_plan *cand = mb_plan_new(out->policy, g, in->device);
            if (!cand) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            assign_prefix(g, k, in->device, server, where);
            double e = INFINITY;
            if (!h->plan_assign(cand, g, where, err, errlen) &&
                !h->plan_evaluate(cand, in->cost, err, errlen))
                e = cand->pred.energy_mj;
            mb_plan_free(cand);
            if (e < best_e || (e == best_e && lat < best)) {
                best_e = e;
                best = lat;
                best_k = k;
            }
        } else if (lat < best) {
            best = lat;
            best_k = k;
        }
    }
    assign_prefix(g, best_k, in->device, server, where);
    if (h->plan_assign(out, g, where, err, errlen))
        goto out;
    if (best_k == n - 1)
        snprintf(out->note, sizeof(out->note), "no split: every op on %s",
                 in->topo->sites[in->device].name);
    else
        snprintf(out->note, sizeof(out->note), "split after %s (device runs ops 0..%d, %s the rest)",
                 g->nodes[best_k].name, best_k, in->topo->sites[server].name);
    h->plan_metric_set(out, "split_after", best_k);
    h->plan_metric_set(out, "model_latency_ms", best);
    rc = 0;
out:
    free(cost);
    free(cross);
    free(cnt);
    free(suf_te);
    free(suf_rx);
    free(last);
    free(where);
    return rc;
}

static const mb_policy_option layerwise_options[] = {
    {"cuts", MB_OPT_STRING, "single", "single (only where one tensor crosses) or any"},
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first non-device site)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_layerwise_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "layerwise",
    .summary = "Neurosurgeon: best single split point (objective latency or energy)",
    .options = layerwise_options,
    .plan = layerwise_plan,
};
