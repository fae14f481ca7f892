/* Every registered policy x every zoo model x several bandwidths: the plan
 * executed in-process (mb_plan_execute, transfers as copies) reproduces the
 * unsplit model's output on the same backend: bit-exact, or within 1e-5 of
 * the output's scale (counted and printed). Pinned profiles and the shipped
 * node types, so the plans are the ones `mecbed plan` makes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"
#include "policy_fixture.h"

static void free_all(mb_tensor **t, int n)
{
    for (int i = 0; t && i < n; i++)
        mb_tensor_free(t[i]);
    free(t);
}

static void test_every_policy_every_model(void **state)
{
    (void)state;
    const char *links[] = {"rate=1mbit,rtt=40ms", "rate=18.88mbit,rtt=20ms",
                           "rate=100mbit,rtt=5ms"};
    char err[1024];
    mb_policy_register_builtins();
    mb_nodetype_set types;
    assert_int_equal(mb_nodetypes_load_default(&types, err, sizeof(err)), 0);
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof(err));
    assert_non_null(be);
    int plans = 0, exact = 0, split = 0;
    for (const char *const *name = mb_zoo_names(); *name; name++) {
        mb_graph *g = mb_zoo_build(*name, MB_ZOO_SEED, err, sizeof(err));
        assert_non_null(g);
        mb_profile *prof = mb_profile_default(g, NULL, err, sizeof(err));
        assert_non_null(prof);
        int n_in = 0;
        for (int i = 0; i < g->n_nodes; i++)
            n_in += g->nodes[i].type == MB_OP_INPUT;
        mb_tensor **in = mb_exec_make_inputs(g, 3), **ref = NULL;
        assert_int_equal(mb_exec_run(g, be, in, &ref, NULL, NULL, err, sizeof(err)), 0);
        double scale = 0;
        for (int k = 0; k < g->n_outputs; k++)
            for (int64_t i = 0; i < mb_tensor_numel(ref[k]); i++)
                scale = fmax(scale, fabs(ref[k]->data[i]));
        for (int l = 0; l < 3; l++) {
            mb_topology t;
            assert_int_equal(mb_topology_from_link(links[l], &t, err, sizeof(err)), 0);
            mb_cost_model *c = mb_cost_new(g, &t, prof, &types, NULL, err, sizeof(err));
            assert_non_null(c);
            for (int i = 0; i < mb_policy_count(); i++) {
                const mb_policy_ops *ops = mb_policy_at(i);
                mb_plan *p = mb_policy_run(ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err, sizeof(err));
                if (!p)
                    fprintf(stderr, "%s on %s, %s: %s\n", ops->name, *name, links[l], err);
                assert_non_null(p);
                mb_tensor **got = NULL;
                int rc = mb_plan_execute(p, g, &t, be, in, &got, err, sizeof(err));
                if (rc)
                    fprintf(stderr, "%s on %s, %s: %s\n", ops->name, *name, links[l], err);
                assert_int_equal(rc, 0);
                double d = 0;
                for (int k = 0; k < g->n_outputs; k++)
                    d = fmax(d, mb_tensor_max_abs_diff(ref[k], got[k]));
                if (d > 1e-5 * scale)
                    fprintf(stderr, "%s on %s, %s: max abs err %g (scale %g)\n", ops->name, *name,
                            links[l], d, scale);
                assert_true(d <= 1e-5 * scale);
                plans++;
                exact += d == 0;
                split += p->pred.bytes_up > 0 && p->pred.device_compute_ms > 0;
                free_all(got, g->n_outputs);
                mb_plan_free(p);
            }
            mb_cost_free(c);
        }
        free_all(in, n_in);
        free_all(ref, g->n_outputs);
        mb_profile_free(prof);
        mb_graph_free(g);
    }
    printf("%d plans verified (%d policies), %d bit-exact, %d split between device and server\n",
           plans, mb_policy_count(), exact, split);
    assert_true(split > 0);
    mb_backend_free(be);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_policy_every_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
