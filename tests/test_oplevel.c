/* The oplevel policy (Intra-DP): every split candidate is a valid plan that
 * reproduces the unsplit output; the two-timeline evaluator agrees with the
 * host's cost model; oplevel <= layerwise in predicted latency; bucket
 * tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mecbed/platform.h"
#include "split_fixture.h"
#include "../policies/builtin.h"
#include "../policies/oplevel.h"

static void device_edge(mb_topology *t, double mbps)
{
    char spec[64];
    snprintf(spec, sizeof spec, "rate=%gmbit,rtt=20ms", mbps);
    fx_three_tier(t, 1, spec, NULL, NULL);
}

/* The env the policy builds, from the same host functions. */
static void make_env(const mb_graph *g, const mb_cost_model *c, mb_oplevel_env *e, double *buf)
{
    int n = g->n_nodes;
    memset(e, 0, sizeof(*e));
    e->g = g;
    e->t_dev = buf;
    e->t_edge = buf + n;
    for (int v = 0; v < n; v++) {
        buf[v] = mb_cost_op_ms(c, 0, v);
        buf[n + v] = mb_cost_op_ms(c, 1, v);
    }
    for (int d = 0; d < 2; d++) {
        mb_split_hop *h = d ? &e->down : &e->up;
        int a = d, b = 1 - d;
        h->rate_bps = mb_cost_rate_bps(c, a, b);
        h->delay_s = mb_cost_delay_ms(c, a, b) / 1e3;
        h->overhead_s = (mb_cost_xfer_ms(c, a, b, 0) - mb_cost_delay_ms(c, a, b)) / 1e3;
    }
}

static mb_plan *steps_to_plan(const mb_split_steps *st, const mb_graph *g)
{
    mb_plan *p = mb_plan_new("oplevel", g, 0);
    for (int i = 0; i < st->n; i++) {
        const mb_split_step *s = &st->v[i];
        if (s->kind == MB_SPLIT_COMPUTE)
            mb_plan_compute(p, s->node, s->site, s->r);
        else
            mb_plan_send(p, s->node, s->r, s->site, s->to_site);
    }
    return p;
}

/* Every window, both split dimensions, several r: the plan validates, runs
 * bit-exactly on the reference backend, and the core's timeline equals the
 * host's evaluation of the same plan. */
static void test_every_candidate_is_exact(void **state)
{
    (void)state;
    char err[512];
    const char *models[] = {fx_tiny_net, fx_fcn_net};
    for (int mi = 0; mi < 2; mi++) {
        mb_graph *g = fx_model_text(models[mi]);
        assert_non_null(g);
        mb_topology t;
        device_edge(&t, 10);
        mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
        assert_non_null(c);
        double *buf = malloc(sizeof(double) * 2 * (size_t)g->n_nodes);
        mb_oplevel_env e;
        make_env(g, c, &e, buf);
        mb_split_live lv;
        assert_int_equal(mb_split_live_init(&lv, g), 0);
        int *pos = malloc(sizeof(int) * (size_t)(g->n_nodes + 2));
        int P = mb_split_cut_positions(&lv, pos);
        int tried = 0;
        for (int i = 0; i < P; i++)
            for (int j = i; j < P; j++) {
                int k = pos[i], m = pos[j];
                int u1 = lv.single[m];
                if (m > k && (u1 < 0 || g->nodes[u1].out_ndim != 4))
                    continue;
                int ok = 1;
                for (int v = k; v < m; v++)
                    ok &= g->nodes[v].local && g->nodes[v].out_ndim == 4;
                if (!ok)
                    continue;
                for (int dim = 0; dim < 2; dim++)
                    for (int ri = 1; ri <= 3; ri++) {
                        if (mi == 1 && ri != 2) /* the bigger model: one split point per window */
                            continue;
                        mb_oplevel_choice ch = {k, m, dim, 0, 0};
                        if (m > k) {
                            mb_region f = mb_node_full_region(g, u1);
                            int64_t X = dim ? mb_region_rows(f) : mb_region_cols(f);
                            ch.c = X * ri / 4;
                            if (ch.c < 1)
                                continue;
                            ch.r = (double)ch.c / X;
                        }
                        mb_split_steps st = {0};
                        assert_int_equal(mb_oplevel_steps(&e, &ch, &st), 0);
                        mb_plan *p = steps_to_plan(&st, g);
                        if (mb_plan_validate(p, g, &t, err, sizeof err) < 0)
                            fail_msg("window [%d,%d) dim %d c %lld: %s", k, m, dim, (long long)ch.c, err);
                        assert_true(fx_verify(p, g, &t, "ref") == 0.0);
                        double mine = mb_oplevel_timeline(&e, &st, INFINITY, NULL);
                        assert_int_equal(mb_plan_evaluate(p, c, err, sizeof err), 0);
                        if (fabs(mine - p->pred.latency_ms) > 1e-6 * (1 + mine))
                            fail_msg("window [%d,%d): core %.6f ms, host %.6f ms", k, m, mine,
                                     p->pred.latency_ms);
                        tried++;
                        mb_plan_free(p);
                        mb_split_steps_free(&st);
                        if (m == k)
                            break;
                    }
            }
        assert_true(tried > 10);
        free(pos);
        mb_split_live_free(&lv);
        free(buf);
        mb_cost_free(c);
        mb_graph_free(g);
    }
}

/* The sanity check of issue 9: under the same cost model oplevel <=
 * layerwise, at the literature's uplinks, on several models; and the split
 * actually wins somewhere (where transfer and compute are comparable). */
static void test_oplevel_not_worse_than_layerwise(void **state)
{
    (void)state;
    char err[512];
    const char *models[] = {"fx_tiny", "resnet18", "mobilenetv2", "tinyyolov2"};
    const double mbps[] = {1, 5.85, 18.88, 100};
    int strictly_better = 0;
    for (int mi = 0; mi < 4; mi++) {
        mb_graph *g = mi == 0 ? fx_model_text(fx_tiny_net) : fx_zoo(models[mi]);
        assert_non_null(g);
        for (int bi = 0; bi < 4; bi++) {
            mb_topology t;
            device_edge(&t, mbps[bi]);
            mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
            mb_plan *lw = mb_policy_run(&mb_policy_layerwise_ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err, sizeof err);
            assert_non_null(lw);
            mb_plan *op = mb_policy_run(&mb_policy_oplevel_ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err, sizeof err);
            if (!op)
                fail_msg("oplevel on %s: %s", models[mi], err);
            fprintf(stderr, "%-12s %7.2f Mbit/s  layerwise %9.3f ms  oplevel %9.3f ms  (%s)\n", models[mi],
                    mbps[bi], lw->pred.latency_ms, op->pred.latency_ms, op->note);
            assert_true(op->pred.latency_ms <= lw->pred.latency_ms + 1e-9);
            strictly_better += op->pred.latency_ms < lw->pred.latency_ms * 0.999;
            mb_plan_free(lw);
            mb_plan_free(op);
            mb_cost_free(c);
        }
        if (mi == 0)
            mb_graph_free(g);
    }
    assert_true(strictly_better >= 1);
}

/* Bucket tables: the choice stored for a bucket is what a search at the
 * bucket's centre rate finds, and lookups land in the right bucket. */
static void test_bucket_table(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = fx_model_text(fx_tiny_net);
    mb_topology t;
    device_edge(&t, 10);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    double *buf = malloc(sizeof(double) * 2 * (size_t)g->n_nodes);
    mb_oplevel_env e;
    make_env(g, c, &e, buf);
    mb_oplevel_table tab;
    assert_int_equal(mb_oplevel_table_build(&e, 1e6, 64e6, 1, &tab, err, sizeof err), 0);
    assert_int_equal(tab.n, 6);
    for (int i = 0; i < tab.n; i++) {
        double centre = 1e6 * pow(2, i + 0.5);
        const mb_oplevel_choice *ch = mb_oplevel_table_lookup(&tab, centre);
        assert_ptr_equal(ch, &tab.ch[i]);
        mb_oplevel_env ec = e;
        ec.down.rate_bps = e.down.rate_bps * centre / e.up.rate_bps;
        ec.up.rate_bps = centre;
        mb_oplevel_result r;
        assert_int_equal(mb_oplevel_search(&ec, &r, err, sizeof err), 0);
        assert_true(fabs(r.latency_ms - tab.ms[i]) < 1e-9);
    }
    assert_ptr_equal(mb_oplevel_table_lookup(&tab, 1), &tab.ch[0]);
    assert_ptr_equal(mb_oplevel_table_lookup(&tab, 1e12), &tab.ch[tab.n - 1]);
    mb_oplevel_table_free(&tab);
    /* the policy with table=1 plans from the table */
    mb_plan *p = mb_policy_run(&mb_policy_oplevel_ops, g, &t, c, 0, MB_OBJ_LATENCY, "table=1", err, sizeof err);
    assert_non_null(p);
    assert_true(fx_metric(p, "from_table") == 1);
    assert_true(fx_verify(p, g, &t, "ref") == 0.0);
    mb_plan_free(p);
    free(buf);
    mb_cost_free(c);
    mb_graph_free(g);
}

static void test_bad_server_option(void **state)
{
    (void)state;
    char err[512] = "";
    mb_graph *g = fx_model_text(fx_tiny_net);
    mb_topology t;
    device_edge(&t, 10);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    mb_plan *p = mb_policy_run(&mb_policy_oplevel_ops, g, &t, c, 0, MB_OBJ_LATENCY, "server=nowhere", err, sizeof err);
    assert_null(p);
    assert_non_null(strstr(err, "nowhere"));
    mb_cost_free(c);
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_candidate_is_exact),
        cmocka_unit_test(test_oplevel_not_worse_than_layerwise),
        cmocka_unit_test(test_bucket_table),
        cmocka_unit_test(test_bad_server_option),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_release();
    return rc;
}
