/* Run session, figures: each frame's device energy (compute and idle
 * power over its busy and waiting time, the radio driven by the device
 * link's packets), then the summary over the measured frames (medians,
 * p95, throughput, deadline misses) and the timeline files. Runs after the
 * links are down: the packet logs are complete only then. Every figure is
 * in emulated time: the run's clocks are wall time, k times slower under a
 * time dilation factor k (timescale.h), so durations are divided by k. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session_priv.h"

#define MAX_BURSTS 4096

/* Energy of one frame from what happened. */
static void frame_energy(mb_session *s, ss_frame *fr, const rs_packets *ps, double interval_s)
{
    int dev = s->cfg.device;
    const mb_nodetype *nt = mb_cost_site_type(s->cfg.cost, dev);
    double lat_s = fr->latency_ms / 1e3, busy_s = fr->busy_ms / 1e3;
    double e = nt->compute_w * busy_s + nt->idle_w * (lat_s > busy_s ? lat_s - busy_s : 0);
    fr->radio_mj = 0;
    const mb_radio_model *rm = mb_radio_get((mb_radio_kind)mb_radio_from_name(nt->radio));
    if (!s->bursts)
        s->bursts = malloc(MAX_BURSTS * sizeof *s->bursts);
    if (rm && !fr->fell_back && s->bursts) {
        /* the radio's state machine sees emulated time (its tails are
         * emulated seconds); t_start and t_end are wall times */
        int nb = rs_bursts_emulated(ps, &s->tl, fr->frame, dev, fr->t_start, fr->t_end, 0.002, s->k, s->bursts,
                                    MAX_BURSTS);
        mb_radio_energy re;
        mb_radio_frame_energy(rm, s->bursts, nb, lat_s, interval_s, &re);
        fr->radio_mj = re.total_mj;
    }
    fr->energy_mj = e * 1e3 + fr->radio_mj;
}

int ss_packet_logs_expected(const mb_session *s)
{
    int a_side;
    const char *dir = s->cfg.log_dir ? s->cfg.log_dir : s->tmp_dir;
    return ss_device_link(s->cfg.topo, s->cfg.device, &a_side) >= 0 && dir[0] && !strcmp(s->cfg.backend, "emu") &&
           !s->real;
}

static void read_packet_logs(mb_session *s, rs_packets *ps, double epoch)
{
    const mb_topology *t = s->cfg.topo;
    int a_side;
    int l = ss_device_link(t, s->cfg.device, &a_side);
    if (!ss_packet_logs_expected(s))
        return;
    const char *dir = s->cfg.log_dir ? s->cfg.log_dir : s->tmp_dir;
    for (int d = 0; d < 2; d++) {
        char path[700], err[800];
        snprintf(path, sizeof path, "%s/link%d-%s-%s.%s.csv", dir, l, t->sites[t->links[l].a].name,
                 t->sites[t->links[l].b].name, d == 0 ? "up" : "down");
        /* "up" is a -> b: the device's uplink when the device is a */
        int up = (d == 0) == (a_side != 0);
        if (rs_packets_read(ps, path, epoch, up, err, sizeof err))
            ss_warn(s, "%s: %s",
                    s->keep_events ? "radio energy from the timeline instead of the packet log"
                                   : "no radio energy (the frames' transfers were not kept)",
                    err);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double percentile(double *v, int n, double q)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Throughput: completions per second between the first and the last
 * completed frame (a stream's steady rate; counting from the first
 * release would overstate short streams). */
static double throughput(const mb_session *s)
{
    double first_end = INFINITY, last_end = -INFINITY;
    int n_done = 0;
    for (int i = 0; i < s->n_rec; i++)
        if (s->rec[i].ok || s->rec[i].fell_back) {
            n_done++;
            first_end = fmin(first_end, s->rec[i].t_end);
            last_end = fmax(last_end, s->rec[i].t_end);
        }
    return n_done >= 2 && last_end > first_end ? (n_done - 1) / ss_emulated(s, last_end - first_end)
           : n_done == 1 && s->t_stream_end > s->t_stream ? 1 / ss_emulated(s, s->t_stream_end - s->t_stream) : 0;
}

/* Medians and counts over the measured frames into s->rep. */
static void summarize(mb_session *s)
{
    mb_session_report *r = &s->rep;
    size_t n = (size_t)s->n_rec + 1;
    double *lat = calloc(n, sizeof(double)), *en = calloc(n, sizeof(double));
    double *crit = calloc(n, sizeof(double)), *pred = calloc(n, sizeof(double));
    double *pen = calloc(n, sizeof(double));
    int n_ok = 0, n_crit = 0;
    double sum = 0;
    r->all_match = 1;
    for (int i = 0; i < s->n_rec && lat && en && crit && pred && pen; i++) {
        ss_frame *fr = &s->rec[i];
        r->failed_frames += !fr->ok;
        r->fallback_frames += fr->fell_back;
        if (fr->ok || fr->fell_back) {
            if (!fr->output_match)
                r->all_match = 0;
            if (fr->max_abs_err > r->max_abs_err)
                r->max_abs_err = fr->max_abs_err;
        } else {
            r->all_match = 0;
        }
        if (!fr->ok)
            continue;
        lat[n_ok] = fr->latency_ms;
        en[n_ok] = fr->energy_mj;
        pred[n_ok] = fr->predicted_ms;
        pen[n_ok] = fr->predicted_energy_mj;
        sum += fr->latency_ms;
        n_ok++;
        if (isfinite(fr->critical_ms))
            crit[n_crit++] = fr->critical_ms;
    }
    /* a deadline counts from the frame's release, queueing included */
    rs_frame_times *ft = s->cfg.fps > 0 ? calloc(n, sizeof *ft) : NULL;
    if (ft) {
        for (int i = 0; i < s->n_rec; i++) {
            const ss_frame *fr = &s->rec[i];
            ft[i] = (rs_frame_times){.release = fr->release, .start = fr->t_start, .end = fr->t_end,
                                     .done = fr->ok || fr->fell_back};
        }
        r->deadline_misses = rs_deadline_misses(ft, s->n_rec, 1000 / s->cfg.fps, s->k, &r->deadline_misses_own);
        free(ft);
    }
    const mb_plan *p0 = s->plans[0];
    r->ok_frames = n_ok;
    r->mean_ms = n_ok ? sum / n_ok : NAN;
    r->p95_ms = percentile(lat, n_ok, 0.95);
    r->measured_ms = median(lat, n_ok);
    r->energy_mj = median(en, n_ok);
    r->predicted_ms = n_ok ? median(pred, n_ok) : p0->pred.latency_ms;
    r->predicted_energy_mj = n_ok ? median(pen, n_ok) : p0->pred.energy_mj;
    r->critical_path_ms = median(crit, n_crit);
    free(lat);
    free(en);
    free(crit);
    free(pred);
    free(pen);
}

/* Each frame's durations in emulated time (its device busy time from the
 * timeline first, while that is in wall time). */
static void frames_to_emulated(mb_session *s)
{
    for (int i = 0; i < s->n_rec; i++) {
        ss_frame *fr = &s->rec[i];
        if (!(fr->ok || fr->fell_back))
            continue;
        if (!fr->fell_back && !fr->busy_known)
            fr->busy_ms = rs_device_busy_ms(&s->tl, fr->frame, s->cfg.device);
        fr->latency_ms = ss_emulated(s, fr->latency_ms);
        fr->busy_ms = ss_emulated(s, fr->busy_ms);
        if (isfinite(fr->critical_ms))
            fr->critical_ms = ss_emulated(s, fr->critical_ms);
    }
}

/* The timeline's events in emulated time, from origin on. */
static void timeline_to_emulated(mb_session *s, double origin)
{
    if (s->k <= 1)
        return;
    for (int i = 0; i < s->tl.n; i++) {
        mb_event *e = &s->tl.ev[i];
        e->t0 = origin + ss_emulated(s, e->t0 - origin);
        e->t1 = origin + ss_emulated(s, e->t1 - origin);
    }
}

static void write_timeline(mb_session *s)
{
    char path[1100], err[1024];
    double origin = s->n_rec ? s->rec[0].t_start : 0;
    timeline_to_emulated(s, origin);
    if (mb_timeline_write_chrome(&s->tl, s->cfg.g, s->cfg.topo, origin, s->cfg.timeline, err, sizeof err))
        ss_error(s, "%s", err);
    snprintf(path, sizeof path, "%s.csv", s->cfg.timeline);
    if (mb_timeline_write_csv(&s->tl, s->cfg.g, s->cfg.topo, origin, path, err, sizeof err))
        ss_error(s, "%s", err);
}

void ss_compute_report(mb_session *s)
{
    rs_packets ps = {0};
    ss_clock_refine(s);
    read_packet_logs(s, &ps, s->net_epoch);
    double interval_s = s->cfg.fps > 0 ? 1.0 / s->cfg.fps : 0; /* emulated */
    frames_to_emulated(s);
    for (int i = 0; i < s->n_rec; i++)
        if (s->rec[i].ok || s->rec[i].fell_back)
            frame_energy(s, &s->rec[i], &ps, interval_s);
    rs_packets_free(&ps);
    ss_link_bytes(s);

    mb_session_report *r = &s->rep;
    memset(r, 0, sizeof *r);
    r->frames = s->cfg.frames;
    r->warmup = s->cfg.warmup;
    summarize(s);
    r->fps = s->cfg.fps;
    r->throughput_fps = throughput(s);
    r->replans = s->n_plans - 1;
    r->rel_err = mb_rel_error(r->measured_ms, r->predicted_ms);
    r->energy_rel_err = mb_rel_error(r->energy_mj, r->predicted_energy_mj);
    r->tdf = s->k;
    r->host_scale = s->host_scale;
    r->bytes_up = s->plans[0]->pred.bytes_up;
    r->bytes_down = s->plans[0]->pred.bytes_down;
    if (s->n_rec > 0) {
        r->last_bytes_up = s->rec[s->n_rec - 1].bytes_up;
        r->last_bytes_down = s->rec[s->n_rec - 1].bytes_down;
    }
    r->realtime_checked = s->rt_have;
    r->realtime_valid = s->rt_valid;
    r->realtime_lag_max_ms = s->rt_lag_max_ms;
    r->interrupted = s->interrupted;
    r->policy = s->plans[0]->policy;
    if (s->cfg.timeline)
        write_timeline(s);
    r->n_warnings = s->n_warn;
}
