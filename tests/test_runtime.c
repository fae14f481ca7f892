/* Distributed runtime on loopback: forked `mecbed node` servers and the
 * runner execute plans (whole-op splits, row tiles, three sites, several
 * frames, a re-plan); the outputs equal the unsplit model's. Faults: a node
 * that dies, one that sends garbage, one that stalls: each frame fails
 * within the timeout with a message naming the node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/auth.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/plan.h"
#include "mecbed/platform.h"
#include "mecbed/runtime.h"
#include "mecbed/wire.h"
#include "../runtime/rt_exec.h"

static const char net_text[] =
    "mecbed-model 1\nname rt_net\nseed 11\n"
    "Input x shape=1,3,40,36\n"
    "Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(8x3x3x3) B=const(8,0.01)\n"
    "Relu r1 c1\n"
    "Conv c2 r1 kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x8x3x3)\n"
    "Relu r2 c2\n"
    "Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(16x16x3x3)\n"
    "Add s3 c3,r2\n"
    "MaxPool p3 s3 kernel=3,3 stride=2,2 pads=1,1,1,1\n"
    "Conv c4 p3 kernel=1,1 W=he(16x16x1x1)\n"
    "Relu r4 c4\n"
    "GlobalAveragePool gap r4\n"
    "Flatten fl gap axis=1\n"
    "Gemm fc fl trans_b=1 B=he(10x16) C=const(10,0)\n"
    "output fc\n";

static char model_path[64];
static uint8_t test_key[MB_KEY_LEN]; /* the run's key: nodes and runner share it */
static mb_graph *g;
static mb_backend *be;
static mb_tensor **inputs;
static mb_tensor **ref_out;

static int setup(void **state)
{
    (void)state;
    char err[512];
    snprintf(model_path, sizeof model_path, "/tmp/mb-rt-%d.model", (int)getpid());
    if (mb_key_generate(test_key, err, sizeof err))
        return -1;
    FILE *f = fopen(model_path, "w");
    if (!f)
        return -1;
    fputs(net_text, f);
    fclose(f);
    g = mb_model_load(model_path, err, sizeof err);
    be = mb_backend_new("cpu", 1, err, sizeof err);
    if (!g || !be) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    inputs = mb_exec_make_inputs(g, 5);
    if (mb_exec_run(g, be, inputs, &ref_out, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    return 0;
}

/* A topology of n sites: device, edge0, cloud (no links needed on loopback). */
static void make_topo(mb_topology *t, int n)
{
    memset(t, 0, sizeof *t);
    const char *names[] = {"device", "edge0", "cloud"};
    for (int i = 0; i < n; i++) {
        snprintf(t->sites[i].name, sizeof t->sites[i].name, "%s", names[i]);
        t->sites[i].role = i == 0 ? MB_ROLE_DEVICE : i == 1 ? MB_ROLE_EDGE : MB_ROLE_CLOUD;
    }
    t->n_sites = n;
}

typedef struct cluster {
    int n;
    pid_t pid[3];
    char addrs[MB_MAX_SITES][64];
    int dev_lfd;
} cluster;

/* Fork one node per non-device site, each serving one session. */
static void cluster_start(cluster *c, int n)
{
    char err[256];
    memset(c, 0, sizeof *c);
    c->n = n;
    int port;
    c->dev_lfd = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
    assert_true(c->dev_lfd >= 0);
    snprintf(c->addrs[0], 64, "127.0.0.1:%d", port);
    for (int i = 1; i < n; i++) {
        int lfd = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
        assert_true(lfd >= 0);
        snprintf(c->addrs[i], 64, "127.0.0.1:%d", port);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(c->dev_lfd);
            const char *files[] = {model_path};
            mb_node_opts o = {.listen_fd = lfd, .threads = 1, .kernels = "cpu", .sessions = 1,
                              .role = i == 1 ? "edge" : "cloud", .key = test_key, .model_files = files,
                              .n_model_files = 1};
            char e[256];
            int rc = mb_node_serve(&o, NULL, e, sizeof e);
            _exit(rc ? 1 : 0);
        }
        close(lfd);
        c->pid[i] = pid;
    }
}

/* Wait for the nodes to exit on their own (they serve one session). */
static void cluster_stop(cluster *c, int expect_clean)
{
    for (int i = 1; i < c->n; i++) {
        int st = 0;
        double t0 = mb_now();
        pid_t w = 0;
        while ((w = waitpid(c->pid[i], &st, WNOHANG)) == 0 && mb_now() - t0 < 5)
            usleep(10000);
        if (w == 0) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], &st, 0);
            fail_msg("node %d did not end after the session", i);
        }
        if (expect_clean)
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    if (c->dev_lfd >= 0)
        close(c->dev_lfd);
}

static mb_runner *runner_for(cluster *c, const mb_topology *t, double timeout)
{
    mb_runner_opts o = {.model = "net", .g = g, .topo = t, .device = 0, .listen_fd = c->dev_lfd,
                        .be = be, .timeout_s = timeout, .key = test_key};
    memcpy(o.addrs, c->addrs, sizeof o.addrs);
    char err[512];
    mb_runner *r = mb_runner_new(&o, err, sizeof err);
    if (!r)
        fail_msg("runner: %s", err);
    c->dev_lfd = -1; /* the runner's now */
    return r;
}

static void run_and_compare(mb_runner *r, const mb_plan *p, uint32_t frames)
{
    char err[512];
    if (mb_runner_plan(r, p, err, sizeof err))
        fail_msg("plan: %s", err);
    for (uint32_t f = 0; f < frames; f++) {
        mb_tensor **out = NULL;
        mb_timeline tl;
        mb_timeline_init(&tl);
        mb_frame_report rep;
        if (mb_runner_frame(r, f, inputs, &out, &tl, &rep))
            fail_msg("frame %u: %s", f, rep.error);
        assert_true(rep.ok);
        assert_true(rep.latency_ms > 0);
        double d = mb_tensor_max_abs_diff(out[0], ref_out[0]);
        if (d > 1e-4)
            fail_msg("split output differs from the unsplit one by %g", d);
        /* every step of the plan shows up: computes once, sends twice */
        int n_compute = 0, n_send = 0, n_recv = 0;
        for (int i = 0; i < tl.n; i++) {
            n_compute += tl.ev[i].kind == MB_EV_COMPUTE;
            n_send += tl.ev[i].kind == MB_EV_SEND;
            n_recv += tl.ev[i].kind == MB_EV_RECV;
            assert_true(tl.ev[i].t1 >= tl.ev[i].t0);
        }
        int pc = 0, ps = 0;
        for (int i = 0; i < p->n_steps; i++) {
            pc += p->steps[i].kind == MB_STEP_COMPUTE;
            ps += p->steps[i].kind == MB_STEP_SEND;
        }
        assert_int_equal(n_compute, pc);
        assert_int_equal(n_send, ps);
        assert_int_equal(n_recv, ps);
        mb_tensor_free(out[0]);
        free(out);
        mb_timeline_free(&tl);
    }
}

static mb_plan *assign_plan(const int *site_of_op)
{
    char err[256];
    mb_plan *p = mb_plan_new("test", g, 0);
    if (mb_plan_assign(p, g, site_of_op, err, sizeof err))
        fail_msg("%s", err);
    return p;
}

static void test_two_sites_layer_split(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 2);
    cluster c;
    cluster_start(&c, 2);
    mb_runner *r = runner_for(&c, &t, 10);
    int site[64] = {0};
    for (int i = mb_graph_find(g, "c2"); i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *p = assign_plan(site);
    run_and_compare(r, p, 3);
    /* re-plan: everything on the edge */
    for (int i = 0; i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *p2 = assign_plan(site);
    run_and_compare(r, p2, 2);
    mb_runner_free(r);
    cluster_stop(&c, 1);
    mb_plan_free(p);
    mb_plan_free(p2);
}

/* Rows of c1..s3 split between device and edge with halos: regions, not
 * whole tensors, cross; both sides compute at once. */
static void test_row_tiles(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 2);
    char err[512];
    mb_plan *p = mb_plan_new("tiles", g, 0);
    int x = mb_graph_find(g, "x");
    const char *chain[] = {"c1", "r1", "c2", "r2", "c3", "s3"};
    int n = 6;
    int ops[6];
    for (int i = 0; i < n; i++)
        ops[i] = mb_graph_find(g, chain[i]);
    /* Walk the edge's half (bottom rows of s3) back to the input rows it needs. */
    mb_region need[6];
    mb_region full = mb_node_full_region(g, ops[n - 1]);
    int64_t mid = (full.h1 + full.h0) / 2;
    mb_region dev_half = full, edge_half = full;
    dev_half.h1 = mid;
    edge_half.h0 = mid;
    /* What the edge needs of each op: s3 reads c3 and r2, so r2's rows
     * cover both c3's input and s3's second operand. */
    need[n - 1] = edge_half;
    need[4] = mb_node_input_region(g, ops[5], 0, need[5]);            /* c3 */
    mb_region r2_for_s3 = mb_node_input_region(g, ops[5], 1, need[5]);
    mb_region r2_for_c3 = mb_node_input_region(g, ops[4], 0, need[4]);
    need[3] = r2_for_c3;
    if (r2_for_s3.h0 < need[3].h0)
        need[3].h0 = r2_for_s3.h0;
    if (r2_for_s3.h1 > need[3].h1)
        need[3].h1 = r2_for_s3.h1;
    need[2] = mb_node_input_region(g, ops[3], 0, need[3]);
    need[1] = mb_node_input_region(g, ops[2], 0, need[2]);
    need[0] = mb_node_input_region(g, ops[1], 0, need[1]);
    mb_region in_need = mb_node_input_region(g, ops[0], 0, need[0]);
    mb_plan_send(p, x, in_need, 0, 1);
    /* device: everything of its half, computed whole for simplicity on the full range
     * of each op restricted to rows the device's half of s3 needs */
    mb_region dneed[6];
    dneed[5] = dev_half;
    dneed[4] = mb_node_input_region(g, ops[5], 0, dneed[5]);
    mb_region a = mb_node_input_region(g, ops[5], 1, dneed[5]);
    mb_region b2 = mb_node_input_region(g, ops[4], 0, dneed[4]);
    dneed[3] = b2;
    if (a.h0 < dneed[3].h0)
        dneed[3].h0 = a.h0;
    if (a.h1 > dneed[3].h1)
        dneed[3].h1 = a.h1;
    dneed[2] = mb_node_input_region(g, ops[3], 0, dneed[3]);
    dneed[1] = mb_node_input_region(g, ops[2], 0, dneed[2]);
    dneed[0] = mb_node_input_region(g, ops[1], 0, dneed[1]);
    for (int i = 0; i < n; i++) {
        mb_plan_compute(p, ops[i], 1, need[i]);
        mb_plan_compute(p, ops[i], 0, dneed[i]);
    }
    mb_plan_send(p, ops[n - 1], edge_half, 1, 0);
    for (int i = mb_graph_find(g, "p3"); i < g->n_nodes; i++)
        mb_plan_compute(p, i, 0, mb_node_full_region(g, i));
    if (mb_plan_validate(p, g, &t, err, sizeof err))
        fail_msg("tile plan invalid: %s", err);
    cluster c;
    cluster_start(&c, 2);
    mb_runner *r = runner_for(&c, &t, 10);
    run_and_compare(r, p, 2);
    mb_runner_free(r);
    cluster_stop(&c, 1);
    mb_plan_free(p);
}

static void test_three_sites(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 3);
    cluster c;
    cluster_start(&c, 3);
    mb_runner *r = runner_for(&c, &t, 10);
    int site[64] = {0};
    for (int i = mb_graph_find(g, "c2"); i < g->n_nodes; i++)
        site[i] = 1;
    for (int i = mb_graph_find(g, "c4"); i < g->n_nodes; i++)
        site[i] = 2;
    mb_plan *p = assign_plan(site);
    run_and_compare(r, p, 2);
    mb_runner_free(r);
    cluster_stop(&c, 1);
    mb_plan_free(p);
}

/* Streams: three frames submitted at once pipeline across the sites (the
 * device works on frame 1 while the edge still computes frame 0), and each
 * comes back right. */
static void test_pipelined_frames(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 2);
    cluster c;
    cluster_start(&c, 2);
    mb_runner *r = runner_for(&c, &t, 10);
    int site[64] = {0};
    for (int i = mb_graph_find(g, "c3"); i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *p = assign_plan(site);
    char err[512];
    if (mb_runner_plan(r, p, err, sizeof err))
        fail_msg("%s", err);
    mb_frame_report rep;
    /* The edge is held stopped for 100 ms while the frames go in, so frame
     * 10 cannot come back before the device has had ample time to start
     * frame 11: the order below is the runner's doing, not the scheduler's
     * (unheld, the margin is the edge's compute time, ~0.4 ms, and a busy
     * CI host once lost it). */
    assert_int_equal(kill(c.pid[1], SIGSTOP), 0);
    for (uint32_t f = 10; f < 13; f++)
        if (mb_runner_submit(r, f, inputs, &rep)) {
            kill(c.pid[1], SIGCONT);
            fail_msg("submit %u: %s", f, rep.error);
        }
    assert_int_equal(mb_runner_in_flight(r), 3);
    /* a fourth would exceed the window */
    assert_int_equal(mb_runner_submit(r, 13, inputs, &rep), -1);
    assert_false(mb_runner_broken(r));
    usleep(100000);
    assert_int_equal(kill(c.pid[1], SIGCONT), 0);
    mb_timeline tl;
    mb_timeline_init(&tl);
    for (uint32_t f = 10; f < 13; f++) {
        mb_tensor **out = NULL;
        int rc;
        while ((rc = mb_runner_collect(r, f, mb_now() + 0.05, &out, &tl, &rep)) == 0)
            ;
        if (rc != 1)
            fail_msg("frame %u: %s", f, rep.error);
        assert_true(mb_tensor_max_abs_diff(out[0], ref_out[0]) <= 1e-4);
        mb_tensor_free(out[0]);
        free(out);
    }
    assert_int_equal(mb_runner_in_flight(r), 0);
    /* Pipelined: the device starts frame 11 before frame 10 is back (its
     * compute thread goes on while the edge still works on frame 10). */
    double start11 = 1e300, end10 = 0;
    for (int i = 0; i < tl.n; i++) {
        const mb_event *e = &tl.ev[i];
        if (e->site == 0 && e->frame == 11 && e->t0 < start11)
            start11 = e->t0;
        if (e->site == 0 && e->frame == 10 && e->t1 > end10)
            end10 = e->t1;
    }
    printf("frame 11 started %.3f ms before frame 10 ended\n", (end10 - start11) * 1e3);
    assert_true(start11 < end10);
    mb_timeline_free(&tl);
    mb_runner_free(r);
    cluster_stop(&c, 1);
    mb_plan_free(p);
}

/* The congestion control of a runtime connection, both ends. */
static void conn_cc(char *out_c, char *out_a, size_t n)
{
    char err[256];
    int port;
    int lfd = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
    assert_true(lfd >= 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int c = mb_connect_addr(addr, 2, err, sizeof err);
    assert_true(c >= 0);
    int a = accept(lfd, NULL, NULL);
    assert_true(a >= 0);
    socklen_t l = (socklen_t)n;
    memset(out_c, 0, n);
    memset(out_a, 0, n);
    assert_int_equal(getsockopt(c, IPPROTO_TCP, TCP_CONGESTION, out_c, &l), 0);
    l = (socklen_t)n;
    assert_int_equal(getsockopt(a, IPPROTO_TCP, TCP_CONGESTION, out_a, &l), 0);
    close(a), close(c), close(lfd);
}

/* Runtime connections use cubic whatever the host's default (the cost
 * model's slow start is Reno/cubic's), or what MECBED_TCP_CC names, on the
 * connecting and the accepting end alike. */
static void test_congestion_control(void **state)
{
    (void)state;
    char c[32], a[32];
    unsetenv("MECBED_TCP_CC");
    conn_cc(c, a, sizeof c);
    assert_string_equal(c, "cubic");
    assert_string_equal(a, "cubic");
    setenv("MECBED_TCP_CC", "reno", 1);
    conn_cc(c, a, sizeof c);
    unsetenv("MECBED_TCP_CC");
    assert_string_equal(c, "reno");
    assert_string_equal(a, "reno");
}

/* ---- faults: a fake node speaking the protocol, then misbehaving ---- */

enum { FAKE_DIE_AFTER_FRAME, FAKE_GARBAGE, FAKE_STALL };

static void fake_node(int lfd, int mode)
{
    char err[512];
    int ctl = accept(lfd, NULL, NULL);
    if (ctl < 0)
        _exit(2);
    mb_wire_hdr h;
    uint8_t *p;
    mb_hello hl;
    mb_auth au = {.on = 1};
    memcpy(au.key, test_key, MB_KEY_LEN);
    if (mb_auth_server(ctl, &au, mb_now() + 5, &hl, err, sizeof err))
        _exit(3);
    mb_graph *mg = mb_model_load(model_path, err, sizeof err);
    if (!mg)
        _exit(4);
    mb_wbuf b;
    mb_wbuf_init(&b);
    mb_hello me = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_NODE, .site = -1,
                   .graph_hash = mb_graph_hash(mg), .clock_ns = mb_wire_clock_ns(),
                   .host_id = mb_wire_host_id()};
    mb_hello_encode(&me, &b);
    mb_wire_send(ctl, MB_MSG_HELLO, 0, b.p, b.len, err, sizeof err);
    mb_wbuf_free(&b);
    if (mb_wire_recv(ctl, MB_MSG_BIT(MB_MSG_PLAN), 0, mb_now() + 5, &h, &p, err, sizeof err))
        _exit(5);
    mb_wire_plan wp;
    if (mb_wire_plan_decode(p, h.len, mg, &wp, err, sizeof err))
        _exit(6);
    free(p);
    int data = mb_connect_addr(wp.topo.sites[0].address, 5, err, sizeof err);
    if (data < 0)
        _exit(7);
    mb_hello peer = me;
    peer.role = MB_WIRE_ROLE_PEER;
    peer.site = wp.your_site;
    peer.epoch = wp.epoch;
    if (mb_auth_client(data, &au, &peer, mb_now() + 5, NULL, err, sizeof err))
        _exit(10);
    /* the runner's own data connection to this site: prove the key to it */
    int din = accept(lfd, NULL, NULL);
    mb_hello dh;
    if (din < 0 || mb_auth_server(din, &au, mb_now() + 5, &dh, err, sizeof err))
        _exit(11);
    mb_wire_send(ctl, MB_MSG_READY, 0, NULL, 0, err, sizeof err);
    if (mb_wire_recv(ctl, MB_MSG_BIT(MB_MSG_FRAME), 0, mb_now() + 5, &h, &p, err, sizeof err))
        _exit(8);
    if (mode == FAKE_DIE_AFTER_FRAME)
        _exit(0); /* as if killed: both connections drop */
    if (mode == FAKE_GARBAGE) {
        uint8_t junk[256];
        for (int i = 0; i < (int)sizeof junk; i++)
            junk[i] = (uint8_t)(i * 37 + 11);
        if (write(data, junk, sizeof junk) < 0)
            _exit(9);
        /* wait for the device's ERROR, then go */
        uint8_t tmp[512];
        while (read(data, tmp, sizeof tmp) > 0)
            ;
        _exit(0);
    }
    /* FAKE_STALL: hold everything open, say nothing */
    sleep(30);
    _exit(0);
}

static void run_fault(int mode, double timeout, const char *needle)
{
    mb_topology t;
    make_topo(&t, 2);
    char err[512];
    cluster c;
    memset(&c, 0, sizeof c);
    c.n = 2;
    int port;
    c.dev_lfd = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
    snprintf(c.addrs[0], 64, "127.0.0.1:%d", port);
    int lfd = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
    snprintf(c.addrs[1], 64, "127.0.0.1:%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(c.dev_lfd);
        fake_node(lfd, mode);
    }
    close(lfd);
    mb_runner *r = runner_for(&c, &t, timeout);
    int site[64] = {0};
    for (int i = mb_graph_find(g, "c2"); i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *p = assign_plan(site);
    if (mb_runner_plan(r, p, err, sizeof err))
        fail_msg("plan: %s", err);
    mb_tensor **out = NULL;
    mb_frame_report rep;
    double t0 = mb_now();
    int rc = mb_runner_frame(r, 0, inputs, &out, NULL, &rep);
    double took = mb_now() - t0;
    assert_int_equal(rc, -1);
    assert_false(rep.ok);
    assert_null(out);
    if (!strstr(rep.error, needle))
        fail_msg("failure report '%s' should mention '%s'", rep.error, needle);
    /* detected within the timeout (plus scheduling slack) */
    if (took > timeout + 0.5)
        fail_msg("failure took %.2f s to detect (timeout %.1f s)", took, timeout);
    /* and the session stays broken: the next frame fails at once */
    assert_true(mb_runner_broken(r));
    assert_int_equal(mb_runner_frame(r, 1, inputs, &out, NULL, &rep), -1);
    t0 = mb_now();
    mb_runner_free(r);
    assert_true(mb_now() - t0 < 2);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mb_plan_free(p);
}

static void test_fault_node_dies(void **state)
{
    (void)state;
    run_fault(FAKE_DIE_AFTER_FRAME, 3, "edge0");
}

static void test_fault_garbage(void **state)
{
    (void)state;
    run_fault(FAKE_GARBAGE, 3, "bad frame from edge0");
}

static void test_fault_stall(void **state)
{
    (void)state;
    run_fault(FAKE_STALL, 1, "timeout");
}

/* A node refuses a runner whose model hash differs. */
static void test_hash_mismatch(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 2);
    cluster c;
    cluster_start(&c, 2);
    char err[512];
    char other_path[80];
    snprintf(other_path, sizeof other_path, "%s.other", model_path);
    FILE *f = fopen(other_path, "w");
    assert_non_null(f);
    char *text = strdup(net_text);
    memcpy(strstr(text, "seed 11"), "seed 12", 7);
    fputs(text, f);
    fclose(f);
    free(text);
    mb_graph *other = mb_model_load(other_path, err, sizeof err);
    unlink(other_path);
    assert_non_null(other);
    mb_runner_opts o = {.model = "net", .g = other, .topo = &t, .device = 0,
                        .listen_fd = c.dev_lfd, .be = be, .timeout_s = 5, .key = test_key};
    memcpy(o.addrs, c.addrs, sizeof o.addrs);
    mb_runner *r = mb_runner_new(&o, err, sizeof err);
    assert_null(r);
    /* the node says it lacks the model, and nothing about its own files or hashes */
    if (!strstr(err, "not available on this node") || strstr(err, "/tmp") || strstr(err, model_path))
        fail_msg("'%s' should say the node lacks the model, naming none of its files", err);
    c.dev_lfd = -1;
    cluster_stop(&c, 1);
    mb_graph_free(other);
}

/* Time dilation never ends an op before factor x its CPU time; factors
 * below 1 mean none. */
static void test_dilation(void **state)
{
    (void)state;
    mb_rt_set_slowdown(0.5);
    assert_true(mb_rt_slowdown() == 1.0);
    mb_rt_set_slowdown(4.0);
    double t0 = mb_now(), c0 = mb_rt_thread_cpu_s();
    volatile double x = 0;
    while (mb_rt_thread_cpu_s() - c0 < 0.01)
        x += 1.0;
    double cpu = mb_rt_thread_cpu_s() - c0;
    mb_rt_dilate(t0, cpu);
    double wall = mb_now() - t0;
    mb_rt_set_slowdown(1.0);
    if (wall < 4.0 * cpu)
        fail_msg("dilated op took %.3f ms, less than 4 x %.3f ms of CPU", wall * 1e3, cpu * 1e3);
}

/* Modelled step timing: every COMPUTE step lasts its predicted duration x
 * the TDF, on the device and on the node alike, however fast this machine
 * is; the output is still the real one. */
static void test_modelled_steps(void **state)
{
    (void)state;
    mb_topology t;
    make_topo(&t, 2);
    int site[64] = {0};
    for (int i = mb_graph_find(g, "c2"); i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *p = assign_plan(site);
    double step_ms = 4.0, tdf = 2.0, want = 0;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].kind == MB_STEP_COMPUTE) {
            p->steps[i].t_start_ms = 0;
            p->steps[i].t_end_ms = step_ms;
            want += step_ms * tdf;
        }
    mb_rt_set_step_timing(1, tdf); /* before the fork: the node inherits it */
    cluster c;
    cluster_start(&c, 2);
    mb_runner *r = runner_for(&c, &t, 10);
    char err[512];
    if (mb_runner_plan(r, p, err, sizeof err))
        fail_msg("plan: %s", err);
    mb_tensor **out = NULL;
    mb_timeline tl;
    mb_timeline_init(&tl);
    mb_frame_report rep;
    if (mb_runner_frame(r, 0, inputs, &out, &tl, &rep))
        fail_msg("frame: %s", rep.error);
    mb_rt_set_step_timing(0, 1);
    assert_true(mb_tensor_max_abs_diff(out[0], ref_out[0]) <= 1e-4);
    /* the steps run one after another (a chain split in two), so the frame
     * lasts at least their sum; the transfer and bookkeeping add a little */
    if (rep.latency_ms < want || rep.latency_ms > want * 1.5 + 5)
        fail_msg("modelled frame took %.2f ms, expected %.2f ms of modelled steps", rep.latency_ms, want);
    mb_tensor_free(out[0]);
    free(out);
    mb_timeline_free(&tl);
    mb_runner_free(r);
    cluster_stop(&c, 1);
    mb_plan_free(p);
}

/* Two runners (two devices) on one node serving two sessions at once: each
 * device's frame is computed right, the node's compute is shared (first come,
 * first served, one step at a time), so frames released together take about
 * twice as long as one alone, and the waits are QUEUE events. */
typedef struct shared_dev {
    mb_runner *r;
    mb_plan *p;
    pthread_barrier_t *bar;
    double latency_ms;
    int n_queue, ok;
    double err;
    double node_ms[64]; /* durations of its COMPUTE steps on the node (ms, wall = virtual clock at tdf 1) */
    int n_node;
} shared_dev;

static void *shared_dev_main(void *arg)
{
    shared_dev *d = arg;
    char err[512];
    if (mb_runner_plan(d->r, d->p, err, sizeof err)) {
        fprintf(stderr, "plan: %s\n", err);
        pthread_barrier_wait(d->bar);
        return NULL;
    }
    pthread_barrier_wait(d->bar);
    mb_tensor **out = NULL;
    mb_timeline tl;
    mb_timeline_init(&tl);
    mb_frame_report rep;
    if (mb_runner_frame(d->r, 0, inputs, &out, &tl, &rep) == 0) {
        d->ok = 1;
        d->latency_ms = rep.latency_ms;
        d->err = mb_tensor_max_abs_diff(out[0], ref_out[0]);
        for (int i = 0; i < tl.n; i++) {
            d->n_queue += tl.ev[i].kind == MB_EV_QUEUE;
            if (tl.ev[i].kind == MB_EV_COMPUTE && tl.ev[i].site == 1 && d->n_node < 64)
                d->node_ms[d->n_node++] = (tl.ev[i].t1 - tl.ev[i].t0) * 1e3;
        }
        mb_tensor_free(out[0]);
        free(out);
    } else {
        fprintf(stderr, "frame: %s\n", rep.error);
    }
    mb_timeline_free(&tl);
    return NULL;
}

/* Devices dev0 (site 0) and dev1 (site 2) run their whole model on the
 * edge (site 1), a forked node serving both at once; every compute step is
 * modelled at step_ms; share[k] > 0 gives device k that share of the node
 * (mb_plan.share), 0 leaves it first come, first served. *alone: one
 * device's edge work. */
static void shared_pair_run(const double share[2], double step_ms, shared_dev d[2], double *alone)
{
    mb_topology t;
    make_topo(&t, 3);
    snprintf(t.sites[2].name, sizeof t.sites[2].name, "dev1");
    t.sites[2].role = MB_ROLE_DEVICE;
    mb_plan *p[2];
    for (int k = 0; k < 2; k++) {
        int dev = k ? 2 : 0, site[64];
        for (int i = 0; i < g->n_nodes; i++)
            site[i] = g->nodes[i].type == MB_OP_INPUT ? dev : 1;
        site[g->n_nodes - 1] = dev; /* the result on the device */
        char err[256];
        p[k] = mb_plan_new("test", g, dev);
        if (mb_plan_assign(p[k], g, site, err, sizeof err))
            fail_msg("%s", err);
        p[k]->share[1] = share[k];
        *alone = 0;
        for (int i = 0; i < p[k]->n_steps; i++)
            if (p[k]->steps[i].kind == MB_STEP_COMPUTE) {
                p[k]->steps[i].t_start_ms = 0;
                p[k]->steps[i].t_end_ms = step_ms;
                *alone += p[k]->steps[i].site == 1 ? step_ms : 0;
            }
    }
    mb_rt_set_step_timing(1, 1.0); /* before the fork: the node inherits it */
    char err[256], addrs[3][64];
    int port, lfd[3];
    for (int i = 0; i < 3; i++) {
        lfd[i] = mb_listen_addr("127.0.0.1:0", &port, err, sizeof err);
        assert_true(lfd[i] >= 0);
        snprintf(addrs[i], 64, "127.0.0.1:%d", port);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *files[] = {model_path};
        mb_node_opts o = {.listen_fd = lfd[1], .threads = 1, .kernels = "cpu", .sessions = 2, .max_sessions = 2,
                          .role = "edge", .key = test_key, .model_files = files, .n_model_files = 1};
        _exit(mb_node_serve(&o, NULL, err, sizeof err) ? 1 : 0);
    }
    close(lfd[1]);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        int dev = k ? 2 : 0;
        mb_runner_opts o = {.model = "net", .g = g, .topo = &t, .device = dev, .listen_fd = lfd[dev],
                            .be = be, .timeout_s = 10, .key = test_key, .epoch_tag = (uint16_t)(k + 1)};
        memcpy(o.addrs, addrs, sizeof addrs);
        memset(&d[k], 0, sizeof d[k]);
        d[k].r = mb_runner_new(&o, err, sizeof err);
        if (!d[k].r)
            fail_msg("runner %d: %s", k, err);
        d[k].p = p[k];
        d[k].bar = &bar;
    }
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, shared_dev_main, &d[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    mb_rt_set_step_timing(0, 1);
    for (int k = 0; k < 2; k++) {
        mb_runner_free(d[k].r);
        mb_plan_free(p[k]);
        assert_true(d[k].ok);
        assert_true(d[k].err <= 1e-4);
    }
    pthread_barrier_destroy(&bar);
    int st = 0;
    double t0 = mb_now();
    pid_t w = 0;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && mb_now() - t0 < 5)
        usleep(10000);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("the node did not end after its two sessions");
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_shared_node(void **state)
{
    (void)state;
    shared_dev d[2];
    double alone, none[2] = {0, 0};
    shared_pair_run(none, 10.0, d, &alone); /* long steps: a busy machine cannot keep the frames apart */
    /* shared: the later of the two frames took about both devices' edge work */
    double slow = fmax(d[0].latency_ms, d[1].latency_ms);
    if (slow < 1.6 * alone)
        fail_msg("frames released together took %.1f and %.1f ms; one device's edge work is %.1f ms: "
                 "the node did not share its compute",
                 d[0].latency_ms, d[1].latency_ms, alone);
    assert_true(d[0].n_queue + d[1].n_queue > 0);
}

static int cmp_ms(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Weighted shares (dds): devices holding 0.75 and 0.25 of the node run side
 * by side, never queueing, each step stretched to step / share on the
 * node's virtual clock: op times in the ratio 1 : 3, each at least its
 * share's duration (a late step only lengthens it, so the check allows a
 * busy machine some slack above, none below). */
static void test_shared_node_weighted(void **state)
{
    (void)state;
    shared_dev d[2];
    double alone, step = 8.0, share[2] = {0.75, 0.25};
    shared_pair_run(share, step, d, &alone);
    double med[2];
    for (int k = 0; k < 2; k++) {
        assert_true(d[k].n_node > 0);
        assert_int_equal(d[k].n_queue, 0);
        qsort(d[k].node_ms, (size_t)d[k].n_node, sizeof(double), cmp_ms);
        med[k] = d[k].node_ms[d[k].n_node / 2];
        if (med[k] < 0.98 * step / share[k] || med[k] > 1.25 * step / share[k] + 2)
            fail_msg("device %d (share %.2f): node steps of %.2f ms (median), expected %.2f", k, share[k], med[k],
                     step / share[k]);
    }
    double ratio = med[1] / med[0];
    if (ratio < 2.5 || ratio > 3.3)
        fail_msg("shares 0.75 / 0.25 gave node op times %.2f / %.2f ms: ratio %.2f, expected 3", med[0], med[1],
                 ratio);
    /* side by side, not one after the other: the slower device's frame is
     * its own work at its share, not that plus the other's */
    if (d[1].latency_ms > alone / share[1] + 0.6 * alone / share[0] + 20)
        fail_msg("the 0.25 device took %.1f ms for %.1f ms of work at its share: it queued behind the other",
                 d[1].latency_ms, alone / share[1]);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_sites_layer_split),
        cmocka_unit_test(test_row_tiles),
        cmocka_unit_test(test_three_sites),
        cmocka_unit_test(test_pipelined_frames),
        cmocka_unit_test(test_congestion_control),
        cmocka_unit_test(test_fault_node_dies),
        cmocka_unit_test(test_fault_garbage),
        cmocka_unit_test(test_fault_stall),
        cmocka_unit_test(test_hash_mismatch),
        cmocka_unit_test(test_dilation),
        cmocka_unit_test(test_modelled_steps),
        cmocka_unit_test(test_shared_node),
        cmocka_unit_test(test_shared_node_weighted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
