/* Shared set-up of pcore's policy tests: random DAGs, in-memory node types,
 * synthetic profiles and cost models, so results depend on neither this
 * machine's speed nor timing noise. Header-only; each test includes it once. */
#ifndef MECBED_TESTS_POLICY_FIXTURE_H
#define MECBED_TESTS_POLICY_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/cost.h"
#include "mecbed/graph.h"
#include "mecbed/nodetype.h"
#include "mecbed/plan.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"

static uint64_t pf_rng = 0x9e3779b97f4a7c15ull;

static __attribute__((unused)) double pf_uniform(void)
{
    return mb_rng_uniform(&pf_rng);
}

static __attribute__((unused)) int pf_int(int n)
{
    int v = (int)(mb_rng_uniform(&pf_rng) * n);
    return v >= n ? n - 1 : v;
}

/* A random DAG of n ops (node 0 is the input; structure only, no shapes):
 * each op takes 1..3 earlier nodes; out_bytes random; the last node and
 * every node without a consumer are outputs (at most MB_MAX_OUTPUTS). */
static __attribute__((unused)) mb_graph *pf_random_dag(int n)
{
    mb_graph *g = mb_graph_new("random");
    for (int i = 0; i < n; i++) {
        mb_node nd;
        memset(&nd, 0, sizeof(nd));
        snprintf(nd.name, sizeof(nd.name), "n%d", i);
        if (i == 0) {
            nd.type = MB_OP_INPUT;
        } else {
            nd.type = MB_OP_CONCAT;
            int k = 1 + pf_int(i < 3 ? i : 3);
            for (int j = 0; j < k; j++) {
                int u = j == 0 ? i - 1 - pf_int(i < 2 ? 1 : 2) : pf_int(i);
                int dup = 0;
                for (int q = 0; q < nd.n_inputs; q++)
                    dup |= nd.inputs[q] == u;
                if (!dup)
                    nd.inputs[nd.n_inputs++] = u;
            }
        }
        nd.out_bytes = 1000 + (int64_t)(pf_uniform() * 2e6);
        mb_graph_add(g, &nd);
    }
    char *has = calloc((size_t)(n > 0 ? n : 1), 1);
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++)
            has[g->nodes[v].inputs[k]] = 1;
    g->n_outputs = 0;
    for (int v = n - 1; v >= 1 && g->n_outputs < MB_MAX_OUTPUTS; v--)
        if (!has[v])
            g->outputs[g->n_outputs++] = v;
    free(has);
    return g;
}

/* A whole-tensor op for hand-computed cost cases: 2-D output of `bytes`
 * (float32), inputs in0 and in1 (-1: none; both -1: an Input). Whole
 * tensors only: every region is the full one. Returns its index. */
static __attribute__((unused)) int pf_op(mb_graph *g, const char *name, int64_t bytes, int in0, int in1)
{
    mb_node nd;
    memset(&nd, 0, sizeof(nd));
    snprintf(nd.name, sizeof(nd.name), "%s", name);
    nd.type = in0 < 0 ? MB_OP_INPUT : MB_OP_CONCAT;
    if (in0 >= 0)
        nd.inputs[nd.n_inputs++] = in0;
    if (in1 >= 0)
        nd.inputs[nd.n_inputs++] = in1;
    nd.out_ndim = 2;
    nd.out_dims[0] = 1;
    nd.out_dims[1] = bytes / 4;
    nd.out_bytes = bytes;
    return mb_graph_add(g, &nd);
}

/* Node types with fixed speed factors (no gflops: independent of the profile's machine). */
static __attribute__((unused)) void pf_types(mb_nodetype_set *set, double dev_speed, double edge_speed)
{
    memset(set, 0, sizeof(*set));
    const char *names[] = {"phone", "edge-cpu", "cloud-gpu"};
    double speed[] = {dev_speed, edge_speed, edge_speed / 4};
    double cw[] = {3.0, 150, 300}, iw[] = {0.6, 60, 40};
    for (int i = 0; i < 3; i++) {
        mb_nodetype *t = &set->types[set->n++];
        snprintf(t->name, sizeof(t->name), "%s", names[i]);
        t->speed = speed[i];
        t->compute_w = cw[i];
        t->idle_w = iw[i];
        snprintf(t->radio, sizeof(t->radio), "%s", i == 0 ? "lte" : "none");
        snprintf(t->kernels, sizeof(t->kernels), "cpu");
    }
}

/* A profile with random op times in [lo, hi) ms (inputs/constants 0). */
static __attribute__((unused)) mb_profile *pf_profile(const mb_graph *g, double lo, double hi)
{
    mb_profile *p = mb_profile_new(g);
    p->ref_gflops = 100;
    for (int i = 0; i < g->n_nodes; i++)
        p->ms[i] = (g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT)
                       ? 0
                       : lo + (hi - lo) * pf_uniform();
    return p;
}

/* Cost model over one device-edge link (spec) with the types above. */
static __attribute__((unused)) mb_cost_model *pf_cost(const mb_graph *g, const mb_profile *p,
                                                      const char *spec, mb_topology *topo,
                                                      double dev_speed, double edge_speed)
{
    char err[512];
    if (mb_topology_from_link(spec, topo, err, sizeof(err))) {
        fprintf(stderr, "pf_cost: %s\n", err);
        return NULL;
    }
    mb_nodetype_set types;
    pf_types(&types, dev_speed, edge_speed);
    mb_cost_model *c = mb_cost_new(g, topo, p, &types, NULL, err, sizeof(err));
    if (!c)
        fprintf(stderr, "pf_cost: %s\n", err);
    return c;
}

/* The hand-summed fork of test_plan (shared link) and test_energy (plan
 * energy): x -> a1 (100000 B), a2 (50000 B) -> c (4000 B); profile a1 2 ms,
 * a2 3 ms, c 1 ms; device 2x, edge 0.5x those times (pf_types); one link
 * rate=8mbit,delay=5ms with 0.25 ms per message. The plan: a1 and a2 on the
 * device, both sent up, c on the edge, c sent back; evaluated. */
typedef struct pf_fork {
    mb_graph *g;
    mb_profile *prof;
    mb_topology topo;
    mb_cost_model *cm;
    mb_plan *p;
    int x, a1, a2, c;
} pf_fork;

static __attribute__((unused)) void pf_fork_free(pf_fork *f)
{
    mb_plan_free(f->p);
    mb_cost_free(f->cm);
    mb_profile_free(f->prof);
    mb_graph_free(f->g);
    memset(f, 0, sizeof(*f));
}

/* 0, or -1 with the reason in err (everything freed). */
static __attribute__((unused)) int pf_fork_new(pf_fork *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    mb_graph *g = f->g = mb_graph_new("fork");
    f->x = pf_op(g, "x", 4000, -1, -1);
    f->a1 = pf_op(g, "a1", 100000, f->x, -1);
    f->a2 = pf_op(g, "a2", 50000, f->x, -1);
    f->c = pf_op(g, "c", 4000, f->a1, f->a2);
    g->n_outputs = 1;
    g->outputs[0] = f->c;
    f->prof = mb_profile_new(g);
    f->prof->ref_gflops = 100;
    f->prof->ms[f->a1] = 2, f->prof->ms[f->a2] = 3, f->prof->ms[f->c] = 1;
    if (mb_topology_from_link("rate=8mbit,delay=5ms", &f->topo, err, errlen)) {
        pf_fork_free(f);
        return -1;
    }
    mb_nodetype_set types;
    pf_types(&types, 2.0, 0.5);
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    o.msg_overhead_ms = 0.25;
    f->cm = mb_cost_new(g, &f->topo, f->prof, &types, &o, err, errlen);
    if (!f->cm) {
        pf_fork_free(f);
        return -1;
    }
    mb_plan *p = f->p = mb_plan_new("t", g, 0);
    mb_plan_compute(p, f->a1, 0, mb_node_full_region(g, f->a1));
    mb_plan_compute(p, f->a2, 0, mb_node_full_region(g, f->a2));
    mb_plan_send(p, f->a1, mb_node_full_region(g, f->a1), 0, 1);
    mb_plan_send(p, f->a2, mb_node_full_region(g, f->a2), 0, 1);
    mb_plan_compute(p, f->c, 1, mb_node_full_region(g, f->c));
    mb_plan_send(p, f->c, mb_node_full_region(g, f->c), 1, 0);
    if (mb_plan_evaluate(p, f->cm, err, errlen)) {
        pf_fork_free(f);
        return -1;
    }
    return 0;
}

#endif
