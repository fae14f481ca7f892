/* The cost model (cost.h): op times from a profile scaled per node type,
 * transfers hop by hop (cut-through), and the schedule simulation that predicts a plan's
 * latency, energy and bytes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/cost.h"
#include "mecbed/trace.h"
#include "mecbed/regionset.h"

struct mb_cost_model {
    const mb_graph *g;
    mb_topology topo;
    double *prof_ms;
    double ref_gflops;
    mb_nodetype type[MB_MAX_SITES];
    double factor[MB_MAX_SITES], scale[MB_MAX_SITES];
    double rate[MB_MAX_LINKS][2];  /* bit/s; [0] a -> b, [1] b -> a */
    double delay[MB_MAX_LINKS][2]; /* ms */
    signed char next[MB_MAX_SITES][MB_MAX_SITES]; /* next hop on the fewest-hop route, -1 none */
    mb_cost_opts opts;
    const mb_radio_model *radio;
};

void mb_cost_opts_default(mb_cost_opts *o)
{
    o->msg_overhead_ms = -1;
    o->frame_interval_s = 0;
    o->radio = -1;
    o->cold_connections = 0;
}

double mb_cost_slow_start_ms(int64_t bytes, double rate_bps, double rtt_ms)
{
    const double iw = 10 * 1448.0; /* Linux's initial window (RFC 6928) of full segments */
    if (bytes <= 0 || !(rate_bps > 0) || !(rtt_ms > 0))
        return 0;
    double ms_per_byte = 8.0 / rate_bps * 1e3, sent = 0, cwnd = iw, t = 0, x = (double)bytes;
    while (sent < x) {
        if (cwnd * ms_per_byte >= rtt_ms) { /* the window fills the path: the rate from here */
            t += (x - sent) * ms_per_byte;
            break;
        }
        double flight = fmin(cwnd, x - sent);
        sent += flight;
        t += sent < x ? rtt_ms : flight * ms_per_byte; /* the last flight needs no acknowledgement */
        cwnd *= 2;
    }
    double extra = t - x * ms_per_byte;
    return extra > 0 ? extra : 0;
}

/* The round trip, the one-way delay and the bottleneck rate of a route. */
static void route_rtt_rate(const mb_cost_model *c, const int *route, int n, double *rtt_ms, double *one_way_ms,
                           double *rate_bps);

/* Bytes of TCP/IPv4 headers per packet (20 IP + 20 TCP + 12 timestamp
 * option). The emulators shape whole IP packets, so a payload of b bytes
 * occupies b * mtu / (mtu - 52) bytes of the link: 3.6 % more at mtu 1500,
 * measured as exactly the gap between predicted and measured transfers. */
#define TCPIP_HEADER_BYTES 52

double mb_cost_goodput_bps(double link_bps, int mtu)
{
    if (mtu <= 0)
        mtu = 1500;
    if (mtu <= 2 * TCPIP_HEADER_BYTES || !isfinite(link_bps))
        return link_bps;
    return link_bps * (double)(mtu - TCPIP_HEADER_BYTES) / (double)mtu;
}

static int dir_params(const mb_link_dir *d, int mtu, double *rate, double *delay_ms, const char *what,
                      char *err, size_t errlen)
{
    if (d->rate_bps > 0)
        *rate = d->rate_bps;
    else if (d->trace[0]) {
        /* plan mode plans for the trace's mean rate over one period */
        char e2[512];
        mb_trace *tr = mb_trace_read_src(d->trace, &d->trace_src, e2, sizeof(e2));
        if (!tr) {
            snprintf(err, errlen, "%s: %s", what, e2);
            return -1;
        }
        double mean = tr->period_ns > 0 ? mb_trace_capacity_ns(tr, 0, tr->period_ns, 0) * 8e9 / (double)tr->period_ns
                                        : 0;
        mb_trace_free(tr);
        if (!(mean > 0)) {
            snprintf(err, errlen, "%s: trace %s has no capacity (mean rate 0)", what, d->trace);
            return -1;
        }
        *rate = mean;
    } else {
        *rate = MB_COST_UNLIMITED_BPS;
        *delay_ms = d->delay_s * 1e3;
        return 0;
    }
    *rate = mb_cost_goodput_bps(*rate, mtu);
    *delay_ms = d->delay_s * 1e3;
    return 0;
}

static void compute_routes(mb_cost_model *c)
{
    int n = c->topo.n_sites;
    memset(c->next, -1, sizeof(c->next));
    for (int s = 0; s < n; s++) {
        /* BFS from s; first hop of each reached site. */
        int queue[MB_MAX_SITES], first[MB_MAX_SITES], seen[MB_MAX_SITES] = {0};
        int qh = 0, qt = 0;
        queue[qt++] = s;
        seen[s] = 1;
        first[s] = s;
        while (qh < qt) {
            int u = queue[qh++];
            for (int l = 0; l < c->topo.n_links; l++) {
                int a = c->topo.links[l].a, b = c->topo.links[l].b;
                int v = a == u ? b : b == u ? a : -1;
                if (v < 0 || seen[v])
                    continue;
                seen[v] = 1;
                first[v] = u == s ? v : first[u];
                queue[qt++] = v;
            }
        }
        for (int t = 0; t < n; t++)
            c->next[s][t] = seen[t] ? (signed char)first[t] : -1;
    }
}

mb_cost_model *mb_cost_new(const mb_graph *g, const mb_topology *t, const mb_profile *p,
                           const mb_nodetype_set *types, const mb_cost_opts *opts, char *err,
                           size_t errlen)
{
    if (p->n_ops != g->n_nodes) {
        snprintf(err, errlen, "cost: the profile has %d ops, model %s has %d", p->n_ops, g->name,
                 g->n_nodes);
        return NULL;
    }
    if (t->n_sites < 1 || t->n_sites > MB_MAX_SITES || t->n_links > MB_MAX_LINKS) {
        snprintf(err, errlen, "cost: topology has %d sites and %d links", t->n_sites, t->n_links);
        return NULL;
    }
    mb_cost_model *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->g = g;
    c->topo = *t;
    c->prof_ms = malloc(sizeof(double) * (size_t)(g->n_nodes ? g->n_nodes : 1));
    if (!c->prof_ms) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Op times as profiled. The whole-run ratio (mb_profile_op_scale) is
     * reported, not applied: on this executor it is dominated by per-run
     * work outside any op, which a split does not multiply. */
    memcpy(c->prof_ms, p->ms, sizeof(double) * (size_t)g->n_nodes);
    c->ref_gflops = p->ref_gflops;
    if (opts)
        c->opts = *opts;
    else
        mb_cost_opts_default(&c->opts);
    if (c->opts.msg_overhead_ms < 0)
        c->opts.msg_overhead_ms = MB_COST_MSG_OVERHEAD_MS;
    for (int s = 0; s < t->n_sites; s++) {
        const char *tn = t->sites[s].node_type[0] ? t->sites[s].node_type
                                                   : mb_nodetype_role_default(t->sites[s].role);
        const mb_nodetype *nt = mb_nodetypes_find(types, tn);
        if (!nt) {
            snprintf(err, errlen, "cost: site %s: unknown node type '%s'", t->sites[s].name, tn);
            goto fail;
        }
        c->type[s] = *nt;
        if (nt->speed > 0)
            c->factor[s] = nt->speed;
        else if (p->ref_gflops > 0)
            c->factor[s] = p->ref_gflops / nt->gflops;
        else {
            snprintf(err, errlen,
                     "cost: node type %s is given in gflops but the profile has no ref_gflops",
                     tn);
            goto fail;
        }
        c->scale[s] = 1;
    }
    for (int l = 0; l < t->n_links; l++) {
        char what[128];
        snprintf(what, sizeof(what), "link %s -> %s", t->sites[t->links[l].a].name,
                 t->sites[t->links[l].b].name);
        if (dir_params(&t->links[l].spec.up, t->links[l].spec.mtu, &c->rate[l][0], &c->delay[l][0], what, err, errlen))
            goto fail;
        snprintf(what, sizeof(what), "link %s -> %s", t->sites[t->links[l].b].name,
                 t->sites[t->links[l].a].name);
        if (dir_params(&t->links[l].spec.down, t->links[l].spec.mtu, &c->rate[l][1], &c->delay[l][1], what, err, errlen))
            goto fail;
    }
    compute_routes(c);
    int dev = -1;
    for (int s = 0; s < t->n_sites && dev < 0; s++)
        if (t->sites[s].role == MB_ROLE_DEVICE)
            dev = s;
    int rk = c->opts.radio;
    if (rk < 0 && dev >= 0)
        rk = mb_radio_from_name(c->type[dev].radio);
    c->radio = rk > 0 ? mb_radio_get((mb_radio_kind)rk) : NULL;
    return c;
fail:
    free(c->prof_ms);
    free(c);
    return NULL;
}

void mb_cost_free(mb_cost_model *c)
{
    if (!c)
        return;
    free(c->prof_ms);
    free(c);
}

const mb_graph *mb_cost_graph(const mb_cost_model *c) { return c->g; }
const mb_topology *mb_cost_topology(const mb_cost_model *c) { return &c->topo; }

const mb_nodetype *mb_cost_site_type(const mb_cost_model *c, int site)
{
    return site >= 0 && site < c->topo.n_sites ? &c->type[site] : NULL;
}

double mb_cost_site_factor(const mb_cost_model *c, int site)
{
    return c->factor[site] * c->scale[site];
}

void mb_cost_set_site_scale(mb_cost_model *c, int site, double scale)
{
    if (site >= 0 && site < c->topo.n_sites && scale > 0)
        c->scale[site] = scale;
}

double mb_cost_op_ms(const mb_cost_model *c, int site, int op)
{
    return c->prof_ms[op] * c->factor[site] * c->scale[site];
}

static double region_frac(const mb_graph *g, int op, mb_region r)
{
    mb_region f = mb_node_full_region(g, op);
    double full = (double)mb_region_rows(f) * (double)mb_region_cols(f);
    double part = (double)mb_region_rows(r) * (double)mb_region_cols(r);
    return full > 0 ? part / full : 1.0;
}

double mb_cost_region_ms(const mb_cost_model *c, int site, int op, mb_region r)
{
    /* what the kernel computes: whole normalised axes (mb_node_compute_region) */
    return mb_cost_op_ms(c, site, op) * region_frac(c->g, op, mb_node_compute_region(c->g, op, r));
}

int mb_cost_route(const mb_cost_model *c, int from, int to, int *sites, int max)
{
    if (from < 0 || to < 0 || from >= c->topo.n_sites || to >= c->topo.n_sites)
        return 0;
    int n = 0, s = from;
    while (n < max) {
        sites[n++] = s;
        if (s == to)
            return n;
        s = c->next[s][to];
        if (s < 0)
            return 0;
    }
    return 0;
}

/* The link and direction (0: a->b) carrying a hop u -> v. */
static int hop_link(const mb_cost_model *c, int u, int v, int *dir)
{
    for (int l = 0; l < c->topo.n_links; l++) {
        if (c->topo.links[l].a == u && c->topo.links[l].b == v) {
            *dir = 0;
            return l;
        }
        if (c->topo.links[l].b == u && c->topo.links[l].a == v) {
            *dir = 1;
            return l;
        }
    }
    return 0; /* unreachable: routes only follow links */
}

/* The bytes of a message's first packet: a router forwards a message packet
 * by packet, so the next hop starts once this much has arrived. */
#define HOP_PACKET_BYTES 1500

/* One hop of a message (cut-through forwarding, as the emulated and real
 * routers do): the hop's sender has the first packet at *first and the
 * whole message at *last (the same at the sending site); it transmits once
 * the link is free (at `link_free`) and cannot finish before the last packet
 * arrived plus that packet's serialisation. Returns when the hop starts
 * sending; *end is when it finishes (the link is free again), *first and
 * *last become when the first packet and the whole message reach the hop's
 * far end. A message over two hops is therefore not carried over the first
 * in full before the second starts: the slower hop sets the pace. */
static double hop_pass(double rate, double delay, double overhead, int64_t bytes, double link_free, double *first,
                       double *last, double *end)
{
    double ser = (double)bytes * 8.0 / rate * 1e3;
    double pkt = (double)(bytes < HOP_PACKET_BYTES ? bytes : HOP_PACKET_BYTES) * 8.0 / rate * 1e3;
    double start = fmax(*first, link_free);
    double e = fmax(start + ser, *last + pkt) + overhead;
    if (end)
        *end = e;
    *first = start + pkt + delay;
    *last = e + delay;
    return start;
}

double mb_cost_xfer_ms(const mb_cost_model *c, int from, int to, int64_t bytes)
{
    if (from == to)
        return 0;
    int route[MB_MAX_SITES];
    int n = mb_cost_route(c, from, to, route, MB_MAX_SITES);
    if (n < 2)
        return INFINITY;
    double first = 0, last = 0;
    for (int h = 0; h + 1 < n; h++) {
        int d = 0, l = hop_link(c, route[h], route[h + 1], &d);
        hop_pass(c->rate[l][d], c->delay[l][d], c->opts.msg_overhead_ms, bytes, 0, &first, &last, NULL);
    }
    if (c->opts.cold_connections) {
        double rtt, one_way, rate;
        route_rtt_rate(c, route, n, &rtt, &one_way, &rate);
        last += mb_cost_slow_start_ms(bytes, rate, rtt);
    }
    return last;
}

static void route_rtt_rate(const mb_cost_model *c, const int *route, int n, double *rtt_ms, double *one_way_ms,
                           double *rate_bps)
{
    *rtt_ms = *one_way_ms = 0;
    *rate_bps = INFINITY;
    for (int h = 0; h + 1 < n; h++) {
        int d = 0, l = hop_link(c, route[h], route[h + 1], &d);
        *rtt_ms += c->delay[l][d] + c->delay[l][1 - d];
        *one_way_ms += c->delay[l][d];
        *rate_bps = fmin(*rate_bps, c->rate[l][d]);
    }
}

double mb_cost_rate_bps(const mb_cost_model *c, int from, int to)
{
    int route[MB_MAX_SITES];
    int n = mb_cost_route(c, from, to, route, MB_MAX_SITES);
    if (n < 2)
        return n == 1 ? INFINITY : 0;
    double r = INFINITY;
    for (int h = 0; h + 1 < n; h++) {
        int d = 0, l = hop_link(c, route[h], route[h + 1], &d);
        r = fmin(r, c->rate[l][d]);
    }
    return r;
}

double mb_cost_delay_ms(const mb_cost_model *c, int from, int to)
{
    int route[MB_MAX_SITES];
    int n = mb_cost_route(c, from, to, route, MB_MAX_SITES);
    if (n < 2)
        return n == 1 ? 0 : INFINITY;
    double ms = 0;
    for (int h = 0; h + 1 < n; h++) {
        int d = 0, l = hop_link(c, route[h], route[h + 1], &d);
        ms += c->delay[l][d];
    }
    return ms;
}

int mb_cost_set_link(mb_cost_model *c, int link, const mb_link_spec *spec, char *err, size_t errlen)
{
    if (link < 0 || link >= c->topo.n_links) {
        snprintf(err, errlen, "cost: link %d out of range", link);
        return -1;
    }
    double r0, d0, r1, d1;
    if (dir_params(&spec->up, spec->mtu, &r0, &d0, "link", err, errlen) ||
        dir_params(&spec->down, spec->mtu, &r1, &d1, "link", err, errlen))
        return -1;
    c->topo.links[link].spec = *spec;
    c->rate[link][0] = r0;
    c->delay[link][0] = d0;
    c->rate[link][1] = r1;
    c->delay[link][1] = d1;
    return 0;
}

void mb_cost_set_rate(mb_cost_model *c, int link, double up_bps, double down_bps)
{
    if (link < 0 || link >= c->topo.n_links)
        return;
    if (up_bps > 0)
        c->rate[link][0] = up_bps;
    if (down_bps > 0)
        c->rate[link][1] = down_bps;
}

/* ---- schedule simulation ---- */

typedef struct piece {
    mb_region r;
    double t;
} piece;

typedef struct avail {
    int n, cap;
    piece *p;
} avail;

static int avail_add(avail *a, mb_region r, double t)
{
    if (a->n == a->cap) {
        int cap = a->cap ? 2 * a->cap : 2;
        piece *n = realloc(a->p, sizeof(*n) * (size_t)cap);
        if (!n)
            return -1;
        a->p = n;
        a->cap = cap;
    }
    a->p[a->n++] = (piece){r, t};
    return 0;
}

/* When region r is on the site: the latest piece it overlaps (the validator
 * guarantees the pieces cover it). Pieces wholly covering r early win over
 * later redundant ones, so a received copy does not delay a local one. */
static double avail_time(const avail *a, mb_region r)
{
    if (mb_region_rows(r) <= 0 || mb_region_cols(r) <= 0)
        return 0;
    double best_whole = INFINITY, latest = 0;
    int any = 0;
    for (int i = 0; i < a->n; i++) {
        mb_region q = a->p[i].r;
        if (q.h0 <= r.h0 && q.h1 >= r.h1 && q.w0 <= r.w0 && q.w1 >= r.w1)
            best_whole = fmin(best_whole, a->p[i].t);
        mb_region x = mb_region_intersect(q, r);
        if (mb_region_rows(x) > 0 && mb_region_cols(x) > 0) {
            latest = fmax(latest, a->p[i].t);
            any = 1;
        }
    }
    if (best_whole < INFINITY)
        return best_whole;
    return any ? latest : INFINITY;
}

static int64_t region_bytes(const mb_graph *g, int op, mb_region r)
{
    return (int64_t)llround((double)g->nodes[op].out_bytes * region_frac(g, op, r));
}

/* Simulating one plan's steps in order: where each op's regions are and when,
 * when each site and link direction is next free, and what the device's
 * radio sends and receives. */
typedef struct eval_state {
    const mb_cost_model *c;
    const mb_graph *g;
    int ns, n, dev;
    avail *av; /* [site * n + op] */
    mb_radio_burst *bursts;
    int nb;
    double site_free[MB_MAX_SITES], busy[MB_MAX_SITES];
    double (*link_free)[2];
    char used[MB_MAX_SITES];
    double *elems; /* per op: output fractions computed (> 1: redundant) */
    mb_plan_pred *pr;
    double scale[MB_MAX_SITES]; /* op time multiplier per site: 1, or 1 / share (mb_plan_evaluate_shared) */
    const mb_plan *p;
    int64_t *pair_bytes; /* cold connections: bytes each pair of sites sent so far [from * ns + to] */
    double *pair_t0;     /* and when its first message started */
} eval_state;

/* The site a plan's state binding puts op at (an input: is_in, else an
 * output: plan.h, mb_plan_state), or dflt. */
static int eval_state_site(const mb_plan *p, int op, int is_in, int dflt)
{
    for (int i = 0; p && i < p->n_state; i++)
        if ((is_in ? p->state[i].in_op : p->state[i].out_op) == op)
            return p->state[i].site;
    return dflt;
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Inputs start on the device at 0 (a state input on its site); constants
 * everywhere at 0. */
static int eval_seed(eval_state *e, char *err, size_t errlen)
{
    const mb_graph *g = e->g;
    for (int i = 0; i < e->n; i++) {
        mb_region full = mb_node_full_region(g, i);
        int at = eval_state_site(e->p, i, 1, e->dev);
        if (g->nodes[i].type == MB_OP_INPUT && avail_add(&e->av[(size_t)at * e->n + i], full, 0))
            return oom(err, errlen);
        for (int b = 0; g->nodes[i].type == MB_OP_INPUT && b < e->p->n_state; b++) /* partitioned: every site */
            if (e->p->state[b].in_op == i && e->p->state[b].site != at &&
                avail_add(&e->av[(size_t)e->p->state[b].site * e->n + i], full, 0))
                return oom(err, errlen);
        if (g->nodes[i].type == MB_OP_CONSTANT)
            for (int s = 0; s < e->ns; s++)
                if (avail_add(&e->av[(size_t)s * e->n + i], full, 0))
                    return oom(err, errlen);
    }
    return 0;
}

static int eval_compute(eval_state *e, int k, mb_plan_step *st, char *err, size_t errlen)
{
    const mb_graph *g = e->g;
    const mb_node *nd = &g->nodes[st->op];
    double ready = 0;
    for (int j = 0; j < nd->n_inputs; j++) {
        int u = nd->inputs[j];
        mb_region need = mb_node_input_region(g, st->op, j, st->region);
        ready = fmax(ready, avail_time(&e->av[(size_t)st->site * e->n + u], need));
    }
    if (!isfinite(ready)) {
        snprintf(err, errlen, "evaluate: step %d (%s): an input never reaches %s", k, nd->name,
                 e->c->topo.sites[st->site].name);
        return -1;
    }
    double dur = mb_cost_region_ms(e->c, st->site, st->op, st->region) * e->scale[st->site];
    st->t_start_ms = fmax(ready, e->site_free[st->site]);
    st->t_end_ms = st->t_start_ms + dur;
    e->site_free[st->site] = st->t_end_ms;
    e->busy[st->site] += dur;
    e->used[st->site] = 1;
    e->elems[st->op] += region_frac(g, st->op, st->region);
    if (avail_add(&e->av[(size_t)st->site * e->n + st->op], st->region, st->t_end_ms))
        return oom(err, errlen);
    return 0;
}

/* One hop of a send (hop_pass): books the link and counts bytes and radio
 * bursts; *first and *last move on to the hop's far end. */
static void eval_hop(eval_state *e, int from, int to, int64_t bytes, double *first, double *last, mb_plan_step *st)
{
    const mb_cost_model *c = e->c;
    int d = 0, l = hop_link(c, from, to, &d);
    double ser = (double)bytes * 8.0 / c->rate[l][d] * 1e3, end = 0;
    double start = hop_pass(c->rate[l][d], c->delay[l][d], c->opts.msg_overhead_ms, bytes, e->link_free[l][d], first,
                            last, &end);
    if (st->t_start_ms < 0)
        st->t_start_ms = start;
    e->link_free[l][d] = end;
    e->used[from] = e->used[to] = 1;
    /* the radio carries whole packets: its rate is the link's, headers
     * included, of which c->rate is the payload's share */
    double mbps = c->rate[l][d] / mb_cost_goodput_bps(1.0, c->topo.links[l].spec.mtu) / 1e6;
    if (from == e->dev) {
        e->pr->bytes_up += bytes;
        e->bursts[e->nb++] = (mb_radio_burst){start / 1e3, (start + ser) / 1e3, mbps, 0};
    } else if (to == e->dev) {
        e->pr->bytes_down += bytes;
        /* the device hears it a link delay after the hop sent it */
        double a = end - ser - c->opts.msg_overhead_ms + c->delay[l][d];
        e->bursts[e->nb++] = (mb_radio_burst){a / 1e3, (a + ser) / 1e3, 0, mbps};
    } else {
        e->pr->bytes_backbone += bytes;
    }
}

static int eval_send(eval_state *e, int k, mb_plan_step *st, char *err, size_t errlen)
{
    const mb_cost_model *c = e->c;
    const mb_node *nd = &e->g->nodes[st->op];
    double t = avail_time(&e->av[(size_t)st->site * e->n + st->op], st->region);
    if (!isfinite(t)) {
        snprintf(err, errlen, "evaluate: step %d sends %s from %s, which never has it", k, nd->name,
                 c->topo.sites[st->site].name);
        return -1;
    }
    int route[MB_MAX_SITES];
    int nr = mb_cost_route(c, st->site, st->to, route, MB_MAX_SITES);
    if (nr < 2) {
        snprintf(err, errlen, "evaluate: step %d: no route from %s to %s", k, c->topo.sites[st->site].name,
                 c->topo.sites[st->to].name);
        return -1;
    }
    int64_t bytes = region_bytes(e->g, st->op, st->region);
    st->t_start_ms = -1;
    double first = t, last = t;
    for (int h = 0; h + 1 < nr; h++)
        eval_hop(e, route[h], route[h + 1], bytes, &first, &last, st);
    t = last;
    if (e->pair_bytes) {
        /* a cold connection: the pair's messages are one stream that cannot
         * arrive sooner than slow start from its first byte lets it */
        double rtt, one_way, rate;
        size_t pair = (size_t)st->site * e->ns + st->to;
        route_rtt_rate(c, route, nr, &rtt, &one_way, &rate);
        if (e->pair_bytes[pair] == 0)
            e->pair_t0[pair] = st->t_start_ms;
        e->pair_bytes[pair] += bytes;
        int64_t cum = e->pair_bytes[pair];
        double ss = e->pair_t0[pair] + (double)cum * 8.0 / rate * 1e3 + mb_cost_slow_start_ms(cum, rate, rtt) + one_way;
        t = fmax(t, ss);
    }
    st->t_end_ms = t;
    if (avail_add(&e->av[(size_t)st->to * e->n + st->op], st->region, t))
        return oom(err, errlen);
    return 0;
}

static int eval_steps(eval_state *e, mb_plan *p, char *err, size_t errlen)
{
    for (int k = 0; k < p->n_steps; k++) {
        mb_plan_step *st = &p->steps[k];
        if (st->op < 0 || st->op >= e->n || st->site < 0 || st->site >= e->ns ||
            (st->kind == MB_STEP_SEND && (st->to < 0 || st->to >= e->ns))) {
            snprintf(err, errlen, "evaluate: step %d references an unknown op or site", k);
            return -1;
        }
        if (st->kind == MB_STEP_COMPUTE ? eval_compute(e, k, st, err, errlen) : eval_send(e, k, st, err, errlen))
            return -1;
    }
    return 0;
}

/* When the last output is whole on the device; -1 (err) if one never is. */
static double eval_output_time(const eval_state *e, char *err, size_t errlen)
{
    const mb_graph *g = e->g;
    double lat = 0;
    for (int k = 0; k < g->n_outputs; k++) {
        int o = g->outputs[k];
        int at = eval_state_site(e->p, o, 0, e->dev); /* a state output ends on its own site */
        double t = avail_time(&e->av[(size_t)at * e->n + o], mb_node_full_region(g, o));
        for (int b = 0; isfinite(t) && b < e->p->n_state; b++) /* partitioned: each site's part */
            if (e->p->state[b].out_op == o && e->p->state[b].site != at)
                t = fmax(t, avail_time(&e->av[(size_t)e->p->state[b].site * e->n + o], mb_node_full_region(g, o)));
        if (!isfinite(t)) {
            snprintf(err, errlen, "evaluate: output %s never reaches %s", g->nodes[o].name,
                     at == e->dev ? "the device" : "its state's site");
            return -1;
        }
        lat = fmax(lat, t);
    }
    return lat;
}

/* Latency with the radio's promotion delay, device and system energy, and
 * the elements computed more than once. */
static void eval_totals(eval_state *e, double lat)
{
    const mb_cost_model *c = e->c;
    mb_plan_pred *pr = e->pr;
    int dev = e->dev;
    /* bursts must be sorted for the radio model */
    for (int i = 1; i < e->nb; i++)
        for (int j = i; j > 0 && e->bursts[j].t0 < e->bursts[j - 1].t0; j--) {
            mb_radio_burst x = e->bursts[j];
            e->bursts[j] = e->bursts[j - 1];
            e->bursts[j - 1] = x;
        }
    mb_radio_energy re = {0};
    if (c->radio && e->nb)
        mb_radio_frame_energy(c->radio, e->bursts, e->nb, lat / 1e3, c->opts.frame_interval_s, &re);
    lat += re.promo_s * 1e3;
    pr->latency_ms = lat;
    pr->device_compute_ms = e->busy[dev];
    pr->radio_mj = re.total_mj;
    /* W x ms = mJ */
    pr->energy_mj = c->type[dev].compute_w * e->busy[dev] + c->type[dev].idle_w * fmax(0, lat - e->busy[dev]) +
                    re.total_mj;
    double sys = re.total_mj;
    for (int s = 0; s < e->ns; s++)
        if (e->used[s])
            sys += c->type[s].compute_w * e->busy[s] + c->type[s].idle_w * fmax(0, lat - e->busy[s]);
    pr->energy_system_mj = sys;
    double red = 0;
    for (int i = 0; i < e->n; i++)
        if (e->elems[i] > 1.0 + 1e-9) {
            double numel = (double)e->g->nodes[i].out_bytes / 4.0;
            red += (e->elems[i] - 1.0) * numel;
        }
    pr->redundant_elems = (int64_t)llround(red);
}

static int evaluate(mb_plan *p, const mb_cost_model *c, int shared, char *err, size_t errlen)
{
    eval_state es = {0}, *e = &es;
    for (int i = 0; i < MB_MAX_SITES; i++)
        e->scale[i] = shared && p->share[i] > 0 ? 1.0 / p->share[i] : 1.0;
    e->c = c;
    e->g = c->g;
    e->ns = c->topo.n_sites;
    e->n = c->g->n_nodes;
    e->av = calloc((size_t)e->ns * (size_t)e->n, sizeof(*e->av));
    e->bursts = malloc(sizeof(*e->bursts) * (size_t)(p->n_steps + 1));
    e->link_free = calloc((size_t)(c->topo.n_links + 1), sizeof(*e->link_free));
    e->elems = calloc((size_t)e->n, sizeof(double));
    e->pair_bytes = c->opts.cold_connections ? calloc((size_t)e->ns * (size_t)e->ns, sizeof(int64_t)) : NULL;
    e->pair_t0 = c->opts.cold_connections ? calloc((size_t)e->ns * (size_t)e->ns, sizeof(double)) : NULL;
    int rc = -1;
    if (!e->av || !e->bursts || !e->link_free || !e->elems ||
        (c->opts.cold_connections && (!e->pair_bytes || !e->pair_t0))) {
        oom(err, errlen);
        goto out;
    }
    if (p->device < 0 || p->device >= e->ns) {
        snprintf(err, errlen, "evaluate: device site %d out of range", p->device);
        goto out;
    }
    e->dev = p->device;
    e->p = p;
    e->used[e->dev] = 1;
    if (eval_seed(e, err, errlen))
        goto out;
    /* the policy's own figures survive re-evaluation */
    mb_plan_pred *pr = &p->pred;
    double decision = pr->decision_us, cut = pr->cut_value_ms;
    memset(pr, 0, sizeof(*pr));
    pr->decision_us = decision;
    pr->cut_value_ms = cut;
    e->pr = pr;
    if (eval_steps(e, p, err, errlen))
        goto out;
    double lat = eval_output_time(e, err, errlen);
    if (lat < 0)
        goto out;
    eval_totals(e, lat);
    rc = 0;
out:
    if (e->av)
        for (size_t i = 0; i < (size_t)e->ns * e->n; i++)
            free(e->av[i].p);
    free(e->av);
    free(e->bursts);
    free(e->link_free);
    free(e->pair_bytes);
    free(e->pair_t0);
    free(e->elems);
    return rc;
}

int mb_plan_evaluate(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen)
{
    return evaluate(p, c, 0, err, errlen);
}

int mb_plan_evaluate_shared(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen)
{
    return evaluate(p, c, 1, err, errlen);
}

static int link_of(const mb_topology *t, int a, int b)
{
    for (int l = 0; l < t->n_links; l++)
        if ((t->links[l].a == a && t->links[l].b == b) || (t->links[l].a == b && t->links[l].b == a))
            return l;
    return -1;
}

int mb_plan_link_bytes(const mb_plan *p, const mb_cost_model *c, int64_t *per_link, char *err, size_t errlen)
{
    const mb_topology *t = &c->topo;
    for (int l = 0; l < t->n_links; l++)
        per_link[l] = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *st = &p->steps[k];
        if (st->kind != MB_STEP_SEND)
            continue;
        int route[MB_MAX_SITES];
        int nr = mb_cost_route(c, st->site, st->to, route, MB_MAX_SITES);
        if (nr < 2) {
            snprintf(err, errlen, "step %d: no route from site %d to %d", k, st->site, st->to);
            return -1;
        }
        int64_t bytes = region_bytes(c->g, st->op, st->region);
        for (int h = 0; h + 1 < nr; h++) {
            int l = link_of(t, route[h], route[h + 1]);
            if (l >= 0)
                per_link[l] += bytes;
        }
    }
    return 0;
}
