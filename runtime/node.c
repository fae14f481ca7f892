#define _GNU_SOURCE
/* mecbed node server: an edge or cloud site. Accepts runner sessions
 * (HELLO, PLAN, FRAME..., BYE), up to --max-sessions at once (one per device
 * sharing the node), and any number of peer data connections, each routed to
 * its session by the epoch tag of its HELLO (the high 16 bits of the plan
 * epoch, distinct per runner sharing the node); runs each session's plan with
 * its own rt_exec. Sessions share the node's compute first come, first served
 * (mb_rt_set_shared_compute): one step at a time, the wait a QUEUE event on
 * the session's timeline; or, when their plans give them shares of it
 * (mb_plan.share, dds), each at its share, side by side (rt_exec.c). */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/runtime.h"
#include "mecbed/timescale.h"
#include "mecbed/auth.h"
#include "rt_conn.h"

#define NODE_MAX_PEERS MB_MAX_SITES
#define IDLE_TIMEOUT_S 10.0
#define HANDSHAKE_TIMEOUT_S 3.0
#define NODE_MAX_CONNS 256
#define NODE_MAX_MODELS 256
#define NODE_MAX_SESSIONS 64

typedef struct node_model {
    char *path;
    uint64_t hash;
} node_model;

struct session;

typedef struct node_srv {
    const mb_node_opts *o;
    volatile sig_atomic_t *stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_threads;        /* connection threads alive */
    int n_active;         /* runner sessions claimed (at most max_sessions) */
    int max_sessions;
    int sessions_done;
    struct session *sess[NODE_MAX_SESSIONS]; /* the runner sessions alive (mu) */
    int n_sess;

    mb_graph *g;          /* the model of the last session (kept for the next) */
    uint64_t g_hash;
    char model[MB_WIRE_MAX_STR + 1];
    mb_backend *be;
    mb_auth auth;
    node_model cat[NODE_MAX_MODELS]; /* the model files it serves, by graph hash */
    int n_cat;
    double idle_s, hs_s;  /* wall seconds */
    int listen_port;
    struct {
        int fd;
        double t0;
        int used;
    } pre[MB_NODE_MAX_PREAUTH]; /* connections not yet authenticated */
} node_srv;

typedef struct conn_arg {
    node_srv *srv;
    int fd;
    int slot; /* in srv->pre */
} conn_arg;

static void logf_(const node_srv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const node_srv *s, const char *fmt, ...)
{
    if (!s->o->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mecbed node[%s]: ", s->o->role ? s->o->role : "node");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- one runner session ---- */

typedef struct session {
    node_srv *srv;
    int refs;             /* the runner's thread and each attached peer thread (srv->mu) */
    int tag_known;        /* the first PLAN named the session's epoch tag (srv->mu) */
    uint32_t tag;         /* epoch >> 16: peers' HELLOs carry it */
    int share_mode;       /* its plan computes here with a share (1), without (0); -1: no plan yet, or
                           * nothing to compute here (srv->mu) */
    int ending;           /* being torn down: no new peers (srv->mu) */
    rt_host host;         /* the current plan and executor */
    int peer_fd[NODE_MAX_PEERS]; /* accepted data connections of this session (srv->mu) */
    int n_peer_fd;
    mb_graph *g;          /* the session's model: srv->g, or its own when another session holds srv->g */
    int own_g;
    uint64_t g_hash;
    char model[MB_WIRE_MAX_STR + 1];
    int ctl;
    pthread_mutex_t wmu;  /* control writes come from two threads */
    mb_wire_plan wp;
    int have_plan;
    mb_topology sites;    /* the first plan's site table: later plans must keep it */
    int out_fd[MB_MAX_SITES];
    char out_addr[MB_MAX_SITES][64];
    pthread_t reporter;
    int reporter_on;
    volatile int reporter_stop;
    rt_state *state;      /* kept across frames and plans (plan state bindings), freed with the session */
} session;

static int ctl_send(session *ss, int type, uint32_t frame, const void *p, size_t n)
{
    char err[256];
    pthread_mutex_lock(&ss->wmu);
    int rc = mb_wire_send(ss->ctl, type, frame, p, n, err, sizeof err);
    pthread_mutex_unlock(&ss->wmu);
    return rc;
}

static void ctl_error(session *ss, uint32_t frame, int code, const char *msg)
{
    pthread_mutex_lock(&ss->wmu);
    mb_wire_send_error(ss->ctl, frame, code, msg);
    pthread_mutex_unlock(&ss->wmu);
}

/* Sends RESULT for every frame this site finished, ERROR when it fails. */
static void *reporter_main(void *arg)
{
    session *ss = arg;
    rt_exec *x = ss->host.x;
    while (!ss->reporter_stop) {
        uint32_t frame;
        int rc = rt_exec_next_done(x, mb_now() + 0.2, &frame);
        if (rc == 0)
            continue;
        if (rc < 0) {
            char msg[512];
            if (rt_exec_failed(x, msg, sizeof msg)) {
                char full[600];
                snprintf(full, sizeof full, "%s: %s", ss->wp.topo.sites[ss->wp.your_site].name, msg);
                ctl_error(ss, 0, MB_WERR_PEER, full);
            }
            break;
        }
        mb_timeline tl;
        mb_timeline_init(&tl);
        char err[256];
        if (rt_exec_take(x, frame, &tl, NULL, err, sizeof err)) {
            mb_timeline_free(&tl);
            ctl_error(ss, frame, MB_WERR_COMPUTE, err);
            break;
        }
        mb_wbuf b;
        mb_wbuf_init(&b);
        mb_result_encode(0, "", tl.ev, tl.n, &b);
        int bad = b.oom || ctl_send(ss, MB_MSG_RESULT, frame, b.p, b.len);
        mb_wbuf_free(&b);
        mb_timeline_free(&tl);
        if (bad)
            break;
    }
    return NULL;
}

static void stop_reporter(session *ss)
{
    if (ss->reporter_on) {
        ss->reporter_stop = 1;
        pthread_join(ss->reporter, NULL);
        ss->reporter_on = 0;
        ss->reporter_stop = 0;
    }
}

/* Where a plan may send this node's data: the sites of the session's
 * first plan, which must place this node at the port it listens on; a
 * later plan (re-planning) may not change the table. Every data
 * connection is authenticated as well, so tensors only go to holders of
 * the key. */
static int plan_sites_check(session *ss, const mb_wire_plan *wp, char *err, size_t errlen)
{
    const mb_site *me = &wp->topo.sites[wp->your_site];
    const char *colon = strrchr(me->address, ':');
    if (ss->srv->listen_port > 0 && (!colon || atoi(colon + 1) != ss->srv->listen_port)) {
        snprintf(err, errlen, "PLAN places this node (%s) at %s, not at the port it listens on", me->name,
                 me->address);
        return -1;
    }
    const mb_topology *known = ss->srv->o->topo;
    for (int i = 0; known && i < wp->topo.n_sites; i++) {
        const mb_site *s = &wp->topo.sites[i];
        int k = mb_topology_find(known, s->name);
        if (k < 0 || (known->sites[k].address[0] && strcmp(known->sites[k].address, s->address))) {
            snprintf(err, errlen, "PLAN names site %s%s%s, which this node's topology %s", s->name,
                     k < 0 ? "" : " at ", k < 0 ? "" : s->address, k < 0 ? "lacks" : "places elsewhere");
            return -1;
        }
    }
    if (!ss->sites.n_sites) {
        ss->sites = wp->topo;
        return 0;
    }
    int same = ss->sites.n_sites == wp->topo.n_sites;
    for (int i = 0; same && i < wp->topo.n_sites; i++)
        same = !strcmp(ss->sites.sites[i].name, wp->topo.sites[i].name) &&
               !strcmp(ss->sites.sites[i].address, wp->topo.sites[i].address) &&
               ss->sites.sites[i].role == wp->topo.sites[i].role;
    if (!same) {
        snprintf(err, errlen, "PLAN changes the session's sites or their addresses");
        return -1;
    }
    return 0;
}

static int load_model(node_srv *srv, session *ss, const mb_hello *hl, char *err, size_t errlen);

/* A PLAN naming another of the node's models than the session's (by graph
 * hash, like HELLO): generation's prefill graph, then its decode graph,
 * in one session whose state (the KV cache) outlives the switch. */
static int session_switch_model(session *ss, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
    mb_hello hl;
    memset(&hl, 0, sizeof hl);
    if (mb_wire_plan_peek(payload, len, &hl.graph_hash, hl.model, sizeof hl.model, err, errlen))
        return -1;
    if (hl.graph_hash == ss->g_hash)
        return 0;
    stop_reporter(ss);
    pthread_rwlock_wrlock(&ss->host.lock);
    rt_exec_free(ss->host.x);
    ss->host.x = NULL;
    ss->host.plan = NULL;
    pthread_rwlock_unlock(&ss->host.lock);
    mb_graph *old = ss->g;
    int old_own = ss->own_g;
    uint64_t old_hash = ss->g_hash;
    ss->own_g = 0;
    if (load_model(ss->srv, ss, &hl, err, errlen)) {
        ss->g = old;
        ss->own_g = old_own;
        ss->g_hash = old_hash;
        return -1;
    }
    if (old_own)
        mb_graph_free(old);
    return 0;
}

/* Install a new plan: stop the old executor, open the data connections the
 * plan needs (reusing those to the same address), start a new executor. */
static int session_plan(session *ss, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
    node_srv *srv = ss->srv;
    mb_wire_plan wp;
    if (session_switch_model(ss, payload, len, err, errlen) || mb_wire_plan_decode(payload, len, ss->g, &wp, err, errlen))
        return -1;
    /* The session's epoch tag: its peers' HELLOs carry it. Runners that
     * share this node must use distinct tags (mb_runner_opts.epoch_tag). */
    uint32_t tag = wp.epoch >> 16;
    /* Sessions on one node hold shares of it (dds) or are served first
     * come first served, not both: a reservation beside an unreserved
     * stream would give the node more compute than it has. */
    int shared = wp.plan->share[wp.your_site] > 0, mixed = 0, computes = 0;
    for (int i = 0; i < wp.plan->n_steps; i++)
        computes += wp.plan->steps[i].kind == MB_STEP_COMPUTE && wp.plan->steps[i].site == wp.your_site;
    /* a plan that computes nothing here (a device that stays local) takes no part */
    int mode = computes ? shared : -1;
    pthread_mutex_lock(&srv->mu);
    for (int i = 0; mode >= 0 && i < srv->n_sess; i++)
        mixed |= srv->sess[i] != ss && srv->sess[i]->share_mode >= 0 && srv->sess[i]->share_mode != mode;
    if (!mixed)
        ss->share_mode = mode;
    pthread_mutex_unlock(&srv->mu);
    if (mixed) {
        snprintf(err, errlen, "PLAN %s a share of this node's compute, and another session on it %s (runs "
                              "sharing a node use shares, or none)",
                 shared ? "asks for" : "asks for no", shared ? "is served first come, first served" : "holds one");
        mb_wire_plan_free(&wp);
        return -1;
    }
    pthread_mutex_lock(&srv->mu);
    int clash = 0;
    for (int i = 0; i < srv->n_sess; i++)
        clash |= srv->sess[i] != ss && srv->sess[i]->tag_known && srv->sess[i]->tag == tag;
    if (!clash && (!ss->tag_known || ss->tag == tag)) {
        ss->tag = tag;
        ss->tag_known = 1;
        pthread_cond_broadcast(&srv->cv);
    }
    int bad_tag = clash || ss->tag != tag;
    pthread_mutex_unlock(&srv->mu);
    if (bad_tag) {
        snprintf(err, errlen, clash ? "PLAN's epoch tag %u is used by another runner session on this node (runners "
                                      "sharing a node need distinct epoch tags)"
                                    : "PLAN changes the session's epoch tag (%u)",
                 (unsigned)tag);
        mb_wire_plan_free(&wp);
        return -1;
    }
    if (wp.topo.sites[wp.your_site].role == MB_ROLE_DEVICE) {
        snprintf(err, errlen, "PLAN makes this node the device");
        mb_wire_plan_free(&wp);
        return -1;
    }
    if (plan_sites_check(ss, &wp, err, errlen)) {
        mb_wire_plan_free(&wp);
        return -1;
    }
    stop_reporter(ss);
    pthread_rwlock_wrlock(&ss->host.lock);
    rt_exec_free(ss->host.x);
    ss->host.x = NULL;
    ss->host.plan = NULL;
    pthread_rwlock_unlock(&ss->host.lock);
    if (ss->have_plan)
        mb_wire_plan_free(&ss->wp);
    ss->wp = wp;
    ss->have_plan = 1;

    int me = wp.your_site;
    int need[MB_MAX_SITES] = {0};
    for (int s = 0; s < wp.plan->n_steps; s++)
        if (wp.plan->steps[s].kind == MB_STEP_SEND && wp.plan->steps[s].site == me)
            need[wp.plan->steps[s].to] = 1;
    for (int peer = 0; peer < wp.topo.n_sites; peer++) {
        const char *addr = wp.topo.sites[peer].address;
        if (!need[peer])
            continue;
        if (ss->out_fd[peer] >= 0 && !strcmp(ss->out_addr[peer], addr))
            continue;
        if (ss->out_fd[peer] >= 0)
            close(ss->out_fd[peer]);
        /* mutual: a peer that cannot prove the key gets no tensor */
        char e[400];
        int refused;
        ss->out_fd[peer] = rt_connect_hello(addr, &srv->auth, MB_WIRE_ROLE_PEER, me, wp.epoch, ss->g_hash,
                                            ss->model, wp.timeout_s, NULL, &refused, e, sizeof e);
        if (ss->out_fd[peer] < 0) {
            snprintf(err, errlen, "data connection to %.40s: %s", wp.topo.sites[peer].name, e);
            return -1;
        }
        snprintf(ss->out_addr[peer], sizeof ss->out_addr[peer], "%s", addr);
    }
    int fds[MB_MAX_SITES];
    for (int i = 0; i < MB_MAX_SITES; i++)
        fds[i] = need[i] ? ss->out_fd[i] : -1;
    if (wp.plan->n_state && !ss->state && !(ss->state = rt_state_new())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rt_exec *x = rt_exec_new(ss->g, wp.plan, me, wp.epoch, srv->be, fds, &ss->wp.topo, err, errlen);
    if (!x)
        return -1;
    rt_exec_set_state(x, ss->state);
    pthread_rwlock_wrlock(&ss->host.lock);
    ss->host.g = ss->g;
    ss->host.plan = wp.plan;
    ss->host.x = x;
    ss->host.me = me;
    ss->host.epoch = wp.epoch;
    ss->host.timeout_s = wp.timeout_s;
    pthread_rwlock_unlock(&ss->host.lock);
    if (pthread_create(&ss->reporter, NULL, reporter_main, ss)) {
        snprintf(err, errlen, "cannot start the reporter thread");
        return -1;
    }
    ss->reporter_on = 1;
    logf_(srv, "plan epoch %u: %d steps, %d of them here (site %s), %s", wp.epoch, wp.plan->n_steps,
          rt_exec_my_steps(x), wp.topo.sites[me].name, shared ? "holding a share" : "first come, first served");
    if (shared)
        logf_(srv, "share %.4f of this node's compute (the sessions alive hold %.4f)", wp.plan->share[me],
              mb_rt_share_total());
    return 0;
}

static void session_end(session *ss, int clean)
{
    node_srv *srv = ss->srv;
    stop_reporter(ss);
    /* Wake and drain the receivers, then drop the executor. */
    pthread_mutex_lock(&srv->mu);
    ss->ending = 1;
    ss->host.closing = 1;
    for (int i = 0; i < ss->n_peer_fd; i++)
        shutdown(ss->peer_fd[i], SHUT_RDWR);
    pthread_mutex_unlock(&srv->mu);
    for (int i = 0; i < MB_MAX_SITES; i++) {
        if (ss->out_fd[i] < 0)
            continue;
        if (clean)
            mb_wire_send(ss->out_fd[i], MB_MSG_BYE, 0, NULL, 0, NULL, 0);
        shutdown(ss->out_fd[i], SHUT_RDWR);
    }
    pthread_rwlock_wrlock(&ss->host.lock);
    rt_exec_free(ss->host.x);
    ss->host.x = NULL;
    ss->host.plan = NULL;
    pthread_rwlock_unlock(&ss->host.lock);
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (ss->out_fd[i] >= 0)
            close(ss->out_fd[i]);
    if (ss->have_plan)
        mb_wire_plan_free(&ss->wp);
    ss->have_plan = 0;
}

/* Drop a reference (srv->mu held); the last one frees the session (its
 * graph when it had its own). Returns 1 when freed. */
static int session_unref_locked(session *ss)
{
    if (--ss->refs > 0)
        return 0;
    if (ss->own_g)
        mb_graph_free(ss->g);
    rt_state_free(ss->state);
    rt_host_destroy(&ss->host);
    pthread_mutex_destroy(&ss->wmu);
    free(ss);
    return 1;
}

/* The model the runner names by graph hash: one of the node's model files,
 * or a zoo model when the runner names one. Never a path from the peer, and
 * a failure says nothing about the node's files or hashes. */
static int load_model(node_srv *srv, session *ss, const mb_hello *hl, char *err, size_t errlen)
{
    pthread_mutex_lock(&srv->mu);
    int cached = srv->g && srv->g_hash == hl->graph_hash;
    if (cached) {
        ss->g = srv->g;
        ss->g_hash = srv->g_hash;
        snprintf(ss->model, sizeof ss->model, "%s", srv->model);
    }
    pthread_mutex_unlock(&srv->mu);
    if (cached)
        return 0;
    char lerr[512];
    double t0 = mb_now();
    mb_graph *g = NULL;
    const char *from = NULL;
    for (int i = 0; i < srv->n_cat && !g; i++)
        if (srv->cat[i].hash == hl->graph_hash) {
            g = mb_model_load(srv->cat[i].path, lerr, sizeof lerr);
            from = srv->cat[i].path;
        }
    if (!g) {
        /* a zoo model, in any spelling the zoo accepts (the demo's "tinyyolov2"
         * for tiny_yolov2); mb_zoo_build knows only its own names, never a path */
        g = mb_zoo_build(hl->model, MB_ZOO_SEED, lerr, sizeof lerr);
        from = g ? hl->model : NULL;
    }
    uint64_t h = g ? mb_graph_hash(g) : 0;
    if (!g || h != hl->graph_hash) {
        if (g || from)
            logf_(srv, "model %016llx: %s", (unsigned long long)hl->graph_hash,
                  g ? "changed since the node started" : lerr);
        mb_graph_free(g);
        snprintf(err, errlen, "model not available on this node (it serves the zoo's models and the model "
                              "files it was started with: mecbed node --model FILE, --models DIR)");
        return -1;
    }
    /* it becomes the node's cached model unless another session computes
     * with the cached one; then this session keeps its own */
    pthread_mutex_lock(&srv->mu);
    int in_use = 0;
    for (int i = 0; i < srv->n_sess; i++)
        in_use |= srv->sess[i] != ss && srv->sess[i]->g == srv->g && srv->g;
    if (in_use) {
        ss->own_g = 1;
    } else {
        mb_graph_free(srv->g);
        srv->g = g;
        srv->g_hash = h;
        snprintf(srv->model, sizeof srv->model, "%s", hl->model);
    }
    ss->g = g;
    ss->g_hash = h;
    snprintf(ss->model, sizeof ss->model, "%s", hl->model);
    pthread_mutex_unlock(&srv->mu);
    logf_(srv, "loaded %s (%d ops) in %.0f ms", from, g->n_nodes, (mb_now() - t0) * 1e3);
    return 0;
}

static int is_model_file(const char *name)
{
    size_t n = strlen(name);
    const char *ext[] = {".mbm", ".model", ".onnx"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && !strcasecmp(name + n - k, ext[i]))
            return 1;
    }
    return 0;
}

static int catalogue_add(node_srv *srv, const char *path, int must, char *err, size_t errlen)
{
    char lerr[512];
    if (srv->n_cat >= NODE_MAX_MODELS) {
        snprintf(err, errlen, "more than %d model files", NODE_MAX_MODELS);
        return -1;
    }
    mb_graph *g = mb_model_load(path, lerr, sizeof lerr);
    if (!g) {
        if (must) {
            snprintf(err, errlen, "--model %s: %s", path, lerr);
            return -1;
        }
        logf_(srv, "skipping %s: %s", path, lerr);
        return 0;
    }
    srv->cat[srv->n_cat].hash = mb_graph_hash(g);
    srv->cat[srv->n_cat].path = strdup(path);
    mb_graph_free(g);
    if (!srv->cat[srv->n_cat].path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    logf_(srv, "serves %s (graph hash %016llx)", path, (unsigned long long)srv->cat[srv->n_cat].hash);
    srv->n_cat++;
    return 0;
}

/* The node's own models: --model files, then *.mbm, *.model, *.onnx in --models. */
static int catalogue_load(node_srv *srv, char *err, size_t errlen)
{
    const mb_node_opts *o = srv->o;
    for (int i = 0; i < o->n_model_files; i++)
        if (catalogue_add(srv, o->model_files[i], 1, err, errlen))
            return -1;
    if (!o->models_dir)
        return 0;
    DIR *d = opendir(o->models_dir);
    if (!d) {
        snprintf(err, errlen, "--models %s: %s", o->models_dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        char path[4096];
        struct stat st;
        if (de->d_name[0] == '.' || !is_model_file(de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", o->models_dir, de->d_name);
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        rc = catalogue_add(srv, path, 0, err, errlen);
    }
    closedir(d);
    return rc;
}

/* GPU energy: NVML's total energy counter of the node's GPU (the cuda
 * backend); other backends say why they have none. */
static int gpu_energy(const node_srv *srv, unsigned long long *mj, char *why, size_t whylen)
{
    return mb_backend_energy_mj(srv->be, mj, why, whylen);
}

/* The node's HELLO after the handshake: its hash, clock and idle timeout. */
static int node_hello_reply(node_srv *srv, const session *ss, int fd, char *err, size_t errlen)
{
    mb_hello me = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_NODE, .site = -1,
                   .graph_hash = ss->g_hash, .clock_ns = mb_wire_clock_ns(),
                   .host_id = mb_wire_host_id(),
                   .idle_ms = srv->idle_s * 1e3 < 4e9 ? (uint32_t)(srv->idle_s * 1e3) : 4000000000u};
    mb_wbuf b;
    mb_wbuf_init(&b);
    int rc = mb_hello_encode(&me, &b);
    if (!rc)
        rc = mb_wire_send(fd, MB_MSG_HELLO, 0, b.p, b.len, err, errlen);
    mb_wbuf_free(&b);
    return rc;
}

static void run_session(node_srv *srv, session *sp, const mb_hello *hl)
{
    unsigned long long gpu_mj0 = 0;
    char gpu_why[256];
    int gpu_ok = gpu_energy(srv, &gpu_mj0, gpu_why, sizeof gpu_why) == 0;
    char err[512];
    session *ss = sp;
    int fd = ss->ctl;
    int clean = 0;
    if (load_model(srv, sp, hl, err, sizeof err)) {
        ctl_error(ss, 0, MB_WERR_MODEL, err);
        logf_(srv, "%s", err);
        goto end;
    }
    if (node_hello_reply(srv, sp, fd, err, sizeof err))
        goto end;
    for (;;) {
        mb_wire_hdr h;
        uint8_t *payload = NULL;
        uint32_t allowed = MB_MSG_BIT(MB_MSG_PLAN) | MB_MSG_BIT(MB_MSG_BYE) | MB_MSG_BIT(MB_MSG_PING) |
                           (ss->have_plan ? MB_MSG_BIT(MB_MSG_FRAME) : 0);
        /* Every read has a deadline: an idle runner, or one that stops in
         * the middle of a frame, loses the session (it sends PING meanwhile). */
        if (mb_wire_recv(fd, allowed, 0, mb_now() + srv->idle_s, &h, &payload, err, sizeof err)) {
            if (!strncmp(err, "timed out", 9)) {
                char m[600];
                snprintf(m, sizeof m, "session dropped: nothing from the runner for %.1f s (%s)", srv->idle_s, err);
                ctl_error(ss, 0, MB_WERR_TIMEOUT, m);
            } else if (strcmp(err, "connection closed")) {
                ctl_error(ss, 0, MB_WERR_PROTOCOL, err);
            }
            logf_(srv, "runner connection: %s", err);
            break;
        }
        if (h.type == MB_MSG_PING)
            continue;
        if (h.type == MB_MSG_BYE) {
            clean = 1;
            free(payload);
            break;
        }
        if (h.type == MB_MSG_PLAN) {
            int rc = session_plan(ss, payload, h.len, err, sizeof err);
            free(payload);
            if (rc) {
                ctl_error(ss, 0, MB_WERR_PLAN, err);
                logf_(srv, "%s", err);
                break;
            }
            if (ctl_send(ss, MB_MSG_READY, 0, NULL, 0))
                break;
            continue;
        }
        free(payload);
        /* FRAME: data may already have started it; that is fine. */
        pthread_rwlock_rdlock(&ss->host.lock);
        int rc = rt_exec_begin(ss->host.x, h.frame, NULL, err, sizeof err);
        pthread_rwlock_unlock(&ss->host.lock);
        if (rc) {
            ctl_error(ss, h.frame, MB_WERR_PROTOCOL, err);
            break;
        }
    }
end:
    session_end(ss, clean);
    if (!strcmp(mb_backend_name(srv->be), "cuda")) { /* measured, or null with the reason: never a made-up 0 */
        unsigned long long gpu_mj1 = 0;
        if (gpu_ok && gpu_energy(srv, &gpu_mj1, gpu_why, sizeof gpu_why) == 0)
            logf_(srv, "gpu_energy_j=%.3f (NVML, this session)", (double)(gpu_mj1 - gpu_mj0) / 1e3);
        else
            logf_(srv, "gpu_energy_j=null (%s)", gpu_why);
    }
}

/* ---- connections ---- */

/* Pre-auth slots (srv->mu held). */
static void preauth_release(node_srv *srv, int slot)
{
    pthread_mutex_lock(&srv->mu);
    srv->pre[slot].used = 0;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* A free slot for a new connection; when all are taken, the oldest
 * unauthenticated connection is cut (it has had the longest to prove
 * itself) and its slot awaited. -1 when none frees within a second. */
static int preauth_take(node_srv *srv, int fd)
{
    pthread_mutex_lock(&srv->mu);
    double until = mb_now() + 1;
    int slot = -1;
    for (;;) {
        double oldest = 1e300;
        int o = -1, cutting = 0;
        for (int i = 0; i < MB_NODE_MAX_PREAUTH && slot < 0; i++) {
            if (!srv->pre[i].used)
                slot = i;
            else if (srv->pre[i].t0 >= 1e300)
                cutting = 1;
            else if (srv->pre[i].t0 < oldest)
                oldest = srv->pre[i].t0, o = i;
        }
        if (slot >= 0 || mb_now() >= until)
            break;
        if (!cutting && o >= 0) {
            shutdown(srv->pre[o].fd, SHUT_RDWR);
            srv->pre[o].t0 = 1e300; /* being cut: its thread frees the slot */
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
    }
    if (slot >= 0) {
        srv->pre[slot].used = 1;
        srv->pre[slot].fd = fd;
        srv->pre[slot].t0 = mb_now();
    }
    pthread_mutex_unlock(&srv->mu);
    return slot;
}

/* An authenticated runner waits (a little) for a session slot (the previous
 * session's teardown) instead of being told the node is busy. */
static int claim_session(node_srv *srv)
{
    pthread_mutex_lock(&srv->mu);
    double until = mb_now() + srv->hs_s;
    while (srv->n_active >= srv->max_sessions && mb_now() < until && !(srv->stop && *srv->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
    }
    int busy = srv->n_active >= srv->max_sessions;
    if (!busy)
        srv->n_active++;
    pthread_mutex_unlock(&srv->mu);
    return busy ? -1 : 0;
}

static void conn_runner(node_srv *srv, int fd, const mb_hello *hl, int *lingering)
{
    if (claim_session(srv)) {
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL,
                           srv->max_sessions > 1 ? "node busy: it serves as many runners as it may (--max-sessions)"
                                                 : "node busy with another runner");
        return;
    }
    session *ss = calloc(1, sizeof *ss);
    pthread_mutex_lock(&srv->mu);
    if (ss && srv->n_sess < NODE_MAX_SESSIONS) {
        ss->srv = srv;
        ss->ctl = fd;
        ss->refs = 1;
        ss->share_mode = -1;
        pthread_mutex_init(&ss->wmu, NULL);
        rt_host_init(&ss->host);
        for (int i = 0; i < MB_MAX_SITES; i++)
            ss->out_fd[i] = -1;
        srv->sess[srv->n_sess++] = ss;
    } else {
        free(ss);
        ss = NULL;
        srv->n_active--;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!ss) {
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "node out of memory or sessions");
        return;
    }
    run_session(srv, ss, hl);
    *lingering = 0;
    pthread_mutex_lock(&srv->mu);
    for (int i = 0; i < srv->n_sess; i++)
        if (srv->sess[i] == ss)
            srv->sess[i] = srv->sess[--srv->n_sess];
    session_unref_locked(ss);
    srv->n_active--;
    srv->sessions_done++;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* srv->mu held: the live session whose epoch tag the peer's HELLO names,
 * waiting up to the handshake timeout for its PLAN (peers may connect
 * before the plan reached this node). NULL when none. */
static session *find_peer_session(node_srv *srv, uint32_t epoch)
{
    double until = mb_now() + srv->hs_s;
    for (;;) {
        for (int i = 0; i < srv->n_sess; i++) {
            session *ss = srv->sess[i];
            if (ss->tag_known && ss->tag == epoch >> 16 && !ss->ending)
                return ss;
        }
        if (mb_now() >= until || (srv->stop && *srv->stop) || !srv->n_sess)
            return NULL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
    }
}

static void conn_peer(node_srv *srv, int fd, const mb_hello *hl, int *lingering)
{
    pthread_mutex_lock(&srv->mu);
    session *ss = find_peer_session(srv, hl->epoch);
    int ok = ss && ss->n_peer_fd < NODE_MAX_PEERS;
    if (ok) {
        ss->peer_fd[ss->n_peer_fd++] = fd;
        ss->refs++;
    }
    pthread_mutex_unlock(&srv->mu);
    if (!ok) {
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "no session for a peer connection");
        return;
    }
    char name[48];
    snprintf(name, sizeof name, "site %d", hl->site);
    *lingering = rt_peer_receive(&ss->host, fd, hl->site, name) != 0;
    pthread_mutex_lock(&srv->mu);
    for (int i = 0; i < ss->n_peer_fd; i++)
        if (ss->peer_fd[i] == fd)
            ss->peer_fd[i] = ss->peer_fd[--ss->n_peer_fd];
    session_unref_locked(ss);
    pthread_mutex_unlock(&srv->mu);
}

static void *conn_main(void *arg)
{
    conn_arg *ca = arg;
    node_srv *srv = ca->srv;
    int fd = ca->fd, slot = ca->slot;
    free(ca);
    char err[512];
    mb_hello hl;
    int lingering = 1; /* every early exit below follows an ERROR */
    /* Nothing but the handshake before the peer proves the key, and that
     * within a short deadline. */
    if (mb_auth_server(fd, &srv->auth, mb_now() + srv->hs_s, &hl, err, sizeof err)) {
        logf_(srv, "refused a connection: %s", err);
        /* the slot first: once fd is closed its number may be reused, and
         * a slot's fd may be shut down by preauth_take */
        preauth_release(srv, slot);
        mb_wire_close_lingering(fd, 1 << 16, 0.2);
        goto done;
    }
    preauth_release(srv, slot);
    if (hl.role == MB_WIRE_ROLE_RUNNER)
        conn_runner(srv, fd, &hl, &lingering);
    else if (hl.role == MB_WIRE_ROLE_PEER && hl.site >= 0)
        conn_peer(srv, fd, &hl, &lingering);
    else
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "HELLO with a role a node does not accept");
    if (lingering)
        mb_wire_close_lingering(fd, 1 << 20, 0.5);
    else
        close(fd);
done:
    pthread_mutex_lock(&srv->mu);
    srv->n_threads--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* One accepted connection: a pre-auth slot and a thread. */
static void node_accept(node_srv *srv, int fd)
{
    pthread_mutex_lock(&srv->mu);
    int crowded = srv->n_threads >= NODE_MAX_CONNS;
    pthread_mutex_unlock(&srv->mu);
    int slot = crowded ? -1 : preauth_take(srv, fd);
    if (slot < 0) {
        /* a thread per connection, but not without bound */
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "too many connections");
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_arg *ca = malloc(sizeof *ca);
    pthread_t th;
    if (ca) {
        ca->srv = srv;
        ca->fd = fd;
        ca->slot = slot;
        pthread_mutex_lock(&srv->mu);
        srv->n_threads++;
        pthread_mutex_unlock(&srv->mu);
        if (!pthread_create(&th, NULL, conn_main, ca)) {
            pthread_detach(th);
            return;
        }
        free(ca);
        pthread_mutex_lock(&srv->mu);
        srv->n_threads--;
        pthread_mutex_unlock(&srv->mu);
    }
    preauth_release(srv, slot);
    close(fd);
}

static int node_setup(node_srv *srv, const mb_node_opts *o, char *err, size_t errlen)
{
    if (o->key) {
        srv->auth.on = 1;
        memcpy(srv->auth.key, o->key, MB_KEY_LEN);
    } else if (!o->insecure_no_auth) {
        snprintf(err, errlen, "no key: give the node the run's key (--key-file FILE; mecbed keygen -o FILE "
                              "makes one), or run it without authentication with --insecure-no-auth");
        return -1;
    }
    /* timeouts are emulated time: k times longer on the wall */
    srv->idle_s = mb_tdf_to_wall(o->tdf, o->idle_timeout_s > 0 ? o->idle_timeout_s : IDLE_TIMEOUT_S);
    srv->hs_s = mb_tdf_to_wall(o->tdf, o->handshake_timeout_s > 0 ? o->handshake_timeout_s : HANDSHAKE_TIMEOUT_S);
    return catalogue_load(srv, err, errlen);
}

static void node_cleanup(node_srv *srv)
{
    mb_key_wipe(&srv->auth, sizeof srv->auth);
    for (int i = 0; i < srv->n_cat; i++)
        free(srv->cat[i].path);
    mb_backend_free(srv->be);
    mb_graph_free(srv->g);
}

int mb_node_serve(const mb_node_opts *o, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    node_srv srv;
    memset(&srv, 0, sizeof srv);
    srv.o = o;
    srv.stop = stop;
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    srv.max_sessions = o->max_sessions > 0 ? o->max_sessions : 1;
    if (srv.max_sessions > NODE_MAX_SESSIONS)
        srv.max_sessions = NODE_MAX_SESSIONS;
    /* the sessions share this node's compute, first come first served */
    mb_rt_set_shared_compute(1);
    int lfd = o->listen_fd;
    int own_lfd = 0;
    if (node_setup(&srv, o, err, errlen))
        goto fail;
    if (lfd < 0) {
        lfd = mb_listen_addr(o->listen, &srv.listen_port, err, errlen);
        if (lfd < 0)
            goto fail;
        own_lfd = 1;
    } else {
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        if (!getsockname(lfd, (struct sockaddr *)&sin, &sl) && sin.sin_family == AF_INET)
            srv.listen_port = ntohs(sin.sin_port);
    }
    srv.be = mb_backend_new(o->kernels ? o->kernels : "cpu", o->threads > 0 ? o->threads : 1, err, errlen);
    if (!srv.be)
        goto fail;
    logf_(&srv, "listening (%s kernels, %d threads, type %s, %s)", mb_backend_name(srv.be),
          o->threads > 0 ? o->threads : 1, o->node_type ? o->node_type : "-",
          srv.auth.on ? "authenticated" : "NO AUTHENTICATION");
    for (;;) {
        if (stop && *stop)
            break;
        pthread_mutex_lock(&srv.mu);
        int done = o->sessions > 0 && srv.sessions_done >= o->sessions;
        pthread_mutex_unlock(&srv.mu);
        if (done)
            break;
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        int rc = poll(&pfd, 1, 100);
        if (rc <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            node_accept(&srv, fd);
    }
    /* Wake whatever still runs, and wait for it. */
    pthread_mutex_lock(&srv.mu);
    for (int k = 0; k < srv.n_sess; k++) {
        session *ss = srv.sess[k];
        ss->host.closing = 1;
        for (int i = 0; i < ss->n_peer_fd; i++)
            shutdown(ss->peer_fd[i], SHUT_RDWR);
        shutdown(ss->ctl, SHUT_RDWR);
    }
    for (int i = 0; i < MB_NODE_MAX_PREAUTH; i++)
        if (srv.pre[i].used)
            shutdown(srv.pre[i].fd, SHUT_RDWR);
    while (srv.n_threads > 0)
        pthread_cond_wait(&srv.cv, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
    if (own_lfd)
        close(lfd);
    node_cleanup(&srv);
    return 0;
fail:
    if (own_lfd && lfd >= 0)
        close(lfd);
    node_cleanup(&srv);
    return -1;
}
