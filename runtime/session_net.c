/* Run session, network: bring the topology up as emulated links (one
 * namespace per site), start `mecbed node` in each edge/cloud site's
 * namespace, connect the runner from the device's namespace; or, when every
 * server has address=, connect over the real network. And the teardown of
 * all of it, which must work from any state (failed bring-up, Ctrl-C). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/auth.h"
#include "mecbed/linktest.h"
#include "mecbed/netns.h"
#include "mecbed/platform.h"
#include "mecbed/timescale.h"
#include "session_priv.h"

#define NODE_PORT 7400

int ss_device_link(const mb_topology *t, int device, int *dev_is_a)
{
    for (int l = 0; l < t->n_links; l++)
        if (t->links[l].a == device || t->links[l].b == device) {
            *dev_is_a = t->links[l].a == device;
            return l;
        }
    return -1;
}

/* The topology as the link backends must emulate it: every link dilated
 * by the session's k (rates / k, delays, jitter and traces x k), each
 * checked by the backend. ns-3's Wi-Fi and LTE models take no rate or
 * delay from the spec, so they cannot be dilated: refused when k > 1.
 * 0, or -1 with err. */
int ss_net_prepare(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    if (s->real)
        return 0;
    s->net_topo = malloc(sizeof *s->net_topo);
    if (!s->net_topo) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *s->net_topo = *t;
    for (int l = 0; l < t->n_links; l++) {
        char why[768];
        mb_link_spec *sp = &s->net_topo->links[l].spec;
        const char *a = t->sites[t->links[l].a].name, *b = t->sites[t->links[l].b].name;
        char model[32] = "";
        mb_linkspec_extra(sp, "ns3", model, sizeof model);
        if (s->k > 1 && (!strcmp(model, "wifi") || !strcmp(model, "lte"))) {
            snprintf(err, errlen, "link %s-%s: ns-3's %s radio model cannot be time-dilated (its rates and "
                                  "timers are its own), and this run needs a time dilation factor of %.2f. Use "
                                  "--tdf 1 (sites faster than this machine then run at its speed, slower than "
                                  "their node types), or another link backend (emu, tc, ns3=p2p)",
                     a, b, model, s->k);
            return -1;
        }
        if (mb_linkspec_dilate(sp, s->k, sp, why, sizeof why) ||
            mb_net_check(s->cfg.backend, sp, why, sizeof why)) {
            snprintf(err, errlen, "link %s-%s: %s", a, b, why);
            return -1;
        }
    }
    return 0;
}

/* Every server already runs somewhere (address=): connect over the real
 * network, no namespaces, links or caps. The device's address= is where
 * nodes send it data. */
static int connect_real(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    if (ss_key_setup(s, err, errlen))
        return -1;
    mb_runner_opts ro = {.model = ss_model_name(s), .g = s->cfg.g, .topo = t, .device = s->cfg.device,
                         .listen_fd = -1, .be = s->be, .timeout_s = s->cfg.timeout_s,
                         .key = s->have_key ? s->key : NULL, .insecure_no_auth = s->cfg.insecure_no_auth};
    for (int i = 0; i < t->n_sites; i++)
        snprintf(ro.addrs[i], sizeof ro.addrs[i], "%s", t->sites[i].address);
    s->runner = mb_runner_new(&ro, err, errlen);
    return s->runner ? 0 : -1;
}

/* The run id: --run-id's, else one drawn once (namespaces, interfaces,
 * cgroups, the owner file and the temp directory all carry it). */
static void ensure_run_id(mb_session *s)
{
    if (s->run_id[0])
        return;
    if (s->cfg.run_id)
        snprintf(s->run_id, sizeof s->run_id, "%s", s->cfg.run_id);
    else
        mb_run_id_new(s->run_id);
}

/* The run's private temp directory (mode 0700), removed at the end. Its
 * name carries the run id (MB_RUN_TMP_PREFIX<run>-XXXXXX) and the owner
 * file /run/mecbed/<run>.pid is written first, so that `mecbed clean`
 * removes the directory of a killed run and never a live one's. */
static int make_tmp_dir(mb_session *s, char *err, size_t errlen)
{
    if (s->tmp_dir[0])
        return 0;
    ensure_run_id(s);
    mb_cleanup_install();
    if (!s->owner_written && mb_cleanup_owner_write(s->run_id) == 0)
        s->owner_written = 1;
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s%s-XXXXXX", MB_RUN_TMP_PREFIX, s->run_id);
    if (!mkdtemp(s->tmp_dir)) {
        snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
        s->tmp_dir[0] = 0;
        return -1;
    }
    return 0;
}

/* What the runner calls the model in its HELLO: a zoo name as it is, a file
 * by its base name (for the nodes' logs; nodes find it by graph hash). */
const char *ss_model_name(const mb_session *s)
{
    const char *m = s->cfg.model ? s->cfg.model : "";
    const char *slash = strrchr(m, '/');
    return slash ? slash + 1 : m;
}

/* The run's key: --key-file's, or (for the nodes this run starts) a new
 * one in a 0600 file in the private temp directory. Sites that run
 * elsewhere (address=) cannot know a new key: they need key_file. */
int ss_key_setup(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    if (s->cfg.insecure_no_auth)
        return 0;
    if (s->cfg.key_file) {
        if (mb_key_read(s->cfg.key_file, s->key, err, errlen))
            return -1;
        s->have_key = 1;
        snprintf(s->key_path, sizeof s->key_path, "%s", s->cfg.key_file);
        return 0;
    }
    for (int i = 0; i < t->n_sites; i++)
        if (i != s->cfg.device && t->sites[i].address[0]) {
            snprintf(err, errlen, "site %s runs elsewhere (address=): give the runner its key with --key-file "
                                  "FILE (the file its node was started with: mecbed node --key-file FILE), or "
                                  "--insecure-no-auth for nodes without one",
                     t->sites[i].name);
            return -1;
        }
    if (make_tmp_dir(s, err, errlen) || mb_key_generate(s->key, err, errlen))
        return -1;
    snprintf(s->key_path, sizeof s->key_path, "%s/run.key", s->tmp_dir);
    if (mb_key_write(s->key_path, s->key, err, errlen))
        return -1;
    s->have_key = 1;
    return 0;
}

/* The links' logs: --log-dir, or the run's temp directory. */
static const char *make_log_dir(mb_session *s, char *err, size_t errlen)
{
    const char *log_dir = s->cfg.log_dir;
    if (!log_dir) {
        if (make_tmp_dir(s, err, errlen))
            return NULL;
        return s->tmp_dir;
    }
    if (mkdir(log_dir, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "--log-dir %s: %s", log_dir, strerror(errno));
        return NULL;
    }
    return log_dir;
}

/* One `mecbed node` per edge/cloud site, inside its namespace (and cap). */
static int spawn_nodes(mb_session *s, const char *exe, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int dilate = s->cfg.emulate == MB_EMULATE_DILATE;
    for (int i = 0; i < t->n_sites; i++) {
        if (t->sites[i].role == MB_ROLE_DEVICE || t->sites[i].address[0])
            continue; /* the device (and other devices, with runners of their own) */
        char listen[64];
        snprintf(listen, sizeof listen, "%s:%d", mb_net_addr(s->net, i), NODE_PORT);
        char slow[32], tdf[32];
        snprintf(slow, sizeof slow, "%.6f", dilate ? s->slowdown[i] : 1.0);
        snprintf(tdf, sizeof tdf, "%.6f", s->k);
        char nsess[16];
        snprintf(nsess, sizeof nsess, "%d", s->cfg.n_sessions > 1 ? s->cfg.n_sessions : 1);
        char *argv[26] = {(char *)exe, "node", "--role", t->sites[i].role == MB_ROLE_CLOUD ? "cloud" : "edge",
                          "--listen", listen, "--threads", "1", "--kernels", (char *)s->cfg.kernels,
                          "--sessions", nsess, "--max-sessions", nsess, "--slowdown", slow, "--tdf", tdf};
        int n = 18;
        if (s->cfg.emulate == MB_EMULATE_MODEL)
            argv[n++] = "--modelled";
        /* the key by file (0600, in the run's private directory): never in argv or env */
        argv[n++] = s->have_key ? "--key-file" : "--insecure-no-auth";
        if (s->have_key)
            argv[n++] = s->key_path;
        /* the run's model file is one the node may serve (the zoo's it knows) */
        struct stat st;
        if (s->cfg.model && !stat(s->cfg.model, &st) && S_ISREG(st.st_mode)) {
            argv[n++] = "--model";
            argv[n++] = (char *)s->cfg.model;
        }
        argv[n] = NULL;
        pid_t pid;
        if (mb_net_spawn(s->net, i, argv, &pid, err, errlen))
            return -1;
        if (s->cap[i] && mb_cpu_cap_add(s->cap[i], pid, err, errlen))
            return -1;
    }
    return 0;
}

/* From the device's namespace: the runner, connected to every node. */
static int connect_runner(mb_session *s, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int dev = s->cfg.device;
    if (mb_netns_enter(mb_net_netns(s->net, dev), &s->saved_ns)) {
        snprintf(err, errlen, "cannot enter the device's namespace: %s", strerror(errno));
        s->saved_ns = -1;
        return -1;
    }
    /* the timeout is emulated time: k times longer on the wall (the
     * nodes get it with the plan) */
    mb_runner_opts ro = {.model = ss_model_name(s), .g = s->cfg.g, .topo = t, .device = dev, .listen_fd = -1,
                         .be = s->be, .timeout_s = mb_tdf_to_wall(s->k, s->cfg.timeout_s),
                         .key = s->have_key ? s->key : NULL, .insecure_no_auth = s->cfg.insecure_no_auth,
                         .thread_hook = s->cap[dev] ? ss_device_thread_hook : NULL,
                         .thread_hook_arg = s, .epoch_tag = s->cfg.epoch_tag};
    for (int i = 0; i < t->n_sites; i++) {
        if (t->sites[i].address[0])
            snprintf(ro.addrs[i], sizeof ro.addrs[i], "%s", t->sites[i].address);
        else
            snprintf(ro.addrs[i], sizeof ro.addrs[i], "%s:%d", mb_net_addr(s->net, i), NODE_PORT);
    }
    s->runner = mb_runner_new(&ro, err, errlen);
    if (!s->runner) {
        pid_t pid;
        int st;
        if (mb_net_child_exited(s->net, &pid, &st) == 1) {
            size_t l = strlen(err);
            snprintf(err + l, errlen - l, " (a node process exited with status %d)",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        return -1;
    }
    return 0;
}

/* Links whose spec carries no rate (ns-3's Wi-Fi and LTE models: the
 * simulated radio decides) would be planned as unlimited. Probe each with a
 * short bulk TCP flow through the simulated link, device side to server
 * side, and give the cost model that goodput for both directions (the
 * models' rates are near symmetric at one distance; a cost-model rate set
 * this way is a measured goodput, used as it is). Before planning. */
static void probe_rates(mb_session *s)
{
    const mb_topology *t = s->net_topo;
    for (int l = 0; l < t->n_links; l++) {
        const mb_link_spec *sp = &t->links[l].spec;
        s->probed_bps[l] = NAN;
        char model[32];
        if (!mb_linkspec_extra(sp, "ns3", model, sizeof model) || sp->up.rate_bps > 0 || sp->down.rate_bps > 0 || sp->up.trace[0] || sp->down.trace[0])
            continue;
        mb_linktest_opts o = {.duration_s = 2.5, .no_udp = 1, .no_loss = 1};
        mb_linktest_result r;
        char why[512];
        double bps = NAN;
        snprintf(why, sizeof why, "no throughput measured");
        if (mb_link_test(s->net, l, &o, &r, why, sizeof why) == 0)
            bps = (isfinite(r.goodput_mbps) && r.goodput_mbps > 0 ? r.goodput_mbps : r.tcp_mbps) * 1e6;
        if (!(bps > 0)) {
            ss_warn(s, "link %s-%s has no rate in its spec and probing it failed (%s): planned as unlimited",
                    t->sites[t->links[l].a].name, t->sites[t->links[l].b].name, why);
            continue;
        }
        s->probed_bps[l] = bps;
        mb_cost_set_rate(s->cfg.cost, l, bps, bps);
        ss_info(s, "link %s-%s: probed %.2f Mbit/s through the simulated link; planning with it",
                t->sites[t->links[l].a].name, t->sites[t->links[l].b].name, bps / 1e6);
    }
}

/* A session attached to another's links and nodes (another device of the
 * same run): its key, run id and temp directory (the links' logs), and its
 * own runner from its device's namespace. */
static int attach_runner(mb_session *s, char *err, size_t errlen)
{
    const mb_session *h = s->cfg.attach;
    if (!h->net) {
        snprintf(err, errlen, "session: the session to attach to is not up");
        return -1;
    }
    s->net = h->net;
    memcpy(s->key, h->key, sizeof s->key);
    s->have_key = h->have_key;
    snprintf(s->run_id, sizeof s->run_id, "%s", h->run_id);
    snprintf(s->tmp_dir, sizeof s->tmp_dir, "%s", h->tmp_dir);
    return connect_runner(s, err, errlen);
}

/* Bring up, start nodes, connect. 0 or -1 with err (the caller tears down). */
int ss_bring_up(mb_session *s, char *err, size_t errlen)
{
    char why[256];
    if (s->real)
        return connect_real(s, err, errlen);
    if (s->attached)
        return attach_runner(s, err, errlen);
    if (mb_netns_available(why, sizeof why)) {
        snprintf(err, errlen, "cannot emulate links here: %s", why);
        return -1;
    }
    ensure_run_id(s);
    const char *log_dir = make_log_dir(s, err, errlen);
    if (!log_dir)
        return -1;
    /* Frames (and requests) reuse one connection per pair of sites, idle in
     * between for longer than its retransmission timeout. The kernel's
     * default then restarts each frame's transfer from a smaller window;
     * the runtime keeps it, as latency-sensitive services over persistent
     * connections are tuned, and as the cost model assumes (warm
     * connections: policies/cost.c). MECBED_TCP_SLOW_START_AFTER_IDLE=1
     * keeps the kernel's default. */
    const char *ssai = getenv("MECBED_TCP_SLOW_START_AFTER_IDLE");
    mb_net_opts no = {.backend = s->cfg.backend, .run_id = s->run_id, .log_dir = log_dir, .seed = s->cfg.seed,
                       .tdf = s->k, .keep_cwnd_after_idle = !(ssai && !strcmp(ssai, "1"))};
    if (mb_net_up(s->net_topo, &no, &s->net, err, errlen))
        return -1;
    probe_rates(s);
    char self[PATH_MAX];
    const char *exe = s->cfg.node_exe;
    if (!exe) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            snprintf(err, errlen, "cannot find the mecbed binary: %s", strerror(errno));
            return -1;
        }
        self[n] = 0;
        exe = self;
    }
    if (ss_key_setup(s, err, errlen))
        return -1;
    /* CPU caps first (the device's threads join when they start). */
    if (ss_sites_apply(s, mb_net_run_id(s->net), err, errlen) || spawn_nodes(s, exe, err, errlen))
        return -1;
    if (connect_runner(s, err, errlen))
        return -1;
    /* every node has read the per-run key: it need not stay on disk */
    if (!s->cfg.key_file && s->key_path[0])
        unlink(s->key_path);
    return 0;
}

/* ns3 Wi-Fi: its radio energy over the measured frames only. */
void ss_net_realtime_begin(mb_session *s)
{
    int a_side;
    int dl = ss_device_link(s->cfg.topo, s->cfg.device, &a_side);
    s->ns3_e0 = s->ns3_t0 = NAN;
    if (s->net && dl >= 0) {
        mb_link_realtime rt;
        if (mb_net_link_realtime(s->net, dl, &rt) == 0)
            s->ns3_e0 = rt.radio_energy_j, s->ns3_t0 = rt.sim_s;
    }
}

/* ns3: a link that fell behind real time invalidates the run. */
void ss_net_realtime_end(mb_session *s)
{
    if (!s->net)
        return;
    const mb_topology *t = s->cfg.topo;
    int a_side;
    int dl = ss_device_link(t, s->cfg.device, &a_side);
    s->ns3_energy_j = NAN;
    for (int l = 0; l < t->n_links; l++) {
        mb_link_realtime rt;
        if (mb_net_link_realtime(s->net, l, &rt))
            continue;
        if (!s->rt_have)
            s->rt_valid = 1;
        s->rt_have = 1;
        s->rt_valid &= rt.valid;
        s->rt_lag_max_ms = fmax(s->rt_lag_max_ms, rt.lag_max_ms);
        if (isfinite(rt.radio_energy_j) && isfinite(s->ns3_e0) && l == dl)
            s->ns3_energy_j = rt.radio_energy_j - s->ns3_e0, s->ns3_sim_s = rt.sim_s - s->ns3_t0;
        if (rt.died)
            ss_warn(s, "link %d's ns-3 simulator process died during the run: this run is invalid", l);
        else if (!rt.valid)
            ss_warn(s, "link %d's ns-3 simulation fell behind real time (lag %.1f ms > %.1f ms): this run is invalid",
                    l, rt.lag_max_ms, rt.lag_limit_ms);
    }
}

/* Runner, namespace, links, caps: whatever is up, in that order. The
 * process-wide runtime settings go back to their defaults. */
void ss_teardown(mb_session *s)
{
    if (s->runner) {
        mb_runner_free(s->runner);
        s->runner = NULL;
    }
    if (s->saved_ns >= 0) {
        mb_netns_leave(s->saved_ns);
        s->saved_ns = -1;
    }
    if (s->attached) { /* the links, nodes and process-wide settings are the host session's */
        s->net = NULL;
        return;
    }
    mb_rt_set_thread_hook(NULL, NULL);
    mb_rt_set_slowdown(1);
    mb_rt_set_step_timing(0, 1);
    if (s->net) {
        mb_net_down(s->net);
        s->net = NULL;
    }
    ss_sites_free(s);
}

void ss_remove_tmp_dir(mb_session *s)
{
    if (s->attached)
        s->tmp_dir[0] = 0; /* borrowed */
    if (!s->tmp_dir[0])
        return;
    char cmd[128];
    /* only our own mkdtemp directory */
    if (!strncmp(s->tmp_dir, MB_RUN_TMP_PREFIX, strlen(MB_RUN_TMP_PREFIX)) && !strchr(s->tmp_dir, '\'')) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->tmp_dir);
        if (system(cmd) != 0)
            ss_error(s, "could not remove %s", s->tmp_dir);
    }
    s->tmp_dir[0] = 0;
    if (s->owner_written) { /* after the directory: until then the run is alive for `mecbed clean` */
        mb_cleanup_owner_remove(s->run_id);
        s->owner_written = 0;
    }
}
