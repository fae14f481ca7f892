/* Traces: importers against SOURCES.md's reference means, native round trip,
 * generators, statistics, the emulator's capacity cursor, reader errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "mb_skip.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mecbed/linkspec.h"
#include "mecbed/trace.h"

static const char *shared_dir(void)
{
    const char *d = getenv("MECBED_SHARED_TRACES");
    return d ? d : "../shared/traces";
}

static char tmp[128];

static const char *tmp_file(const char *text)
{
    snprintf(tmp, sizeof tmp, "/tmp/mb-trace-test-%d.txt", (int)getpid());
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return tmp;
}

/* SOURCES.md's table: file, mean Mbit/s (3 decimals), span (s or samples). */
static const struct { const char *file; double mean, span; } refs[] = {
    {"mahimahi/TMobile-UMTS-driving.up", 0.943, 931.2},
    {"mahimahi/Verizon-LTE-short.down", 5.028, 140.0},
    {"mahimahi/Verizon-LTE-short.up", 5.946, 140.0},
    {"norway-3g/norway_bus_1", 3.337, 154.8},
    {"norway-3g/norway_bus_2", 2.126, 207.9},
    {"norway-3g/norway_car_2", 1.139, 313.1},
    {"norway-3g/norway_ferry_2", 1.548, 74.6},
    {"norway-3g/norway_metro_2", 1.442, 316.4},
    {"norway-3g/norway_train_1", 1.586, 298.8},
    {"norway-3g/norway_tram_10", 1.051, 315.5},
    {"nyu-mets/7Train1.csv", 6.810, 4910},
    {"nyu-mets/bus57.csv", 7.212, 2403},
};

static void test_shared_means(void **state)
{
    (void)state;
    struct stat st;
    if (stat(shared_dir(), &st)) {
        MB_SKIP("%s is absent (the public sample traces); importer means not checked", shared_dir());
    }
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        char path[512], err[512];
        snprintf(path, sizeof path, "%s/%s", shared_dir(), refs[i].file);
        mb_trace *tr = mb_trace_read(path, MB_TRACE_FMT_AUTO, err, sizeof err);
        if (!tr)
            fail_msg("%s", err);
        mb_trace_stats s;
        assert_int_equal(mb_trace_stats_compute(tr, 1, &s), 0);
        double mean = s.sample_mean_bps / 1e6;
        printf("%-36s %-8s mean %.4f (ref %.3f)  time-weighted %.4f  p50 %.3f  outage %.1f s\n", refs[i].file,
               mb_trace_format_name(tr->format), mean, refs[i].mean, s.mean_bps / 1e6, s.p50_bps / 1e6, s.outage_s);
        if (fabs(mean - refs[i].mean) > 0.0005 + 1e-9)
            fail_msg("%s: mean %.5f Mbit/s, SOURCES.md says %.3f", refs[i].file, mean, refs[i].mean);
        if (tr->format == MB_TRACE_FMT_METS) {
            assert_int_equal((int)tr->n, (int)refs[i].span);
        } else if (tr->format == MB_TRACE_FMT_MAHIMAHI) {
            assert_true(fabs(mb_trace_period_s(tr) - refs[i].span) < 0.05);
            /* Mahimahi: the time-weighted mean over a period is the same figure */
            assert_true(fabs(s.mean_bps / 1e6 - refs[i].mean) < 0.0006);
        } else {
            /* span: the last sample time, plus the first sample's interval
             * (as long as the second's: the first sample is not dropped) */
            FILE *f = fopen(path, "r");
            double t0 = 0, t1 = 0, r0, r1;
            assert_non_null(f);
            assert_int_equal(fscanf(f, "%lf %lf %lf %lf", &t0, &r0, &t1, &r1), 4);
            fclose(f);
            assert_true(fabs(mb_trace_period_s(tr) - (refs[i].span + t1 - t0)) < 0.05);
        }
        mb_trace_free(tr);
    }
}

static void test_native_round_trip(void **state)
{
    (void)state;
    char err[256];
    mb_trace_gen g = {.kind = MB_TRACE_GEN_WALK, .duration_s = 30, .dt_s = 0.25, .seed = 7,
                      .min_bps = 1e6, .max_bps = 20e6, .sigma_bps = 2e6};
    mb_trace *a = mb_trace_generate(&g, err, sizeof err);
    assert_non_null(a);
    const char *path = tmp_file("");
    assert_int_equal(mb_trace_write(a, path, MB_TRACE_FMT_NATIVE, 0, err, sizeof err), 0);
    mb_trace *b = mb_trace_read(path, MB_TRACE_FMT_AUTO, err, sizeof err);
    if (!b)
        fail_msg("%s", err);
    assert_int_equal(b->format, MB_TRACE_FMT_NATIVE);
    assert_int_equal(a->n, b->n);
    assert_true(a->period_ns == b->period_ns);
    for (size_t i = 0; i < a->n; i++) {
        assert_true(a->t_ns[i] == b->t_ns[i]);
        assert_true(fabs(a->rate_bps[i] - b->rate_bps[i]) < 1e-2);
    }
    mb_trace_free(b);

    /* to Mahimahi and back: the same capacity to within a packet per period */
    assert_int_equal(mb_trace_write(a, path, MB_TRACE_FMT_MAHIMAHI, 0, err, sizeof err), 0);
    b = mb_trace_read(path, MB_TRACE_FMT_AUTO, err, sizeof err);
    assert_non_null(b);
    assert_int_equal(b->format, MB_TRACE_FMT_MAHIMAHI);
    assert_true(b->period_ns == 30000000000LL);
    double ca = mb_trace_capacity(a, 0, 30, 1), cb = mb_trace_capacity(b, 0, 30, 1);
    assert_true(fabs(ca - cb) <= 1500);
    /* and per second, within two packets */
    for (int s = 0; s < 30; s++)
        assert_true(fabs(mb_trace_capacity(a, s, s + 1, 1) - mb_trace_capacity(b, s, s + 1, 1)) <= 3000);
    mb_trace_free(b);

    /* two columns: the same segments */
    assert_int_equal(mb_trace_write(a, path, MB_TRACE_FMT_TWOCOL, 0, err, sizeof err), 0);
    b = mb_trace_read(path, MB_TRACE_FMT_AUTO, err, sizeof err);
    assert_non_null(b);
    assert_int_equal(b->format, MB_TRACE_FMT_TWOCOL);
    assert_int_equal(a->n, b->n);
    assert_true(b->period_ns == a->period_ns);
    assert_true(fabs(mb_trace_capacity(b, 0, 30, 1) - ca) / ca < 1e-9);
    mb_trace_free(b);

    /* METS: per-second averages */
    assert_int_equal(mb_trace_write(a, path, MB_TRACE_FMT_METS, 0, err, sizeof err), 0);
    b = mb_trace_read(path, MB_TRACE_FMT_AUTO, err, sizeof err);
    assert_non_null(b);
    assert_int_equal(b->format, MB_TRACE_FMT_METS);
    assert_int_equal(b->n, 30);
    assert_true(fabs(mb_trace_capacity(b, 0, 30, 1) - ca) / ca < 1e-5);
    mb_trace_free(b);
    mb_trace_free(a);
    unlink(path);
}

static void test_generators(void **state)
{
    (void)state;
    char err[256];
    mb_trace_gen g = {.kind = MB_TRACE_GEN_MARKOV, .duration_s = 600, .dt_s = 0.1, .seed = 42, .good_bps = 20e6,
                      .bad_bps = 1e6, .good_dwell_s = 5, .bad_dwell_s = 2};
    mb_trace *a = mb_trace_generate(&g, err, sizeof err), *b = mb_trace_generate(&g, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->rate_bps, b->rate_bps, a->n * sizeof(double));
    /* stationary mean: (5*20 + 2*1)/7 Mbit/s, loosely over 600 s */
    mb_trace_stats s;
    mb_trace_stats_compute(a, 1, &s);
    assert_true(fabs(s.mean_bps - 102e6 / 7) < 2.5e6);
    g.seed = 43;
    mb_trace *c = mb_trace_generate(&g, err, sizeof err);
    assert_true(memcmp(a->rate_bps, c->rate_bps, a->n * sizeof(double)) != 0);
    mb_trace_free(a);
    mb_trace_free(b);
    mb_trace_free(c);
    /* segments by index: exactly duration/dt of them, the last inside the trace */
    g.duration_s = 120;
    a = mb_trace_generate(&g, err, sizeof err);
    assert_int_equal(a->n, 1200);
    assert_true(a->t_ns[a->n - 1] < 120000000000LL);
    mb_trace_free(a);

    mb_trace_gen w = {.kind = MB_TRACE_GEN_WALK, .duration_s = 100, .seed = 3, .min_bps = 2e6, .max_bps = 8e6,
                      .sigma_bps = 3e6};
    a = mb_trace_generate(&w, err, sizeof err);
    for (size_t i = 0; i < a->n; i++)
        assert_true(a->rate_bps[i] >= 2e6 && a->rate_bps[i] <= 8e6);
    mb_trace_free(a);

    mb_trace_gen o = {.kind = MB_TRACE_GEN_ONOFF, .duration_s = 60, .rate_bps = 10e6, .on_s = 10, .off_s = 5};
    a = mb_trace_generate(&o, err, sizeof err);
    mb_trace_stats_compute(a, 1, &s);
    assert_int_equal(s.n_outages, 4);
    assert_true(fabs(s.outage_s - 20) < 1e-9);
    assert_true(fabs(s.mean_bps - 10e6 * 40 / 60) < 1);
    assert_true(s.p5_bps == 0 && s.p95_bps == 10e6);
    mb_trace_free(a);

    mb_trace_gen st = {.kind = MB_TRACE_GEN_STEPS, .duration_s = 9, .step_s = 3, .n_rates = 2,
                       .rates_bps = {1e6, 4e6}};
    a = mb_trace_generate(&st, err, sizeof err);
    assert_int_equal(a->n, 3);
    assert_true(mb_trace_capacity(a, 0, 9, 0) == (3 * 1e6 + 3 * 4e6 + 3 * 1e6) / 8);
    mb_trace_free(a);

    mb_trace_gen bad = {.kind = MB_TRACE_GEN_WALK, .duration_s = 10, .min_bps = 5e6, .max_bps = 1e6, .sigma_bps = 1};
    assert_null(mb_trace_generate(&bad, err, sizeof err));
    assert_non_null(strstr(err, "--min"));
    bad.duration_s = 0;
    assert_null(mb_trace_generate(&bad, err, sizeof err));
}

static void test_cursor_rates(void **state)
{
    (void)state;
    double t[] = {0, 1}, r[] = {8e6, 0};
    mb_trace *tr = mb_trace_new_rates_s(2, t, r, 2); /* 1 MB/s for 1 s, then 1 s outage */
    mb_trace_cursor c;
    mb_trace_cursor_init(&c, tr, 1);
    assert_true(fabs(mb_trace_serve(&c, 0, 1000) - 0.001) < 1e-12);
    assert_true(fabs(mb_trace_serve(&c, 0.5, 1e5) - 0.6) < 1e-12);
    /* a packet that starts near the end of capacity waits out the outage */
    assert_true(fabs(mb_trace_serve(&c, 0.9995, 1000) - 2.0005) < 1e-9);
    /* far in the future, many loops later */
    assert_true(fabs(mb_trace_serve(&c, 101.5, 1000) - 102.001) < 1e-9);
    /* more than a period's worth in one go: 2.5 MB from 200 s */
    assert_true(fabs(mb_trace_serve(&c, 200, 2.5e6) - 204.5) < 1e-6);
    /* played once: after the end there is nothing */
    mb_trace_cursor_init(&c, tr, 0);
    assert_true(fabs(mb_trace_serve(&c, 0.2, 1000) - 0.201) < 1e-12);
    assert_true(isinf(mb_trace_serve(&c, 0.9995, 1000)));
    mb_trace_free(tr);
    /* a trace so slow that a packet needs more cycles than int64 ns can
     * count: never (fuzz_trace found the overflow) */
    double tiny[] = {1e-4}, t0[] = {0};
    mb_trace *slow = mb_trace_new_rates_s(1, t0, tiny, 7501);
    mb_trace_cursor_init(&c, slow, 1);
    assert_true(isinf(mb_trace_serve(&c, 0, 1e6)));
    assert_true(mb_trace_serve_ns(&c, 0, 1e6) == INT64_MAX);
    mb_trace_free(slow);
    /* a trace with no capacity at all never serves, and does not spin */
    double z[] = {0};
    tr = mb_trace_new_rates_s(1, t, z, 1);
    mb_trace_cursor_init(&c, tr, 1);
    assert_true(isinf(mb_trace_serve(&c, 0, 1500)));
    mb_trace_free(tr);
}

static void test_cursor_opportunities(void **state)
{
    (void)state;
    char err[256];
    /* opportunities at 1, 1, 3 and 10 ms; period 10 ms */
    mb_trace *tr = mb_trace_read(tmp_file("1\n1\n3\n10\n"), MB_TRACE_FMT_MAHIMAHI, err, sizeof err);
    if (!tr)
        fail_msg("%s", err);
    unlink(tmp);
    assert_true(tr->period_ns == 10000000);
    assert_true(mb_trace_capacity(tr, 0, 0.010, 1) == 4 * 1500);
    assert_true(mb_trace_capacity(tr, 0, 0.100, 1) == 40 * 1500);
    mb_trace_cursor c;
    mb_trace_cursor_init(&c, tr, 1);
    /* two packets of 1000 B at t=0: the first leaves at 1 ms, the second uses
     * the leftover 500 B and the next opportunity (also 1 ms) */
    assert_true(mb_trace_serve(&c, 0, 1000) == 0.001);
    assert_true(mb_trace_serve(&c, 0.001, 1000) == 0.001);
    /* 1000 B more: 1000 B were left at 1 ms: leaves at 1 ms */
    assert_true(mb_trace_serve(&c, 0.001, 1000) == 0.001);
    /* a packet arriving at 2 ms: the leftover was wasted, next is 3 ms */
    assert_true(mb_trace_serve(&c, 0.002, 100) == 0.003);
    /* at 4 ms: next is 10 ms (the period's last stamp) */
    assert_true(fabs(mb_trace_serve(&c, 0.004, 1500) - 0.010) < 1e-12);
    /* then the next cycle: 11 ms */
    assert_true(fabs(mb_trace_serve(&c, 0.010, 1500) - 0.011) < 1e-12);
    /* a jumbo of 4 opportunities from 20.5 ms: 21, 21, 23, 30 */
    assert_true(fabs(mb_trace_serve(&c, 0.0205, 6000) - 0.030) < 1e-12);
    mb_trace_cursor_init(&c, tr, 0);
    assert_true(isinf(mb_trace_serve(&c, 0.011, 100)));
    mb_trace_free(tr);
}

static void read_bad(const char *text, mb_trace_format fmt, const char *needle)
{
    char err[256] = "";
    mb_trace *tr = mb_trace_read(tmp_file(text), fmt, err, sizeof err);
    unlink(tmp);
    if (tr)
        fail_msg("should be refused: %s", text);
    if (!strstr(err, needle) || strncmp(err, tmp, strlen(tmp)))
        fail_msg("error '%s' should name the file and mention '%s'", err, needle);
}

static void test_reader_errors(void **state)
{
    (void)state;
    char err[256];
    assert_null(mb_trace_read("/nonexistent/x.trace", MB_TRACE_FMT_AUTO, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/x.trace"));
    read_bad("", MB_TRACE_FMT_AUTO, "no samples");
    read_bad("5\n3\n", MB_TRACE_FMT_AUTO, ":2: timestamp 3 goes back");
    read_bad("0\n0\n", MB_TRACE_FMT_AUTO, "last timestamp must be > 0");
    read_bad("1\nx\n", MB_TRACE_FMT_MAHIMAHI, ":2: expected a millisecond");
    read_bad("0 1.5\n1 -2\n", MB_TRACE_FMT_AUTO, ":2: negative rate");
    read_bad("0 1.5\n1 2\n0.5 3\n", MB_TRACE_FMT_AUTO, ":3: time 0.5 s is not after the previous sample (1 s)");
    read_bad("0 1.5\n1 abc\n", MB_TRACE_FMT_AUTO, ":2: expected 'seconds Mbit/s'");
    read_bad("3.5,Mbits/sec\n2,furlongs\n", MB_TRACE_FMT_AUTO, ":2: unknown unit 'furlongs'");
    read_bad("3.5,Mbits/sec\n-2,Mbits/sec\n", MB_TRACE_FMT_AUTO, ":2: '-2' is not");
    read_bad("# mecbed-trace 1\n0 5\n", MB_TRACE_FMT_AUTO, "ends with 'end SECONDS'");
    read_bad("# mecbed-trace 1\n1 5\nend 3\n", MB_TRACE_FMT_AUTO, ":2: the first segment");
    read_bad("# mecbed-trace 1\n0 5\n2 5\nend 1\n", MB_TRACE_FMT_AUTO, "'end 1' must be after");
    read_bad("# mecbed-trace 1\n0 5\nend 3\n4 4\n", MB_TRACE_FMT_AUTO, ":4: nothing may follow");
    read_bad("# mecbed-trace 7\n0 5\nend 3\n", MB_TRACE_FMT_AUTO, ":1: a native trace starts");
    read_bad("hello world\n", MB_TRACE_FMT_AUTO, ":1: expected 'seconds Mbit/s'");
    read_bad("hello\n", MB_TRACE_FMT_AUTO, ":1: not a bandwidth trace");
    /* values whose sums overflow (a mean of inf) are refused */
    read_bad("0 1.5\n1 1e308\n", MB_TRACE_FMT_AUTO, ":2: rate 1e+308 Mbit/s exceeds the limit");
    read_bad("1e300,Mbits/sec\n", MB_TRACE_FMT_AUTO, ":1: rate 1e+300 Mbits/sec exceeds");
    read_bad("# mecbed-trace 1\n0 5\nend 1e300\n", MB_TRACE_FMT_AUTO, ":3: 'end' needs the trace's length");
    read_bad("1\n9000000000000000\n", MB_TRACE_FMT_AUTO, ":2: timestamp '9000000000000000' is not a non-negative number of at most 1000000000 s");
    read_bad("0 1\n2000000000 1\n", MB_TRACE_FMT_AUTO, ":2: time '2000000000' is not a non-negative number");
    /* only regular files: /dev/zero and a FIFO once never finished */
    alarm(10);
    assert_null(mb_trace_read("/dev/zero", MB_TRACE_FMT_AUTO, err, sizeof err));
    assert_non_null(strstr(err, "/dev/zero: is a character device, not a regular file"));
    char fifo[] = "/tmp/mecbed-trace-fifo-XXXXXX";
    assert_non_null(mkdtemp(fifo));
    char fpath[64];
    snprintf(fpath, sizeof fpath, "%s/t", fifo);
    assert_int_equal(mkfifo(fpath, 0600), 0);
    assert_null(mb_trace_read(fpath, MB_TRACE_FMT_AUTO, err, sizeof err));
    assert_non_null(strstr(err, "is a FIFO"));
    unlink(fpath);
    rmdir(fifo);
    alarm(0);
    /* an outage-only native trace reads, and has zero capacity */
    mb_trace *tr = mb_trace_read(tmp_file("# mecbed-trace 1\n0 0\nend 5\n"), MB_TRACE_FMT_AUTO, err, sizeof err);
    unlink(tmp);
    assert_non_null(tr);
    assert_true(mb_trace_capacity(tr, 0, 100, 1) == 0);
    mb_trace_free(tr);
}

/* A small bounded fuzzer: random files built from trace-like pieces never
 * crash a reader; what is accepted has a positive period and sane stats. */
static void test_random_files(void **state)
{
    (void)state;
    static const char *const pieces[] = {"0", "1", "17", "-3", "0.5", "1e9", "nan", " ", "\t", ",", "Mbits/sec",
                                         "Kbits/sec", "\n", "\n", "\n", "# mecbed-trace 1\n", "end ", "#", "x",
                                         "99999999999999999999", "1.5e-3", "inf"};
    uint64_t x = 99;
    int accepted = 0;
    for (int iter = 0; iter < 1500; iter++) {
        char text[600] = "";
        size_t used = 0;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = 1 + (int)((x >> 33) % 40);
        for (int i = 0; i < n && used < sizeof text - 64; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            used += (size_t)snprintf(text + used, sizeof text - used, "%s", pieces[(x >> 33) % (sizeof pieces / sizeof pieces[0])]);
        }
        char err[256];
        mb_trace *tr = mb_trace_read(tmp_file(text), MB_TRACE_FMT_AUTO, err, sizeof err);
        unlink(tmp);
        if (!tr) {
            assert_true(strncmp(err, tmp, strlen(tmp)) == 0); /* every error names the file */
            continue;
        }
        accepted++;
        assert_true(tr->period_ns > 0);
        mb_trace_stats st;
        assert_int_equal(mb_trace_stats_compute(tr, 1, &st), 0);
        assert_true(st.mean_bps >= 0 && st.p95_bps >= st.p5_bps);
        mb_trace_cursor c;
        mb_trace_cursor_init(&c, tr, 1);
        double t = mb_trace_serve(&c, 0, 1500);
        assert_true(t >= 0);
        mb_trace_free(tr);
    }
    printf("random trace files: %d of 1500 accepted\n", accepted);
}

/* Decimal seconds become ns exactly; exactly-100 ms outages and
 * opportunities on bin edges are integers, so they count every time. */
static void test_exact_times(void **state)
{
    (void)state;
    char err[256];
    mb_trace *tr = mb_trace_read(tmp_file("0.549999952316 1\n1.1 2\n1.3 1e-3\n"), MB_TRACE_FMT_AUTO, err, sizeof err);
    unlink(tmp);
    if (!tr)
        fail_msg("%s", err);
    /* first sample kept: it covers an interval as long as the second's */
    assert_true(tr->period_ns == 1300000000LL - 549999952LL + 550000048LL);
    assert_true(tr->t_ns[1] == 550000048LL && tr->t_ns[2] == 1100000096LL);
    mb_trace_free(tr);
    /* the issue's outage example: 69469 ms and exactly 100 ms */
    tr = mb_trace_read(tmp_file("50\n69519\n69619\n69620\n"), MB_TRACE_FMT_AUTO, err, sizeof err);
    unlink(tmp);
    assert_non_null(tr);
    mb_trace_stats st;
    assert_int_equal(mb_trace_stats_compute(tr, 1, &st), 0);
    assert_int_equal(st.n_outages, 2);
    assert_true(st.outage_s == 69.569);
    mb_trace_free(tr);
    /* rate outages of exactly 100 ms at times that are not exact in binary */
    double t[] = {0, 0.3, 0.4, 0.7, 0.8}, r[] = {1e6, 0, 1e6, 0, 1e6};
    tr = mb_trace_new_rates_s(5, t, r, 1.1);
    assert_int_equal(mb_trace_stats_compute(tr, 0.1, &st), 0);
    assert_int_equal(st.n_outages, 2);
    mb_trace_free(tr);
    /* binning at 100 ms keeps the opportunity at 600 ms (mean 0.036, not 0.024) */
    tr = mb_trace_read(tmp_file("0\n600\n1000\n"), MB_TRACE_FMT_AUTO, err, sizeof err);
    unlink(tmp);
    assert_non_null(tr);
    mb_trace *b = mb_trace_binned(tr, 0.1);
    assert_non_null(b);
    assert_true(mb_trace_capacity(b, 0, 1, 0) == 3 * 1500);
    assert_true(fabs(b->rate_bps[6] - 120000) < 1e-6);
    mb_trace_free(b);
    mb_trace_free(tr);
}

/* Import options as link-spec keys, per direction: one 5G log gives the
 * uplink its UL column and the downlink its DL column. */
static void test_linkspec_trace_keys(void **state)
{
    (void)state;
    char err[512], text[1024];
    mb_link_spec s, s2;
    const char *spec = "trace=tests/fixtures/5g-drive.csv,format=csv,up.column=UL_bitrate,down.column=DL_bitrate,"
                       "unit=kbit/s,gaps=zero";
    if (mb_linkspec_parse(spec, &s, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(s.up.trace_src.format, MB_TRACE_FMT_CSV);
    assert_string_equal(s.up.trace_src.column, "UL_bitrate");
    assert_string_equal(s.down.trace_src.column, "DL_bitrate");
    assert_int_equal(s.down.trace_src.gap, MB_TRACE_GAP_ZERO);
    /* canonical text round-trips */
    assert_true(mb_linkspec_format(&s, text, sizeof text) > 0);
    assert_non_null(strstr(text, "up.column=UL_bitrate"));
    assert_int_equal(mb_linkspec_parse(text, &s2, err, sizeof err), 0);
    assert_memory_equal(&s.up.trace_src, &s2.up.trace_src, sizeof s.up.trace_src);
    assert_memory_equal(&s.down.trace_src, &s2.down.trace_src, sizeof s.down.trace_src);
    mb_trace *up = mb_trace_read_dir(&s.up, err, sizeof err);
    if (!up)
        fail_msg("%s", err);
    mb_trace *down = mb_trace_read_dir(&s.down, err, sizeof err);
    assert_non_null(down);
    mb_trace_stats su, sd;
    assert_int_equal(mb_trace_stats_compute(up, 1, &su), 0);
    assert_int_equal(mb_trace_stats_compute(down, 1, &sd), 0);
    assert_true(su.max_bps < 25e6 && sd.max_bps > 400e6); /* UL in the tens of Mbit/s, DL 5G peaks */
    assert_int_equal(sd.n_outages, 2);                    /* gaps=zero: 10-11 and 17 */
    mb_trace_free(up);
    mb_trace_free(down);
    /* errors name the key */
    static const struct { const char *spec, *needle; } bad[] = {
        {"rate=1mbit,column=DL", "column= says how to read a trace file, but the up direction has no trace="},
        {"trace=x,format=mahimahi,column=DL", "column applies to format csv only (format is mahimahi)"},
        {"trace=x,unit=parsec/s", "unit=parsec/s: unknown or ambiguous throughput unit"},
        {"trace=x,format=klingon", "format=klingon: unknown trace format (auto, native"},
        {"trace=x,gaps=maybe", "gaps=maybe: unknown value (hold, next, zero, error)"},
        {"trace=x,duplicates=sum", "duplicates=sum: unknown value (mean, last, first, error)"},
        {"trace=x,column=a,column=b", "column given twice"},
        {"trace=x,time_unit=h", "time_unit=h: unknown unit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        if (!mb_linkspec_parse(bad[i].spec, &s, err, sizeof err))
            fail_msg("accepted: %s", bad[i].spec);
        if (!strstr(err, bad[i].needle))
            fail_msg("%s: error '%s' lacks '%s'", bad[i].spec, err, bad[i].needle);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_means),     cmocka_unit_test(test_native_round_trip),
        cmocka_unit_test(test_generators),       cmocka_unit_test(test_cursor_rates),
        cmocka_unit_test(test_cursor_opportunities), cmocka_unit_test(test_reader_errors),
        cmocka_unit_test(test_random_files),     cmocka_unit_test(test_exact_times),
        cmocka_unit_test(test_linkspec_trace_keys),
    };
    return MB_TESTS_EXIT(cmocka_run_group_tests(tests, NULL, NULL));
}
