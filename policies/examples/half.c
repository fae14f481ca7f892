/* An external partition policy with declared options (plugin ABI version
 * 3): the first `frac` of the operators, in topological order, run on the
 * device and the rest on one server. A baseline to compare cuts against,
 * and the example of typed --policy-opt options in docs/plugins.md:
 *     cc $(pkg-config --cflags mecbed) -shared -fPIC -o half.so half.c
 *     mecbed plan --model resnet18 --policy half --policy-opt frac=0.3 --link rate=20mbit
 * It includes only mecbed/policy.h and links nothing of mecbed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/policy.h"

static const mb_host *host;

/* Declared options: mecbed refuses other keys and values that do not parse
 * as the type before plan is called, and `mecbed policies` lists these. */
static const mb_policy_option half_options[] = {
    {"frac", MB_OPT_NUMBER, "0.5", "fraction of the operators (by topological index) on the device, 0..1"},
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first site that is not a device)"},
    {NULL, 0, NULL, NULL},
};

static int find_server(const mb_policy_input *in, char *err, size_t errlen)
{
    char want[64];
    const char *name = host->opt_string(in->options, "server", NULL, want, sizeof(want));
    for (int s = 0; s < host->topo_n_sites(in->topo); s++) {
        if (s == in->device || host->site_role(in->topo, s) == MB_SITE_DEVICE)
            continue;
        if (!name || !strcmp(host->site_name(in->topo, s), name))
            return s;
    }
    if (name)
        snprintf(err, errlen, "server=%s: no server site of that name", name);
    else
        snprintf(err, errlen, "the topology has no server");
    return -1;
}

static int half_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    double frac = host->opt_double(in->options, "frac", 0.5);
    if (!(frac >= 0 && frac <= 1)) {
        snprintf(err, errlen, "frac=%g: expected a fraction from 0 to 1", frac);
        return -1;
    }
    int srv = find_server(in, err, errlen);
    if (srv < 0)
        return -1;
    int n = host->graph_n_nodes(in->g), n_ops = 0;
    for (int i = 0; i < n; i++)
        n_ops += host->node_kind(in->g, i) == MB_NODE_OP;
    int *site = calloc((size_t)n + 1, sizeof(int));
    if (!site) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = 0, on_dev = 0;
    for (int i = 0; i < n; i++) {
        int is_op = host->node_kind(in->g, i) == MB_NODE_OP;
        site[i] = !is_op || k < frac * n_ops ? in->device : srv;
        on_dev += is_op && site[i] == in->device;
        k += is_op;
    }
    int rc = host->plan_assign(out, in->g, site, err, errlen);
    free(site);
    if (!rc) {
        char note[128];
        snprintf(note, sizeof(note), "first %d of %d ops on the device, the rest on %s", on_dev,
                 n_ops, host->site_name(in->topo, srv));
        host->plan_set_note(out, note);
        host->plan_metric_set(out, "device_ops", on_dev);
    }
    return rc;
}

static const mb_policy_ops half_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "half",
    .summary = "example plugin: the first frac of the ops on the device, the rest on a server",
    .options = half_options,
    .plan = half_plan,
};

const mb_policy_ops *mb_policy_plugin(const mb_host *h);
const mb_policy_ops *mb_policy_plugin(const mb_host *h)
{
    if (h->abi_version < 2 || h->struct_size < sizeof(mb_host))
        return NULL; /* the host table we use is version 2's */
    host = h;
    return &half_ops;
}
