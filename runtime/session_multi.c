/* Several devices in one measured run (`mecbed run --devices N`): one run
 * session per device, all on the same emulated links and nodes. Device 0's
 * session brings the topology up and starts every node with room for N
 * runner sessions at once; the others attach to it (cfg.attach) and connect
 * their own runners, each from its own device's namespace, in a thread of
 * its own (a namespace is a per-thread setting). Every device runs its own
 * plan and its own frame stream; the nodes share their compute between the
 * sessions first come, first served (node.c), and the wait shows in each
 * device's timeline as QUEUE events.
 *
 * The prediction for a device sharing the servers (docs/runtime.md,
 * "Several devices"): L_i, the plan's own latency (as if alone), and S_i,n,
 * its planned compute on server n per frame. A node grants its compute one
 * step at a time in the order the steps became ready, so while several
 * devices' frames are on a server their steps alternate and the server is
 * shared about equally between them (processor sharing at step
 * granularity): device i's work there is delayed by as much of device j's
 * as overlaps it, at most min(S_j,n, S_i,n). How often it overlaps depends
 * on the streams' phases. Devices whose streams have the same period (the
 * same L, back to back; or one --fps) start together (a barrier after the
 * warm-ups), so their frames meet: weight 1 (an upper figure once they
 * drift apart: their phases are neutral, nothing pulls them back). Otherwise the phases drift, and j's
 * work is on the server a fraction u_j = S_j / T_j of the time (T_j, j's
 * frame period: its latency back to back): weight u_j. Hence
 *   P_i = L_i + sum_n sum_{j != i} w_ij min(S_j,n, S_i,n).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/jsontext.h"
#include "mecbed/timescale.h"
#include "session_priv.h"

typedef struct mm_dev {
    struct mb_multi *m;
    int i, site;
    mb_session *s;
    pthread_t th;
    int th_on;
    double pred_alone_ms, pred_ms, server_ms[MB_MAX_SITES];
    double measured_ms, queue_ms, srv_busy_ms, energy_mj, rel_err, policy_shared_ms;
    char timeline[4200]; /* cfg.timeline with "-<device>" before its .json ("" when none) */
    int output_match, ok_frames;
    int shared; /* its plan holds shares of the servers (mb_plan.share) */
} mm_dev;

struct mb_multi {
    mb_session_config cfg;
    int n;
    mm_dev *d;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int live, arrived, phase; /* a barrier over the device threads alive (mu) */
    int next_create, failed, ran;
    char err[1200];
    double util, mean_ms, mean_pred_ms, med_abs_err, energy_total_mj, bottleneck_ms;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Wait until every device thread alive got here. */
static void bar_wait(struct mb_multi *m)
{
    pthread_mutex_lock(&m->mu);
    int phase = m->phase;
    if (++m->arrived >= m->live) {
        m->arrived = 0;
        m->phase++;
        pthread_cond_broadcast(&m->cv);
    }
    while (phase == m->phase)
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
}

static void bar_wait_cb(void *arg)
{
    bar_wait(arg);
}

/* Each device's thread: its session made in turn (device 0 first: it
 * brings everything up), then the frames of all devices at once, then the
 * attached runners' teardown before the host session's. */
static void *dev_main(void *arg)
{
    mm_dev *d = arg;
    struct mb_multi *m = d->m;
    pthread_mutex_lock(&m->mu);
    while (m->next_create != d->i)
        pthread_cond_wait(&m->cv, &m->mu);
    if (!m->failed) {
        mb_session_config c = m->cfg;
        c.device = d->site;
        c.n_sessions = m->n;
        c.epoch_tag = (uint16_t)(d->i + 1);
        c.attach = d->i ? m->d[0].s : NULL;
        c.timeline = d->timeline[0] ? d->timeline : NULL;
        c.on_frame = d->i ? NULL : m->cfg.on_frame;
        char err[1024];
        pthread_mutex_unlock(&m->mu);
        mb_session *s = mb_session_new(&c, err, sizeof err);
        pthread_mutex_lock(&m->mu);
        d->s = s;
        if (!s) {
            m->failed = 1;
            snprintf(m->err, sizeof m->err, "device %s: %s", m->cfg.topo->sites[d->site].name, err);
        }
    }
    m->next_create++;
    pthread_cond_broadcast(&m->cv);
    int go = 0;
    pthread_mutex_unlock(&m->mu);
    bar_wait(m);
    pthread_mutex_lock(&m->mu);
    go = !m->failed;
    pthread_mutex_unlock(&m->mu);
    if (go) {
        d->s->ran = 1;
        /* every device's measured frames start together, after all warm-ups */
        d->s->after_warmup = bar_wait_cb;
        d->s->after_warmup_arg = m;
        ss_run_frames(d->s);
    }
    bar_wait(m);
    if (go && d->i > 0)
        ss_teardown(d->s);
    bar_wait(m);
    if (go && d->i == 0) {
        ss_net_realtime_end(d->s);
        ss_teardown(d->s);
    }
    return NULL;
}

/* The sharing model of the header, per device. */
static void predict(struct mb_multi *m)
{
    const mb_topology *t = m->cfg.topo;
    double load[MB_MAX_SITES] = {0};
    for (int k = 0; k < m->n; k++) {
        mm_dev *d = &m->d[k];
        const mb_plan *p = d->s->cur;
        d->shared = mb_plan_has_shares(p);
        /* a plan with shares is predicted under them (policies/registry.c, predict) */
        d->pred_alone_ms = d->shared ? mb_plan_metric_get(p, "latency_alone_ms") : p->pred.latency_ms;
        for (int st = 0; st < p->n_steps; st++)
            if (p->steps[st].kind == MB_STEP_COMPUTE && p->steps[st].site != d->site)
                d->server_ms[p->steps[st].site] += p->steps[st].t_end_ms - p->steps[st].t_start_ms;
        for (int n = 0; n < t->n_sites; n++)
            load[n] += d->server_ms[n];
        d->policy_shared_ms = mb_plan_metric_get(p, "latency_shared_ms");
    }
    m->bottleneck_ms = 0;
    for (int n = 0; n < t->n_sites; n++)
        m->bottleneck_ms = fmax(m->bottleneck_ms, load[n]);
    for (int k = 0; k < m->n; k++) {
        mm_dev *d = &m->d[k];
        double wait = 0;
        if (d->shared) { /* its reserved share: the others do not delay it */
            d->pred_ms = d->s->cur->pred.latency_ms;
            continue;
        }
        for (int j = 0; j < m->n; j++) {
            if (j == k)
                continue;
            const mm_dev *o = &m->d[j];
            double s_j = 0;
            for (int n = 0; n < t->n_sites; n++)
                s_j += o->server_ms[n];
            double period = m->cfg.fps > 0 ? 1e3 / m->cfg.fps : o->pred_alone_ms;
            int in_step = m->cfg.fps > 0 || fabs(o->pred_alone_ms - d->pred_alone_ms) <= 0.02 * d->pred_alone_ms;
            double w = in_step ? 1 : period > 0 ? fmin(1, s_j / period) : 1;
            for (int n = 0; n < t->n_sites; n++)
                wait += w * fmin(o->server_ms[n], d->server_ms[n]);
        }
        d->pred_ms = d->pred_alone_ms + wait;
    }
}

/* Whether the devices' plans hold shares of the servers (dds, dds:shares=equal). */
static int any_shared(const mb_multi *m)
{
    int any = 0;
    for (int k = 0; k < m->n; k++)
        any |= m->d[k].shared;
    return any;
}

static double dev_share(const mm_dev *d)
{
    double sh = 0;
    for (int n = 0; n < MB_MAX_SITES; n++)
        sh = fmax(sh, d->s->cur->share[n]);
    return sh;
}

/* Per-device figures and the aggregate, after every session's report. */
static void summarise(struct mb_multi *m)
{
    double t0 = INFINITY, t1 = -INFINITY, busy_wall = 0;
    double *errs = calloc((size_t)m->n, sizeof *errs);
    int n_err = 0;
    m->mean_ms = m->mean_pred_ms = m->energy_total_mj = 0;
    for (int k = 0; k < m->n; k++) {
        mm_dev *d = &m->d[k];
        mb_session *s = d->s;
        double *q = calloc((size_t)s->n_rec + 1, sizeof *q), *b = calloc((size_t)s->n_rec + 1, sizeof *b);
        int nq = 0;
        /* a device holding a share s occupies s of the server while its
         * (stretched) steps run; first come, first served, all of it */
        double held = d->shared ? dev_share(d) : 1;
        for (int f = 0; f < s->n_rec; f++) {
            const ss_frame *fr = &s->rec[f];
            busy_wall += fr->server_ms / 1e3 * held;
            if (!fr->ok || !q || !b)
                continue;
            q[nq] = fr->queue_ms / s->k;
            b[nq++] = fr->server_ms / s->k;
        }
        d->queue_ms = median(q, nq);
        d->srv_busy_ms = median(b, nq);
        free(q);
        free(b);
        if (s->n_rec) {
            t0 = fmin(t0, s->t_stream);
            t1 = fmax(t1, s->t_stream_end);
        }
        d->measured_ms = s->rep.measured_ms;
        d->energy_mj = s->rep.energy_mj;
        d->output_match = s->rep.all_match && s->rep.ok_frames > 0;
        d->ok_frames = s->rep.ok_frames;
        d->rel_err = mb_rel_error(d->measured_ms, d->pred_ms);
        m->mean_ms += d->measured_ms / m->n;
        m->mean_pred_ms += d->pred_ms / m->n;
        if (isfinite(d->energy_mj))
            m->energy_total_mj += d->energy_mj;
        if (errs && isfinite(d->rel_err))
            errs[n_err++] = fabs(d->rel_err);
    }
    /* the servers' compute over the streams' span, per server */
    int n_srv = 0;
    for (int i = 0; i < m->cfg.topo->n_sites; i++)
        n_srv += m->cfg.topo->sites[i].role != MB_ROLE_DEVICE;
    m->util = t1 > t0 && n_srv ? busy_wall / (t1 - t0) / n_srv : NAN;
    m->med_abs_err = errs ? median(errs, n_err) : NAN;
    free(errs);
}

int mb_multi_run(const mb_session_config *cfg, const int *devices, int n, mb_multi **out, char *err,
                 size_t errlen)
{
    *out = NULL;
    if (n < 1 || n > MB_MAX_SITES) {
        snprintf(err, errlen, "devices: 1 to %d", MB_MAX_SITES);
        return -1;
    }
    struct mb_multi *m = calloc(1, sizeof *m);
    mm_dev *d = calloc((size_t)n, sizeof *d);
    if (!m || !d) {
        free(m);
        free(d);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->cfg = *cfg;
    m->n = n;
    m->d = d;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->live = n;
    *out = m;
    for (int k = 0; k < n; k++) {
        d[k].m = m;
        d[k].i = k;
        d[k].site = devices[k];
        const char *tl = cfg->timeline;
        if (tl) { /* one trace per device: FILE.json -> FILE-devK.json */
            size_t len = strlen(tl);
            int js = len > 5 && !strcmp(tl + len - 5, ".json");
            snprintf(d[k].timeline, sizeof d[k].timeline, "%.*s-%s%s", (int)(js ? len - 5 : len), tl,
                     cfg->topo->sites[devices[k]].name, js ? ".json" : "");
        }
    }
    for (int k = 0; k < n; k++) {
        if (!pthread_create(&d[k].th, NULL, dev_main, &d[k])) {
            d[k].th_on = 1;
            continue;
        }
        /* the threads started go on without the others: failed, they skip
         * the frames; the barrier counts only them */
        pthread_mutex_lock(&m->mu);
        m->failed = 1;
        snprintf(m->err, sizeof m->err, "cannot start a thread per device");
        m->live = k;
        if (k > 0 && m->arrived >= m->live) {
            m->arrived = 0;
            m->phase++;
        }
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        break;
    }
    for (int k = 0; k < n; k++)
        if (d[k].th_on)
            pthread_join(d[k].th, NULL);
    if (m->failed) {
        snprintf(err, errlen, "%s", m->err);
        return -1;
    }
    /* the links are down: their packet logs are complete */
    for (int k = 0; k < n; k++)
        ss_compute_report(d[k].s);
    predict(m);
    summarise(m);
    m->ran = 1;
    return 0;
}

int mb_multi_ok(const mb_multi *m)
{
    int ok = m->ran;
    for (int k = 0; ok && k < m->n; k++)
        ok = m->d[k].output_match && m->d[k].s->rep.failed_frames == 0;
    return ok;
}

int mb_multi_interrupted(const mb_multi *m)
{
    for (int k = 0; k < m->n; k++)
        if (m->d[k].s && m->d[k].s->rep.interrupted)
            return 1;
    return 0;
}

static void jnum(FILE *f, const char *key, double v, const char *fmt)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fprintf(f, "null");
}

void mb_multi_write_json(const mb_multi *m, FILE *f)
{
    const mb_session *s0 = m->d[0].s;
    fprintf(f, "{\"n_devices\":%d,\"model\":", m->n);
    mb_json_print_string(f, m->cfg.model);
    fprintf(f, ",\"policy\":");
    mb_json_print_string(f, m->cfg.policy);
    fprintf(f, ",\"link\":");
    mb_json_print_string(f, m->cfg.link_label ? m->cfg.link_label : "");
    fprintf(f, ",\"frames\":%d", m->cfg.frames);
    jnum(f, "fps", m->cfg.fps, "%.4f");
    jnum(f, "tdf", s0->k, "%.4f");
    int shares = any_shared(m);
    fprintf(f, ",\"sharing\":\"%s\",\"prediction_model\":\"%s\"", shares ? "shares" : "fcfs-steps",
            shares ? "L_i(s_i): the plan with its compute on server n at 1/s_in of the speed (DDS's model)"
                   : "L_i + sum_n sum_{j!=i} w_ij min(S_jn, S_in); w_ij = 1 in step, else S_j / T_j");
    jnum(f, "server_round_ms", m->bottleneck_ms, "%.3f");
    jnum(f, "mean_measured_ms", m->mean_ms, "%.3f");
    jnum(f, "mean_predicted_ms", m->mean_pred_ms, "%.3f");
    jnum(f, "median_abs_rel_err", m->med_abs_err, "%.4f");
    jnum(f, "energy_mj_total", m->energy_total_mj, "%.3f");
    jnum(f, "server_util", m->util, "%.4f");
    double load[1];
    jnum(f, "loadavg", getloadavg(load, 1) == 1 ? load[0] : NAN, "%.2f");
    fprintf(f, ",\"all_match\":%s,\"devices\":[", mb_multi_ok(m) ? "true" : "false");
    for (int k = 0; k < m->n; k++) {
        const mm_dev *d = &m->d[k];
        fprintf(f, "%s{\"device\":", k ? "," : "");
        mb_json_print_string(f, m->cfg.topo->sites[d->site].name);
        jnum(f, "measured_ms", d->measured_ms, "%.3f");
        jnum(f, "predicted_ms", d->pred_ms, "%.3f");
        jnum(f, "predicted_alone_ms", d->pred_alone_ms, "%.3f");
        jnum(f, "rel_err", d->rel_err, "%.4f");
        jnum(f, "queue_ms", d->queue_ms, "%.3f");
        jnum(f, "server_ms", d->srv_busy_ms, "%.3f");
        jnum(f, "policy_shared_ms", d->policy_shared_ms, "%.3f");
        jnum(f, "share", d->shared ? dev_share(d) : NAN, "%.4f");
        jnum(f, "energy_mj", d->energy_mj, "%.3f");
        fprintf(f, ",\"output_match\":%s,\"ok_frames\":%d,\"failed_frames\":%d,\"session\":",
                d->output_match ? "true" : "false", d->ok_frames, d->s->rep.failed_frames);
        mb_session_write_json(d->s, f);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
}

void mb_multi_write_text(const mb_multi *m, FILE *f)
{
    fprintf(f, "%d devices sharing the servers (%s, %s), %d frames each, tdf %.2f\n", m->n, m->cfg.model,
            m->cfg.policy, m->cfg.frames, m->d[0].s->k);
    fprintf(f, "%-8s %10s %10s %10s %8s %9s %10s %7s %6s\n", "device", "measured", "predicted", "alone", "error",
            "queue", "energy", "output", "share");
    for (int k = 0; k < m->n; k++) {
        const mm_dev *d = &m->d[k];
        char share[16] = "-";
        if (d->shared)
            snprintf(share, sizeof share, "%.3f", dev_share(d));
        fprintf(f, "%-8s %8.2fms %8.2fms %8.2fms %+7.1f%% %7.2fms %8.2fmJ %7s %6s\n",
                m->cfg.topo->sites[d->site].name, d->measured_ms, d->pred_ms, d->pred_alone_ms, d->rel_err * 100,
                d->queue_ms, d->energy_mj, d->output_match ? "match" : "DIFFERS", share);
    }
    fprintf(f, "mean %.2f ms measured, %.2f ms predicted (model: %s; "
               "busiest server's work per round %.2f ms); median |error| %.1f%%\n",
            m->mean_ms, m->mean_pred_ms,
            any_shared(m) ? "each device at its share of the server, L_i(s_i)"
                           : "L_i + sum_{j!=i} w_ij min(S_j, S_i) per server",
            m->bottleneck_ms, m->med_abs_err * 100);
    fprintf(f, "server utilisation %.1f%%, device energy %.2f mJ in all\n", m->util * 100, m->energy_total_mj);
    for (int k = 0; k < m->n; k++)
        for (int w = 0; m->d[k].s && w < m->d[k].s->n_warn; w++)
            fprintf(f, "warning (%s): %s\n", m->cfg.topo->sites[m->d[k].site].name, m->d[k].s->warn[w]);
}

void mb_multi_free(mb_multi *m)
{
    if (!m)
        return;
    /* attached sessions first: the host session owns the links, nodes and temp directory */
    for (int k = m->n - 1; k >= 0; k--)
        mb_session_free(m->d[k].s);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m->d);
    free(m);
}
