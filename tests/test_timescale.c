/* Time dilation and calibration: one test per clock the run's time
 * dilation factor (TDF) scales (link rate, delay and jitter, trace times
 * and rates, radio tail, frame interval, timeout), the automatic TDF, the
 * compute thread's virtual clock (no overshoot accumulates over many small
 * dilated ops), and calibration (site factors from one record). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mecbed/energy.h"
#include "mecbed/linkspec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/profile.h"
#include "mecbed/runstats.h"
#include "mecbed/runtime.h"
#include "mecbed/timescale.h"
#include "mecbed/trace.h"

static void test_tdf_auto(void **state)
{
    (void)state;
    /* site factor: site op time / this machine's op time */
    double slow[] = {4.0, 1.5};
    assert_float_equal(mb_tdf_auto(slow, 2), 1.0, 0);
    double mixed[] = {3.0, 1.0 / 2.43, NAN, -1};
    /* the fastest site (2.43x faster) needs k = 2.43 */
    assert_float_equal(mb_tdf_auto(mixed, 4), 2.43, 1e-12);
    double odd[] = {0.3};
    assert_float_equal(mb_tdf_auto(odd, 1), 3.34, 1e-12); /* 3.333.. up to a hundredth */
    assert_float_equal(mb_tdf_auto(NULL, 0), 1.0, 0);
    /* every site's dilation is >= 1 under the automatic k */
    double k = mb_tdf_auto(mixed, 2);
    for (int i = 0; i < 2; i++)
        assert_true(mb_tdf_site_slowdown(k, mixed[i]) >= 1.0);
    char msg[256];
    assert_int_equal(mb_tdf_warning(2.0, 60, msg, sizeof msg), 0);
    assert_string_equal(msg, "");
    assert_int_equal(mb_tdf_warning(8.0, 60, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "480.0 s")); /* 60 emulated seconds take 8 minutes */
}

static void test_link_rate(void **state)
{
    (void)state;
    mb_link_spec s, d;
    char err[256];
    assert_int_equal(mb_linkspec_parse("up.rate=18.88mbit,down.rate=40mbit,queue=100p,loss=1%", &s, err, sizeof err), 0);
    assert_int_equal(mb_linkspec_dilate(&s, 4.0, &d, err, sizeof err), 0);
    assert_float_equal(d.up.rate_bps, 18.88e6 / 4, 1e-6);
    assert_float_equal(d.down.rate_bps, 40e6 / 4, 1e-6);
    /* 1 MB takes k times longer in wall time: the same in emulated time */
    double wall = 8e6 / d.up.rate_bps, emulated = 8e6 / s.up.rate_bps;
    assert_float_equal(mb_tdf_to_emulated(4.0, wall), emulated, 1e-9);
    /* packet counts and probabilities are not clocks */
    assert_int_equal(d.up.queue_packets, s.up.queue_packets);
    assert_float_equal(d.up.loss, s.up.loss, 0);
    /* unlimited stays unlimited; k < 1 is refused */
    assert_int_equal(mb_linkspec_parse("delay=1ms", &s, err, sizeof err), 0);
    assert_int_equal(mb_linkspec_dilate(&s, 3.0, &d, err, sizeof err), 0);
    assert_float_equal(d.up.rate_bps, 0, 0);
    assert_int_equal(mb_linkspec_dilate(&s, 0.5, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, ">= 1"));
}

static void test_link_delay_jitter(void **state)
{
    (void)state;
    mb_link_spec s;
    char err[256];
    assert_int_equal(mb_linkspec_parse("rate=50mbit,rtt=20ms,jitter=2ms:normal", &s, err, sizeof err), 0);
    s.up.aqm_target_s = 0.005;
    /* in place */
    assert_int_equal(mb_linkspec_dilate(&s, 2.5, &s, err, sizeof err), 0);
    assert_float_equal(mb_linkspec_rtt(&s), 0.050, 1e-12);
    assert_float_equal(s.up.jitter_s, 0.005, 1e-12);
    assert_float_equal(s.down.jitter_s, 0.005, 1e-12);
    assert_int_equal(s.up.jitter_dist, MB_JITTER_NORMAL);
    assert_float_equal(s.up.aqm_target_s, 0.0125, 1e-12);
    assert_float_equal(s.up.time_scale, 2.5, 1e-12);
    /* dilating twice composes */
    assert_int_equal(mb_linkspec_dilate(&s, 2.0, &s, err, sizeof err), 0);
    assert_float_equal(s.up.time_scale, 5.0, 1e-12);
    assert_float_equal(mb_linkspec_rtt(&s), 0.100, 1e-12);
}

static void test_trace(void **state)
{
    (void)state;
    char err[256];
    double t[] = {0, 1.0, 2.5}, r[] = {10e6, 0, 4e6};
    mb_trace *a = mb_trace_new_rates_s(3, t, r, 4.0);
    mb_trace *b = mb_trace_new_rates_s(3, t, r, 4.0);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(mb_trace_dilate(b, 3.0, err, sizeof err), 0);
    assert_true(b->t_ns[2] == 7500000000LL);
    assert_float_equal(b->rate_bps[0], 10e6 / 3, 1e-6);
    assert_true(b->period_ns == 12000000000LL);
    /* the same bytes in every emulated interval, looping included */
    double iv[][2] = {{0, 1}, {0.5, 3}, {2.5, 4}, {3, 9.3}};
    for (int i = 0; i < 4; i++)
        assert_float_equal(mb_trace_capacity(b, 3 * iv[i][0], 3 * iv[i][1], 1),
                           mb_trace_capacity(a, iv[i][0], iv[i][1], 1), 1e-3);
    /* the outage lasts 3x longer in wall time */
    mb_trace_cursor ca, cb;
    mb_trace_cursor_init(&ca, a, 1);
    mb_trace_cursor_init(&cb, b, 1);
    double ea = mb_trace_serve(&ca, 0.9, 250000), eb = mb_trace_serve(&cb, 2.7, 250000);
    assert_float_equal(eb, 3 * ea, 1e-9);
    assert_int_equal(mb_trace_dilate(b, 0.9, err, sizeof err), -1);
    mb_trace_free(a);
    mb_trace_free(b);

    /* Mahimahi opportunities: the instants spread, the bytes stay; the spec's
     * time_scale is applied by the loader. */
    char path[] = "/tmp/mecbed-test-tdf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (int ms = 1; ms <= 100; ms++)
        fprintf(f, "%d\n", ms);
    fclose(f);
    mb_link_dir d = {0};
    snprintf(d.trace, sizeof d.trace, "%s", path);
    mb_trace *o = mb_trace_read_dir(&d, err, sizeof err);
    d.time_scale = 4.0;
    mb_trace *od = mb_trace_read_dir(&d, err, sizeof err);
    unlink(path);
    assert_non_null(o);
    assert_non_null(od);
    assert_int_equal(od->kind, MB_TRACE_OPPORTUNITIES);
    assert_true(od->t_ns[9] == 4 * o->t_ns[9]);
    assert_float_equal(od->opp_bytes, o->opp_bytes, 0);
    assert_float_equal(mb_trace_capacity(od, 0, 0.2, 1), mb_trace_capacity(o, 0, 0.05, 1), 1e-9);
    mb_trace_free(o);
    mb_trace_free(od);
    d.trace[0] = 0;
    assert_null(mb_trace_read_dir(&d, err, sizeof err));
}

static void test_radio_tail(void **state)
{
    (void)state;
    const mb_radio_model *lte = mb_radio_get(MB_RADIO_LTE);
    const double k = 4.0;
    /* Emulated: 0.2 s of upload at 10 Mbit/s every 5 s. The LTE tail
     * (11.6 s) keeps the radio connected between frames: no promotion. */
    mb_radio_burst em = {0.1, 0.3, 10, 0};
    mb_radio_energy want, got, naive;
    mb_radio_frame_energy(lte, &em, 1, 0.5, 5.0, &want);
    assert_float_equal(want.promo_mj, 0, 0);
    /* The dilated run measures 4x the times and a quarter of the rate. */
    mb_radio_burst wall = {0.4, 1.2, 2.5, 0};
    mb_radio_frame_energy_dilated(lte, &wall, 1, 2.0, 20.0, k, &got);
    assert_float_equal(got.active_mj, want.active_mj, 1e-9);
    assert_float_equal(got.tail_mj, want.tail_mj, 1e-9);
    assert_float_equal(got.promo_mj, 0, 0);
    assert_float_equal(got.total_mj, want.total_mj, 1e-9);
    /* Without the conversion the 20 wall seconds outlast the tail: a
     * promotion every frame that the emulated device would not pay. */
    mb_radio_frame_energy(lte, &wall, 1, 2.0, 20.0, &naive);
    assert_true(naive.promo_mj > 0);
    assert_int_equal(wall.t0 == 0.4 && wall.up_mbps == 2.5, 1); /* input untouched */

    /* The same from a timeline: packets 8 ms apart in wall time are 2 ms
     * apart in emulated time, one burst for a 2 ms gap. */
    mb_timeline tl;
    mb_timeline_init(&tl);
    mb_event s1 = {7, 0, MB_EV_SEND, 0, 1, -1, 10.000, 10.004, 5000};
    mb_event r1 = {7, 0, MB_EV_RECV, 1, 0, -1, 10.001, 10.008, 5000};
    mb_event s2 = {7, 1, MB_EV_SEND, 0, 1, -1, 10.014, 10.016, 5000};
    mb_event r2 = {7, 1, MB_EV_RECV, 1, 0, -1, 10.015, 10.020, 5000};
    mb_timeline_add(&tl, &s1);
    mb_timeline_add(&tl, &r1);
    mb_timeline_add(&tl, &s2);
    mb_timeline_add(&tl, &r2);
    mb_radio_burst bu[4];
    int n = rs_bursts_emulated(NULL, &tl, 7, 0, 10.0, 10.1, 0.002, k, bu, 4);
    assert_int_equal(n, 1);
    assert_float_equal(bu[0].t0, 0, 1e-9);
    assert_float_equal(bu[0].t1, 0.020 / k, 1e-9);
    assert_int_equal(rs_bursts_emulated(NULL, &tl, 7, 0, 10.0, 10.1, 0.002, 1.0, bu, 4), 2);
    mb_timeline_free(&tl);
}

static void test_fps_and_timeout(void **state)
{
    (void)state;
    /* 20 fps in emulated time: a frame every 50 ms emulated, 150 ms wall at k = 3 */
    assert_float_equal(mb_tdf_to_wall(3.0, 1.0 / 20), 0.150, 1e-12);
    assert_float_equal(mb_tdf_to_emulated(3.0, 0.150), 0.050, 1e-12);
    /* a 2 s frame timeout waits 6 wall seconds; k < 1 counts as 1 */
    assert_float_equal(mb_tdf_to_wall(3.0, 2.0), 6.0, 1e-12);
    assert_float_equal(mb_tdf_to_wall(0.5, 2.0), 2.0, 0);
    assert_float_equal(mb_tdf_to_emulated(NAN, 2.0), 2.0, 0);
}

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ~us of CPU work */
static void busy(double us)
{
    double end = thread_cpu() + us * 1e-6;
    volatile double x = 1;
    while (thread_cpu() < end)
        x = x * 1.0000001 + 1e-9;
}

static void test_vclock_many_small_ops(void **state)
{
    (void)state;
    /* 200 compute-like chunks of ~100 us CPU each, back to back, under a
     * slowdown of 4: the whole must last 4x their CPU time within 3 %.
     * (Per-step sleeps to t0 + 4 x cpu would add one wake-up overshoot per
     * chunk: 50-100 us each on a default timer slack.) A loaded machine can
     * make one attempt miss; the best of six is kept. */
    mb_rt_set_slowdown(4.0);
    mb_rt_precise_timers();
    double best = INFINITY;
    for (int attempt = 0; attempt < 6 && best > 0.03; attempt++) {
        mb_rt_vclock vc = {0};
        double cpu_total = 0, w0 = mb_now();
        for (int i = 0; i < 200; i++) {
            double t0 = mb_now(), c0 = thread_cpu();
            busy(100);
            double cpu = thread_cpu() - c0;
            cpu_total += cpu;
            mb_rt_vclock_end(&vc, mb_rt_vclock_begin(&vc, t0, 0), cpu);
        }
        double wall = mb_now() - w0;
        double e = fabs(wall / (4 * cpu_total) - 1);
        print_message("attempt %d: wall %.2f ms for 4 x %.2f ms of CPU (error %.2f %%)\n", attempt, wall * 1e3,
                      cpu_total * 1e3, e * 100);
        if (e < best)
            best = e;
    }
    assert_true(best <= 0.03);
    /* a step after a wait starts when it is picked, not at the old target */
    mb_rt_vclock vc = {0};
    double t = mb_now();
    double end = mb_rt_vclock_end(&vc, mb_rt_vclock_begin(&vc, t, 0), 0.001);
    assert_float_equal(end, t + 0.004, 1e-9);
    double later = mb_now() + 0.01;
    assert_float_equal(mb_rt_vclock_begin(&vc, later, 1), later, 0);
    assert_float_equal(mb_rt_vclock_begin(&vc, later, 0), end, 0);
    mb_rt_set_slowdown(1.0);
}

static void test_calibration(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = mb_model_load("resnet18", err, sizeof err);
    assert_non_null(g);
    mb_calibration *c = mb_calibrate(g, NULL, "cpu", 1, 3, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->n_ops, g->n_nodes);
    assert_true(c->total_ms_now > 0);
    assert_true(c->gflops_now > 0);
    assert_float_equal(c->host_scale, 1.0, 0);
    print_message("calibration of resnet18: %.3f s (ops %.2f ms now, sgemm %.1f GFLOP/s)\n", c->took_s,
                  c->total_ms_now, c->gflops_now);
    assert_true(c->took_s < 2.0); /* a run pays this at its start */
    double sum = 0;
    for (int i = 0; i < c->n_ops; i++)
        sum += c->ms_now[i];
    assert_float_equal(sum, c->total_ms_now, 1e-9);

    /* Against a reference profile measured on a machine twice as fast: the
     * host_scale is 2, and a node type's factor against this machine now is
     * its factor against the profile halved, so that dilation (ms_now x
     * factor) and prediction (profile ms x profile factor) agree. */
    mb_profile *ref = mb_profile_new(g);
    for (int i = 0; i < g->n_nodes; i++)
        ref->ms[i] = c->ms_now[i] / 2;
    ref->ref_gflops = 200;
    mb_calibration *c2 = mb_calibrate(g, ref, "cpu", 1, 3, err, sizeof err);
    assert_non_null(c2);
    assert_float_equal(c2->ref_total_ms, c->total_ms_now / 2, 1e-9);
    assert_float_equal(c2->host_scale, c2->total_ms_now / c2->ref_total_ms, 1e-12);
    mb_nodetype pi = {.gflops = 10}, fast = {.speed = 0.25};
    double f = mb_calibration_site_factor(c2, &pi);
    assert_float_equal(f, (200.0 / 10) / c2->host_scale, 1e-9);
    /* relative: the profile keeps single-precision op times (a 1e-6 ms
     * absolute bound failed once at 987.47 ms) */
    double want = mb_profile_total_ms(ref) * 20.0;
    assert_true(fabs(c2->total_ms_now * f - want) <= 1e-6 * want);
    assert_float_equal(mb_calibration_site_factor(c2, &fast), 0.25 / c2->host_scale, 1e-12);
    /* without a reference, gflops compare with the sgemm rate now */
    assert_float_equal(mb_calibration_site_factor(c, &pi), c->gflops_now / 10, 1e-9);
    mb_nodetype none = {0};
    assert_true(isnan(mb_calibration_site_factor(c, &none)));

    char buf[1024];
    assert_true(mb_calibration_format(c2, buf, sizeof buf) < (int)sizeof buf);
    assert_non_null(strstr(buf, "calib_host_scale="));
    assert_true(mb_calibration_json(c2, buf, sizeof buf) < (int)sizeof buf);
    assert_non_null(strstr(buf, "\"gflops_now\": "));
    assert_non_null(strstr(buf, "\"model\": \"resnet18\""));

    mb_profile *bad = mb_profile_new(g);
    bad->n_ops = 3;
    assert_null(mb_calibrate(g, bad, "cpu", 1, 3, err, sizeof err));
    bad->n_ops = g->n_nodes;
    mb_profile_free(bad);
    mb_profile_free(ref);
    mb_calibration_free(c);
    mb_calibration_free(c2);
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tdf_auto),
        cmocka_unit_test(test_link_rate),
        cmocka_unit_test(test_link_delay_jitter),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_radio_tail),
        cmocka_unit_test(test_fps_and_timeout),
        cmocka_unit_test(test_vclock_many_small_ops),
        cmocka_unit_test(test_calibration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
