/* mecbed run: plan with a policy, bring the topology up as emulated links,
 * start a node per edge/cloud site inside its namespace, run frames for
 * real, and report measured next to predicted latency and energy
 * (docs/runtime.md). Everything it creates is torn down on exit, on
 * SIGINT/SIGTERM and on failure. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_policies.h"
#include "mecbed/cgroup.h"
#include "mecbed/exec.h"
#include "mecbed/goodput.h"
#include "mecbed/link.h"
#include "mecbed/netns.h"
#include "mecbed/platform.h"
#include "mecbed/runtime.h"
#include "mecbed/timeline.h"
#include "commands.h"
#include "mecbed/runstats.h"

#define NODE_PORT 7400
#define MAX_BURSTS 4096

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The registered policies (built-ins from the registry), for --help. */
static const char *policy_names(void)
{
    static char buf[512];
    mb_policy_register_builtins();
    return mb_policy_names(buf, sizeof(buf), " ");
}

/* The registered link backends, for --help. */
static const char *link_backend_names(void)
{
    static char buf[128];
    return mb_net_backend_list(buf, sizeof(buf), ", ");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed run --model M --policy P (--link SPEC | --topology FILE) [options]\n\n"
            "Execute a policy's plan for real: each edge/cloud site runs `mecbed node` in its own\n"
            "network namespace, the device side runs here, tensors cross emulated links. Prints\n"
            "measured vs predicted latency and device energy, and checks the output against the\n"
            "unsplit model. Needs root (namespaces, TUN, cgroups).\n\n"
            "  --policy P           %s, or a plugin\n"
            "  --backend B          link emulation: %s (the first is the default)\n"
            "  --frames N           frames to run (default 1), after --warmup frames (default 1)\n"
            "  --fps F              release a frame every 1/F s (default: back to back); frames\n"
            "                       later than 1/F count as deadline misses\n"
            "  --timeout S          a frame not done within S seconds fails (default 10)\n"
            "  --fallback local     complete a failed frame on the device alone\n"
            "  --adaptive           re-plan when the measured goodput of the device's uplink moves\n"
            "                       more than 25%% from what the plan assumed (EWMA of transfers)\n"
            "  --timeline FILE      Chrome trace-event JSON of every op and transfer (Perfetto);\n"
            "                       FILE with .csv appended gets the same as CSV\n"
            "  --log-dir DIR        keep the links' per-packet CSV logs and pcaps in DIR\n"
            "  --kernels K          cpu (default) or ref, on every site\n"
            "  --emulate dilate|cap how a site slower than this machine is emulated: dilate\n"
            "                       (default) stretches each op to the node type's factor x the\n"
            "                       CPU time it took here; cap limits the site's CPU share with a\n"
            "                       cgroup (bursty: CFS quota periods, see docs/runtime.md)\n"
            "  --no-cap             run every site at this machine's speed (no emulation)\n"
            "  --run-id ID          namespace/interface run id (6 chars [0-9a-z]; default random)\n"
            "  --seed N             input seed (default 1)\n"
            "  --pinned-profile     plan with the pinned/cached profile even when it was measured\n"
            "                       on another CPU (default: the pinned profile when it is from\n"
            "                       this CPU model and the run's kernels, else the model is\n"
            "                       profiled here first, so predictions describe this machine)\n"
            "  --json               every figure as one JSON object\n",
            policy_names(), link_backend_names());
    mb_plan_setup_help(f);
}

typedef struct frame_rec {
    uint32_t frame;
    int ok, fell_back;
    double t_start, t_end, latency_ms, predicted_ms, predicted_energy_mj;
    double energy_mj, radio_mj, busy_ms, critical_ms;
    double max_abs_err;
    int output_match;
    int64_t bytes_up, bytes_down;
    char error[512];
    int epoch; /* which plan */
    double release; /* when the frame was due (streams) */
    int submit_failed;
} frame_rec;

typedef struct run_ctx {
    mb_plan_setup s;
    const char *policy, *backend, *timeline, *fallback, *log_dir, *run_id, *kernels;
    int frames, warmup, json, adaptive, no_cap, pinned;
    int use_cap; /* --emulate cap: cgroup CPU caps instead of time dilation */
    int real; /* every server has address=: real network, nothing emulated */
    double fps, timeout;
    uint64_t seed;

    mb_net *net;
    char tmp_dir[64];
    mb_cpu_cap *cap[MB_MAX_SITES];
    double factor[MB_MAX_SITES], emu_factor[MB_MAX_SITES], cap_cores[MB_MAX_SITES];
    int saved_ns;
    double net_epoch; /* mb_net_epoch: trace time 0 (0 without emulated links) */
    mb_runner *runner;
    mb_backend *be;
    mb_tensor **inputs, **ref;
    double ref_scale;
    mb_timeline tl;
    frame_rec *rec;
    int n_rec;
    mb_plan *plans[64];
    int n_plans;
    double replan_us[64];
    char warn[8][256];
    int n_warn;
    /* simulated links (ns3 backend): did they keep up with real time? */
    int rt_have, rt_valid;
    double rt_lag_max_ms, ns3_energy_j, ns3_sim_s;
    double ns3_e0, ns3_t0; /* ns-3 radio energy and simulated time when the measured frames began */
} run_ctx;

static void add_warn(run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_warn(run_ctx *c, const char *fmt, ...)
{
    if (c->n_warn >= 8)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->warn[c->n_warn], sizeof c->warn[0], fmt, ap);
    va_end(ap);
    fprintf(stderr, "mecbed run: warning: %s\n", c->warn[c->n_warn]);
    c->n_warn++;
}

static void device_thread_hook(void *arg)
{
    mb_cpu_cap *cap = arg;
    char err[256];
    if (cap && mb_cpu_cap_add_thread(cap, 0, err, sizeof err))
        fprintf(stderr, "mecbed run: warning: device thread not capped: %s\n", err);
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

/* Compare a frame's outputs with the unsplit model's. */
static void compare_outputs(run_ctx *c, mb_tensor **out, frame_rec *fr)
{
    double d = 0;
    for (int i = 0; i < c->s.g->n_outputs; i++) {
        double x = mb_tensor_max_abs_diff(out[i], c->ref[i]);
        if (!(x <= d))
            d = x;
    }
    fr->max_abs_err = d;
    /* NOTES.md: bit-exact where the same kernel computes the same elements,
     * else within 1e-5 of the output's scale. */
    fr->output_match = d <= 1e-5 * (c->ref_scale > 1 ? c->ref_scale : 1);
}

static void free_outputs(const mb_graph *g, mb_tensor **out)
{
    if (!out)
        return;
    for (int i = 0; i < g->n_outputs; i++)
        mb_tensor_free(out[i]);
    free(out);
}

/* Run the whole model on the device after a failure. */
static void fallback_local(run_ctx *c, frame_rec *fr)
{
    static int capped;
    int dev = c->s.device;
    if (!capped && c->cap[dev]) {
        device_thread_hook(c->cap[dev]);
        capped = 1;
    }
    mb_tensor **out = NULL;
    char err[512];
    double t0 = mb_now(), cpu0 = mb_rt_thread_cpu_s();
    if (mb_exec_run(c->s.g, c->be, c->inputs, &out, NULL, NULL, err, sizeof err)) {
        snprintf(fr->error + strlen(fr->error), sizeof fr->error - strlen(fr->error),
                 "; local fallback failed too: %s", err);
        return;
    }
    mb_rt_dilate(t0, mb_rt_thread_cpu_s() - cpu0); /* the device's speed, when dilated */
    double t1 = mb_now();
    fr->fell_back = 1;
    fr->t_end = t1;
    fr->latency_ms = (t1 - fr->t_start) * 1e3;
    fr->busy_ms = (t1 - t0) * 1e3;
    compare_outputs(c, out, fr);
    free_outputs(c->s.g, out);
}

static int device_link(const mb_topology *t, int device, int *dev_is_a)
{
    for (int l = 0; l < t->n_links; l++)
        if (t->links[l].a == device || t->links[l].b == device) {
            *dev_is_a = t->links[l].a == device;
            return l;
        }
    return -1;
}

/* Re-plan when the device uplink's goodput moved (--adaptive). */
static void maybe_replan(run_ctx *c, mb_policy_session *sess, mb_goodput *gp, double *plan_bps,
                         const mb_plan **cur, uint32_t next_frame)
{
    if (!mb_goodput_changed(gp, *plan_bps, 0.25) || c->n_plans >= 64)
        return;
    int a_side;
    int l = device_link(&c->s.topo, c->s.device, &a_side);
    if (l < 0)
        return;
    double est = mb_goodput_bps(gp);
    double up = est, down = mb_cost_rate_bps(c->s.cost, a_side ? c->s.topo.links[l].b : c->s.topo.links[l].a,
                                             c->s.device);
    if (a_side)
        mb_cost_set_rate(c->s.cost, l, up, down);
    else
        mb_cost_set_rate(c->s.cost, l, down, up);
    char err[512];
    double t0 = mb_now();
    mb_plan *np = mb_policy_session_plan(sess, *cur, err, sizeof err);
    double t1 = mb_now();
    if (!np) {
        add_warn(c, "re-plan at %.2f Mbit/s failed: %s", est / 1e6, err);
        return;
    }
    if (mb_runner_plan(c->runner, np, err, sizeof err)) {
        add_warn(c, "sending the new plan failed: %s", err);
        mb_plan_free(np);
        return;
    }
    mb_event e = {.frame = next_frame, .step = -1, .kind = MB_EV_REPLAN, .site = c->s.device,
                  .peer = -1, .op = -1, .t0 = t0, .t1 = t1, .bytes = 0};
    mb_timeline_add(&c->tl, &e);
    c->replan_us[c->n_plans] = (t1 - t0) * 1e6;
    c->plans[c->n_plans++] = np;
    *cur = np;
    *plan_bps = est;
    if (!c->json)
        fprintf(stderr, "mecbed run: goodput %.2f Mbit/s: re-planned in %.0f us (predicted %.1f ms)\n",
                est / 1e6, (t1 - t0) * 1e6, np->pred.latency_ms);
}

/* Feed the goodput estimator with the device's uplink transfers of a frame. */
static void feed_goodput(run_ctx *c, mb_goodput *gp, uint32_t frame)
{
    int a_side;
    int l = device_link(&c->s.topo, c->s.device, &a_side);
    if (l < 0)
        return;
    const mb_link_dir *d = a_side ? &c->s.topo.links[l].spec.up : &c->s.topo.links[l].spec.down;
    for (int i = 0; i < c->tl.n; i++) {
        const mb_event *e = &c->tl.ev[i];
        if (e->frame != frame || e->kind != MB_EV_SEND || e->site != c->s.device)
            continue;
        for (int k = 0; k < c->tl.n; k++) {
            const mb_event *r = &c->tl.ev[k];
            if (r->frame == frame && r->kind == MB_EV_RECV && r->step == e->step) {
                mb_goodput_add(gp, e->bytes, r->t1 - e->t0, d->delay_s);
                break;
            }
        }
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

static void teardown(run_ctx *c)
{
    if (c->runner) {
        mb_runner_free(c->runner);
        c->runner = NULL;
    }
    if (c->saved_ns >= 0) {
        mb_netns_leave(c->saved_ns);
        c->saved_ns = -1;
    }
    mb_rt_set_thread_hook(NULL, NULL);
    if (c->net) {
        mb_net_down(c->net);
        c->net = NULL;
    }
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (c->cap[i]) {
            mb_cpu_cap_free(c->cap[i]);
            c->cap[i] = NULL;
        }
}

static void remove_tmp_dir(run_ctx *c)
{
    if (!c->tmp_dir[0])
        return;
    char cmd[128];
    /* only our own mkdtemp directory */
    if (!strncmp(c->tmp_dir, "/tmp/mecbed-run-", 16) && !strchr(c->tmp_dir, '\'')) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->tmp_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "mecbed run: could not remove %s\n", c->tmp_dir);
    }
    c->tmp_dir[0] = 0;
}

/* Bring up, start nodes, connect. 0 or -1 with err. */
/* Every server already runs somewhere (address=): connect over the real
 * network, no namespaces, links or caps. The device's address= is where
 * nodes send it data. */
static int connect_real(run_ctx *c, char *err, size_t errlen)
{
    const mb_topology *t = &c->s.topo;
    int dev = c->s.device;
    mb_runner_opts ro = {.model = c->s.model, .g = c->s.g, .topo = t, .device = dev, .listen_fd = -1,
                         .be = c->be, .timeout_s = c->timeout};
    for (int s = 0; s < t->n_sites; s++)
        snprintf(ro.addrs[s], sizeof ro.addrs[s], "%s", t->sites[s].address);
    c->runner = mb_runner_new(&ro, err, errlen);
    return c->runner ? 0 : -1;
}

static int bring_up(run_ctx *c, char *err, size_t errlen)
{
    const mb_topology *t = &c->s.topo;
    int dev = c->s.device;
    char why[256];
    if (c->real)
        return connect_real(c, err, errlen);
    if (mb_netns_available(why, sizeof why)) {
        snprintf(err, errlen, "cannot emulate links here: %s", why);
        return -1;
    }
    const char *log_dir = c->log_dir;
    if (!log_dir) {
        snprintf(c->tmp_dir, sizeof c->tmp_dir, "/tmp/mecbed-run-XXXXXX");
        if (!mkdtemp(c->tmp_dir)) {
            snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
            c->tmp_dir[0] = 0;
            return -1;
        }
        log_dir = c->tmp_dir;
    } else if (mkdir(log_dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "--log-dir %s: %s", log_dir, strerror(errno));
        return -1;
    }
    mb_net_opts no = {.backend = c->backend, .run_id = c->run_id, .log_dir = log_dir, .seed = c->seed};
    if (mb_net_up(t, &no, &c->net, err, errlen))
        return -1;
    const char *run = mb_net_run_id(c->net);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(err, errlen, "cannot find the mecbed binary: %s", strerror(errno));
        return -1;
    }
    self[n] = 0;
    /* CPU caps first (the device's threads join when they start); a killed
     * run's cgroups go first. */
    int have_caps = !mb_cpu_cap_available(NULL, why, sizeof why);
    if (have_caps)
        mb_cpu_cap_clean_dead(); /* a killed run's cgroups */
    int cap_ok = c->use_cap && !c->no_cap && have_caps;
    if (c->use_cap && !c->no_cap && !cap_ok)
        add_warn(c, "node types are not emulated (%s): every site runs at this machine's speed", why);
    int dilate = !c->use_cap && !c->no_cap;
    if (dilate)
        mb_rt_set_slowdown(c->emu_factor[dev]);
    double total_cores = 0;
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].address[0])
            continue;
        double cores = 1.0;
        if (cap_ok && c->emu_factor[s] > 1.0001) {
            char name[64];
            snprintf(name, sizeof name, "%s%s-%s", MB_CPU_CAP_PREFIX, run, t->sites[s].name);
            c->cap[s] = mb_cpu_cap_new(name, 1.0 / c->emu_factor[s], err, errlen);
            if (!c->cap[s])
                return -1;
            cores = 1.0 / c->emu_factor[s];
            c->cap_cores[s] = cores;
        } else if (dilate && c->emu_factor[s] > 1.0001)
            cores = 1.0 / c->emu_factor[s];
        total_cores += cores;
    }
    if (total_cores > mb_platform_cores() + 1e-9)
        add_warn(c, "the sites' CPU shares add up to %.2f cores but this machine has %d: when they compute at the same time, timings are invalid",
                 total_cores, mb_platform_cores());
    for (int s = 0; s < t->n_sites; s++) {
        if (s == dev || t->sites[s].address[0])
            continue;
        char listen[64];
        snprintf(listen, sizeof listen, "%s:%d", mb_net_addr(c->net, s), NODE_PORT);
        char slow[32];
        snprintf(slow, sizeof slow, "%.6f", dilate ? c->emu_factor[s] : 1.0);
        char *argv[] = {self, "node", "--role", t->sites[s].role == MB_ROLE_CLOUD ? "cloud" : "edge",
                        "--listen", listen, "--threads", "1", "--backend-kernels", (char *)c->kernels,
                        "--sessions", "1", "--slowdown", slow, NULL};
        pid_t pid;
        if (mb_net_spawn(c->net, s, argv, &pid, err, errlen))
            return -1;
        if (c->cap[s] && mb_cpu_cap_add(c->cap[s], pid, err, errlen))
            return -1;
    }
    if (mb_netns_enter(mb_net_netns(c->net, dev), &c->saved_ns)) {
        snprintf(err, errlen, "cannot enter the device's namespace: %s", strerror(errno));
        c->saved_ns = -1;
        return -1;
    }
    mb_runner_opts ro = {.model = c->s.model, .g = c->s.g, .topo = t, .device = dev, .listen_fd = -1,
                         .be = c->be, .timeout_s = c->timeout,
                         .thread_hook = c->cap[dev] ? device_thread_hook : NULL,
                         .thread_hook_arg = c->cap[dev]};
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].address[0])
            snprintf(ro.addrs[s], sizeof ro.addrs[s], "%s", t->sites[s].address);
        else
            snprintf(ro.addrs[s], sizeof ro.addrs[s], "%s:%d", mb_net_addr(c->net, s), NODE_PORT);
    }
    c->runner = mb_runner_new(&ro, err, errlen);
    if (!c->runner) {
        pid_t pid;
        int st;
        if (mb_net_child_exited(c->net, &pid, &st) == 1) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (a node process exited with status %d)",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        return -1;
    }
    return 0;
}

/* Energy of one frame from what happened: device busy x compute power,
 * idle power for the rest, the radio driven by the device link's packets. */
static void frame_energy(run_ctx *c, frame_rec *fr, const rs_packets *ps, double interval_s)
{
    int dev = c->s.device;
    const mb_nodetype *nt = mb_cost_site_type(c->s.cost, dev);
    if (!fr->fell_back)
        fr->busy_ms = rs_device_busy_ms(&c->tl, fr->frame, dev);
    double lat_s = fr->latency_ms / 1e3, busy_s = fr->busy_ms / 1e3;
    double e = nt->compute_w * busy_s + nt->idle_w * (lat_s > busy_s ? lat_s - busy_s : 0);
    fr->radio_mj = 0;
    const mb_radio_model *rm = mb_radio_get((mb_radio_kind)mb_radio_from_name(nt->radio));
    if (rm && !fr->fell_back) {
        static mb_radio_burst b[MAX_BURSTS];
        int nb = rs_bursts(ps, &c->tl, fr->frame, dev, fr->t_start, fr->t_end, 0.002, b, MAX_BURSTS);
        mb_radio_energy re;
        mb_radio_frame_energy(rm, b, nb, lat_s, interval_s, &re);
        fr->radio_mj = re.total_mj;
    }
    fr->energy_mj = e * 1e3 + fr->radio_mj;
}

static void read_packet_logs(run_ctx *c, rs_packets *ps, double epoch)
{
    const mb_topology *t = &c->s.topo;
    int a_side;
    int l = device_link(t, c->s.device, &a_side);
    const char *dir = c->log_dir ? c->log_dir : c->tmp_dir;
    if (l < 0 || !dir[0] || strcmp(c->backend, "emu") || c->real)
        return;
    for (int d = 0; d < 2; d++) {
        char path[700], err[800];
        snprintf(path, sizeof path, "%s/link%d-%s-%s.%s.csv", dir, l, t->sites[t->links[l].a].name,
                 t->sites[t->links[l].b].name, d == 0 ? "up" : "down");
        /* "up" is a -> b: the device's uplink when the device is a */
        int up = (d == 0) == (a_side != 0);
        if (rs_packets_read(ps, path, epoch, up, err, sizeof err))
            add_warn(c, "radio energy from the timeline instead of the packet log: %s", err);
    }
}

/* A JSON number, or null where there is none (NaN, infinity). */
static void jnum(const char *key, double v, const char *fmt)
{
    printf(",\"%s\":", key);
    if (isfinite(v))
        printf(fmt, v);
    else
        printf("null");
}

static void print_json(run_ctx *c, const mb_plan *p0, double measured, double predicted,
                       double energy, double pred_energy, int all_match, double max_err,
                       double crit, int n_ok, int n_failed, int n_fb, int misses, double fps_meas,
                       double p95, double mean_ms)
{
    printf("{\"model\":");
    mb_json_print_string(stdout, c->s.g->name);
    printf(",\"policy\":");
    mb_json_print_string(stdout, p0->policy);
    printf(",\"link\":");
    mb_json_print_string(stdout, c->s.link ? c->s.link : c->s.topology);
    printf(",\"backend\":");
    mb_json_print_string(stdout, c->real ? "real" : c->backend);
    printf(",\"run_id\":");
    mb_json_print_string(stdout, c->run_id ? c->run_id : "");
    printf(",\"blas_core\":");
    mb_json_print_string(stdout, mb_platform_blas_core());
    printf(",\"profile\":");
    mb_json_print_string(stdout, c->s.prof_source);
    printf(",\"frames\":%d,\"warmup\":%d,\"ok_frames\":%d,\"failed_frames\":%d,\"fallback_frames\":%d",
           c->frames, c->warmup, n_ok, n_failed, n_fb);
    jnum("measured_ms", measured, "%.4f");
    jnum("mean_ms", mean_ms, "%.4f");
    jnum("p95_ms", p95, "%.4f");
    jnum("predicted_ms", predicted, "%.4f");
    jnum("rel_err", isfinite(measured) && measured > 0 ? fabs(predicted - measured) / measured : NAN, "%.4f");
    jnum("energy_mj", energy, "%.4f");
    jnum("predicted_energy_mj", pred_energy, "%.4f");
    jnum("critical_path_ms", crit, "%.4f");
    jnum("overhead_ratio", isfinite(crit) && crit > 0 ? measured / crit : NAN, "%.4f");
    printf(",\"output_match\":%s", all_match ? "true" : "false");
    jnum("max_abs_err", max_err, "%.9g");
    printf(",\"fps\":%.3f,\"throughput_fps\":%.3f,\"deadline_misses\":%d", c->fps, fps_meas, misses);
    printf(",\"replans\":%d", c->n_plans - 1);
    if (c->rt_have) {
        double radio = 0;
        for (int i = 0; i < c->n_rec; i++)
            if (isfinite(c->rec[i].radio_mj))
                radio += c->rec[i].radio_mj;
        printf(",\"valid\":%s", c->rt_valid ? "true" : "false");
        jnum("realtime_lag_max_ms", c->rt_lag_max_ms, "%.3f");
        /* ns-3's Wi-Fi radio energy model over the measured frames (from
         * the first release to the end of the last) beside mecbed's radio
         * model (summed over the frames) */
        jnum("ns3_radio_energy_mj", c->ns3_energy_j * 1e3, "%.4f");
        jnum("ns3_radio_simulated_s", isfinite(c->ns3_energy_j) ? c->ns3_sim_s : NAN, "%.3f");
        jnum("radio_model_mj", radio, "%.4f");
    }
    /* A busy machine slows every site: say how busy it was. */
    double la = NAN;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &la) != 1)
            la = NAN;
        fclose(lf);
    }
    jnum("loadavg", la, "%.2f");
    printf(",\"bytes_up\":%lld,\"bytes_down\":%lld", (long long)p0->pred.bytes_up,
           (long long)p0->pred.bytes_down);
    printf(",\"sites\":[");
    for (int s = 0; s < c->s.topo.n_sites; s++) {
        printf("%s{\"name\":", s ? "," : "");
        mb_json_print_string(stdout, c->s.topo.sites[s].name);
        printf(",\"type\":");
        mb_json_print_string(stdout, mb_cost_site_type(c->s.cost, s)->name);
        printf(",\"emulation\":\"%s\"", c->emu_factor[s] <= 1.0001 ? "none" : c->cap_cores[s] > 0 ? "cap" : "dilate");
        printf(",\"factor\":%.4f,\"emulated_factor\":%.4f,\"cpu_cap\":%.4f}", c->factor[s],
               c->emu_factor[s], c->cap_cores[s]);
    }
    printf("],\"warnings\":[");
    for (int i = 0; i < c->n_warn; i++) {
        printf("%s", i ? "," : "");
        mb_json_print_string(stdout, c->warn[i]);
    }
    printf("],\"per_frame\":[");
    for (int i = 0; i < c->n_rec; i++) {
        const frame_rec *f = &c->rec[i];
        printf("%s{\"frame\":%u,\"ok\":%s,\"fell_back\":%s,\"output_match\":%s", i ? "," : "", f->frame,
               f->ok ? "true" : "false", f->fell_back ? "true" : "false",
               f->output_match ? "true" : "false");
        int done = f->ok || f->fell_back;
        /* the frame's start on the links' clock: where a trace= link was then */
        jnum("t_s", c->net_epoch > 0 && f->t_start > 0 ? f->t_start - c->net_epoch : NAN, "%.4f");
        jnum("latency_ms", done ? f->latency_ms : NAN, "%.4f");
        jnum("predicted_ms", f->predicted_ms, "%.4f");
        jnum("energy_mj", done ? f->energy_mj : NAN, "%.4f");
        jnum("radio_mj", done ? f->radio_mj : NAN, "%.4f");
        jnum("busy_ms", done ? f->busy_ms : NAN, "%.4f");
        jnum("critical_path_ms", f->critical_ms, "%.4f");
        jnum("max_abs_err", done ? f->max_abs_err : NAN, "%.9g");
        printf(",\"bytes_up\":%lld,\"bytes_down\":%lld,\"plan\":%d", (long long)f->bytes_up,
               (long long)f->bytes_down, f->epoch);
        if (f->error[0]) {
            printf(",\"error\":");
            mb_json_print_string(stdout, f->error);
        }
        printf("}");
    }
    printf("],\"replan_us\":[");
    for (int i = 1; i < c->n_plans; i++)
        printf("%s%.1f", i > 1 ? "," : "", c->replan_us[i]);
    printf("]}\n");
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 0},        {"link", required_argument, 0, 0},
        {"topology", required_argument, 0, 0},     {"profile", required_argument, 0, 0},
        {"node-types", required_argument, 0, 0},   {"device-type", required_argument, 0, 0},
        {"edge-type", required_argument, 0, 0},    {"cloud-type", required_argument, 0, 0},
        {"radio", required_argument, 0, 0},        {"frame-interval", required_argument, 0, 0},
        {"msg-overhead", required_argument, 0, 0}, {"objective", required_argument, 0, 0},
        {"policy-opt", required_argument, 0, 0},   {"policy-plugin", required_argument, 0, 0},
        {"verbose", no_argument, 0, 0},            {"policy", required_argument, 0, 'p'},
        {"backend", required_argument, 0, 'b'},    {"frames", required_argument, 0, 'n'},
        {"fps", required_argument, 0, 'f'},        {"json", no_argument, 0, 'j'},
        {"timeline", required_argument, 0, 't'},   {"fallback", required_argument, 0, 'F'},
        {"timeout", required_argument, 0, 'T'},    {"adaptive", no_argument, 0, 'a'},
        {"log-dir", required_argument, 0, 'L'},    {"kernels", required_argument, 0, 'k'},
        {"no-cap", no_argument, 0, 'C'},           {"run-id", required_argument, 0, 'r'},
        {"seed", required_argument, 0, 's'},       {"warmup", required_argument, 0, 'w'},
        {"pinned-profile", no_argument, 0, 'P'},   {"emulate", required_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
    };
    static run_ctx ctx;
    run_ctx *c = &ctx;
    memset(c, 0, sizeof *c);
    mb_plan_setup_init(&c->s);
    c->backend = "emu";
    c->kernels = "cpu";
    c->frames = 1;
    c->warmup = 1;
    c->timeout = 10;
    c->seed = 1;
    c->saved_ns = -1;
    int opt, idx;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 0:
            if (mb_plan_setup_option(&c->s, opts[idx].name, optarg))
                return 2;
            break;
        case 'p': c->policy = optarg; break;
        case 'b': c->backend = optarg; break;
        case 'j': c->json = 1; break;
        case 't': c->timeline = optarg; break;
        case 'a': c->adaptive = 1; break;
        case 'L': c->log_dir = optarg; break;
        case 'C': c->no_cap = 1; break;
        case 'E':
            if (strcmp(optarg, "dilate") && strcmp(optarg, "cap")) {
                fprintf(stderr, "mecbed run: --emulate %s: expected dilate or cap\n", optarg);
                return 2;
            }
            c->use_cap = !strcmp(optarg, "cap");
            break;
        case 'P': c->pinned = 1; break;
        case 'r': c->run_id = optarg; break;
        case 'k': c->kernels = optarg; break;
        case 'F':
            if (strcmp(optarg, "local") && strcmp(optarg, "none")) {
                fprintf(stderr, "mecbed run: --fallback %s: expected local or none\n", optarg);
                return 2;
            }
            c->fallback = strcmp(optarg, "local") ? NULL : optarg;
            break;
        case 'n':
        case 'w':
        case 's': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < (opt == 'n') || v > 1000000) {
                fprintf(stderr, "mecbed run: --%s %s: expected a count\n",
                        opt == 'n' ? "frames" : opt == 'w' ? "warmup" : "seed", optarg);
                return 2;
            }
            if (opt == 'n')
                c->frames = (int)v;
            else if (opt == 'w')
                c->warmup = (int)v;
            else
                c->seed = (uint64_t)v;
            break;
        }
        case 'f':
        case 'T': {
            double v = strtod(optarg, &end);
            if (*end || !(v > 0) || v > 1e6) {
                fprintf(stderr, "mecbed run: --%s %s: expected a positive number\n",
                        opt == 'f' ? "fps" : "timeout", optarg);
                return 2;
            }
            if (opt == 'f')
                c->fps = v;
            else
                c->timeout = v;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed run: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!c->policy) {
        fprintf(stderr, "mecbed run: --policy is required (mecbed run --help)\n");
        return 2;
    }
    if (strcmp(c->kernels, "cpu") && strcmp(c->kernels, "ref")) {
        fprintf(stderr, "mecbed run: --kernels %s: expected cpu or ref\n", c->kernels);
        return 2;
    }
    if (c->fps > 0 && c->s.frame_interval_s == 0)
        c->s.frame_interval_s = 1.0 / c->fps;
    char err[1024];
    int rc = 1;
    if (mb_plan_setup_build(&c->s, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        mb_plan_setup_free(&c->s);
        return 1;
    }
    /* Predict for this machine as it is now: profile the model here (the
     * pinned profiles are for reproducible plans, not for comparing with a
     * measurement on another machine or under another load). */
    char cpu_here[128] = "";
    mb_platform_cpu_model(cpu_here, sizeof cpu_here);
    int pinned_here = c->s.prof_source && !strcmp(c->s.prof_source, "pinned") &&
                      !strcmp(c->s.prof->cpu, cpu_here) && c->s.prof->threads == 1 &&
                      !strcmp(c->s.prof->backend, c->kernels);
    /* A pinned profile measured on this kind of CPU with the run's kernels
     * is the idle-machine truth, steadier than a measurement on a busy
     * machine; anything else is measured here and now. */
    if (!c->s.profile && !c->pinned && !pinned_here) {
        mb_profile *now = mb_profile_measure(c->s.g, c->kernels, 1, 5, err, sizeof err);
        mb_cost_model *cost = NULL;
        if (now) {
            mb_cost_opts o;
            mb_cost_opts_default(&o);
            o.radio = c->s.radio;
            o.frame_interval_s = c->s.frame_interval_s;
            o.msg_overhead_ms = c->s.msg_overhead_ms;
            cost = mb_cost_new(c->s.g, &c->s.topo, now, &c->s.types, &o, err, sizeof err);
        }
        if (!cost) {
            fprintf(stderr, "mecbed run: profiling %s here: %s\n", c->s.model, err);
            mb_profile_free(now);
            mb_plan_setup_free(&c->s);
            return 1;
        }
        mb_cost_free(c->s.cost);
        mb_profile_free(c->s.prof);
        c->s.cost = cost;
        c->s.prof = now;
        c->s.prof_source = "measured now";
    }
    const mb_topology *t = &c->s.topo;
    int dev = c->s.device;
    c->real = 1;
    for (int i = 0; i < t->n_sites; i++)
        if (i != dev && !t->sites[i].address[0])
            c->real = 0;
    int n_remote = 0;
    for (int i = 0; i < t->n_sites; i++)
        n_remote += i != dev && t->sites[i].address[0];
    if (!c->real && n_remote) {
        fprintf(stderr, "mecbed run: some servers have address= and some not: mixing emulated and "
                        "remote servers is not supported (the emulated namespaces have no route out); "
                        "give every server an address= or none\n");
        mb_plan_setup_free(&c->s);
        return 1;
    }
    if (c->real && !t->sites[dev].address[0]) {
        fprintf(stderr, "mecbed run: every server has address=, so this is a run over the real network: "
                        "give the device's address= too (host:port where the nodes send it data)\n");
        mb_plan_setup_free(&c->s);
        return 1;
    }
    for (int l = 0; l < t->n_links && !c->real; l++)
        if (mb_net_check(c->backend, &t->links[l].spec, err, sizeof err)) {
            fprintf(stderr, "mecbed run: link %s-%s: %s\n", t->sites[t->links[l].a].name,
                    t->sites[t->links[l].b].name, err);
            mb_plan_setup_free(&c->s);
            return 1;
        }
    /* What this machine can emulate: a site slower than it gets a CPU cap;
     * one faster runs at this machine's speed, and the plan is made for that. */
    for (int s = 0; s < t->n_sites; s++) {
        c->factor[s] = mb_cost_site_factor(c->s.cost, s);
        c->emu_factor[s] = c->factor[s];
        if (!t->sites[s].address[0] && (c->factor[s] < 1 || c->no_cap)) {
            mb_cost_set_site_scale(c->s.cost, s, 1.0 / c->factor[s]);
            c->emu_factor[s] = 1;
        }
    }
    for (int s = 0; s < t->n_sites; s++)
        if (c->factor[s] < 1 && !t->sites[s].address[0])
            add_warn(c, "%s (%s) is %.2fx faster than this machine: emulated at this machine's speed, and planned for it",
                     t->sites[s].name, mb_cost_site_type(c->s.cost, s)->name, 1 / c->factor[s]);
    const mb_policy_ops *ops = mb_policy_find(c->policy);
    if (!ops) {
        fprintf(stderr, "mecbed run: unknown policy '%s'\n", c->policy);
        mb_plan_setup_free(&c->s);
        return 1;
    }
    mb_policy_session *sess = mb_policy_session_new(ops, c->s.g, t, c->s.cost, dev, c->s.objective,
                                                    c->s.policy_opts, err, sizeof err);
    mb_plan *plan = sess ? mb_policy_session_plan(sess, NULL, err, sizeof err) : NULL;
    if (!plan) {
        fprintf(stderr, "mecbed run: policy %s: %s\n", c->policy, err);
        mb_policy_session_free(sess);
        mb_plan_setup_free(&c->s);
        return 1;
    }
    c->plans[c->n_plans++] = plan;
    c->be = mb_backend_new(c->kernels, 1, err, sizeof err);
    c->inputs = mb_exec_make_inputs(c->s.g, c->seed);
    if (!c->be || !c->inputs || mb_exec_run(c->s.g, c->be, c->inputs, &c->ref, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "mecbed run: the unsplit reference run failed: %s\n", err);
        goto out;
    }
    c->ref_scale = 0;
    for (int i = 0; i < c->s.g->n_outputs; i++)
        if (max_abs(c->ref[i]) > c->ref_scale)
            c->ref_scale = max_abs(c->ref[i]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stop_flag = 0;
    mb_timeline_init(&c->tl);
    c->rec = calloc((size_t)c->frames, sizeof *c->rec);
    if (!c->rec || bring_up(c, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", c->rec ? err : "out of memory");
        teardown(c);
        goto out;
    }
    double net_epoch = c->net ? mb_net_epoch(c->net) : 0;
    c->net_epoch = net_epoch;
    const mb_plan *cur = plan;
    if (mb_runner_plan(c->runner, cur, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        teardown(c);
        goto out;
    }
    mb_goodput gp;
    mb_goodput_init(&gp, 0.3, 0.7, 16 * 1024);
    int a_side;
    int dl = device_link(t, dev, &a_side);
    double plan_bps = dl >= 0 ? mb_cost_rate_bps(c->s.cost, dev, a_side ? t->links[dl].b : t->links[dl].a) : 0;
    uint32_t frame_no = 0;
    /* Warm-up frames: caches, page faults, TCP windows; not reported. */
    for (int w = 0; w < c->warmup && !stop_flag; w++) {
        mb_tensor **out = NULL;
        mb_frame_report rep;
        if (mb_runner_frame(c->runner, frame_no++, c->inputs, &out, NULL, &rep))
            break; /* the measured frames report it */
        free_outputs(c->s.g, out);
    }
    if (c->net && dl >= 0) { /* ns3 Wi-Fi: its radio energy over the measured frames only */
        mb_link_realtime rt;
        c->ns3_e0 = c->ns3_t0 = NAN;
        if (mb_net_link_realtime(c->net, dl, &rt) == 0)
            c->ns3_e0 = rt.radio_energy_j, c->ns3_t0 = rt.sim_s;
    }
    double t_stream = mb_now();
    /* Frames are released at their times (back to back without --fps, one
     * at a time then, so each latency is a clean single-frame figure); with
     * --fps up to three are in flight and pipeline across the sites. */
    int next = 0, head = 0; /* next frame to release; oldest not yet collected */
    uint32_t first_frame = frame_no;
    int max_inflight = c->fps > 0 ? 3 : 1;
    while (head < c->frames && !stop_flag) {
        double now = mb_now();
        double release = c->fps > 0 ? t_stream + next / c->fps : now;
        if (next < c->frames && next - head < max_inflight && now >= release) {
            frame_rec *fr = &c->rec[next];
            fr->frame = first_frame + (uint32_t)next;
            fr->epoch = c->n_plans - 1;
            fr->predicted_ms = cur->pred.latency_ms;
            fr->predicted_energy_mj = cur->pred.energy_mj;
            fr->release = c->fps > 0 ? release : now;
            mb_frame_report rep;
            if (mb_runner_submit(c->runner, fr->frame, c->inputs, &rep)) {
                fr->submit_failed = 1;
                snprintf(fr->error, sizeof fr->error, "%s", rep.error);
                fr->t_start = rep.t_start;
            }
            next++;
            continue;
        }
        if (head == next) { /* nothing in flight: wait for the next release */
            usleep((useconds_t)fmin(1e6 * (release - now), 10000) + 1);
            continue;
        }
        frame_rec *fr = &c->rec[head];
        mb_tensor **out = NULL;
        mb_frame_report rep;
        int frc = -1;
        if (!fr->submit_failed) {
            double until = next < c->frames && next - head < max_inflight ? release : now + 0.2;
            frc = mb_runner_collect(c->runner, fr->frame, until, &out, &c->tl, &rep);
            if (frc == 0)
                continue;
            fr->t_start = rep.t_start;
            if (frc < 0)
                snprintf(fr->error, sizeof fr->error, "%s", rep.error);
        }
        head++;
        c->n_rec = head;
        if (frc == 1) {
            fr->ok = 1;
            fr->t_end = rep.t_end;
            fr->latency_ms = rep.latency_ms;
            compare_outputs(c, out, fr);
            free_outputs(c->s.g, out);
            fr->critical_ms = rs_critical_path_ms(cur, c->s.g, &c->tl, fr->frame);
            rs_device_bytes(&c->tl, fr->frame, dev, &fr->bytes_up, &fr->bytes_down);
        } else {
            if (!fr->t_start)
                fr->t_start = mb_now();
            fr->critical_ms = NAN;
            if (!c->json)
                fprintf(stderr, "mecbed run: frame %u failed: %s\n", fr->frame, fr->error);
            if (c->fallback) {
                fallback_local(c, fr);
                mb_event e = {.frame = fr->frame, .step = -1, .kind = MB_EV_FALLBACK, .site = dev,
                              .peer = -1, .op = -1, .t0 = fr->t_end - fr->busy_ms / 1e3, .t1 = fr->t_end};
                if (fr->fell_back)
                    mb_timeline_add(&c->tl, &e);
            }
        }
        /* Re-plan only between frames: with nothing else in flight. */
        if (fr->ok && c->adaptive) {
            feed_goodput(c, &gp, fr->frame);
            if (head == next)
                maybe_replan(c, sess, &gp, &plan_bps, &cur, first_frame + (uint32_t)next);
        }
    }
    frame_no = first_frame + (uint32_t)next;
    double t_stream_end = mb_now();
    int interrupted = stop_flag;
    if (c->net) { /* ns3: a link that fell behind real time invalidates the run */
        c->ns3_energy_j = NAN;
        for (int l = 0; l < t->n_links; l++) {
            mb_link_realtime rt;
            if (mb_net_link_realtime(c->net, l, &rt))
                continue;
            if (!c->rt_have)
                c->rt_valid = 1;
            c->rt_have = 1;
            c->rt_valid &= rt.valid;
            c->rt_lag_max_ms = fmax(c->rt_lag_max_ms, rt.lag_max_ms);
            if (isfinite(rt.radio_energy_j) && isfinite(c->ns3_e0) && l == device_link(t, c->s.device, &(int){0}))
                c->ns3_energy_j = rt.radio_energy_j - c->ns3_e0, c->ns3_sim_s = rt.sim_s - c->ns3_t0;
            if (rt.died)
                add_warn(c, "link %d's ns-3 simulator process died during the run: this run is invalid", l);
            else if (!rt.valid)
                add_warn(c, "link %d's ns-3 simulation fell behind real time (lag %.1f ms > %.1f ms): this run is invalid",
                         l, rt.lag_max_ms, rt.lag_limit_ms);
        }
    }
    teardown(c);
    /* Energy needs the packet logs, complete once the links are down. */
    rs_packets ps = {0};
    read_packet_logs(c, &ps, net_epoch);
    double interval_s = c->fps > 0 ? 1.0 / c->fps : 0;
    for (int i = 0; i < c->n_rec; i++)
        if (c->rec[i].ok || c->rec[i].fell_back)
            frame_energy(c, &c->rec[i], &ps, interval_s);
    rs_packets_free(&ps);

    /* Summary. */
    double *lat = calloc((size_t)c->n_rec + 1, sizeof(double));
    double *en = calloc((size_t)c->n_rec + 1, sizeof(double));
    double *crit = calloc((size_t)c->n_rec + 1, sizeof(double));
    double *pred = calloc((size_t)c->n_rec + 1, sizeof(double));
    double *pen = calloc((size_t)c->n_rec + 1, sizeof(double));
    int n_ok = 0, n_failed = 0, n_fb = 0, n_crit = 0, misses = 0, all_match = 1;
    double max_err = 0, sum = 0;
    for (int i = 0; i < c->n_rec; i++) {
        frame_rec *fr = &c->rec[i];
        if (!fr->ok)
            n_failed++;
        if (fr->fell_back)
            n_fb++;
        if (fr->ok || fr->fell_back) {
            if (!fr->output_match)
                all_match = 0;
            if (fr->max_abs_err > max_err)
                max_err = fr->max_abs_err;
        } else {
            all_match = 0;
        }
        /* a deadline counts from the frame's release, queueing included */
        if (c->fps > 0 && (!(fr->ok || fr->fell_back) || (fr->t_end - fr->release) * 1e3 > 1000 / c->fps))
            misses++;
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
    double mean_ms = n_ok ? sum / n_ok : NAN;
    double p95 = percentile(lat, n_ok, 0.95);
    double measured = median(lat, n_ok), energy = median(en, n_ok);
    double predicted = n_ok ? median(pred, n_ok) : plan->pred.latency_ms;
    double pred_energy = n_ok ? median(pen, n_ok) : plan->pred.energy_mj;
    double crit_ms = median(crit, n_crit);
    /* Throughput: completions per second between the first and the last
     * completed frame (a stream's steady rate; counting from the first
     * release would overstate short streams). */
    double first_end = INFINITY, last_end = -INFINITY;
    int n_done = 0;
    for (int i = 0; i < c->n_rec; i++)
        if (c->rec[i].ok || c->rec[i].fell_back) {
            n_done++;
            first_end = fmin(first_end, c->rec[i].t_end);
            last_end = fmax(last_end, c->rec[i].t_end);
        }
    double fps_meas = n_done >= 2 && last_end > first_end ? (n_done - 1) / (last_end - first_end)
                      : n_done == 1 && t_stream_end > t_stream ? 1 / (t_stream_end - t_stream) : 0;
    if (c->timeline) {
        char path[1100];
        double origin = c->n_rec ? c->rec[0].t_start : 0;
        if (mb_timeline_write_chrome(&c->tl, c->s.g, t, origin, c->timeline, err, sizeof err))
            fprintf(stderr, "mecbed run: %s\n", err);
        snprintf(path, sizeof path, "%s.csv", c->timeline);
        if (mb_timeline_write_csv(&c->tl, c->s.g, t, origin, path, err, sizeof err))
            fprintf(stderr, "mecbed run: %s\n", err);
    }
    if (c->json) {
        print_json(c, plan, measured, predicted, energy, pred_energy, all_match, max_err, crit_ms, n_ok,
                   n_failed, n_fb, misses, fps_meas, p95, mean_ms);
    } else {
        printf("model %s, policy %s, %s %s, backend %s\n", c->s.g->name, plan->policy,
               c->s.link ? "link" : "topology", c->s.link ? c->s.link : c->s.topology, c->backend);
        for (int s = 0; s < t->n_sites; s++)
            printf("  site %-8s %-11s x%.3f of the profile, emulated x%.3f%s\n", t->sites[s].name,
                   mb_cost_site_type(c->s.cost, s)->name, c->factor[s], c->emu_factor[s],
                   c->emu_factor[s] <= 1.0001 ? "" : c->cap_cores[s] > 0 ? " (CPU capped)" : " (time-dilated)");
        printf("frames          %d ok, %d failed, %d completed locally\n", n_ok, n_failed, n_fb);
        printf("latency         measured %.3f ms (median; mean %.3f, p95 %.3f), predicted %.3f ms, error %+.1f%%\n",
               measured, mean_ms, p95, predicted,
               n_ok ? (predicted - measured) / measured * 100 : NAN);
        printf("critical path   %.3f ms from this run's op and transfer times (runtime overhead x%.3f)\n",
               crit_ms, crit_ms > 0 ? measured / crit_ms : NAN);
        printf("device energy   measured %.3f mJ, predicted %.3f mJ\n", energy, pred_energy);
        if (c->n_rec > 0) /* the last frame's bytes over the device's link */
            printf("device traffic  %lld bytes up, %lld down per frame (last frame)\n",
                   (long long)c->rec[c->n_rec - 1].bytes_up, (long long)c->rec[c->n_rec - 1].bytes_down);
        printf("output          %s (max abs error %.3g vs the unsplit model)\n",
               all_match ? "matches" : "DIFFERS", max_err);
        if (c->fps > 0)
            printf("stream          %.2f fps offered, %.2f achieved, %d deadline misses\n", c->fps,
                   fps_meas, misses);
        if (c->n_plans > 1)
            printf("re-plans        %d\n", c->n_plans - 1);
        for (int i = 0; i < c->n_rec; i++)
            if (c->rec[i].error[0])
                printf("frame %u: %s%s\n", c->rec[i].frame, c->rec[i].error,
                       c->rec[i].fell_back ? " (completed locally)" : "");
    }
    free(lat);
    free(en);
    free(crit);
    free(pred);
    free(pen);
    rc = interrupted ? 130 : (n_failed > n_fb || !all_match) ? 1 : 0;
    if (interrupted)
        fprintf(stderr, "mecbed run: interrupted; everything was torn down\n");
out:
    remove_tmp_dir(c);
    for (int i = 0; i < c->n_plans; i++)
        mb_plan_free(c->plans[i]);
    mb_policy_session_free(sess);
    if (c->ref)
        free_outputs(c->s.g, c->ref);
    if (c->inputs) {
        int k = 0;
        for (int i = 0; i < c->s.g->n_nodes; i++)
            if (c->s.g->nodes[i].type == MB_OP_INPUT)
                mb_tensor_free(c->inputs[k++]);
        free(c->inputs);
    }
    mb_backend_free(c->be);
    mb_timeline_free(&c->tl);
    free(c->rec);
    mb_plan_setup_free(&c->s);
    return rc;
}
