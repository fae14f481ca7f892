/* Wire protocol: framing limits, message round trips, malformed, truncated
 * and oversized input refused before allocation, and a bounded fuzz loop of
 * random mutations through every decoder. */
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mecbed/model.h"
#include "mecbed/plan.h"
#include "mecbed/platform.h"
#include "mecbed/timeline.h"
#include "mecbed/wire.h"

static const char net_text[] =
    "mecbed-model 1\nname wire_net\nseed 7\n"
    "Input x shape=1,3,16,12\n"
    "Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(4x3x3x3)\n"
    "Relu r1 c1\n"
    "GlobalAveragePool gap r1\n"
    "output gap\n";

static mb_graph *g;
static mb_topology topo;
static char model_path[64];

static int setup(void **state)
{
    (void)state;
    char err[512];
    snprintf(model_path, sizeof model_path, "/tmp/mb-wire-%d.model", (int)getpid());
    FILE *f = fopen(model_path, "w");
    if (!f)
        return -1;
    fputs(net_text, f);
    fclose(f);
    g = mb_model_load(model_path, err, sizeof err);
    unlink(model_path);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (mb_topology_from_link("rate=10mbit,rtt=20ms", &topo, err, sizeof err))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mb_graph_free(g);
    return 0;
}

/* device computes c1 rows [0,8), edge rows [8,16) from the input it is sent;
 * edge returns its rows; device finishes. */
static mb_plan *split_plan(void)
{
    int x = mb_graph_find(g, "x"), c1 = mb_graph_find(g, "c1"), r1 = mb_graph_find(g, "r1");
    int gap = mb_graph_find(g, "gap");
    mb_plan *p = mb_plan_new("test", g, 0);
    p->graph_hash = mb_graph_hash(g);
    mb_region top = {0, 8, 0, 12}, bot = {8, 16, 0, 12};
    mb_region need = mb_node_input_region(g, c1, 0, bot);
    mb_plan_send(p, x, need, 0, 1);
    mb_plan_compute(p, c1, 0, top);
    mb_plan_compute(p, c1, 1, bot);
    mb_plan_send(p, c1, bot, 1, 0);
    mb_plan_compute(p, r1, 0, mb_node_full_region(g, r1));
    mb_plan_compute(p, gap, 0, mb_node_full_region(g, gap));
    return p;
}

static void test_header(void **state)
{
    (void)state;
    uint8_t raw[MB_WIRE_HDR_LEN];
    mb_wire_hdr h;
    char err[256];
    mb_wire_hdr_encode(raw, MB_MSG_HELLO, 100, 7);
    assert_int_equal(mb_wire_hdr_decode(raw, MB_MSG_BIT(MB_MSG_HELLO), 0, &h, err, sizeof err), 0);
    assert_int_equal(h.type, MB_MSG_HELLO);
    assert_int_equal(h.len, 100);
    assert_int_equal(h.frame, 7);
    /* unexpected in this state */
    assert_int_equal(mb_wire_hdr_decode(raw, MB_MSG_BIT(MB_MSG_PLAN), 0, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "unexpected HELLO"));
    /* oversized for the type */
    mb_wire_hdr_encode(raw, MB_MSG_HELLO, MB_WIRE_MAX_HELLO + 1, 0);
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "exceeds the limit"));
    /* a TENSOR over what the plan allows */
    mb_wire_hdr_encode(raw, MB_MSG_TENSOR, 1001, 0);
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 1000, &h, err, sizeof err), -1);
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 1001, &h, err, sizeof err), 0);
    /* READY carries nothing */
    mb_wire_hdr_encode(raw, MB_MSG_READY, 1, 0);
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), -1);
    /* bad magic, version, type, reserved */
    mb_wire_hdr_encode(raw, MB_MSG_BYE, 0, 0);
    raw[0] ^= 1;
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), -1);
    assert_non_null(strstr(err, "magic"));
    mb_wire_hdr_encode(raw, MB_MSG_BYE, 0, 0);
    raw[4] = 9;
    /* another version: its own code, so that the reader answers MB_WERR_VERSION */
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), MB_WIRE_EVERSION);
    assert_non_null(strstr(err, "version 9"));
    /* ... but an ERROR reads the same in every version: it gets through */
    mb_wire_hdr_encode(raw, MB_MSG_ERROR, 10, 0);
    raw[4] = 1;
    assert_int_equal(mb_wire_hdr_decode(raw, MB_MSG_BIT(MB_MSG_ERROR), 0, &h, err, sizeof err), 0);
    assert_int_equal(h.version, 1);
    assert_int_equal(mb_wire_hdr_decode(raw, MB_MSG_BIT(MB_MSG_HELLO), 0, &h, err, sizeof err),
                     MB_WIRE_EVERSION);
    mb_wire_hdr_encode(raw, MB_MSG_COUNT, 0, 0);
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), -1);
    mb_wire_hdr_encode(raw, MB_MSG_BYE, 0, 0);
    raw[6] = 1;
    assert_int_equal(mb_wire_hdr_decode(raw, ~0u, 0, &h, err, sizeof err), -1);
}

static void test_hello(void **state)
{
    (void)state;
    mb_hello a = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_PEER, .site = 3, .epoch = 9,
                  .graph_hash = 0x1234567890abcdefull, .clock_ns = -5, .host_id = 77};
    strcpy(a.model, "resnet18");
    mb_wbuf b;
    mb_wbuf_init(&b);
    assert_int_equal(mb_hello_encode(&a, &b), 0);
    mb_hello c;
    char err[256];
    assert_int_equal(mb_hello_decode(b.p, b.len, &c, err, sizeof err), 0);
    assert_int_equal(c.site, 3);
    assert_int_equal(c.epoch, 9);
    assert_true(c.graph_hash == a.graph_hash);
    assert_true(c.clock_ns == -5);
    assert_true(c.host_id == 77);
    assert_string_equal(c.model, "resnet18");
    /* every truncation and one trailing byte are refused */
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(mb_hello_decode(b.p, n, &c, err, sizeof err), -1);
    mb_wbuf_u8(&b, 0);
    assert_int_equal(mb_hello_decode(b.p, b.len, &c, err, sizeof err), -1);
    mb_wbuf_free(&b);
    /* wrong protocol version inside */
    a.proto = 99;
    mb_wbuf_init(&b);
    mb_hello_encode(&a, &b);
    assert_int_equal(mb_hello_decode(b.p, b.len, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "version"));
    mb_wbuf_free(&b);
}

/* State bindings (plan.h, mb_plan_state) cross the wire: a plan run
 * wholly on the edge whose input and output are the edge's own state
 * (nothing on the device) is valid, and so is its round trip; a binding of
 * a non-input, or a truncated binding section, is refused. */
static void test_plan_state_bindings(void **state)
{
    (void)state;
    char err[512];
    int in = -1;
    for (int i = 0; i < g->n_nodes && in < 0; i++)
        if (g->nodes[i].type == MB_OP_INPUT)
            in = i;
    int *site = malloc(sizeof(int) * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        site[i] = 1;
    mb_plan *full = mb_plan_new("test", g, 0), *p = mb_plan_new("test", g, 0);
    assert_int_equal(mb_plan_assign(full, g, site, err, sizeof err), 0);
    free(site);
    p->graph_hash = mb_graph_hash(g);
    p->state[0] = (mb_plan_state){.site = 1, .in_op = in, .out_op = g->outputs[0], .key = 7};
    p->n_state = 1;
    /* the plan validates only once the sends of the bound tensors are gone */
    for (int i = 0; i < full->n_steps; i++)
        if (full->steps[i].kind == MB_STEP_COMPUTE)
            mb_plan_compute(p, full->steps[i].op, 1, full->steps[i].region);
    mb_plan_free(full);
    assert_int_equal(mb_plan_validate(p, g, &topo, err, sizeof err), 0);
    char addrs[MB_MAX_SITES][64] = {"10.0.0.1:7000", "10.0.0.2:7001"};
    mb_wbuf b;
    mb_wbuf_init(&b);
    assert_int_equal(mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &b), 0);
    mb_wire_plan wp;
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), 0);
    assert_int_equal(wp.plan->n_state, 1);
    assert_memory_equal(&wp.plan->state[0], &p->state[0], sizeof(mb_plan_state));
    mb_wire_plan_free(&wp);
    uint64_t h = 0;
    char model[64];
    assert_int_equal(mb_wire_plan_peek(b.p, b.len, &h, model, sizeof model, err, sizeof err), 0);
    assert_true(h == p->graph_hash);
    /* the binding section cut short */
    assert_int_equal(mb_wire_plan_decode(b.p, b.len - 3, g, &wp, err, sizeof err), -1);
    assert_non_null(strstr(err, "state bindings"));
    mb_wbuf_free(&b);
    /* without the binding the edge has no input, and the device no output */
    p->n_state = 0;
    assert_int_equal(mb_plan_validate(p, g, &topo, err, sizeof err), -1);
    /* a binding of an op that is not a graph input */
    p->state[0].in_op = g->outputs[0];
    p->n_state = 1;
    assert_int_equal(mb_plan_validate(p, g, &topo, err, sizeof err), -1);
    assert_non_null(strstr(err, "state binding"));
    mb_plan_free(p);
}

static void test_plan_roundtrip_and_checks(void **state)
{
    (void)state;
    char err[512];
    mb_plan *p = split_plan();
    assert_int_equal(mb_plan_validate(p, g, &topo, err, sizeof err), 0);
    char addrs[MB_MAX_SITES][64] = {"10.0.0.1:7000", "10.0.0.2:7001"};
    mb_wbuf b;
    mb_wbuf_init(&b);
    assert_int_equal(mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &b), 0);
    mb_wire_plan wp;
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), 0);
    assert_int_equal(wp.your_site, 1);
    assert_int_equal(wp.epoch, 3);
    assert_true(wp.timeout_s == 2.5);
    assert_int_equal(wp.plan->n_steps, p->n_steps);
    assert_string_equal(wp.topo.sites[1].address, "10.0.0.2:7001");
    for (int i = 0; i < p->n_steps; i++) {
        assert_int_equal(wp.plan->steps[i].kind, p->steps[i].kind);
        assert_memory_equal(&wp.plan->steps[i].region, &p->steps[i].region, sizeof(mb_region));
    }
    mb_wire_plan_free(&wp);
    /* every truncation refused */
    for (size_t n = 0; n < b.len; n += 3)
        assert_int_equal(mb_wire_plan_decode(b.p, n, g, &wp, err, sizeof err), -1);
    mb_wbuf_free(&b);

    /* a plan that is structurally fine on the wire but invalid for the model:
     * the edge computes rows it never received the input for */
    mb_plan *bad = mb_plan_new("test", g, 0);
    bad->graph_hash = mb_graph_hash(g);
    int c1 = mb_graph_find(g, "c1"), gap = mb_graph_find(g, "gap"), r1 = mb_graph_find(g, "r1");
    mb_plan_compute(bad, c1, 1, mb_node_full_region(g, c1));
    mb_plan_send(bad, c1, mb_node_full_region(g, c1), 1, 0);
    mb_plan_compute(bad, r1, 0, mb_node_full_region(g, r1));
    mb_plan_compute(bad, gap, 0, mb_node_full_region(g, gap));
    mb_wbuf_init(&b);
    mb_wire_plan_encode(bad, &topo, (const char(*)[64])addrs, 1, 1, 1, &b);
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), -1);
    assert_non_null(strstr(err, "PLAN invalid"));
    mb_wbuf_free(&b);
    mb_plan_free(bad);

    /* a step count larger than the payload: refused before allocating */
    mb_wbuf_init(&b);
    mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 1, 1, &b);
    size_t at = b.len - (size_t)p->n_steps * 57 - 4 - 2; /* the steps, then the state bindings' count */
    b.p[at] = 0xff;
    b.p[at + 1] = 0xff;
    b.p[at + 2] = 0x0f;
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), -1);
    mb_wbuf_free(&b);
    /* a hash from another model */
    p->graph_hash ^= 1;
    mb_wbuf_init(&b);
    mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 1, 1, &b);
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), -1);
    assert_non_null(strstr(err, "hash"));
    mb_wbuf_free(&b);
    mb_plan_free(p);
}

/* Shares (mb_plan.share) travel in PLAN's optional trailer: a plan without
 * them encodes as before; one with them round-trips; a share for the
 * device, out of (0, 1], twice for a site, or a trailer of the wrong length
 * is refused. */
static void test_plan_shares(void **state)
{
    (void)state;
    char err[512];
    char addrs[MB_MAX_SITES][64] = {"10.0.0.1:7000", "10.0.0.2:7001"};
    mb_plan *p = split_plan();
    mb_wbuf plain, b;
    mb_wbuf_init(&plain);
    mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &plain);
    p->share[1] = 0.375;
    mb_wbuf_init(&b);
    assert_int_equal(mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &b), 0);
    assert_int_equal(b.len, plain.len + 1 + 10);
    assert_memory_equal(b.p, plain.p, plain.len);
    mb_wire_plan wp;
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), 0);
    assert_true(wp.plan->share[1] == 0.375 && wp.plan->share[0] == 0);
    mb_wire_plan_free(&wp);
    assert_int_equal(mb_wire_plan_decode(plain.p, plain.len, g, &wp, err, sizeof err), 0);
    assert_false(mb_plan_has_shares(wp.plan));
    mb_wire_plan_free(&wp);
    /* truncated trailer, and one byte too many */
    for (size_t n = plain.len + 1; n < b.len; n++)
        assert_int_equal(mb_wire_plan_decode(b.p, n, g, &wp, err, sizeof err), -1);
    mb_wbuf_u8(&b, 0);
    assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), -1);
    mb_wbuf_free(&b);
    /* the device's share, a share above 1, NaN */
    const double bad_share[3][2] = {{0.5, 0}, {0, 1.5}, {0, NAN}};
    for (int k = 0; k < 3; k++) {
        p->share[0] = bad_share[k][0];
        p->share[1] = bad_share[k][1];
        if (isnan(p->share[1])) { /* encode skips NaN (not > 0): write it by hand */
            p->share[1] = 0.5;
            mb_wbuf_init(&b);
            mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &b);
            double nan = NAN;
            memcpy(b.p + b.len - 8, &nan, 8);
        } else {
            mb_wbuf_init(&b);
            mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 3, 2.5, &b);
        }
        assert_int_equal(mb_wire_plan_decode(b.p, b.len, g, &wp, err, sizeof err), -1);
        assert_non_null(strstr(err, "share"));
        mb_wbuf_free(&b);
    }
    mb_wbuf_free(&plain);
    mb_plan_free(p);
}

static void test_tensor_header_checked_against_plan(void **state)
{
    (void)state;
    char err[512];
    mb_plan *p = split_plan();
    int send_up = 0, send_down = 3;
    const mb_plan_step *s = &p->steps[send_down];
    mb_tensor_hdr h = {.epoch = 2, .step = (uint32_t)send_down, .op = s->op, .region = s->region,
                       .dtype = MB_DTYPE_F32};
    h.ndim = mb_region_dims(g, s->op, s->region, h.dims);
    mb_wbuf b;
    mb_wbuf_init(&b);
    mb_tensor_hdr_encode(&h, &b);
    size_t data = 1 * 4 * 8 * 12 * 4;
    uint32_t plen = (uint32_t)(b.len + data);
    mb_tensor_hdr out;
    size_t bytes;
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 2, 1, 0, &out, &bytes, err, sizeof err), 0);
    assert_int_equal(bytes, data);
    /* wrong epoch, wrong sender, wrong receiver, wrong length */
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 3, 1, 0, &out, &bytes, err, sizeof err), -1);
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 2, 0, 1, &out, &bytes, err, sizeof err), -1);
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen + 4, p, g, 2, 1, 0, &out, &bytes, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs"));
    mb_wbuf_free(&b);
    /* a shape that disagrees with the plan's region */
    h.dims[2] = 9;
    mb_wbuf_init(&b);
    mb_tensor_hdr_encode(&h, &b);
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 2, 1, 0, &out, &bytes, err, sizeof err), -1);
    assert_non_null(strstr(err, "dim 2"));
    mb_wbuf_free(&b);
    /* a step that is a compute, and one out of range */
    h.dims[2] = 8;
    h.step = 1;
    mb_wbuf_init(&b);
    mb_tensor_hdr_encode(&h, &b);
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 2, 1, 0, &out, &bytes, err, sizeof err), -1);
    mb_wbuf_free(&b);
    h.step = 1000;
    mb_wbuf_init(&b);
    mb_tensor_hdr_encode(&h, &b);
    assert_int_equal(mb_tensor_hdr_check(b.p, b.len, plen, p, g, 2, 1, 0, &out, &bytes, err, sizeof err), -1);
    mb_wbuf_free(&b);
    /* the plan's largest send bounds what a reader accepts */
    uint64_t max = mb_wire_plan_max_tensor(p, g);
    int64_t d[MB_MAX_DIMS];
    int nd = mb_region_dims(g, p->steps[send_up].op, p->steps[send_up].region, d);
    uint64_t up = mb_tensor_hdr_size(nd) + 4 * (uint64_t)(d[0] * d[1] * d[2] * d[3]);
    assert_true(max >= up && max >= plen);
    mb_plan_free(p);
}

static void test_result_and_error(void **state)
{
    (void)state;
    mb_event ev[2] = {{.frame = 1, .step = 2, .kind = MB_EV_COMPUTE, .site = 1, .peer = -1, .op = 1,
                       .t0 = 1.0, .t1 = 1.5, .bytes = 10},
                      {.frame = 1, .step = 3, .kind = MB_EV_SEND, .site = 1, .peer = 0, .op = 1,
                       .t0 = 1.5, .t1 = 1.75, .bytes = 384}};
    mb_wbuf b;
    mb_wbuf_init(&b);
    assert_int_equal(mb_result_encode(0, "", ev, 2, &b), 0);
    mb_timeline tl;
    mb_timeline_init(&tl);
    int status;
    char msg[64], err[256];
    assert_int_equal(mb_result_decode(b.p, b.len, 2, g->n_nodes, 10.0, &tl, &status, msg, sizeof msg,
                                      err, sizeof err), 0);
    assert_int_equal(tl.n, 2);
    assert_true(tl.ev[1].t0 == 11.5 && tl.ev[1].peer == 0);
    /* a site out of range is refused */
    assert_int_equal(mb_result_decode(b.p, b.len, 1, g->n_nodes, 0, &tl, &status, msg, sizeof msg,
                                      err, sizeof err), -1);
    for (size_t n = 0; n < b.len; n++)
        assert_int_equal(mb_result_decode(b.p, n, 2, g->n_nodes, 0, &tl, &status, msg, sizeof msg,
                                          err, sizeof err), -1);
    mb_timeline_free(&tl);
    mb_wbuf_free(&b);

    mb_wbuf_init(&b);
    mb_error_encode(MB_WERR_MODEL, "hash mismatch", &b);
    int code;
    char m[64];
    assert_int_equal(mb_error_decode(b.p, b.len, &code, m, sizeof m), 0);
    assert_int_equal(code, MB_WERR_MODEL);
    assert_string_equal(m, "hash mismatch");
    mb_wbuf_free(&b);
}

/* Over a socket pair: a truncated frame times out or reports closure; an
 * oversized header is refused without reading (or allocating) its body. */
static void test_socket_reads(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char err[256];
    mb_wire_hdr h;
    uint8_t *p;
    /* a complete BYE */
    assert_int_equal(mb_wire_send(sv[0], MB_MSG_BYE, 0, NULL, 0, err, sizeof err), 0);
    assert_int_equal(mb_wire_recv(sv[1], ~0u, 0, mb_now() + 1, &h, &p, err, sizeof err), 0);
    assert_int_equal(h.type, MB_MSG_BYE);
    assert_null(p);
    /* half a header, then silence: deadline */
    uint8_t raw[MB_WIRE_HDR_LEN];
    mb_wire_hdr_encode(raw, MB_MSG_ERROR, 8, 0);
    assert_int_equal(write(sv[0], raw, 7), 7);
    double t0 = mb_now();
    assert_int_equal(mb_wire_recv(sv[1], ~0u, 0, mb_now() + 0.2, &h, &p, err, sizeof err), -1);
    assert_true(mb_now() - t0 < 1.0);
    assert_non_null(strstr(err, "timed out"));
    close(sv[0]);
    close(sv[1]);
    /* a header claiming 4 GiB: refused at once */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    mb_wire_hdr_encode(raw, MB_MSG_RESULT, 0xffffffffu, 0);
    assert_int_equal(write(sv[0], raw, sizeof raw), (ssize_t)sizeof raw);
    assert_int_equal(mb_wire_recv(sv[1], ~0u, 0, mb_now() + 1, &h, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "exceeds"));
    /* a body cut short by the peer closing */
    mb_wire_hdr_encode(raw, MB_MSG_ERROR, 100, 0);
    assert_int_equal(write(sv[0], raw, sizeof raw), (ssize_t)sizeof raw);
    assert_int_equal(write(sv[0], "abc", 3), 3);
    close(sv[0]);
    assert_int_equal(mb_wire_recv(sv[1], ~0u, 0, mb_now() + 1, &h, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "closed"));
    close(sv[1]);
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void mutate(uint8_t *p, size_t *n, size_t cap)
{
    int k = 1 + (int)(xr() % 4);
    for (int i = 0; i < k && *n; i++) {
        switch (xr() % 4) {
        case 0: p[xr() % *n] ^= (uint8_t)(1u << (xr() % 8)); break;
        case 1: p[xr() % *n] = (uint8_t)xr(); break;
        case 2: *n = xr() % (*n + 1); break;
        case 3:
            if (*n < cap)
                p[(*n)++] = (uint8_t)xr();
            break;
        }
    }
}

/* Random mutations of valid messages through every decoder: each must
 * either decode or refuse; never crash (run under ASan in CI builds). */
static void test_fuzz_decoders(void **state)
{
    (void)state;
    char err[512];
    mb_plan *p = split_plan();
    char addrs[MB_MAX_SITES][64] = {"10.0.0.1:7000", "10.0.0.2:7001"};
    mb_wbuf plan, hello, tens, res, er;
    mb_wbuf_init(&plan);
    mb_wbuf_init(&hello);
    mb_wbuf_init(&tens);
    mb_wbuf_init(&res);
    mb_wbuf_init(&er);
    mb_wire_plan_encode(p, &topo, (const char(*)[64])addrs, 1, 1, 1, &plan);
    mb_hello hl = {.proto = MB_WIRE_VERSION, .role = 2, .site = 1, .graph_hash = 5};
    strcpy(hl.model, "m");
    mb_hello_encode(&hl, &hello);
    const mb_plan_step *s = &p->steps[3];
    mb_tensor_hdr th = {.epoch = 1, .step = 3, .op = s->op, .region = s->region, .dtype = 1};
    th.ndim = mb_region_dims(g, s->op, s->region, th.dims);
    mb_tensor_hdr_encode(&th, &tens);
    mb_event ev = {.frame = 1, .step = 1, .kind = 0, .site = 1, .peer = -1, .op = 1, .t0 = 0, .t1 = 1};
    mb_result_encode(0, "x", &ev, 1, &res);
    mb_error_encode(1, "boom", &er);
    mb_wbuf *src[] = {&plan, &hello, &tens, &res, &er};
    uint8_t buf[8192];
    int accepted = 0, refused = 0;
    for (int it = 0; it < 4000; it++) {
        int which = (int)(xr() % 5);
        size_t n = src[which]->len < sizeof buf ? src[which]->len : sizeof buf;
        memcpy(buf, src[which]->p, n);
        mutate(buf, &n, sizeof buf);
        int rc = 0;
        if (which == 0) {
            mb_wire_plan wp;
            rc = mb_wire_plan_decode(buf, n, g, &wp, err, sizeof err);
            if (!rc)
                mb_wire_plan_free(&wp);
        } else if (which == 1) {
            mb_hello h2;
            rc = mb_hello_decode(buf, n, &h2, err, sizeof err);
        } else if (which == 2) {
            mb_tensor_hdr o;
            size_t bytes;
            rc = mb_tensor_hdr_check(buf, n, (uint32_t)(n + 1536), p, g, 1, 1, 0, &o, &bytes, err,
                                     sizeof err);
            if (!rc)
                assert_true(bytes <= (size_t)mb_wire_plan_max_tensor(p, g));
        } else if (which == 3) {
            mb_timeline tl;
            mb_timeline_init(&tl);
            int st;
            char m[64];
            rc = mb_result_decode(buf, n, 2, g->n_nodes, 0, &tl, &st, m, sizeof m, err, sizeof err);
            mb_timeline_free(&tl);
        } else {
            int code;
            char m[64];
            rc = mb_error_decode(buf, n, &code, m, sizeof m);
        }
        if (rc)
            refused++;
        else
            accepted++;
        uint8_t raw[MB_WIRE_HDR_LEN];
        memcpy(raw, buf, n < sizeof raw ? n : sizeof raw);
        mb_wire_hdr wh;
        mb_wire_hdr_decode(raw, ~0u, 1 << 20, &wh, err, sizeof err);
    }
    /* The loop must exercise both outcomes to mean anything. */
    assert_true(refused > 100);
    assert_true(accepted > 10);
    mb_wbuf_free(&plan);
    mb_wbuf_free(&hello);
    mb_wbuf_free(&tens);
    mb_wbuf_free(&res);
    mb_wbuf_free(&er);
    mb_plan_free(p);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_plan_roundtrip_and_checks),
        cmocka_unit_test(test_plan_shares),
        cmocka_unit_test(test_plan_state_bindings),
        cmocka_unit_test(test_tensor_header_checked_against_plan),
        cmocka_unit_test(test_result_and_error),
        cmocka_unit_test(test_socket_reads),
        cmocka_unit_test(test_fuzz_decoders),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
