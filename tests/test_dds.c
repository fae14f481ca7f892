/* The dds policy: latency envelopes equal direct min cuts, the iteration
 * ends at a Nash equilibrium (checked by a unilateral deviation search
 * independent of the solver's own best response), baselines, the plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mecbed/platform.h"
#include "split_fixture.h"
#include "../policies/builtin.h"
#include "../policies/dds.h"
#include "../policies/mincut.h"

/* n devices on links cycling through the literature's uplinks, one edge. */
static void star(mb_topology *t, int n)
{
    static const char *specs[] = {"rate=1.1mbit,rtt=60ms", "rate=5.85mbit,rtt=40ms", "rate=18.88mbit,rtt=20ms",
                                  "rate=100mbit,rtt=10ms"};
    memset(t, 0, sizeof(*t));
    int e = fx_add_site(t, "edge0", MB_ROLE_EDGE, "edge-cpu");
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "dev%d", i);
        int d = fx_add_site(t, name, MB_ROLE_DEVICE, i % 3 == 2 ? "jetson-nano" : "phone");
        fx_add_link(t, d, e, specs[i % 4]);
    }
}

typedef struct cut_ctx {
    const mb_graph *g;
    mb_cut_costs cc[8];
    double *te;
    int *srv;
} cut_ctx;

static int cut_fn(void *ctx, int dev, double y, mb_dds_line *line)
{
    cut_ctx *x = ctx;
    mb_cut_costs *cc = &x->cc[dev];
    for (int v = 0; v < cc->n; v++)
        x->te[v] = cc->te[v] * y;
    mb_cut_costs sc = {cc->n, cc->td, x->te, cc->tx, cc->rx};
    double val = mb_dag_mincut(x->g, &sc, x->srv);
    if (val < 0)
        return -1;
    double w = 0;
    for (int v = 0; v < cc->n; v++)
        w += x->srv[v] ? cc->te[v] : 0;
    line->w = w;
    line->a = val - y * w;
    return 0;
}

static double direct_T(cut_ctx *x, int dev, double share)
{
    mb_dds_line l;
    assert_int_equal(cut_fn(x, dev, 1.0 / share, &l), 0);
    return l.a + l.w / share;
}

/* The envelope built from a few cuts equals a fresh min cut at any share. */
static void test_envelope_exact(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = fx_zoo("resnet18");
    assert_non_null(g);
    mb_topology t;
    star(&t, 4);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    cut_ctx x = {g, {{0}}, malloc(sizeof(double) * (size_t)g->n_nodes), malloc(sizeof(int) * (size_t)g->n_nodes)};
    for (int d = 0; d < 4; d++) {
        assert_int_equal(mb_cut_costs_from_model(c, 1 + d, 0, &x.cc[d], err, sizeof err), 0);
        mb_dds_curve cv;
        assert_int_equal(mb_dds_curve_build(&cv, cut_fn, &x, d, 1.0, 1e4), 0);
        assert_true(cv.cuts < 60);
        uint64_t rng = 99 + (uint64_t)d;
        for (int k = 0; k < 50; k++) {
            double share = pow(10, -4 * mb_rng_uniform(&rng));
            double env = mb_dds_curve_eval(&cv, share), dir = direct_T(&x, d, share);
            if (fabs(env - dir) > 1e-6 * dir)
                fail_msg("device %d share %g: envelope %.9f, min cut %.9f", d, share, env, dir);
        }
        mb_dds_curve_free(&cv);
        mb_cut_costs_free(&x.cc[d]);
    }
    free(x.te);
    free(x.srv);
    mb_cost_free(c);
}

/* Solve a game on real curves and check no device gains more than eps by
 * deviating alone, searching 4000 bids of its own (linear and log grids). */
static void check_equilibrium(const char *model, int n_dev, double price_frac)
{
    char err[256];
    mb_graph *g = fx_zoo(model);
    assert_non_null(g);
    mb_topology t;
    star(&t, n_dev);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    int classes = n_dev < 8 ? n_dev : 8;
    cut_ctx x = {g, {{0}}, malloc(sizeof(double) * (size_t)g->n_nodes), malloc(sizeof(int) * (size_t)g->n_nodes)};
    mb_dds_curve cv[8];
    const mb_dds_curve *cp[64];
    double mean_local = 0;
    for (int d = 0; d < classes; d++) {
        assert_int_equal(mb_cut_costs_from_model(c, 1 + d, 0, &x.cc[d], err, sizeof err), 0);
        assert_int_equal(mb_dds_curve_build(&cv[d], cut_fn, &x, d, 1.0, 1e4), 0);
        /* share 0: all local */
        double local = 0;
        for (int v = 0; v < g->n_nodes; v++)
            local += x.cc[d].td[v];
        mb_dds_line l = {local, 0};
        cv[d].v = realloc(cv[d].v, sizeof(mb_dds_line) * (size_t)(cv[d].n + 1));
        cv[d].v[cv[d].n++] = l;
    }
    for (int i = 0; i < n_dev; i++) {
        cp[i] = &cv[i % classes];
        mean_local += mb_dds_curve_eval(cp[i], 0) / n_dev;
    }
    mb_dds_game game = {.n = n_dev, .F = 1, .price = price_frac * mean_local, .eps = 1e-5, .max_rounds = 500, .curve = cp};
    mb_dds_result r;
    assert_int_equal(mb_dds_solve(&game, &r), 0);
    assert_true(r.converged);
    double eps = 1e-3 * mean_local; /* ms */
    for (int i = 0; i < n_dev; i++) {
        double mine = mb_dds_cost(&game, r.f, i, r.f[i]);
        double best = mb_dds_cost(&game, r.f, i, 0);
        for (int k = 1; k <= 2000; k++) {
            double a = mb_dds_cost(&game, r.f, i, k / 2000.0);
            double b = mb_dds_cost(&game, r.f, i, pow(10, -6 + 6.0 * k / 2000));
            best = fmin(best, fmin(a, b));
        }
        if (best < mine - eps)
            fail_msg("%s, %d devices: device %d bids %g (cost %.4f) but %.4f is reachable alone", model, n_dev, i,
                     r.f[i], mine, best);
        assert_true(r.share[i] >= 0 && r.share[i] <= 1 + 1e-12);
    }
    double total = 0;
    for (int i = 0; i < n_dev; i++)
        total += r.share[i];
    assert_true(total <= 1 + 1e-9);
    assert_true(r.util >= 0 && r.util <= 1 + 1e-9);
    /* the equal-share baseline gives every device F/N */
    double eq = 0;
    for (int i = 0; i < n_dev; i++)
        eq += mb_dds_curve_eval(cp[i], 1.0 / n_dev) / n_dev;
    assert_true(fabs(eq - r.equal_mean_ms) < 1e-9 * eq);
    fprintf(stderr, "%s N=%d: %d rounds, mean %.2f ms (equal %.2f, fixed %.2f), util %.2f\n", model, n_dev,
            r.rounds, r.mean_ms, r.equal_mean_ms, r.fixed_mean_ms, r.util);
    mb_dds_result_free(&r);
    for (int d = 0; d < classes; d++) {
        mb_dds_curve_free(&cv[d]);
        mb_cut_costs_free(&x.cc[d]);
    }
    free(x.te);
    free(x.srv);
    mb_cost_free(c);
}

static void test_equilibrium_small(void **state)
{
    (void)state;
    check_equilibrium("resnet18", 4, 0.05);
    check_equilibrium("mobilenetv2", 6, 0.02);
}

static void test_equilibrium_many(void **state)
{
    (void)state;
    check_equilibrium("resnet18", 16, 0.05);
    check_equilibrium("resnet18", 64, 0.05);
}

/* The policy: plans validate and execute, metrics are consistent, and a
 * single device holding the whole server matches plain min cut. */
static void test_policy(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = fx_model_text(fx_tiny_net);
    assert_non_null(g);
    mb_topology t;
    star(&t, 5);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    for (int dev = 1; dev <= 5; dev++) {
        mb_plan *p = mb_policy_run(&mb_policy_dds_ops, g, &t, c, dev, MB_OBJ_LATENCY, "", err, sizeof err);
        if (!p)
            fail_msg("dds: %s", err);
        assert_true(fx_metric(p, "n_devices") == 5);
        assert_true(fx_metric(p, "converged") == 1);
        assert_true(fx_metric(p, "latency_shared_ms") >= p->pred.latency_ms - 1e-6);
        assert_true(fx_verify(p, g, &t, "ref") == 0.0);
        mb_plan_free(p);
    }
    mb_cost_free(c);
    /* one device, free server: dds == mincut */
    star(&t, 1);
    c = fx_cost(g, &t);
    mb_plan *d = mb_policy_run(&mb_policy_dds_ops, g, &t, c, 1, MB_OBJ_LATENCY, "price=0", err, sizeof err);
    mb_plan *m = mb_policy_run(&mb_policy_mincut_ops, g, &t, c, 1, MB_OBJ_LATENCY, "", err, sizeof err);
    assert_non_null(d);
    assert_non_null(m);
    assert_true(fabs(fx_metric(d, "latency_shared_ms") - m->pred.cut_value_ms) < 1e-6 * (1 + m->pred.cut_value_ms));
    mb_plan_free(d);
    mb_plan_free(m);
    mb_plan *bad = mb_policy_run(&mb_policy_dds_ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err, sizeof err);
    assert_null(bad); /* site 0 is the edge, not a device */
    assert_non_null(strstr(err, "not a device"));
    mb_cost_free(c);
    mb_graph_free(g);
}

/* The plan carries the device's share of the server when its cut uses it
 * (mb_plan.share): the equilibrium's (the shares fit in the server) or,
 * with shares=equal, 1/N; the plan evaluated under it is slower than at
 * full speed by the server work's stretch; a bad mode is refused. */
static void test_policy_shares(void **state)
{
    (void)state;
    char err[512];
    /* convolutions heavy for a phone, a small input and output: offloading
     * pays on a fast link, and five devices compete for the server */
    mb_graph *g = fx_model_text("mecbed-model 1\nname fx_heavy\nseed 3\n"
                                "Input x shape=1,3,64,64\n"
                                "Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(64x3x3x3)\n"
                                "Relu r1 c1\n"
                                "Conv c2 r1 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)\n"
                                "Relu r2 c2\n"
                                "Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)\n"
                                "GlobalAveragePool gap c3\n"
                                "Flatten fl gap axis=1\n"
                                "Gemm fc fl trans_b=1 B=he(10x64) C=const(10,0)\n"
                                "output fc\n");
    assert_non_null(g);
    mb_topology t;
    memset(&t, 0, sizeof t);
    fx_add_site(&t, "edge0", MB_ROLE_EDGE, "edge-cpu");
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "dev%d", i);
        fx_add_link(&t, fx_add_site(&t, name, MB_ROLE_DEVICE, i % 2 ? "jetson-nano" : "phone"), 0,
                    i % 2 ? "rate=1gbit,rtt=1ms" : "rate=200mbit,rtt=2ms");
    }
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    for (int eq = 0; eq < 2; eq++) {
        double sum = 0;
        int users = 0;
        for (int dev = 1; dev <= 5; dev++) {
            mb_plan *p = mb_policy_run(&mb_policy_dds_ops, g, &t, c, dev, MB_OBJ_LATENCY, eq ? "shares=equal" : "",
                                       err, sizeof err);
            if (!p)
                fail_msg("dds: %s", err);
            double server_ms = 0;
            for (int i = 0; i < p->n_steps; i++)
                if (p->steps[i].kind == MB_STEP_COMPUTE && p->steps[i].site == 0)
                    server_ms += p->steps[i].t_end_ms - p->steps[i].t_start_ms;
            for (int s = 1; s < t.n_sites; s++)
                assert_true(p->share[s] == 0); /* devices hold no shares */
            if (server_ms > 0) {
                users++;
                assert_true(p->share[0] > 0 && p->share[0] <= 1);
                assert_true(fabs(p->share[0] - (eq ? 0.2 : fx_metric(p, "share"))) < 1e-12);
                mb_plan *v = mb_plan_clone(p);
                assert_int_equal(mb_plan_evaluate_shared(v, c, err, sizeof err), 0);
                /* the plan is predicted at its share (as a run executes it);
                 * its steps and latency_alone_ms stay at full speed */
                assert_true(fabs(v->pred.latency_ms - p->pred.latency_ms) < 1e-9);
                double alone = fx_metric(p, "latency_alone_ms");
                assert_true(p->pred.latency_ms >= alone + server_ms * (1 / p->share[0] - 1) - 1e-6);
                mb_plan_free(v);
                v = mb_plan_clone(p);
                assert_int_equal(mb_plan_evaluate(v, c, err, sizeof err), 0);
                assert_true(fabs(v->pred.latency_ms - alone) < 1e-9);
                mb_plan_free(v);
            } else {
                assert_false(mb_plan_has_shares(p));
            }
            sum += p->share[0];
            mb_plan_free(p);
        }
        assert_true(users > 0);
        assert_true(sum <= 1 + 1e-9);
    }
    mb_plan *bad = mb_policy_run(&mb_policy_dds_ops, g, &t, c, 1, MB_OBJ_LATENCY, "shares=some", err, sizeof err);
    assert_null(bad);
    assert_non_null(strstr(err, "shares=some"));
    mb_cost_free(c);
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_exact),
        cmocka_unit_test(test_equilibrium_small),
        cmocka_unit_test(test_equilibrium_many),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_policy_shares),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_release();
    return rc;
}
