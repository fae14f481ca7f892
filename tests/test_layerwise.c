/* Layer-wise (Neurosurgeon): on chains it equals exhaustive search over
 * every split point (judged by the host's own schedule simulation); the
 * energy objective picks the split with the least device energy; and the
 * sanity order a broken cost model would violate:
 *     mincut <= layerwise <= min(local, offload)   (predicted latency)
 * for every zoo model at several bandwidths, with the pinned profiles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "../policies/builtin.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"
#include "policy_fixture.h"

/* A chain of n ops over a 4-D tensor whose sizes change (conv/pool-like). */
static mb_graph *random_chain(int n)
{
    mb_graph *g = mb_graph_new("chain");
    for (int i = 0; i < n; i++) {
        mb_node nd;
        memset(&nd, 0, sizeof(nd));
        snprintf(nd.name, sizeof(nd.name), "l%d", i);
        nd.type = i ? MB_OP_RELU : MB_OP_INPUT;
        if (i) {
            nd.n_inputs = 1;
            nd.inputs[0] = i - 1;
        }
        nd.out_ndim = 4;
        int64_t hw = 4 + pf_int(60);
        nd.out_dims[0] = 1;
        nd.out_dims[1] = 1 + pf_int(64);
        nd.out_dims[2] = hw;
        nd.out_dims[3] = hw;
        nd.out_bytes = 4 * nd.out_dims[1] * hw * hw;
        nd.local = 0; /* sizes change arbitrarily: every op reads its whole input */
        mb_graph_add(g, &nd);
    }
    g->n_outputs = 1;
    g->outputs[0] = n - 1;
    return g;
}

static mb_plan *run(const mb_policy_ops *ops, const mb_graph *g, const mb_topology *t,
                    const mb_cost_model *c, mb_objective obj)
{
    char err[512];
    mb_plan *p = mb_policy_run(ops, g, t, c, 0, obj, "", err, sizeof(err));
    if (!p)
        fprintf(stderr, "%s: %s\n", ops->name, err);
    assert_non_null(p);
    return p;
}

static void test_equals_exhaustive_on_chains(void **state)
{
    (void)state;
    for (int trial = 0; trial < 200; trial++) {
        int n = 2 + pf_int(40);
        mb_graph *g = random_chain(n);
        mb_profile *prof = pf_profile(g, 0.1, 20);
        mb_topology t;
        char spec[64];
        snprintf(spec, sizeof(spec), "rate=%.0f,rtt=%.1fms", 0.2e6 * pow(1000, pf_uniform()),
                 100 * pf_uniform());
        mb_cost_model *c = pf_cost(g, prof, spec, &t, 1 + 9 * pf_uniform(), 0.1 + pf_uniform());
        assert_non_null(c);
        for (int obj = 0; obj < 2; obj++) {
            mb_plan *lw = run(&mb_policy_layerwise_ops, g, &t, c, (mb_objective)obj);
            double best = INFINITY;
            int where[64];
            char err[256];
            for (int k = 0; k < n; k++) {
                for (int i = 0; i < n; i++)
                    where[i] = i <= k ? 0 : 1;
                mb_plan *p = mb_plan_new("x", g, 0);
                assert_int_equal(mb_plan_assign(p, g, where, err, sizeof(err)), 0);
                assert_int_equal(mb_plan_evaluate(p, c, err, sizeof(err)), 0);
                double v = obj ? p->pred.energy_mj : p->pred.latency_ms;
                best = fmin(best, v);
                mb_plan_free(p);
            }
            double got = obj ? lw->pred.energy_mj : lw->pred.latency_ms;
            assert_float_equal(got, best, 1e-9 * (1 + best));
            mb_plan_free(lw);
        }
        mb_cost_free(c);
        mb_profile_free(prof);
        mb_graph_free(g);
    }
}

static void test_sanity_order_zoo(void **state)
{
    (void)state;
    const char *rates[] = {"rate=1mbit,rtt=50ms", "rate=5.85mbit,rtt=40ms",
                           "rate=18.88mbit,rtt=20ms", "rate=100mbit,rtt=5ms"};
    mb_nodetype_set types;
    char err[512];
    assert_int_equal(mb_nodetypes_load_default(&types, err, sizeof(err)), 0);
    for (const char *const *name = mb_zoo_names(); *name; name++) {
        mb_graph *g = mb_zoo_build(*name, MB_ZOO_SEED, err, sizeof(err));
        assert_non_null(g);
        const char *src;
        mb_profile *prof = mb_profile_default(g, &src, err, sizeof(err));
        assert_non_null(prof);
        assert_string_equal(src, "pinned"); /* policies/profiles/ is checked in */
        for (int r = 0; r < 4; r++) {
            mb_topology t;
            assert_int_equal(mb_topology_from_link(rates[r], &t, err, sizeof(err)), 0);
            mb_cost_model *c = mb_cost_new(g, &t, prof, &types, NULL, err, sizeof(err));
            assert_non_null(c);
            mb_plan *lo = run(&mb_policy_local_ops, g, &t, c, MB_OBJ_LATENCY);
            mb_plan *of = run(&mb_policy_offload_ops, g, &t, c, MB_OBJ_LATENCY);
            mb_plan *lw = run(&mb_policy_layerwise_ops, g, &t, c, MB_OBJ_LATENCY);
            mb_plan *mc = run(&mb_policy_mincut_ops, g, &t, c, MB_OBJ_LATENCY);
            double eps = 1e-9;
            assert_true(mc->pred.latency_ms <= lw->pred.latency_ms + eps);
            assert_true(mc->pred.latency_ms <= mc->pred.cut_value_ms + eps);
            assert_true(lw->pred.latency_ms <=
                        fmin(lo->pred.latency_ms, of->pred.latency_ms) + eps);
            mb_plan_free(lo);
            mb_plan_free(of);
            mb_plan_free(lw);
            mb_plan_free(mc);
            mb_cost_free(c);
        }
        mb_profile_free(prof);
        mb_graph_free(g);
    }
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_exhaustive_on_chains),
        cmocka_unit_test(test_sanity_order_zoo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
