/* Runtime measurement helpers: the goodput estimator, the critical path of
 * a plan from measured durations, radio bursts from a packet log, and CPU
 * caps (cgroups; skipped without root). */
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
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/runstats.h"
#include "mecbed/cgroup.h"
#include "mecbed/goodput.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"

static void test_goodput(void **state)
{
    (void)state;
    mb_goodput g;
    mb_goodput_init(&g, 0.5, 0.5, 1000);
    assert_true(mb_goodput_bps(&g) == 0);
    assert_false(mb_goodput_changed(&g, 1e6, 0.25));
    /* small transfers say nothing about the rate */
    assert_int_equal(mb_goodput_add(&g, 500, 0.01, 0.005), 0);
    /* 1.25 MB in 1.01 s over a 10 ms path: 10 Mbit/s */
    assert_int_equal(mb_goodput_add(&g, 1250000, 1.01, 0.01), 1);
    assert_true(fabs(mb_goodput_bps(&g) - 10e6) < 1e3);
    /* then 5 Mbit/s: the EWMA moves half way */
    mb_goodput_add(&g, 1250000, 2.01, 0.01);
    assert_true(fabs(mb_goodput_bps(&g) - 7.5e6) < 1e3);
    assert_true(mb_goodput_changed(&g, 10e6, 0.2));
    assert_false(mb_goodput_changed(&g, 7.5e6, 0.2));
    /* asymmetric: a drop counts more than a rise */
    mb_goodput h;
    mb_goodput_init(&h, 0.25, 0.75, 0);
    mb_goodput_add(&h, 1250000, 1.0, 0); /* 10 Mbit/s */
    mb_goodput_add(&h, 1250000, 5.0, 0); /* 2 Mbit/s: 10 - 0.75 * 8 = 4 */
    assert_true(fabs(mb_goodput_bps(&h) - 4e6) < 1e3);
    mb_goodput_add(&h, 1250000, 0.5, 0); /* 20 Mbit/s: 4 + 0.25 * 16 = 8 */
    assert_true(fabs(mb_goodput_bps(&h) - 8e6) < 1e3);
}

/* A three-step plan on two sites with hand-made events: the critical path
 * is compute + pure transfer + compute, whatever idle gaps the run had. */
static void test_critical_path(void **state)
{
    (void)state;
    char err[512], path[64];
    snprintf(path, sizeof path, "/tmp/mb-rtstats-%d.model", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("mecbed-model 1\nname s\nseed 1\nInput x shape=1,2,8,8\n"
          "Relu a x\nRelu b a\noutput b\n", f);
    fclose(f);
    mb_graph *g = mb_model_load(path, err, sizeof err);
    unlink(path);
    assert_non_null(g);
    int a = mb_graph_find(g, "a"), b = mb_graph_find(g, "b");
    mb_plan *p = mb_plan_new("t", g, 0);
    mb_plan_compute(p, a, 0, mb_node_full_region(g, a));
    mb_plan_send(p, a, mb_node_full_region(g, a), 0, 1);
    mb_plan_compute(p, b, 1, mb_node_full_region(g, b));
    mb_plan_send(p, b, mb_node_full_region(g, b), 1, 0);
    mb_timeline tl;
    mb_timeline_init(&tl);
    mb_event ev[] = {
        {.frame = 3, .step = 0, .kind = MB_EV_COMPUTE, .site = 0, .peer = -1, .op = a, .t0 = 10.000, .t1 = 10.002},
        {.frame = 3, .step = 1, .kind = MB_EV_SEND, .site = 0, .peer = 1, .op = a, .t0 = 10.003, .t1 = 10.0031, .bytes = 512},
        {.frame = 3, .step = 1, .kind = MB_EV_RECV, .site = 1, .peer = 0, .op = a, .t0 = 10.009, .t1 = 10.013, .bytes = 512},
        {.frame = 3, .step = 2, .kind = MB_EV_COMPUTE, .site = 1, .peer = -1, .op = b, .t0 = 10.020, .t1 = 10.025},
        {.frame = 3, .step = 3, .kind = MB_EV_SEND, .site = 1, .peer = 0, .op = b, .t0 = 10.025, .t1 = 10.0251, .bytes = 512},
        {.frame = 3, .step = 3, .kind = MB_EV_RECV, .site = 0, .peer = 1, .op = b, .t0 = 10.030, .t1 = 10.035, .bytes = 512},
    };
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++)
        mb_timeline_add(&tl, &ev[i]);
    /* 2 ms + (13 - 3) ms + 5 ms + (35 - 25) ms = 27 ms; the 7 ms idle gap on site 1 is not in it */
    double cp = rs_critical_path_ms(p, g, &tl, 3);
    assert_true(fabs(cp - 27.0) < 1e-6);
    /* a frame without events has no critical path */
    assert_true(isnan(rs_critical_path_ms(p, g, &tl, 4)));
    assert_true(fabs(rs_device_busy_ms(&tl, 3, 0) - 2.0) < 1e-9);
    int64_t up, down;
    rs_device_bytes(&tl, 3, 0, &up, &down);
    assert_int_equal(up, 512);
    assert_int_equal(down, 512);
    /* bursts from the timeline: two transfers, 17 ms apart */
    mb_radio_burst bu[8];
    int n = rs_bursts(NULL, &tl, 3, 0, 10.0, 10.035, 0.002, bu, 8);
    assert_int_equal(n, 2);
    assert_true(fabs(bu[0].t0 - 0.003) < 1e-9 && fabs(bu[0].t1 - 0.013) < 1e-9);
    assert_true(bu[0].up_mbps > 0 && bu[0].down_mbps == 0);
    assert_true(bu[1].down_mbps > 0);
    mb_timeline_free(&tl);
    mb_plan_free(p);
    mb_graph_free(g);
}

/* The emulator's per-packet CSV: delivered packets become radio time,
 * drops and a cut-off last line are skipped, garbage is an error. */
static void test_packet_log(void **state)
{
    (void)state;
    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/mb-rtstats-%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("seq,arrival_us,departure_us,delivery_us,bytes,queue_delay_us,event\n"
          "0,1000.0,1600.0,11600.0,1500,0.0,delivered\n"
          "1,1100.0,,,1500,,drop-queue\n"
          "2,1200.0,2200.0,12200.0,1500,400.0,delivered\n"
          "3,9000.0,9600.0,19600.0,15", f);
    fclose(f);
    rs_packets ps = {0};
    assert_int_equal(rs_packets_read(&ps, path, 100.0, 1, err, sizeof err), 0);
    assert_int_equal(ps.n, 2);
    assert_true(fabs(ps.p[0].t0 - 100.001) < 1e-9 && fabs(ps.p[0].t1 - 100.0016) < 1e-9);
    /* downlink: the radio receives from delivery - serialisation to delivery */
    rs_packets dn = {0};
    assert_int_equal(rs_packets_read(&dn, path, 0, 0, err, sizeof err), 0);
    assert_true(fabs(dn.p[1].t1 - 0.0122) < 1e-9);
    assert_true(fabs(dn.p[1].t0 - (0.0122 - (0.0022 - 0.0016))) < 1e-9);
    mb_radio_burst b[4];
    int n = rs_bursts(&ps, NULL, 0, 0, 100.0, 101.0, 0.002, b, 4);
    assert_int_equal(n, 1); /* the two packets overlap: one burst */
    assert_true(b[0].up_mbps > 0);
    rs_packets_free(&ps);
    rs_packets_free(&dn);
    f = fopen(path, "w");
    fputs("seq,arrival_us\nthis is not a packet log\n", f);
    fclose(f);
    assert_int_equal(rs_packets_read(&ps, path, 0, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    rs_packets_free(&ps);
    unlink(path);
}

/* Deadline misses with known latencies: 8 fps (125 ms). Frames run one
 * after another, each starting at the later of its release and the end of
 * the one before. */
static void stream(rs_frame_times *f, int n, const double *lat_ms, double k)
{
    double free_at = 0;
    for (int i = 0; i < n; i++) {
        f[i].release = 100 + i * 0.125 * k;
        f[i].start = fmax(f[i].release, free_at);
        f[i].end = f[i].start + lat_ms[i] / 1e3 * k;
        f[i].done = 1;
        free_at = f[i].end;
    }
}

static void test_deadline_misses(void **state)
{
    (void)state;
    rs_frame_times f[8];
    int own = -1;
    /* two frames over 125 ms, each on its own; the frame after each starts
     * 5 or 15 ms late but still ends within 125 ms of its release */
    stream(f, 6, (const double[]){100, 130, 100, 100, 140, 90}, 1);
    assert_int_equal(rs_deadline_misses(f, 6, 125, 1, &own), 2);
    assert_int_equal(own, 2);
    /* a slow first frame delays the next three: 150 ms, then 120 ms each
     * from a start 25, 20, 15 ms after their releases: 4 misses, 1 of them on
     * its own: how a stream reports more misses than slow frames */
    stream(f, 4, (const double[]){150, 120, 120, 120}, 1);
    assert_int_equal(rs_deadline_misses(f, 4, 125, 1, &own), 4);
    assert_int_equal(own, 1);
    /* ... and the queue drains: a 100 ms frame after them is in time */
    stream(f, 6, (const double[]){150, 120, 120, 120, 60, 100}, 1);
    assert_int_equal(rs_deadline_misses(f, 6, 125, 1, &own), 4);
    /* exactly the deadline is in time; a failed frame is a miss */
    stream(f, 3, (const double[]){125, 50, 50}, 1);
    f[2].done = 0;
    assert_int_equal(rs_deadline_misses(f, 3, 125, 1, &own), 1);
    assert_int_equal(own, 1);
    /* time dilation 4: the same stream in wall time 4x longer, the same count */
    stream(f, 6, (const double[]){100, 130, 100, 100, 140, 90}, 4);
    assert_int_equal(rs_deadline_misses(f, 6, 125, 4, &own), 2);
    /* ... but judged without the dilation every frame would miss */
    assert_int_equal(rs_deadline_misses(f, 6, 125, 1, NULL), 6);
}

/* One "key value" line of a cgroup file (cpu.stat); -1 when absent. */
static long long cgroup_stat(const char *dir, const char *file, const char *want)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    long long found = -1;
    if (f) {
        char key[64];
        long long v;
        while (fscanf(f, "%63s %lld", key, &v) == 2)
            if (!strcmp(key, want))
                found = v;
        fclose(f);
    }
    return found;
}

/* A child capped at a quarter of a core gets about a quarter of one: its
 * CPU time, measured by the kernel's rusage (independent of the cgroup),
 * against the wall time it ran; the cgroup holds the quota and period the
 * cap asked for (v1 cfs files or v2 cpu.max, whichever this machine has),
 * and it is gone after free. */
static void test_cpu_cap(void **state)
{
    (void)state;
    char why[256], err[256];
    int version = 0;
    if (mb_cpu_cap_available(&version, why, sizeof why))
        MB_SKIP("cpu cap: %s", why);
    assert_null(mb_cpu_cap_new("evil/../x", 0.5, err, sizeof err));
    assert_null(mb_cpu_cap_new("mecbed-x", 0, err, sizeof err));
    char name[64];
    snprintf(name, sizeof name, "mecbed-test%d", (int)getpid());
    mb_cpu_cap *c = mb_cpu_cap_new(name, 0.25, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    char dir[300];
    snprintf(dir, sizeof dir, "%s", mb_cpu_cap_path(c));
    /* 0.25 cores at the 4 ms period: 1 ms of every 4 */
    char file[400], text[64] = "";
    if (version == 1) {
        snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", dir);
        FILE *f = fopen(file, "r");
        assert_non_null(f);
        long q = 0, p = 0;
        assert_int_equal(fscanf(f, "%ld", &q), 1);
        fclose(f);
        snprintf(file, sizeof file, "%s/cpu.cfs_period_us", dir);
        f = fopen(file, "r");
        assert_non_null(f);
        assert_int_equal(fscanf(f, "%ld", &p), 1);
        fclose(f);
        snprintf(text, sizeof text, "%ld %ld", q, p);
    } else {
        snprintf(file, sizeof file, "%s/cpu.max", dir);
        FILE *f = fopen(file, "r");
        assert_non_null(f);
        assert_non_null(fgets(text, sizeof text, f));
        fclose(f);
        text[strcspn(text, "\n")] = 0;
    }
    assert_string_equal(text, "1000 4000");
    double t0 = mb_now();
    pid_t pid = fork();
    if (pid == 0) {
        /* burn for 0.4 s of wall time */
        volatile double x = 0;
        while (mb_now() - t0 < 0.4)
            x += 1;
        _exit(0);
    }
    assert_int_equal(mb_cpu_cap_add(c, pid, err, sizeof err), 0);
    int st;
    struct rusage ru;
    assert_int_equal(wait4(pid, &st, 0, &ru), pid);
    double wall = mb_now() - t0;
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    print_message("cgroup v%d: child used %.3f s CPU in %.3f s wall (%.0f %% of a core; cap 25 %%)\n", version, cpu,
                  wall, 100 * cpu / wall);
    /* uncapped it would take ~100 % of a core (less on a busy machine, but
     * the cap is a ceiling: the share cannot exceed 25 % by much; the
     * fork-to-add gap runs uncapped for a moment) */
    assert_true(cpu / wall < 0.35);
    assert_true(cpu > 0.02); /* it did run */
    /* both versions count throttled periods in cpu.stat: 0.4 s at a 4 ms
     * period throttles ~100 of them */
    long long throttled = cgroup_stat(dir, "cpu.stat", "nr_throttled");
    print_message("nr_throttled %lld\n", throttled);
    assert_true(throttled > 10);
    mb_cpu_cap_free(c);
    assert_int_not_equal(access(dir, F_OK), 0);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goodput),
        cmocka_unit_test(test_critical_path),
        cmocka_unit_test(test_packet_log),
        cmocka_unit_test(test_deadline_misses),
        cmocka_unit_test(test_cpu_cap),
    };
    return MB_TESTS_EXIT(cmocka_run_group_tests(tests, NULL, NULL));
}
