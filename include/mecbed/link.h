/* mecbed: a topology brought up as real, emulated networks (docs/link-emulation.md).
 *
 *   mb_net *net;
 *   mb_net_opts o = {.backend = "emu", .log_dir = "out/"};
 *   if (mb_net_up(&topo, &o, &net, err, sizeof err)) ...
 *   mb_net_spawn(net, edge, argv, &pid, err, sizeof err);   // runs inside edge's namespace
 *   ... connect to mb_net_addr(net, edge) from the device's namespace ...
 *   mb_net_down(net);                                       // everything removed
 *
 * Each node (site) without an address= gets a network namespace
 * "mecbed-<run>-<node>"; each link a point-to-point subnet 10.201.<link>.0/30
 * (10.<addr_octet>.<link>.0/30 for a run nested in another: mb_net_opts)
 * (A side .1, B side .2) on interfaces "mb<run>a<link>" / "mb<run>b<link>";
 * routes let every node reach every other over links only (fewest hops).
 * How a link shapes traffic is its backend's business:
 *   emu  our user-space emulator: a TUN device on each side, a thread per
 *        direction (rate, trace, delay, jitter, loss, queue, AQM; per-packet
 *        CSV and pcap logs)
 *   tc   veth pairs with kernel qdiscs (netem where the kernel has it, else
 *        tbf for rate only)
 *   ns3  ns-3 simulated links in real time (point-to-point, Wi-Fi) through a
 *        helper program, mecbed-ns3, built when libns3-dev is installed
 *        (docs/ns3.md)
 * Everything is registered for clean-up: mb_net_down, exit, SIGINT/SIGTERM. */
#ifndef MECBED_LINK_H
#define MECBED_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mecbed/topology.h"

typedef struct mb_net mb_net;

typedef struct mb_net_opts {
    const char *backend;  /* "emu" (default), "tc", "ns3" */
    const char *run_id;   /* NULL: a fresh one (6 chars [0-9a-z]) */
    const char *log_dir;  /* NULL: no per-packet logs; else CSV + pcap per link direction (emu) */
    uint64_t seed;        /* loss and jitter random streams (0: 1) */
    /* The run's time dilation factor (0 or 1: none). The links' specs are
     * already dilated by the caller (mb_linkspec_dilate); this only
     * stretches TCP's own clocks to match: every route gets rto_min
     * 200 ms x tdf. */
    double tdf;
    /* 1: TCP keeps its congestion window across idle periods in the
     * namespaces the run makes (net.ipv4.tcp_slow_start_after_idle = 0),
     * as persistent connections of latency-sensitive services are tuned;
     * 0: the kernel's default (a connection idle past its RTO restarts
     * from a smaller window). */
    int keep_cwnd_after_idle;
    /* Nesting (a `mecbed shell` inside another's COMMAND): when host_netns
     * is set, site host_site is that existing namespace (neither created,
     * configured nor removed), and the links' subnets are
     * 10.<addr_octet>.<link>.0/30 (addr_octet 0: 201) so they do not clash
     * with the outer run's. */
    const char *host_netns;
    int host_site;
    int addr_octet;
} mb_net_opts;

/* The link-backend registry (netem/backend.h's table), the default first.
 * Help text and validation enumerate it instead of naming backends. */
int mb_net_backend_count(void);
const char *mb_net_backend_name(int i);
const char *mb_net_backend_summary(int i);
/* The link-spec keys beyond the generic grammar backend i reads,
 * NULL-terminated (NULL: none). */
const char *const *mb_net_backend_keys(int i);
/* Names of the link backends compiled in, NULL-terminated. */
const char *const *mb_net_backends(void);
/* The names joined by sep into buf ("emu, tc, ns3"); returns buf. */
const char *mb_net_backend_list(char *buf, size_t len, const char *sep);
/* The backends' judgement of spec->extra (core's parser calls it: netem
 * installs it with mb_linkspec_set_extra_check when linked in): every key
 * must be declared by a backend, all by the same one, whose validate() then
 * checks them. 0, or -1 with a message naming the key. */
int mb_net_check_spec_keys(const mb_link_spec *spec, char *err, size_t errlen);
/* Can `backend` emulate `spec` on this machine? 0, or -1 with the reason
 * (e.g. "this kernel has no netem: use --backend emu"; another backend's
 * spec keys name that backend). Creates nothing. */
int mb_net_check(const char *backend, const mb_link_spec *spec, char *err, size_t errlen);

int mb_net_up(const mb_topology *t, const mb_net_opts *o, mb_net **out, char *err, size_t errlen);
/* Stops emulators, kills spawned processes, removes namespaces, interfaces,
 * qdiscs and the owner file. Safe on NULL. */
void mb_net_down(mb_net *net);

const char *mb_net_run_id(const mb_net *net);
/* 1 while the run holds every CPU's wake-up latency at zero (a PM QoS
 * request, so packets are not delayed by CPUs leaving deep idle states;
 * MECBED_CPU_LATENCY=system: not requested), 0 where it could not. */
int mb_net_cpu_latency_held(const mb_net *net);
const char *mb_net_backend(const mb_net *net);
const mb_topology *mb_net_topology(const mb_net *net);
/* Namespace of a site ("" for a site given by address=). */
const char *mb_net_netns(const mb_net *net, int site);
/* The IPv4 address other nodes reach the site at (dotted quad). */
const char *mb_net_addr(const mb_net *net, int site);
/* Interface names of a link: side 0 is in site a's namespace, side 1 in b's. */
const char *mb_net_ifname(const mb_net *net, int link, int side);
/* The address, as site `from` sees it, of its neighbour on the fewest-hops
 * path towards site `to` (the gateway to add for a route); NULL when there
 * is none (same site, unreachable, or a site without namespace). */
const char *mb_net_next_hop(const mb_net *net, int from, int to);
/* Monotonic time (mb_now() clock) at which the links started: trace time 0. */
double mb_net_epoch(const mb_net *net);

/* Run argv inside the site's namespace (fork, setns, execvp); registered for
 * clean-up. */
int mb_net_spawn(mb_net *net, int site, char *const argv[], pid_t *pid, char *err, size_t errlen);
/* Non-blocking: if a spawned process has exited, return 1 with its pid and
 * wait status (it is then forgotten); 0 if all are running. */
int mb_net_child_exited(mb_net *net, pid_t *pid, int *status);
/* A socket created inside the site's namespace (usable from any thread). */
int mb_net_socket(const mb_net *net, int site, int domain, int type, int protocol);
/* Run fn(arg) with the calling thread inside the site's namespace. */
int mb_net_in_site(const mb_net *net, int site, int (*fn)(void *), void *arg);

/* Per-direction counters of a link (dir 0: a -> b "up", 1: b -> a "down"). */
typedef struct mb_link_counters {
    uint64_t in_packets, in_bytes;         /* offered to the link */
    uint64_t out_packets, out_bytes;       /* delivered */
    uint64_t drop_loss, drop_queue, drop_aqm, drop_outage;
    uint64_t duplicated, corrupted;        /* extra copies delivered; packets with a bit flipped */
    uint64_t reordered;                    /* packets that skipped the delay (reorder=) */
    double cpu_s;                          /* CPU time of the emulator thread */
    double cpu_write_s;                    /* of which inside its writes to the receiving TUN device,
                                            * where the receiver's network stack runs (what a NIC's
                                            * receive path costs the receiving host) */
    double idle_capacity_bytes;            /* capacity (rate or trace) that passed while the
                                            * bottleneck had nothing queued: the sender's gaps */
    /* timer accuracy: how late packets were written after their computed
     * delivery time (the emulator's own error, apart from the probes') */
    double late_mean_us, late_p50_us, late_p99_us, late_max_us;
} mb_link_counters;
/* 0, or -1 when the backend keeps no counters (tc, ns3). */
int mb_net_link_counters(const mb_net *net, int link, int dir, mb_link_counters *c);

/* A simulated link (ns3 backend) is only faithful while the simulator keeps
 * up with the wall clock: its real-time lag (wall clock minus simulation
 * clock at each frame written out and every 10 ms) since the link started. */
typedef struct mb_link_realtime {
    int valid;               /* 0: the lag went past the limit (or the simulator died): invalid */
    int died;                /* the simulator process ended before the link was taken down */
    double sim_s;            /* simulated seconds so far */
    double lag_limit_ms, lag_max_ms, lag_p50_ms, lag_p99_ms;
    unsigned long long overruns; /* 10 ms checks that found the lag past the limit */
    double radio_energy_j;   /* ns-3's Wi-Fi radio energy model, device (side a) radio; NAN if none */
    double distance_m;       /* Wi-Fi: current distance between the two ends; NAN if none */
} mb_link_realtime;
/* 0, or -1 when the link is not simulated (emu, tc) or has not reported yet. */
int mb_net_link_realtime(const mb_net *net, int link, mb_link_realtime *r);

/* 1 if this kernel can run a netem qdisc (tried once in a throw-away
 * namespace; the tc backend needs it for delay, jitter and loss). */
int mb_tc_has_netem(void);

#endif
