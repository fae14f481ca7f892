/* An external partition policy, built as a shared object and loaded with
 *     mecbed plan --policy-plugin build/plugins/greedy.so --policy greedy ...
 * It links against nothing of mecbed and includes only mecbed/policy.h: the
 * graph, topology and plan are opaque handles read and built through the
 * mb_host table (docs/plugins.md walks through this file).
 *
 * The policy: greedy list scheduling. Ops in topological order; each goes to
 * the device or the server, whichever finishes it first given where its
 * inputs are and when they are ready there (HEFT's rule without the ranking).
 * Not optimal (the min cut is, for the sum of costs), but it reacts to
 * parallel branches, which a cut does not model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/policy.h"

#ifndef EXAMPLE_ABI_VERSION
#define EXAMPLE_ABI_VERSION MB_POLICY_ABI_VERSION /* the ABI test builds a copy with 99 */
#endif

static const mb_host *host;

static int greedy_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    const mb_graph *g = in->g;
    int n = host->graph_n_nodes(g), dev = in->device, srv = -1;
    for (int s = 0; s < host->topo_n_sites(in->topo) && srv < 0; s++)
        if (s != dev && host->site_role(in->topo, s) != MB_SITE_DEVICE)
            srv = s;
    if (srv < 0) {
        snprintf(err, errlen, "the topology has no server");
        return -1;
    }
    int *site = calloc((size_t)n + 1, sizeof(int));
    double *ready_dev = malloc(sizeof(double) * (size_t)n); /* when op i's output is on the device */
    double *ready_srv = malloc(sizeof(double) * (size_t)n);
    if (!site || !ready_dev || !ready_srv) {
        free(site);
        free(ready_dev);
        free(ready_srv);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double free_at[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        int kind = host->node_kind(g, i);
        int64_t bytes = host->node_out_bytes(g, i);
        if (kind != MB_NODE_OP) {
            site[i] = dev;
            ready_dev[i] = 0;
            ready_srv[i] = kind == MB_NODE_CONSTANT ? 0 : host->xfer_ms(in->cost, dev, srv, bytes);
            continue;
        }
        double in_dev = 0, in_srv = 0;
        for (int k = 0; k < host->node_n_inputs(g, i); k++) {
            int p = host->node_input(g, i, k);
            in_dev = fmax(in_dev, ready_dev[p]);
            in_srv = fmax(in_srv, ready_srv[p]);
        }
        double fin_dev = fmax(in_dev, free_at[0]) + host->op_ms(in->cost, dev, i);
        double fin_srv = fmax(in_srv, free_at[1]) + host->op_ms(in->cost, srv, i);
        int on_srv = fin_srv < fin_dev;
        site[i] = on_srv ? srv : dev;
        free_at[on_srv] = on_srv ? fin_srv : fin_dev;
        double xfer = on_srv ? host->xfer_ms(in->cost, srv, dev, bytes)
                             : host->xfer_ms(in->cost, dev, srv, bytes);
        ready_dev[i] = on_srv ? fin_srv + xfer : fin_dev;
        ready_srv[i] = on_srv ? fin_srv : fin_dev + xfer;
    }
    int rc = host->plan_assign(out, g, site, err, errlen);
    if (!rc) {
        int on = 0, n_ops = 0;
        for (int i = 0; i < n; i++) {
            on += site[i] == srv;
            n_ops += host->node_kind(g, i) == MB_NODE_OP;
        }
        host->plan_metric_set(out, "server_ops", on);
        char note[96];
        snprintf(note, sizeof(note), "%d of %d ops on %s", on, n_ops, host->site_name(in->topo, srv));
        host->plan_set_note(out, note);
        host->log(MB_LOG_INFO, "greedy", "%s", note);
    }
    free(site);
    free(ready_dev);
    free(ready_srv);
    return rc;
}

static const mb_policy_ops greedy_ops = {
    .abi_version = EXAMPLE_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "greedy",
    .summary = "example plugin: greedy earliest-finish placement, op by op",
    .option_keys = NULL, /* takes no --policy-opt keys */
    .plan = greedy_plan,
};

/* The one symbol mecbed looks up. Refuse hosts older than the table we use. */
const mb_policy_ops *mb_policy_plugin(const mb_host *h);
const mb_policy_ops *mb_policy_plugin(const mb_host *h)
{
    if (h->abi_version < MB_POLICY_ABI_VERSION || h->struct_size < sizeof(mb_host))
        return NULL;
    host = h;
    return &greedy_ops;
}
