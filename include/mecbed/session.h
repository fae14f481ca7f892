/* mecbed: a run session (docs/runtime.md). What `mecbed run` does, as a
 * library: plan with a policy, emulate each site's speed, bring the
 * topology up as emulated links (or connect to real nodes), start a node per
 * edge/cloud site, run frames for real, re-plan when the uplink moves, and
 * report measured next to predicted latency and energy. `run`, the sweep and
 * tests call it in-process:
 *
 *   mb_session *s = mb_session_new(&cfg, err, sizeof err);   // brought up
 *   mb_session_run(s, err, sizeof err);                       // warm-up + frames, torn down
 *   mb_session_report r; mb_session_get_report(s, &r);
 *   mb_session_write_json(s, stdout);
 *   mb_session_free(s);                                       // everything else
 *
 * Everything a session creates (namespaces, links, node processes, CPU
 * cgroups, temp directories) is removed by mb_session_run when the frames
 * end, by mb_session_free in any state, and by mb_session_new itself when it
 * fails. */
#ifndef MECBED_SESSION_H
#define MECBED_SESSION_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mecbed/cost.h"
#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/policy.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"

typedef struct mb_session mb_session;

typedef enum mb_session_level {
    MB_SESSION_WARN = 0, /* a warning: kept in the report when it says the run is compromised */
    MB_SESSION_INFO,     /* progress (a failed frame, a re-plan) */
    MB_SESSION_ERROR     /* something the session could not do (a file it could not write) */
} mb_session_level;

/* How a site runs at its node type's speed. Its factor comes from the
 * calibration made at the session's start (this machine now against the
 * planning profile, profile.h); a site faster than this machine is
 * emulated by the time dilation factor (timescale.h) in either mode. */
typedef enum mb_session_emulate {
    MB_EMULATE_DILATE = 0, /* stretch each op to factor x k x its CPU time here */
    MB_EMULATE_CAP,        /* a cgroup CPU share of 1/(factor x k) (bursty) */
    MB_EMULATE_NONE,       /* no emulation (--no-cap): every site at this machine's speed,
                            * the plan made for that; no calibration, k = 1. For real
                            * devices running `mecbed node` */
    MB_EMULATE_MODEL       /* (default) each op lasts its node type's modelled time, the
                            * plan's predicted step duration, x k; the kernels still compute
                            * every value, and a step this machine cannot finish in time is
                            * late (k leaves headroom: MB_MODEL_HEADROOM) */
} mb_session_emulate;

/* Under MB_EMULATE_MODEL, --tdf auto leaves each site this much headroom:
 * this machine must compute an op in 1 / MB_MODEL_HEADROOM of its dilated
 * modelled time, so that per-op variation and sites computing at once on
 * a shared machine do not make steps late. */
#define MB_MODEL_HEADROOM 1.5

/* The one definition of a prediction's error, used by every report (text,
 * JSON, the sweep's CSV): signed (measured - predicted) / predicted, so
 * +0.10 means the run took 10 % longer than predicted. NAN when either is
 * not finite or predicted is not > 0. */
double mb_rel_error(double measured, double predicted);

typedef struct mb_session_config {
    /* What to run, built by the caller (e.g. cli's plan set-up). The
     * session borrows them until mb_session_free; it adjusts cost (site
     * scales under MB_EMULATE_NONE, the probed rate of a link whose spec
     * has none, the uplink's rate when it re-plans). Otherwise it plans
     * with cost as given, so its prediction is compare's and plan's. */
    const char *model;        /* as the nodes load it: zoo name or a readable path */
    mb_graph *g;
    const mb_topology *topo;
    mb_cost_model *cost;
    int device;               /* the device's site */
    const char *profile_source; /* reported ("pinned", "cached", "given", ...) */
    const mb_profile *profile; /* the profile cost was made from: the calibration's reference
                                * (NULL: calibrate without one, factors from gflops) */
    const char *link_label;   /* the --link spec or the topology path, reported */
    int label_is_link;        /* link_label is a link spec (else a topology file) */
    /* The policy: a name registered with the policy registry (policy_host.h:
     * the built-ins once registered, or a loaded plugin), its options, the
     * objective. */
    const char *policy;
    const char *policy_opts;  /* "key=value,..." or NULL */
    mb_objective objective;
    /* Sites and links. */
    const char *backend;      /* link emulation (mb_net_backends()); NULL: emu */
    const char *kernels;      /* "cpu" or "ref" on every site; NULL: cpu */
    mb_session_emulate emulate;
    double tdf;               /* time dilation factor: 0 = auto (the smallest that emulates the
                               * fastest site, mb_tdf_auto), else fixed (>= 1) */
    int calib_repeats;        /* passes of the start-up calibration; 0: about 0.3 s of the
                               * profile's op time, 5 to 40 */
    const char *run_id;       /* namespace/interface id; NULL: random */
    const char *log_dir;      /* keep the links' logs here; NULL: a temp dir, removed */
    const char *node_exe;     /* binary started as `node` in each site; NULL: /proc/self/exe */
    /* Authentication (auth.h, docs/protocol.md): the nodes the session
     * starts get a fresh per-run key (a 0600 file in the run's private temp
     * directory, removed at the end); key_file instead gives every node and
     * the runner that key (needed for sites with address=, which run
     * elsewhere). insecure_no_auth: no key anywhere (nodes that have none). */
    const char *key_file;
    int insecure_no_auth;
    /* Frames. */
    int frames;               /* measured frames (>= 1) */
    int warmup;               /* frames run first and not reported */
    double fps;               /* release a frame every 1/fps s; 0: back to back */
    double timeout_s;         /* per frame and handshake; 0: 10 */
    int fallback_local;       /* complete a failed frame on the device alone */
    int adaptive;             /* re-plan when the uplink's goodput moves > 25 % */
    uint64_t seed;            /* input seed; 0: 1 */
    const char *timeline;     /* Chrome trace JSON here (and FILE.csv); NULL: none */
    /* Set non-zero (e.g. by a signal handler) to stop between frames; may be NULL. */
    volatile sig_atomic_t *stop;
    /* Warnings and progress; may be NULL (then nothing is said). */
    void (*log)(void *arg, mb_session_level level, const char *msg);
    void *log_arg;
    /* After each measured frame: its index among them (0-based) and whether it completed. */
    void (*on_frame)(void *arg, int index, int ok);
    void *on_frame_arg;
    /* Several devices sharing the nodes (mb_multi_run sets these): the
     * nodes a session starts serve n_sessions runners at once (0: 1); the
     * runner's plan epochs carry epoch_tag (runtime.h); a session with
     * attach set brings nothing up: it borrows attach's links, nodes, key,
     * calibration and time dilation, and connects its own runner from its
     * device's namespace. */
    int n_sessions;
    uint16_t epoch_tag;
    struct mb_session *attach;
} mb_session_config;

/* Defaults: emu links, cpu kernels, 1 frame after 1 warm-up, 10 s timeout,
 * seed 1, time dilation. Fill the model fields and policy after it. */
void mb_session_config_init(mb_session_config *cfg);

/* Check the configuration, plan, compute the unsplit reference, then bring
 * the sites and links up and send the plan to every node. NULL with err
 * (nothing left behind). */
mb_session *mb_session_new(const mb_session_config *cfg, char *err, size_t errlen);

/* Warm-up and measured frames (cfg->frames, or fewer when *stop is set),
 * re-planning between frames when adaptive; then tear the sites and links
 * down and compute the figures (energy needs the links' complete packet
 * logs). A failed frame is part of the result, not an error: -1 with err
 * only when the session cannot run (already run, not brought up). */
int mb_session_run(mb_session *s, char *err, size_t errlen);

/* Re-plan for an uplink of uplink_bps (the device's link, towards its
 * peer) and send the new plan to every node. Between frames only. 0, or
 * -1 with err (the previous plan stays). */
int mb_session_replan(mb_session *s, double uplink_bps, char *err, size_t errlen);

/* The figures of a run (after mb_session_run). Times in ms, energy in mJ;
 * NAN where there is none (no completed frame). */
typedef struct mb_session_report {
    int frames, warmup;
    int ok_frames, failed_frames, fallback_frames;
    int all_match;            /* every completed frame's output matched the unsplit model */
    double max_abs_err;
    double measured_ms;       /* median over ok frames; every time in emulated time (wall / tdf) */
    double mean_ms, p95_ms;
    double predicted_ms;      /* median of the plans' predictions over ok frames */
    double rel_err;           /* mb_rel_error(measured_ms, predicted_ms) */
    double energy_mj, predicted_energy_mj;
    double energy_rel_err;    /* mb_rel_error(energy_mj, predicted_energy_mj) */
    double tdf;               /* the time dilation factor the run used */
    double host_scale;        /* the calibration's host_scale (1 when not calibrated) */
    double critical_path_ms;
    double fps, throughput_fps;
    int deadline_misses;      /* rs_deadline_misses: late from release (queueing included) or failed */
    int deadline_misses_own;  /* of them: over the deadline from their own start (or failed) */
    int replans;
    int64_t bytes_up, bytes_down;                 /* the first plan's prediction per frame */
    int64_t last_bytes_up, last_bytes_down;       /* measured on the device's link, last frame */
    int realtime_checked;     /* simulated links reported whether they kept up */
    int realtime_valid;
    double realtime_lag_max_ms;
    int interrupted;          /* *stop ended the frames early */
    int n_warnings;
    const char *policy;       /* the plan's policy name */
} mb_session_report;

/* 0, or -1 when the session has not run. */
int mb_session_get_report(const mb_session *s, mb_session_report *out);
/* A warning (0 <= i < n_warnings). */
const char *mb_session_warning(const mb_session *s, int i);
/* The calibration made at the start (NULL with MB_EMULATE_NONE or real
 * servers), and the time dilation factor chosen; both known after
 * mb_session_new. */
const mb_calibration *mb_session_calibration(const mb_session *s);
double mb_session_tdf(const mb_session *s);

/* The report as one JSON object (`mecbed run --json`), and as text. */
void mb_session_write_json(const mb_session *s, FILE *f);
void mb_session_write_text(const mb_session *s, FILE *f);

/* Tear down whatever is still up and free. NULL is fine. */
void mb_session_free(mb_session *s);

/* Several devices in one measured run (docs/runtime.md, "Several devices"):
 * one session per device site in devices[0..n), each with its own runner,
 * link, plan and frame stream, all sharing the topology's edge and cloud
 * nodes (started to serve n runners at once, their compute shared first
 * come, first served). cfg is as for one session (cfg->device ignored).
 * Brings everything up, runs every device's frames at once, tears down and
 * computes the figures; *out (free with mb_multi_free) is set even when it
 * fails. 0, or -1 with err. */
typedef struct mb_multi mb_multi;
int mb_multi_run(const mb_session_config *cfg, const int *devices, int n, mb_multi **out, char *err,
                 size_t errlen);
/* Every device's frames completed and matched the unsplit model. */
int mb_multi_ok(const mb_multi *m);
int mb_multi_interrupted(const mb_multi *m);
/* The report: per device (measured and predicted latency under sharing,
 * queueing, energy, output check, its whole session report) and the
 * aggregate (`mecbed run --devices N --json`), or as text. */
void mb_multi_write_json(const mb_multi *m, FILE *f);
void mb_multi_write_text(const mb_multi *m, FILE *f);
void mb_multi_free(mb_multi *m);

#endif
