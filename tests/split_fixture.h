/* Shared set-up of the split-policy tests (tile, oplevel, dds): small
 * models in mecbed's text format, a synthetic per-op profile (so plans do
 * not depend on this machine's speed or on timing noise), topologies built
 * in memory, and a check that a plan executed in one process reproduces
 * the unsplit model's output. Header-only: each test binary includes it once. */
#ifndef MECBED_TESTS_SPLIT_FIXTURE_H
#define MECBED_TESTS_SPLIT_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/backend.h"
#include "mecbed/cost.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/plan.h"
#include "mecbed/policy_host.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"

/* Strided convs (gaps between tiles' input rows), pooling with padding, a
 * residual add and a channel concat, then a classifier head. */
static const char fx_tiny_net[] __attribute__((unused)) =
    "mecbed-model 1\nname fx_tiny\nseed 3\n"
    "Input x shape=1,3,40,36\n"
    "Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(8x3x3x3) B=const(8,0.01)\n"
    "Relu r1 c1\n"
    "Conv c2 r1 kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x8x3x3)\n"
    "Relu r2 c2\n"
    "Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(16x16x3x3)\n"
    "Add s3 c3,r2\n"
    "MaxPool p3 s3 kernel=3,3 stride=2,2 pads=1,1,1,1\n"
    "Conv c4a p3 kernel=1,1 W=he(8x16x1x1)\n"
    "Conv c4b p3 kernel=3,3 pads=2,2,2,2 dilation=2,2 W=he(8x16x3x3)\n"
    "Concat k4 c4a,c4b axis=1\n"
    "Conv c5 k4 kernel=1,1 stride=2,2 W=he(16x16x1x1)\n"
    "Relu r5 c5\n"
    "GlobalAveragePool gap r5\n"
    "Flatten fl gap axis=1\n"
    "Gemm fc fl trans_b=1 B=he(10x16) C=const(10,0)\n"
    "output fc\n";

/* Fully convolutional: the output itself is a stack of local ops, so a tile
 * plan's output is the stitched tiles. */
static const char fx_fcn_net[] __attribute__((unused)) =
    "mecbed-model 1\nname fx_fcn\nseed 5\n"
    "Input x shape=1,8,96,88\n"
    "Conv c1 x kernel=5,5 pads=2,2,2,2 W=he(32x8x5x5)\n"
    "Relu r1 c1\n"
    "Conv c2 r1 kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(32x32x3x3)\n"
    "Relu r2 c2\n"
    "AveragePool a2 r2 kernel=3,3 pads=1,1,1,1 count_include_pad=0\n"
    "Conv c3 a2 kernel=3,3 pads=1,1,1,1 W=he(32x32x3x3)\n"
    "Add s3 c3,a2\n"
    "Conv c4 s3 kernel=3,3 pads=1,1,1,1 W=he(16x32x3x3)\n"
    "output c4\n";

static inline mb_graph *fx_model_text(const char *text)
{
    char path[] = "/tmp/mecbed-fx-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char err[256];
    mb_graph *g = mb_model_load(path, err, sizeof err);
    if (!g)
        fprintf(stderr, "fixture model: %s\n", err);
    unlink(path);
    return g;
}

/* Zoo models are built once per test binary (VGG16's 138 M seeded weights
 * take seconds); fx_release() frees them at the end. */
static struct {
    char name[32];
    mb_graph *g;
} fx_zoo_cache[8];

static inline mb_graph *fx_zoo(const char *name)
{
    char err[256];
    for (int i = 0; i < 8; i++)
        if (fx_zoo_cache[i].g && !strcmp(fx_zoo_cache[i].name, name))
            return fx_zoo_cache[i].g;
    for (int i = 0; i < 8; i++)
        if (!fx_zoo_cache[i].g) {
            fx_zoo_cache[i].g = mb_model_load(name, err, sizeof err);
            if (!fx_zoo_cache[i].g)
                fprintf(stderr, "zoo %s: %s\n", name, err);
            snprintf(fx_zoo_cache[i].name, sizeof fx_zoo_cache[i].name, "%s", name);
            return fx_zoo_cache[i].g;
        }
    return NULL;
}

/* The unsplit outputs of the last model verified (per backend), reused by
 * the next verification of the same model. */
static struct {
    uint64_t hash;
    char be[8];
    int n;
    mb_tensor **out;
} fx_ref_cache;

static inline void fx_ref_drop(void)
{
    for (int o = 0; fx_ref_cache.out && o < fx_ref_cache.n; o++)
        mb_tensor_free(fx_ref_cache.out[o]);
    free(fx_ref_cache.out);
    memset(&fx_ref_cache, 0, sizeof(fx_ref_cache));
}

static inline void fx_release(void)
{
    for (int i = 0; i < 8; i++) {
        mb_graph_free(fx_zoo_cache[i].g);
        fx_zoo_cache[i].g = NULL;
    }
    fx_ref_drop();
}

/* ms per op on the profiled machine: 2*MACs at 100 GFLOP/s plus 5 us per op
 * (launch and memory traffic), with ref_gflops = 100 so node types in
 * gflops scale it (phone 50 -> x2, edge-cpu 600 -> /6, cloud-gpu 4000 -> /40). */
static inline mb_profile *fx_profile(const mb_graph *g)
{
    mb_profile *p = mb_profile_new(g);
    for (int i = 0; i < g->n_nodes; i++) {
        int fr = g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
        p->ms[i] = fr ? 0 : 2.0 * (double)g->nodes[i].macs / 100e9 * 1e3 + 0.005;
    }
    p->ref_gflops = 100;
    return p;
}

static inline int fx_add_site(mb_topology *t, const char *name, mb_role role, const char *type)
{
    mb_site *s = &t->sites[t->n_sites];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof s->name, "%s", name);
    s->role = role;
    snprintf(s->node_type, sizeof s->node_type, "%s", type);
    return t->n_sites++;
}

static inline int fx_add_link(mb_topology *t, int a, int b, const char *spec)
{
    char err[256];
    mb_topo_link *l = &t->links[t->n_links];
    l->a = a;
    l->b = b;
    if (mb_linkspec_parse(spec, &l->spec, err, sizeof err) < 0) {
        fprintf(stderr, "fixture link '%s': %s\n", spec, err);
        return -1;
    }
    return t->n_links++;
}

/* device -- edge0 (device_spec); edge0 -- edge1..edge{k-1} (lan_spec);
 * edge0 -- cloud (backbone_spec) when backbone_spec is non-NULL. Links are
 * numbered in that order (the backbone is link k). Edge nodes of type etype. */
static inline void fx_three_tier_typed(mb_topology *t, int k, const char *etype, const char *device_spec,
                                       const char *lan_spec, const char *backbone_spec)
{
    memset(t, 0, sizeof(*t));
    int d = fx_add_site(t, "device", MB_ROLE_DEVICE, "phone");
    int e0 = -1;
    for (int i = 0; i < k; i++) {
        char name[16];
        snprintf(name, sizeof name, "edge%d", i);
        int e = fx_add_site(t, name, MB_ROLE_EDGE, etype);
        if (i == 0) {
            e0 = e;
            fx_add_link(t, d, e, device_spec);
        } else {
            fx_add_link(t, e0, e, lan_spec);
        }
    }
    if (backbone_spec) {
        int c = fx_add_site(t, "cloud", MB_ROLE_CLOUD, "cloud-gpu");
        fx_add_link(t, e0, c, backbone_spec);
    }
}

/* Node types of the tests, fixed here so that plans do not move when the
 * shipped node-type file is re-tuned. */
static inline void fx_types(mb_nodetype_set *set)
{
    static const struct {
        const char *name, *radio;
        double gflops, compute_w, idle_w;
    } k[] = {
        {"phone", "lte", 50, 3.5, 0.5},
        {"jetson-nano", "wifi", 95, 7.25, 1.25},
        {"edge-cpu", "none", 600, 90, 30},
        {"cloud-gpu", "none", 4000, 250, 60},
    };
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        mb_nodetype *t = &set->types[set->n++];
        snprintf(t->name, sizeof t->name, "%s", k[i].name);
        snprintf(t->radio, sizeof t->radio, "%s", k[i].radio);
        snprintf(t->kernels, sizeof t->kernels, "cpu");
        t->gflops = k[i].gflops;
        t->compute_w = k[i].compute_w;
        t->idle_w = k[i].idle_w;
    }
}

static inline void fx_three_tier(mb_topology *t, int k, const char *device_spec, const char *lan_spec,
                                 const char *backbone_spec)
{
    fx_three_tier_typed(t, k, "edge-cpu", device_spec, lan_spec, backbone_spec);
}

static inline mb_cost_model *fx_cost(const mb_graph *g, const mb_topology *t)
{
    char err[256];
    mb_nodetype_set types;
    fx_types(&types);
    mb_profile *p = fx_profile(g);
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    mb_cost_model *c = mb_cost_new(g, t, p, &types, &o, err, sizeof err);
    if (!c)
        fprintf(stderr, "cost model: %s\n", err);
    mb_profile_free(p);
    return c;
}

/* Execute the plan in one process on backend `be_name` and compare with the
 * unsplit model; returns the max abs difference (INFINITY on failure). */
static inline double fx_verify(const mb_plan *p, const mb_graph *g, const mb_topology *t, const char *be_name)
{
    char err[512];
    /* by constructor, not by name: tests link only the objects they use */
    mb_backend *be = !strcmp(be_name, "ref") ? mb_backend_new("ref", 1, NULL, 0) : mb_backend_new("cpu", 1, NULL, 0);
    snprintf(err, sizeof err, "could not create it");
    if (!be) {
        fprintf(stderr, "backend %s: %s\n", be_name, err);
        return INFINITY;
    }
    mb_tensor **in = mb_exec_make_inputs(g, 11);
    mb_tensor **got = NULL;
    double diff = INFINITY;
    uint64_t h = mb_graph_hash(g) ^ (uint64_t)g->n_nodes;
    if (!fx_ref_cache.out || fx_ref_cache.hash != h || strcmp(fx_ref_cache.be, be_name)) {
        fx_ref_drop();
        if (mb_exec_run(g, be, in, &fx_ref_cache.out, NULL, NULL, err, sizeof err) < 0) {
            fprintf(stderr, "unsplit run: %s\n", err);
            fx_ref_cache.out = NULL;
        } else {
            fx_ref_cache.hash = h;
            fx_ref_cache.n = g->n_outputs;
            snprintf(fx_ref_cache.be, sizeof fx_ref_cache.be, "%s", be_name);
        }
    }
    mb_tensor **ref = fx_ref_cache.out;
    if (!ref) {
        /* reported above */
    } else if (mb_plan_execute(p, g, t, be, in, &got, err, sizeof err) < 0) {
        fprintf(stderr, "plan execution: %s\n", err);
    } else {
        diff = 0;
        for (int o = 0; o < g->n_outputs; o++) {
            double d = mb_tensor_max_abs_diff(ref[o], got[o]);
            if (d > diff)
                diff = d;
        }
        if (diff != 0)
            fprintf(stderr, "plan %s on %s: max abs diff %g\n", p->policy, g->name, diff);
    }
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    for (int i = 0; i < n_in; i++)
        mb_tensor_free(in[i]);
    free(in);
    for (int o = 0; got && o < g->n_outputs; o++)
        mb_tensor_free(got[o]);
    free(got);
    mb_backend_free(be);
    return diff;
}

static inline double fx_metric(const mb_plan *p, const char *name)
{
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(p->metrics[i].name, name))
            return p->metrics[i].value;
    return NAN;
}

#endif
