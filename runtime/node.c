#define _GNU_SOURCE
/* mecbed node server: an edge or cloud site. Accepts one runner session at a
 * time (HELLO, PLAN, FRAME..., BYE) and any number of peer data connections;
 * runs the session's plan with rt_exec. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/runtime.h"
#include "mecbed/timescale.h"
#include "rt_conn.h"

#define NODE_MAX_PEERS MB_MAX_SITES
#define HELLO_TIMEOUT_S 10.0
#define NODE_MAX_CONNS 256

typedef struct node_srv {
    const mb_node_opts *o;
    volatile sig_atomic_t *stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_threads;        /* connection threads alive */
    int session_active;
    int sessions_done;

    mb_graph *g;          /* the model of the last session (kept for the next) */
    char model[MB_WIRE_MAX_STR + 1];
    mb_backend *be;

    rt_host host;
    int peer_fd[NODE_MAX_PEERS]; /* accepted data connections of this session */
    int n_peer_fd;
    int ctl_fd;           /* the runner's connection, -1 when none */
} node_srv;

typedef struct conn_arg {
    node_srv *srv;
    int fd;
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
    int ctl;
    pthread_mutex_t wmu;  /* control writes come from two threads */
    mb_wire_plan wp;
    int have_plan;
    int out_fd[MB_MAX_SITES];
    char out_addr[MB_MAX_SITES][64];
    pthread_t reporter;
    int reporter_on;
    volatile int reporter_stop;
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
    rt_exec *x = ss->srv->host.x;
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

/* Install a new plan: stop the old executor, open the data connections the
 * plan needs (reusing those to the same address), start a new executor. */
static int session_plan(session *ss, const uint8_t *payload, size_t len, char *err, size_t errlen)
{
    node_srv *srv = ss->srv;
    mb_wire_plan wp;
    if (mb_wire_plan_decode(payload, len, srv->g, &wp, err, errlen))
        return -1;
    if (wp.topo.sites[wp.your_site].role == MB_ROLE_DEVICE) {
        snprintf(err, errlen, "PLAN makes this node the device");
        mb_wire_plan_free(&wp);
        return -1;
    }
    stop_reporter(ss);
    pthread_rwlock_wrlock(&srv->host.lock);
    rt_exec_free(srv->host.x);
    srv->host.x = NULL;
    srv->host.plan = NULL;
    pthread_rwlock_unlock(&srv->host.lock);
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
        ss->out_fd[peer] = mb_connect_addr(addr, wp.timeout_s, err, errlen);
        if (ss->out_fd[peer] < 0)
            return -1;
        snprintf(ss->out_addr[peer], sizeof ss->out_addr[peer], "%s", addr);
        if (rt_send_hello(ss->out_fd[peer], MB_WIRE_ROLE_PEER, me, wp.epoch, mb_graph_hash(srv->g),
                          srv->model, err, errlen))
            return -1;
    }
    int fds[MB_MAX_SITES];
    for (int i = 0; i < MB_MAX_SITES; i++)
        fds[i] = need[i] ? ss->out_fd[i] : -1;
    rt_exec *x = rt_exec_new(srv->g, wp.plan, me, wp.epoch, srv->be, fds, &ss->wp.topo, err, errlen);
    if (!x)
        return -1;
    pthread_rwlock_wrlock(&srv->host.lock);
    srv->host.g = srv->g;
    srv->host.plan = wp.plan;
    srv->host.x = x;
    srv->host.me = me;
    srv->host.epoch = wp.epoch;
    srv->host.timeout_s = wp.timeout_s;
    pthread_rwlock_unlock(&srv->host.lock);
    if (pthread_create(&ss->reporter, NULL, reporter_main, ss)) {
        snprintf(err, errlen, "cannot start the reporter thread");
        return -1;
    }
    ss->reporter_on = 1;
    logf_(srv, "plan epoch %u: %d steps, %d of them here (site %s)", wp.epoch, wp.plan->n_steps,
          rt_exec_my_steps(x), wp.topo.sites[me].name);
    return 0;
}

static void session_end(session *ss, int clean)
{
    node_srv *srv = ss->srv;
    stop_reporter(ss);
    /* Wake and drain the receivers, then drop the executor. */
    pthread_mutex_lock(&srv->mu);
    srv->host.closing = 1;
    for (int i = 0; i < srv->n_peer_fd; i++)
        shutdown(srv->peer_fd[i], SHUT_RDWR);
    pthread_mutex_unlock(&srv->mu);
    for (int i = 0; i < MB_MAX_SITES; i++) {
        if (ss->out_fd[i] < 0)
            continue;
        if (clean)
            mb_wire_send(ss->out_fd[i], MB_MSG_BYE, 0, NULL, 0, NULL, 0);
        shutdown(ss->out_fd[i], SHUT_RDWR);
    }
    pthread_rwlock_wrlock(&srv->host.lock);
    rt_exec_free(srv->host.x);
    srv->host.x = NULL;
    srv->host.plan = NULL;
    pthread_rwlock_unlock(&srv->host.lock);
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (ss->out_fd[i] >= 0)
            close(ss->out_fd[i]);
    if (ss->have_plan)
        mb_wire_plan_free(&ss->wp);
    pthread_mutex_destroy(&ss->wmu);
}

static int load_model(node_srv *srv, const mb_hello *hl, char *err, size_t errlen)
{
    if (srv->g && !strcmp(srv->model, hl->model) && mb_graph_hash(srv->g) == hl->graph_hash)
        return 0;
    mb_graph_free(srv->g);
    srv->g = NULL;
    char lerr[512];
    double t0 = mb_now();
    mb_graph *g = mb_model_load(hl->model, lerr, sizeof lerr);
    if (!g) {
        snprintf(err, errlen, "cannot load model '%.200s': %.280s", hl->model, lerr);
        return -1;
    }
    uint64_t h = mb_graph_hash(g);
    if (h != hl->graph_hash) {
        snprintf(err, errlen, "model '%.200s' here has hash %016llx, the runner's has %016llx (different model file or version)",
                 hl->model, (unsigned long long)h, (unsigned long long)hl->graph_hash);
        mb_graph_free(g);
        return -1;
    }
    srv->g = g;
    snprintf(srv->model, sizeof srv->model, "%s", hl->model);
    logf_(srv, "loaded %s (%d ops) in %.0f ms", hl->model, g->n_nodes, (mb_now() - t0) * 1e3);
    return 0;
}

/* GPU energy: NVML's total energy counter of the node's GPU (the cuda
 * backend); other backends say why they have none. */
static int gpu_energy(const node_srv *srv, unsigned long long *mj, char *why, size_t whylen)
{
    return mb_backend_energy_mj(srv->be, mj, why, whylen);
}

static void run_session(node_srv *srv, int fd, const mb_hello *hl)
{
    unsigned long long gpu_mj0 = 0;
    char gpu_why[256];
    int gpu_ok = gpu_energy(srv, &gpu_mj0, gpu_why, sizeof gpu_why) == 0;
    char err[512];
    session ss;
    memset(&ss, 0, sizeof ss);
    ss.srv = srv;
    ss.ctl = fd;
    pthread_mutex_init(&ss.wmu, NULL);
    for (int i = 0; i < MB_MAX_SITES; i++)
        ss.out_fd[i] = -1;
    pthread_mutex_lock(&srv->mu);
    srv->host.closing = 0;
    srv->n_peer_fd = 0;
    pthread_mutex_unlock(&srv->mu);

    int clean = 0;
    if (load_model(srv, hl, err, sizeof err)) {
        ctl_error(&ss, 0, MB_WERR_MODEL, err);
        logf_(srv, "%s", err);
        goto end;
    }
    if (rt_send_hello(fd, MB_WIRE_ROLE_NODE, -1, 0, mb_graph_hash(srv->g), srv->model, err, sizeof err))
        goto end;
    for (;;) {
        mb_wire_hdr h;
        uint8_t *payload = NULL;
        uint32_t allowed = MB_MSG_BIT(MB_MSG_PLAN) | MB_MSG_BIT(MB_MSG_BYE) |
                           (ss.have_plan ? MB_MSG_BIT(MB_MSG_FRAME) : 0);
        if (mb_wire_recv(fd, allowed, 0, 0, &h, &payload, err, sizeof err)) {
            if (strcmp(err, "connection closed"))
                ctl_error(&ss, 0, MB_WERR_PROTOCOL, err);
            logf_(srv, "runner connection: %s", err);
            break;
        }
        if (h.type == MB_MSG_BYE) {
            clean = 1;
            free(payload);
            break;
        }
        if (h.type == MB_MSG_PLAN) {
            int rc = session_plan(&ss, payload, h.len, err, sizeof err);
            free(payload);
            if (rc) {
                ctl_error(&ss, 0, MB_WERR_PLAN, err);
                logf_(srv, "%s", err);
                break;
            }
            if (ctl_send(&ss, MB_MSG_READY, 0, NULL, 0))
                break;
            continue;
        }
        free(payload);
        /* FRAME: data may already have started it; that is fine. */
        pthread_rwlock_rdlock(&srv->host.lock);
        int rc = rt_exec_begin(srv->host.x, h.frame, NULL, err, sizeof err);
        pthread_rwlock_unlock(&srv->host.lock);
        if (rc) {
            ctl_error(&ss, h.frame, MB_WERR_PROTOCOL, err);
            break;
        }
    }
end:
    session_end(&ss, clean);
    if (!strcmp(mb_backend_name(srv->be), "cuda")) { /* measured, or null with the reason: never a made-up 0 */
        unsigned long long gpu_mj1 = 0;
        if (gpu_ok && gpu_energy(srv, &gpu_mj1, gpu_why, sizeof gpu_why) == 0)
            logf_(srv, "gpu_energy_j=%.3f (NVML, this session)", (double)(gpu_mj1 - gpu_mj0) / 1e3);
        else
            logf_(srv, "gpu_energy_j=null (%s)", gpu_why);
    }
}

/* ---- connections ---- */

/* The HELLO timeout in wall seconds: emulated time, stretched by the run's
 * time dilation factor like every other clock (the plan's timeout comes
 * already stretched from the runner). */
static double node_hello_timeout_s(const mb_node_opts *o)
{
    return mb_tdf_to_wall(o->tdf, HELLO_TIMEOUT_S);
}

static void *conn_main(void *arg)
{
    conn_arg *ca = arg;
    node_srv *srv = ca->srv;
    int fd = ca->fd;
    free(ca);
    char err[512];
    mb_wire_hdr h;
    uint8_t *payload = NULL;
    mb_hello hl;
    int lingering = 1; /* every early exit below follows an ERROR */
    if (mb_wire_recv(fd, MB_MSG_BIT(MB_MSG_HELLO), 0, mb_now() + node_hello_timeout_s(srv->o), &h, &payload, err,
                     sizeof err) ||
        mb_hello_decode(payload, h.len, &hl, err, sizeof err)) {
        logf_(srv, "refused a connection: %s", err);
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, err);
        free(payload);
        goto out;
    }
    free(payload);
    if (hl.role == MB_WIRE_ROLE_RUNNER) {
        pthread_mutex_lock(&srv->mu);
        int busy = srv->session_active;
        srv->session_active = 1;
        pthread_mutex_unlock(&srv->mu);
        if (busy) {
            mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "node busy with another runner");
            goto out;
        }
        pthread_mutex_lock(&srv->mu);
        srv->ctl_fd = fd;
        pthread_mutex_unlock(&srv->mu);
        run_session(srv, fd, &hl);
        lingering = 0;
        pthread_mutex_lock(&srv->mu);
        srv->ctl_fd = -1;
        srv->session_active = 0;
        srv->sessions_done++;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    } else if (hl.role == MB_WIRE_ROLE_PEER && hl.site >= 0) {
        pthread_mutex_lock(&srv->mu);
        int ok = srv->session_active && srv->n_peer_fd < NODE_MAX_PEERS;
        if (ok)
            srv->peer_fd[srv->n_peer_fd++] = fd;
        pthread_mutex_unlock(&srv->mu);
        if (!ok) {
            mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "no session for a peer connection");
            goto out;
        }
        char name[48];
        snprintf(name, sizeof name, "site %d", hl.site);
        lingering = rt_peer_receive(&srv->host, fd, hl.site, name) != 0;
        pthread_mutex_lock(&srv->mu);
        for (int i = 0; i < srv->n_peer_fd; i++)
            if (srv->peer_fd[i] == fd)
                srv->peer_fd[i] = srv->peer_fd[--srv->n_peer_fd];
        pthread_mutex_unlock(&srv->mu);
    } else {
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "HELLO with a role a node does not accept");
    }
out:
    if (lingering)
        mb_wire_close_lingering(fd, 1 << 20, 0.5);
    else
        close(fd);
    pthread_mutex_lock(&srv->mu);
    srv->n_threads--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

int mb_node_serve(const mb_node_opts *o, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    node_srv srv;
    memset(&srv, 0, sizeof srv);
    srv.o = o;
    srv.stop = stop;
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    rt_host_init(&srv.host);
    srv.ctl_fd = -1;
    int lfd = o->listen_fd;
    int own_lfd = 0;
    if (lfd < 0) {
        lfd = mb_listen_addr(o->listen, NULL, err, errlen);
        if (lfd < 0)
            goto fail;
        own_lfd = 1;
    }
    srv.be = mb_backend_new(o->kernels ? o->kernels : "cpu", o->threads > 0 ? o->threads : 1, err, errlen);
    if (!srv.be)
        goto fail;
    logf_(&srv, "listening (%s kernels, %d threads, type %s)", mb_backend_name(srv.be),
          o->threads > 0 ? o->threads : 1, o->node_type ? o->node_type : "-");
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
        if (fd < 0)
            continue;
        pthread_mutex_lock(&srv.mu);
        int crowded = srv.n_threads >= NODE_MAX_CONNS;
        pthread_mutex_unlock(&srv.mu);
        if (crowded) {
            /* a thread per connection, but not without bound */
            mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, "too many connections");
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_arg *ca = malloc(sizeof *ca);
        pthread_t th;
        if (!ca) {
            close(fd);
            continue;
        }
        ca->srv = &srv;
        ca->fd = fd;
        pthread_mutex_lock(&srv.mu);
        srv.n_threads++;
        pthread_mutex_unlock(&srv.mu);
        if (pthread_create(&th, NULL, conn_main, ca)) {
            free(ca);
            close(fd);
            pthread_mutex_lock(&srv.mu);
            srv.n_threads--;
            pthread_mutex_unlock(&srv.mu);
            continue;
        }
        pthread_detach(th);
    }
    /* Wake whatever still runs, and wait for it. */
    pthread_mutex_lock(&srv.mu);
    srv.host.closing = 1;
    for (int i = 0; i < srv.n_peer_fd; i++)
        shutdown(srv.peer_fd[i], SHUT_RDWR);
    if (srv.ctl_fd >= 0)
        shutdown(srv.ctl_fd, SHUT_RDWR);
    while (srv.n_threads > 0)
        pthread_cond_wait(&srv.cv, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
    if (own_lfd)
        close(lfd);
    mb_backend_free(srv.be);
    mb_graph_free(srv.g);
    rt_host_destroy(&srv.host);
    return 0;
fail:
    if (own_lfd && lfd >= 0)
        close(lfd);
    rt_host_destroy(&srv.host);
    return -1;
}
