/* The run session's private state, shared by the runtime/session_*.c files
 * (one responsibility each: set-up, site speed, network bring-up, frame
 * loop, re-planning, figures, report writers). Not a public header. */
#ifndef MB_RUNTIME_SESSION_PRIV_H
#define MB_RUNTIME_SESSION_PRIV_H

#include <stdint.h>
#include <stdio.h>

#include "mecbed/cgroup.h"
#include "mecbed/goodput.h"
#include "mecbed/link.h"
#include "mecbed/netns.h"
#include "mecbed/policy_host.h"
#include "mecbed/runstats.h"
#include "mecbed/runtime.h"
#include "mecbed/session.h"
#include "mecbed/timeline.h"

#define SESSION_MAX_PLANS 64
#define SESSION_MAX_WARN 8

/* One measured frame. */
typedef struct ss_frame {
    uint32_t frame;
    int ok, fell_back;
    double t_start, t_end, latency_ms, predicted_ms, predicted_energy_mj;
    double energy_mj, radio_mj, busy_ms, critical_ms;
    double max_abs_err;
    int output_match;
    int64_t bytes_up, bytes_down;
    char *error;    /* why it failed (ss_frame_error); NULL when it did not */
    int epoch;      /* which plan */
    double release; /* when the frame was due (streams) */
    int submit_failed;
    int busy_known; /* busy_ms taken from the timeline when the frame ended (wall ms) */
    double queue_ms;  /* waiting for a shared node's compute (QUEUE events, wall ms) */
    double server_ms; /* computing on the servers (COMPUTE events off the device, wall ms) */
} ss_frame;

/* Per-frame records stay small (a long stream keeps one per frame): the
 * error text of a failed frame is allocated when it fails. Appends to an
 * error already there ("; ..."). */
void ss_frame_error(ss_frame *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct mb_session {
    mb_session_config cfg;
    int real; /* every server has address=: real network, nothing emulated */
    int attached; /* cfg.attach: links, nodes, key, temp directory borrowed (never torn down here) */

    /* site speed (session_sites.c): factor against the profile (what the
     * plan assumes), emu_factor against this machine now (the
     * calibration's), slowdown = emu_factor x k as emulated (1: at this
     * machine's speed) */
    mb_cpu_cap *cap[MB_MAX_SITES];
    double factor[MB_MAX_SITES], emu_factor[MB_MAX_SITES], cap_cores[MB_MAX_SITES];
    double slowdown[MB_MAX_SITES];
    mb_calibration *cal; /* NULL: not calibrated (no emulation, real servers) */
    double cpu_share;    /* CPU time / wall time of this thread during the calibration (a
                          * diagnostic of how busy the machine was) */
    double host_scale;   /* this machine's CPU time per pass now over the profile's op times,
                          * what the sites' factors are divided by (1: not calibrated) */
    double k;            /* time dilation factor, >= 1 */
    mb_topology *net_topo; /* the topology as the link backends emulate it: links dilated by k */
    double probed_bps[MB_MAX_LINKS]; /* rate-less links: the probed goodput planned with (NAN: none) */
    int fallback_capped; /* the fallback's thread joined the device's cap */

    /* network and nodes (session_net.c) */
    mb_net *net;
    int keep_events; /* keep every frame's timeline events to the end (--timeline, or radio bursts from them) */
    char tmp_dir[64];
    char run_id[MB_RUN_ID_LEN + 1]; /* cfg.run_id, or one drawn for the run (ensure_run_id) */
    int owner_written;              /* this session wrote /run/mecbed/<run_id>.pid */
    uint8_t key[32];      /* the run's key (MB_KEY_LEN) */
    int have_key;
    char key_path[128];   /* the file the spawned nodes read it from */
    int saved_ns;
    double net_epoch; /* mb_net_epoch: trace time 0 (0 without emulated links) */
    mb_runner *runner;

    /* plans (session.c, session_replan.c) */
    mb_policy_session *policy;
    mb_plan *plans[SESSION_MAX_PLANS];
    int n_plans;
    double replan_us[SESSION_MAX_PLANS];
    const mb_plan *cur;
    mb_goodput gp;
    double plan_bps;

    /* the device's kernels, inputs and the unsplit reference */
    mb_backend *be;
    mb_tensor **inputs, **ref;
    double ref_scale;

    /* what happened (session_loop.c) */
    mb_timeline tl;
    ss_frame *rec;
    int n_rec;
    double t_stream, t_stream_end;
    int ran, interrupted;
    char warn[SESSION_MAX_WARN][512];
    int n_warn;
    mb_radio_burst *bursts; /* scratch for the radio model */

    /* simulated links (ns3 backend): did they keep up with real time? */
    int rt_have, rt_valid;
    double rt_lag_max_ms, ns3_energy_j, ns3_sim_s;
    double ns3_e0, ns3_t0; /* ns-3 radio energy and simulated time when the measured frames began */

    mb_session_report rep; /* filled by ss_compute_report */
    /* bytes per topology link per frame (session_links.c): the first plan's
     * payload, and the median wire bytes the emulator carried (NAN: none) */
    int links_known;
    /* each node's clock offset and HELLO round trip (ss_clock_capture) */
    int clock_known[MB_MAX_SITES];
    double clock_off[MB_MAX_SITES], clock_rtt[MB_MAX_SITES];
    double clock_bound[MB_MAX_SITES]; /* the offset's error bound: rtt / 2, or tighter (ss_clock_refine) */
    int64_t link_pred[MB_MAX_LINKS];
    double link_meas[MB_MAX_LINKS];

    /* several devices (session_multi.c): called between the warm-up and the
     * measured frames, so that every device's stream starts together */
    void (*after_warmup)(void *arg);
    void *after_warmup_arg;
};

/* Say something (cfg.log); a warning also goes into the report's list. */
void ss_warn(mb_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_info(mb_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ss_error(mb_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* session_sites.c: calibration, each site's speed factor, the time
 * dilation factor, and what this machine can emulate. */
int ss_sites_plan_speed(mb_session *s, char *err, size_t errlen);
/* Wall seconds <-> emulated seconds under the session's k. */
double ss_emulated(const mb_session *s, double wall_s);
int ss_sites_apply(mb_session *s, const char *run_id, char *err, size_t errlen);
void ss_device_thread_hook(void *arg);
void ss_sites_free(mb_session *s);

/* session_net.c: links, nodes, the runner; and their teardown. */
int ss_net_prepare(mb_session *s, char *err, size_t errlen);
int ss_bring_up(mb_session *s, char *err, size_t errlen);
void ss_teardown(mb_session *s);
void ss_remove_tmp_dir(mb_session *s);
/* The emulator's packet logs of the device's link will be there at the end
 * (radio energy from them rather than from the timeline). */
int ss_packet_logs_expected(const mb_session *s);
int ss_key_setup(mb_session *s, char *err, size_t errlen);

/* session_links.c: bytes per link, predicted and measured (after teardown),
 * and their JSON (with the plan's metrics) and text lines. */
void ss_link_bytes(mb_session *s);
/* Keep the runner's clock offsets (mb_runner_clock) for the report. */
void ss_clock_capture(mb_session *s);
void ss_json_clock(const mb_session *s, int site, FILE *f);
/* After the frames: tighten each node's offset by its transfers with the
 * device (causality) and shift its timeline events by the change. */
void ss_clock_refine(mb_session *s);
void ss_json_links(const mb_session *s, FILE *f);
void ss_text_links(const mb_session *s, FILE *f);
const char *ss_model_name(const mb_session *s);
int ss_device_link(const mb_topology *t, int device, int *dev_is_a);
void ss_net_realtime_begin(mb_session *s);
void ss_net_realtime_end(mb_session *s);

/* session_loop.c */
int ss_run_frames(mb_session *s);
void ss_free_outputs(const mb_graph *g, mb_tensor **out);

/* session_replan.c: adaptive re-planning from the uplink's goodput. */
void ss_replan_init(mb_session *s);
void ss_replan_after_frame(mb_session *s, uint32_t frame, int idle, uint32_t next_frame);

/* session_stats.c: energy and the summary, after the links are down. */
void ss_compute_report(mb_session *s);

#endif
