/* mecbed link test: bring up one link between two namespaces through a
 * backend and measure it against its spec. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "mecbed/link.h"
#include "mecbed/linktest.h"
#include "mecbed/netns.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed link test (--link SPEC | --topology FILE [--between A B]) [--link-backend B]\n"
            "                        [--duration S] [--json] [--log-dir DIR] [--seed N]\n"
            "                        [--no-tcp] [--no-udp] [--no-loss]   (skip a phase)\n"
            "                        [-i S] [-R] [--quiet] [-C NAME]\n"
            "       mecbed link check --link SPEC [--link-backend B]   can the backend emulate SPEC here?\n"
            "\n"
            "Brings the link up between two network namespaces (needs root) and measures, from\n"
            "A (the device side) to B: RTT idle and under load (UDP echo), TCP and UDP throughput at\n"
            "the IP layer, loss rate (at least 500 numbered datagrams, counted once the link could have\n"
            "delivered them: an outage delays, it does not lose) and, for a trace, the bytes\n"
            "delivered against the trace's capacity. Prints measured beside configured values.\n"
            "  --link-backend B  the link backend (default %s; --backend: deprecated spelling):\n",
            mb_net_backend_name(0));
    /* every registered backend with its one-line summary */
    for (int i = 0; i < mb_net_backend_count(); i++)
        fprintf(f, "                    %-4s %s\n", mb_net_backend_name(i), mb_net_backend_summary(i));
    fprintf(f, "  --duration S      seconds per throughput phase (default 5)\n"
               "  -i, --interval S  TCP throughput every S seconds of its phase, slow start included\n"
               "                    (as iperf3 -i; JSON: intervals)\n"
               "  -R, --reverse     measure the other direction, B -> A (the downlink; iperf3 -R)\n"
               "  --quiet           no phase progress on stderr\n"
               "  -C, --congestion NAME  TCP congestion control of the TCP phase (as iperf3 -C; default:\n"
               "                    the system's; JSON: tcp_congestion)\n"
               "  --log-dir DIR     emu: per-packet CSV and pcap of each direction into DIR\n"
               "Link specs: docs/link-spec.md. Backends: docs/link-emulation.md.\n");
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isnan(v) || isinf(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void print_json(const mb_net *net, int link, const char *spec_text, const mb_linktest_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", mb_net_backend(net));
    cJSON_AddBoolToObject(o, "cpu_latency_held", mb_net_cpu_latency_held(net));
    cJSON_AddStringToObject(o, "link", spec_text);
    cJSON_AddStringToObject(o, "direction", r->reverse ? "down" : "up");
    if (r->n_intervals) {
        cJSON *iv = cJSON_AddArrayToObject(o, "intervals");
        for (int i = 0; i < r->n_intervals; i++) {
            cJSON *x = cJSON_CreateObject();
            add_num(x, "end_s", r->interval_end_s[i]);
            add_num(x, "throughput_mbps", r->interval_mbps[i]);
            cJSON_AddItemToArray(iv, x);
        }
    }
    add_num(o, "configured_rate_mbps", r->cfg_rate_mbps);
    add_num(o, "configured_rtt_ms", r->cfg_rtt_ms);
    add_num(o, "configured_delay_ms", r->cfg_delay_ms);
    add_num(o, "configured_loss_rate", r->cfg_loss);
    add_num(o, "configured_reorder", r->cfg_reorder);
    add_num(o, "throughput_mbps", r->tcp_mbps);
    add_num(o, "goodput_mbps", r->goodput_mbps);
    if (r->tcp_congestion[0])
        cJSON_AddStringToObject(o, "tcp_congestion", r->tcp_congestion);
    else
        cJSON_AddNullToObject(o, "tcp_congestion");
    add_num(o, "udp_throughput_mbps", r->udp_mbps);
    add_num(o, "udp_offered_mbps", r->udp_offered_mbps);
    add_num(o, "udp_sender_max_lag_ms", r->udp_sender_lag_ms);
    if (!isnan(r->udp_sender_lag_ms))
        cJSON_AddBoolToObject(o, "udp_sender_gso", r->udp_sender_gso);
    add_num(o, "rtt_ms", r->rtt_ms);
    add_num(o, "rtt_min_ms", r->rtt_min_ms);
    add_num(o, "rtt_p95_ms", r->rtt_p95_ms);
    add_num(o, "rtt_load_ms", r->rtt_load_ms);
    add_num(o, "one_way_delay_ms", r->owd_up_ms);
    add_num(o, "one_way_delay_down_ms", r->owd_down_ms);
    add_num(o, "probe_serialization_ms", r->probe_serialization_ms);
    /* measured - ideal per probe (ideal: the wait the rate or the trace's capacity imposes, plus the delay) */
    add_num(o, "one_way_delay_error_ms", r->owd_error_ms);
    add_num(o, "one_way_delay_ideal_ms", r->owd_ideal_ms);
    add_num(o, "one_way_delay_capacity_wait_ms", r->owd_capacity_wait_ms);
    cJSON_AddNumberToObject(o, "rtt_probes", r->rtt_probes);
    cJSON_AddNumberToObject(o, "rtt_probes_lost", r->rtt_lost);
    add_num(o, "loss_rate", r->loss_rate);
    cJSON_AddNumberToObject(o, "loss_datagrams", (double)r->loss_sent);
    cJSON_AddNumberToObject(o, "loss_datagrams_received", (double)r->loss_received);
    cJSON_AddNumberToObject(o, "loss_datagrams_held", (double)r->loss_held);
    cJSON_AddNumberToObject(o, "loss_datagrams_out_of_order", (double)r->loss_out_of_order);
    add_num(o, "loss_wait_s", r->loss_wait_s);
    if (r->loss_drop_random >= 0) {
        cJSON_AddNumberToObject(o, "loss_emulator_random_drops", (double)r->loss_drop_random);
        cJSON_AddNumberToObject(o, "loss_emulator_queue_drops", (double)r->loss_drop_queue);
        cJSON_AddNumberToObject(o, "loss_emulator_outage_drops", (double)r->loss_drop_outage);
    }
    if (r->has_trace) {
        add_num(o, "trace_capacity_bytes", r->trace_capacity_bytes);
        add_num(o, "trace_delivered_bytes", r->trace_delivered_bytes);
        add_num(o, "trace_delivery_ratio", r->trace_ratio);
        /* emu: capacity unused while nothing was queued, and delivery against the rest */
        add_num(o, "trace_idle_capacity_bytes", r->trace_idle_capacity_bytes);
        add_num(o, "trace_delivery_ratio_busy", r->trace_ratio_busy);
    }
    if (r->emu_cpu_percent >= 0) {
        add_num(o, "emulator_cpu_percent", r->emu_cpu_percent);
        /* per direction (fwd: the data, rev: the ACKs), and of each the part inside its TUN
         * writes, where the receiving host's stack runs */
        add_num(o, "emulator_cpu_fwd_percent", r->emu_cpu_fwd_percent);
        add_num(o, "emulator_cpu_fwd_write_percent", r->emu_cpu_fwd_write_percent);
        add_num(o, "emulator_cpu_rev_percent", r->emu_cpu_rev_percent);
        add_num(o, "emulator_cpu_rev_write_percent", r->emu_cpu_rev_write_percent);
    }
    if (r->emu_late_p50_us >= 0) {
        add_num(o, "emulator_late_p50_us", r->emu_late_p50_us);
        add_num(o, "emulator_late_p99_us", r->emu_late_p99_us);
        add_num(o, "emulator_late_max_us", r->emu_late_max_us);
    }
    mb_link_realtime rt;
    if (mb_net_link_realtime(net, link, &rt) == 0) {
        /* a simulated link: valid only if the simulator kept up with real time */
        cJSON_AddBoolToObject(o, "valid", rt.valid);
        cJSON *j = cJSON_AddObjectToObject(o, "realtime");
        cJSON_AddBoolToObject(j, "valid", rt.valid);
        cJSON_AddBoolToObject(j, "simulator_died", rt.died);
        add_num(j, "lag_limit_ms", rt.lag_limit_ms);
        add_num(j, "lag_max_ms", rt.lag_max_ms);
        add_num(j, "lag_p50_ms", rt.lag_p50_ms);
        add_num(j, "lag_p99_ms", rt.lag_p99_ms);
        cJSON_AddNumberToObject(j, "overruns", (double)rt.overruns);
        add_num(j, "simulated_s", rt.sim_s);
        add_num(o, "ns3_radio_energy_j", rt.radio_energy_j);
        add_num(o, "ns3_distance_m", rt.distance_m);
    }
    char *s = cJSON_Print(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

/* "-" for a figure a skipped phase did not measure */
static const char *num(char *buf, size_t len, double v, int decimals)
{
    if (isnan(v))
        return "-";
    snprintf(buf, len, "%.*f", decimals, v);
    return buf;
}

static void print_text(const mb_net *net, int link, const char *a, const char *b, const mb_linktest_result *r)
{
    char b1[32], b2[32], b3[32], b4[32];
    printf("link %s -> %s%s, backend %s (run %s)\n", r->reverse ? b : a, r->reverse ? a : b,
           r->reverse ? " (reverse: the downlink)" : "", mb_net_backend(net), mb_net_run_id(net));
    for (int i = 0; i < r->n_intervals; i++)
        printf("  [%6.2f-%6.2f s] TCP %9.3f Mbit/s\n", i ? r->interval_end_s[i - 1] : 0.0, r->interval_end_s[i],
               r->interval_mbps[i]);
    printf("  %-22s %-14s %s\n", "", "configured", "measured");
    char cfg[64];
    if (r->cfg_rate_mbps > 0)
        snprintf(cfg, sizeof cfg, "%.3f", r->cfg_rate_mbps);
    else
        snprintf(cfg, sizeof cfg, "%s", r->has_trace ? "trace" : "unlimited");
    printf("  %-22s %-14s TCP %s (goodput %s), UDP %s (sender offered %s)\n", "throughput (Mbit/s)", cfg,
           num(b1, sizeof b1, r->tcp_mbps, 3), num(b2, sizeof b2, r->goodput_mbps, 3), num(b3, sizeof b3, r->udp_mbps, 3),
           num(b4, sizeof b4, r->udp_offered_mbps, 3));
    printf("  %-22s %-14.3f idle %.3f (min %.3f, p95 %.3f; %d/%d probes lost), under TCP load %s\n",
           "RTT (ms)", r->cfg_rtt_ms, r->rtt_ms, r->rtt_min_ms, r->rtt_p95_ms, r->rtt_lost, r->rtt_probes,
           num(b4, sizeof b4, r->rtt_load_ms, 3));
    printf("  %-22s %-14.3f %.3f (ideal %.3f: +%.3f waiting for %s; error %+.3f), down %.3f\n",
           "one-way delay (ms)", r->cfg_delay_ms, r->owd_up_ms, r->owd_ideal_ms, r->owd_capacity_wait_ms,
           r->has_trace ? "the trace's capacity" : "the probe's transmission", r->owd_error_ms, r->owd_down_ms);
    if (!mb_net_cpu_latency_held(net))
        printf("  %-22s %-14s CPUs may sleep in deep idle states (MECBED_CPU_LATENCY=system, or not root): "
               "wake-ups add to the delays\n", "", "");
    printf("  %-22s %-14.4f %s (%ld datagrams, %ld received, %ld still held when the wait ended)\n", "loss rate",
           r->cfg_loss, num(b1, sizeof b1, r->loss_rate, 4), r->loss_sent, r->loss_received, r->loss_held);
    if (r->loss_drop_random >= 0)
        printf("  %-22s %-14s random %ld, queue %ld, outage %ld (drops by the emulator in the loss phase)\n", "", "",
               r->loss_drop_random, r->loss_drop_queue, r->loss_drop_outage);
    if (r->loss_sent > 0)
        printf("  %-22s %-14.4f %ld datagrams arrived after a higher-numbered one\n", "out of order",
               r->cfg_reorder, r->loss_out_of_order);
    if (r->has_trace && !isnan(r->trace_ratio))
        printf("  %-22s %-14.0f %.0f bytes delivered (%.2f %%)\n", "trace capacity (bytes)", r->trace_capacity_bytes,
               r->trace_delivered_bytes, r->trace_ratio * 100);
    if (r->has_trace && !isnan(r->trace_ratio_busy))
        printf("  %-22s %-14s %.2f %% of the capacity while the sender kept the link busy (%.0f bytes passed "
               "with nothing queued)\n", "", "", r->trace_ratio_busy * 100, r->trace_idle_capacity_bytes);
    if (r->emu_cpu_percent >= 0)
        printf("  emulator CPU during the TCP phase: %.1f %% of one core (data direction %.1f %%, of which %.1f %% "
               "in TUN writes, i.e. the receiver's stack; ACK direction %.1f %%, %.1f %% in writes)\n",
               r->emu_cpu_percent, r->emu_cpu_fwd_percent, r->emu_cpu_fwd_write_percent, r->emu_cpu_rev_percent,
               r->emu_cpu_rev_write_percent);
    if (r->emu_late_p50_us >= 0)
        printf("  emulator timer error (delivery written after its due time): median %.0f us, p99 %.0f us, max %.0f us\n",
               r->emu_late_p50_us, r->emu_late_p99_us, r->emu_late_max_us);
    mb_link_realtime rt;
    if (mb_net_link_realtime(net, link, &rt) == 0) {
        printf("  real time: %s (simulator lag max %.3f ms, p99 %.3f ms, limit %.3f ms; %llu overruns)\n",
               rt.valid  ? "kept up"
               : rt.died ? "the simulator process DIED: this measurement is invalid"
                         : "FELL BEHIND: this measurement is invalid",
               rt.lag_max_ms, rt.lag_p99_ms,
               rt.lag_limit_ms, rt.overruns);
        if (!isnan(rt.radio_energy_j))
            printf("  ns-3 Wi-Fi radio energy (device side): %.3f J over %.1f s simulated\n", rt.radio_energy_j,
                   rt.sim_s);
    }
}

/* Each phase on stderr as it starts: a test takes tens of seconds. */
static void on_phase(void *arg, const char *phase, double seconds)
{
    (void)arg;
    fprintf(stderr, "mecbed link test: %s (%.0f s)\n", phase, seconds);
}

/* The link to measure: the one joining --between's two nodes, else the
 * first; -1 (said on stderr) when there is none. */
static int pick_link(const mb_topology *topo, const char *between_a, const char *between_b)
{
    if (!between_a) {
        if (topo->n_links < 1)
            fprintf(stderr, "mecbed link: the topology has no link\n");
        return topo->n_links < 1 ? -1 : 0;
    }
    int a = mb_topology_find(topo, between_a), b = mb_topology_find(topo, between_b);
    if (a < 0 || b < 0) {
        fprintf(stderr, "mecbed link: no node named '%s'\n", a < 0 ? between_a : between_b);
        return -1;
    }
    int link = mb_topology_link_between(topo, a, b);
    if (link < 0)
        fprintf(stderr, "mecbed link: no link joins %s and %s\n", between_a, between_b);
    return link;
}

int cmd_link(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "test") && strcmp(sub, "check")) {
        fprintf(stderr, "mecbed link: unknown sub-command '%s' (test, check)\n", sub);
        return 2;
    }
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},          {"link", required_argument, 0, 'l'},
        {"topology", required_argument, 0, 't'}, {"between", required_argument, 0, 'w'},
        {"link-backend", required_argument, 0, 'B'}, {"backend", required_argument, 0, 'b'},
        {"duration", required_argument, 0, 'd'},
        {"json", no_argument, 0, 'j'},          {"log-dir", required_argument, 0, 'L'},
        {"seed", required_argument, 0, 's'},    {"no-tcp", no_argument, 0, 'T'},
        {"no-udp", no_argument, 0, 'U'},        {"no-loss", no_argument, 0, 'X'},
        {"interval", required_argument, 0, 'i'}, {"reverse", no_argument, 0, 'R'},
        {"quiet", no_argument, 0, 'q'},         {"congestion", required_argument, 0, 'C'},
        {0, 0, 0, 0}};
    const char *spec = NULL, *topo_file = NULL, *backend = "emu", *log_dir = NULL, *between_a = NULL,
               *between_b = NULL;
    double duration = 5;
    int json = 0, c, no_tcp = 0, no_udp = 0, no_loss = 0, quiet = 0;
    mb_linktest_opts lo = {0};
    unsigned long long seed = 1;
    optind = 1;
    argc--, argv++;
    while ((c = getopt_long(argc, argv, "hi:RqC:", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'l': spec = optarg; break;
        case 't': topo_file = optarg; break;
        case 'w':
            between_a = optarg;
            if (optind >= argc) {
                fprintf(stderr, "mecbed link: --between needs two node names\n");
                return 2;
            }
            between_b = argv[optind++];
            break;
        case 'B': backend = optarg; break;
        case 'b': /* the old spelling, kept for a release */
            mb_cli_deprecated("backend", "link-backend");
            backend = optarg;
            break;
        case 'd':
            duration = strtod(optarg, &end);
            if (*end || !(duration >= 0.5 && duration <= 3600)) {
                fprintf(stderr, "mecbed link: --duration %s: seconds within 0.5..3600\n", optarg);
                return 2;
            }
            break;
        case 'j': json = 1; break;
        case 'T': no_tcp = 1; break;
        case 'R': lo.reverse = 1; break;
        case 'q': quiet = 1; break;
        case 'C':
            if (strlen(optarg) == 0 || strlen(optarg) >= 16) {
                fprintf(stderr, "mecbed link: --congestion '%s': a TCP congestion control name, e.g. cubic\n", optarg);
                return 2;
            }
            lo.congestion = optarg;
            break;
        case 'i':
            lo.interval_s = strtod(optarg, &end);
            if (*end || !(lo.interval_s >= 0.1 && lo.interval_s <= 60)) {
                fprintf(stderr, "mecbed link: --interval %s: seconds within 0.1..60\n", optarg);
                return 2;
            }
            break;
        case 'U': no_udp = 1; break;
        case 'X': no_loss = 1; break;
        case 'L': log_dir = optarg; break;
        case 's':
            seed = strtoull(optarg, &end, 0);
            if (*end) {
                fprintf(stderr, "mecbed link: --seed %s: not an integer\n", optarg);
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed link: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!!spec == !!topo_file) {
        fprintf(stderr, "mecbed link %s: give --link SPEC or --topology FILE\n", sub);
        return 2;
    }
    char err[1024];
    static mb_topology topo;
    if (spec ? mb_topology_from_link(spec, &topo, err, sizeof err) : mb_topology_read(topo_file, &topo, err, sizeof err)) {
        fprintf(stderr, "mecbed link: %s\n", err);
        return 2;
    }
    int link = pick_link(&topo, between_a, between_b);
    if (link < 0)
        return 2;
    for (int i = 0; i < topo.n_links; i++)
        if (mb_net_check(backend, &topo.links[i].spec, err, sizeof err)) {
            fprintf(stderr, "mecbed link: %s\n", err);
            return 1;
        }
    if (!strcmp(sub, "check")) {
        if (json)
            printf("{\"backend\": \"%s\", \"ok\": true}\n", backend);
        else
            printf("backend %s can emulate this link here\n", backend);
        return 0;
    }
    if (log_dir && mkdir(log_dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "mecbed link: --log-dir %s: %s\n", log_dir, strerror(errno));
        return 1;
    }
    mb_net *net;
    mb_net_opts no = {.backend = backend, .log_dir = log_dir, .seed = seed};
    if (mb_net_up(&topo, &no, &net, err, sizeof err)) {
        fprintf(stderr, "mecbed link: %s\n", err);
        return 1;
    }
    lo.duration_s = duration, lo.no_tcp = no_tcp, lo.no_udp = no_udp, lo.no_loss = no_loss;
    if (!quiet)
        lo.progress = on_phase;
    mb_linktest_result r;
    int rc = mb_link_test(net, link, &lo, &r, err, sizeof err);
    if (rc) {
        fprintf(stderr, "mecbed link: %s\n", err);
    } else {
        char text[2048];
        if (mb_linkspec_format(&topo.links[link].spec, text, sizeof text) < 0)
            snprintf(text, sizeof text, "%s", spec ? spec : "");
        if (json)
            print_json(net, link, text, &r);
        else
            print_text(net, link, topo.sites[topo.links[link].a].name, topo.sites[topo.links[link].b].name, &r);
    }
    mb_net_down(net);
    return rc ? 1 : 0;
}
