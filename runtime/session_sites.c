/* Run session, site speed: each site's node type is some factor slower or
 * faster than this machine. The session calibrates this machine now
 * against the planning profile (mb_calibrate), so that the dilation of
 * each site and the prediction rest on the same record: a host that
 * drifted since the profile was measured moves neither. A slower site is
 * emulated by time dilation (default) or a cgroup CPU cap; a faster one by
 * the time dilation factor k, which slows the whole run k times
 * (timescale.h, docs/runtime.md). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/exec.h"
#include "mecbed/platform.h"
#include "mecbed/timescale.h"
#include "session_priv.h"

double ss_emulated(const mb_session *s, double wall_s)
{
    return mb_tdf_to_emulated(s->k, wall_s);
}

/* No emulation (--no-cap): every site runs at this machine's speed, and
 * the plan is made for that (each site's profile scale undoes its type's
 * factor), as on real devices. */
static void plan_at_host_speed(mb_session *s)
{
    const mb_topology *t = s->cfg.topo;
    for (int i = 0; i < t->n_sites; i++)
        if (!t->sites[i].address[0]) {
            mb_cost_set_site_scale(s->cfg.cost, i, 1.0 / s->factor[i]);
            s->emu_factor[i] = 1;
        }
}

/* The thread CPU time (ms) of one pass of the model on the device's
 * kernels: one executor call of `passes` passes (its buffers planned once,
 * as in the calibration), divided by the passes. 0 when it fails. */
static double cpu_ms_per_pass(mb_session *s, int passes)
{
    char why[256];
    mb_backend *be = mb_backend_new(s->cfg.kernels, 1, why, sizeof why);
    mb_tensor **in = mb_exec_make_inputs(s->cfg.g, s->cfg.seed ? s->cfg.seed : 1);
    mb_op_time *times = calloc((size_t)s->cfg.g->n_nodes + 1, sizeof *times);
    mb_tensor **out = NULL;
    double ms = 0;
    if (be && in && times) {
        mb_exec_opts o = {.times = times, .repeats = passes};
        double c0 = mb_rt_thread_cpu_s();
        if (!mb_exec_run(s->cfg.g, be, in, &out, &o, NULL, why, sizeof why))
            ms = (mb_rt_thread_cpu_s() - c0) * 1e3 / passes;
    }
    ss_free_outputs(s->cfg.g, out);
    if (in) {
        int k = 0;
        for (int i = 0; i < s->cfg.g->n_nodes; i++)
            if (s->cfg.g->nodes[i].type == MB_OP_INPUT)
                mb_tensor_free(in[k++]);
        free(in);
    }
    free(times);
    mb_backend_free(be);
    return ms;
}

/* The calibration, each emulated site's factor against this machine now,
 * and the time dilation factor. */
static int calibrate(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    char why[768] = "";
    /* Enough passes for about 0.3 s of the profile's op time (5 to 40): a
     * model of a few ms calibrated in 5 passes on a busy machine moves by
     * tens of percent from run to run, and every emulated op with it. */
    int repeats = s->cfg.calib_repeats;
    if (repeats <= 0) {
        double ref_ms = s->cfg.profile ? mb_profile_total_ms(s->cfg.profile) : 0;
        repeats = ref_ms > 0 ? (int)ceil(300.0 / ref_ms) : 5;
        repeats = repeats < 5 ? 5 : repeats > 40 ? 40 : repeats;
    }
    double w0 = mb_now(), c0 = mb_rt_thread_cpu_s();
    s->cal = mb_calibrate(s->cfg.g, s->cfg.profile, s->cfg.kernels, 1, repeats, why, sizeof why);
    double wall = mb_now() - w0, cpu = mb_rt_thread_cpu_s() - c0;
    if (!s->cal) {
        snprintf(err, errlen, "calibrating this machine: %s", why);
        return -1;
    }
    s->cpu_share = wall > 0 && cpu > 0 && cpu < wall ? cpu / wall : 1;
    /* The calibration times ops on the wall clock; dilation stretches the
     * CPU time an op took. On a busy machine the two part: with a
     * CPU-bound process on the same core the calibration's wall times
     * doubled while the ops' CPU time did not, and the sites came out
     * half as dilated as they should. So this machine's speed is taken
     * from the CPU time of the same passes (cache and memory contention
     * included, waiting for a core not), and the calibration's wall-clock
     * record is kept for the report. */
    double cpu_ms = cpu_ms_per_pass(s, repeats);
    s->host_scale = s->cal->ref_total_ms > 0 && cpu_ms > 0 ? cpu_ms / s->cal->ref_total_ms : s->cal->host_scale;
    for (int i = 0; i < t->n_sites; i++) {
        double f = mb_calibration_site_factor(s->cal, mb_cost_site_type(s->cfg.cost, i));
        /* a type the calibration cannot place: the cost model's own factor */
        f = isfinite(f) && f > 0 ? f * s->cal->host_scale : s->factor[i];
        s->emu_factor[i] = f / s->host_scale;
    }
    double k_auto = mb_tdf_auto(s->emu_factor, t->n_sites);
    if (s->cfg.emulate == MB_EMULATE_MODEL) {
        /* modelled op times: this machine must finish each op within its
         * dilated time, with room for variation and sharing the cores */
        double room[MB_MAX_SITES];
        for (int i = 0; i < t->n_sites; i++)
            room[i] = s->emu_factor[i] / MB_MODEL_HEADROOM;
        k_auto = mb_tdf_auto(room, t->n_sites);
    }
    if (s->cfg.n_sessions > 1) {
        /* several devices: their runners and the nodes compute at once on
         * this machine's cores; each gets cores / (devices + servers) of it,
         * with the same headroom */
        int c = s->cfg.n_sessions;
        for (int i = 0; i < t->n_sites; i++)
            c += t->sites[i].role != MB_ROLE_DEVICE;
        double need = c * MB_MODEL_HEADROOM / mb_platform_cores();
        if (need > k_auto)
            k_auto = need;
    }
    s->k = s->cfg.tdf >= 1 ? s->cfg.tdf : k_auto;
    for (int i = 0; i < t->n_sites; i++) {
        s->slowdown[i] = mb_tdf_site_slowdown(s->k, s->emu_factor[i]);
        if (s->slowdown[i] >= 1 - 1e-9)
            continue;
        ss_warn(s, "%s (%s) is %.2fx faster than this machine now, more than --tdf %.2f can emulate: it runs at "
                   "this machine's speed, slower than its node type, so it measures slower than predicted "
                   "(--tdf auto would use %.2f)",
                t->sites[i].name, mb_cost_site_type(s->cfg.cost, i)->name, 1 / s->emu_factor[i], s->k, k_auto);
        s->slowdown[i] = 1;
    }
    return 0;
}

/* Before planning: the calibration and what each site is emulated as
 * (real servers: nothing; --no-cap: this machine's speed, planned for).
 * 0, or -1 with err (the calibration failed). */
int ss_sites_plan_speed(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    s->k = 1;
    s->cpu_share = s->host_scale = 1;
    for (int i = 0; i < t->n_sites; i++) {
        s->factor[i] = mb_cost_site_factor(s->cfg.cost, i);
        s->emu_factor[i] = s->factor[i];
        s->slowdown[i] = 1;
    }
    if (s->real)
        return 0;
    if (s->cfg.emulate == MB_EMULATE_NONE) {
        plan_at_host_speed(s);
        return 0;
    }
    return calibrate(s, err, errlen);
}

/* Runs first in each of the device's compute and sender threads: they
 * join the device's CPU cap. */
void ss_device_thread_hook(void *arg)
{
    mb_session *s = arg;
    mb_cpu_cap *cap = s->cap[s->cfg.device];
    char err[256];
    if (cap && mb_cpu_cap_add_thread(cap, 0, err, sizeof err) && s->cfg.log) {
        char msg[320];
        snprintf(msg, sizeof msg, "device thread not capped: %s", err);
        s->cfg.log(s->cfg.log_arg, MB_SESSION_WARN, msg);
    }
}

/* At bring-up, before the nodes start: the device's slowdown (dilation)
 * or a CPU cgroup per slower site (caps; the nodes and the device's threads
 * join them). run_id names the cgroups. 0, or -1 with err. */
int ss_sites_apply(mb_session *s, const char *run_id, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int dev = s->cfg.device;
    int use_cap = s->cfg.emulate == MB_EMULATE_CAP;
    int no_emulation = s->cfg.emulate == MB_EMULATE_NONE;
    char why[256];
    int have_caps = !mb_cpu_cap_available(NULL, why, sizeof why);
    if (have_caps)
        mb_cpu_cap_clean_dead(); /* a killed run's cgroups */
    int cap_ok = use_cap && have_caps;
    if (use_cap && !cap_ok) {
        ss_warn(s, "node types are not emulated (%s): every site runs at this machine's speed", why);
        for (int i = 0; i < t->n_sites; i++)
            s->slowdown[i] = 1;
    }
    int model = s->cfg.emulate == MB_EMULATE_MODEL;
    int dilate = !use_cap && !no_emulation && !model;
    if (dilate)
        mb_rt_set_slowdown(s->slowdown[dev]);
    if (model)
        mb_rt_set_step_timing(1, s->k);
    double total_cores = 0;
    for (int i = 0; i < t->n_sites; i++) {
        if (t->sites[i].address[0])
            continue;
        double cores = 1.0;
        if (cap_ok && s->slowdown[i] > 1.0001) {
            char name[64];
            snprintf(name, sizeof name, "%s%s-%s", MB_CPU_CAP_PREFIX, run_id, t->sites[i].name);
            s->cap[i] = mb_cpu_cap_new(name, 1.0 / s->slowdown[i], err, errlen);
            if (!s->cap[i])
                return -1;
            cores = 1.0 / s->slowdown[i];
            s->cap_cores[i] = cores;
        } else if ((dilate || model) && s->slowdown[i] > 1.0001) {
            /* dilated, or modelled: the op computes at this machine's speed
             * and its site waits out the rest (modelled: with headroom) */
            cores = (model ? MB_MODEL_HEADROOM : 1.0) / s->slowdown[i];
            cores = cores < 1 ? cores : 1;
        }
        total_cores += cores;
    }
    if (total_cores > mb_platform_cores() + 1e-9)
        ss_warn(s, "the sites' CPU shares add up to %.2f cores but this machine has %d: when they compute at the same time, timings are invalid",
                total_cores, mb_platform_cores());
    return 0;
}

void ss_sites_free(mb_session *s)
{
    /* the calibration stays: the report carries it */
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (s->cap[i]) {
            mb_cpu_cap_free(s->cap[i]);
            s->cap[i] = NULL;
        }
}
