/* The tile policy (D3): tile layouts, plan coverage, execution against the
 * unsplit model, backbone bytes, run-time boundary adjustment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mecbed/platform.h"
#include "split_fixture.h"
#include "../policies/builtin.h"
#include "../policies/tile.h"

/* D3's setting: a phone, a cluster of Jetson-class edge nodes on a fast
 * LAN, a cloud behind a slower backbone. */
static const char *EDGE = "jetson-nano";
static const char *FAST_DEV = "rate=400mbit,rtt=2ms";
static const char *LAN = "rate=10gbit,delay=0.05ms";
static const char *BACKBONE = "rate=50mbit,delay=10ms";

static mb_plan *run_tile(const mb_graph *g, const mb_topology *t, mb_cost_model *c, const char *opts)
{
    char err[512] = "";
    mb_plan *p = mb_policy_run(&mb_policy_tile_ops, g, t, c, 0, MB_OBJ_LATENCY, opts, err, sizeof err);
    if (!p)
        fprintf(stderr, "tile: %s\n", err);
    return p;
}

static void test_apportion(void **state)
{
    (void)state;
    int64_t out[4];
    double w[4] = {1, 2, 3, 4};
    mb_tile_apportion(100, w, 4, out);
    assert_int_equal(out[0] + out[1] + out[2] + out[3], 100);
    for (int i = 0; i < 4; i++)
        assert_true(llabs(out[i] - (int64_t)(100 * w[i] / 10)) <= 1);
    double z[3] = {0, 0, 1};
    int64_t o3[3];
    mb_tile_apportion(3, z, 3, o3); /* every part gets at least one row */
    assert_int_equal(o3[0], 1);
    assert_int_equal(o3[1], 1);
    assert_int_equal(o3[2], 1);
}

/* Every tiled op's output, over all sites, is computed; the exit op of each
 * tiled stack exactly once (the tiles partition it). */
static void check_coverage(const mb_plan *p, const mb_graph *g)
{
    for (int op = 0; op < g->n_nodes; op++) {
        mb_region full = mb_node_full_region(g, op);
        int64_t H = mb_region_rows(full), W = mb_region_cols(full);
        int partial = 0;
        for (int k = 0; k < p->n_steps; k++)
            if (p->steps[k].kind == MB_STEP_COMPUTE && p->steps[k].op == op &&
                (mb_region_rows(p->steps[k].region) != H || mb_region_cols(p->steps[k].region) != W))
                partial = 1;
        if (!partial)
            continue;
        int *cnt = calloc((size_t)(H * W), sizeof(int));
        for (int k = 0; k < p->n_steps; k++) {
            const mb_plan_step *s = &p->steps[k];
            if (s->kind != MB_STEP_COMPUTE || s->op != op)
                continue;
            for (int64_t h = s->region.h0; h < s->region.h1; h++)
                for (int64_t w = s->region.w0; w < s->region.w1; w++)
                    cnt[h * W + w]++;
        }
        /* is op the exit of a stack (someone sends its tiles to one place)? */
        int exit = 0;
        for (int k = 0; k < p->n_steps; k++)
            if (p->steps[k].kind == MB_STEP_SEND && p->steps[k].op == op)
                exit = 1;
        for (int64_t e = 0; e < H * W; e++) {
            assert_true(cnt[e] >= 1);
            if (exit && op == g->outputs[0])
                assert_int_equal(cnt[e], 1);
        }
        free(cnt);
    }
}

static int64_t edge_cloud_bytes(const mb_plan *p, const mb_graph *g, const mb_topology *t)
{
    int64_t b = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *s = &p->steps[k];
        if (s->kind != MB_STEP_SEND)
            continue;
        int ra = t->sites[s->site].role, rb = t->sites[s->to].role;
        /* device <-> cloud crosses the backbone too (routed via edge0) */
        if ((ra == MB_ROLE_CLOUD) != (rb == MB_ROLE_CLOUD)) {
            mb_region f = mb_node_full_region(g, s->op);
            double frac = (double)mb_region_rows(s->region) * mb_region_cols(s->region) /
                          ((double)mb_region_rows(f) * mb_region_cols(f));
            b += (int64_t)llround(frac * g->nodes[s->op].out_bytes);
        }
    }
    return b;
}

static void test_fcn_tiles_stitch_exactly(void **state)
{
    (void)state;
    mb_graph *g = fx_model_text(fx_fcn_net);
    assert_non_null(g);
    for (int k = 1; k <= 4; k++) {
        mb_topology t;
        fx_three_tier_typed(&t, k, EDGE, "rate=10gbit,rtt=0.2ms", LAN, NULL); /* edge-heavy: tiles pay */
        mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
        assert_non_null(c);
        mb_plan *p = run_tile(g, &t, c, "");
        assert_non_null(p);
        if (k >= 2)
            assert_true(fx_metric(p, "tiled_stacks") >= 1);
        else
            assert_true(fx_metric(p, "tiled_stacks") == 0);
        check_coverage(p, g);
        /* ref backend: the same kernel computes the same elements -> bit-exact */
        assert_true(fx_verify(p, g, &t, "ref") == 0.0);
        mb_plan_free(p);
        mb_cost_free(c);
    }
    mb_graph_free(g);
}

static void test_tiny_three_tier(void **state)
{
    (void)state;
    mb_graph *g = fx_model_text(fx_tiny_net);
    assert_non_null(g);
    const char *backbones[] = {"rate=1gbit,delay=1ms", "rate=2mbit,delay=20ms"};
    for (int bi = 0; bi < 2; bi++)
        for (int k = 1; k <= 4; k++) {
            mb_topology t;
            fx_three_tier_typed(&t, k, EDGE, "rate=50mbit,rtt=10ms", LAN, backbones[bi]);
            mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
            assert_non_null(c);
            mb_plan *p = run_tile(g, &t, c, "");
            assert_non_null(p);
            check_coverage(p, g);
            assert_true(fx_verify(p, g, &t, "ref") == 0.0);
            /* the metric counts what the plan's sends carry over the backbone */
            assert_int_equal((int64_t)fx_metric(p, "edge_cloud_bytes"), edge_cloud_bytes(p, g, &t));
            mb_plan_free(p);
            mb_cost_free(c);
        }
    mb_graph_free(g);
}

/* More edge nodes never make the tile plan's own estimate worse, and with
 * compute-bound edges (fast LAN) tiling across 4 nodes beats one node. */
static void test_more_nodes_help(void **state)
{
    (void)state;
    mb_graph *g = fx_zoo("resnet18");
    assert_non_null(g);
    double prev = INFINITY, one = 0, four = 0;
    for (int k = 1; k <= 4; k++) {
        mb_topology t;
        fx_three_tier_typed(&t, k, EDGE, FAST_DEV, LAN, "rate=10mbit,delay=25ms");
        mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
        mb_plan *p = run_tile(g, &t, c, "");
        assert_non_null(p);
        double m = fx_metric(p, "model_ms");
        assert_true(m <= prev + 1e-9);
        prev = m;
        if (k == 1)
            one = p->pred.latency_ms;
        if (k == 4)
            four = p->pred.latency_ms;
        mb_plan_free(p);
        mb_cost_free(c);
    }
    assert_true(four < one);
}

/* The tile env the policy builds, from the cost model directly. */
typedef struct env_buf {
    mb_tile_env env;
    const mb_cost_model *c;
    int site[MB_TILE_MAX_EDGE + 2];
    double *t;
} env_buf;

static double env_xfer(void *ctx, int a, int b, int64_t bytes)
{
    env_buf *e = ctx;
    return mb_cost_xfer_ms(e->c, e->site[a], e->site[b], bytes);
}

static void env_make(env_buf *e, const mb_graph *g, const mb_topology *t, const mb_cost_model *c)
{
    memset(e, 0, sizeof(*e));
    e->c = c;
    int n = g->n_nodes, K = 0, cloud = -1;
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].role == MB_ROLE_EDGE)
            e->site[1 + K++] = s;
        if (t->sites[s].role == MB_ROLE_CLOUD)
            cloud = s;
    }
    e->site[K + 1] = cloud;
    e->t = malloc(sizeof(double) * (size_t)n * (size_t)(K + 2));
    for (int i = 0; i < K + 2; i++)
        for (int v = 0; v < n; v++)
            e->t[(size_t)i * n + v] = mb_cost_op_ms(c, e->site[i], v);
    e->env.g = g;
    e->env.n_edge = K;
    e->env.has_cloud = cloud >= 0;
    e->env.t_dev = e->t;
    for (int k = 0; k < K; k++)
        e->env.t_edge[k] = e->t + (size_t)(k + 1) * n;
    e->env.t_cloud = e->t + (size_t)(K + 1) * n;
    e->env.xfer_ms = env_xfer;
    e->env.ctx = e;
}

static int pos_of(const int *pos, int P, int c)
{
    for (int i = 0; i < P; i++)
        if (pos[i] == c)
            return i;
    return -1;
}

/* D3's run-time adjustment: each call moves each boundary by at most one
 * cut position, never to a worse plan, and repeated calls climb to a plan
 * none of whose neighbours is better; from the optimum it does not move. */
static void test_adjust_hill_climb(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = fx_zoo("resnet18");
    assert_non_null(g);
    mb_topology t;
    fx_three_tier_typed(&t, 3, EDGE, FAST_DEV, LAN, "rate=200mbit,delay=5ms");
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    env_buf e;
    env_make(&e, g, &t, c);
    mb_tile_solver *s = mb_tile_solver_new(&e.env, err, sizeof err);
    assert_non_null(s);
    mb_split_live lv;
    assert_int_equal(mb_split_live_init(&lv, g), 0);
    int *pos = malloc(sizeof(int) * (size_t)(g->n_nodes + 2));
    int P = mb_split_cut_positions(&lv, pos);
    int starts[3][2] = {{pos[0], pos[0]}, {pos[P - 1], pos[P - 1]}, {pos[P / 3], pos[2 * P / 3]}};
    mb_tile_result opt;
    assert_int_equal(mb_tile_solve(s, &opt, err, sizeof err), 0);
    for (int st = 0; st < 3; st++) {
        mb_tile_result cur;
        assert_int_equal(mb_tile_eval(s, starts[st][0], starts[st][1], &cur, err, sizeof err), 0);
        int steps = 0;
        for (;;) {
            mb_tile_result nx;
            assert_int_equal(mb_tile_adjust(s, cur.a, cur.b, &nx, err, sizeof err), 0);
            assert_true(abs(pos_of(pos, P, nx.a) - pos_of(pos, P, cur.a)) <= 1);
            assert_true(abs(pos_of(pos, P, nx.b) - pos_of(pos, P, cur.b)) <= 1);
            assert_true(nx.latency_ms <= cur.latency_ms + 1e-9);
            int same = nx.a == cur.a && nx.b == cur.b;
            mb_tile_result_free(&cur);
            cur = nx;
            if (same)
                break;
            steps++;
            assert_true(steps < 2 * P);
        }
        assert_true(cur.latency_ms >= opt.latency_ms - 1e-9);
        fprintf(stderr, "hill climb from (%d,%d): %d steps to (%d,%d) %.2f ms; optimum (%d,%d) %.2f ms\n",
                starts[st][0], starts[st][1], steps, cur.a, cur.b, cur.latency_ms, opt.a, opt.b, opt.latency_ms);
        mb_tile_result_free(&cur);
    }
    mb_tile_result again;
    assert_int_equal(mb_tile_adjust(s, opt.a, opt.b, &again, err, sizeof err), 0);
    assert_int_equal(again.a, opt.a);
    assert_int_equal(again.b, opt.b);
    mb_tile_result_free(&again);
    mb_tile_result_free(&opt);
    free(pos);
    mb_split_live_free(&lv);
    mb_tile_solver_free(s);
    free(e.t);
    mb_cost_free(c);
}

/* Through the policy API: replan after the links change moves each
 * boundary by at most one position and is no worse, under the new costs,
 * than keeping the old boundaries. */
static void test_replan_moves_one_step(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = fx_zoo("resnet18");
    assert_non_null(g);
    mb_topology t;
    fx_three_tier_typed(&t, 3, EDGE, FAST_DEV, LAN, "rate=10mbit,delay=25ms");
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    mb_policy_session *s = mb_policy_session_new(&mb_policy_tile_ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err,
                                                 sizeof err);
    assert_non_null(s);
    mb_plan *p = mb_policy_session_plan(s, NULL, err, sizeof err);
    assert_non_null(p);
    mb_split_live lv;
    assert_int_equal(mb_split_live_init(&lv, g), 0);
    int *pos = malloc(sizeof(int) * (size_t)(g->n_nodes + 2));
    int P = mb_split_cut_positions(&lv, pos);
    const double rates[] = {5e6, 1e9, 20e6, 400e6};
    for (int it = 0; it < 4; it++) {
        mb_cost_set_rate(c, it % 2 ? 3 : 0, rates[it], rates[it]);
        mb_plan *q = mb_policy_session_plan(s, p, err, sizeof err);
        assert_non_null(q);
        int pa = (int)fx_metric(p, "boundary_a"), pb = (int)fx_metric(p, "boundary_b");
        int qa = (int)fx_metric(q, "boundary_a"), qb = (int)fx_metric(q, "boundary_b");
        assert_true(abs(pos_of(pos, P, qa) - pos_of(pos, P, pa)) <= 1);
        assert_true(abs(pos_of(pos, P, qb) - pos_of(pos, P, pb)) <= 1);
        env_buf e;
        env_make(&e, g, &t, c);
        mb_tile_solver *sv = mb_tile_solver_new(&e.env, err, sizeof err);
        mb_tile_result keep;
        assert_int_equal(mb_tile_eval(sv, pa, pb, &keep, err, sizeof err), 0);
        assert_true(fx_metric(q, "model_ms") <= keep.latency_ms + 1e-9);
        mb_tile_result_free(&keep);
        mb_tile_solver_free(sv);
        free(e.t);
        mb_plan_free(p);
        p = q;
    }
    free(pos);
    mb_split_live_free(&lv);
    mb_plan_free(p);
    mb_policy_session_free(s);
    mb_cost_free(c);
}

/* A zoo model on the fast backend: the tiled plan matches the unsplit run
 * (OpenBLAS may sum a tile's dot products in another order: tolerance). */
static void test_resnet18_verify_cpu(void **state)
{
    (void)state;
    mb_graph *g = fx_zoo("resnet18");
    assert_non_null(g);
    mb_topology t;
    fx_three_tier_typed(&t, 4, EDGE, FAST_DEV, LAN, BACKBONE);
    mb_cost_model *c = fx_cost(g, &t);
    assert_non_null(c);
    mb_plan *p = run_tile(g, &t, c, "");
    assert_non_null(p);
    assert_true(fx_metric(p, "tiles") >= 2);
    double d = fx_verify(p, g, &t, "cpu");
    fprintf(stderr, "resnet18 tile plan: max abs diff %g (%s)\n", d, p->note);
    assert_true(d < 1e-3);
    mb_plan_free(p);
    mb_cost_free(c);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apportion),
        cmocka_unit_test(test_fcn_tiles_stitch_exactly),
        cmocka_unit_test(test_tiny_three_tier),
        cmocka_unit_test(test_more_nodes_help),
        cmocka_unit_test(test_adjust_hill_climb),
        cmocka_unit_test(test_replan_moves_one_step),
        cmocka_unit_test(test_resnet18_verify_cpu),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fx_release();
    return rc;
}
