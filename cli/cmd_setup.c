/* Set-up shared by `mecbed plan`, `mecbed compare` and `mecbed run`: model,
 * topology, node types, profile, cost model, plugins; and --verify. The
 * options that fill it in are in options.c. */
#include <inttypes.h>
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
    if (s->link ? mb_topology_star(s->link, s->devices > 1 ? s->devices : 1, &s->topo, e2, sizeof(e2))
                : mb_topology_read(s->topology, &s->topo, e2, sizeof(e2))) {
        snprintf(err, errlen, "%s%s%s", s->link ? "--link: " : "", e2, "");
        return -1;
    }
    for (int i = 0; i < s->topo.n_sites; i++) {
        const char *o = s->type_override[s->topo.sites[i].role];
        if (o) {
            snprintf(s->topo.sites[i].node_type, sizeof(s->topo.sites[i].node_type), "%s", o);
            s->topo.sites[i].line = 0;
        }
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
    /* a type named in the topology file is reported at its line, one set by
     * --device-type and the like (line 0) by the site's name */
    if (mb_nodetypes_check_sites(&s->types, &s->topo, s->topology, err, errlen))
        return -1;
    if (s->profile) {
        s->prof = mb_profile_read_csv(s->profile, s->g, err, errlen);
        s->prof_source = s->profile;
        if (s->prof && s->prof->file_hash && s->prof->file_hash != s->prof->graph_hash)
            fprintf(stderr,
                    "mecbed: warning: profile %s was measured on model '%s' with hash %016" PRIx64
                    ", but %s is model '%s' with hash %016" PRIx64
                    ": the same ops, types and output sizes with other weights or attributes; its times may not "
                    "apply\n",
                    s->profile, s->prof->model, s->prof->file_hash, s->model, s->g->name, s->prof->graph_hash);
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
        mb_exec_memory_error(g, "inputs", err, errlen);
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

