/* Run session: configuration checks, the first plan, the unsplit
 * reference, the session's life cycle (new / run / report / free) and its
 * messages. The work itself is in session_sites.c (site speed),
 * session_net.c (links, nodes, teardown), session_loop.c (frames),
 * session_replan.c, session_stats.c (figures) and session_report.c. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/auth.h"
#include "mecbed/exec.h"
#include "mecbed/link.h"
#include "mecbed/timescale.h"
#include "session_priv.h"

static void say(mb_session *s, mb_session_level level, int keep, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (keep && s->n_warn < SESSION_MAX_WARN)
        snprintf(s->warn[s->n_warn++], sizeof s->warn[0], "%s", msg);
    else if (keep)
        return; /* the list is full: the first ones say enough */
    if (s->cfg.log)
        s->cfg.log(s->cfg.log_arg, level, msg);
}

void ss_warn(mb_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(s, MB_SESSION_WARN, 1, fmt, ap);
    va_end(ap);
}

void ss_info(mb_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(s, MB_SESSION_INFO, 0, fmt, ap);
    va_end(ap);
}

void ss_error(mb_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say(s, MB_SESSION_ERROR, 0, fmt, ap);
    va_end(ap);
}

void mb_session_config_init(mb_session_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = "emu";
    cfg->kernels = "cpu";
    cfg->emulate = MB_EMULATE_MODEL;
    cfg->frames = 1;
    cfg->warmup = 1;
    cfg->timeout_s = 10;
    cfg->seed = 1;
    cfg->objective = MB_OBJ_LATENCY;
}

/* Emulated or real servers (the links are checked as dilated, once the
 * time dilation factor is known: ss_net_prepare). */
static int check_topology(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int dev = s->cfg.device;
    s->real = 1;
    int n_remote = 0;
    for (int i = 0; i < t->n_sites; i++) {
        if (i != dev && !t->sites[i].address[0])
            s->real = 0;
        n_remote += i != dev && t->sites[i].address[0];
    }
    if (!s->real && n_remote) {
        snprintf(err, errlen, "some servers have address= and some not: mixing emulated and "
                              "remote servers is not supported (the emulated namespaces have no route out); "
                              "give every server an address= or none");
        return -1;
    }
    if (s->real && !t->sites[dev].address[0]) {
        snprintf(err, errlen, "every server has address=, so this is a run over the real network: "
                              "give the device's address= too (host:port where the nodes send it data)");
        return -1;
    }
    return 0;
}

/* A long run deserves a warning in the report, with its expected wall
 * duration: frames x the plan's prediction (or the frame interval) x k. */
static void warn_long_run(mb_session *s)
{
    double per_frame = s->cur->pred.latency_ms / 1e3;
    if (s->cfg.fps > 0 && 1 / s->cfg.fps > per_frame)
        per_frame = 1 / s->cfg.fps;
    char msg[256];
    if (mb_tdf_warning(s->k, (s->cfg.frames + s->cfg.warmup) * per_frame, msg, sizeof msg))
        ss_warn(s, "%s", msg);
}

/* The policy's first plan. */
static int first_plan(mb_session *s, char *err, size_t errlen)
{
    const mb_policy_ops *ops = mb_policy_find(s->cfg.policy);
    if (!ops) {
        snprintf(err, errlen, "unknown policy '%s'", s->cfg.policy);
        return -1;
    }
    char why[768] = "";
    s->policy = mb_policy_session_new(ops, s->cfg.g, s->cfg.topo, s->cfg.cost, s->cfg.device,
                                      s->cfg.objective, s->cfg.policy_opts, why, sizeof why);
    mb_plan *plan = s->policy ? mb_policy_session_plan(s->policy, NULL, why, sizeof why) : NULL;
    if (!plan) {
        snprintf(err, errlen, "%s", why); /* already "policy NAME: ..." */
        return -1;
    }
    s->plans[s->n_plans++] = plan;
    s->cur = plan;
    return 0;
}

static double max_abs(const mb_tensor *t)
{
    double m = 0;
    int64_t n = mb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (fabs(t->data[i]) > m)
            m = fabs(t->data[i]);
    return m;
}

/* The device's kernels, the inputs and the unsplit model's outputs. */
static int reference_run(mb_session *s, char *err, size_t errlen)
{
    char why[768] = "";
    s->be = mb_backend_new(s->cfg.kernels, 1, why, sizeof why);
    s->inputs = mb_exec_make_inputs(s->cfg.g, s->cfg.seed);
    if (s->be && !s->inputs)
        mb_exec_memory_error(s->cfg.g, "inputs", why, sizeof why);
    if (!s->be || !s->inputs ||
        mb_exec_run(s->cfg.g, s->be, s->inputs, &s->ref, NULL, NULL, why, sizeof why)) {
        snprintf(err, errlen, "the unsplit reference run failed: %s", why);
        return -1;
    }
    s->ref_scale = 0;
    for (int i = 0; i < s->cfg.g->n_outputs; i++)
        if (max_abs(s->ref[i]) > s->ref_scale)
            s->ref_scale = max_abs(s->ref[i]);
    return 0;
}

/* Another device of a run whose links and nodes cfg.attach brought up: its
 * site speeds and time dilation are the host session's, its plan and
 * reference its own. */
static mb_session *attached_new(mb_session *s, char *err, size_t errlen)
{
    const mb_session *h = s->cfg.attach;
    s->attached = 1;
    if (s->real || h->real || !h->net_topo || s->cfg.emulate == MB_EMULATE_CAP || s->cfg.adaptive) {
        snprintf(err, errlen, "session: only emulated runs without CPU caps or re-planning can share nodes between devices");
        goto fail;
    }
    s->k = h->k;
    s->host_scale = h->host_scale;
    s->cpu_share = h->cpu_share;
    memcpy(s->factor, h->factor, sizeof s->factor);
    memcpy(s->emu_factor, h->emu_factor, sizeof s->emu_factor);
    memcpy(s->slowdown, h->slowdown, sizeof s->slowdown);
    memcpy(s->probed_bps, h->probed_bps, sizeof s->probed_bps);
    s->net_topo = malloc(sizeof *s->net_topo);
    if (!s->net_topo) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *s->net_topo = *h->net_topo;
    if (reference_run(s, err, errlen) || ss_bring_up(s, err, errlen) || first_plan(s, err, errlen))
        goto fail;
    s->net_epoch = h->net_epoch;
    ss_clock_capture(s);
    if (mb_runner_plan(s->runner, s->cur, err, errlen))
        goto fail;
    ss_replan_init(s);
    return s;
fail:
    mb_session_free(s);
    return NULL;
}

mb_session *mb_session_new(const mb_session_config *cfg, char *err, size_t errlen)
{
    if (!cfg->g || !cfg->topo || !cfg->cost || !cfg->policy || !cfg->model) {
        snprintf(err, errlen, "session: model, graph, topology, cost model and policy are required");
        return NULL;
    }
    if (cfg->frames < 1 || cfg->warmup < 0 || cfg->device < 0 || cfg->device >= cfg->topo->n_sites) {
        snprintf(err, errlen, "session: frames >= 1, warmup >= 0 and a device site are required");
        return NULL;
    }
    mb_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (!s->cfg.backend)
        s->cfg.backend = "emu";
    if (!s->cfg.kernels)
        s->cfg.kernels = "cpu";
    if (!s->cfg.seed)
        s->cfg.seed = 1;
    if (!(s->cfg.timeout_s > 0))
        s->cfg.timeout_s = 10;
    s->saved_ns = -1;
    s->k = 1;
    for (int l = 0; l < MB_MAX_LINKS; l++)
        s->probed_bps[l] = NAN;
    mb_timeline_init(&s->tl);
    s->rec = calloc((size_t)s->cfg.frames, sizeof *s->rec);
    if (!s->rec) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (check_topology(s, err, errlen))
        goto fail;
    if (s->cfg.attach)
        return attached_new(s, err, errlen);
    /* Emulated links come up before the first plan: a link without a rate
     * in its spec is probed then, and planned with what it offers. Real
     * servers are connected to last, as late as possible after a previous
     * runner's session there ended. */
    if (ss_sites_plan_speed(s, err, errlen) || ss_net_prepare(s, err, errlen) || reference_run(s, err, errlen))
        goto fail;
    if (s->real ? first_plan(s, err, errlen) || ss_bring_up(s, err, errlen)
                : ss_bring_up(s, err, errlen) || first_plan(s, err, errlen))
        goto fail;
    warn_long_run(s);
    s->net_epoch = s->net ? mb_net_epoch(s->net) : 0;
    ss_clock_capture(s);
    if (mb_runner_plan(s->runner, s->cur, err, errlen))
        goto fail;
    ss_replan_init(s);
    return s;
fail:
    mb_session_free(s);
    return NULL;
}

int mb_session_run(mb_session *s, char *err, size_t errlen)
{
    if (s->ran || !s->runner) {
        snprintf(err, errlen, s->ran ? "the session has already run" : "the session is not up");
        return -1;
    }
    s->ran = 1;
    ss_run_frames(s);
    ss_net_realtime_end(s);
    ss_teardown(s);
    ss_compute_report(s);
    return 0;
}

int mb_session_get_report(const mb_session *s, mb_session_report *out)
{
    if (!s->ran)
        return -1;
    *out = s->rep;
    return 0;
}

const char *mb_session_warning(const mb_session *s, int i)
{
    return i >= 0 && i < s->n_warn ? s->warn[i] : NULL;
}

const mb_calibration *mb_session_calibration(const mb_session *s)
{
    return s->cal;
}

double mb_session_tdf(const mb_session *s)
{
    return s->k;
}

void mb_session_free(mb_session *s)
{
    if (!s)
        return;
    ss_teardown(s);
    ss_remove_tmp_dir(s);
    mb_key_wipe(s->key, sizeof s->key);
    for (int i = 0; i < s->n_plans; i++)
        mb_plan_free(s->plans[i]);
    mb_policy_session_free(s->policy);
    if (s->ref)
        ss_free_outputs(s->cfg.g, s->ref);
    if (s->inputs) {
        int k = 0;
        for (int i = 0; i < s->cfg.g->n_nodes; i++)
            if (s->cfg.g->nodes[i].type == MB_OP_INPUT)
                mb_tensor_free(s->inputs[k++]);
        free(s->inputs);
    }
    mb_backend_free(s->be);
    mb_calibration_free(s->cal);
    free(s->net_topo);
    mb_timeline_free(&s->tl);
    for (int i = 0; s->rec && i < s->cfg.frames; i++)
        free(s->rec[i].error);
    free(s->rec);
    free(s->bursts);
    free(s);
}
