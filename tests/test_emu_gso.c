/* GSO on the emulator's TUN devices (netem/emu_gso.c, issue 14): a TCP
 * super-packet is cut into exactly the wire packets the kernel's TSO would
 * send (lengths, IPv4 ids, sequence numbers, flags, checksums checked here
 * against an independent checksum), merged segments make one valid
 * super-packet again, and one direction of the emulator (emu_link.c, fed
 * through datagram socketpairs with virtio headers, no root needed) passes
 * each segment through the queue limit and loss on its own, logs and counts
 * segments' wire bytes, and writes segments due together as one GSO packet
 * (UDP datagrams of one flow due together as one UDP GSO packet). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../netem/emu_gso.h"
#include "../netem/emu_link.h"

#define MSS 1000
#define TCPH 32 /* with the timestamp option */

/* RFC 1071 checksum over a buffer, folded and complemented: 0 when a
 * buffer holding its own checksum is intact */
static uint16_t ones(const uint8_t *p, size_t n, uint32_t s)
{
    for (; n > 1; p += 2, n -= 2)
        s += (uint32_t)(p[0] << 8 | p[1]);
    if (n)
        s += (uint32_t)p[0] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/* Is the TCP checksum of a complete IPv4/IPv6 packet right? Computed from
 * scratch: pseudo-header + the TCP header and payload. */
static int tcp_csum_ok(const uint8_t *pkt, size_t len)
{
    int v6 = pkt[0] >> 4 == 6;
    size_t l4 = v6 ? 40 : (size_t)(pkt[0] & 15) * 4, tl = len - l4;
    uint8_t ph[40];
    size_t pl;
    if (v6) {
        memcpy(ph, pkt + 8, 32);
        ph[32] = (uint8_t)(tl >> 24), ph[33] = (uint8_t)(tl >> 16), ph[34] = (uint8_t)(tl >> 8), ph[35] = (uint8_t)tl;
        ph[36] = ph[37] = ph[38] = 0, ph[39] = 6;
        pl = 40;
    } else {
        memcpy(ph, pkt + 12, 8);
        ph[8] = 0, ph[9] = 6, ph[10] = (uint8_t)(tl >> 8), ph[11] = (uint8_t)tl;
        pl = 12;
    }
    uint32_t s = (uint16_t)~ones(ph, pl, 0);
    return ones(pkt + l4, tl, s) == 0;
}

static uint32_t seq_of(const uint8_t *pkt, size_t l4)
{
    const uint8_t *t = pkt + l4;
    return (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
}

/* A TCP super-packet as the kernel hands it over: payload bytes i = i*7,
 * flags CWR|PSH|FIN|ACK, partial checksum, IPv4 id 100 or IPv6. */
static size_t make_super(uint8_t *b, int v6, size_t payload, emu_vnet *v)
{
    size_t l4 = v6 ? 40 : 20, hlen = l4 + TCPH, len = hlen + payload;
    memset(b, 0, hlen);
    if (v6) {
        b[0] = 0x60;
        b[4] = (uint8_t)((len - 40) >> 8), b[5] = (uint8_t)(len - 40);
        b[6] = 6, b[7] = 64;
        b[23] = 1, b[39] = 2; /* ::1 -> ::2 */
    } else {
        b[0] = 0x45;
        b[2] = (uint8_t)(len >> 8), b[3] = (uint8_t)len;
        b[5] = 100; /* id */
        b[6] = 0x40, b[8] = 64, b[9] = 6;
        b[12] = 10, b[15] = 1, b[16] = 10, b[19] = 2;
    }
    uint8_t *t = b + l4;
    t[0] = 0x9c, t[1] = 0x40, t[2] = 0x14, t[3] = 0x51; /* ports */
    t[4] = 0xff, t[5] = 0xff, t[6] = 0xfc, t[7] = 0x00; /* seq: wraps within the packet */
    t[12] = (TCPH / 4) << 4;
    t[13] = 0x80 | 0x10 | 0x08 | 0x01;
    t[14] = 0x01, t[15] = 0xf5;
    for (size_t i = 0; i < payload; i++)
        b[hlen + i] = (uint8_t)(i * 7);
    memset(v, 0, sizeof *v);
    v->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    v->gso_type = (v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4) | VIRTIO_NET_HDR_GSO_ECN;
    v->gso_size = MSS;
    v->hdr_len = (uint16_t)hlen;
    v->csum_start = (uint16_t)l4;
    v->csum_offset = 16;
    return len;
}

static void check_segments(int v6)
{
    static uint8_t sup[65536], seg[2048], fin[2048];
    emu_vnet v;
    const size_t payload = 3 * MSS + 456;
    size_t len = make_super(sup, v6, payload, &v), l4 = v6 ? 40 : 20, hlen = l4 + TCPH;
    emu_gso g;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), 1);
    assert_int_equal(g.nseg, 4);
    assert_int_equal(g.hlen, hlen);
    assert_int_equal(g.l4off, l4);
    size_t sum = 0;
    for (size_t k = 0; k < g.nseg; k++) {
        size_t sl = k < 3 ? MSS : 456, n = emu_gso_segment(&g, sup, k, seg);
        assert_int_equal(n, hlen + sl); /* the segment's wire bytes */
        sum += n;
        if (v6) {
            assert_int_equal(seg[4] << 8 | seg[5], n - 40);
        } else {
            assert_int_equal(seg[2] << 8 | seg[3], n);
            assert_int_equal(seg[4] << 8 | seg[5], 100 + k); /* one id per segment */
            assert_int_equal(ones(seg, 20, 0), 0);           /* IP header checksum */
        }
        assert_int_equal(seq_of(seg, l4), (uint32_t)(0xfffffc00u + k * MSS));
        uint8_t fl = seg[l4 + 13];
        assert_int_equal(!!(fl & 0x80), k == 0);     /* CWR on the first only */
        assert_int_equal(!!(fl & 0x09), k == 3);     /* FIN, PSH on the last only */
        assert_int_equal(!!(fl & 0x01), k == 3);
        assert_true(fl & 0x10);                      /* ACK on all */
        assert_memory_equal(seg + hlen, sup + hlen + k * MSS, sl);
        memcpy(fin, seg, n);
        emu_csum_finish(fin, n, l4, 16);
        assert_true(tcp_csum_ok(fin, n));
    }
    assert_int_equal(sum, len + 3 * hlen);
    /* segments 1..3 merged again: one valid packet carrying their payload */
    static uint8_t m[65536];
    size_t at = 0;
    for (size_t k = 1; k < 4; k++) {
        size_t n = emu_gso_segment(&g, sup, k, seg);
        if (k == 1) {
            memcpy(m, seg, n);
            at = n;
        } else {
            memcpy(m + at, seg + hlen, n - hlen);
            at += n - hlen;
        }
    }
    emu_vnet out;
    emu_gso_merge(m, v6, l4, hlen, MSS, at, 3, 0x10 | 0x08 | 0x01, &out);
    assert_int_equal(at, hlen + 2 * MSS + 456);
    assert_int_equal(out.gso_type, v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4); /* no CWR: no ECN */
    assert_int_equal(out.gso_size, MSS);
    assert_int_equal(out.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(v6 ? (size_t)(m[4] << 8 | m[5]) + 40 : (size_t)(m[2] << 8 | m[3]), at);
    if (!v6)
        assert_int_equal(ones(m, 20, 0), 0);
    assert_int_equal(m[l4 + 13], 0x10 | 0x08 | 0x01);
    assert_int_equal(seq_of(m, l4), (uint32_t)(0xfffffc00u + MSS));
    assert_memory_equal(m + hlen, sup + hlen + MSS, at - hlen);
    emu_csum_finish(m, at, l4, 16);
    assert_true(tcp_csum_ok(m, at));
}

static void test_segment_v4(void **state)
{
    (void)state;
    check_segments(0);
}

static void test_segment_v6(void **state)
{
    (void)state;
    check_segments(1);
}

static void test_parse_refuses(void **state)
{
    (void)state;
    static uint8_t sup[8192];
    emu_vnet v;
    emu_gso g;
    size_t len = make_super(sup, 0, 2000, &v);
    v.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), 0); /* a plain packet */
    v.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), -1);
    v.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    v.gso_size = 0;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), -1);
    v.gso_size = MSS;
    assert_int_equal(emu_gso_parse(&v, sup, 30, &g), -1); /* truncated */
    sup[9] = 17;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), -1); /* not TCP */
}

/* A UDP GSO packet (USO: one send of a UDP_SEGMENT socket) is cut into the
 * datagrams the kernel's udp_offload would send: the same addresses and
 * ports, each its own IP length, IPv4 id (one more per datagram), UDP length
 * and a partial checksum that completes to a valid one over that datagram;
 * the data in order, the last datagram shorter. */
static void test_segment_udp(void **state)
{
    (void)state;
    static uint8_t sup[8192], seg[2048];
    const size_t pl = 1200, payload = 4 * pl + 500;
    size_t len = 28 + payload;
    memset(sup, 0, 28);
    sup[0] = 0x45, sup[2] = (uint8_t)(len >> 8), sup[3] = (uint8_t)len, sup[4] = 0x12, sup[5] = 0x34;
    sup[6] = 0x40, sup[8] = 64, sup[9] = 17;
    sup[12] = 10, sup[15] = 1, sup[16] = 10, sup[19] = 2;
    sup[20] = 0x30, sup[21] = 0x39, sup[22] = 0x14, sup[23] = 0x52;
    sup[24] = (uint8_t)((len - 20) >> 8), sup[25] = (uint8_t)(len - 20);
    for (size_t j = 0; j < payload; j++)
        sup[28 + j] = (uint8_t)(j * 7 + j / 251);
    emu_vnet v = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .gso_type = EMU_GSO_UDP_L4, .hdr_len = 28,
                  .gso_size = (uint16_t)pl, .csum_start = 20, .csum_offset = 6};
    emu_gso g;
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), 1);
    assert_true(g.udp);
    assert_int_equal(g.hlen, 28);
    assert_int_equal(g.nseg, 5);
    for (size_t k = 0; k < g.nseg; k++) {
        size_t sl = k < 4 ? pl : 500, n = emu_gso_segment(&g, sup, k, seg);
        assert_int_equal(n, 28 + sl);
        assert_int_equal(seg[2] << 8 | seg[3], n);
        assert_int_equal(seg[4] << 8 | seg[5], 0x1234 + k);
        assert_int_equal(ones(seg, 20, 0), 0); /* the IPv4 header checksum */
        assert_int_equal(seg[24] << 8 | seg[25], n - 20);
        assert_memory_equal(seg + 12, sup + 12, 12); /* addresses and ports */
        assert_memory_equal(seg + 28, sup + 28 + k * pl, sl);
        assert_true(emu_udp_mergeable(&(emu_vnet){.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20,
                                                  .csum_offset = 6},
                                      seg, n));
        emu_csum_finish(seg, n, 20, 6);
        uint8_t ph[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 17, (uint8_t)((n - 20) >> 8), (uint8_t)(n - 20)};
        assert_int_equal(ones(seg + 20, n - 20, (uint16_t)~ones(ph, 12, 0)), 0);
    }
    sup[9] = 6; /* a USO header on a TCP packet */
    assert_int_equal(emu_gso_parse(&v, sup, len, &g), -1);
}

/* ---- one direction of the emulator with virtio headers ---- */

typedef struct got {
    int n;              /* datagrams read */
    size_t bytes[64];   /* IP bytes of each */
    emu_vnet v[64];
    uint8_t *pkt[64];
} got;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One super-packet of nseg full segments through a direction with spec
 * (write window batch_s); what came out, the log's events and counters. */
static void push_super(const char *spec_text, double batch_s, int nseg, got *o, int *delivered, int *dq, int *dl,
                       mb_link_counters *c)
{
    mb_link_spec spec;
    char err[512];
    if (mb_linkspec_parse(spec_text, &spec, err, sizeof err))
        fail_msg("%s", err);
    int in[2], out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, in), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, out), 0);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    int big = 4 << 20;
    setsockopt(in[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(out[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    char csv[64];
    snprintf(csv, sizeof csv, "/tmp/mb-gso-%d.csv", (int)getpid());
    emu_dir_cfg cfg = {
        .dir = spec.up, .mtu = 1500, .vnet = 1, .batch_s = batch_s, .seed = 5, .csv_path = csv, .name = "gso"};
    emu_dir *d = emu_dir_new(in[1], out[1], &cfg, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    assert_int_equal(emu_dir_start(d, mono(), err, sizeof err), 0);
    static uint8_t sup[65536];
    emu_vnet v;
    size_t len = make_super(sup, 0, (size_t)nseg * MSS, &v);
    uint8_t vh[EMU_VNET_HDR_LEN];
    emu_vnet_put(&v, vh);
    struct iovec iov[2] = {{vh, sizeof vh}, {sup, len}};
    assert_int_equal(writev(in[0], iov, 2), (ssize_t)(sizeof vh + len));
    memset(o, 0, sizeof *o);
    double end = mono() + 0.3;
    while (mono() < end && o->n < 64) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 20) != 1)
            continue;
        static uint8_t rx[70000];
        ssize_t k = read(out[0], rx, sizeof rx);
        if (k < EMU_VNET_HDR_LEN)
            continue;
        emu_vnet_get(&o->v[o->n], rx);
        o->bytes[o->n] = (size_t)k - EMU_VNET_HDR_LEN;
        o->pkt[o->n] = malloc(o->bytes[o->n]);
        memcpy(o->pkt[o->n], rx + EMU_VNET_HDR_LEN, o->bytes[o->n]);
        o->n++;
    }
    emu_dir_stop(d);
    emu_dir_counters(d, c);
    emu_dir_free(d);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[256];
    *delivered = *dq = *dl = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned bytes;
        char ev[32];
        if (sscanf(line, "%*u,%*f,%*f,%*f,%u,%*f,%31s", &bytes, ev) == 2 ||
            sscanf(line, "%*u,%*f,,,%u,,%31s", &bytes, ev) == 2) {
            assert_int_equal(bytes, 20 + TCPH + MSS); /* each segment logged with its wire bytes */
            *delivered += !strcmp(ev, "delivered");
            *dq += !strcmp(ev, "drop-queue");
            *dl += !strcmp(ev, "drop-loss");
        }
    }
    fclose(f);
    unlink(csv);
}

static void got_free(got *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->pkt[i]);
}

/* Every datagram out is a valid packet of consecutive segments: payload
 * matching the original at its sequence number, right checksum. Returns
 * the segments it carried. */
static int check_out(got *o)
{
    const size_t hlen = 20 + TCPH;
    int segs = 0;
    uint32_t last_end = 0;
    for (int i = 0; i < o->n; i++) {
        uint8_t *p = o->pkt[i];
        size_t n = o->bytes[i], pl = n - hlen;
        assert_int_equal(p[2] << 8 | p[3], n);
        assert_int_equal(ones(p, 20, 0), 0);
        uint32_t off = seq_of(p, 20) - 0xfffffc00u;
        assert_true(off % MSS == 0);
        assert_true(i == 0 || off >= last_end);
        for (size_t j = 0; j < pl; j++)
            if (p[hlen + j] != (uint8_t)((off + j) * 7))
                fail_msg("datagram %d: payload byte %zu is not the original's", i, j);
        assert_int_equal(o->v[i].flags & VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_F_NEEDS_CSUM);
        emu_csum_finish(p, n, o->v[i].csum_start, o->v[i].csum_offset);
        assert_true(tcp_csum_ok(p, n));
        int k = (int)((pl + MSS - 1) / MSS);
        assert_int_equal(o->v[i].gso_type != VIRTIO_NET_HDR_GSO_NONE, k > 1);
        if (k > 1)
            assert_int_equal(o->v[i].gso_size, MSS);
        segs += k;
        last_end = off + (uint32_t)pl;
    }
    return segs;
}

static void test_queue_limit_per_segment(void **state)
{
    (void)state;
    got o;
    int dlv, dq, dl;
    mb_link_counters c;
    /* 10 segments at once into a queue of 4 (the one in service counted) */
    push_super("rate=8mbit,queue=4p", 0, 10, &o, &dlv, &dq, &dl, &c);
    assert_int_equal(dlv, 4);
    assert_int_equal(dq, 6);
    assert_int_equal(c.in_packets, 10);
    assert_int_equal(c.drop_queue, 6);
    assert_int_equal(c.out_packets, 4);
    assert_int_equal(c.out_bytes, 4 * (20 + TCPH + MSS));
    assert_int_equal(check_out(&o), 4);
    got_free(&o);
}

static void test_merge_when_due_together(void **state)
{
    (void)state;
    got o;
    int dlv, dq, dl;
    mb_link_counters c;
    /* no rate: all 20 segments are due at once, 5 ms later: one write */
    push_super("delay=5ms", 0, 20, &o, &dlv, &dq, &dl, &c);
    assert_int_equal(dlv, 20);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.bytes[0], 20 + TCPH + 20 * MSS);
    assert_int_equal(check_out(&o), 20);
    assert_int_equal(c.out_packets, 20);
    assert_int_equal(c.out_bytes, 20 * (20 + TCPH + MSS));
    got_free(&o);
    /* 1 ms apart (8 Mbit/s): a 20 ms write window takes the 10 together */
    push_super("rate=8mbit", 0.020, 10, &o, &dlv, &dq, &dl, &c);
    assert_int_equal(dlv, 10);
    assert_int_equal(o.n, 1);
    assert_int_equal(check_out(&o), 10);
    got_free(&o);
    /* without a window each goes at its own time (a late wake-up may
     * still find two due at once, never all ten) */
    push_super("rate=8mbit", 0, 10, &o, &dlv, &dq, &dl, &c);
    assert_int_equal(dlv, 10);
    assert_true(o.n > 1);
    assert_int_equal(check_out(&o), 10);
    got_free(&o);
}

static void test_loss_per_segment(void **state)
{
    (void)state;
    got o;
    int dlv, dq, dl;
    mb_link_counters c;
    push_super("loss=50%,delay=2ms", 0, 40, &o, &dlv, &dq, &dl, &c);
    assert_int_equal(dlv + dl, 40);
    assert_true(dl > 5 && dl < 35);
    assert_int_equal(c.drop_loss, (uint64_t)dl);
    /* the survivors, due together, go in runs of consecutive segments */
    assert_int_equal(check_out(&o), dlv);
    assert_true(o.n < dlv);
    got_free(&o);
}

/* UDP datagrams of one flow due at the same instant (a Mahimahi trace's
 * opportunities at one millisecond) leave in one UDP GSO write; the
 * receiver's stack cuts it into the same datagrams again. */
static void test_udp_merge(void **state)
{
    (void)state;
    char trace[64], err[512];
    snprintf(trace, sizeof trace, "/tmp/mb-gso-%d.trace", (int)getpid());
    FILE *tf = fopen(trace, "w");
    assert_non_null(tf);
    for (int i = 0; i < 12; i++)
        fprintf(tf, "20\n");
    fprintf(tf, "1000\n");
    fclose(tf);
    char spec_text[128];
    snprintf(spec_text, sizeof spec_text, "trace=%s", trace);
    mb_link_spec spec;
    if (mb_linkspec_parse(spec_text, &spec, err, sizeof err))
        fail_msg("%s", err);
    int in[2], out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, in), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, out), 0);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    emu_dir_cfg cfg = {.dir = spec.up, .mtu = 1500, .vnet = 1, .seed = 5, .name = "udp"};
    emu_dir *d = emu_dir_new(in[1], out[1], &cfg, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    assert_int_equal(emu_dir_start(d, mono(), err, sizeof err), 0);
    const size_t pl = 1000;
    uint8_t pkt[28 + 1000], vh[EMU_VNET_HDR_LEN];
    emu_vnet v = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20, .csum_offset = 6};
    emu_vnet_put(&v, vh);
    for (int k = 0; k < 10; k++) {
        size_t len = 28 + (k < 9 ? pl : 300);
        memset(pkt, 0, 28);
        pkt[0] = 0x45, pkt[2] = (uint8_t)(len >> 8), pkt[3] = (uint8_t)len, pkt[5] = (uint8_t)k;
        pkt[6] = 0x40, pkt[8] = 64, pkt[9] = 17;
        pkt[12] = 10, pkt[15] = 1, pkt[16] = 10, pkt[19] = 2;
        pkt[20] = 0x30, pkt[21] = 0x39, pkt[22] = 0x14, pkt[23] = 0x52;
        pkt[24] = (uint8_t)((len - 20) >> 8), pkt[25] = (uint8_t)(len - 20);
        for (size_t j = 0; j < len - 28; j++)
            pkt[28 + j] = (uint8_t)(k * 31 + j);
        struct iovec iov[2] = {{vh, sizeof vh}, {pkt, len}};
        assert_int_equal(writev(in[0], iov, 2), (ssize_t)(sizeof vh + len));
    }
    static uint8_t rx[70000];
    ssize_t rlen[4];
    int n = 0;
    double end = mono() + 0.2;
    while (mono() < end && n < 4) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 20) == 1 && (rlen[n] = read(out[0], rx, sizeof rx)) > 0)
            n++;
    }
    mb_link_counters c;
    emu_dir_stop(d);
    emu_dir_counters(d, &c);
    emu_dir_free(d);
    unlink(trace);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    assert_int_equal(n, 1); /* all ten in one write */
    emu_vnet o;
    emu_vnet_get(&o, rx);
    uint8_t *m = rx + EMU_VNET_HDR_LEN;
    size_t total = (size_t)rlen[0] - EMU_VNET_HDR_LEN;
    assert_int_equal(total, 28 + 9 * pl + 300);
    assert_int_equal(o.gso_type, EMU_GSO_UDP_L4);
    assert_int_equal(o.gso_size, pl);
    assert_int_equal(o.csum_start, 20);
    assert_int_equal(m[2] << 8 | m[3], total);
    assert_int_equal(m[24] << 8 | m[25], total - 20);
    assert_int_equal(ones(m, 20, 0), 0);
    for (int k = 0; k < 10; k++)
        for (size_t j = 0; j < (k < 9 ? pl : 300); j++)
            if (m[28 + (size_t)k * pl + j] != (uint8_t)(k * 31 + j))
                fail_msg("datagram %d byte %zu not the original's", k, j);
    /* the checksum completes over the merged packet (pseudo-header, UDP) */
    emu_csum_finish(m, total, 20, 6);
    uint8_t ph[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 17, (uint8_t)((total - 20) >> 8), (uint8_t)(total - 20)};
    assert_int_equal(ones(m + 20, total - 20, (uint16_t)~ones(ph, 12, 0)), 0);
    assert_int_equal(c.out_packets, 10);
    assert_int_equal(c.out_bytes, 9 * (28 + pl) + 328);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segment_v4),
        cmocka_unit_test(test_segment_v6),
        cmocka_unit_test(test_parse_refuses),
        cmocka_unit_test(test_queue_limit_per_segment),
        cmocka_unit_test(test_merge_when_due_together),
        cmocka_unit_test(test_loss_per_segment),
        cmocka_unit_test(test_udp_merge),
        cmocka_unit_test(test_segment_udp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
