/* Set-up shared by `mecbed plan` and `mecbed compare`: model, topology,
 * node types, profile, cost model, plugins; and --verify. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_policies.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"

void mb_plan_setup_init(mb_plan_setup *s)
{
    memset(s, 0, sizeof(*s));
    s->radio = -1;
    s->msg_overhead_ms = -1;
    s->verify_backend = "cpu";
    s->policy_opts = "";
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

int mb_plan_setup_build(mb_plan_setup *s, char *err, size_t errlen)
{
    char e2[1024];
    if (!s->model) {
        snprintf(err, errlen, "--model is required");
        return -1;
    }
    if (!s->link == !s->topology) {
        snprintf(err, errlen, "give exactly one of --link SPEC and --topology FILE");
        return -1;
    }
    mb_policy_register_builtins();
    for (int i = 0; i < s->n_plugins; i++)
        if (mb_policy_load(s->plugins[i], NULL, err, errlen))
            return -1;
    s->g = mb_model_load(s->model, e2, sizeof(e2));
    if (!s->g) {
        snprintf(err, errlen, "%s", e2);
        return -1;
    }
    if (s->link ? mb_topology_from_link(s->link, &s->topo, e2, sizeof(e2))
                : mb_topology_read(s->topology, &s->topo, e2, sizeof(e2))) {
        snprintf(err, errlen, "%s%s%s", s->link ? "--link: " : "", e2, "");
        return -1;
    }
    for (int i = 0; i < s->topo.n_sites; i++) {
        const char *o = s->type_override[s->topo.sites[i].role];
        if (o)
            snprintf(s->topo.sites[i].node_type, sizeof(s->topo.sites[i].node_type), "%s", o);
    }
    s->device = -1;
    for (int i = 0; i < s->topo.n_sites && s->device < 0; i++)
        if (s->topo.sites[i].role == MB_ROLE_DEVICE)
            s->device = i;
    if (s->device < 0) {
        snprintf(err, errlen, "the topology has no device site");
        return -1;
    }
    if (mb_nodetypes_load_default(&s->types, err, errlen))
        return -1;
    if (s->node_types && mb_nodetypes_read(&s->types, s->node_types, err, errlen))
        return -1;
    if (s->profile) {
        s->prof = mb_profile_read_csv(s->profile, s->g, err, errlen);
        s->prof_source = s->profile;
    } else {
        s->prof = mb_profile_default(s->g, &s->prof_source, err, errlen);
    }
    if (!s->prof)
        return -1;
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    o.radio = s->radio;
    o.frame_interval_s = s->frame_interval_s;
    o.msg_overhead_ms = s->msg_overhead_ms;
    s->cost = mb_cost_new(s->g, &s->topo, s->prof, &s->types, &o, err, errlen);
    return s->cost ? 0 : -1;
}

void mb_plan_setup_free(mb_plan_setup *s)
{
    mb_cost_free(s->cost);
    mb_profile_free(s->prof);
    mb_graph_free(s->g);
    s->cost = NULL;
    s->prof = NULL;
    s->g = NULL;
}

static void free_tensors(mb_tensor **t, int n)
{
    if (!t)
        return;
    for (int i = 0; i < n; i++)
        mb_tensor_free(t[i]);
    free(t);
}

int mb_plan_verify(const mb_plan_setup *s, const mb_plan *p, double *max_abs_err, double *scale,
                   char *err, size_t errlen)
{
    const mb_graph *g = s->g;
    mb_backend *be = mb_backend_new(s->verify_backend, 1, err, errlen);
    if (!be)
        return -1;
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    mb_tensor **in = mb_exec_make_inputs(g, 7);
    mb_tensor **ref = NULL, **got = NULL;
    int rc = -1;
    if (!in) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (mb_exec_run(g, be, in, &ref, NULL, NULL, err, errlen))
        goto out;
    if (mb_plan_execute(p, g, &s->topo, be, in, &got, err, errlen))
        goto out;
    double worst = 0, big = 0;
    for (int k = 0; k < g->n_outputs; k++) {
        worst = fmax(worst, mb_tensor_max_abs_diff(ref[k], got[k]));
        for (int64_t i = 0; i < mb_tensor_numel(ref[k]); i++)
            big = fmax(big, fabs(ref[k]->data[i]));
    }
    *max_abs_err = worst;
    *scale = big;
    rc = 0;
out:
    free_tensors(in, n_in);
    free_tensors(ref, g->n_outputs);
    free_tensors(got, g->n_outputs);
    mb_backend_free(be);
    return rc;
}

int mb_plan_verify_verdict(double max_abs_err, double scale, char *buf, size_t len)
{
    if (max_abs_err == 0) {
        snprintf(buf, len, "bit-exact");
        return 1;
    }
    int ok = max_abs_err <= 1e-5 * fmax(scale, 1e-30);
    snprintf(buf, len,
             "max abs error %.3g (output scale %.3g): %s; the split computes some elements with "
             "differently blocked kernel calls (regions), which changes float summation order",
             max_abs_err, scale, ok ? "within 1e-5 relative" : "EXCEEDS 1e-5 relative");
    return ok;
}

void mb_json_print_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
