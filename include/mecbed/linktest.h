/* mecbed: measuring an emulated link against its spec (`mecbed link test`,
 * `make bench-net`). Our own probes, in threads whose sockets live in the two
 * nodes' namespaces: UDP echo for RTT (idle and under load), a bulk TCP flow
 * and a paced UDP flow for throughput, numbered UDP datagrams for loss, and
 * for trace-driven links the bytes delivered against the trace's capacity. */
#ifndef MECBED_LINKTEST_H
#define MECBED_LINKTEST_H

#include "mecbed/link.h"

typedef struct mb_linktest_opts {
    double duration_s;   /* per throughput phase (default 5) */
    int no_tcp, no_udp, no_loss;
    int reverse;         /* measure b -> a (the downlink; iperf3 -R) instead of a -> b */
    double interval_s;   /* > 0: TCP throughput samples every interval (iperf3 -i) */
    const char *congestion; /* TCP congestion control of the TCP phase (iperf3 -C); NULL: the system's */
    /* Called as each phase starts (its name, its expected length in s); may be NULL. */
    void (*progress)(void *arg, const char *phase, double seconds);
    void *progress_arg;
} mb_linktest_opts;

#define MB_LINKTEST_MAX_INTERVALS 1200

/* Throughputs are at the IP layer (what the emu backend shapes; for tc the
 * shaper also counts the 14-byte Ethernet header, so IP throughput is 1500/1514
 * of the rate for full-size packets), measured at the receiver over the phase
 * minus its first second (TCP slow start). Direction: site a -> site b. */
typedef struct mb_linktest_result {
    int reverse;             /* 1: "a -> b" below is the link's b -> a (the downlink) */
    double cfg_rate_mbps;    /* a -> b (0: unlimited or trace) */
    double cfg_rtt_ms, cfg_delay_ms, cfg_loss;
    double cfg_reorder;      /* a -> b: the fraction that skips the delay (reorder=) */
    double rtt_ms, rtt_min_ms, rtt_p95_ms; /* idle, small UDP probes */
    int rtt_probes, rtt_lost;
    double rtt_load_ms;       /* median during the TCP phase */
    /* one-way delays of the idle probes (median; both namespaces share the
     * monotonic clock, so these are exact), and the probe's own transmission
     * time at the configured a -> b rate, which an ideal link adds */
    double owd_up_ms, owd_down_ms, probe_serialization_ms;
    /* what an ideal link gives each idle probe a -> b: its wait for capacity
     * (a trace's: replayed on the trace from the probe's send time; a rate's:
     * its serialisation) plus the delay. owd_error_ms is the median of
     * measured - ideal per probe, so waiting for a trace's capacity is not an
     * error; owd_capacity_wait_ms is the median wait (the queueing the link
     * itself imposes) */
    double owd_ideal_ms, owd_error_ms, owd_capacity_wait_ms;
    double tcp_mbps, goodput_mbps, udp_mbps;
    char tcp_congestion[16];  /* the TCP phase's congestion control ("" when it did not run) */
    double udp_offered_mbps;  /* what the UDP sender got into the link (below the rate: sender-limited) */
    /* a -> b, from numbered datagrams (at least 500, over the phase's
     * duration) of 200 bytes at up to half the rate; counted after the link
     * could have delivered them all, so datagrams a trace's outage holds are
     * late, not lost; those still due when the wait ends (60 s at most) are
     * loss_held and left out */
    double loss_rate;
    long loss_sent, loss_received, loss_held;
    long loss_out_of_order;   /* datagrams that arrived after a higher-numbered one (reorder=; iperf3's count) */
    double loss_wait_s;
    /* emu: the link's own drops during the loss phase, by cause (-1: n/a) */
    long loss_drop_random, loss_drop_queue, loss_drop_outage;
    int has_trace;
    double trace_delivered_bytes, trace_capacity_bytes, trace_ratio;
    /* emu: the capacity that passed while the bottleneck had nothing queued
     * (the sender's gaps) in the same window, and delivery against the
     * capacity of the rest (the time the sender kept the link busy) */
    double trace_idle_capacity_bytes, trace_ratio_busy;
    double udp_sender_lag_ms; /* the most the UDP sender fell behind its schedule */
    int udp_sender_gso;       /* it sent with UDP GSO (UDP_SEGMENT) */
    double emu_cpu_percent;   /* emulator threads of this link during the TCP phase, % of one core (-1: n/a) */
    /* per direction: fwd carries the data (a -> b), rev the ACKs; of each,
     * the part spent inside its writes to the receiving TUN device, where the
     * receiving host's network stack runs (-1: n/a) */
    double emu_cpu_fwd_percent, emu_cpu_fwd_write_percent, emu_cpu_rev_percent, emu_cpu_rev_write_percent;
    /* emu: how late the a -> b emulator wrote packets after their computed
     * delivery time over the whole test (its timer error; -1: n/a) */
    double emu_late_p50_us, emu_late_p99_us, emu_late_max_us;
    /* opts.interval_s: the TCP phase's throughput at the IP layer in each
     * interval from the phase's start (slow start included) */
    int n_intervals;
    double interval_end_s[MB_LINKTEST_MAX_INTERVALS], interval_mbps[MB_LINKTEST_MAX_INTERVALS];
} mb_linktest_result;

int mb_link_test(mb_net *net, int link, const mb_linktest_opts *o, mb_linktest_result *r, char *err, size_t errlen);

#endif
