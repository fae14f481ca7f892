/* One direction of the user-space link emulator (see emu_link.h).
 *
 * The pipeline a packet goes through, in the order a real cellular
 * bottleneck imposes it:
 *   arrival -> loss model (Bernoulli or Gilbert-Elliott; dropped at entry as
 *   netem does) -> drop-tail queue limit (packets or bytes, counting the
 *   packet in service) -> AQM (CoDel control law on the sojourn time, when
 *   aqm= is set) -> bottleneck service (constant rate: len*8/rate after the
 *   previous departure; trace: the trace's capacity, see mb_trace_serve) ->
 *   propagation delay + jitter (never reordering) -> delivery.
 * With reorder=P (netem's reorder) a fraction P of the packets skip the
 * propagation delay and jitter: delivered as they leave the bottleneck, they
 * overtake packets still in the delay line. They keep their own FIFO (the
 * express queue: ring positions, in departure order); the rest stay in
 * order.
 * Departure and delivery times are computed when a packet arrives, on a
 * virtual clock, so scheduling latency of this thread never changes the rate
 * a link delivers, only (by tens of microseconds) when a packet is written.
 * The thread sleeps in ppoll() with a nanosecond timeout and a 1 ns timer
 * slack: microsecond timers, unlike Mahimahi's 1 ms tick.
 * With virtio headers on the TUN fds (cfg.vnet), a TCP super-packet (or a
 * UDP GSO packet) is cut into its wire packets on arrival and each goes through the pipeline on its
 * own; packets due at once that one write can carry (segments of one
 * super-packet, datagrams of one UDP flow) leave as one GSO packet (emu_gso.h),
 * and cfg.batch_s lets packets wait that long for the others due after them,
 * so that one wake-up writes them all. One thread serves one direction or,
 * for a link, both (emu_dirs_start). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "emu_gso.h"
#include "emu_link.h"

#define RING_MAX (1u << 20)
#define READ_BATCH 64
#define DEFAULT_QUEUE_PACKETS 1000
#define CODEL_INTERVAL_S 0.100
#define LATE_BINS 2000 /* 5 us bins up to 10 ms */
#define LATE_BIN_US 5.0
#define RT_PRIORITY 20
#define SPIN_S 50e-6 /* early wake-up for a lone packet (MECBED_EMU_SPIN_US overrides) */
#define READ_MAX (65536 + 256) /* a GSO super-packet and its virtio header */
#define MERGE_MAX 64           /* segments in one write */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

typedef struct pkt {
    double arr, start, dep, dlv;
    uint64_t seq;
    uint32_t len, bcap;
    uint8_t *buf;
    /* with virtio headers (cfg.vnet): the header to write with the packet,
     * and for a segment cut from a TCP super-packet, which one (gid, 0:
     * none) and where in it (sidx), for merging on delivery */
    emu_vnet vh;
    uint64_t gid;
    uint32_t sidx;
    uint16_t hlen, mss;
    uint8_t v6, udp; /* udp: a datagram that can merge (emu_udp_mergeable) */
    uint8_t express; /* skipped the delay (reorder=) */
    uint8_t sent;    /* an express packet already written, still holding its ring slot */
} pkt;

typedef struct codel {
    double first_above, drop_next;
    uint32_t count, last_count;
    int dropping;
} codel;

struct emu_dir {
    int in_fd, out_fd;
    emu_dir_cfg cfg;
    char *csv_path, *pcap_path, *name;
    mb_trace *trace;
    mb_trace_cursor cursor;
    /* ring of packets: [head, btl) wait in the delay line, [btl, tail) in the bottleneck queue */
    pkt *ring;
    uint64_t cap, head, btl, tail;
    uint64_t q_bytes;
    /* express queue (reorder=): ring positions of packets that skip the delay */
    uint64_t *xq;
    uint64_t xcap, xhead, xtail;
    long reorder_count; /* delayed packets since the last reordered one (netem's gap counter) */
    size_t bufsz;
    double last_dep, last_dlv;
    double epoch, rt_offset; /* realtime = monotonic + rt_offset */
    uint64_t seq, gid;
    uint64_t n_reads, n_writes, n_wakes, n_wfail; /* MECBED_EMU_DEBUG: printed at the end */
    double idle_cap;  /* bytes the bottleneck could have sent while it had none (ctr.idle_capacity_bytes) */
    uint64_t n_empty; /* packets that found the bottleneck idle (debug) */
    uint8_t *rbuf; /* READ_MAX bytes: what one read() returns */
    uint8_t *pbuf; /* a packet's copy with its checksum completed, for pcap */
    uint64_t rng[4];
    int ge_bad;
    codel cd;
    FILE *csv;
    pcap_t *pcap;
    pcap_dumper_t *dumper;
    struct emu_thread *th; /* the thread serving it (shared by the link's two directions) */
    int stopped;
    double cpu_s; /* the serving thread's CPU charged to this direction */
    double cpu_write; /* thread CPU inside writes to out_fd (ctr.cpu_write_s) */
    mb_link_counters ctr;
    /* delivery lateness histogram (written by the thread, read after stop or racily) */
    uint64_t late_hist[LATE_BINS + 1];
    double late_sum, late_max;
    uint64_t late_n;
};

/* One thread serves one direction or both of a link. Both: the ACKs a data
 * write makes the receiver send are read right after that write, with no
 * wake-up of a second thread, and one wake-up delivers what both directions
 * have due within the write window. */
typedef struct emu_thread {
    emu_dir *d[2];
    int n, refs, stop_fd, joined;
    double spin_s; /* early wake-up for a lone packet (SPIN_S, MECBED_EMU_SPIN_US) */
    pthread_t tid;
} emu_thread;

/* ---- random numbers (xoshiro256**, seeded by splitmix64) ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static double urand(emu_dir *d) /* [0, 1) */
{
    uint64_t *s = d->rng;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(out >> 11) * 0x1.0p-53;
}

static double jitter_sample(emu_dir *d)
{
    const mb_link_dir *l = &d->cfg.dir;
    double j = l->jitter_s;
    if (j <= 0)
        return 0;
    switch (l->jitter_dist) {
    case MB_JITTER_NORMAL: {
        double u1 = urand(d), u2 = urand(d);
        if (u1 < 1e-300)
            u1 = 1e-300;
        return j * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
    }
    case MB_JITTER_PARETO: {
        /* Pareto with shape 3, shifted to zero mean, scaled to standard
         * deviation j: mostly small, with a heavy tail of late packets */
        const double a = 3, sd = 0.8660254037844386; /* std of Pareto(a=3, xm=1) */
        double u = 1 - urand(d);
        double x = pow(u, -1 / a); /* Pareto(xm = 1) */
        return j * (x - a / (a - 1)) / sd;
    }
    default:
        return j * (2 * urand(d) - 1);
    }
}

static int lost(emu_dir *d)
{
    const mb_link_dir *l = &d->cfg.dir;
    if (l->loss_model == MB_LOSS_BERNOULLI)
        return urand(d) < l->loss;
    if (l->loss_model == MB_LOSS_GILBERT_ELLIOTT) {
        /* move between states first, then lose with the new state's probability */
        if (d->ge_bad) {
            if (urand(d) < l->ge_r)
                d->ge_bad = 0;
        } else if (urand(d) < l->ge_p) {
            d->ge_bad = 1;
        }
        return urand(d) < (d->ge_bad ? l->ge_loss_bad : l->ge_loss_good);
    }
    return 0;
}

/* CoDel (RFC 8289) drop decision for a packet leaving the queue at `now`
 * after waiting `sojourn`. */
static int codel_drop(emu_dir *d, double now, double sojourn)
{
    codel *c = &d->cd;
    double target = d->cfg.dir.aqm_target_s;
    int ok = 0;
    if (sojourn < target || d->q_bytes <= (uint64_t)d->cfg.mtu) {
        c->first_above = 0;
    } else if (c->first_above == 0) {
        c->first_above = now + CODEL_INTERVAL_S;
    } else if (now >= c->first_above) {
        ok = 1;
    }
    if (c->dropping) {
        if (!ok) {
            c->dropping = 0;
            return 0;
        }
        if (now >= c->drop_next) {
            c->count++;
            c->drop_next += CODEL_INTERVAL_S / sqrt((double)c->count);
            return 1;
        }
        return 0;
    }
    if (ok) {
        c->dropping = 1;
        uint32_t delta = c->count - c->last_count;
        c->count = (delta > 1 && now - c->drop_next < 16 * CODEL_INTERVAL_S) ? delta : 1;
        c->last_count = c->count;
        c->drop_next = now + CODEL_INTERVAL_S / sqrt((double)c->count);
        return 1;
    }
    return 0;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- logs ---- */

static void log_csv(emu_dir *d, const pkt *p, const char *event)
{
    if (!d->csv)
        return;
    if (!strcmp(event, "delivered") || !strcmp(event, "in-flight-at-end"))
        fprintf(d->csv, "%llu,%.1f,%.1f,%.1f,%u,%.1f,%s\n", (unsigned long long)p->seq, p->arr * 1e6, p->dep * 1e6,
                p->dlv * 1e6, p->len, (p->start - p->arr) * 1e6, event);
    else if (!strcmp(event, "drop-aqm")) /* dropped as it would have left the queue: its sojourn */
        fprintf(d->csv, "%llu,%.1f,,,%u,%.1f,%s\n", (unsigned long long)p->seq, p->arr * 1e6, p->len,
                (p->start - p->arr) * 1e6, event);
    else
        fprintf(d->csv, "%llu,%.1f,,,%u,,%s\n", (unsigned long long)p->seq, p->arr * 1e6, p->len, event);
}

static void log_pcap(emu_dir *d, const pkt *p)
{
    if (!d->dumper)
        return;
    double t = d->epoch + p->dlv + d->rt_offset;
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)floor(t);
    h.ts.tv_usec = (suseconds_t)((t - floor(t)) * 1e6);
    h.caplen = h.len = p->len;
    const uint8_t *b = p->buf;
    if (p->vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        /* the log shows the packet as on a wire: with its checksum */
        memcpy(d->pbuf, p->buf, p->len);
        emu_csum_finish(d->pbuf, p->len, p->vh.csum_start, p->vh.csum_offset);
        b = d->pbuf;
    }
    pcap_dump((u_char *)d->dumper, &h, b);
}

/* ---- the ring ---- */

static int ring_grow(emu_dir *d)
{
    uint64_t ncap = d->cap ? d->cap * 2 : 1024;
    if (ncap > RING_MAX)
        return -1;
    pkt *n = calloc(ncap, sizeof *n);
    if (!n)
        return -1;
    /* live packets move to their slots in the bigger ring with their
     * buffers; buffers of free slots are released (re-made on demand) */
    for (uint64_t a = d->head; a < d->tail; a++) {
        n[a & (ncap - 1)] = d->ring[a & (d->cap - 1)];
        d->ring[a & (d->cap - 1)].buf = NULL;
    }
    for (uint64_t i = 0; i < d->cap; i++)
        free(d->ring[i].buf);
    free(d->ring);
    d->ring = n;
    d->cap = ncap;
    return 0;
}

static pkt *slot(emu_dir *d, uint64_t a)
{
    return &d->ring[a & (d->cap - 1)];
}

static int xq_push(emu_dir *d, uint64_t a)
{
    if (d->xtail - d->xhead == d->xcap) {
        uint64_t ncap = d->xcap ? d->xcap * 2 : 256;
        uint64_t *n = malloc(ncap * sizeof *n);
        if (!n)
            return -1;
        for (uint64_t i = d->xhead; i < d->xtail; i++)
            n[i & (ncap - 1)] = d->xq[i & (d->xcap - 1)];
        free(d->xq);
        d->xq = n;
        d->xcap = ncap;
    }
    d->xq[d->xtail++ & (d->xcap - 1)] = a;
    return 0;
}

/* netem's reorder decision: after gap-1 delayed packets, the next one skips
 * the delay with probability P (gap 1: any packet). */
static int skips_delay(emu_dir *d)
{
    const mb_link_dir *l = &d->cfg.dir;
    if (!(l->reorder > 0))
        return 0;
    long gap = l->reorder_gap > 1 ? l->reorder_gap : 1;
    if (d->reorder_count >= gap - 1 && urand(d) < l->reorder) {
        d->reorder_count = 0;
        return 1;
    }
    d->reorder_count++;
    return 0;
}

/* ---- the pipeline ---- */

static void drop(emu_dir *d, pkt *p, const char *why, uint64_t *counter)
{
    __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
    log_csv(d, p, why);
}

/* A packet admitted at `now` finds the bottleneck idle since the last
 * departure: the capacity of [last_dep, now] went unused because nothing was
 * queued (not the link's doing: the sender had nothing to send), counted so
 * that delivery can be set against the capacity of the busy time. */
static void idle_until(emu_dir *d, double now)
{
    const mb_link_dir *l = &d->cfg.dir;
    double cap = d->trace ? mb_trace_capacity(d->trace, d->last_dep, now, l->trace_loop)
                 : l->rate_bps > 0 ? (now - d->last_dep) * l->rate_bps / 8
                                   : 0;
    d->n_empty++;
    d->idle_cap += cap;
    __atomic_store(&d->ctr.idle_capacity_bytes, &d->idle_cap, __ATOMIC_RELAXED);
}

/* A packet has been read into slot(tail): decide its fate and times. */
static void enqueue(emu_dir *d, double now)
{
    pkt *p = slot(d, d->tail);
    const mb_link_dir *l = &d->cfg.dir;
    p->arr = now;
    p->seq = d->seq++;
    __atomic_add_fetch(&d->ctr.in_packets, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->ctr.in_bytes, p->len, __ATOMIC_RELAXED);
    /* packets that have left the bottleneck by now no longer count against the queue */
    while (d->btl < d->tail && slot(d, d->btl)->dep <= now) {
        d->q_bytes -= slot(d, d->btl)->len;
        d->btl++;
    }
    if (lost(d)) {
        drop(d, p, "drop-loss", &d->ctr.drop_loss);
        return;
    }
    uint64_t q_pkts = d->tail - d->btl;
    long limit_p = l->queue_packets > 0 ? l->queue_packets : l->queue_bytes > 0 ? 0 : DEFAULT_QUEUE_PACKETS;
    if ((limit_p > 0 && q_pkts >= (uint64_t)limit_p) ||
        (l->queue_bytes > 0 && d->q_bytes + p->len > (uint64_t)l->queue_bytes)) {
        drop(d, p, "drop-queue", &d->ctr.drop_queue);
        return;
    }
    double start = now > d->last_dep ? now : d->last_dep;
    p->start = start;
    if (l->aqm_target_s > 0 && codel_drop(d, start, start - now)) {
        drop(d, p, "drop-aqm", &d->ctr.drop_aqm);
        return;
    }
    double dep;
    if (d->trace)
        dep = mb_trace_serve(&d->cursor, start, p->len);
    else if (l->rate_bps > 0)
        dep = start + p->len * 8.0 / l->rate_bps;
    else
        dep = start;
    if (isinf(dep)) {
        /* the trace will never carry it (played once and over, or no capacity at all) */
        drop(d, p, "drop-outage", &d->ctr.drop_outage);
        return;
    }
    if (now > d->last_dep) /* served: the idle stretch before it ends here (once) */
        idle_until(d, now);
    p->start = start;
    p->dep = dep;
    p->sent = 0;
    p->express = (uint8_t)(skips_delay(d) && !xq_push(d, d->tail));
    if (p->express) {
        p->dlv = dep; /* overtakes the delay line; the FIFO's order is kept for the rest */
        __atomic_add_fetch(&d->ctr.reordered, 1, __ATOMIC_RELAXED);
    } else {
        double dlv = dep + l->delay_s + jitter_sample(d);
        if (dlv < dep)
            dlv = dep;
        if (dlv < d->last_dlv)
            dlv = d->last_dlv; /* a FIFO link does not reorder */
        p->dlv = dlv;
        d->last_dlv = dlv;
    }
    d->last_dep = dep;
    d->q_bytes += p->len;
    d->tail++;
}

/* The head of the ring leaves it (delivered, or written earlier through the
 * express queue). */
static void ring_pop(emu_dir *d, pkt *p)
{
    if (d->btl == d->head) {
        d->q_bytes -= p->len;
        d->btl++;
    }
    p->sent = p->express = 0;
    d->head++;
}

/* Lateness and logs of one packet written at `t` (ours). */
static void written(emu_dir *d, pkt *p, double t)
{
    double late = (t - p->dlv) * 1e6;
    d->late_sum += late;
    d->late_n++;
    if (late > d->late_max)
        d->late_max = late;
    size_t bin = (size_t)(late / LATE_BIN_US);
    d->late_hist[bin < LATE_BINS ? bin : LATE_BINS]++;
    log_csv(d, p, "delivered");
    log_pcap(d, p);
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void write_one(emu_dir *d, const pkt *p)
{
    ssize_t w;
    d->n_writes++;
    double c0 = thread_cpu();
    if (d->cfg.vnet) {
        uint8_t vh[EMU_VNET_HDR_LEN];
        emu_vnet_put(&p->vh, vh);
        struct iovec iov[2] = {{vh, sizeof vh}, {p->buf, p->len}};
        w = writev(d->out_fd, iov, 2);
    } else {
        w = write(d->out_fd, p->buf, p->len);
    }
    d->cpu_write += thread_cpu() - c0;
    __atomic_store(&d->ctr.cpu_write_s, &d->cpu_write, __ATOMIC_RELAXED);
    d->n_wfail += w < 0; /* a TUN write fails only if the interface is gone: the run is ending */
    __atomic_add_fetch(&d->ctr.out_packets, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->ctr.out_bytes, p->len, __ATOMIC_RELAXED);
}

/* How many packets from the head, all due at `now`, go out in one write:
 * consecutive segments of one TCP super-packet (see emu_gso.h). */
static size_t merge_run(emu_dir *d, double now)
{
    const pkt *p = slot(d, d->head);
    if ((!p->gid && !p->udp) || d->cfg.dir.corrupt > 0 || d->cfg.dir.duplicate > 0)
        return 1;
    size_t n = 1, total = p->len;
    while (n < MERGE_MAX && d->head + n < d->tail) {
        const pkt *q = slot(d, d->head + n), *prev = slot(d, d->head + n - 1);
        if (q->express || q->dlv > now || total + q->len - q->hlen > 65535)
            break;
        if (p->gid ? q->gid != p->gid || q->sidx != p->sidx + n
                   : !q->udp || prev->len != p->len || q->len > p->len || !emu_udp_same_flow(p->buf, q->buf))
            break;
        total += q->len - q->hlen;
        n++;
    }
    return n;
}

/* Write the n > 1 segments from ring position h as one super-packet; its
 * first segment's headers become the super-packet's. */
static void write_merged(emu_dir *d, uint64_t h, size_t n)
{
    struct iovec iov[MERGE_MAX + 2];
    uint8_t vh[EMU_VNET_HDR_LEN];
    pkt *f = slot(d, h);
    size_t total = f->len, bytes = 0;
    iov[0].iov_base = vh, iov[0].iov_len = sizeof vh;
    iov[1].iov_base = f->buf, iov[1].iov_len = f->len;
    for (size_t i = 1; i < n; i++) {
        pkt *q = slot(d, h + i);
        iov[i + 1].iov_base = q->buf + q->hlen;
        iov[i + 1].iov_len = q->len - q->hlen;
        total += q->len - q->hlen;
    }
    for (size_t i = 0; i < n; i++)
        bytes += slot(d, h + i)->len;
    const pkt *last = slot(d, h + n - 1);
    emu_vnet v;
    if (f->udp)
        emu_udp_merge(f->buf, total, f->len - f->hlen, n, &v);
    else
        emu_gso_merge(f->buf, f->v6, f->vh.csum_start, f->hlen, f->mss, total, n,
                      last->buf[last->vh.csum_start + 13], &v);
    emu_vnet_put(&v, vh);
    d->n_writes++;
    double c0 = thread_cpu();
    ssize_t w = writev(d->out_fd, iov, (int)n + 1);
    d->cpu_write += thread_cpu() - c0;
    __atomic_store(&d->ctr.cpu_write_s, &d->cpu_write, __ATOMIC_RELAXED);
    d->n_wfail += w < 0;
    __atomic_add_fetch(&d->ctr.out_packets, n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->ctr.out_bytes, bytes, __ATOMIC_RELAXED);
}

/* One packet out on its own at `t`: corrupt and duplicate apply (netem's
 * words), then its lateness and logs. */
static void write_single(emu_dir *d, pkt *p, double t)
{
    const mb_link_dir *l = &d->cfg.dir;
    if (l->corrupt > 0 && p->len && urand(d) < l->corrupt) {
        /* netem's corrupt: one random bit anywhere in the packet, under
         * a checksum the receiver checks */
        if (p->vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
            emu_csum_finish(p->buf, p->len, p->vh.csum_start, p->vh.csum_offset);
        p->vh.flags &= (uint8_t) ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID);
        size_t bit = (size_t)(urand(d) * (double)p->len * 8);
        p->buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        __atomic_add_fetch(&d->ctr.corrupted, 1, __ATOMIC_RELAXED);
    }
    int copies = 1 + (l->duplicate > 0 && urand(d) < l->duplicate);
    for (int c = 0; c < copies; c++)
        write_one(d, p);
    if (copies > 1)
        __atomic_add_fetch(&d->ctr.duplicated, 1, __ATOMIC_RELAXED);
    written(d, p, t);
}

static void deliver_due(emu_dir *d, double now)
{
    /* packets that skip the delay first: their own FIFO, in departure order */
    while (d->xhead < d->xtail) {
        pkt *p = slot(d, d->xq[d->xhead & (d->xcap - 1)]);
        if (p->dlv > now)
            break;
        write_single(d, p, mono_now() - d->epoch);
        p->sent = 1;
        d->xhead++;
    }
    /* the delay line; an express packet not yet due waits for the loop above */
    while (d->head < d->tail) {
        pkt *p = slot(d, d->head);
        if (p->sent) {
            ring_pop(d, p);
            continue;
        }
        if (p->express || p->dlv > now)
            break;
        double t = mono_now() - d->epoch; /* one timestamp per write */
        size_t n = merge_run(d, now);
        if (n > 1) {
            /* logged first: the write turns the first segment's headers
             * into the super-packet's (the ring keeps the slots meanwhile) */
            uint64_t h = d->head;
            for (size_t i = 0; i < n; i++) {
                written(d, slot(d, d->head), t);
                ring_pop(d, slot(d, d->head));
            }
            write_merged(d, h, n);
            continue;
        }
        write_single(d, p, t);
        ring_pop(d, p);
    }
}

/* The ring slot for the next packet, with room for len bytes; NULL when
 * the delay line is full (over a million packets in flight) or memory is
 * out: the packet is dropped at entry. */
static pkt *next_slot(emu_dir *d, size_t len)
{
    if (d->tail - d->head == d->cap && ring_grow(d))
        return NULL;
    pkt *p = slot(d, d->tail);
    if (!p->buf || p->bcap < len) {
        size_t n = len > d->bufsz ? len : d->bufsz;
        uint8_t *b = realloc(p->buf, n);
        if (!b)
            return NULL;
        p->buf = b, p->bcap = (uint32_t)n;
    }
    p->gid = 0;
    p->sidx = 0;
    p->udp = 0;
    memset(&p->vh, 0, sizeof p->vh);
    return p;
}

static void drop_at_entry(emu_dir *d, size_t len)
{
    __atomic_add_fetch(&d->ctr.in_packets, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->ctr.in_bytes, len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->ctr.drop_queue, 1, __ATOMIC_RELAXED);
}

/* One packet read (with its virtio header when cfg.vnet) enters the link:
 * a TCP super-packet as the wire packets it stands for, all arriving now. */
static void admit(emu_dir *d, const uint8_t *b, size_t len, double now)
{
    emu_vnet vh = {0};
    emu_gso g;
    if (d->cfg.vnet) {
        if (len < EMU_VNET_HDR_LEN)
            return;
        emu_vnet_get(&vh, b);
        b += EMU_VNET_HDR_LEN, len -= EMU_VNET_HDR_LEN;
        if (emu_gso_parse(&vh, b, len, &g) == 1) {
            uint64_t gid = g.udp ? 0 : ++d->gid;
            for (size_t k = 0; k < g.nseg; k++) {
                pkt *p = next_slot(d, g.hlen + g.mss);
                if (!p) {
                    drop_at_entry(d, g.hlen + (k + 1 < g.nseg ? g.mss : g.payload - k * g.mss));
                    continue;
                }
                p->len = (uint32_t)emu_gso_segment(&g, b, k, p->buf);
                p->vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
                p->vh.csum_start = (uint16_t)g.l4off;
                p->vh.csum_offset = g.udp ? 6 : 16;
                p->gid = gid;
                p->sidx = (uint32_t)k;
                p->hlen = (uint16_t)g.hlen;
                p->mss = (uint16_t)g.mss;
                p->v6 = (uint8_t)g.v6;
                /* a datagram of a UDP GSO packet: it may leave merged with its neighbours again */
                p->udp = (uint8_t)(g.udp && emu_udp_mergeable(&p->vh, p->buf, p->len));
                enqueue(d, now);
            }
            return;
        }
        /* not a super-packet (or one not cut here): it goes as it came */
    }
    pkt *p = next_slot(d, len);
    if (!p) {
        drop_at_entry(d, len);
        return;
    }
    memcpy(p->buf, b, len);
    p->len = (uint32_t)len;
    p->vh = vh;
    if (d->cfg.vnet && emu_udp_mergeable(&vh, b, len))
        p->udp = 1, p->hlen = 28;
    enqueue(d, now);
}

static void read_batch(emu_dir *d)
{
    for (int k = 0; k < READ_BATCH; k++) {
        ssize_t r = read(d->in_fd, d->rbuf, READ_MAX);
        if (r <= 0)
            break; /* EAGAIN: all read */
        d->n_reads++;
        admit(d, d->rbuf, (size_t)r, mono_now() - d->epoch);
    }
}

/* When the next wake-up to write is due: the head's delivery time or, with
 * a write window W (cfg.batch_s), that of the last packet due within W of
 * the head (at most MERGE_MAX of them), so that they go out in one wake-up
 * (segments one write can carry merged, emu_gso.h), none more than W late
 * and the last on time. A lone packet (an idle link's probe or request) is
 * never held. */
static double write_due(emu_dir *d)
{
    const pkt *h = slot(d, d->head);
    double due = h->dlv;
    if (d->cfg.batch_s > 0) {
        double lim = due + d->cfg.batch_s;
        for (uint64_t a = d->head + 1; a < d->tail && a < d->head + MERGE_MAX; a++) {
            const pkt *q = slot(d, a);
            if (q->express || q->dlv > lim)
                break;
            due = q->dlv;
        }
    }
    return due;
}

/* When the next write is due: the delay line's (write_due) or the express
 * queue's head, whichever is first. */
static double next_due(emu_dir *d)
{
    double due = write_due(d);
    if (d->xhead < d->xtail) {
        double x = slot(d, d->xq[d->xhead & (d->xcap - 1)])->dlv;
        if (x < due)
            due = x;
    }
    return due;
}

/* The CPU the thread used since *c0, charged to d. */
static void charge(emu_dir *d, double *c0)
{
    double c = thread_cpu();
    double acc = d->cpu_s + (c - *c0);
    __atomic_store(&d->cpu_s, &acc, __ATOMIC_RELAXED);
    *c0 = c;
}

static void *run(void *arg)
{
    emu_thread *th = arg;
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the requested nanosecond, not 50 us later */
    /* A real-time priority (root only; MECBED_EMU_RT=0 turns it off) keeps
     * busy neighbours from delaying deliveries. The thread sleeps between
     * packets and never spins, and the kernel's RT throttling bounds it. */
    const char *rt = getenv("MECBED_EMU_RT");
    if (!rt || strcmp(rt, "0")) {
        struct sched_param sp = {.sched_priority = RT_PRIORITY};
        pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    }
    pthread_setname_np(pthread_self(), "mb-emu");
    double epoch = th->d[0]->epoch; /* the directions share it */
    struct pollfd fds[3];
    for (int i = 0; i < th->n; i++)
        fds[i] = (struct pollfd){.fd = th->d[i]->in_fd, .events = POLLIN};
    fds[th->n] = (struct pollfd){.fd = th->stop_fd, .events = POLLIN};
    double c0 = thread_cpu();
    for (;;) {
        /* deliver what is due, and find the soonest write still to come
         * over the thread's directions (first NULL: nothing in flight);
         * next_due scans up to a write window of packets, so it is taken
         * once per direction, and again only after a delivery changed it */
        double now = mono_now() - epoch, due = 0;
        uint64_t in_flight = 0;
        emu_dir *first = NULL;
        for (int i = 0; i < th->n; i++) {
            emu_dir *d = th->d[i];
            if (d->head == d->tail)
                continue;
            double x = next_due(d);
            if (now >= x) {
                deliver_due(d, now);
                charge(d, &c0);
                if (d->head == d->tail)
                    continue;
                x = next_due(d);
            }
            in_flight += d->tail - d->head;
            if (!first || x < due)
                due = x, first = d;
        }
        struct timespec ts, *tsp = NULL;
        if (first) {
            double wait = due - (mono_now() - epoch);
            /* A lone packet in flight (an idle link: an RTT probe, a request)
             * is where delivery time matters most and costs least: wake a
             * little early and spin to its due time, instead of paying the
             * wake-up latency. Busy links never spin. */
            if (in_flight == 1 && wait < th->spin_s) {
                while (mono_now() - epoch < due)
                    ;
                continue;
            }
            if (in_flight == 1)
                wait -= th->spin_s;
            if (wait < 0)
                wait = 0;
            ts.tv_sec = (time_t)wait;
            ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
            tsp = &ts;
        }
        /* with nothing in flight we sleep until a packet or the stop signal:
         * an outage stalls traffic without spinning */
        int n = ppoll(fds, (nfds_t)th->n + 1, tsp, NULL);
        /* the sleep and its wake-up are charged to the direction that
         * ended it: a packet to read, or its due write */
        emu_dir *waker = first ? first : th->d[0];
        for (int i = 0; i < th->n; i++)
            if (fds[i].revents & POLLIN) {
                waker = th->d[i];
                break;
            }
        waker->n_wakes++;
        charge(waker, &c0);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (fds[th->n].revents)
            break;
        int gone = 0;
        for (int i = 0; i < th->n; i++) {
            if (fds[i].revents & POLLIN) {
                read_batch(th->d[i]);
                charge(th->d[i], &c0);
            } else if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                gone = 1;
            }
        }
        if (gone)
            break;
    }
    return NULL;
}

emu_dir *emu_dir_new(int in_fd, int out_fd, const emu_dir_cfg *cfg, char *err, size_t errlen)
{
    emu_dir *d = calloc(1, sizeof *d);
    if (!d) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    d->in_fd = in_fd;
    d->out_fd = out_fd;
    d->cfg = *cfg;
    d->name = strdup(cfg->name ? cfg->name : "link");
    d->cfg.name = d->name;
    if (d->cfg.mtu <= 0)
        d->cfg.mtu = 1500;
    d->bufsz = (size_t)d->cfg.mtu + 256;
    uint64_t seed = cfg->seed ? cfg->seed : 1;
    for (int i = 0; i < 4; i++)
        d->rng[i] = splitmix64(&seed);
    if (cfg->dir.trace[0]) {
        /* stretched by the direction's time_scale under time dilation */
        d->trace = mb_trace_read_dir(&cfg->dir, err, errlen);
        if (!d->trace)
            goto fail;
        mb_trace_cursor_init(&d->cursor, d->trace, cfg->dir.trace_loop);
    }
    d->rbuf = malloc(READ_MAX);
    d->pbuf = malloc(READ_MAX);
    if (!d->rbuf || !d->pbuf || ring_grow(d)) {
        fail(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->csv_path) {
        d->csv = fopen(cfg->csv_path, "w");
        if (!d->csv) {
            fail(err, errlen, "%s: %s", cfg->csv_path, strerror(errno));
            goto fail;
        }
        setvbuf(d->csv, NULL, _IOFBF, 1 << 20);
        fprintf(d->csv, "seq,arrival_us,departure_us,delivery_us,bytes,queue_delay_us,event\n");
    }
    if (cfg->pcap_path) {
        d->pcap = pcap_open_dead(DLT_RAW, 65535);
        if (d->pcap)
            d->dumper = pcap_dump_open(d->pcap, cfg->pcap_path);
        if (!d->dumper) {
            fail(err, errlen, "%s: %s", cfg->pcap_path, d->pcap ? pcap_geterr(d->pcap) : "pcap_open_dead failed");
            goto fail;
        }
    }
    d->cfg.csv_path = d->cfg.pcap_path = NULL;
    return d;
fail:
    emu_dir_free(d);
    return NULL;
}

int emu_dirs_start(emu_dir *const *ds, int n, double epoch, char *err, size_t errlen)
{
    if (n < 1 || n > 2)
        return fail(err, errlen, "an emulator thread serves one or two directions, not %d", n);
    double spin_s = SPIN_S;
    const char *sp = getenv("MECBED_EMU_SPIN_US");
    if (sp && *sp) {
        char *end;
        double us = strtod(sp, &end);
        if (*end != '\0' || !(us >= 0 && us <= 1000))
            return fail(err, errlen, "MECBED_EMU_SPIN_US='%s': expected microseconds from 0 to 1000", sp);
        spin_s = us * 1e-6;
    }
    emu_thread *th = calloc(1, sizeof *th);
    if (!th)
        return fail(err, errlen, "out of memory");
    th->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (th->stop_fd < 0) {
        free(th);
        return fail(err, errlen, "eventfd: %s", strerror(errno));
    }
    th->n = n;
    th->spin_s = spin_s;
    struct timespec rt, mo;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mo);
    double rt_offset = ((double)rt.tv_sec + (double)rt.tv_nsec * 1e-9) - ((double)mo.tv_sec + (double)mo.tv_nsec * 1e-9);
    for (int i = 0; i < n; i++) {
        th->d[i] = ds[i];
        ds[i]->epoch = epoch;
        ds[i]->rt_offset = rt_offset;
    }
    int rc = pthread_create(&th->tid, NULL, run, th);
    if (rc) {
        close(th->stop_fd);
        free(th);
        return fail(err, errlen, "%s: cannot start the emulator thread: %s", ds[0]->name, strerror(rc));
    }
    th->refs = n;
    for (int i = 0; i < n; i++)
        ds[i]->th = th;
    return 0;
}

int emu_dir_start(emu_dir *d, double epoch, char *err, size_t errlen)
{
    return emu_dirs_start(&d, 1, epoch, err, errlen);
}

void emu_dir_stop(emu_dir *d)
{
    if (!d || !d->th || d->stopped)
        return;
    emu_thread *th = d->th;
    if (!th->joined) {
        uint64_t one = 1;
        if (write(th->stop_fd, &one, sizeof one) < 0)
            perror("mecbed: emulator stop");
        pthread_join(th->tid, NULL);
        th->joined = 1;
    }
    d->stopped = 1;
    if (getenv("MECBED_EMU_DEBUG"))
        fprintf(stderr, "%s: %llu packets in %llu reads, %llu out in %llu writes (%llu failed), %llu wake-ups, %.3f s CPU (%.3f in writes), %llu packets found it idle%s\n",
                d->name, (unsigned long long)d->ctr.in_packets, (unsigned long long)d->n_reads,
                (unsigned long long)d->ctr.out_packets, (unsigned long long)d->n_writes, (unsigned long long)d->n_wfail,
                (unsigned long long)d->n_wakes, d->cpu_s, d->cpu_write, (unsigned long long)d->n_empty,
                th->n > 1 ? " (one thread for both directions)" : "");
    /* packets still in flight when the link goes: log them as such */
    if (d->csv) {
        for (uint64_t a = d->head; a < d->tail; a++)
            if (!slot(d, a)->sent)
                log_csv(d, slot(d, a), "in-flight-at-end");
        fflush(d->csv);
    }
    if (d->dumper)
        pcap_dump_flush(d->dumper);
}

void emu_dir_free(emu_dir *d)
{
    if (!d)
        return;
    emu_dir_stop(d);
    if (d->csv)
        fclose(d->csv);
    if (d->dumper)
        pcap_dump_close(d->dumper);
    if (d->pcap)
        pcap_close(d->pcap);
    if (d->th && --d->th->refs == 0) {
        close(d->th->stop_fd);
        free(d->th);
    }
    for (uint64_t i = 0; i < d->cap; i++)
        free(d->ring[i].buf);
    free(d->ring);
    free(d->xq);
    free(d->rbuf);
    free(d->pbuf);
    mb_trace_free(d->trace);
    free(d->name);
    free(d);
}

void emu_dir_counters(const emu_dir *d, mb_link_counters *c)
{
    c->in_packets = __atomic_load_n(&d->ctr.in_packets, __ATOMIC_RELAXED);
    c->in_bytes = __atomic_load_n(&d->ctr.in_bytes, __ATOMIC_RELAXED);
    c->out_packets = __atomic_load_n(&d->ctr.out_packets, __ATOMIC_RELAXED);
    c->out_bytes = __atomic_load_n(&d->ctr.out_bytes, __ATOMIC_RELAXED);
    c->drop_loss = __atomic_load_n(&d->ctr.drop_loss, __ATOMIC_RELAXED);
    c->drop_queue = __atomic_load_n(&d->ctr.drop_queue, __ATOMIC_RELAXED);
    c->drop_aqm = __atomic_load_n(&d->ctr.drop_aqm, __ATOMIC_RELAXED);
    c->drop_outage = __atomic_load_n(&d->ctr.drop_outage, __ATOMIC_RELAXED);
    c->reordered = __atomic_load_n(&d->ctr.reordered, __ATOMIC_RELAXED);
    c->duplicated = __atomic_load_n(&d->ctr.duplicated, __ATOMIC_RELAXED);
    c->corrupted = __atomic_load_n(&d->ctr.corrupted, __ATOMIC_RELAXED);
    __atomic_load(&d->ctr.idle_capacity_bytes, &c->idle_capacity_bytes, __ATOMIC_RELAXED);
    __atomic_load(&d->ctr.cpu_write_s, &c->cpu_write_s, __ATOMIC_RELAXED);
    if (d->late_n) {
        c->late_mean_us = d->late_sum / (double)d->late_n;
        c->late_max_us = d->late_max;
        uint64_t acc = 0, n50 = 0, n99 = 0;
        double p50 = -1, p99 = -1;
        n50 = (d->late_n + 1) / 2;
        n99 = (uint64_t)ceil(0.99 * (double)d->late_n);
        for (size_t i = 0; i <= LATE_BINS && p99 < 0; i++) {
            acc += d->late_hist[i];
            if (p50 < 0 && acc >= n50)
                p50 = ((double)i + 1) * LATE_BIN_US;
            if (acc >= n99)
                p99 = ((double)i + 1) * LATE_BIN_US;
        }
        c->late_p50_us = p50;
        c->late_p99_us = p99;
    }
    __atomic_load(&d->cpu_s, &c->cpu_s, __ATOMIC_RELAXED);
}
