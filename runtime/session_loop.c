/* Run session, the frame loop: warm-up frames, then the measured frames
 * released back to back or at --fps (up to three in flight then, so they
 * pipeline across the sites), each one's outputs checked against the
 * unsplit model, a failed one completed on the device when asked, and
 * re-planning between frames. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/exec.h"
#include "mecbed/platform.h"
#include "session_priv.h"

void ss_frame_error(ss_frame *fr, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t old = fr->error ? strlen(fr->error) : 0;
    char *e = realloc(fr->error, old + strlen(msg) + 3);
    if (!e)
        return;
    snprintf(e + old, strlen(msg) + 3, "%s%s", old ? "; " : "", msg);
    fr->error = e;
}

void ss_free_outputs(const mb_graph *g, mb_tensor **out)
{
    if (!out)
        return;
    for (int i = 0; i < g->n_outputs; i++)
        mb_tensor_free(out[i]);
    free(out);
}

/* Compare a frame's outputs with the unsplit model's. */
static void compare_outputs(mb_session *s, mb_tensor **out, ss_frame *fr)
{
    double d = 0;
    for (int i = 0; i < s->cfg.g->n_outputs; i++) {
        double x = mb_tensor_max_abs_diff(out[i], s->ref[i]);
        if (!(x <= d))
            d = x;
    }
    fr->max_abs_err = d;
    /* Bit-exact where the same kernel computes the same elements, else
     * within 1e-5 of the output's scale (docs/runtime.md). */
    fr->output_match = d <= 1e-5 * (s->ref_scale > 1 ? s->ref_scale : 1);
}

/* Run the whole model on the device after a failure. */
static void fallback_local(mb_session *s, ss_frame *fr)
{
    int dev = s->cfg.device;
    if (!s->fallback_capped && s->cap[dev]) {
        ss_device_thread_hook(s);
        s->fallback_capped = 1;
    }
    mb_tensor **out = NULL;
    char err[512];
    double t0 = mb_now(), cpu0 = mb_rt_thread_cpu_s();
    if (mb_exec_run(s->cfg.g, s->be, s->inputs, &out, NULL, NULL, err, sizeof err)) {
        ss_frame_error(fr, "local fallback failed too: %s", err);
        return;
    }
    mb_rt_dilate(t0, mb_rt_thread_cpu_s() - cpu0); /* the device's speed, when dilated */
    double t1 = mb_now();
    fr->fell_back = 1;
    fr->t_end = t1;
    fr->latency_ms = (t1 - fr->t_start) * 1e3;
    fr->busy_ms = (t1 - t0) * 1e3;
    compare_outputs(s, out, fr);
    ss_free_outputs(s->cfg.g, out);
}

/* Warm-up frames: caches, page faults, TCP windows; not reported. Returns
 * the next frame number. */
static uint32_t warm_up(mb_session *s)
{
    uint32_t frame_no = 0;
    for (int w = 0; w < s->cfg.warmup && !(s->cfg.stop && *s->cfg.stop); w++) {
        mb_tensor **out = NULL;
        mb_frame_report rep;
        if (mb_runner_frame(s->runner, frame_no++, s->inputs, &out, NULL, &rep))
            break; /* the measured frames report it */
        ss_free_outputs(s->cfg.g, out);
    }
    return frame_no;
}

/* Release frame index `next` to the runner. */
static void submit(mb_session *s, int next, uint32_t first_frame, double release)
{
    ss_frame *fr = &s->rec[next];
    fr->frame = first_frame + (uint32_t)next;
    fr->epoch = s->n_plans - 1;
    fr->predicted_ms = s->cur->pred.latency_ms;
    fr->predicted_energy_mj = s->cur->pred.energy_mj;
    fr->release = release;
    mb_frame_report rep;
    if (mb_runner_submit(s->runner, fr->frame, s->inputs, &rep)) {
        fr->submit_failed = 1;
        ss_frame_error(fr, "%s", rep.error);
        fr->t_start = rep.t_start;
    }
}

/* A collected frame's outcome: figures when it completed; the failure,
 * and the local fallback when asked, when it did not. */
static void finish(mb_session *s, ss_frame *fr, int frc, mb_tensor **out, const mb_frame_report *rep)
{
    int dev = s->cfg.device;
    if (frc == 1) {
        fr->ok = 1;
        fr->t_end = rep->t_end;
        fr->latency_ms = rep->latency_ms;
        compare_outputs(s, out, fr);
        ss_free_outputs(s->cfg.g, out);
        fr->critical_ms = rs_critical_path_ms(s->cur, s->cfg.g, &s->tl, fr->frame);
        for (int i = 0; i < s->tl.n; i++) {
            const mb_event *e = &s->tl.ev[i];
            if (e->frame != fr->frame)
                continue;
            if (e->kind == MB_EV_QUEUE)
                fr->queue_ms += (e->t1 - e->t0) * 1e3;
            else if (e->kind == MB_EV_COMPUTE && e->site != dev)
                fr->server_ms += (e->t1 - e->t0) * 1e3;
        }
        rs_device_bytes(&s->tl, fr->frame, dev, &fr->bytes_up, &fr->bytes_down);
        return;
    }
    if (!fr->t_start)
        fr->t_start = mb_now();
    fr->critical_ms = NAN;
    ss_info(s, "frame %u failed: %s", fr->frame, fr->error ? fr->error : "?");
    if (s->cfg.fallback_local) {
        fallback_local(s, fr);
        mb_event e = {.frame = fr->frame, .step = -1, .kind = MB_EV_FALLBACK, .site = dev,
                      .peer = -1, .op = -1, .t0 = fr->t_end - fr->busy_ms / 1e3, .t1 = fr->t_end};
        if (fr->fell_back)
            mb_timeline_add(&s->tl, &e);
    }
}

/* What the end of the run needs of a finished frame's timeline events is
 * taken now (its device busy time; its critical path and bytes were taken
 * in finish); then, unless the run keeps them (--timeline, or radio energy
 * from the timeline's transfers), they go: a long stream's memory stays
 * flat and finish() does not rescan every earlier frame's events. */
static void forget_events(mb_session *s, ss_frame *fr, int mark)
{
    if (fr->ok && !fr->busy_known) {
        fr->busy_ms = rs_device_busy_ms(&s->tl, fr->frame, s->cfg.device);
        fr->busy_known = 1;
    }
    if (!s->keep_events && mark <= s->tl.n)
        s->tl.n = mark;
}

/* Warm-up, then every measured frame until done or stopped. Returns 0. */
int ss_run_frames(mb_session *s)
{
    s->keep_events = s->cfg.timeline || !ss_packet_logs_expected(s);
    uint32_t first_frame = warm_up(s);
    if (s->after_warmup)
        s->after_warmup(s->after_warmup_arg);
    ss_net_realtime_begin(s);
    /* frames are released at the emulated rate: every k / fps wall seconds */
    double fps = s->cfg.fps / s->k;
    int frames = s->cfg.frames;
    s->t_stream = mb_now();
    /* Frames are released at their times (back to back without fps, one at
     * a time then, so each latency is a clean single-frame figure). */
    int next = 0, head = 0; /* next frame to release; oldest not yet collected */
    int max_inflight = fps > 0 ? 3 : 1;
    while (head < frames && !(s->cfg.stop && *s->cfg.stop)) {
        double now = mb_now();
        double release = fps > 0 ? s->t_stream + next / fps : now;
        if (next < frames && next - head < max_inflight && now >= release) {
            submit(s, next, first_frame, fps > 0 ? release : now);
            next++;
            continue;
        }
        if (head == next) { /* nothing in flight: wait for the next release */
            usleep((useconds_t)fmin(1e6 * (release - now), 10000) + 1);
            continue;
        }
        ss_frame *fr = &s->rec[head];
        mb_tensor **out = NULL;
        mb_frame_report rep;
        int frc = -1;
        int tl_mark = s->tl.n; /* this frame's events are appended from here */
        if (!fr->submit_failed) {
            double until = next < frames && next - head < max_inflight ? release : now + 0.2;
            frc = mb_runner_collect(s->runner, fr->frame, until, &out, &s->tl, &rep);
            if (frc == 0)
                continue;
            fr->t_start = rep.t_start;
            if (frc < 0)
                ss_frame_error(fr, "%s", rep.error);
        }
        head++;
        s->n_rec = head;
        finish(s, fr, frc, out, &rep);
        if (s->cfg.on_frame)
            s->cfg.on_frame(s->cfg.on_frame_arg, head - 1, fr->ok);
        /* Re-plan only between frames: with nothing else in flight. */
        if (fr->ok && s->cfg.adaptive)
            ss_replan_after_frame(s, fr->frame, head == next, first_frame + (uint32_t)next);
        forget_events(s, fr, tl_mark);
    }
    s->t_stream_end = mb_now();
    s->interrupted = s->cfg.stop && *s->cfg.stop;
    return 0;
}
