/* mecbed: the cost model every policy plans with and every plan is judged by.
 *
 *  op time on a site     = profile_ms(op) * factor(site's node type) * scale(site)
 *                          (a region costs its share of the op's output elements)
 *  transfer of b bytes   = b / goodput + one-way delay + per-message overhead, per
 *    from -> to            direction, hop by hop along the topology's links,
 *                          forwarded packet by packet (cut-through: a hop starts
 *                          once the first 1500-byte packet is over the last one
 *                          and ends no sooner than the previous hop's last
 *                          packet plus its own serialisation, so the slowest
 *                          hop sets the pace; one hop: the formula above)
 *  energy                = see energy.h and mb_plan_evaluate below.
 *
 * The rate and delay of a direction come from its link spec (rate=, delay= or
 * rtt=/2). A spec with only trace= uses the trace's mean rate over one
 * period; a spec without rate (unlimited) counts as 10 Gbit/s. The goodput of
 * a shaped rate is rate * (mtu - 52) / mtu: the emulators shape IP packets and
 * every 1500-byte packet carries 52 bytes of TCP/IP headers. A rate set later
 * with mb_cost_set_rate is a measured goodput and is used as it is. */
#ifndef MECBED_COST_H
#define MECBED_COST_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/energy.h"
#include "mecbed/graph.h"
#include "mecbed/nodetype.h"
#include "mecbed/plan.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"

/* Per-message overhead default: syscalls and the receiver's wake-up for one
 * message over TCP, half the median round trip of a 64-byte ping-pong over
 * loopback measured on the project machine (17.6 us; docs/policies.md,
 * "Transfers"). Emulated links add their own forwarding cost: calibrate
 * with --msg-overhead from a measured run. */
#define MB_COST_MSG_OVERHEAD_MS 0.009
/* Rate used for a direction whose spec sets none. */
#define MB_COST_UNLIMITED_BPS 10e9

typedef struct mb_cost_opts {
    double msg_overhead_ms;  /* < 0: MB_COST_MSG_OVERHEAD_MS */
    double frame_interval_s; /* 0: one frame, radio connected (energy.h) */
    int radio;               /* device radio, mb_radio_kind; -1: the device's node type decides */
    /* 1: the plan's messages between each pair of sites travel on a connection
     * that has carried nothing yet (a session's first frame, e.g. a
     * generation's prefill), so they start in TCP slow start: an initial
     * window of 10 segments doubling every round trip until it fills the
     * path (mb_cost_slow_start_ms); 0 (default): connections are warm. */
    int cold_connections;
} mb_cost_opts;

void mb_cost_opts_default(mb_cost_opts *o);

typedef struct mb_cost_model mb_cost_model;

/* Copies what it needs from t, p and types (they may be freed after); g must
 * outlive the model. Errors: a site whose node type is unknown, a profile
 * for another graph, a link direction with neither rate nor trace mean. */
mb_cost_model *mb_cost_new(const mb_graph *g, const mb_topology *t, const mb_profile *p,
                           const mb_nodetype_set *types, const mb_cost_opts *opts, char *err,
                           size_t errlen);
void mb_cost_free(mb_cost_model *c);

const mb_graph *mb_cost_graph(const mb_cost_model *c);
const mb_topology *mb_cost_topology(const mb_cost_model *c);
const mb_nodetype *mb_cost_site_type(const mb_cost_model *c, int site);
/* profile ms -> site ms multiplier, including the scale below. */
double mb_cost_site_factor(const mb_cost_model *c, int site);
/* Extra multiplier on a site's op times (1 by default). DDS uses 1/share of
 * a server; heavy-load modes use it for a loaded node. */
void mb_cost_set_site_scale(mb_cost_model *c, int site, double scale);

double mb_cost_op_ms(const mb_cost_model *c, int site, int op);
double mb_cost_region_ms(const mb_cost_model *c, int site, int op, mb_region r);
/* 0 when from == to; INFINITY when no route exists. */
double mb_cost_xfer_ms(const mb_cost_model *c, int from, int to, int64_t bytes);
/* Bottleneck rate (bit/s) and summed one-way delay (ms) along the route. */
double mb_cost_rate_bps(const mb_cost_model *c, int from, int to);
double mb_cost_delay_ms(const mb_cost_model *c, int from, int to);
/* Route as a list of sites from..to (inclusive); returns its length (0: none). */
int mb_cost_route(const mb_cost_model *c, int from, int to, int *sites, int max);

/* Changed conditions (replanning, sweeps): set a link's spec or just rates. */
int mb_cost_set_link(mb_cost_model *c, int link, const mb_link_spec *spec, char *err, size_t errlen);
void mb_cost_set_rate(mb_cost_model *c, int link, double up_bps, double down_bps);
/* TCP payload rate of a link shaped to link_bps with packets of mtu bytes
 * (0: 1500); what mb_cost_set_rate wants for a nominal link rate. */
double mb_cost_goodput_bps(double link_bps, int mtu);

/* What TCP slow start adds to sending `bytes` back to back from a cold
 * connection over a path of rate_bps and round trip rtt_ms: flights of 10,
 * 20, 40, ... segments of 1448 bytes, each waiting a round trip for its
 * acknowledgements, until a window fills the path; then the rate. The time
 * beyond bytes / rate, in ms (0 when the first window covers it). */
double mb_cost_slow_start_ms(int64_t bytes, double rate_bps, double rtt_ms);

/* Simulate the plan's schedule and fill p->pred (all but decision_us and
 * cut_value_ms) and every step's t_start_ms/t_end_ms:
 *  - each site runs its COMPUTE steps one at a time in plan order, a step
 *    starting when its inputs are on that site;
 *  - each link direction carries one message at a time in plan order; a SEND
 *    starts when its region is on the sender and arrives after
 *    mb_cost_xfer_ms, hop by hop;
 *  - latency: when the last graph output is on the device (plus a radio
 *    promotion when the frame interval lets the radio fall idle);
 *  - device energy: compute_w x busy + idle_w x (latency - busy) + radio
 *    energy of the device's sends and receives (energy.h);
 *  - system energy: the same compute/idle sum over every site, plus the
 *    device's radio.
 * Returns 0, or -1 with err if a step references an unknown site or op. */
int mb_plan_evaluate(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen);
/* The same, with the plan's shares (mb_plan.share): a site's compute steps
 * last 1 / share times as long, as a node serving several devices runs a
 * device holding that share of it (DDS's model: server times scale with
 * 1 / share). Equal to mb_plan_evaluate for a plan without shares. */
int mb_plan_evaluate_shared(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen);

/* Payload bytes the plan's SEND steps put on each topology link per frame,
 * both directions together, hop by hop along mb_cost_route (what
 * mb_plan_evaluate charges each link): per_link[0..topology's n_links).
 * 0, or -1 with err when a send has no route. */
int mb_plan_link_bytes(const mb_plan *p, const mb_cost_model *c, int64_t *per_link, char *err, size_t errlen);

#endif
