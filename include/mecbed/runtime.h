/* mecbed: the distributed runtime (docs/runtime.md). Edge and cloud nodes
 * serve plans (mb_node_serve, `mecbed node`); the runner on the device side
 * drives them over the wire protocol (wire.h): HELLO with the model and its
 * hash, PLAN, then FRAME after FRAME, each site computing its steps as soon
 * as their inputs are there and sending regions as soon as they are
 * computed. The timeline of every op and transfer comes back in RESULT. */
#ifndef MECBED_RUNTIME_H
#define MECBED_RUNTIME_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "mecbed/backend.h"
#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/timeline.h"
#include "mecbed/topology.h"

/* ---- node ---- */

typedef struct mb_node_opts {
    const char *listen;     /* "ADDR:PORT" (ignored when listen_fd >= 0) */
    int listen_fd;          /* an already listening socket, or -1 */
    int threads;            /* kernel threads (0: 1) */
    const char *kernels;    /* "cpu" or "ref" (NULL: cpu) */
    const char *role;       /* "edge" or "cloud" (informational, logged) */
    const char *node_type;  /* informational, logged */
    int sessions;           /* serve this many runner sessions then return (0: forever) */
    int max_sessions;       /* runner sessions served at once, sharing the node's compute first
                             * come first served (0: 1; more are told the node is busy) */
    int verbose;
    double tdf;             /* time dilation factor of the run (timescale.h): the node's own
                             * timeouts are emulated time, k times longer on the wall (0: 1) */
    /* Authentication (auth.h): every runner and peer must prove this key
     * (MB_KEY_LEN bytes, copied). NULL is refused unless insecure_no_auth. */
    const uint8_t *key;
    int insecure_no_auth;
    /* The models this node serves, besides the zoo's built-ins: these files
     * and the model files (*.mbm, *.model, *.onnx) in models_dir. A runner
     * names a model by its graph hash only; the node never opens a path a
     * peer names. */
    const char *const *model_files;
    int n_model_files;
    const char *models_dir;
    double idle_timeout_s;      /* a session with nothing from its runner this long (emulated
                                 * s) is dropped, and so is a frame sent halfway (0: 10) */
    double handshake_timeout_s; /* a connection must authenticate within this (0: 3) */
    /* Optional: the run's topology as the node's operator knows it. Then a
     * PLAN may name only its sites, and those with address= only at that
     * address (a PLAN cannot send this node's data elsewhere). */
    const mb_topology *topo;
} mb_node_opts;

/* Most connections a node keeps before they authenticate; a new one beyond
 * this closes the oldest (so hanging sockets cannot lock a runner out). */
#define MB_NODE_MAX_PREAUTH 32

/* Serve until *stop becomes non-zero (may be NULL), or `sessions` runner
 * sessions ended. A runner session that fails (bad frame, lost peer) is
 * reported to the runner with ERROR and ends; the node keeps serving.
 * Returns 0, or -1 with err when the node could not start (bad address,
 * port in use). */
int mb_node_serve(const mb_node_opts *o, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* "host:port" -> a listening TCP socket (SO_REUSEADDR). port 0 picks one;
 * *port_out (optional) receives it. -1 with err. */
int mb_listen_addr(const char *addr, int *port_out, char *err, size_t errlen);
/* Connect to "host:port" within timeout_s. -1 with err. */
int mb_connect_addr(const char *addr, double timeout_s, char *err, size_t errlen);

/* "[ADDR:]PORT" -> "ADDR:PORT" in out; a bare port means 127.0.0.1. -1 with err. */
int mb_listen_spec(const char *spec, char *out, size_t outlen, char *err, size_t errlen);

/* ---- runner (device side) ---- */

typedef struct mb_runner mb_runner;

typedef struct mb_runner_opts {
    const char *model;       /* a name for the nodes' logs, or a zoo name; the model is named
                              * to nodes by the graph hash of g (they serve it from their own files) */
    const mb_graph *g;
    const mb_topology *topo;
    int device;              /* the device's site */
    /* Where every site listens: nodes "host:port"; for the device the
     * address peers send its data to (the runner listens there itself,
     * unless listen_fd >= 0). */
    char addrs[MB_MAX_SITES][64];
    int listen_fd;
    mb_backend *be;          /* the device's kernels */
    double timeout_s;        /* per frame and per handshake (0: 10 s) */
    const uint8_t *key;      /* the run's key (MB_KEY_LEN bytes, copied); NULL: insecure_no_auth */
    int insecure_no_auth;
    int verbose;
    /* Optional: runs first in each of the device's compute and sender
     * threads (e.g. to move them under a CPU cap). */
    void (*thread_hook)(void *arg);
    void *thread_hook_arg;
    /* The high 16 bits of every plan epoch it sends: runners sharing a node
     * (mecbed node --max-sessions) need distinct tags; the node routes each
     * peer data connection to its session by it. 0 (default) for one. */
    uint16_t epoch_tag;
} mb_runner_opts;

/* Connect to every other site and exchange HELLO (model hash checked by
 * the nodes). NULL with err naming the site on failure. */
mb_runner *mb_runner_new(const mb_runner_opts *o, char *err, size_t errlen);
/* Send a plan to every node and wait until all are READY. May be called
 * again between frames (re-planning). -1 with err. */
int mb_runner_plan(mb_runner *r, const mb_plan *p, char *err, size_t errlen);

typedef struct mb_frame_report {
    uint32_t frame;
    int ok;
    double t_start;      /* input available on the device (runner clock, s) */
    double t_end;        /* last output on the device */
    double latency_ms;
    char error[512];     /* when !ok: what failed, naming the site */
} mb_frame_report;

/* Run one frame: inputs (one per INPUT node) on the device at the call.
 * On success *outputs receives g->n_outputs tensors, tl (optional) every
 * site's events of the frame. On failure (a node died, a link outage longer
 * than the timeout, a malformed frame) the report says what and the runner
 * is broken: further frames fail at once (the caller falls back). Returns
 * 0 or -1. */
int mb_runner_frame(mb_runner *r, uint32_t frame, mb_tensor *const *inputs, mb_tensor ***outputs,
                    mb_timeline *tl, mb_frame_report *rep);
/* Streams: start a frame without waiting for it (at most 3 in flight; the
 * sites run lower frames first, so frames pipeline across sites where the
 * plan allows). 0, or -1 with rep->error. */
int mb_runner_submit(mb_runner *r, uint32_t frame, mb_tensor *const *inputs, mb_frame_report *rep);
/* Wait for a submitted frame until it is done (1: outputs, tl, rep as
 * mb_runner_frame), it failed or its timeout passed (-1), or `until`
 * (mb_now() seconds; <= 0: no limit) came first (0: still running). */
int mb_runner_collect(mb_runner *r, uint32_t frame, double until, mb_tensor ***outputs,
                      mb_timeline *tl, mb_frame_report *rep);
int mb_runner_in_flight(const mb_runner *r);
/* Between frames: the graph the next mb_runner_plan is for (another of the
 * nodes' models, named by model and the graph's hash: generation's prefill
 * graph, then its decode graph). The state of plans with state bindings
 * (mb_plan_state) outlives the switch on every site. g must outlive its
 * use. 0, or -1 with frames in flight. */
int mb_runner_set_graph(mb_runner *r, const mb_graph *g, const char *model);
/* Bytes of state the device keeps (plan state bindings on the device). */
int64_t mb_runner_state_bytes(const mb_runner *r);
/* 1 when a failure broke the session. */
int mb_runner_broken(const mb_runner *r);
/* The clock offset estimated at HELLO for a node site (add it to the node's
 * CLOCK_MONOTONIC to get the runner's; the timeline is corrected by it) and
 * the HELLO exchange's round trip, which bounds the estimate's error by half
 * (NAN with offset 0: same boot and time namespace, one clock). 0, or -1
 * for a site that is no node of this runner. */
int mb_runner_clock(const mb_runner *r, int site, double *offset_s, double *rtt_s);
/* BYE to every node (when not broken), close, join. */
void mb_runner_free(mb_runner *r);

/* Site speed: how the runtime makes this machine run a site at its node
 * type's speed. */
/* Process-wide: fn(arg) runs first in every compute and sender thread an
 * executor starts from now on (the runner uses it to put the device's
 * working threads under its CPU cap). NULL clears it. */
void mb_rt_set_thread_hook(void (*fn)(void *), void *arg);

/* Process-wide: emulate a site `factor` times slower than this machine by
 * time dilation. Every COMPUTE step then lasts factor x the thread CPU time it
 * took here (the compute thread sleeps out the difference; the busy interval
 * on the timeline is the dilated one). 1 (default) turns it off. It needs the
 * compute to run on the calling thread (backends with 1 thread). */
/* Process-wide: modelled step timing. When on, each COMPUTE step lasts the
 * duration the plan predicts for it (t_end_ms - t_start_ms: the node type's
 * modelled op time, in emulated time) x tdf of wall time, however fast this
 * machine computed it; a step this machine cannot finish in time runs late
 * and is counted (rt_exec_overruns). The kernels still compute every value.
 * Takes precedence over mb_rt_set_slowdown. */
void mb_rt_set_step_timing(int modelled, double tdf);
/* Process-wide: the executors of this process share one compute (a node
 * serving several runner sessions): one COMPUTE step at a time, first come
 * first served, each held for its whole (modelled or dilated) duration; a
 * step that waited gets an MB_EV_QUEUE event before its COMPUTE. */
void mb_rt_set_shared_compute(int on);
/* An executor whose plan gives its site a share (mb_plan.share) takes no
 * part in that: its steps run beside the others', each lasting 1 / share
 * times its (modelled or dilated) duration; when the executors alive hold
 * more than 1 between them, each gets share / total. This is the total. */
double mb_rt_share_total(void);
void mb_rt_set_slowdown(double factor);
double mb_rt_slowdown(void);
/* Sleep until t0_wall + cpu_s x slowdown (mb_now() seconds); no-op at 1. */
void mb_rt_dilate(double t0_wall, double cpu_s);
/* The virtual clock of a dilated compute thread. Sleeping per step to
 * t0 + cpu x slowdown overshoots each deadline by the timer slack and the
 * wake-up latency, and over a model of many small ops the overshoots add up
 * (tens of us per op). Instead a step that starts right after the previous
 * one (no wait for inputs in between) is placed at the previous step's
 * target, so each target is the previous target + cpu x slowdown and only
 * the last wake-up's overshoot remains. Zero-initialise one per thread. */
typedef struct mb_rt_vclock {
    double target; /* mb_now() seconds at which the last step ends */
    int primed;    /* a step has ended */
} mb_rt_vclock;
/* Where a step picked at `now` starts on the emulated timeline: the previous
 * target when it followed directly (waited = 0) and the thread is late,
 * else now. */
double mb_rt_vclock_begin(mb_rt_vclock *vc, double now, int waited);
/* End a step that started at `start` and took cpu_s of CPU time here: sleep
 * (absolute deadline, CLOCK_MONOTONIC) until start + cpu_s x slowdown and
 * return that target. */
double mb_rt_vclock_end(mb_rt_vclock *vc, double start, double cpu_s);
/* Sleep until target (mb_now() seconds) and make it the clock's target.
 * Returns how late the caller already was (0 when it slept). */
double mb_rt_vclock_until(mb_rt_vclock *vc, double target);
/* Timer slack of the calling thread to 1 us (prctl PR_SET_TIMERSLACK), so
 * that deadlines are met within microseconds, not the 50 us default. */
void mb_rt_precise_timers(void);
/* This thread's CPU time in seconds. */
double mb_rt_thread_cpu_s(void);

#endif
