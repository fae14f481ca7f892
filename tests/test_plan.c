/* Plans: mb_plan_assign, the validator's rules (each with its error), tile
 * plans with halos executed in-process bit-exactly against the unsplit
 * model, JSON round trip, and the schedule simulation's arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/plan.h"
#include "mecbed/platform.h"
#include "policy_fixture.h"

static const char small_net[] =
    "mecbed-model 1\nname small\nseed 11\n"
    "Input x shape=1,3,20,18\n"
    "Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(8x3x3x3) B=const(8,0.01)\n"
    "Relu r1 c1\n"
    "MaxPool p1 r1 kernel=2,2 stride=2,2\n"
    "Conv c2 p1 kernel=3,3 pads=1,1,1,1 W=he(8x8x3x3)\n"
    "Add s2 c2,p1\n"
    "GlobalAveragePool gap s2\n"
    "Flatten fl gap axis=1\n"
    "Gemm fc fl trans_b=1 B=he(5x8) C=const(5,0)\n"
    "output fc\n";

static mb_graph *load_small(void)
{
    char path[] = "/tmp/mecbed-test-plan-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, small_net, sizeof(small_net) - 1), (ssize_t)(sizeof(small_net) - 1));
    close(fd);
    char err[512];
    mb_graph *g = mb_modelfile_read(path, err, sizeof(err));
    unlink(path);
    if (!g)
        fprintf(stderr, "%s\n", err);
    assert_non_null(g);
    return g;
}

static mb_topology two_sites(void)
{
    mb_topology t;
    char err[256];
    assert_int_equal(mb_topology_from_link("rate=10mbit,rtt=20ms", &t, err, sizeof(err)), 0);
    return t;
}

static void expect_invalid(const mb_plan *p, const mb_graph *g, const mb_topology *t,
                           const char *needle)
{
    char err[512];
    assert_int_equal(mb_plan_validate(p, g, t, err, sizeof(err)), -1);
    if (!strstr(err, needle))
        fprintf(stderr, "error '%s' lacks '%s'\n", err, needle);
    assert_non_null(strstr(err, needle));
}

static int idx(const mb_graph *g, const char *name)
{
    int i = mb_graph_find(g, name);
    assert_true(i >= 0);
    return i;
}

static void test_assign_and_validate(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_topology t = two_sites();
    char err[512];
    int where[16];
    /* device: x..p1, edge: the rest */
    for (int i = 0; i < g->n_nodes; i++)
        where[i] = i <= idx(g, "p1") ? 0 : 1;
    mb_plan *p = mb_plan_new("test", g, 0);
    assert_int_equal(mb_plan_assign(p, g, where, err, sizeof(err)), 0);
    assert_int_equal(mb_plan_validate(p, g, &t, err, sizeof(err)), 0);
    /* one send of p1 (read by c2 and s2 on the edge: once), one of fc back */
    int sends = 0;
    for (int k = 0; k < p->n_steps; k++)
        sends += p->steps[k].kind == MB_STEP_SEND;
    assert_int_equal(sends, 2);
    mb_plan_free(p);

    /* a missing input */
    p = mb_plan_new("test", g, 0);
    mb_plan_compute(p, idx(g, "c1"), 1, mb_node_full_region(g, idx(g, "c1")));
    expect_invalid(p, g, &t, "needs rows");
    mb_plan_free(p);
    /* a partial region of a non-local op */
    p = mb_plan_new("test", g, 0);
    for (int i = 1; i < g->n_nodes; i++) {
        mb_region r = mb_node_full_region(g, i);
        if (i == idx(g, "fl")) /* Flatten (Gemm on 2-D tensors is local along rows and columns) */
            r.w1 = 2;
        mb_plan_compute(p, i, 0, r);
    }
    expect_invalid(p, g, &t, "cannot compute a partial region");
    mb_plan_free(p);
    /* computing the same elements twice on one site */
    p = mb_plan_new("test", g, 0);
    mb_plan_compute(p, idx(g, "c1"), 0, mb_node_full_region(g, idx(g, "c1")));
    mb_plan_compute(p, idx(g, "c1"), 0, (mb_region){0, 2, 0, 18});
    expect_invalid(p, g, &t, "twice");
    mb_plan_free(p);
    /* output left on the edge */
    p = mb_plan_new("test", g, 0);
    for (int i = 0; i < g->n_nodes; i++)
        where[i] = 1;
    mb_plan_assign(p, g, where, err, sizeof(err));
    p->n_steps--; /* drop the send back */
    expect_invalid(p, g, &t, "does not end on the device");
    mb_plan_free(p);
    /* a send of something the sender does not have; a bad site */
    p = mb_plan_new("test", g, 0);
    mb_plan_send(p, idx(g, "c1"), mb_node_full_region(g, idx(g, "c1")), 0, 1);
    expect_invalid(p, g, &t, "does not hold");
    mb_plan_free(p);
    p = mb_plan_new("test", g, 0);
    mb_plan_compute(p, idx(g, "c1"), 7, mb_node_full_region(g, idx(g, "c1")));
    expect_invalid(p, g, &t, "out of range");
    mb_plan_free(p);
    /* an op never computed */
    p = mb_plan_new("test", g, 0);
    expect_invalid(p, g, &t, "not computed");
    mb_plan_free(p);
    mb_graph_free(g);
}

/* A tile plan: c1, r1, p1 split in two row bands across device and edge with
 * halos recomputed; the edge's band comes back for c2. Output must be
 * bit-exact with the unsplit model on the same backend. */
static mb_plan *tile_plan(const mb_graph *g)
{
    int c1 = idx(g, "c1"), r1 = idx(g, "r1"), p1 = idx(g, "p1"), x = idx(g, "x");
    mb_plan *p = mb_plan_new("tiles", g, 0);
    /* p1 is 10x9: device rows [0,5), edge rows [5,10) */
    mb_region pd = {0, 5, 0, 9}, pe = {5, 10, 0, 9};
    mb_region rd = mb_node_input_region(g, p1, 0, pd), re = mb_node_input_region(g, p1, 0, pe);
    mb_region cd = mb_node_input_region(g, r1, 0, rd), ce = mb_node_input_region(g, r1, 0, re);
    mb_region xe = mb_node_input_region(g, c1, 0, ce);
    mb_plan_send(p, x, xe, 0, 1);
    mb_plan_compute(p, c1, 0, cd);
    mb_plan_compute(p, c1, 1, ce);
    mb_plan_compute(p, r1, 0, rd);
    mb_plan_compute(p, r1, 1, re);
    mb_plan_compute(p, p1, 0, pd);
    mb_plan_compute(p, p1, 1, pe);
    mb_plan_send(p, p1, pe, 1, 0);
    for (int i = p1 + 1; i < g->n_nodes; i++)
        mb_plan_compute(p, i, 0, mb_node_full_region(g, i));
    return p;
}

/* TCP slow start on a cold connection (mb_cost_slow_start_ms): flights of
 * 10, 20, 40 segments of 1448 bytes a round trip until a window fills the
 * path, worked by hand. */
static void test_slow_start(void **state)
{
    (void)state;
    /* 50 kB at 50 Mbit/s, 40 ms: 14480 and 28960 bytes a round trip each,
     * then the last 6560 at the rate; 8.0 ms at the rate alone */
    assert_float_equal(mb_cost_slow_start_ms(50000, 50e6, 40), 80 + 6560 * 1.6e-4 - 8.0, 1e-9);
    /* 10 MB at 50 Mbit/s, 10 ms: three round trips (101,360 bytes), then a
     * window of 115,840 bytes fills the 62.5 kB path */
    assert_float_equal(mb_cost_slow_start_ms(10000000, 50e6, 10), 30 + (10000000 - 101360) * 1.6e-4 - 1600, 1e-6);
    assert_float_equal(mb_cost_slow_start_ms(14480, 50e6, 40), 0, 1e-12); /* one window */
    assert_float_equal(mb_cost_slow_start_ms(0, 50e6, 40), 0, 0);
    assert_float_equal(mb_cost_slow_start_ms(50000, 50e6, 0), 0, 0);
}

/* A state output partitioned over two sites: each keeps the rows it holds
 * under one key; the same op under two keys, or twice on a site, is refused. */
static void test_state_partitioned(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_topology t = two_sites();
    char err[512];
    int p1 = idx(g, "p1");
    g->outputs[g->n_outputs++] = p1; /* the tile plan computes p1 in halves */
    mb_plan *p = tile_plan(g);
    p->state[0] = (mb_plan_state){.site = 0, .in_op = -1, .out_op = p1, .key = 3};
    p->state[1] = (mb_plan_state){.site = 1, .in_op = -1, .out_op = p1, .key = 3};
    p->n_state = 2;
    if (mb_plan_validate(p, g, &t, err, sizeof err))
        fail_msg("%s", err);
    p->state[1].key = 4;
    assert_int_equal(mb_plan_validate(p, g, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "under two keys"));
    p->state[1] = (mb_plan_state){.site = 0, .in_op = -1, .out_op = p1, .key = 3};
    assert_int_equal(mb_plan_validate(p, g, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "twice on a site"));
    mb_plan_free(p);
    g->n_outputs--;
    mb_graph_free(g);
}

static void test_tile_plan_executes_bit_exact(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_topology t = two_sites();
    char err[512];
    mb_plan *p = tile_plan(g);
    if (mb_plan_validate(p, g, &t, err, sizeof(err)))
        fprintf(stderr, "%s\n", err);
    assert_int_equal(mb_plan_validate(p, g, &t, err, sizeof(err)), 0);
    const char *backends[] = {"ref", "cpu"};
    for (int b = 0; b < 2; b++) {
        mb_backend *be = mb_backend_new(backends[b], 1, err, sizeof(err));
        assert_non_null(be);
        mb_tensor **in = mb_exec_make_inputs(g, 5), **ref = NULL, **got = NULL;
        assert_int_equal(mb_exec_run(g, be, in, &ref, NULL, NULL, err, sizeof(err)), 0);
        int rc = mb_plan_execute(p, g, &t, be, in, &got, err, sizeof(err));
        if (rc)
            fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        double d = mb_tensor_max_abs_diff(ref[0], got[0]);
        printf("%s backend: tile plan max abs diff %g\n", backends[b], d);
        if (b == 0)
            assert_true(d == 0); /* the oracle computes each element the same way */
        else
            assert_true(d <= 1e-5);
        mb_tensor_free(in[0]);
        mb_tensor_free(ref[0]);
        mb_tensor_free(got[0]);
        free(in);
        free(ref);
        free(got);
        mb_backend_free(be);
    }
    /* 2x2/2 pooling: the bands of c1 and r1 meet without overlap (the halo is
     * only in the input rows shipped), so nothing is computed twice */
    mb_nodetype_set types;
    pf_types(&types, 4, 0.5);
    mb_profile *prof = pf_profile(g, 0.1, 1);
    mb_cost_model *c = mb_cost_new(g, &t, prof, &types, NULL, err, sizeof(err));
    assert_int_equal(mb_plan_evaluate(p, c, err, sizeof(err)), 0);
    assert_int_equal(p->pred.redundant_elems, 0);
    assert_true(p->pred.bytes_up > 0 && p->pred.bytes_up < g->nodes[0].out_bytes);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_plan_free(p);
    mb_graph_free(g);
}

static void test_json_round_trip(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_topology t = two_sites();
    char err[512];
    mb_plan *p = tile_plan(g);
    p->graph_hash = mb_graph_hash(g);
    char *js = mb_plan_to_json(p, g, &t, 1);
    assert_non_null(js);
    mb_plan *q = mb_plan_from_json(js, g, &t, err, sizeof(err));
    assert_non_null(q);
    assert_int_equal(q->n_steps, p->n_steps);
    for (int k = 0; k < p->n_steps; k++) {
        assert_int_equal(q->steps[k].kind, p->steps[k].kind);
        assert_int_equal(q->steps[k].op, p->steps[k].op);
        assert_int_equal(q->steps[k].site, p->steps[k].site);
        assert_memory_equal(&q->steps[k].region, &p->steps[k].region, sizeof(mb_region));
    }
    /* malformed input: errors name the problem */
    assert_null(mb_plan_from_json("{\"policy\":", g, &t, err, sizeof(err)));
    assert_non_null(strstr(err, "JSON"));
    assert_null(mb_plan_from_json("{\"policy\":\"x\",\"device\":\"moon\",\"steps\":[]}", g, &t, err,
                                  sizeof(err)));
    assert_non_null(strstr(err, "moon"));
    assert_null(mb_plan_from_json("{\"policy\":\"x\",\"device\":\"device\",\"steps\":[{\"kind\":"
                                  "\"compute\",\"op_name\":\"nope\",\"region\":[0,1,0,1],\"site\":"
                                  "\"device\"}]}",
                                  g, &t, err, sizeof(err)));
    assert_non_null(strstr(err, "nope"));
    /* a region entry beyond int64 (fuzz_plan_json: 1e92 was cast, undefined
     * behaviour) or a fraction is refused */
    char bad[512];
    snprintf(bad, sizeof bad,
             "{\"policy\":\"x\",\"device\":\"device\",\"steps\":[{\"kind\":\"compute\",\"op_name\":\"%s\","
             "\"region\":[0,1e92,0,1],\"site\":\"device\"}]}",
             g->nodes[1].name);
    assert_null(mb_plan_from_json(bad, g, &t, err, sizeof(err)));
    assert_non_null(strstr(err, "region entries must be integers"));
    free(js);
    mb_plan_free(q);
    /* shares (mb_plan.share) round-trip; a share for the device or out of
     * (0, 1] is refused */
    assert_false(mb_plan_has_shares(p));
    p->share[1] = 0.25;
    js = mb_plan_to_json(p, g, &t, 1);
    assert_non_null(strstr(js, "\"shares\""));
    q = mb_plan_from_json(js, g, &t, err, sizeof(err));
    assert_non_null(q);
    assert_true(q->share[1] == 0.25 && q->share[0] == 0);
    mb_plan_free(q);
    /* state bindings (generation's KV cache) round-trip by name; bad ones
     * are refused naming what is wrong */
    p->share[1] = 0;
    p->state[0] = (mb_plan_state){.site = 1, .in_op = -1, .out_op = g->outputs[0], .key = 7};
    p->state[1] = (mb_plan_state){.site = 0, .in_op = 0, .out_op = -1, .key = 4000000000u};
    p->n_state = 2;
    char *js2 = mb_plan_to_json(p, g, &t, 1);
    assert_non_null(strstr(js2, "\"state\""));
    q = mb_plan_from_json(js2, g, &t, err, sizeof(err));
    if (!q)
        fail_msg("%s", err);
    assert_int_equal(q->n_state, 2);
    assert_memory_equal(&q->state[0], &p->state[0], sizeof(mb_plan_state));
    assert_memory_equal(&q->state[1], &p->state[1], sizeof(mb_plan_state));
    mb_plan_free(q);
    const char *bad_state[][2] = {{"\"state\":[{\"site\":\"moon\",\"input\":\"x\",\"key\":1}]", "site"},
                                  {"\"state\":[{\"site\":\"device\",\"key\":1}]", "neither"},
                                  {"\"state\":[{\"site\":\"device\",\"output\":\"nope\",\"key\":1}]", "nope"},
                                  {"\"state\":[{\"site\":\"device\",\"output\":3,\"key\":1}]", "op name"},
                                  {"\"state\":[{\"site\":\"device\",\"output\":\"%s\",\"key\":-1}]", "key"},
                                  {"\"state\":[{\"site\":\"device\",\"output\":\"%s\",\"key\":1.5}]", "key"},
                                  {"\"state\":{}", "array"}};
    for (int k = 0; k < 7; k++) {
        char item[256], text[16384];
        snprintf(item, sizeof item, bad_state[k][0], g->nodes[g->outputs[0]].name);
        size_t n = strlen(js2);
        assert_true(n + strlen(item) + 2 < sizeof text);
        snprintf(text, sizeof text, "%.*s,%s}", (int)(n - 1), js2, item);
        char *st = strstr(text, "\"state\":[{\"site\"");
        assert_non_null(st);
        memcpy(st, "\"statx\"", 7); /* the plan's own bindings out of the way */
        assert_null(mb_plan_from_json(text, g, &t, err, sizeof(err)));
        if (!strstr(err, bad_state[k][1]))
            fail_msg("state case %d: '%s' lacks '%s'", k, err, bad_state[k][1]);
    }
    free(js2);
    p->n_state = 0;
    p->share[1] = 0.25;
    const char *bad_share[] = {"\"shares\":{\"device\":0.5}", "\"shares\":{\"%s\":1.5}", "\"shares\":[0.5]"};
    for (int k = 0; k < 3; k++) {
        char key[64], text[8192];
        snprintf(key, sizeof key, bad_share[k], t.sites[1].name);
        size_t n = strlen(js);
        assert_true(n + strlen(key) + 2 < sizeof text);
        snprintf(text, sizeof text, "%.*s,%s}", (int)(n - 1), js, key);
        char *sh = strstr(text, "\"shares\":{\"");
        assert_non_null(sh);
        memcpy(sh, "\"sharex\"", 8); /* the plan's own shares out of the way */
        assert_null(mb_plan_from_json(text, g, &t, err, sizeof(err)));
        assert_non_null(strstr(err, "shares"));
    }
    free(js);
    mb_plan_free(p);
    mb_graph_free(g);
}

/* The simulation of a two-site chain split equals the hand sum:
 * device ops + (bytes/goodput + delay + overhead) + edge ops + result back. */
static void test_evaluate_arithmetic(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_topology t;
    char err[512];
    assert_int_equal(mb_topology_from_link("rate=8mbit,delay=5ms", &t, err, sizeof(err)), 0);
    mb_nodetype_set types;
    pf_types(&types, 2.0, 0.5);
    mb_profile *prof = pf_profile(g, 0.2, 2);
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    o.msg_overhead_ms = 0.25;
    mb_cost_model *c = mb_cost_new(g, &t, prof, &types, &o, err, sizeof(err));
    assert_non_null(c);
    int where[16], p1 = idx(g, "p1");
    for (int i = 0; i < g->n_nodes; i++)
        where[i] = i <= p1 ? 0 : 1;
    mb_plan *p = mb_plan_new("t", g, 0);
    assert_int_equal(mb_plan_assign(p, g, where, err, sizeof(err)), 0);
    assert_int_equal(mb_plan_evaluate(p, c, err, sizeof(err)), 0);
    double want = 0;
    for (int i = 1; i < g->n_nodes; i++)
        want += prof->ms[i] * (i <= p1 ? 2.0 : 0.5);
    int fc = idx(g, "fc");
    double goodput = 8e6 * (1500.0 - 52.0) / 1500.0; /* TCP/IP headers of 1500-byte packets */
    assert_float_equal(mb_cost_goodput_bps(8e6, 0), goodput, 1e-6);
    want += g->nodes[p1].out_bytes * 8.0 / goodput * 1e3 + 5 + 0.25;
    want += g->nodes[fc].out_bytes * 8.0 / goodput * 1e3 + 5 + 0.25;
    assert_float_equal(p->pred.latency_ms, want, 1e-9);
    assert_int_equal(p->pred.bytes_up, g->nodes[p1].out_bytes);
    assert_int_equal(p->pred.bytes_down, g->nodes[fc].out_bytes);
    assert_float_equal(mb_cost_xfer_ms(c, 0, 1, 1000000), 8e9 / goodput + 5.25, 1e-9);
    mb_plan_free(p);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

/* A fork whose two branches cross the same link: the device computes a1
 * (2 ms x 2) and a2 (3 ms x 2) and sends both to the edge over one 8 Mbit/s,
 * 5 ms direction. The link carries one message at a time: a2, ready at 10 ms,
 * waits until a1 has been serialised (and its message overhead paid), not
 * until a1 has arrived. Then c (1 ms x 0.5) on the edge and its result back.
 * Every time below is summed by hand from the cost model's definition
 * (cost.h), not taken from the code under test. */
static void test_evaluate_shared_link_fork(void **state)
{
    (void)state;
    pf_fork f;
    char err[512];
    if (pf_fork_new(&f, err, sizeof(err)))
        fail_msg("%s", err);
    mb_plan *p = f.p;
    /* goodput 8 Mbit/s x 1448/1500 = 7722666.67 bit/s: 100000 B -> 103.5912 ms,
     * 50000 B -> 51.7956 ms, 4000 B -> 4.1436 ms */
    double gp = 8e6 * 1448.0 / 1500.0;
    double s1 = 800000 / gp * 1e3, s2 = 400000 / gp * 1e3, s3 = 32000 / gp * 1e3;
    assert_float_equal(s1, 103.5912, 1e-4);
    /* a1 on the device 0..4, a2 4..10 */
    assert_float_equal(p->steps[0].t_end_ms, 4, 1e-12);
    assert_float_equal(p->steps[1].t_end_ms, 10, 1e-12);
    /* a1 leaves at 4 and arrives at 4 + 103.5912 + 0.25 + 5 = 112.8412 */
    assert_float_equal(p->steps[2].t_start_ms, 4, 1e-9);
    assert_float_equal(p->steps[2].t_end_ms, 4 + s1 + 0.25 + 5, 1e-9);
    /* a2 leaves when the link is free (107.8412), not at 10 and not at
     * a1's arrival; it arrives 51.7956 + 0.25 + 5 later: 164.8868 */
    assert_float_equal(p->steps[3].t_start_ms, 4 + s1 + 0.25, 1e-9);
    double a2_in = 4 + s1 + 0.25 + s2 + 0.25 + 5;
    assert_float_equal(p->steps[3].t_end_ms, a2_in, 1e-9);
    assert_float_equal(a2_in, 164.8868, 1e-3);
    /* c on the edge: 0.5 ms after both inputs; back over the down direction */
    assert_float_equal(p->steps[4].t_start_ms, a2_in, 1e-9);
    double lat = a2_in + 0.5 + s3 + 0.25 + 5;
    assert_float_equal(p->pred.latency_ms, lat, 1e-9);
    assert_float_equal(lat, 174.7804, 1e-3);
    assert_int_equal(p->pred.bytes_up, 150000);
    assert_int_equal(p->pred.bytes_down, 4000);
    assert_float_equal(p->pred.device_compute_ms, 10, 1e-12);
    pf_fork_free(&f);
}

/* A device-edge-cloud path, hand-summed: x -> b (device) -> d (cloud) -> e
 * (edge) -> the device. b crosses two links store-and-forward (device ->
 * edge0 at 8 Mbit/s + 5 ms, edge0 -> cloud at 100 Mbit/s + 20 ms), d comes
 * back one hop on the cloud link's down direction (50 Mbit/s + 15 ms), and
 * e the last hop on the access link's down direction (20 Mbit/s + 10 ms).
 * Node types: phone x2, edge-cpu x0.5, cloud-gpu x0.125. */
static void test_evaluate_device_edge_cloud(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("path");
    int x = pf_op(g, "x", 40000, -1, -1);
    int b = pf_op(g, "b", 20000, x, -1);
    int d = pf_op(g, "d", 8000, b, -1);
    int e = pf_op(g, "e", 400, d, -1);
    g->n_outputs = 1;
    g->outputs[0] = e;
    mb_profile *prof = mb_profile_new(g);
    prof->ref_gflops = 100;
    prof->ms[b] = 1.5, prof->ms[d] = 40, prof->ms[e] = 6;
    char err[512];
    mb_topology t;
    memset(&t, 0, sizeof(t));
    t.n_sites = 3;
    const char *names[] = {"device", "edge0", "cloud"}, *ty[] = {"phone", "edge-cpu", "cloud-gpu"};
    for (int i = 0; i < 3; i++) {
        snprintf(t.sites[i].name, sizeof(t.sites[i].name), "%s", names[i]);
        snprintf(t.sites[i].node_type, sizeof(t.sites[i].node_type), "%s", ty[i]);
        t.sites[i].role = (mb_role)i;
    }
    t.n_links = 2;
    t.links[0].a = 0, t.links[0].b = 1;
    t.links[1].a = 1, t.links[1].b = 2;
    assert_int_equal(mb_linkspec_parse("up.rate=8mbit,down.rate=20mbit,up.delay=5ms,down.delay=10ms",
                                       &t.links[0].spec, err, sizeof(err)),
                     0);
    assert_int_equal(mb_linkspec_parse("up.rate=100mbit,down.rate=50mbit,up.delay=20ms,down.delay=15ms",
                                       &t.links[1].spec, err, sizeof(err)),
                     0);
    mb_nodetype_set types;
    pf_types(&types, 2.0, 0.5);
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    o.msg_overhead_ms = 0.1;
    mb_cost_model *cm = mb_cost_new(g, &t, prof, &types, &o, err, sizeof(err));
    if (!cm)
        fail_msg("%s", err);
    int route[4];
    assert_int_equal(mb_cost_route(cm, 0, 2, route, 4), 3);
    assert_int_equal(route[1], 1);
    mb_plan *p = mb_plan_new("t", g, 0);
    mb_plan_compute(p, b, 0, mb_node_full_region(g, b));
    mb_plan_send(p, b, mb_node_full_region(g, b), 0, 2);
    mb_plan_compute(p, d, 2, mb_node_full_region(g, d));
    mb_plan_send(p, d, mb_node_full_region(g, d), 2, 1);
    mb_plan_compute(p, e, 1, mb_node_full_region(g, e));
    mb_plan_send(p, e, mb_node_full_region(g, e), 1, 0);
    assert_int_equal(mb_plan_evaluate(p, cm, err, sizeof(err)), 0);
    double k = 1448.0 / 1500.0; /* goodput of a shaped rate */
    double t_b = 1.5 * 2;                                                  /* 3 */
    double hop1 = 20000 * 8 / (8e6 * k) * 1e3 + 0.1 + 5;                   /* 25.8182 */
    /* edge0 forwards b to the cloud packet by packet (cut-through): the
     * second hop, 8x faster, ends one 1500-byte packet after the first */
    double hop2 = 1500 * 8 / (100e6 * k) * 1e3 + 0.1 + 20;                 /* 20.2243 */
    double t_d = 40 * 0.125;                                               /* 5 */
    double back1 = 8000 * 8 / (50e6 * k) * 1e3 + 0.1 + 15;                 /* 16.4260 */
    double t_e = 6 * 0.5;                                                  /* 3 */
    double back2 = 400 * 8 / (20e6 * k) * 1e3 + 0.1 + 10;                  /* 10.2657 */
    assert_float_equal(p->steps[1].t_end_ms, t_b + hop1 + hop2, 1e-9);
    assert_float_equal(p->steps[2].t_end_ms, t_b + hop1 + hop2 + t_d, 1e-9);
    double lat = t_b + hop1 + hop2 + t_d + back1 + t_e + back2;
    assert_float_equal(p->pred.latency_ms, lat, 1e-9);
    assert_float_equal(lat, 83.7342, 1e-3);
    /* the device's radio sees b go up and e come down; d crosses the backbone */
    assert_int_equal(p->pred.bytes_up, 20000);
    assert_int_equal(p->pred.bytes_down, 400);
    assert_int_equal(p->pred.bytes_backbone, 20000 + 8000);
    mb_plan_free(p);
    /* d straight from the cloud to the device: the second hop (20 Mbit/s)
     * is the slower, so it sets the pace once the first packet is over */
    p = mb_plan_new("t", g, 0);
    mb_plan_compute(p, b, 0, mb_node_full_region(g, b));
    mb_plan_send(p, b, mb_node_full_region(g, b), 0, 2);
    mb_plan_compute(p, d, 2, mb_node_full_region(g, d));
    mb_plan_send(p, d, mb_node_full_region(g, d), 2, 0);
    mb_plan_compute(p, e, 0, mb_node_full_region(g, e));
    assert_int_equal(mb_plan_evaluate(p, cm, err, sizeof(err)), 0);
    double t0 = t_b + hop1 + hop2 + t_d;
    double first_in = 1500 * 8 / (50e6 * k) * 1e3 + 15; /* the first packet at edge0 */
    double down = fmax(first_in + 8000 * 8 / (20e6 * k) * 1e3,
                       8000 * 8 / (50e6 * k) * 1e3 + 0.1 + 15 + 1500 * 8 / (20e6 * k) * 1e3) +
                  0.1 + 10;
    assert_float_equal(down, 28.6635, 1e-3);
    assert_float_equal(p->steps[3].t_end_ms, t0 + down, 1e-9);
    assert_float_equal(p->pred.latency_ms, t0 + down + 6 * 2, 1e-9);
    mb_plan_free(p);
    mb_cost_free(cm);
    mb_profile_free(prof);
    mb_graph_free(g);
}

/* Profiles: CSV round trip, and the reader's errors name file and line. */
static void test_profile_csv(void **state)
{
    (void)state;
    mb_graph *g = load_small();
    mb_profile *p = pf_profile(g, 0.1, 1);
    p->whole_ms = 3.5;
    char path[] = "/tmp/mecbed-prof-XXXXXX", err[512];
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(mb_profile_write_csv(p, g, path, err, sizeof(err)), 0);
    mb_profile *q = mb_profile_read_csv(path, g, err, sizeof(err));
    assert_non_null(q);
    for (int i = 0; i < g->n_nodes; i++)
        assert_float_equal(q->ms[i], p->ms[i], 1e-6);
    assert_float_equal(q->ref_gflops, 100, 1e-9);
    assert_float_equal(q->whole_ms, 3.5, 1e-9);
    assert_float_equal(mb_profile_op_scale(q), 3.5 / mb_profile_total_ms(q), 1e-9);
    mb_profile_free(q);
    const char *bad[][2] = {
        {"# ref_gflops=10\nop,name,type,ms\n0,y,Input,0\n", ":3: op 0 is 'y'"},
        {"# ref_gflops=10\nop,name,type,ms\n0,x,Input,-1\n", ":3: ms '-1'"},
        {"# ref_gflops=10\nop,name,type,ms\n0,x,Input,0\n0,x,Input,0\n", "twice"},
        {"# ref_gflops=10\nop,name,type,ms\n0,x,Input,0\n", "ops profiled"},
        {"hello\n", ":1: expected the header"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        FILE *f = fopen(path, "w");
        fputs(bad[k][0], f);
        fclose(f);
        assert_null(mb_profile_read_csv(path, g, err, sizeof(err)));
        if (!strstr(err, bad[k][1]))
            fprintf(stderr, "'%s' lacks '%s'\n", err, bad[k][1]);
        assert_non_null(strstr(err, bad[k][1]));
        assert_non_null(strstr(err, path));
    }
    /* a complete profile without the sgemm rate node types scale by */
    p->ref_gflops = 0;
    assert_int_equal(mb_profile_write_csv(p, g, path, err, sizeof(err)), 0);
    assert_null(mb_profile_read_csv(path, g, err, sizeof(err)));
    assert_non_null(strstr(err, "ref_gflops"));
    unlink(path);
    mb_profile_free(p);
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_and_validate),
        cmocka_unit_test(test_tile_plan_executes_bit_exact),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_evaluate_arithmetic),
        cmocka_unit_test(test_evaluate_shared_link_fork),
        cmocka_unit_test(test_evaluate_device_edge_cloud),
        cmocka_unit_test(test_state_partitioned),
        cmocka_unit_test(test_slow_start),
        cmocka_unit_test(test_profile_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
