/* Link emulation end to end, as root: namespaces, the emu and tc backends,
 * routing over two hops, fidelity (short runs, loose bounds for a noisy
 * 2-core machine; `make bench-net` has the real table), logs, outages,
 * spawned processes, and clean-up on down, SIGTERM, and SIGKILL + clean.
 * Every test asserts that its run left nothing behind. Skips without root. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/link.h"
#include "mecbed/linktest.h"
#include "mecbed/netns.h"
#include "mecbed/timescale.h"
#include "mecbed/trace.h"

static char why[256];
static int available;

static void assert_clean(const char *run)
{
    int ns, ifs, procs;
    mb_run_leftovers(run, &ns, &ifs, &procs);
    if (ns || ifs || procs)
        fail_msg("run %s left %d namespaces, %d interfaces, %d processes", run, ns, ifs, procs);
    char path[128];
    snprintf(path, sizeof path, "%s/%s.pid", MB_RUN_DIR, run);
    if (access(path, F_OK) == 0)
        fail_msg("run %s left its owner file %s", run, path);
}

static mb_net *up(const char *spec, const char *backend, const char *log_dir)
{
    static mb_topology t;
    char err[1024];
    if (mb_topology_from_link(spec, &t, err, sizeof err))
        fail_msg("%s", err);
    mb_net_opts o = {.backend = backend, .log_dir = log_dir, .seed = 7};
    mb_net *net;
    if (mb_net_up(&t, &o, &net, err, sizeof err))
        fail_msg("mb_net_up(%s, %s): %s", spec, backend, err);
    return net;
}

#define SKIP_UNLESS_ROOT()                                                                                             \
    do {                                                                                                               \
        if (!available) {                                                                                              \
            printf("skip: %s\n", why);                                                                                 \
            skip();                                                                                                    \
        }                                                                                                              \
    } while (0)

/* One UDP datagram from site a to site b's address; 1 if it arrives. */
static int udp_reaches(mb_net *net, int a, int b, double timeout_s)
{
    int rx = mb_net_socket(net, b, AF_INET, SOCK_DGRAM, 0), tx = mb_net_socket(net, a, AF_INET, SOCK_DGRAM, 0);
    assert_true(rx >= 0 && tx >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(7200)};
    inet_pton(AF_INET, mb_net_addr(net, b), &addr.sin_addr);
    assert_int_equal(bind(rx, (struct sockaddr *)&addr, sizeof addr), 0);
    sendto(tx, "hello", 5, 0, (struct sockaddr *)&addr, sizeof addr);
    struct pollfd p = {.fd = rx, .events = POLLIN};
    int ok = poll(&p, 1, (int)(timeout_s * 1000)) == 1;
    close(rx);
    close(tx);
    return ok;
}

static void three_nodes(const char *backend)
{
    static mb_topology t;
    char err[1024], path[64];
    snprintf(path, sizeof path, "/tmp/mb-emu-topo-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("[node device]\nrole=device\n[node edge0]\nrole=edge\n[node cloud]\nrole=cloud\n", f);
    if (!strcmp(backend, "emu"))
        fputs("[link device edge0]\nspec=rate=50mbit,delay=2ms\n[link edge0 cloud]\nspec=rate=100mbit,delay=3ms\n", f);
    else /* rate only: this kernel may have no netem */
        fputs("[link device edge0]\nspec=rate=50mbit\n[link edge0 cloud]\nspec=rate=100mbit\n", f);
    fclose(f);
    int rc = mb_topology_read(path, &t, err, sizeof err);
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    mb_net_opts o = {.backend = backend};
    mb_net *net;
    if (mb_net_up(&t, &o, &net, err, sizeof err))
        fail_msg("%s", err);
    char run[8];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    int dev = mb_topology_find(&t, "device"), cloud = mb_topology_find(&t, "cloud");
    char ns[80];
    snprintf(ns, sizeof ns, "mecbed-%s-cloud", run);
    assert_string_equal(mb_net_netns(net, cloud), ns);
    assert_string_equal(mb_net_addr(net, cloud), "10.201.1.2");
    assert_true(strncmp(mb_net_ifname(net, 0, 0), "mb", 2) == 0);
    /* device reaches the cloud through edge0's forwarding, and back */
    assert_true(udp_reaches(net, dev, cloud, 2));
    assert_true(udp_reaches(net, cloud, dev, 2));
    /* both links carried it: counters of each hop moved (emu keeps counters) */
    mb_link_counters c0, c1;
    if (!strcmp(backend, "emu")) {
        assert_int_equal(mb_net_link_counters(net, 0, 0, &c0), 0);
        assert_int_equal(mb_net_link_counters(net, 1, 0, &c1), 0);
        assert_true(c0.out_packets >= 1 && c1.out_packets >= 1);
    } else {
        assert_int_equal(mb_net_link_counters(net, 0, 0, &c0), -1);
    }
    mb_net_down(net);
    assert_clean(run);
}

/* What `ip -n NS route show` prints in the namespace of site s. */
static void routes_of(mb_net *net, int s, char *out, size_t n)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "ip -n %s route show 2>&1", mb_net_netns(net, s));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t k = fread(out, 1, n - 1, f);
    out[k] = 0;
    pclose(f);
}

/* Under time dilation k, TCP's retransmission-timeout floor stretches with
 * the emulated time: every route carries rto_min 200 ms x k (here 8: 1.6 s);
 * undilated links keep the kernel's. */
static void test_dilated_rto_min(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    static mb_topology t;
    char err[1024], routes[2048];
    assert_int_equal(mb_topology_from_link("rate=10mbit,delay=1ms", &t, err, sizeof err), 0);
    assert_int_equal(mb_linkspec_dilate(&t.links[0].spec, 8, &t.links[0].spec, err, sizeof err), 0);
    mb_net_opts o = {.backend = "emu", .tdf = 8};
    mb_net *net;
    if (mb_net_up(&t, &o, &net, err, sizeof err))
        fail_msg("%s", err);
    for (int s = 0; s < 2; s++) {
        routes_of(net, s, routes, sizeof routes);
        if (!strstr(routes, "rto_min lock 1.6s"))
            fail_msg("site %d's routes under TDF 8 have no rto_min of 1.6 s:\n%s", s, routes);
    }
    mb_net_down(net);
    net = up("rate=10mbit,delay=1ms", "emu", NULL);
    routes_of(net, 0, routes, sizeof routes);
    mb_net_down(net);
    if (strstr(routes, "rto_min"))
        fail_msg("an undilated link's route has an rto_min:\n%s", routes);
    /* a trace stretched by hand (the link key timescale) is not a dilated run */
    net = up("rate=10mbit,delay=1ms,timescale=4", "emu", NULL);
    routes_of(net, 0, routes, sizeof routes);
    mb_net_down(net);
    if (strstr(routes, "rto_min"))
        fail_msg("a link with timescale=4 outside a dilated run has an rto_min:\n%s", routes);
}

/* The kernel's current CPU wake-up latency target (/dev/cpu_dma_latency
 * reads back the aggregate of all requests), or -1 without the device. */
static long cpu_latency_now(void)
{
    int fd = open("/dev/cpu_dma_latency", O_RDONLY);
    if (fd < 0)
        return -1;
    int32_t v;
    ssize_t n = read(fd, &v, sizeof v);
    close(fd);
    return n == (ssize_t)sizeof v ? v : -1;
}

/* While links are up every CPU's wake-up latency is held at zero (idle CPUs
 * poll: a packet does not wait for a CPU to leave a deep idle state), and
 * the request goes with the links; MECBED_CPU_LATENCY=system leaves it. */
static void test_cpu_latency_held(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    long before = cpu_latency_now();
    if (before < 0)
        skip(); /* no PM QoS device on this kernel */
    mb_net *net = up("rate=10mbit,delay=1ms", "emu", NULL);
    assert_int_equal(mb_net_cpu_latency_held(net), 1);
    assert_int_equal(cpu_latency_now(), 0);
    mb_net_down(net);
    if (before > 0) /* (nobody else held it at 0 before) */
        assert_int_equal(cpu_latency_now(), before);
    setenv("MECBED_CPU_LATENCY", "system", 1);
    net = up("rate=10mbit,delay=1ms", "emu", NULL);
    unsetenv("MECBED_CPU_LATENCY");
    assert_int_equal(mb_net_cpu_latency_held(net), 0);
    if (before > 0)
        assert_int_equal(cpu_latency_now(), before);
    mb_net_down(net);
}

/* mb_net_opts.keep_cwnd_after_idle: net.ipv4.tcp_slow_start_after_idle is
 * 0 in every namespace the run makes; without it, the kernel's 1. */
static void test_keep_cwnd_after_idle(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    static mb_topology t;
    char err[1024], cmd[256], out[8];
    assert_int_equal(mb_topology_from_link("rate=10mbit,delay=1ms", &t, err, sizeof err), 0);
    for (int keep = 0; keep < 2; keep++) {
        mb_net_opts o = {.backend = "emu", .keep_cwnd_after_idle = keep};
        mb_net *net;
        if (mb_net_up(&t, &o, &net, err, sizeof err))
            fail_msg("%s", err);
        for (int s = 0; s < 2; s++) {
            snprintf(cmd, sizeof cmd, "ip netns exec %s cat /proc/sys/net/ipv4/tcp_slow_start_after_idle",
                     mb_net_netns(net, s));
            FILE *f = popen(cmd, "r");
            assert_non_null(f);
            assert_non_null(fgets(out, sizeof out, f));
            pclose(f);
            assert_int_equal(out[0], keep ? '0' : '1');
        }
        mb_net_down(net);
    }
}

static void test_three_nodes_route_and_clean(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    three_nodes("emu");
    three_nodes("tc");
}

static void test_emu_fidelity(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    mb_net *net = up("rate=20mbit,delay=5ms", "emu", NULL);
    char run[8], err[512];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    mb_linktest_opts o = {.duration_s = 1.5, .no_loss = 1};
    mb_linktest_result r;
    if (mb_link_test(net, 0, &o, &r, err, sizeof err))
        fail_msg("%s", err);
    mb_net_down(net);
    assert_clean(run);
    printf("emu 20mbit/5ms: tcp %.2f udp %.2f Mbit/s, rtt %.3f ms (min %.3f)\n", r.tcp_mbps, r.udp_mbps, r.rtt_ms,
           r.rtt_min_ms);
    /* the emulator computes departures on a virtual clock: UDP saturating
     * the link gets the configured rate */
    assert_true(fabs(r.udp_mbps - 20) / 20 < 0.03);
    assert_true(r.tcp_mbps > 20 * 0.85 && r.tcp_mbps < 20 * 1.03);
    /* idle RTT: 10 ms plus serialisation of the probe, plus wake-up latency */
    assert_true(r.rtt_min_ms >= 10.0 && r.rtt_min_ms < 10.0 + 1.0);
    assert_true(r.rtt_ms < 10.0 + 3.0);
}

static void test_emu_loss(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    mb_net *net = up("rate=20mbit,loss=10%", "emu", NULL);
    char run[8], err[512];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    mb_linktest_opts o = {.duration_s = 1.0, .no_tcp = 1, .no_udp = 1};
    mb_linktest_result r;
    if (mb_link_test(net, 0, &o, &r, err, sizeof err))
        fail_msg("%s", err);
    mb_link_counters c;
    assert_int_equal(mb_net_link_counters(net, 0, 0, &c), 0);
    mb_net_down(net);
    assert_clean(run);
    printf("emu loss 10%%: measured %.4f over %ld datagrams (emulator dropped %llu of %llu)\n", r.loss_rate,
           r.loss_sent, (unsigned long long)c.drop_loss, (unsigned long long)c.in_packets);
    assert_true(r.loss_sent > 500);
    /* 4 sigma of a binomial with n > 500, p = 0.1 */
    assert_true(fabs(r.loss_rate - 0.10) < 4 * sqrt(0.1 * 0.9 / (double)r.loss_sent));
    assert_int_equal(c.drop_queue, 0);
}

/* A trace with a 1.5 s outage: packets sent during it are held and delivered
 * after it, and the emulator thread sleeps meanwhile. */
static void test_outage_stalls(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    char path[64], spec[160];
    snprintf(path, sizeof path, "/tmp/mb-emu-outage-%d.trace", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("# mecbed-trace 1\n0 10\n0.3 0\n1.8 10\nend 60\n", f);
    fclose(f);
    snprintf(spec, sizeof spec, "trace=%s:once,delay=1ms", path);
    mb_net *net = up(spec, "emu", NULL);
    char run[8];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    double epoch = mb_net_epoch(net);
    int rx = mb_net_socket(net, 1, AF_INET, SOCK_DGRAM, 0), tx = mb_net_socket(net, 0, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(7201)};
    inet_pton(AF_INET, mb_net_addr(net, 1), &addr.sin_addr);
    assert_int_equal(bind(rx, (struct sockaddr *)&addr, sizeof addr), 0);
    /* wait into the outage, then send */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = ts.tv_sec + ts.tv_nsec * 1e-9;
    if (now - epoch < 0.5)
        usleep((useconds_t)((0.5 - (now - epoch)) * 1e6));
    mb_link_counters c0, c1;
    mb_net_link_counters(net, 0, 0, &c0);
    for (int i = 0; i < 10; i++)
        sendto(tx, "x", 1, 0, (struct sockaddr *)&addr, sizeof addr);
    struct pollfd p = {.fd = rx, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 0); /* nothing gets through in the outage */
    mb_net_link_counters(net, 0, 0, &c1);
    /* the thread slept: a few ms of CPU at most over the second */
    printf("outage: emulator CPU %.4f s over 1 s\n", c1.cpu_s - c0.cpu_s);
    assert_true(c1.cpu_s - c0.cpu_s < 0.05);
    int got = 0;
    while (got < 10 && poll(&p, 1, 1500) == 1) {
        char b[16];
        if (recv(rx, b, sizeof b, 0) > 0)
            got++;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = ts.tv_sec + ts.tv_nsec * 1e-9;
    assert_int_equal(got, 10);
    assert_true(now - epoch >= 1.8);
    close(rx);
    close(tx);
    mb_net_down(net);
    unlink(path);
    assert_clean(run);
}

static void test_logs(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    char dir[64], path[256], err[512];
    snprintf(dir, sizeof dir, "/tmp/mb-emu-logs-%d", (int)getpid());
    mkdir(dir, 0755);
    mb_net *net = up("rate=5mbit,delay=2ms,loss=20%", "emu", dir);
    char run[8];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    for (int i = 0; i < 50; i++)
        udp_reaches(net, 0, 1, 0.05);
    mb_link_counters c;
    mb_net_down(net);
    (void)c;
    assert_clean(run);
    /* CSV: header, one row per packet offered, drops marked */
    snprintf(path, sizeof path, "%s/link0-device-edge0.up.csv", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "seq,arrival_us,departure_us,delivery_us,bytes,queue_delay_us,event\n");
    int delivered = 0, lost = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, ",delivered\n")) {
            unsigned long long seq;
            double arr, dep, dlv, q;
            unsigned bytes;
            assert_int_equal(sscanf(line, "%llu,%lf,%lf,%lf,%u,%lf", &seq, &arr, &dep, &dlv, &bytes, &q), 6);
            /* 2 ms propagation after departure; departure after arrival */
            assert_true(dlv - dep > 1999 && dlv - dep < 2001);
            assert_true(dep >= arr);
            delivered++;
        } else if (strstr(line, ",drop-loss\n")) {
            lost++;
        }
    }
    fclose(f);
    assert_true(delivered > 20 && lost > 2);
    /* pcap: the delivered packets, raw IPv4 */
    snprintf(path, sizeof path, "%s/link0-device-edge0.up.pcap", dir);
    char perr[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline(path, perr);
    if (!pc)
        fail_msg("%s", perr);
    assert_int_equal(pcap_datalink(pc), DLT_RAW);
    struct pcap_pkthdr *h;
    const u_char *data;
    int n = 0;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        assert_int_equal(data[0] >> 4, 4);
        n++;
    }
    pcap_close(pc);
    assert_int_equal(n, delivered);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    (void)err;
}

static void test_tc_backend(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    mb_link_spec s;
    char err[512];
    mb_linkspec_parse("rate=10mbit,delay=10ms", &s, err, sizeof err);
    if (mb_net_check("tc", &s, err, sizeof err)) {
        /* this kernel has no netem: the error must point at the emu backend */
        assert_non_null(strstr(err, "--backend emu"));
        printf("tc without netem: %s\n", err);
    }
    mb_linkspec_parse("trace=x.trace", &s, err, sizeof err);
    assert_int_equal(mb_net_check("tc", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--backend emu"));
    mb_linkspec_parse("rate=1mbit", &s, err, sizeof err);
    assert_int_equal(mb_net_check("ns3", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "not built"));
    assert_int_equal(mb_net_check("carrier-pigeon", &s, err, sizeof err), -1);

    mb_net *net = up("rate=10mbit", "tc", NULL);
    char run[8];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    mb_linktest_opts o = {.duration_s = 1.5, .no_loss = 1, .no_tcp = 1};
    mb_linktest_result r;
    if (mb_link_test(net, 0, &o, &r, err, sizeof err))
        fail_msg("%s", err);
    mb_net_down(net);
    assert_clean(run);
    printf("tc 10mbit: udp %.3f Mbit/s (IP layer)\n", r.udp_mbps);
    /* tbf counts the Ethernet header: 1500/1514 of the rate at the IP layer */
    assert_true(r.udp_mbps > 10 * 0.95 && r.udp_mbps < 10 * 1.01);
}

static void test_spawn_and_child_exit(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    mb_net *net = up("rate=10mbit", "emu", NULL);
    char run[8], err[512];
    snprintf(run, sizeof run, "%s", mb_net_run_id(net));
    char *sleeper[] = {"sleep", "30", NULL}, *quick[] = {"true", NULL}, *bad[] = {"/nonexistent/prog", NULL};
    pid_t p1, p2;
    assert_int_equal(mb_net_spawn(net, 1, sleeper, &p1, err, sizeof err), 0);
    assert_int_equal(mb_net_spawn(net, 0, quick, &p2, err, sizeof err), 0);
    assert_int_equal(mb_net_spawn(net, 0, bad, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/prog"));
    /* the spawned process is inside edge0's namespace */
    char a[64], b[64], ns[128];
    snprintf(a, sizeof a, "/proc/%d/ns/net", (int)p1);
    snprintf(ns, sizeof ns, "/run/netns/%s", mb_net_netns(net, 1));
    struct stat sa, sb;
    assert_int_equal(stat(a, &sa), 0);
    assert_int_equal(stat(ns, &sb), 0);
    assert_true(sa.st_ino == sb.st_ino);
    (void)b;
    pid_t who = 0;
    int st;
    for (int i = 0; i < 100 && !mb_net_child_exited(net, &who, &st); i++)
        usleep(10000);
    assert_int_equal(who, p2);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* a forked child that exits normally (atexit) or by SIGTERM must not
     * tear down its parent's run */
    pid_t kid = fork();
    if (kid == 0)
        exit(0);
    waitpid(kid, NULL, 0);
    kid = fork();
    if (kid == 0) {
        for (;;)
            pause();
    }
    kill(kid, SIGTERM);
    waitpid(kid, NULL, 0);
    int n_ns, n_if, n_pr;
    mb_run_leftovers(run, &n_ns, &n_if, &n_pr);
    assert_int_equal(n_ns, 2);
    assert_true(udp_reaches(net, 0, 1, 2));
    mb_net_down(net); /* kills the sleeper */
    assert_clean(run);
    assert_int_equal(kill(p1, 0), -1);
}

/* A run killed by SIGTERM cleans up itself; one killed by SIGKILL leaves its
 * namespaces, which mb_clean_leftovers (mecbed clean) removes. */
static void killed_run(int sig)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        static mb_topology t;
        char err[512];
        mb_net *net;
        mb_net_opts o = {.backend = "emu"};
        if (mb_topology_from_link("rate=10mbit,delay=1ms", &t, err, sizeof err) || mb_net_up(&t, &o, &net, err, sizeof err))
            _exit(1);
        char *sleeper[] = {"sleep", "60", NULL};
        mb_net_spawn(net, 1, sleeper, NULL, err, sizeof err);
        if (write(fds[1], mb_net_run_id(net), MB_RUN_ID_LEN) != MB_RUN_ID_LEN)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    char run[MB_RUN_ID_LEN + 1] = "";
    assert_int_equal(read(fds[0], run, MB_RUN_ID_LEN), MB_RUN_ID_LEN);
    close(fds[0]);
    int ns, ifs, procs;
    mb_run_leftovers(run, &ns, &ifs, &procs);
    assert_int_equal(ns, 2);
    assert_int_equal(procs, 1);
    kill(pid, sig);
    waitpid(pid, NULL, 0);
    usleep(100000);
    mb_run_leftovers(run, &ns, &ifs, &procs);
    if (sig == SIGKILL) {
        assert_int_equal(ns, 2); /* nobody could clean up */
        char err[256];
        assert_true(mb_clean_leftovers(0, 0, stdout, err, sizeof err) >= 2);
        usleep(100000);
    } else {
        /* the spawned child dies with its parent (PDEATHSIG), the handler took the rest */
    }
    assert_clean(run);
}

static void test_sigterm_cleans(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    killed_run(SIGTERM);
}

static void test_sigkill_then_clean(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    killed_run(SIGKILL);
}

int main(void)
{
    available = mb_netns_available(why, sizeof why) == 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_route_and_clean),
        cmocka_unit_test(test_dilated_rto_min),
        cmocka_unit_test(test_cpu_latency_held),
        cmocka_unit_test(test_keep_cwnd_after_idle),
        cmocka_unit_test(test_emu_fidelity),
        cmocka_unit_test(test_emu_loss),
        cmocka_unit_test(test_outage_stalls),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_tc_backend),
        cmocka_unit_test(test_spawn_and_child_exit),
        cmocka_unit_test(test_sigterm_cleans),
        cmocka_unit_test(test_sigkill_then_clean),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!available) {
        printf("skip: %s\n", why);
        return 77;
    }
    return rc;
}
