/* mecbed runtime: measured energy inputs and the critical path of a run. */
#include "mecbed/runstats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rs_packets_read(rs_packets *ps, const char *path, double epoch, int up, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1 && !strncmp(line, "seq,", 4))
            continue;
        unsigned long long seq;
        double arr, dep, dlv, qd;
        unsigned bytes;
        char ev[32];
        int n = sscanf(line, "%llu,%lf,%lf,%lf,%u,%lf,%31s", &seq, &arr, &dep, &dlv, &bytes, &qd, ev);
        if (n != 7) {
            /* Dropped packets leave the time columns empty (no radio time we
             * can place); a line cut short by a stopped emulator is skipped. */
            if (strstr(line, ",drop") || !strchr(line, '\n'))
                continue;
            snprintf(err, errlen, "%s:%d: malformed packet log line", path, lineno);
            fclose(f);
            return -1;
        }
        if (strcmp(ev, "delivered"))
            continue;
        if (ps->n == ps->cap) {
            int cap = ps->cap ? ps->cap * 2 : 4096;
            rs_packet *p = realloc(ps->p, (size_t)cap * sizeof *p);
            if (!p) {
                fclose(f);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            ps->p = p;
            ps->cap = cap;
        }
        rs_packet *p = &ps->p[ps->n++];
        double start = arr + qd; /* serialisation began */
        if (up) {
            p->t0 = epoch + arr * 1e-6;
            p->t1 = epoch + dep * 1e-6;
        } else {
            p->t0 = epoch + (dlv - (dep - start)) * 1e-6;
            p->t1 = epoch + dlv * 1e-6;
        }
        p->bytes = (int)bytes;
        p->up = up;
    }
    fclose(f);
    return 0;
}

void rs_packets_free(rs_packets *ps)
{
    free(ps->p);
    memset(ps, 0, sizeof *ps);
}

typedef struct span {
    double t0, t1;
    double up_bytes, down_bytes;
} span;

static int cmp_span(const void *a, const void *b)
{
    double x = ((const span *)a)->t0, y = ((const span *)b)->t0;
    return x < y ? -1 : x > y;
}

static const mb_event *find_event(const mb_timeline *tl, uint32_t frame, int step, int kind)
{
    for (int i = 0; i < tl->n; i++)
        if (tl->ev[i].frame == frame && tl->ev[i].step == step && tl->ev[i].kind == kind)
            return &tl->ev[i];
    return NULL;
}

int rs_bursts(const rs_packets *ps, const mb_timeline *tl, uint32_t frame, int device,
              double t_start, double t_end, double gap_s, mb_radio_burst *out, int max)
{
    int cap = 64, n = 0;
    span *sp = malloc(sizeof(span) * (size_t)cap);
    if (!sp)
        return 0;
    if (ps && ps->n) {
        for (int i = 0; i < ps->n; i++) {
            const rs_packet *p = &ps->p[i];
            if (p->t1 < t_start || p->t0 > t_end)
                continue;
            if (n == cap) {
                span *q = realloc(sp, sizeof(span) * (size_t)(cap *= 2));
                if (!q)
                    break;
                sp = q;
            }
            sp[n++] = (span){p->t0, p->t1, p->up ? p->bytes : 0, p->up ? 0 : p->bytes};
        }
    } else {
        for (int i = 0; i < tl->n; i++) {
            const mb_event *e = &tl->ev[i];
            if (e->frame != frame || e->site != device || (e->kind != MB_EV_SEND && e->kind != MB_EV_RECV))
                continue;
            /* a transfer spans the sender's start to the receiver's end */
            const mb_event *o = find_event(tl, frame, e->step, e->kind == MB_EV_SEND ? MB_EV_RECV : MB_EV_SEND);
            double t0 = e->kind == MB_EV_SEND ? e->t0 : (o ? o->t0 : e->t0);
            double t1 = e->kind == MB_EV_SEND ? (o ? o->t1 : e->t1) : e->t1;
            if (n == cap) {
                span *q = realloc(sp, sizeof(span) * (size_t)(cap *= 2));
                if (!q)
                    break;
                sp = q;
            }
            sp[n++] = (span){t0, t1, e->kind == MB_EV_SEND ? (double)e->bytes : 0,
                             e->kind == MB_EV_RECV ? (double)e->bytes : 0};
        }
    }
    qsort(sp, (size_t)n, sizeof *sp, cmp_span);
    int nb = 0;
    for (int i = 0; i < n && nb < max;) {
        span b = sp[i++];
        while (i < n && sp[i].t0 <= b.t1 + gap_s) {
            if (sp[i].t1 > b.t1)
                b.t1 = sp[i].t1;
            b.up_bytes += sp[i].up_bytes;
            b.down_bytes += sp[i].down_bytes;
            i++;
        }
        double t0 = b.t0 < t_start ? t_start : b.t0, t1 = b.t1 > t_end ? t_end : b.t1;
        double d = t1 - t0;
        if (d <= 0)
            continue;
        out[nb].t0 = t0 - t_start;
        out[nb].t1 = t1 - t_start;
        out[nb].up_mbps = b.up_bytes * 8 / d / 1e6;
        out[nb].down_mbps = b.down_bytes * 8 / d / 1e6;
        nb++;
    }
    free(sp);
    return nb;
}

double rs_device_busy_ms(const mb_timeline *tl, uint32_t frame, int device)
{
    double ms = 0;
    for (int i = 0; i < tl->n; i++)
        if (tl->ev[i].frame == frame && tl->ev[i].site == device && tl->ev[i].kind == MB_EV_COMPUTE)
            ms += (tl->ev[i].t1 - tl->ev[i].t0) * 1e3;
    return ms;
}

void rs_device_bytes(const mb_timeline *tl, uint32_t frame, int device, int64_t *up, int64_t *down)
{
    *up = *down = 0;
    for (int i = 0; i < tl->n; i++) {
        const mb_event *e = &tl->ev[i];
        if (e->frame != frame || e->site != device)
            continue;
        if (e->kind == MB_EV_SEND)
            *up += e->bytes;
        else if (e->kind == MB_EV_RECV)
            *down += e->bytes;
    }
}

static int overlap(mb_region a, mb_region b)
{
    return a.h0 < b.h1 && b.h0 < a.h1 && a.w0 < b.w1 && b.w0 < a.w1;
}

/* end time of the latest earlier step that brings (op, region) to site */
static double ready_at(const mb_plan *p, const mb_graph *g, const double *end, int s, int site, int op,
                       mb_region need)
{
    mb_op_type t = g->nodes[op].type;
    if (t == MB_OP_CONSTANT || (t == MB_OP_INPUT && site == p->device))
        return 0;
    double r = 0;
    for (int q = 0; q < s; q++) {
        const mb_plan_step *st = &p->steps[q];
        if (st->op != op || !overlap(st->region, need))
            continue;
        int here = (st->kind == MB_STEP_COMPUTE && st->site == site) ||
                   (st->kind == MB_STEP_SEND && st->to == site);
        if (here && end[q] > r)
            r = end[q];
    }
    return r;
}

double rs_critical_path_ms(const mb_plan *p, const mb_graph *g, const mb_timeline *tl, uint32_t frame)
{
    int ns = p->n_steps;
    double *dur = calloc((size_t)ns + 1, sizeof(double));
    double *end = calloc((size_t)ns + 1, sizeof(double));
    if (!dur || !end) {
        free(dur);
        free(end);
        return NAN;
    }
    double result = NAN;
    /* durations; sends in plan order per directed link */
    double last_arrival[MB_MAX_SITES][MB_MAX_SITES];
    memset(last_arrival, 0, sizeof last_arrival);
    for (int s = 0; s < ns; s++) {
        const mb_plan_step *st = &p->steps[s];
        if (st->kind == MB_STEP_COMPUTE) {
            const mb_event *e = find_event(tl, frame, s, MB_EV_COMPUTE);
            if (!e)
                goto out;
            dur[s] = e->t1 - e->t0;
        } else {
            const mb_event *a = find_event(tl, frame, s, MB_EV_SEND);
            const mb_event *b = find_event(tl, frame, s, MB_EV_RECV);
            if (!a || !b)
                goto out;
            double start = a->t0;
            double prev = last_arrival[st->site][st->to];
            if (prev > start)
                start = prev;
            dur[s] = b->t1 - start;
            if (dur[s] < 0)
                dur[s] = 0;
            last_arrival[st->site][st->to] = b->t1;
        }
    }
    double site_free[MB_MAX_SITES] = {0};
    static double link_free[MB_MAX_SITES][MB_MAX_SITES];
    memset(link_free, 0, sizeof link_free);
    double latency = 0;
    for (int s = 0; s < ns; s++) {
        const mb_plan_step *st = &p->steps[s];
        double ready = 0;
        if (st->kind == MB_STEP_COMPUTE) {
            const mb_node *n = &g->nodes[st->op];
            for (int k = 0; k < n->n_inputs; k++) {
                double r = ready_at(p, g, end, s, st->site, n->inputs[k],
                                    mb_node_input_region(g, st->op, k, st->region));
                if (r > ready)
                    ready = r;
            }
            double start = ready > site_free[st->site] ? ready : site_free[st->site];
            end[s] = start + dur[s];
            site_free[st->site] = end[s];
            if (st->site == p->device && end[s] > latency)
                latency = end[s];
        } else {
            ready = ready_at(p, g, end, s, st->site, st->op, st->region);
            double lf = link_free[st->site][st->to];
            double start = ready > lf ? ready : lf;
            end[s] = start + dur[s];
            link_free[st->site][st->to] = end[s];
            if (st->to == p->device && end[s] > latency)
                latency = end[s];
        }
    }
    result = latency * 1e3;
out:
    free(dur);
    free(end);
    return result;
}

int rs_bursts_emulated(const rs_packets *ps, const mb_timeline *tl, uint32_t frame, int device,
                       double t_start, double t_end, double gap_s, double k, mb_radio_burst *out, int max)
{
    if (!(k > 1.0) || !isfinite(k))
        k = 1.0;
    /* Packets closer than gap_s of emulated time are k x gap_s apart in wall time. */
    int n = rs_bursts(ps, tl, frame, device, t_start, t_end, gap_s * k, out, max);
    mb_radio_bursts_to_emulated(out, n, k);
    return n;
}

int rs_deadline_misses(const rs_frame_times *f, int n, double deadline_ms, double k, int *own)
{
    if (k < 1)
        k = 1;
    double wall = deadline_ms * k / 1e3 + 1e-6; /* a result at the deadline (within a us) is in time */
    int misses = 0, alone = 0;
    for (int i = 0; i < n; i++) {
        if (!f[i].done) {
            misses++;
            alone++; /* it failed on its own */
            continue;
        }
        if (f[i].end - f[i].release > wall) {
            misses++;
            alone += f[i].end - f[i].start > wall;
        }
    }
    if (own)
        *own = alone;
    return misses;
}
