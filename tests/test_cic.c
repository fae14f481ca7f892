/* CIC: the compressed min cut returns exactly mincut's cut value for every
 * zoo model at random bandwidths, through both of its paths (the envelope
 * when only the rate changed, the compressed graph when delays changed too);
 * the splitting model file round-trips; decisions are >= 20x faster than
 * mincut on ResNet-152 and DenseNet-121 (median of many decisions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "../policies/builtin.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"
#include "policy_fixture.h"

static mb_plan *plan_with(mb_policy_session *s)
{
    char err[512];
    mb_plan *p = mb_policy_session_plan(s, NULL, err, sizeof(err));
    if (!p)
        fprintf(stderr, "%s\n", err);
    assert_non_null(p);
    return p;
}

static void check_model(const char *name, int rounds)
{
    char err[512];
    mb_graph *g = mb_zoo_build(name, MB_ZOO_SEED, err, sizeof(err));
    assert_non_null(g);
    mb_profile *prof = pf_profile(g, 0.05, 3.0);
    mb_topology topo;
    mb_cost_model *c = pf_cost(g, prof, "rate=10mbit,rtt=20ms", &topo, 8.0, 0.3);
    assert_non_null(c);
    mb_policy_session *sm = mb_policy_session_new(&mb_policy_mincut_ops, g, &topo, c, 0,
                                                  MB_OBJ_LATENCY, "", err, sizeof(err));
    mb_policy_session *sc = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0,
                                                  MB_OBJ_LATENCY, "", err, sizeof(err));
    assert_non_null(sm);
    assert_non_null(sc);
    int envelope_hits = 0, fallback_hits = 0;
    for (int r = 0; r < rounds; r++) {
        /* log-uniform rates 0.05 .. 1000 Mbit/s; every third round asymmetric */
        double up = 0.05e6 * pow(2e4, pf_uniform());
        double down = r % 3 == 2 ? 0.05e6 * pow(2e4, pf_uniform()) : up;
        if (r % 5 == 4) { /* a delay change: outside the splitting model */
            mb_link_spec spec;
            char sp[128];
            snprintf(sp, sizeof(sp), "rate=%.0f,rtt=%.3fms", up, 1 + 80 * pf_uniform());
            assert_int_equal(mb_linkspec_parse(sp, &spec, err, sizeof(err)), 0);
            assert_int_equal(mb_cost_set_link(c, 0, &spec, err, sizeof(err)), 0);
        } else {
            mb_cost_set_rate(c, 0, up, down);
        }
        mb_plan *pm = plan_with(sm), *pc = plan_with(sc);
        double vm = pm->pred.cut_value_ms, vc = pc->pred.cut_value_ms;
        if (fabs(vm - vc) > 1e-7 * fmax(1, vm))
            fprintf(stderr, "%s round %d up %.0f down %.0f: mincut %.9f cic %.9f (%s)\n", name, r,
                    up, down, vm, vc, pc->note);
        assert_true(fabs(vm - vc) <= 1e-7 * fmax(1, vm));
        if (mb_plan_metric_get(pc, "envelope_line") >= 0)
            envelope_hits++;
        else
            fallback_hits++;
        mb_plan_free(pm);
        mb_plan_free(pc);
        if (r % 5 == 4) { /* back to the splitting model's delay */
            mb_link_spec spec;
            assert_int_equal(mb_linkspec_parse("rate=10mbit,rtt=20ms", &spec, err, sizeof(err)), 0);
            assert_int_equal(mb_cost_set_link(c, 0, &spec, err, sizeof(err)), 0);
        }
    }
    assert_true(envelope_hits > 0);
    assert_true(fallback_hits > 0);
    mb_policy_session_free(sm);
    mb_policy_session_free(sc);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

static void test_cic_equals_mincut_every_zoo_model(void **state)
{
    (void)state;
    for (const char *const *n = mb_zoo_names(); *n; n++)
        check_model(*n, 30);
}

/* Random DAGs (chains of every length, shared tensors, several outputs):
 * both of cic's paths give mincut's value. */
static void test_cic_equals_mincut_random_dags(void **state)
{
    (void)state;
    char err[512];
    for (int trial = 0; trial < 150; trial++) {
        mb_graph *g = pf_random_dag(3 + pf_int(40));
        mb_profile *prof = pf_profile(g, 0.05, 5.0);
        mb_topology topo;
        mb_cost_model *c = pf_cost(g, prof, "rate=10mbit,rtt=20ms", &topo, 1 + 9 * pf_uniform(),
                                   0.05 + pf_uniform());
        assert_non_null(c);
        mb_policy_session *sm = mb_policy_session_new(&mb_policy_mincut_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof(err));
        mb_policy_session *sc = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof(err));
        assert_non_null(sm);
        assert_non_null(sc);
        for (int r = 0; r < 6; r++) {
            double up = 0.05e6 * pow(2e4, pf_uniform());
            mb_cost_set_rate(c, 0, up, r == 5 ? up / 3 : up);
            mb_plan *pm = plan_with(sm), *pc = plan_with(sc);
            assert_true(fabs(pm->pred.cut_value_ms - pc->pred.cut_value_ms) <=
                        1e-7 * fmax(1, pm->pred.cut_value_ms));
            mb_plan_free(pm);
            mb_plan_free(pc);
        }
        mb_policy_session_free(sm);
        mb_policy_session_free(sc);
        mb_cost_free(c);
        mb_profile_free(prof);
        mb_graph_free(g);
    }
}

/* A splitting model written by one session is loaded by the next (and gives
 * the same cuts); a stale one (other speeds) is rebuilt, not trusted. */
static void test_splitting_model_file(void **state)
{
    (void)state;
    char err[512], path[] = "/tmp/mecbed-cic-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    char opts[600];
    snprintf(opts, sizeof(opts), "model=%s", path);
    mb_graph *g = mb_zoo_build("googlenet", MB_ZOO_SEED, err, sizeof(err));
    mb_profile *prof = pf_profile(g, 0.05, 3.0);
    mb_topology topo;
    mb_cost_model *c = pf_cost(g, prof, "rate=10mbit,rtt=20ms", &topo, 8.0, 0.3);
    double values[3];
    for (int pass = 0; pass < 2; pass++) {
        mb_policy_session *s = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0,
                                                     MB_OBJ_LATENCY, opts, err, sizeof(err));
        assert_non_null(s);
        double rates[3] = {1e6, 5.85e6, 100e6};
        for (int k = 0; k < 3; k++) {
            mb_cost_set_rate(c, 0, rates[k], rates[k]);
            mb_plan *p = plan_with(s);
            if (pass == 0)
                values[k] = p->pred.cut_value_ms;
            else
                assert_float_equal(p->pred.cut_value_ms, values[k], 1e-9 * values[k]);
            assert_true(mb_plan_metric_get(p, "envelope_line") >= 0);
            mb_plan_free(p);
        }
        mb_policy_session_free(s);
        assert_int_equal(access(path, R_OK), 0);
    }
    /* garbage in the file: a clear error, not a crash */
    FILE *f = fopen(path, "w");
    fputs("# mecbed cic splitting model v1\nmodel googlenet zz\n", f);
    fclose(f);
    mb_policy_session *s = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0, MB_OBJ_LATENCY,
                                                 opts, err, sizeof(err));
    assert_null(s);
    assert_non_null(strstr(err, "splitting model"));
    unlink(path);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_decision(mb_policy_session *s, mb_cost_model *c, int runs)
{
    double *t = malloc(sizeof(double) * (size_t)runs);
    uint64_t st = 77;
    for (int r = 0; r < runs; r++) {
        double rate = 0.1e6 * pow(1e3, mb_rng_uniform(&st));
        mb_cost_set_rate(c, 0, rate, rate);
        mb_plan *p = plan_with(s);
        t[r] = p->pred.decision_us;
        mb_plan_free(p);
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_d);
    double m = t[runs / 2];
    free(t);
    return m;
}

static void test_decision_time_ratio(void **state)
{
    (void)state;
    const char *models[] = {"resnet152", "densenet121"};
    for (int i = 0; i < 2; i++) {
        char err[512];
        mb_graph *g = mb_zoo_build(models[i], MB_ZOO_SEED, err, sizeof(err));
        mb_profile *prof = pf_profile(g, 0.05, 3.0);
        mb_topology topo;
        mb_cost_model *c = pf_cost(g, prof, "rate=10mbit,rtt=20ms", &topo, 8.0, 0.3);
        mb_policy_session *sm = mb_policy_session_new(&mb_policy_mincut_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof(err));
        mb_policy_session *sc = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof(err));
        double tm = median_decision(sm, c, 41), tc = median_decision(sc, c, 41);
        printf("%s: decision time median over 41 bandwidths: mincut %.1f us, cic %.1f us, "
               "ratio %.1fx\n",
               models[i], tm, tc, tm / tc);
        assert_true(tm / tc >= 20);
        mb_policy_session_free(sm);
        mb_policy_session_free(sc);
        mb_cost_free(c);
        mb_profile_free(prof);
        mb_graph_free(g);
    }
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cic_equals_mincut_every_zoo_model),
        cmocka_unit_test(test_cic_equals_mincut_random_dags),
        cmocka_unit_test(test_splitting_model_file),
        cmocka_unit_test(test_decision_time_ratio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
