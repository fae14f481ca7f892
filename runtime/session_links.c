/* Run session, bytes per link: what the plan puts on each topology link
 * per frame (payload, hop by hop along the cost model's routes) beside what
 * the link emulator carried (every IP packet it delivered on that link in
 * either direction during the frame: payload, TCP/IP headers, ACKs and the
 * runtime's control messages). The edge-to-cloud ("backbone", D3's traffic
 * figure) and the edge-to-edge links (tiles' scatter and halos) are summed
 * apart. Measured only with the emu backend's packet logs, complete after
 * teardown. And each node's clock offset as the runner estimated it at
 * HELLO, with the round trip that bounds its error (docs/runtime.md, "Real
 * hosts"). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/cost.h"
#include "mecbed/jsontext.h"
#include "session_priv.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median over the ok frames of the bytes delivered on one link while the
 * frame ran; NAN without logs. */
static double link_measured(mb_session *s, int l, const char *dir)
{
    const mb_topology *t = s->cfg.topo;
    rs_packets ps = {0};
    for (int d = 0; d < 2; d++) {
        char path[700], err[800];
        snprintf(path, sizeof path, "%s/link%d-%s-%s.%s.csv", dir, l, t->sites[t->links[l].a].name,
                 t->sites[t->links[l].b].name, d == 0 ? "up" : "down");
        /* up = 1: t0 is when the packet entered the link, in either direction */
        if (rs_packets_read(&ps, path, s->net_epoch, 1, err, sizeof err)) {
            ss_warn(s, "bytes on link %s-%s not measured: %s", t->sites[t->links[l].a].name,
                    t->sites[t->links[l].b].name, err);
            rs_packets_free(&ps);
            return NAN;
        }
    }
    double *v = calloc((size_t)s->n_rec + 1, sizeof *v);
    int n = 0;
    for (int i = 0; v && i < s->n_rec; i++) {
        const ss_frame *fr = &s->rec[i];
        if (!fr->ok)
            continue;
        double b = 0;
        for (int k = 0; k < ps.n; k++)
            if (ps.p[k].t0 >= fr->t_start && ps.p[k].t0 <= fr->t_end)
                b += ps.p[k].bytes;
        v[n++] = b;
    }
    double med = NAN;
    if (n) {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    free(v);
    rs_packets_free(&ps);
    return med;
}

void ss_link_bytes(mb_session *s)
{
    const mb_topology *t = s->cfg.topo;
    char err[256];
    s->links_known = 0;
    if (t->n_links <= 0 || !s->n_plans)
        return;
    if (mb_plan_link_bytes(s->plans[0], s->cfg.cost, s->link_pred, err, sizeof err)) {
        ss_warn(s, "bytes per link not predicted: %s", err);
        return;
    }
    s->links_known = 1;
    const char *dir = s->cfg.log_dir ? s->cfg.log_dir : s->tmp_dir;
    int logs = dir[0] && !strcmp(s->cfg.backend, "emu") && !s->real;
    for (int l = 0; l < t->n_links; l++)
        s->link_meas[l] = logs ? link_measured(s, l, dir) : NAN;
}

/* "edge-cloud", "edge-edge" or NULL for a link touching the device. */
static const char *link_class(const mb_topology *t, int l)
{
    mb_role a = t->sites[t->links[l].a].role, b = t->sites[t->links[l].b].role;
    if (a == MB_ROLE_DEVICE || b == MB_ROLE_DEVICE)
        return NULL;
    if (a == MB_ROLE_EDGE && b == MB_ROLE_EDGE)
        return "edge-edge";
    return a != b ? "edge-cloud" : "cloud-cloud";
}

static void jnum(FILE *f, const char *k, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.0f", k, v);
    else
        fprintf(f, ",\"%s\":null", k);
}

void ss_json_links(const mb_session *s, FILE *f)
{
    const mb_topology *t = s->cfg.topo;
    const mb_plan *p = s->plans[0];
    fprintf(f, ",\"metrics\":{");
    for (int i = 0; i < p->n_metrics; i++) {
        fprintf(f, "%s", i ? "," : "");
        mb_json_print_string(f, p->metrics[i].name);
        fprintf(f, isfinite(p->metrics[i].value) ? ":%.9g" : ":null", p->metrics[i].value);
    }
    fprintf(f, "}");
    if (!s->links_known)
        return;
    double ec_p = 0, ec_m = 0, ee_p = 0, ee_m = 0;
    fprintf(f, ",\"links\":[");
    for (int l = 0; l < t->n_links; l++) {
        const char *cls = link_class(t, l);
        fprintf(f, "%s{\"a\":", l ? "," : "");
        mb_json_print_string(f, t->sites[t->links[l].a].name);
        fprintf(f, ",\"b\":");
        mb_json_print_string(f, t->sites[t->links[l].b].name);
        fprintf(f, ",\"class\":");
        mb_json_print_string(f, cls ? cls : "device");
        fprintf(f, ",\"predicted_bytes\":%lld", (long long)s->link_pred[l]);
        jnum(f, "measured_bytes", s->link_meas[l]);
        fprintf(f, "}");
        if (cls && !strcmp(cls, "edge-cloud")) {
            ec_p += (double)s->link_pred[l];
            ec_m += s->link_meas[l];
        } else if (cls && !strcmp(cls, "edge-edge")) {
            ee_p += (double)s->link_pred[l];
            ee_m += s->link_meas[l];
        }
    }
    fprintf(f, "]");
    /* per frame: predicted payload, measured wire bytes (NAN: no packet logs) */
    jnum(f, "edge_cloud_bytes", ec_p);
    jnum(f, "edge_cloud_bytes_measured", ec_m);
    jnum(f, "edge_edge_bytes", ee_p);
    jnum(f, "edge_edge_bytes_measured", ee_m);
}

void ss_text_links(const mb_session *s, FILE *f)
{
    const mb_topology *t = s->cfg.topo;
    if (!s->links_known)
        return;
    for (int l = 0; l < t->n_links; l++) {
        const char *cls = link_class(t, l);
        if (!cls || (!s->link_pred[l] && !(s->link_meas[l] > 0)))
            continue;
        fprintf(f, "link %s-%s  %lld bytes predicted (payload), %.0f measured on the link per frame (%s)\n",
                t->sites[t->links[l].a].name, t->sites[t->links[l].b].name, (long long)s->link_pred[l],
                s->link_meas[l], cls);
    }
}

void ss_clock_capture(mb_session *s)
{
    for (int i = 0; i < s->cfg.topo->n_sites; i++) {
        s->clock_known[i] = mb_runner_clock(s->runner, i, &s->clock_off[i], &s->clock_rtt[i]) == 0;
        s->clock_bound[i] = s->clock_rtt[i] / 2;
    }
}

static int cmp_send(const void *a, const void *b, void *arg)
{
    const mb_event *ev = arg;
    const mb_event *x = &ev[*(const int *)a], *y = &ev[*(const int *)b];
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    return (x->step > y->step) - (x->step < y->step);
}

/* The SEND event of (frame, step), by binary search in idx (sorted). */
static const mb_event *find_send(const mb_event *ev, const int *idx, int n, uint32_t frame, int step)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const mb_event *e = &ev[idx[mid]];
        int c = e->frame != frame ? (e->frame < frame ? -1 : 1) : (e->step > step) - (e->step < step);
        if (!c)
            return e;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Tighten a node's HELLO offset with causality: a transfer is received
 * (its header arrives) after it began to be sent. Device -> node transfers
 * bound the correction d of the node's (already shifted) times from below,
 * d >= send.t0 - recv.t0; node -> device ones from above, d <= recv.t0 -
 * send.t0; the HELLO's [-rtt/2, rtt/2] holds too. The node's events move by
 * the middle of what is left, and its error bound becomes half that width.
 * Only nodes that exchange tensors with the device directly, and only with
 * the frames' events kept (--timeline, or real servers); an empty interval
 * (clock drift, or a bug) is warned about and changes nothing. */
void ss_clock_refine(mb_session *s)
{
    int dev = s->cfg.device, n = s->tl.n, ns = 0;
    mb_event *ev = s->tl.ev;
    int *idx = n ? malloc((size_t)n * sizeof *idx) : NULL;
    if (!idx)
        return;
    for (int i = 0; i < n; i++)
        if (ev[i].kind == MB_EV_SEND)
            idx[ns++] = i;
    qsort_r(idx, (size_t)ns, sizeof *idx, cmp_send, ev);
    for (int site = 0; site < s->cfg.topo->n_sites; site++) {
        if (!s->clock_known[site] || !isfinite(s->clock_rtt[site]))
            continue;
        double lo = -s->clock_rtt[site] / 2, hi = s->clock_rtt[site] / 2;
        int pairs = 0;
        for (int i = 0; i < n; i++) {
            const mb_event *r = &ev[i];
            if (r->kind != MB_EV_RECV || !((r->site == site && r->peer == dev) || (r->site == dev && r->peer == site)))
                continue;
            const mb_event *snd = find_send(ev, idx, ns, r->frame, r->step);
            if (!snd || snd->site != r->peer)
                continue;
            pairs++;
            if (r->site == site)
                lo = fmax(lo, snd->t0 - r->t0);
            else
                hi = fmin(hi, r->t0 - snd->t0);
        }
        if (!pairs)
            continue;
        if (lo > hi) {
            ss_warn(s, "clock of %s: its transfers with the device bound the HELLO offset to an empty interval "
                       "(%.3f > %.3f ms); kept the HELLO estimate", s->cfg.topo->sites[site].name, lo * 1e3, hi * 1e3);
            continue;
        }
        double d = (lo + hi) / 2;
        for (int i = 0; i < n; i++)
            if (ev[i].site == site) {
                ev[i].t0 += d;
                ev[i].t1 += d;
            }
        s->clock_off[site] += d;
        s->clock_bound[site] = (hi - lo) / 2;
    }
    free(idx);
}

/* A node's clock offset (ms; its timeline events were shifted by it) and
 * the HELLO round trip bounding its error (null: same clock as the runner). */
void ss_json_clock(const mb_session *s, int site, FILE *f)
{
    if (!s->clock_known[site])
        return;
    fprintf(f, ",\"clock_offset_ms\":%.3f", s->clock_off[site] * 1e3);
    if (isfinite(s->clock_rtt[site]))
        fprintf(f, ",\"clock_rtt_ms\":%.3f,\"clock_error_bound_ms\":%.3f", s->clock_rtt[site] * 1e3,
                s->clock_bound[site] * 1e3);
    else
        fprintf(f, ",\"clock_rtt_ms\":null,\"clock_error_bound_ms\":null");
}
