/* Baselines: everything on the device (`local`), everything on one server
 * (`offload`: the input goes up, the result comes back). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "policy_util.h"

int mb_policy_pick_server(const mb_policy_input *in, char *err, size_t errlen)
{
    const mb_topology *t = in->topo;
    char buf[64];
    const char *name = in->host->opt_string(in->options, "server", NULL, buf, sizeof(buf));
    if (name) {
        int s = mb_topology_find(t, name);
        if (s < 0 || s == in->device) {
            snprintf(err, errlen, "server=%s: no such server site in the topology", name);
            return -1;
        }
        return s;
    }
    for (int role = MB_ROLE_EDGE; role <= MB_ROLE_CLOUD; role++)
        for (int s = 0; s < t->n_sites; s++)
            if (t->sites[s].role == (mb_role)role && s != in->device)
                return s;
    snprintf(err, errlen, "the topology has no edge or cloud site to offload to");
    return -1;
}

static int assign_all(const mb_policy_input *in, mb_plan *out, int site, char *err, size_t errlen)
{
    int n = in->g->n_nodes;
    int *where = malloc(sizeof(int) * (size_t)n);
    if (!where) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        where[i] = site;
    int rc = in->host->plan_assign(out, in->g, where, err, errlen);
    free(where);
    return rc;
}

static int local_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    snprintf(out->note, sizeof(out->note), "every op on %s", in->topo->sites[in->device].name);
    return assign_all(in, out, in->device, err, errlen);
}

static int offload_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    int s = mb_policy_pick_server(in, err, errlen);
    if (s < 0)
        return -1;
    snprintf(out->note, sizeof(out->note), "every op on %s", in->topo->sites[s].name);
    return assign_all(in, out, s, err, errlen);
}

static const mb_policy_option local_options[] = {
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_local_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "local",
    .summary = "every op on the device (baseline)",
    .options = local_options,
    .plan = local_plan,
};

static const mb_policy_option offload_options[] = {
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first non-device site)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_offload_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "offload",
    .summary = "every op on the edge server: input up, result down (baseline)",
    .options = offload_options,
    .plan = offload_plan,
};
