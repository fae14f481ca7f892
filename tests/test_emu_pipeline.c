/* The emulator's pipeline without namespaces (no root needed): one direction
 * (netem/emu_link.c) fed through a datagram socketpair instead of TUN fds,
 * checked through its own per-packet CSV log: exact serialisation at a
 * constant rate, exact propagation delay, trace opportunities, Bernoulli and
 * Gilbert-Elliott loss, the drop-tail limit, CoDel, no reordering under
 * jitter, reordering with reorder= (netem's, gap included), and an ended trace; and, independently of that log, against the
 * test's own clock at the sending and the receiving end (rate and delay as
 * the receiver sees them, and the log's delivery times). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../netem/emu_link.h"

typedef struct row {
    unsigned long long seq;
    double arr, dep, dlv, qd;
    unsigned bytes;
    char event[24];
} row;

typedef struct run {
    row *rows;
    /* by packet number (its first 4 bytes): when the test wrote it and when
     * the receiving end read it, in us since the emulator's start on the
     * test's own CLOCK_MONOTONIC; got_us is -1 for a packet never read */
    double *sent_us, *got_us;
    int n, delivered, received;
    int drop_loss, drop_queue, drop_aqm, drop_outage;
} run;

static int by_seq(const void *a, const void *b)
{
    unsigned long long x = ((const row *)a)->seq, y = ((const row *)b)->seq;
    return x < y ? -1 : x > y;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void run_free(run *r)
{
    free(r->rows);
    free(r->sent_us);
    free(r->got_us);
}

/* Read every datagram waiting at the receiving end, stamping each. */
static void drain(int fd, run *r, int n, double t0)
{
    char rx[2048];
    ssize_t k;
    while ((k = read(fd, rx, sizeof rx)) > 0) {
        double now = (mono() - t0) * 1e6;
        int id;
        r->received++;
        if (k < (ssize_t)sizeof id)
            continue;
        memcpy(&id, rx, sizeof id);
        if (id >= 0 && id < n && r->got_us[id] < 0)
            r->got_us[id] = now;
    }
}

/* Push n packets of `bytes` through a direction with spec text, `gap_s`
 * apart (0: as fast as possible), wait `settle_s`, and read the log; the
 * direction's counters into *ctr when given. */
static run push_c(const char *spec_text, int n, unsigned bytes, double gap_s, double settle_s, mb_link_counters *ctr)
{
    mb_link_spec spec;
    char err[512];
    if (mb_linkspec_parse(spec_text, &spec, err, sizeof err))
        fail_msg("%s", err);
    int in[2], out[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, in), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, out), 0);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    int big = 4 << 20;
    setsockopt(out[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    char csv[64];
    snprintf(csv, sizeof csv, "/tmp/mb-pipe-%d.csv", (int)getpid());
    emu_dir_cfg cfg = {.dir = spec.up, .mtu = 1500, .seed = 11, .csv_path = csv, .name = "test"};
    emu_dir *d = emu_dir_new(in[1], out[1], &cfg, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    double t0 = mono();
    assert_int_equal(emu_dir_start(d, t0, err, sizeof err), 0);
    char *buf = calloc(1, bytes);
    run r = {0};
    r.sent_us = calloc((size_t)n, sizeof *r.sent_us);
    r.got_us = malloc((size_t)n * sizeof *r.got_us);
    assert_true(r.sent_us && r.got_us);
    for (int i = 0; i < n; i++)
        r.got_us[i] = -1;
    for (int i = 0; i < n; i++) {
        memcpy(buf, &i, sizeof i);
        r.sent_us[i] = (mono() - t0) * 1e6;
        assert_int_equal(write(in[0], buf, bytes), (ssize_t)bytes);
        if (gap_s > 0)
            usleep((useconds_t)(gap_s * 1e6));
        drain(out[0], &r, n, t0); /* keep the output drained */
    }
    double end = mono() + settle_s;
    while (mono() < end) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 20) == 1)
            drain(out[0], &r, n, t0);
    }
    emu_dir_stop(d);
    if (ctr)
        emu_dir_counters(d, ctr);
    emu_dir_free(d);
    free(buf);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    r.rows = calloc((size_t)n + 1, sizeof *r.rows);
    while (fgets(line, sizeof line, f) && r.n < n) {
        row *w = &r.rows[r.n];
        if (sscanf(line, "%llu,%lf,%lf,%lf,%u,%lf,%23s", &w->seq, &w->arr, &w->dep, &w->dlv, &w->bytes, &w->qd,
                   w->event) == 7) {
            r.delivered += !strcmp(w->event, "delivered"); /* else still in flight when the link stopped */
        } else if (sscanf(line, "%llu,%lf,,,%u,%lf,%23s", &w->seq, &w->arr, &w->bytes, &w->qd, w->event) == 5 ||
                   sscanf(line, "%llu,%lf,,,%u,,%23s", &w->seq, &w->arr, &w->bytes, w->event) == 4) {
            r.drop_loss += !strcmp(w->event, "drop-loss");
            r.drop_queue += !strcmp(w->event, "drop-queue");
            r.drop_aqm += !strcmp(w->event, "drop-aqm");
            r.drop_outage += !strcmp(w->event, "drop-outage");
        } else {
            fail_msg("bad log line: %s", line);
        }
        r.n++;
    }
    fclose(f);
    unlink(csv);
    /* the log is written as packets leave (drops as they arrive): put it back in arrival order */
    qsort(r.rows, (size_t)r.n, sizeof *r.rows, by_seq);
    return r;
}

static run push(const char *spec_text, int n, unsigned bytes, double gap_s, double settle_s)
{
    return push_c(spec_text, n, bytes, gap_s, settle_s, NULL);
}

/* The capacity that passed while the bottleneck had nothing to send
 * (idle_capacity_bytes: what link test sets delivery against) equals the
 * sum of the idle gaps in the emulator's own log times the rate: packets of
 * 1000 bytes at 8 Mbit/s (1 ms each) sent 3 ms apart leave the link idle
 * about 2 ms in 3. The thread's CPU inside its writes is part of its CPU. */
static void test_idle_capacity(void **state)
{
    (void)state;
    mb_link_counters c;
    run r = push_c("rate=8mbit", 40, 1000, 0.003, 0.1, &c);
    assert_int_equal(r.delivered, 40);
    double idle_us = 0, last_dep = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.rows[i].arr > last_dep)
            idle_us += r.rows[i].arr - last_dep;
        last_dep = r.rows[i].dep;
    }
    double expect = idle_us * 1e-6 * 8e6 / 8;
    print_message("idle capacity %.1f bytes, from the log %.1f; CPU %.4f s, %.4f s in writes\n",
                  c.idle_capacity_bytes, expect, c.cpu_s, c.cpu_write_s);
    assert_true(fabs(c.idle_capacity_bytes - expect) < 0.01 * r.n + 1); /* the log rounds to 0.1 us */
    assert_true(c.idle_capacity_bytes > 39 * 1000 * 1.5); /* at least 1.5 ms idle between packets */
    assert_true(c.cpu_write_s > 0 && c.cpu_write_s <= c.cpu_s);
    run_free(&r);
    /* back to back: only the wait before the first packet */
    r = push_c("rate=8mbit", 40, 1000, 0, 0.1, &c);
    assert_true(c.idle_capacity_bytes <= r.rows[0].arr * 1e-6 * 1e6 + 2000);
    run_free(&r);
}

static void test_rate_and_delay_exact(void **state)
{
    (void)state;
    /* 1000-byte packets at 80 Mbit/s: one every 100 us, on the virtual clock */
    run r = push("rate=80mbit,delay=3ms", 400, 1000, 0, 0.3);
    assert_int_equal(r.delivered, 400);
    assert_int_equal(r.received, 400);
    row *prev = NULL;
    for (int i = 0; i < r.n; i++) {
        row *w = &r.rows[i];
        assert_true(fabs(w->dlv - w->dep - 3000) < 0.2); /* exact propagation delay */
        assert_true(w->dep >= w->arr + 100 - 0.2);       /* at least one transmission time */
        if (prev && w->arr < prev->dep) /* it queued: it leaves exactly one transmission after */
            assert_true(fabs(w->dep - prev->dep - 100) < 0.2);
        prev = w;
    }
    run_free(&r);
}

/* The same link seen from outside the emulator: the test's own clock at the
 * sending and at the receiving end, not the emulator's log. 100 packets of
 * 1000 bytes written at once into 8 Mbit/s (1 ms each) and 20 ms: none
 * reaches the receiver before 20 ms + its transmission after it was sent,
 * the receiver sees them 1 ms apart (the rate), and each is read no earlier
 * than the log says it was delivered (and not much later). A busy machine
 * can only make packets late, so the lower bounds are tight and the upper
 * ones loose. */
static void test_receiver_clock(void **state)
{
    (void)state;
    const int n = 100;
    run r = push("rate=8mbit,delay=20ms", n, 1000, 0, 0.35);
    assert_int_equal(r.delivered, n);
    assert_int_equal(r.received, n);
    double owd_min = 1e30, owd_max = 0, lag_max = 0;
    for (int i = 0; i < n; i++) {
        assert_true(r.got_us[i] >= 0);
        double owd = r.got_us[i] - r.sent_us[i];
        if (owd < 20000 + 1000 - 50)
            fail_msg("packet %d reached the receiver %.0f us after it was sent: less than 20 ms + 1 ms", i, owd);
        owd_min = fmin(owd_min, owd);
        owd_max = fmax(owd_max, owd);
        /* the n-th packet cannot arrive before n transmissions */
        if (r.got_us[i] - r.sent_us[0] < 20000 + 1000.0 * (i + 1) - 50)
            fail_msg("packet %d arrived %.0f us after the first was sent: faster than 8 Mbit/s", i,
                     r.got_us[i] - r.sent_us[0]);
        /* log and receiver agree: the log's seq is the packet's number here */
        assert_int_equal(r.rows[i].seq, i);
        double lag = r.got_us[i] - r.rows[i].dlv;
        if (lag < -50)
            fail_msg("packet %d read %.0f us before the log's delivery time", i, -lag);
        lag_max = fmax(lag_max, lag);
    }
    double span = r.got_us[n - 1] - r.got_us[0];
    double mbps = (n - 1) * 1000 * 8 / span;
    print_message("receiver: one-way %.2f..%.2f ms, %.3f Mbit/s between first and last, read up to %.2f ms after "
                  "the log's delivery\n",
                  owd_min / 1e3, owd_max / 1e3, mbps, lag_max / 1e3);
    /* (faster than the rate is caught per packet above; a late first read
     * could shorten the span a little) */
    assert_true(mbps <= 8.0 * 1.1);
    assert_true(mbps >= 8.0 * 0.7);
    assert_true(owd_min <= 21000 + 30000); /* the first packet is not held back */
    assert_true(lag_max < 50000);
    run_free(&r);
}

static void test_trace_opportunities(void **state)
{
    (void)state;
    /* Mahimahi: one opportunity a millisecond (12 Mbit/s) */
    char path[64];
    snprintf(path, sizeof path, "/tmp/mb-pipe-%d.trace", (int)getpid());
    FILE *f = fopen(path, "w");
    for (int ms = 1; ms <= 1000; ms++)
        fprintf(f, "%d\n", ms);
    fclose(f);
    char spec[128];
    snprintf(spec, sizeof spec, "trace=%s", path);
    run r = push(spec, 150, 1500, 0, 0.3);
    unlink(path);
    assert_int_equal(r.delivered, 150);
    for (int i = 0; i < r.n; i++) {
        double dep_ms = r.rows[i].dep / 1000;
        assert_true(fabs(dep_ms - round(dep_ms)) < 1e-3); /* on an opportunity */
        if (i)
            assert_true(r.rows[i].dep > r.rows[i - 1].dep); /* one packet each */
    }
    run_free(&r);
}

static void test_bernoulli_loss(void **state)
{
    (void)state;
    run r = push("loss=20%", 4000, 100, 0, 0.1);
    double p = (double)r.drop_loss / 4000;
    printf("bernoulli 20%%: %.4f\n", p);
    assert_true(fabs(p - 0.2) < 4 * sqrt(0.2 * 0.8 / 4000));
    assert_int_equal(r.delivered + r.drop_loss, 4000);
    assert_int_equal(r.received, r.delivered);
    run_free(&r);
}

static void test_gilbert_elliott(void **state)
{
    (void)state;
    /* p = 5 %, r = 25 %, everything lost in the bad state: mean loss
     * p/(p+r) = 1/6, mean burst 1/r = 4 packets */
    run r = push("loss=ge:5%:25%", 20000, 100, 0, 0.1);
    int bursts = 0, in_burst = 0;
    for (int i = 0; i < r.n; i++) {
        int lost = !strcmp(r.rows[i].event, "drop-loss");
        if (lost && !in_burst)
            bursts++;
        in_burst = lost;
    }
    double mean = (double)r.drop_loss / 20000, burst = (double)r.drop_loss / bursts;
    printf("gilbert-elliott: loss %.4f (1/6 = 0.1667), mean burst %.2f (4)\n", mean, burst);
    assert_true(fabs(mean - 1.0 / 6) < 0.02);
    assert_true(fabs(burst - 4) < 0.6);
    run_free(&r);
}

static void test_queue_limit(void **state)
{
    (void)state;
    /* 200 packets at once into a 50-packet queue at 8 Mbit/s (1 ms each) */
    run r = push("rate=8mbit,queue=50p", 200, 1000, 0, 0.4);
    printf("queue 50p: %d delivered, %d dropped\n", r.delivered, r.drop_queue);
    assert_int_equal(r.delivered + r.drop_queue, 200);
    assert_true(r.drop_queue >= 100 && r.delivered >= 50);
    /* never more than 50 waiting: queueing delay at most 50 transmissions */
    for (int i = 0; i < r.n; i++)
        if (!strcmp(r.rows[i].event, "delivered"))
            assert_true(r.rows[i].qd <= 50 * 1000 + 1);
    run_free(&r);
    /* a byte limit */
    r = push("rate=8mbit,queue=10kb", 100, 1000, 0, 0.1);
    assert_true(r.drop_queue >= 80);
    run_free(&r);
}

static void test_codel_bounds_delay(void **state)
{
    (void)state;
    /* twice the link's rate for 0.6 s: drop-tail lets the queue grow to
     * hundreds of ms. CoDel (5 ms target) starts dropping after one 100 ms
     * interval above target and drops ever faster (interval/sqrt(count));
     * against an unresponsive flow it only slows the growth (as in the RFC),
     * so we check that it acts, not that it wins */
    run a = push("rate=2mbit,queue=1000p", 500, 1000, 0.001, 0.05);
    run b = push("rate=2mbit,queue=1000p,aqm=5ms", 500, 1000, 0.001, 0.05);
    double qa = 0, qb = 0;
    int na = 0, nb = 0;
    for (int i = 0; i < a.n; i++)
        if (a.rows[i].dep > 0 && a.rows[i].arr > 300000) /* accepted (delivered or still in flight) */
            qa += a.rows[i].qd, na++;
    for (int i = 0; i < b.n; i++)
        if (b.rows[i].dep > 0 && b.rows[i].arr > 300000)
            qb += b.rows[i].qd, nb++;
    qa /= na > 0 ? na : 1;
    qb /= nb > 0 ? nb : 1;
    printf("late queueing delay: drop-tail %.1f ms, codel %.1f ms (%d aqm drops)\n", qa / 1000, qb / 1000, b.drop_aqm);
    assert_true(b.drop_aqm > 10);
    assert_int_equal(a.drop_aqm, 0);
    assert_true(qa > 100000);
    assert_true(qb < qa);
    /* CoDel drops only packets that waited above target, and only after the
     * queue has stayed above target for an interval */
    for (int i = 0; i < b.n; i++)
        if (!strcmp(b.rows[i].event, "drop-aqm")) {
            assert_true(b.rows[i].qd >= 5000);
            assert_true(b.rows[i].arr + b.rows[i].qd > 100000);
        }
    run_free(&a);
    run_free(&b);
}

static void test_jitter_never_reorders(void **state)
{
    (void)state;
    run r = push("delay=5ms,jitter=4ms:pareto", 300, 200, 0.0002, 0.2);
    assert_int_equal(r.delivered, 300);
    double spread = 0;
    for (int i = 1; i < r.n; i++) {
        assert_true(r.rows[i].dlv >= r.rows[i - 1].dlv);
        assert_true(r.rows[i].dlv >= r.rows[i].dep);
        spread += fabs(r.rows[i].dlv - r.rows[i].dep - 5000);
    }
    assert_true(spread / r.n > 100); /* the jitter is there */
    run_free(&r);
}

/* Packets that arrived at the receiving end after a higher-numbered one
 * (iperf3's out-of-order count), from the receiver's own clock. */
static int out_of_order(const run *r, int n)
{
    int *ids = malloc((size_t)n * sizeof *ids), m = 0, ooo = 0, hi = -1;
    assert_non_null(ids);
    for (int i = 0; i < n; i++)
        if (r->got_us[i] >= 0)
            ids[m++] = i;
    for (int a = 1; a < m; a++) /* insertion sort by arrival time (n is small) */
        for (int b = a; b > 0 && r->got_us[ids[b]] < r->got_us[ids[b - 1]]; b--) {
            int t = ids[b];
            ids[b] = ids[b - 1], ids[b - 1] = t;
        }
    for (int k = 0; k < m; k++) {
        if (ids[k] < hi)
            ooo++;
        else
            hi = ids[k];
    }
    free(ids);
    return ooo;
}

static void test_reorder(void **state)
{
    (void)state;
    /* 25 %: about a quarter skip the 5 ms delay (delivered as they leave the
     * bottleneck) and overtake the ~25 packets sent in the 5 ms before them;
     * the rest keep their order */
    run r = push("delay=5ms,reorder=25%", 400, 200, 0.0002, 0.2);
    assert_int_equal(r.delivered, 400);
    int skipped = 0;
    double last = -1;
    for (int i = 0; i < r.n; i++) {
        if (r.rows[i].dlv == r.rows[i].dep) {
            skipped++;
            continue;
        }
        assert_true(fabs(r.rows[i].dlv - r.rows[i].dep - 5000) < 1);
        assert_true(r.rows[i].dlv >= last); /* the delayed ones stay in order */
        last = r.rows[i].dlv;
    }
    assert_in_range(skipped, 60, 140);
    int ooo = out_of_order(&r, 400);
    assert_true(ooo > 100); /* each skip overtakes many: most delayed packets arrive after a later one */
    run_free(&r);
    /* netem's gap: with reorder 100% gap 5 exactly every fifth packet skips */
    r = push("delay 5ms reorder 100% gap 5", 100, 200, 0.0002, 0.2);
    assert_int_equal(r.delivered, 100);
    for (int i = 0; i < r.n; i++)
        assert_int_equal(r.rows[i].dlv == r.rows[i].dep, r.rows[i].seq % 5 == 4);
    assert_true(out_of_order(&r, 100) > 0);
    run_free(&r);
    /* no reorder=: nothing arrives out of order */
    r = push("delay=5ms", 200, 200, 0.0002, 0.2);
    assert_int_equal(out_of_order(&r, 200), 0);
    run_free(&r);
}

static void test_trace_once_ends(void **state)
{
    (void)state;
    char path[64], spec[128];
    snprintf(path, sizeof path, "/tmp/mb-pipe-once-%d.trace", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("# mecbed-trace 1\n0 8\nend 0.05\n", f); /* 50 ms at 8 Mbit/s: 50 kB, then nothing */
    fclose(f);
    snprintf(spec, sizeof spec, "trace=%s:once", path);
    /* all at once: the trace carries 50 of them (one a millisecond), the rest never */
    run r = push(spec, 100, 1000, 0, 0.1);
    unlink(path);
    printf("once: %d delivered, %d after the end\n", r.delivered, r.drop_outage);
    /* at most what the trace carries (if the sender is descheduled, the
     * queue runs dry and capacity is lost, as on a real link), nothing
     * leaves after the trace's end, and the rest is dropped as an outage */
    assert_true(r.delivered >= 20 && r.delivered <= 51);
    assert_int_equal(r.delivered + r.drop_outage, 100);
    for (int i = 0; i < r.n; i++)
        if (!strcmp(r.rows[i].event, "delivered"))
            assert_true(r.rows[i].dep <= 50000 + 0.2);
    run_free(&r);
}

/* A datagram socketpair standing for a TUN device: [0] the test's end,
 * [1] the emulator's (non-blocking). */
static void dgram_pair(int fd[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, fd), 0);
    int big = 4 << 20;
    setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    fcntl(fd[0], F_SETFL, O_NONBLOCK);
    fcntl(fd[1], F_SETFL, O_NONBLOCK);
}

/* Both directions of a link on one thread (emu_dirs_start), each with its
 * own rate and delay: 30 packets of 1000 bytes written at once into each,
 * a -> b at 8 Mbit/s and 20 ms (1 ms a packet), b -> a at 80 Mbit/s and
 * 5 ms (0.1 ms). Each direction's packets reach the receiver no earlier
 * than its own delay and rate allow, all of them, and each direction is
 * charged CPU of its own. */
static void test_two_directions_one_thread(void **state)
{
    (void)state;
    const char *specs[2] = {"rate=8mbit,delay=20ms", "rate=80mbit,delay=5ms"};
    const double delay_us[2] = {20000, 5000}, tx_us[2] = {1000, 100};
    enum { N = 30 };
    int in[2][2], out[2][2];
    emu_dir *d[2];
    char err[512];
    for (int k = 0; k < 2; k++) {
        mb_link_spec spec;
        if (mb_linkspec_parse(specs[k], &spec, err, sizeof err))
            fail_msg("%s", err);
        dgram_pair(in[k]);
        dgram_pair(out[k]);
        emu_dir_cfg cfg = {.dir = spec.up, .mtu = 1500, .seed = 3 + k, .name = k ? "b->a" : "a->b"};
        d[k] = emu_dir_new(in[k][1], out[k][1], &cfg, err, sizeof err);
        if (!d[k])
            fail_msg("%s", err);
    }
    double t0 = mono();
    assert_int_equal(emu_dirs_start(d, 2, t0, err, sizeof err), 0);
    char buf[1000] = {0};
    double sent[2][N], got[2][N];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) {
            memcpy(buf, &i, sizeof i);
            sent[k][i] = (mono() - t0) * 1e6;
            got[k][i] = -1;
            assert_int_equal(write(in[k][0], buf, sizeof buf), (ssize_t)sizeof buf);
        }
    int left = 2 * N;
    double end = mono() + 5;
    while (left > 0 && mono() < end) {
        struct pollfd p[2] = {{.fd = out[0][0], .events = POLLIN}, {.fd = out[1][0], .events = POLLIN}};
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            ssize_t r;
            while ((r = read(out[k][0], buf, sizeof buf)) > 0) {
                int id;
                memcpy(&id, buf, sizeof id);
                if (r == (ssize_t)sizeof buf && id >= 0 && id < N && got[k][id] < 0) {
                    got[k][id] = (mono() - t0) * 1e6;
                    left--;
                }
            }
        }
    }
    mb_link_counters c[2];
    for (int k = 0; k < 2; k++) {
        emu_dir_stop(d[k]);
        emu_dir_counters(d[k], &c[k]);
    }
    for (int k = 0; k < 2; k++)
        emu_dir_free(d[k]);
    for (int k = 0; k < 2; k++)
        close(in[k][0]), close(in[k][1]), close(out[k][0]), close(out[k][1]);
    for (int k = 0; k < 2; k++) {
        assert_int_equal((int)c[k].out_packets, N);
        assert_true(c[k].cpu_s > 0);
        for (int i = 0; i < N; i++) {
            if (got[k][i] < 0)
                fail_msg("direction %d: packet %d never arrived", k, i);
            /* queued behind i others from the first one's arrival: (i + 1) transmissions */
            if (got[k][i] < sent[k][0] + delay_us[k] + (i + 1) * tx_us[k] - 1)
                fail_msg("direction %d: packet %d after %.1f us, before its delay and rate allow (%.1f)", k, i,
                         got[k][i] - sent[k][0], delay_us[k] + (i + 1) * tx_us[k]);
        }
    }
    print_message("one thread: CPU a->b %.4f s, b->a %.4f s\n", c[0].cpu_s, c[1].cpu_s);
}

/* The write window (cfg.batch_s, the emu backend's coalesce=): packets due
 * within it of the first wait for the last and leave in one wake-up. Five
 * packets of 1000 bytes at 80 Mbit/s and 2 ms (due 0.1 ms apart) with a
 * 1 ms window: the first reaches the receiver no earlier than the fifth was
 * due, 2.5 ms after the first was sent. All arrive, in order. */
static void test_write_window(void **state)
{
    (void)state;
    mb_link_spec spec;
    char err[512];
    if (mb_linkspec_parse("rate=80mbit,delay=2ms", &spec, err, sizeof err))
        fail_msg("%s", err);
    int in[2], out[2];
    dgram_pair(in);
    dgram_pair(out);
    emu_dir_cfg cfg = {.dir = spec.up, .mtu = 1500, .seed = 9, .batch_s = 1e-3, .name = "window"};
    emu_dir *d = emu_dir_new(in[1], out[1], &cfg, err, sizeof err);
    if (!d)
        fail_msg("%s", err);
    double t0 = mono();
    assert_int_equal(emu_dir_start(d, t0, err, sizeof err), 0);
    char buf[1000] = {0};
    double sent0 = 0, got[5];
    for (int i = 0; i < 5; i++) {
        memcpy(buf, &i, sizeof i);
        if (i == 0)
            sent0 = (mono() - t0) * 1e6;
        got[i] = -1;
        assert_int_equal(write(in[0], buf, sizeof buf), (ssize_t)sizeof buf);
    }
    int n = 0, order_ok = 1;
    double end = mono() + 2;
    while (n < 5 && mono() < end) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        while (read(out[0], buf, sizeof buf) == (ssize_t)sizeof buf) {
            int id;
            memcpy(&id, buf, sizeof id);
            order_ok &= id == n;
            if (id >= 0 && id < 5)
                got[id] = (mono() - t0) * 1e6;
            n++;
        }
    }
    emu_dir_free(d);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    assert_int_equal(n, 5);
    assert_true(order_ok);
    print_message("window: first packet after %.1f us, last after %.1f us\n", got[0] - sent0, got[4] - sent0);
    assert_true(got[0] >= sent0 + 2500 - 1);
}

static void test_missing_trace(void **state)
{
    (void)state;
    mb_link_spec spec;
    char err[512];
    mb_linkspec_parse("trace=/nonexistent/x.trace", &spec, err, sizeof err);
    emu_dir_cfg cfg = {.dir = spec.up, .mtu = 1500, .name = "t"};
    assert_null(emu_dir_new(0, 1, &cfg, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.trace"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_and_delay_exact), cmocka_unit_test(test_receiver_clock),
        cmocka_unit_test(test_trace_opportunities),
        cmocka_unit_test(test_bernoulli_loss),       cmocka_unit_test(test_gilbert_elliott),
        cmocka_unit_test(test_queue_limit),          cmocka_unit_test(test_codel_bounds_delay),
        cmocka_unit_test(test_jitter_never_reorders), cmocka_unit_test(test_trace_once_ends),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_missing_trace),         cmocka_unit_test(test_two_directions_one_thread),
        cmocka_unit_test(test_write_window),         cmocka_unit_test(test_idle_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
