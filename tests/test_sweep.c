/* The sweep's pieces: the seeded random DAGs of the decision-time experiment
 * (exact size, topological order, one output, every op used, the same graph
 * for the same seed; cic's cut equals mincut's on them) and the experiment
 * file reader ([quick] overrides, continuation lines, errors with file:line,
 * the points' keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mecbed/sweep.h"
#include "../policies/builtin.h"
#include "mecbed/policy_host.h"
#include "policy_fixture.h"

static void test_dag_shape(void **state)
{
    (void)state;
    const int sizes[] = {2, 5, 50, 333, 2000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int ops = sizes[k], n = ops + 1; /* n ops and the input */
        mb_graph *g = sw_dag_generate(ops, 7);
        assert_non_null(g);
        assert_int_equal(mb_graph_n_ops(g), ops);
        assert_int_equal(g->n_nodes, n);
        assert_int_equal(g->n_outputs, 1);
        assert_int_equal(g->outputs[0], n - 1);
        int *used = calloc((size_t)n, sizeof *used);
        for (int v = 0; v < n; v++)
            for (int i = 0; i < g->nodes[v].n_inputs; i++) {
                assert_true(g->nodes[v].inputs[i] < v); /* topological order */
                used[g->nodes[v].inputs[i]] = 1;
            }
        for (int v = 0; v < n - 1; v++)
            assert_true(used[v]); /* no dead op: all but the output are consumed */
        free(used);
        mb_profile *p = sw_dag_profile(g, 7);
        assert_non_null(p);
        assert_int_equal(p->n_ops, n);
        for (int v = 1; v < n; v++)
            assert_true(p->ms[v] >= 0.1 && p->ms[v] <= 2.1);
        mb_profile_free(p);
        mb_graph_free(g);
    }
    /* same seed, same graph; another seed, another graph */
    mb_graph *a = sw_dag_generate(500, 3), *b = sw_dag_generate(500, 3), *c = sw_dag_generate(500, 4);
    int same_ab = 1, same_ac = 1;
    for (int v = 0; v < 500; v++) {
        same_ab &= a->nodes[v].n_inputs == b->nodes[v].n_inputs && a->nodes[v].out_bytes == b->nodes[v].out_bytes;
        same_ac &= a->nodes[v].n_inputs == c->nodes[v].n_inputs && a->nodes[v].out_bytes == c->nodes[v].out_bytes;
    }
    assert_true(same_ab);
    assert_false(same_ac);
    mb_graph_free(a);
    mb_graph_free(b);
    mb_graph_free(c);
}

/* cic's compressed cut equals mincut's on the generated DAGs too. */
static void test_dag_cic_equals_mincut(void **state)
{
    (void)state;
    char err[512];
    for (int n = 50; n <= 800; n *= 2) {
        mb_graph *g = sw_dag_generate(n, (uint64_t)n);
        mb_profile *p = sw_dag_profile(g, (uint64_t)n);
        mb_topology topo;
        mb_cost_model *c = pf_cost(g, p, "rate=10mbit,rtt=20ms", &topo, 2.0, 0.2);
        assert_non_null(c);
        mb_policy_session *sm = mb_policy_session_new(&mb_policy_mincut_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof err);
        mb_policy_session *sc = mb_policy_session_new(&mb_policy_cic_ops, g, &topo, c, 0,
                                                      MB_OBJ_LATENCY, "", err, sizeof err);
        assert_non_null(sm);
        assert_non_null(sc);
        const double rates[] = {0.5, 5.85, 18.88, 100};
        for (int r = 0; r < 4; r++) {
            double bps = mb_cost_goodput_bps(rates[r] * 1e6, 0);
            mb_cost_set_rate(c, 0, bps, bps);
            mb_plan *pm = mb_policy_session_plan(sm, NULL, err, sizeof err);
            mb_plan *pc = mb_policy_session_plan(sc, NULL, err, sizeof err);
            assert_non_null(pm);
            assert_non_null(pc);
            assert_true(fabs(pm->pred.cut_value_ms - pc->pred.cut_value_ms) <= 1e-6 * pm->pred.cut_value_ms);
            mb_plan_free(pm);
            mb_plan_free(pc);
        }
        mb_policy_session_free(sm);
        mb_policy_session_free(sc);
        mb_cost_free(c);
        mb_profile_free(p);
        mb_graph_free(g);
    }
}

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/mecbed-test-sweep-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return path;
}

static void test_config(void **state)
{
    (void)state;
    char err[1024];
    sw_config c;
    const char *text = "; comment\n"
                       "[sweep]\n"
                       "name = t1\n"
                       "mode = plan\n"
                       "models = resnet18, vgg16\n"
                       "  tiny_yolov2\n"
                       "policies = local mincut:server=edge0\n"
                       "x = 1 2\n"
                       "links = rate={x}mbit,rtt=20ms\n"
                       "node_types = phone/edge-cpu\n"
                       "repetitions = 3\n"
                       "[quick]\n"
                       "models = resnet18\n"
                       "repetitions = 1\n";
    char *path = write_tmp(text);
    assert_int_equal(sw_config_read(path, 0, &c, err, sizeof err), 0);
    assert_int_equal(c.models.n, 3); /* a continuation line appends */
    assert_string_equal(c.models.v[2], "tiny_yolov2");
    assert_int_equal(c.repetitions, 3);
    assert_int_equal(c.policies.n, 2);
    sw_point *pts;
    int n;
    assert_int_equal(sw_points(&c, "/tmp", &pts, &n, err, sizeof err), 0);
    assert_int_equal(n, 3 * 2 * 2 * 3);
    assert_string_equal(pts[0].link, "rate=1mbit,rtt=20ms");
    assert_string_equal(pts[0].key, "t1|resnet18|local|-|link=rate=1mbit,rtt=20ms|phone/edge-cpu|1|0");
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            assert_string_not_equal(pts[i].key, pts[k].key);
    free(pts);
    sw_config_free(&c);
    assert_int_equal(sw_config_read(path, 1, &c, err, sizeof err), 0);
    assert_int_equal(c.models.n, 1);
    assert_int_equal(c.repetitions, 1);
    sw_config_free(&c);
    unlink(path);

    struct {
        const char *text, *want;
    } bad[] = {
        {"[sweep]\nname = b\nrepetitions = 0\n", ":3: repetitions: '0' is not a whole number >= 1"},
        {"[sweep]\nname = b\n[variant v]\nargs = --adaptive\nfoo = 1\n", ":5: [variant v]: unknown key 'foo'"},
        {"[sweep]\nname = b\ndags = 10 x\n", ":3: dags: 'x' is not a DAG size"},
        {"[sweep]\nname = B!\nmodels = m\npolicies = p\nlinks = rate=1mbit\n", "name 'B!'"},
        {"[sweep]\nname = b\nmode = run\ndags = 50\npolicies = p\nlinks = rate=1mbit\n", "dags are plan mode only"},
        {"[sweep]\nname = b\npolicies = local\nmodels = m\n", "needs links"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = write_tmp(bad[i].text);
        assert_int_equal(sw_config_read(path, 0, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i].want) || !strstr(err, path))
            fail_msg("case %zu: '%s' lacks '%s' or the path", i, err, bad[i].want);
        unlink(path);
    }
}

int main(void)
{
    mb_policy_register_builtins();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dag_shape),
        cmocka_unit_test(test_dag_cic_equals_mincut),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
