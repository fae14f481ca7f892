/* Link fidelity probes (include/mecbed/linktest.h). All traffic runs between
 * the two namespaces of one link; sockets are created inside the namespaces
 * (mb_net_socket) and used from threads of this process. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <math.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/linktest.h"
#include "mecbed/trace.h"

#define PORT_ECHO 7101
#define PORT_TCP 7102
#define PORT_UDP 7103
#define MAX_RTT_SAMPLES 4096
#define MAX_LOSS_SEQ (1 << 22)

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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

typedef struct ctx {
    mb_net *net;
    int link, a, b;
    struct sockaddr_in addr_b;
    int mtu;
    volatile int stop_all;   /* servers */
    volatile int stop_phase; /* clients of the current phase */
    const char *cc;          /* TCP congestion control asked for (NULL: the default) */
    char cc_used[16];        /* the one the TCP client's socket had */
    int cc_err;              /* errno of setting cc */
    /* TCP */
    int tcp_listen;
    uint64_t tcp_rx;
    /* UDP sink */
    int udp_sink;
    uint32_t udp_phase;
    uint64_t udp_rx_pkts, udp_rx_ip_bytes;
    uint8_t *seen; /* loss phase: received sequence numbers */
    uint32_t seq_max;   /* loss phase: the highest sequence number received so far */
    uint64_t out_of_order; /* loss phase: datagrams arriving after a higher-numbered one (as iperf3 counts) */
    /* RTT under load */
    double load_rtt[MAX_RTT_SAMPLES];
    int n_load_rtt;
    /* one-way delays of the idle probes */
    int record_owd;
    double owd_up[MAX_RTT_SAMPLES], owd_down[MAX_RTT_SAMPLES];
    double owd_sent[MAX_RTT_SAMPLES]; /* when the probe of owd_up[i] was sent */
    int n_owd_up, n_owd_down;
    /* per-interval samples: b's received IP bytes and the time at the last one */
    double iv_bytes, iv_t;
} ctx;

static struct sockaddr_in with_port(const ctx *c, int port)
{
    struct sockaddr_in a = c->addr_b;
    a.sin_port = htons((uint16_t)port);
    return a;
}

/* ---- servers in b ---- */

typedef struct rtt_msg {
    uint32_t magic, seq;
    double sent, echoed; /* both namespaces share CLOCK_MONOTONIC: one-way delays are exact */
    char pad[40];
} rtt_msg;


/* Probe threads that measure time get a real-time priority when allowed, so
 * a busy machine delays them less (bulk senders stay normal). */
static void realtime(void)
{
    struct sched_param sp = {.sched_priority = 10};
    pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
}

static void *echo_server(void *arg)
{
    ctx *c = arg;
    realtime();
    int fd = mb_net_socket(c->net, c->b, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a = with_port(c, PORT_ECHO);
    if (bind(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return NULL;
    }
    char buf[2048];
    while (!c->stop_all) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n == (ssize_t)sizeof(rtt_msg)) {
            rtt_msg m;
            memcpy(&m, buf, sizeof m);
            m.echoed = now_s();
            int i = __atomic_fetch_add(&c->n_owd_up, 1, __ATOMIC_RELAXED);
            if (i < MAX_RTT_SAMPLES) {
                c->owd_up[i] = (m.echoed - m.sent) * 1e3;
                c->owd_sent[i] = m.sent;
            }
            memcpy(buf, &m, sizeof m);
        }
        if (n > 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
    close(fd);
    return NULL;
}

static void *tcp_server(void *arg)
{
    ctx *c = arg;
    realtime(); /* the link, not the machine's other work, must limit the flow */
    char *buf = malloc(1 << 18);
    if (!buf)
        return NULL;
    while (!c->stop_all) {
        struct pollfd p = {.fd = c->tcp_listen, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept4(c->tcp_listen, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        while (!c->stop_all) {
            struct pollfd q = {.fd = fd, .events = POLLIN};
            if (poll(&q, 1, 50) <= 0)
                continue;
            ssize_t n = recv(fd, buf, 1 << 18, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0)
                __atomic_add_fetch(&c->tcp_rx, (uint64_t)n, __ATOMIC_RELAXED);
        }
        close(fd);
    }
    free(buf);
    return NULL;
}

/* The UDP sink: batched receives (recvmmsg) at a real-time priority, so at
 * 200 Mbit/s on a busy machine the probe's receiver is not what limits the
 * figure. */
#define RX_BATCH 64
static void *udp_server(void *arg)
{
    ctx *c = arg;
    realtime();
    size_t bsz = (size_t)c->mtu;
    char *bufs = malloc(RX_BATCH * bsz);
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH];
    if (!bufs)
        return NULL;
    for (int i = 0; i < RX_BATCH; i++) {
        iov[i].iov_base = bufs + (size_t)i * bsz;
        iov[i].iov_len = bsz;
        memset(&msgs[i], 0, sizeof msgs[i]);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!c->stop_all) {
        struct pollfd p = {.fd = c->udp_sink, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        for (int round = 0; round < 16; round++) {
            int n = recvmmsg(c->udp_sink, msgs, RX_BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0)
                break;
            uint32_t cur = __atomic_load_n(&c->udp_phase, __ATOMIC_RELAXED);
            for (int i = 0; i < n; i++) {
                const char *buf = iov[i].iov_base;
                if (msgs[i].msg_len < 8)
                    continue;
                uint32_t phase, seq;
                memcpy(&phase, buf, 4);
                memcpy(&seq, buf + 4, 4);
                if (phase != cur)
                    continue;
                __atomic_add_fetch(&c->udp_rx_pkts, 1, __ATOMIC_RELAXED);
                __atomic_add_fetch(&c->udp_rx_ip_bytes, (uint64_t)msgs[i].msg_len + 28, __ATOMIC_RELAXED);
                if (c->seen && seq < MAX_LOSS_SEQ) {
                    if (c->seen[seq])
                        continue; /* a duplicate (duplicate=) is neither new nor out of order */
                    c->seen[seq] = 1;
                    if (seq < c->seq_max)
                        c->out_of_order++;
                    else
                        c->seq_max = seq;
                }
            }
            if (n < RX_BATCH)
                break;
        }
    }
    free(bufs);
    return NULL;
}

/* ---- RTT ---- */

/* n probes every interval; RTT samples (ms) of the replies into out. */
static int rtt_probes(ctx *c, int n, double interval, double timeout, double *out, int max_out, volatile int *stop)
{
    int fd = mb_net_socket(c->net, c->a, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = with_port(c, PORT_ECHO);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int got = 0;
    double t0 = now_s(), last_send = t0;
    for (int i = 0; (n < 0 || i < n) && !(stop && *stop); i++) {
        rtt_msg m = {.magic = 0x6d627274, .seq = (uint32_t)i, .sent = now_s()};
        last_send = m.sent;
        send(fd, &m, sizeof m, 0);
        double next = t0 + (i + 1) * interval;
        /* collect replies until the next send (or the final timeout) */
        for (;;) {
            int last = n >= 0 && i == n - 1;
            double end = last ? last_send + timeout : next;
            double wait = end - now_s();
            if (wait <= 0 || (stop && *stop && n < 0) || (last && got == n))
                break;
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, (int)ceil(wait * 1000)) <= 0)
                continue;
            rtt_msg r;
            if (recv(fd, &r, sizeof r, MSG_DONTWAIT) == (ssize_t)sizeof r && r.magic == 0x6d627274 && got < max_out) {
                double t = now_s();
                out[got++] = (t - r.sent) * 1e3;
                if (c->record_owd && c->n_owd_down < MAX_RTT_SAMPLES)
                    c->owd_down[c->n_owd_down++] = (t - r.echoed) * 1e3;
            }
        }
    }
    close(fd);
    return got;
}

static void *load_rtt_thread(void *arg)
{
    ctx *c = arg;
    realtime();
    c->n_load_rtt = rtt_probes(c, -1, 0.1, 1.0, c->load_rtt, MAX_RTT_SAMPLES, &c->stop_phase);
    if (c->n_load_rtt < 0)
        c->n_load_rtt = 0;
    return NULL;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double pct(double *v, int n, double p)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double pos = p / 100 * (n - 1);
    int i = (int)floor(pos);
    if (i + 1 >= n)
        return v[n - 1];
    return v[i] + (v[i + 1] - v[i]) * (pos - i);
}

/* Wait until the link's queues have drained: a probe's RTT is back near the
 * idle RTT (a previous phase can leave seconds of queue at low rates). */
static void drain(ctx *c, double idle_ms, double limit_s)
{
    double t_end = now_s() + limit_s;
    while (now_s() < t_end) {
        double rtt[4];
        int n = rtt_probes(c, 1, 0.05, 1.0, rtt, 4, NULL);
        if (n > 0 && rtt[0] < 1.5 * idle_ms + 5)
            return;
        usleep(100000);
    }
}

/* ---- TCP ---- */

static void *tcp_client(void *arg)
{
    ctx *c = arg;
    realtime();
    int fd = mb_net_socket(c->net, c->a, AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in a = with_port(c, PORT_TCP);
    if (c->cc && setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, c->cc, (socklen_t)strlen(c->cc))) {
        c->cc_err = errno;
        close(fd);
        return NULL;
    }
    socklen_t cl = sizeof c->cc_used - 1;
    getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, c->cc_used, &cl);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return NULL;
    }
    char *buf = calloc(1, 1 << 16);
    while (buf && !c->stop_phase) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = send(fd, buf, 1 << 16, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
    }
    free(buf);
    /* RST rather than a graceful close: queued data need not drain */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    return NULL;
}

/* Receive counters of b's interface on this link (IP bytes; the veth count
 * includes the Ethernet header, taken off here). */
typedef struct ifc {
    const char *name;
    uint64_t bytes, packets;
    int found;
} ifc;

static int read_ifc(void *arg)
{
    ifc *x = arg;
    struct ifaddrs *ifa;
    x->found = 0;
    if (getifaddrs(&ifa))
        return -1;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
        /* a TUN device has no link address: its stats entry has no ifa_addr */
        if ((!i->ifa_addr || i->ifa_addr->sa_family == AF_PACKET) && i->ifa_data && !strcmp(i->ifa_name, x->name)) {
            const struct rtnl_link_stats *st = i->ifa_data;
            x->bytes = st->rx_bytes;
            x->packets = st->rx_packets;
            x->found = 1;
        }
    freeifaddrs(ifa);
    return 0;
}

static double ip_rx_bytes(ctx *c)
{
    if (!strcmp(mb_net_backend(c->net), "emu")) {
        /* the emulator's count of the wire packets it delivered towards b:
         * it writes TCP segments merged into GSO super-packets, which the
         * interface counts with their headers once */
        mb_link_counters k;
        int dir = mb_net_topology(c->net)->links[c->link].a == c->b ? 1 : 0;
        if (mb_net_link_counters(c->net, c->link, dir, &k))
            return NAN;
        return (double)k.out_bytes;
    }
    ifc x = {.name = mb_net_ifname(c->net, c->link, mb_net_topology(c->net)->links[c->link].a == c->b ? 0 : 1)};
    mb_net_in_site(c->net, c->b, read_ifc, &x);
    if (!x.found)
        return NAN;
    double hdr = strcmp(mb_net_backend(c->net), "tc") ? 0 : 14;
    return (double)x.bytes - hdr * (double)x.packets;
}

/* The emulator's CPU by direction: [0] the one carrying a -> b, [1] the
 * other; [2], [3]: of which inside their TUN writes. -1 when not emu. */
static int link_cpu(ctx *c, double cpu[4])
{
    mb_link_counters k[2];
    int fwd = mb_net_topology(c->net)->links[c->link].a == c->b ? 1 : 0;
    if (mb_net_link_counters(c->net, c->link, fwd, &k[0]) || mb_net_link_counters(c->net, c->link, 1 - fwd, &k[1]))
        return -1;
    cpu[0] = k[0].cpu_s, cpu[1] = k[1].cpu_s, cpu[2] = k[0].cpu_write_s, cpu[3] = k[1].cpu_write_s;
    return 0;
}

/* The emulator's unused capacity a -> b so far (idle_capacity_bytes), NAN
 * when not emu. */
static double link_idle_capacity(ctx *c)
{
    mb_link_counters k;
    int fwd = mb_net_topology(c->net)->links[c->link].a == c->b ? 1 : 0;
    if (mb_net_link_counters(c->net, c->link, fwd, &k))
        return NAN;
    return k.idle_capacity_bytes;
}

/* ---- UDP ---- */

typedef struct udp_send_arg {
    ctx *c;
    double rate_bps; /* IP bits per second */
    size_t ip_bytes; /* datagram size at the IP layer (0: the MTU) */
    double t0;       /* when the first datagram was due (datagram k: t0 + k x its time at rate_bps) */
    uint32_t phase;
    long sent;
    uint64_t ok; /* datagrams the kernel accepted */
    double max_lag_s; /* the most the sender fell behind its schedule */
    int gso;          /* sent with UDP GSO */
} udp_send_arg;

/* The sender wakes at most every UDP_BURST_S and sends the datagrams due by
 * then; with UDP GSO (UDP_SEGMENT) one send carries up to UDP_GSO_MAX of
 * them and the kernel cuts it into datagrams, so the sender can offer
 * 600+ Mbit/s of 1500-byte datagrams on a busy machine. */
#define UDP_BURST_S 200e-6
#define UDP_GSO_MAX 64

static void *udp_client(void *arg)
{
    udp_send_arg *u = arg;
    ctx *c = u->c;
    prctl(PR_SET_TIMERSLACK, 1UL);
    /* offered load must not depend on what else the machine runs */
    realtime();
    int fd = mb_net_socket(c->net, c->a, AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return NULL;
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in a = with_port(c, PORT_UDP);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return NULL;
    }
    size_t payload = (u->ip_bytes ? u->ip_bytes : (size_t)c->mtu) - 28;
    int gso = (int)payload;
    long max_seg = 65507 / (long)payload;
    if (max_seg > UDP_GSO_MAX)
        max_seg = UDP_GSO_MAX;
    if (max_seg < 2 || setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso))
        max_seg = 1;
    char *buf = calloc((size_t)max_seg, payload);
    double per_pkt = (double)(payload + 28) * 8 / u->rate_bps;
    double t0 = now_s();
    u->t0 = t0;
    long sent = 0, maxlag = 0;
    while (buf && !c->stop_phase) {
        double now = now_s();
        long due = (long)((now - t0) / per_pkt) + 1;
        if (due - sent > maxlag)
            maxlag = due - sent;
        while (sent < due && !c->stop_phase) {
            long k = due - sent < max_seg ? due - sent : max_seg;
            for (long i = 0; i < k; i++) {
                uint32_t seq = (uint32_t)(sent + i);
                memcpy(buf + (size_t)i * payload, &u->phase, 4);
                memcpy(buf + (size_t)i * payload + 4, &seq, 4);
            }
            if (send(fd, buf, (size_t)k * payload, 0) >= 0) {
                __atomic_add_fetch(&u->ok, (uint64_t)k, __ATOMIC_RELAXED);
            } else if (max_seg > 1 && (errno == EIO || errno == EINVAL)) {
                /* a path without checksum offload refuses UDP GSO: one datagram a send */
                gso = 0;
                setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof gso);
                max_seg = 1;
                continue;
            } else if (errno != ENOBUFS && errno != EAGAIN) {
                goto out;
            }
            sent += k;
        }
        double next = t0 + (double)sent * per_pkt, cap = now_s() + 0.001;
        if (next < now + UDP_BURST_S)
            next = now + UDP_BURST_S;
        sleep_until(next < cap ? next : cap);
    }
out:
    u->sent = sent;
    u->max_lag_s = (double)maxlag * per_pkt;
    u->gso = max_seg > 1;
    free(buf);
    close(fd);
    return NULL;
}

/* ---- the test ---- */

static int setup_servers(ctx *c, char *err, size_t errlen)
{
    c->tcp_listen = mb_net_socket(c->net, c->b, AF_INET, SOCK_STREAM, 0);
    c->udp_sink = mb_net_socket(c->net, c->b, AF_INET, SOCK_DGRAM, 0);
    if (c->tcp_listen < 0 || c->udp_sink < 0)
        return fail(err, errlen, "link test: sockets in %s: %s", mb_net_netns(c->net, c->b), strerror(errno));
    int one = 1;
    setsockopt(c->tcp_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in t = with_port(c, PORT_TCP), u = with_port(c, PORT_UDP);
    int rcvbuf = 8 << 20;
    /* past rmem_max as root: a receiver that falls behind for a few ms at
     * 200 Mbit/s must not drop in its socket buffer */
    if (setsockopt(c->udp_sink, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf))
        setsockopt(c->udp_sink, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(c->tcp_listen, (struct sockaddr *)&t, sizeof t) || listen(c->tcp_listen, 4) ||
        bind(c->udp_sink, (struct sockaddr *)&u, sizeof u))
        return fail(err, errlen, "link test: bind in %s: %s", mb_net_netns(c->net, c->b), strerror(errno));
    return 0;
}

static double trace_peak_bps(const mb_link_dir *up)
{
    char err[256];
    mb_trace *tr = mb_trace_read_dir(up, err, sizeof err);
    if (!tr)
        return 0;
    mb_trace_stats s;
    double peak = 0;
    if (mb_trace_stats_compute(tr, 0.1, &s) == 0)
        peak = s.max_bps;
    mb_trace_free(tr);
    return peak;
}

/* The configured figures of the link's a -> b direction; everything measured
 * starts as NaN (JSON null) so a phase not run does not read as 0. */
static void init_result(mb_linktest_result *r, const mb_link_spec *spec, const mb_link_dir *up)
{
    r->cfg_rate_mbps = up->rate_bps / 1e6;
    r->cfg_delay_ms = up->delay_s * 1e3;
    r->cfg_rtt_ms = mb_linkspec_rtt(spec) * 1e3;
    r->cfg_loss = up->loss_model == MB_LOSS_BERNOULLI ? up->loss
                  : up->loss_model == MB_LOSS_GILBERT_ELLIOTT && up->ge_p + up->ge_r > 0
                      ? (up->ge_p * up->ge_loss_bad + up->ge_r * up->ge_loss_good) / (up->ge_p + up->ge_r)
                      : 0;
    r->cfg_reorder = up->reorder;
    r->has_trace = up->trace[0] != 0;
    r->tcp_mbps = r->goodput_mbps = r->udp_mbps = r->udp_offered_mbps = r->rtt_load_ms = r->loss_rate = NAN;
    r->trace_delivered_bytes = r->trace_capacity_bytes = r->trace_ratio = NAN;
    r->emu_cpu_percent = r->emu_cpu_fwd_percent = r->emu_cpu_rev_percent = -1;
    r->emu_cpu_fwd_write_percent = r->emu_cpu_rev_write_percent = -1;
    r->trace_idle_capacity_bytes = r->trace_ratio_busy = r->udp_sender_lag_ms = NAN;
    r->owd_ideal_ms = r->owd_error_ms = r->owd_capacity_wait_ms = r->loss_wait_s = NAN;
    r->loss_drop_random = r->loss_drop_queue = r->loss_drop_outage = -1;
}

/* The server threads in b (echo, TCP sink, UDP sink). */
typedef struct servers {
    pthread_t echo, tcp, udp;
    int have_echo, have_tcp, have_udp;
} servers;

static int start_servers(ctx *c, servers *s, char *err, size_t errlen)
{
    if (setup_servers(c, err, errlen))
        return -1;
    if (!pthread_create(&s->echo, NULL, echo_server, c))
        s->have_echo = 1;
    if (!pthread_create(&s->tcp, NULL, tcp_server, c))
        s->have_tcp = 1;
    if (!pthread_create(&s->udp, NULL, udp_server, c))
        s->have_udp = 1;
    if (!s->have_echo || !s->have_tcp || !s->have_udp)
        return fail(err, errlen, "link test: cannot start threads");
    usleep(20000);
    return 0;
}

static void stop_servers(ctx *c, servers *s)
{
    c->stop_all = 1;
    c->stop_phase = 1;
    if (s->have_echo)
        pthread_join(s->echo, NULL);
    if (s->have_tcp)
        pthread_join(s->tcp, NULL);
    if (s->have_udp)
        pthread_join(s->udp, NULL);
    if (c->tcp_listen >= 0)
        close(c->tcp_listen);
    if (c->udp_sink >= 0)
        close(c->udp_sink);
}

/* An ideal a -> b bottleneck replayed beside the real one: when a packet
 * arriving at a time leaves, given the configured rate or the trace (read
 * exactly as the emulator reads it, from the same epoch). */
typedef struct replay {
    mb_trace *tr;
    mb_trace_cursor cur;
    double rate_bps, epoch;
    int64_t last_ns;
} replay;

static void replay_init(replay *rp, ctx *c, const mb_link_dir *up)
{
    char e[256];
    memset(rp, 0, sizeof *rp);
    rp->tr = up->trace[0] ? mb_trace_read_dir(up, e, sizeof e) : NULL;
    if (rp->tr)
        mb_trace_cursor_init(&rp->cur, rp->tr, up->trace_loop);
    rp->rate_bps = up->rate_bps;
    rp->epoch = mb_net_epoch(c->net);
    rp->last_ns = INT64_MIN;
}

/* Departure (monotonic seconds) of `bytes` arriving at `arr`; INFINITY when
 * the trace never carries them. */
static double replay_dep(replay *rp, double arr, double bytes)
{
    int64_t a = mb_trace_ns(arr - rp->epoch), start = a > rp->last_ns ? a : rp->last_ns, dep = start;
    if (rp->tr) {
        dep = mb_trace_serve_ns(&rp->cur, start, bytes);
        if (dep == INT64_MAX)
            return INFINITY;
    } else if (rp->rate_bps > 0) {
        dep = start + llround(bytes * 8e9 / rp->rate_bps);
    }
    rp->last_ns = dep;
    return rp->epoch + (double)dep / 1e9;
}

/* Each idle probe's one-way delay against the ideal link's: its wait for
 * capacity (or serialisation) plus the delay. */
static void owd_against_ideal(ctx *c, const mb_link_dir *up, mb_linktest_result *r, int n)
{
    replay rp;
    replay_init(&rp, c, up);
    double ideal[MAX_RTT_SAMPLES], wait[MAX_RTT_SAMPLES], errs[MAX_RTT_SAMPLES];
    /* probes in the order they were sent (the echo thread records them as they arrive) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && c->owd_sent[j] < c->owd_sent[j - 1]; j--) {
            double ts = c->owd_sent[j], to = c->owd_up[j];
            c->owd_sent[j] = c->owd_sent[j - 1], c->owd_up[j] = c->owd_up[j - 1];
            c->owd_sent[j - 1] = ts, c->owd_up[j - 1] = to;
        }
    int m = 0;
    for (int i = 0; i < n; i++) {
        double dep = replay_dep(&rp, c->owd_sent[i], sizeof(rtt_msg) + 28);
        if (!isfinite(dep))
            continue;
        wait[m] = (dep - c->owd_sent[i]) * 1e3;
        ideal[m] = wait[m] + up->delay_s * 1e3;
        errs[m] = c->owd_up[i] - ideal[m];
        m++;
    }
    r->owd_ideal_ms = pct(ideal, m, 50);
    r->owd_capacity_wait_ms = pct(wait, m, 50);
    r->owd_error_ms = pct(errs, m, 50);
    mb_trace_free(rp.tr);
}

/* Idle RTT: 20 small probes, with their one-way delays. */
static int phase_idle_rtt(ctx *c, const mb_link_dir *up, mb_linktest_result *r, char *err, size_t errlen)
{
    struct sched_param old_sp;
    int old_pol;
    pthread_getschedparam(pthread_self(), &old_pol, &old_sp);
    realtime();
    double idle[64];
    double timeout = 1.0 + 3 * r->cfg_rtt_ms / 1e3;
    c->record_owd = 1;
    int n = rtt_probes(c, 20, 0.025 + r->cfg_rtt_ms / 1e3 / 4, timeout, idle, 64, NULL);
    c->record_owd = 0;
    int n_up = __atomic_exchange_n(&c->n_owd_up, 0, __ATOMIC_RELAXED);
    if (n_up > MAX_RTT_SAMPLES)
        n_up = MAX_RTT_SAMPLES;
    owd_against_ideal(c, up, r, n_up); /* before pct() sorts owd_up */
    r->owd_up_ms = pct(c->owd_up, n_up, 50);
    r->owd_down_ms = pct(c->owd_down, c->n_owd_down, 50);
    /* what an ideal link gives the probe: delay plus its serialisation */
    r->probe_serialization_ms = up->rate_bps > 0 ? (sizeof(rtt_msg) + 28) * 8.0 / up->rate_bps * 1e3 : 0;
    if (n < 0)
        return fail(err, errlen, "link test: RTT probe socket: %s", strerror(errno));
    pthread_setschedparam(pthread_self(), old_pol, &old_sp);
    r->rtt_probes = 20;
    r->rtt_lost = 20 - n;
    r->rtt_ms = pct(idle, n, 50);
    r->rtt_min_ms = n ? idle[0] : NAN;
    r->rtt_p95_ms = pct(idle, n, 95);
    return 0;
}

/* Sleep until t_end, sampling b's received IP bytes every interval (when
 * asked) into r's interval arrays, times from t_start (the phase's start;
 * the first call of a phase finds r->n_intervals at 0). */
static void sample_until(ctx *c, mb_linktest_result *r, double interval, double t_start, double t_end)
{
    if (!(interval > 0)) {
        sleep_until(t_end);
        return;
    }
    if (!r->n_intervals) {
        c->iv_bytes = ip_rx_bytes(c);
        c->iv_t = now_s();
    }
    for (;;) {
        double next = t_start + (r->n_intervals + 1) * interval;
        if (next > t_end + 1e-9 || r->n_intervals >= MB_LINKTEST_MAX_INTERVALS)
            break;
        sleep_until(next);
        double now = now_s(), b = ip_rx_bytes(c);
        r->interval_end_s[r->n_intervals] = now - t_start;
        r->interval_mbps[r->n_intervals] = (b - c->iv_bytes) * 8 / (now - c->iv_t) / 1e6;
        r->n_intervals++;
        c->iv_bytes = b, c->iv_t = now;
    }
    sleep_until(t_end);
}

/* TCP bulk a -> b for dur seconds after warm, with RTT probes alongside. */
static int phase_tcp(ctx *c, mb_linktest_result *r, double warm, double dur, double interval, char *err,
                     size_t errlen)
{
    c->stop_phase = 0;
    pthread_t th_client, th_rtt;
    double t0 = now_s();
    if (pthread_create(&th_client, NULL, tcp_client, c))
        return fail(err, errlen, "link test: cannot start the TCP client");
    pthread_create(&th_rtt, NULL, load_rtt_thread, c);
    r->n_intervals = 0;
    sample_until(c, r, interval, t0, t0 + warm);
    double cpu0[4], cpu1[4];
    int have_cpu = link_cpu(c, cpu0) == 0;
    double s0 = now_s(), b0 = ip_rx_bytes(c);
    uint64_t g0 = __atomic_load_n(&c->tcp_rx, __ATOMIC_RELAXED);
    sample_until(c, r, interval, t0, t0 + warm + dur);
    double s1 = now_s(), b1 = ip_rx_bytes(c);
    have_cpu = have_cpu && link_cpu(c, cpu1) == 0;
    uint64_t g1 = __atomic_load_n(&c->tcp_rx, __ATOMIC_RELAXED);
    c->stop_phase = 1;
    pthread_join(th_client, NULL);
    pthread_join(th_rtt, NULL);
    if (c->cc_err)
        return fail(err, errlen, "link test: TCP congestion control '%s': %s (this kernel offers: see "
                    "/proc/sys/net/ipv4/tcp_available_congestion_control)", c->cc, strerror(c->cc_err));
    snprintf(r->tcp_congestion, sizeof r->tcp_congestion, "%s", c->cc_used);
    r->tcp_mbps = (b1 - b0) * 8 / (s1 - s0) / 1e6;
    r->goodput_mbps = (double)(g1 - g0) * 8 / (s1 - s0) / 1e6;
    if (have_cpu) {
        double *pc[4] = {&r->emu_cpu_fwd_percent, &r->emu_cpu_rev_percent, &r->emu_cpu_fwd_write_percent,
                         &r->emu_cpu_rev_write_percent};
        for (int i = 0; i < 4; i++)
            *pc[i] = (cpu1[i] - cpu0[i]) / (s1 - s0) * 100;
        r->emu_cpu_percent = r->emu_cpu_fwd_percent + r->emu_cpu_rev_percent;
    }
    /* the load probes include the first (warm-up) second: take the rest */
    int skip = c->n_load_rtt > 12 ? 10 : 0;
    r->rtt_load_ms = pct(c->load_rtt + skip, c->n_load_rtt - skip, 50);
    drain(c, isnan(r->rtt_ms) ? r->cfg_rtt_ms : r->rtt_ms, 30);
    return 0;
}

/* A trace link: the bytes delivered in [s0, s1] against what the trace let
 * through; what left the bottleneck then arrives one delay later. */
static void trace_delivery(ctx *c, const mb_link_dir *up, mb_linktest_result *r, double s0, double s1,
                           uint64_t bytes)
{
    char e2[256];
    mb_trace *tr = mb_trace_read_dir(up, e2, sizeof e2);
    if (!tr)
        return;
    double ep = mb_net_epoch(c->net);
    r->trace_capacity_bytes = mb_trace_capacity(tr, s0 - ep - up->delay_s, s1 - ep - up->delay_s, up->trace_loop);
    r->trace_delivered_bytes = (double)bytes;
    r->trace_ratio = r->trace_capacity_bytes > 0 ? r->trace_delivered_bytes / r->trace_capacity_bytes : NAN;
    mb_trace_free(tr);
}

/* UDP a -> b paced at 1.25 x the peak capacity. */
static int phase_udp(ctx *c, const mb_link_dir *up, mb_linktest_result *r, double peak, double warm, double dur,
                     char *err, size_t errlen)
{
    udp_send_arg ua = {.c = c, .rate_bps = 1.25 * peak, .phase = 1};
    __atomic_store_n(&c->udp_phase, 1, __ATOMIC_RELAXED);
    c->stop_phase = 0;
    pthread_t th_client;
    double t0 = now_s();
    if (pthread_create(&th_client, NULL, udp_client, &ua))
        return fail(err, errlen, "link test: cannot start the UDP client");
    /* bytes delivered in [s0, s1] left the bottleneck one delay earlier:
     * its idle capacity is read over that window */
    double lead = up->delay_s < warm ? up->delay_s : warm;
    sleep_until(t0 + warm - lead);
    double i0 = link_idle_capacity(c);
    sleep_until(t0 + warm);
    double s0 = now_s();
    uint64_t b0 = __atomic_load_n(&c->udp_rx_ip_bytes, __ATOMIC_RELAXED);
    uint64_t o0 = __atomic_load_n(&ua.ok, __ATOMIC_RELAXED);
    sleep_until(t0 + warm + dur - lead);
    double i1 = link_idle_capacity(c);
    sleep_until(t0 + warm + dur);
    double s1 = now_s();
    uint64_t b1 = __atomic_load_n(&c->udp_rx_ip_bytes, __ATOMIC_RELAXED);
    uint64_t o1 = __atomic_load_n(&ua.ok, __ATOMIC_RELAXED);
    c->stop_phase = 1;
    pthread_join(th_client, NULL);
    r->udp_mbps = (double)(b1 - b0) * 8 / (s1 - s0) / 1e6;
    /* what the sender managed to offer: below the rate, the figure above
     * measures the sender (a busy machine), not the link */
    r->udp_offered_mbps = (double)(o1 - o0) * (double)c->mtu * 8 / (s1 - s0) / 1e6;
    r->udp_sender_lag_ms = ua.max_lag_s * 1e3;
    r->udp_sender_gso = ua.gso;
    if (r->has_trace) {
        trace_delivery(c, up, r, s0, s1, b1 - b0);
        r->trace_idle_capacity_bytes = i1 - i0;
        double busy = r->trace_capacity_bytes - r->trace_idle_capacity_bytes;
        r->trace_ratio_busy = busy > 0 ? r->trace_delivered_bytes / busy : NAN;
    }
    drain(c, isnan(r->rtt_ms) ? r->cfg_rtt_ms : r->rtt_ms, 30);
    return 0;
}

#define LOSS_DGRAM_BYTES 200 /* IP bytes: small, so hundreds fit even a slow link */
#define LOSS_MIN_DGRAMS 500
#define LOSS_MAX_PPS 5000.0
#define LOSS_MAX_WAIT_S 60.0

/* The longest stretch without capacity of a trace (10 ms resolution). */
static double longest_outage_s(const mb_trace *tr)
{
    mb_trace *b = mb_trace_binned(tr, 0.01);
    double best = 0, run = 0;
    for (size_t i = 0; b && i < b->n; i++) {
        run = b->rate_bps[i] > 0 ? 0 : run + 0.01;
        if (run > best)
            best = run;
    }
    mb_trace_free(b);
    return best;
}

/* The loss phase's datagram rate: half the link's rate (for a trace half its
 * mean) in 200-byte datagrams, 100..5000 a second, and no more than half
 * the queue can hold through the trace's longest outage, so that the queue
 * does not drop what an outage holds. */
static double loss_pps(const mb_link_dir *up)
{
    double rate = up->rate_bps > 0 ? up->rate_bps : 20e6, outage = 0;
    if (up->trace[0]) {
        char e[256];
        mb_trace *tr = mb_trace_read_dir(up, e, sizeof e);
        mb_trace_stats st;
        if (tr && mb_trace_stats_compute(tr, 1, &st) == 0 && st.mean_bps > 0)
            rate = st.mean_bps;
        if (tr)
            outage = longest_outage_s(tr);
        mb_trace_free(tr);
    }
    double pps = rate / 2 / (LOSS_DGRAM_BYTES * 8);
    long qlimit = up->queue_packets > 0 ? up->queue_packets : up->queue_bytes > 0 ? up->queue_bytes / LOSS_DGRAM_BYTES
                                                                                   : 1000;
    if (outage > 0 && pps > qlimit / 2.0 / outage)
        pps = qlimit / 2.0 / outage;
    return pps < 100 ? 100 : pps > LOSS_MAX_PPS ? LOSS_MAX_PPS : pps;
}

static void emu_drops(ctx *c, long out[3])
{
    mb_link_counters lc;
    const mb_topology *t = mb_net_topology(c->net);
    int dir = t->links[c->link].a == c->a ? 0 : 1;
    if (mb_net_link_counters(c->net, c->link, dir, &lc)) {
        out[0] = out[1] = out[2] = -1;
        return;
    }
    out[0] = (long)lc.drop_loss, out[1] = (long)(lc.drop_queue + lc.drop_aqm), out[2] = (long)lc.drop_outage;
}

/* When every datagram of the phase is due at b on an ideal link: replayed
 * from their paced send times; due[k] for datagram k. */
static double loss_deadline(ctx *c, const mb_link_dir *up, const udp_send_arg *ua, long sent, double *due)
{
    replay rp;
    replay_init(&rp, c, up);
    double per = (double)ua->ip_bytes * 8 / ua->rate_bps, last = 0;
    double extra = up->delay_s + 4 * up->jitter_s;
    for (long k = 0; k < sent; k++) {
        double dep = replay_dep(&rp, ua->t0 + (double)k * per, (double)ua->ip_bytes);
        due[k] = dep + extra;
        if (isfinite(due[k]) && due[k] > last)
            last = due[k];
    }
    mb_trace_free(rp.tr);
    return last;
}

/* Loss: numbered datagrams, counted at b once the link could have delivered
 * them all. */
static int phase_loss(ctx *c, const mb_link_dir *up, mb_linktest_result *r, double dur, char *err, size_t errlen)
{
    double pps = loss_pps(up);
    double ldur = dur > LOSS_MIN_DGRAMS / pps ? dur : LOSS_MIN_DGRAMS / pps;
    c->seen = calloc(MAX_LOSS_SEQ, 1);
    if (!c->seen)
        return fail(err, errlen, "out of memory");
    udp_send_arg ua = {.c = c, .rate_bps = pps * LOSS_DGRAM_BYTES * 8, .ip_bytes = LOSS_DGRAM_BYTES, .phase = 2};
    long d0[3], d1[3];
    emu_drops(c, d0);
    __atomic_store_n(&c->udp_phase, 2, __ATOMIC_RELAXED);
    c->stop_phase = 0;
    pthread_t th_client;
    double t0 = now_s();
    if (pthread_create(&th_client, NULL, udp_client, &ua))
        return fail(err, errlen, "link test: cannot start the UDP client");
    sleep_until(t0 + ldur);
    c->stop_phase = 1;
    pthread_join(th_client, NULL);
    long sent = ua.sent < MAX_LOSS_SEQ ? ua.sent : MAX_LOSS_SEQ;
    double *due = malloc((size_t)(sent ? sent : 1) * sizeof *due);
    if (!due)
        return fail(err, errlen, "out of memory");
    /* wait until the last datagram is due (an outage holds them), 60 s at most */
    double end = loss_deadline(c, up, &ua, sent, due) + 0.3 + 2 * r->cfg_rtt_ms / 1e3;
    double cap = now_s() + LOSS_MAX_WAIT_S, w0 = now_s();
    sleep_until(end < cap ? end : cap);
    r->loss_wait_s = now_s() - w0;
    double t_end = now_s();
    long got = 0, held = 0;
    for (long i = 0; i < sent; i++) {
        got += c->seen[i];
        held += !c->seen[i] && !(due[i] <= t_end) && isfinite(due[i]); /* still due: not lost */
    }
    free(due);
    emu_drops(c, d1);
    r->loss_sent = sent;
    r->loss_received = got;
    r->loss_out_of_order = (long)__atomic_load_n(&c->out_of_order, __ATOMIC_RELAXED);
    r->loss_held = held;
    r->loss_rate = sent - held > 0 ? (double)(sent - held - got) / (double)(sent - held) : NAN;
    r->loss_drop_random = d0[0] >= 0 ? d1[0] - d0[0] : -1;
    r->loss_drop_queue = d0[1] >= 0 ? d1[1] - d0[1] : -1;
    r->loss_drop_outage = d0[2] >= 0 ? d1[2] - d0[2] : -1;
    return 0;
}

/* How late the emulator released packets (a -> b), when it counts that. */
static void read_lateness(ctx *c, const mb_topology *t, mb_linktest_result *r)
{
    mb_link_counters lc;
    r->emu_late_p50_us = r->emu_late_p99_us = r->emu_late_max_us = -1;
    int dir = t->links[c->link].a == c->a ? 0 : 1;
    if (mb_net_link_counters(c->net, c->link, dir, &lc) == 0) {
        r->emu_late_p50_us = lc.late_p50_us;
        r->emu_late_p99_us = lc.late_p99_us;
        r->emu_late_max_us = lc.late_max_us;
    }
}

/* The phases in order: idle RTT, TCP, UDP, loss (each but the first may be
 * skipped by the options). */
static int run_phases(ctx *c, const mb_linktest_opts *o, const mb_link_dir *up, mb_linktest_result *r,
                      char *err, size_t errlen)
{
    double dur = o && o->duration_s > 0 ? o->duration_s : 5;
    double warm = dur > 2 ? 1.0 : dur / 2;
#define PHASE(name, secs) \
    do { if (o && o->progress) o->progress(o->progress_arg, name, secs); } while (0)
    PHASE("idle RTT", 1);
    if (phase_idle_rtt(c, up, r, err, errlen))
        return -1;
    if (!(o && o->no_tcp)) {
        PHASE("TCP throughput", warm + dur);
        if (phase_tcp(c, r, warm, dur, o ? o->interval_s : 0, err, errlen))
            return -1;
    }
    double peak = up->rate_bps;
    if (r->has_trace)
        peak = trace_peak_bps(up);
    if (!(o && o->no_udp) && peak > 0) {
        PHASE("UDP throughput", warm + dur);
        if (phase_udp(c, up, r, peak, warm, dur, err, errlen))
            return -1;
    }
    if (!(o && o->no_loss)) {
        PHASE("loss", dur);
        if (phase_loss(c, up, r, dur, err, errlen))
            return -1;
    }
#undef PHASE
    return 0;
}

int mb_link_test(mb_net *net, int link, const mb_linktest_opts *o, mb_linktest_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const mb_topology *t = mb_net_topology(net);
    if (link < 0 || link >= t->n_links)
        return fail(err, errlen, "link test: no link %d", link);
    const mb_link_spec *spec = &t->links[link].spec;

    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, errlen, "out of memory");
    c->net = net;
    c->link = link;
    /* reverse: the same probes from b to a, against the down direction */
    int rev = o && o->reverse;
    c->a = rev ? t->links[link].b : t->links[link].a;
    c->b = rev ? t->links[link].a : t->links[link].b;
    const mb_link_dir *dir = rev ? &spec->down : &spec->up;
    c->mtu = spec->mtu > 0 ? spec->mtu : 1500;
    c->cc = o && o->congestion && o->congestion[0] ? o->congestion : NULL;
    c->tcp_listen = c->udp_sink = -1;
    c->addr_b.sin_family = AF_INET;
    inet_pton(AF_INET, mb_net_addr(net, c->b), &c->addr_b.sin_addr);
    init_result(r, spec, dir);
    r->reverse = rev;

    servers s = {0};
    int rc = -1;
    if (!start_servers(c, &s, err, errlen) && !run_phases(c, o, dir, r, err, errlen)) {
        read_lateness(c, t, r);
        rc = 0;
    }
    stop_servers(c, &s);
    free(c->seen);
    free(c);
    return rc;
}
