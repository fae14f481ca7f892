/* The planning options plan, compare and run share, defined once (the
 * getopt table, its handler and its help text). */
#include "options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_policies.h"

/* Every entry has val 0: getopt_long returns 0 and mb_plan_setup_option
 * dispatches on the name. */
static const struct option plan_options[] = {
    {"model", required_argument, 0, 0},        {"link", required_argument, 0, 0},
    {"topology", required_argument, 0, 0},     {"profile", required_argument, 0, 0},
    {"node-types", required_argument, 0, 0},   {"device-type", required_argument, 0, 0},
    {"edge-type", required_argument, 0, 0},    {"cloud-type", required_argument, 0, 0},
    {"radio", required_argument, 0, 0},        {"frame-interval", required_argument, 0, 0},
    {"msg-overhead", required_argument, 0, 0}, {"objective", required_argument, 0, 0},
    {"policy-opt", required_argument, 0, 0},   {"policy-plugin", required_argument, 0, 0},
    {"verbose", no_argument, 0, 0},
};
#define N_PLAN_OPTIONS (sizeof(plan_options) / sizeof(plan_options[0]))

int mb_plan_options_build(struct option *out, size_t cap, const struct option *own)
{
    size_t n = 0;
    for (size_t i = 0; i < N_PLAN_OPTIONS; i++) {
        if (n + 1 >= cap)
            return -1;
        out[n++] = plan_options[i];
    }
    for (; own && own->name; own++) {
        if (n + 1 >= cap)
            return -1;
        out[n++] = *own;
    }
    out[n] = (struct option){0, 0, 0, 0};
    return 0;
}

void mb_plan_setup_help(FILE *f)
{
    fprintf(f,
            "  --model M            zoo name or model file (required)\n"
            "  --link SPEC          one device and one edge joined by SPEC, e.g. rate=10mbit,rtt=20ms\n"
            "                       (docs/link-spec.md; up./down. prefixes per direction)\n"
            "  --topology FILE      devices, edges, cloud and links (docs/topology.md)\n"
            "  --profile P.csv      per-op profile (default: policies/profiles/<model>.csv if it\n"
            "                       matches, else a cached or freshly measured one)\n"
            "  --node-types FILE    extra node types (INI, docs/node-types.md)\n"
            "  --device-type T, --edge-type T, --cloud-type T\n"
            "                       node type of every site of that role (default phone,\n"
            "                       edge-cpu, cloud-gpu unless the topology names one)\n"
            "  --radio R            device radio: lte, wifi, 3g, none (default: its node type's)\n"
            "  --frame-interval S   seconds between frames for the radio tail (default 0: one frame)\n"
            "  --msg-overhead MS    per-message overhead in ms (default %.2f)\n"
            "  --objective O        latency (default) or energy\n"
            "  --policy-opt K=V,..  options for the policy (e.g. server=edge1, mode=heavy,fps=10)\n"
            "  --policy-plugin P    load a policy plugin (.so path or name in the plugin dir)\n"
            "  --verbose            policies' informational messages\n",
            MB_COST_MSG_OVERHEAD_MS);
}

int mb_plan_setup_option(mb_plan_setup *s, const char *name, const char *arg)
{
    if (!strcmp(name, "model"))
        s->model = arg;
    else if (!strcmp(name, "link"))
        s->link = arg;
    else if (!strcmp(name, "topology"))
        s->topology = arg;
    else if (!strcmp(name, "profile"))
        s->profile = arg;
    else if (!strcmp(name, "node-types"))
        s->node_types = arg;
    else if (!strcmp(name, "device-type"))
        s->type_override[MB_ROLE_DEVICE] = arg;
    else if (!strcmp(name, "edge-type"))
        s->type_override[MB_ROLE_EDGE] = arg;
    else if (!strcmp(name, "cloud-type"))
        s->type_override[MB_ROLE_CLOUD] = arg;
    else if (!strcmp(name, "policy-opt"))
        s->policy_opts = arg;
    else if (!strcmp(name, "verbose")) {
        s->verbose = 1;
        mb_policy_set_verbose(1);
    }
    else if (!strcmp(name, "radio")) {
        s->radio = mb_radio_from_name(arg);
        if (s->radio < 0) {
            fprintf(stderr, "mecbed: --radio %s: expected lte, wifi, 3g or none\n", arg);
            return -1;
        }
    } else if (!strcmp(name, "frame-interval") || !strcmp(name, "msg-overhead")) {
        char *end;
        double v = strtod(arg, &end);
        if (end == arg || *end || !(v >= 0) || !isfinite(v)) {
            fprintf(stderr, "mecbed: --%s %s: expected a number >= 0\n", name, arg);
            return -1;
        }
        if (name[0] == 'f')
            s->frame_interval_s = v;
        else
            s->msg_overhead_ms = v;
    } else if (!strcmp(name, "objective")) {
        if (!strcmp(arg, "latency"))
            s->objective = MB_OBJ_LATENCY;
        else if (!strcmp(arg, "energy"))
            s->objective = MB_OBJ_ENERGY;
        else {
            fprintf(stderr, "mecbed: --objective %s: expected latency or energy\n", arg);
            return -1;
        }
    } else if (!strcmp(name, "policy-plugin")) {
        if (s->n_plugins == 8) {
            fprintf(stderr, "mecbed: at most 8 --policy-plugin options\n");
            return -1;
        }
        s->plugins[s->n_plugins++] = arg;
    } else {
        fprintf(stderr, "mecbed: unknown option --%s\n", name);
        return -1;
    }
    return 0;
}
