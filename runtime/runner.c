/* mecbed runner: the device side of a distributed run. Connects to every
 * node, hands out the plan, runs the device's own steps with rt_exec,
 * receives the data peers send to the device, and gathers every site's
 * timeline. Any failure (ERROR from a node, a lost connection, a frame not
 * done within the timeout) breaks the session and is reported. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/platform.h"
#include "mecbed/runtime.h"
#include "rt_conn.h"

#define MAX_PEER_CONNS (2 * MB_MAX_SITES) /* authenticated data connections */
#define MAX_PREAUTH 8                      /* data connections still in their handshake */
#define MAX_DATA_CONNS (MAX_PEER_CONNS + MAX_PREAUTH)
#define RESULT_RING 64

typedef struct data_conn {
    struct mb_runner *r;
    int fd;
    int site;
    pthread_t th;
    int started;
    int authed;  /* the handshake passed (under r->mu) */
    int done;    /* refused: the acceptor joins and frees it */
    double t0;   /* accepted at; 1e300 once cut */
} data_conn;

struct mb_runner {
    mb_runner_opts o;
    uint64_t hash;
    rt_state *state; /* the device's state across frames and plans (plan state bindings) */
    mb_auth auth;
    int ctl[MB_MAX_SITES];
    pthread_mutex_t wmu[MB_MAX_SITES]; /* control writes come from several threads */
    double last_send[MB_MAX_SITES];    /* under wmu */
    double ping_s[MB_MAX_SITES];       /* PING a node idle this long (a third of its idle timeout) */
    pthread_t keepalive;
    int keepalive_on;
    double offset[MB_MAX_SITES]; /* add to a node's clock to get ours */
    double hello_rtt[MB_MAX_SITES]; /* runner's HELLO sent -> node's HELLO back (s); NAN: same clock */
    pthread_t reader[MB_MAX_SITES];
    int reader_on[MB_MAX_SITES];

    rt_host host;
    mb_plan *plan;
    int active[MB_MAX_SITES]; /* the site has steps in the plan: FRAME and RESULT only for those */
    uint32_t epoch;
    int out_fd[MB_MAX_SITES];

    int lfd;
    int own_lfd;
    pthread_t acceptor;
    int acceptor_on;
    data_conn *conns[MAX_DATA_CONNS];
    int n_conns;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int closing;
    int broken;
    char fail_msg[480];
    int ready[MB_MAX_SITES];          /* READY count (one per plan) */
    int64_t result_ring[MB_MAX_SITES][RESULT_RING]; /* frame ids with a RESULT, by frame % RESULT_RING */
    struct {
        int used;
        uint32_t frame;
        double t_start;
    } inflight[RT_MAX_INFLIGHT];
    mb_timeline pending;              /* node events not yet handed out */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *site_name(const mb_runner *r, int s)
{
    return r->o.topo->sites[s].name;
}

/* Every write on a control connection: one at a time, and noted for the
 * keep-alive. */
static int ctl_send(mb_runner *r, int s, int type, uint32_t frame, const void *p, size_t n, char *err,
                    size_t errlen)
{
    pthread_mutex_lock(&r->wmu[s]);
    int rc = mb_wire_send(r->ctl[s], type, frame, p, n, err, errlen);
    r->last_send[s] = mb_now();
    pthread_mutex_unlock(&r->wmu[s]);
    return rc;
}

static void ctl_error(mb_runner *r, int s, int code, const char *msg)
{
    pthread_mutex_lock(&r->wmu[s]);
    mb_wire_send_error(r->ctl[s], 0, code, msg);
    pthread_mutex_unlock(&r->wmu[s]);
}

/* Nodes drop a session that says nothing for their idle timeout: PING each
 * one that has heard nothing for a third of it. */
static void *keepalive_main(void *arg)
{
    mb_runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int closing = r->closing || r->broken;
        pthread_mutex_unlock(&r->mu);
        if (closing)
            break;
        for (int s = 0; s < r->o.topo->n_sites; s++) {
            if (r->ctl[s] < 0 || !(r->ping_s[s] > 0))
                continue;
            pthread_mutex_lock(&r->wmu[s]);
            if (mb_now() - r->last_send[s] >= r->ping_s[s]) {
                mb_wire_send(r->ctl[s], MB_MSG_PING, 0, NULL, 0, NULL, 0);
                r->last_send[s] = mb_now();
            }
            pthread_mutex_unlock(&r->wmu[s]);
        }
        usleep(50000);
    }
    return NULL;
}

/* Lock r->mu held. The first failure wins; the device executor wakes. */
static void break_locked(mb_runner *r, const char *msg)
{
    if (!r->broken) {
        r->broken = 1;
        snprintf(r->fail_msg, sizeof r->fail_msg, "%s", msg);
    }
    pthread_cond_broadcast(&r->cv);
    pthread_rwlock_rdlock(&r->host.lock);
    if (r->host.x)
        rt_exec_fail(r->host.x, "%s", msg);
    pthread_rwlock_unlock(&r->host.lock);
}

static void *reader_main(void *arg)
{
    mb_runner *r = arg;
    int s = -1;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->o.topo->n_sites; i++)
        if (r->reader_on[i] == 1) {
            r->reader_on[i] = 2; /* claimed */
            s = i;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    if (s < 0)
        return NULL;
    int fd = r->ctl[s];
    char err[600];
    for (;;) {
        mb_wire_hdr h;
        uint8_t *p = NULL;
        uint32_t allowed = MB_MSG_BIT(MB_MSG_READY) | MB_MSG_BIT(MB_MSG_RESULT) |
                           MB_MSG_BIT(MB_MSG_ERROR) | MB_MSG_BIT(MB_MSG_BYE);
        int rc = mb_wire_recv(fd, allowed, 0, 0, &h, &p, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        if (r->closing) {
            pthread_mutex_unlock(&r->mu);
            free(p);
            break;
        }
        if (rc || h.type == MB_MSG_BYE) {
            char msg[700];
            snprintf(msg, sizeof msg, "%s: %s", site_name(r, s),
                     rc ? (strcmp(err, "connection closed") ? err : "control connection closed (node died?)")
                        : "node said BYE in the middle of the session");
            if (rc && strcmp(err, "connection closed"))
                ctl_error(r, s, rc == MB_WIRE_EVERSION ? MB_WERR_VERSION : MB_WERR_PROTOCOL, err);
            break_locked(r, msg);
            pthread_mutex_unlock(&r->mu);
            free(p);
            break;
        }
        if (h.type == MB_MSG_READY) {
            r->ready[s]++;
        } else if (h.type == MB_MSG_ERROR) {
            int code;
            char m[MB_WIRE_MAX_STR + 1], msg[1200];
            mb_error_decode(p, h.len, &code, m, sizeof m);
            snprintf(msg, sizeof msg, "%s reported: %s", site_name(r, s), m);
            break_locked(r, msg);
            pthread_mutex_unlock(&r->mu);
            free(p);
            break;
        } else if (h.type == MB_MSG_RESULT) {
            int status;
            char m[MB_WIRE_MAX_STR + 1];
            if (mb_result_decode(p, h.len, r->o.topo->n_sites, r->o.g->n_nodes, r->offset[s],
                                 &r->pending, &status, m, sizeof m, err, sizeof err)) {
                char msg[700];
                snprintf(msg, sizeof msg, "%s: %s", site_name(r, s), err);
                ctl_error(r, s, MB_WERR_PROTOCOL, err);
                break_locked(r, msg);
                pthread_mutex_unlock(&r->mu);
                free(p);
                break;
            }
            r->result_ring[s][h.frame % RESULT_RING] = h.frame;
        }
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        free(p);
    }
    return NULL;
}

/* A data connection to the device: the handshake (only the run's nodes, holders
 * of its key, send the device data), then its TENSOR frames. */
static void *data_main(void *arg)
{
    data_conn *c = arg;
    mb_runner *r = c->r;
    char err[512];
    mb_hello hl;
    double hs = r->o.timeout_s < 3 ? r->o.timeout_s : 3;
    int ok = !mb_auth_server(c->fd, &r->auth, mb_now() + hs, &hl, err, sizeof err);
    if (ok && (hl.role != MB_WIRE_ROLE_PEER || hl.site < 0 || hl.site >= r->o.topo->n_sites ||
               hl.site == r->o.device || hl.graph_hash != r->hash)) {
        mb_wire_send_error(c->fd, 0, MB_WERR_PROTOCOL, "only peer data connections of this model are accepted here");
        ok = 0;
    }
    pthread_mutex_lock(&r->mu);
    int peers = 0;
    for (int i = 0; i < r->n_conns; i++)
        peers += r->conns[i]->authed;
    if (ok && peers >= MAX_PEER_CONNS) {
        mb_wire_send_error(c->fd, 0, MB_WERR_PROTOCOL, "too many data connections");
        ok = 0;
    }
    c->authed = ok;
    c->site = ok ? hl.site : -1;
    pthread_mutex_unlock(&r->mu);
    if (!ok) {
        shutdown(c->fd, SHUT_RDWR);
        pthread_mutex_lock(&r->mu);
        c->done = 1;
        pthread_mutex_unlock(&r->mu);
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", site_name(r, c->site));
    if (rt_peer_receive(&r->host, c->fd, c->site, name)) {
        pthread_mutex_lock(&r->mu);
        if (!r->closing) {
            char msg[600];
            char why[512] = "";
            pthread_rwlock_rdlock(&r->host.lock);
            if (r->host.x)
                rt_exec_failed(r->host.x, why, sizeof why);
            pthread_rwlock_unlock(&r->host.lock);
            snprintf(msg, sizeof msg, "%s", why[0] ? why : "a data connection to the device failed");
            break_locked(r, msg);
        }
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

/* Lock r->mu held: free the refused connections; cut the oldest one still
 * in its handshake when MAX_PREAUTH are (so hanging sockets cannot keep
 * the run's nodes out). Returns with the lock held. */
static void conns_reap(mb_runner *r)
{
    int k = 0, pre = 0, oldest = -1;
    for (int i = 0; i < r->n_conns; i++) {
        data_conn *c = r->conns[i];
        if (c->done) {
            /* its thread takes r->mu no more after setting done: joined under the lock */
            if (c->started)
                pthread_join(c->th, NULL);
            close(c->fd);
            free(c);
            continue;
        }
        if (!c->authed && c->t0 < 1e300) {
            pre++;
            if (oldest < 0 || c->t0 < r->conns[oldest]->t0)
                oldest = k;
        }
        r->conns[k++] = c;
    }
    r->n_conns = k;
    if (pre >= MAX_PREAUTH && oldest >= 0) {
        shutdown(r->conns[oldest]->fd, SHUT_RDWR);
        r->conns[oldest]->t0 = 1e300;
    }
}

static void *acceptor_main(void *arg)
{
    mb_runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int closing = r->closing;
        pthread_mutex_unlock(&r->mu);
        if (closing)
            break;
        struct pollfd pfd = {.fd = r->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_mutex_lock(&r->mu);
        conns_reap(r);
        data_conn *c = r->n_conns < MAX_DATA_CONNS && !r->closing ? calloc(1, sizeof *c) : NULL;
        if (c) {
            c->r = r;
            c->fd = fd;
            c->site = -1;
            c->t0 = mb_now();
            r->conns[r->n_conns++] = c;
            c->started = !pthread_create(&c->th, NULL, data_main, c);
            c->done = !c->started;
        }
        pthread_mutex_unlock(&r->mu);
        if (!c)
            close(fd);
    }
    return NULL;
}

/* A site the runner talks to: every edge and cloud site. Other devices of
 * the topology (several devices sharing the nodes) have runners of their own. */
static int is_node(const mb_runner *r, int s)
{
    return s != r->o.device && r->o.topo->sites[s].role != MB_ROLE_DEVICE;
}

mb_runner *mb_runner_new(const mb_runner_opts *o, char *err, size_t errlen)
{
    mb_runner *r = calloc(1, sizeof *r);
    if (!r) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    r->o = *o;
    if (r->o.timeout_s <= 0)
        r->o.timeout_s = 10;
    r->hash = mb_graph_hash(o->g);
    for (int i = 0; i < MB_MAX_SITES; i++) {
        r->ctl[i] = -1;
        r->out_fd[i] = -1;
        for (int k = 0; k < RESULT_RING; k++)
            r->result_ring[i][k] = -1;
    }
    for (int i = 0; i < MB_MAX_SITES; i++)
        pthread_mutex_init(&r->wmu[i], NULL);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    rt_host_init(&r->host);
    if (o->key) {
        r->auth.on = 1;
        memcpy(r->auth.key, o->key, MB_KEY_LEN);
    } else if (!o->insecure_no_auth) {
        seterr(err, errlen, "no key for the nodes (--key-file FILE), and authentication not turned off "
                            "(--insecure-no-auth)");
        goto fail;
    }
    r->host.g = o->g;
    r->host.me = o->device;
    r->host.timeout_s = r->o.timeout_s;
    mb_timeline_init(&r->pending);
    r->lfd = o->listen_fd;
    if (r->lfd < 0) {
        r->lfd = mb_listen_addr(o->addrs[o->device], NULL, err, errlen);
        if (r->lfd < 0)
            goto fail;
        r->own_lfd = 1;
    }
    if (pthread_create(&r->acceptor, NULL, acceptor_main, r)) {
        seterr(err, errlen, "cannot start a thread");
        goto fail;
    }
    r->acceptor_on = 1;
    for (int s = 0; s < o->topo->n_sites; s++) {
        if (!is_node(r, s))
            continue;
        char cerr[512];
        double t_send = 0;
        int refused;
        int fd = rt_connect_hello(o->addrs[s], &r->auth, MB_WIRE_ROLE_RUNNER, -1, 0, r->hash, o->model,
                                  r->o.timeout_s, &t_send, &refused, cerr, sizeof cerr);
        if (fd < 0) {
            seterr(err, errlen, "%s%s: %s", site_name(r, s), refused ? " refused" : "", cerr);
            goto fail;
        }
        r->ctl[s] = fd;
        /* The node may load (build) the model first: allow for it. */
        mb_wire_hdr h;
        uint8_t *p = NULL;
        mb_hello hl;
        int vr = mb_wire_recv(fd, MB_MSG_BIT(MB_MSG_HELLO) | MB_MSG_BIT(MB_MSG_ERROR), 0,
                              mb_now() + r->o.timeout_s + 60, &h, &p, cerr, sizeof cerr);
        if (vr) {
            if (vr == MB_WIRE_EVERSION)
                mb_wire_send_error(fd, 0, MB_WERR_VERSION, cerr);
            seterr(err, errlen, "%s: %s", site_name(r, s), cerr);
            goto fail;
        }
        if (h.type == MB_MSG_ERROR) {
            int code;
            char m[MB_WIRE_MAX_STR + 1];
            mb_error_decode(p, h.len, &code, m, sizeof m);
            free(p);
            seterr(err, errlen, "%s refused: %s", site_name(r, s), m);
            goto fail;
        }
        double t_recv = mb_now();
        int bad = mb_hello_decode(p, h.len, &hl, cerr, sizeof cerr);
        free(p);
        if (bad || hl.role != MB_WIRE_ROLE_NODE || hl.graph_hash != r->hash) {
            seterr(err, errlen, "%s: %s", site_name(r, s), bad ? cerr : "unexpected HELLO reply");
            goto fail;
        }
        r->ping_s[s] = hl.idle_ms / 3e3;
        r->last_send[s] = mb_now();
        /* Same boot: one monotonic clock. Else the NTP-style midpoint. */
        if (hl.host_id && hl.host_id == mb_wire_host_id()) {
            r->offset[s] = 0;
            r->hello_rtt[s] = NAN;
        } else {
            /* the node read its clock between t_send and t_recv: the
             * midpoint is off by at most half that interval */
            r->offset[s] = (t_send + t_recv) / 2 - (double)hl.clock_ns * 1e-9;
            r->hello_rtt[s] = t_recv - t_send;
        }
        r->reader_on[s] = 1;
        if (pthread_create(&r->reader[s], NULL, reader_main, r)) {
            r->reader_on[s] = 0;
            seterr(err, errlen, "cannot start a thread");
            goto fail;
        }
        /* reader_main claims the slot (marks it 2). */
    }
    if (pthread_create(&r->keepalive, NULL, keepalive_main, r)) {
        seterr(err, errlen, "cannot start a thread");
        goto fail;
    }
    r->keepalive_on = 1;
    return r;
fail:
    mb_runner_free(r);
    return NULL;
}

int mb_runner_plan(mb_runner *r, const mb_plan *p, char *err, size_t errlen)
{
    const mb_topology *t = r->o.topo;
    pthread_mutex_lock(&r->mu);
    int broken = r->broken;
    pthread_mutex_unlock(&r->mu);
    if (broken) {
        seterr(err, errlen, "session broken: %s", r->fail_msg);
        return -1;
    }
    mb_plan *np = mb_plan_clone(p);
    if (!np) {
        seterr(err, errlen, "out of memory");
        return -1;
    }
    /* Policies leave the hash to the host (hashing reads every weight). */
    np->graph_hash = r->hash;
    /* the tag in the high 16 bits (shared nodes route peers by it) */
    uint32_t epoch = ((uint32_t)r->o.epoch_tag << 16) | ((r->epoch + 1) & 0xffffu);
    int want[MB_MAX_SITES];
    /* Frame numbers may start again under a new plan. */
    pthread_mutex_lock(&r->mu);
    for (int s = 0; s < MB_MAX_SITES; s++)
        for (int k = 0; k < RESULT_RING; k++)
            r->result_ring[s][k] = -1;
    pthread_mutex_unlock(&r->mu);
    for (int s = 0; s < t->n_sites; s++) {
        if (!is_node(r, s))
            continue;
        mb_wbuf b;
        mb_wbuf_init(&b);
        char cerr[256];
        int rc = mb_wire_plan_encode(np, t, (const char(*)[64])r->o.addrs, s, epoch, r->o.timeout_s, &b);
        pthread_mutex_lock(&r->mu);
        want[s] = r->ready[s] + 1;
        pthread_mutex_unlock(&r->mu);
        if (!rc)
            rc = ctl_send(r, s, MB_MSG_PLAN, 0, b.p, b.len, cerr, sizeof cerr);
        mb_wbuf_free(&b);
        if (rc) {
            seterr(err, errlen, "%s: sending the plan: %s", site_name(r, s), cerr);
            mb_plan_free(np);
            return -1;
        }
    }
    /* The device's own connections and executor. */
    int need[MB_MAX_SITES] = {0};
    for (int i = 0; i < np->n_steps; i++)
        if (np->steps[i].kind == MB_STEP_SEND && np->steps[i].site == r->o.device)
            need[np->steps[i].to] = 1;
    int fds[MB_MAX_SITES];
    for (int s = 0; s < MB_MAX_SITES; s++) {
        fds[s] = -1;
        if (!need[s])
            continue;
        if (r->out_fd[s] < 0) {
            char cerr[512];
            int refused;
            r->out_fd[s] = rt_connect_hello(r->o.addrs[s], &r->auth, MB_WIRE_ROLE_PEER, r->o.device, epoch,
                                            r->hash, r->o.model, r->o.timeout_s, NULL, &refused, cerr,
                                            sizeof cerr);
            if (r->out_fd[s] < 0) {
                seterr(err, errlen, "data connection to %s: %s", site_name(r, s), cerr);
                mb_plan_free(np);
                return -1;
            }
        }
        fds[s] = r->out_fd[s];
    }
    mb_rt_set_thread_hook(r->o.thread_hook, r->o.thread_hook_arg);
    pthread_rwlock_wrlock(&r->host.lock);
    rt_exec_free(r->host.x);
    r->host.x = NULL;
    mb_plan_free(r->plan);
    r->plan = np;
    /* A site without steps never hears of frames: a local plan sends
     * nothing over the device's link, as on a real device. */
    memset(r->active, 0, sizeof r->active);
    for (int i = 0; i < np->n_steps; i++) {
        r->active[np->steps[i].site] = 1;
        if (np->steps[i].to >= 0)
            r->active[np->steps[i].to] = 1;
    }
    r->epoch = epoch;
    r->host.g = r->o.g;
    if (np->n_state && !r->state && !(r->state = rt_state_new()))
        seterr(err, errlen, "out of memory");
    r->host.x = np->n_state && !r->state ? NULL
                                         : rt_exec_new(r->o.g, np, r->o.device, epoch, r->o.be, fds, r->o.topo, err, errlen);
    if (r->host.x)
        rt_exec_set_state(r->host.x, r->state);
    r->host.plan = r->host.x ? np : NULL;
    r->host.epoch = epoch;
    pthread_rwlock_unlock(&r->host.lock);
    if (!r->host.x)
        return -1;
    /* Wait for every node's READY. */
    double deadline = mb_now() + r->o.timeout_s;
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    for (;;) {
        int missing = -1;
        for (int s = 0; s < t->n_sites && missing < 0; s++)
            if (is_node(r, s) && r->ready[s] < want[s])
                missing = s;
        if (r->broken) {
            seterr(err, errlen, "%s", r->fail_msg);
            rc = -1;
            break;
        }
        if (missing < 0)
            break;
        if (mb_now() >= deadline) {
            seterr(err, errlen, "%s did not accept the plan within %.1f s", site_name(r, missing),
                   r->o.timeout_s);
            rc = -1;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int mb_runner_clock(const mb_runner *r, int site, double *offset_s, double *rtt_s)
{
    if (!r || site < 0 || site >= r->o.topo->n_sites || !is_node(r, site))
        return -1;
    *offset_s = r->offset[site];
    *rtt_s = r->hello_rtt[site];
    return 0;
}

int mb_runner_set_graph(mb_runner *r, const mb_graph *g, const char *model)
{
    if (mb_runner_in_flight(r))
        return -1;
    uint64_t h = mb_graph_hash(g);
    pthread_mutex_lock(&r->mu);
    r->o.g = g;
    r->o.model = model;
    r->hash = h;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int64_t mb_runner_state_bytes(const mb_runner *r)
{
    return rt_state_bytes(r->state, NULL);
}

int mb_runner_broken(const mb_runner *r)
{
    mb_runner *m = (mb_runner *)r;
    pthread_mutex_lock(&m->mu);
    int b = m->broken;
    pthread_mutex_unlock(&m->mu);
    return b;
}

static void frame_fail(mb_runner *r, mb_frame_report *rep, const char *msg)
{
    pthread_mutex_lock(&r->mu);
    /* A node's own report says more than the device's timeout. */
    if (r->broken)
        snprintf(rep->error, sizeof rep->error, "%s", r->fail_msg);
    else
        snprintf(rep->error, sizeof rep->error, "%s", msg);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_lock(&r->mu);
    break_locked(r, rep->error);
    pthread_mutex_unlock(&r->mu);
    rep->ok = 0;
}

int mb_runner_in_flight(const mb_runner *r)
{
    int n = 0;
    for (int i = 0; i < RT_MAX_INFLIGHT; i++)
        n += r->inflight[i].used;
    return n;
}

static int slot_of(const mb_runner *r, uint32_t frame)
{
    for (int i = 0; i < RT_MAX_INFLIGHT; i++)
        if (r->inflight[i].used && r->inflight[i].frame == frame)
            return i;
    return -1;
}

int mb_runner_submit(mb_runner *r, uint32_t frame, mb_tensor *const *inputs, mb_frame_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->frame = frame;
    rep->t_start = mb_now();
    char err[600];
    if (!r->plan) {
        snprintf(rep->error, sizeof rep->error, "no plan");
        return -1;
    }
    if (mb_runner_broken(r)) {
        snprintf(rep->error, sizeof rep->error, "session broken earlier: %s", r->fail_msg);
        return -1;
    }
    int slot = -1;
    for (int i = 0; i < RT_MAX_INFLIGHT - 1 && slot < 0; i++)
        if (!r->inflight[i].used)
            slot = i;
    if (slot < 0 || slot_of(r, frame) >= 0) {
        snprintf(rep->error, sizeof rep->error, "frame %u: %s", frame,
                 slot < 0 ? "too many frames in flight" : "already submitted");
        return -1;
    }
    const mb_topology *t = r->o.topo;
    for (int s = 0; s < t->n_sites; s++) {
        if (s == r->o.device || !r->active[s])
            continue;
        if (ctl_send(r, s, MB_MSG_FRAME, frame, NULL, 0, err, sizeof err)) {
            char msg[700];
            snprintf(msg, sizeof msg, "%s: %s", site_name(r, s), err);
            frame_fail(r, rep, msg);
            return -1;
        }
    }
    if (rt_exec_begin(r->host.x, frame, inputs, err, sizeof err)) {
        frame_fail(r, rep, err);
        return -1;
    }
    r->inflight[slot].used = 1;
    r->inflight[slot].frame = frame;
    r->inflight[slot].t_start = rep->t_start;
    return 0;
}

/* Lock held: move the nodes' events of `frame` to tl (or drop them). */
static void hand_out_events(mb_runner *r, uint32_t frame, mb_timeline *tl)
{
    int k = 0;
    for (int i = 0; i < r->pending.n; i++) {
        if (r->pending.ev[i].frame == frame) {
            if (tl)
                mb_timeline_add(tl, &r->pending.ev[i]);
        } else {
            r->pending.ev[k++] = r->pending.ev[i];
        }
    }
    r->pending.n = k;
}

int mb_runner_collect(mb_runner *r, uint32_t frame, double until, mb_tensor ***outputs,
                      mb_timeline *tl, mb_frame_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->frame = frame;
    if (outputs)
        *outputs = NULL;
    int slot = slot_of(r, frame);
    if (slot < 0) {
        snprintf(rep->error, sizeof rep->error, "frame %u was not submitted", frame);
        return -1;
    }
    char err[600];
    double t_start = r->inflight[slot].t_start;
    rep->t_start = t_start;
    double deadline = t_start + r->o.timeout_s;
    double wait_until = until > 0 && until < deadline ? until : deadline;
    if (rt_exec_wait(r->host.x, frame, wait_until, err, sizeof err)) {
        if (!rt_exec_failed(r->host.x, NULL, 0) && mb_now() < deadline && wait_until < deadline)
            return 0; /* the caller's wake-up, not a failure */
        r->inflight[slot].used = 0;
        if (!rt_exec_failed(r->host.x, NULL, 0)) {
            /* Name the sites that have not finished their part. */
            char who[256] = "";
            pthread_mutex_lock(&r->mu);
            for (int s = 0; s < r->o.topo->n_sites; s++)
                if (s != r->o.device && r->active[s] && r->result_ring[s][frame % RESULT_RING] != (int64_t)frame &&
                    strlen(who) + strlen(site_name(r, s)) + 3 < sizeof who)
                    snprintf(who + strlen(who), sizeof who - strlen(who), "%s%s", who[0] ? ", " : "",
                             site_name(r, s));
            pthread_mutex_unlock(&r->mu);
            snprintf(err, sizeof err, "frame %u not done within the %.1f s timeout (not finished: %s)",
                     frame, r->o.timeout_s, who[0] ? who : "the device");
        }
        frame_fail(r, rep, err);
        pthread_mutex_lock(&r->mu);
        hand_out_events(r, frame, NULL);
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    double t_done = mb_now();
    mb_timeline mine;
    mb_timeline_init(&mine);
    r->inflight[slot].used = 0;
    if (rt_exec_take(r->host.x, frame, &mine, outputs, err, sizeof err)) {
        mb_timeline_free(&mine);
        frame_fail(r, rep, err);
        return -1;
    }
    /* The outputs were on the device when its last step ended. */
    double t_end = t_start;
    for (int i = 0; i < mine.n; i++)
        if (mine.ev[i].t1 > t_end)
            t_end = mine.ev[i].t1;
    if (!mine.n)
        t_end = t_done;
    rep->t_end = t_end;
    rep->latency_ms = (t_end - t_start) * 1e3;
    /* Every node's timeline of the frame. */
    const mb_topology *t = r->o.topo;
    pthread_mutex_lock(&r->mu);
    int ok = 1;
    for (;;) {
        int missing = -1;
        for (int s = 0; s < t->n_sites && missing < 0; s++)
            if (s != r->o.device && r->active[s] && r->result_ring[s][frame % RESULT_RING] != (int64_t)frame)
                missing = s;
        if (missing < 0 || r->broken)
            break;
        if (mb_now() >= deadline + r->o.timeout_s) {
            snprintf(err, sizeof err, "%s sent no RESULT for frame %u", site_name(r, missing), frame);
            ok = 0;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    if (r->broken) {
        ok = 0;
        snprintf(err, sizeof err, "%s", r->fail_msg);
    }
    if (tl)
        for (int i = 0; i < mine.n; i++)
            mb_timeline_add(tl, &mine.ev[i]);
    hand_out_events(r, frame, ok ? tl : NULL);
    pthread_mutex_unlock(&r->mu);
    mb_timeline_free(&mine);
    if (!ok) {
        if (outputs && *outputs) {
            for (int i = 0; i < r->o.g->n_outputs; i++)
                mb_tensor_free((*outputs)[i]);
            free(*outputs);
            *outputs = NULL;
        }
        frame_fail(r, rep, err);
        return -1;
    }
    rep->ok = 1;
    return 1;
}

int mb_runner_frame(mb_runner *r, uint32_t frame, mb_tensor *const *inputs, mb_tensor ***outputs,
                    mb_timeline *tl, mb_frame_report *rep)
{
    if (outputs)
        *outputs = NULL;
    if (mb_runner_submit(r, frame, inputs, rep))
        return -1;
    return mb_runner_collect(r, frame, 0, outputs, tl, rep) == 1 ? 0 : -1;
}

void mb_runner_free(mb_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int clean = !r->broken;
    r->closing = 1;
    pthread_mutex_unlock(&r->mu);
    pthread_rwlock_rdlock(&r->host.lock);
    r->host.closing = 1;
    pthread_rwlock_unlock(&r->host.lock);
    for (int s = 0; s < MB_MAX_SITES; s++) {
        if (r->out_fd[s] >= 0) {
            if (clean)
                mb_wire_send(r->out_fd[s], MB_MSG_BYE, 0, NULL, 0, NULL, 0);
            shutdown(r->out_fd[s], SHUT_RDWR);
        }
        if (r->ctl[s] >= 0) {
            if (clean)
                ctl_send(r, s, MB_MSG_BYE, 0, NULL, 0, NULL, 0);
            shutdown(r->ctl[s], SHUT_RDWR);
        }
    }
    if (r->keepalive_on)
        pthread_join(r->keepalive, NULL);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_conns; i++)
        shutdown(r->conns[i]->fd, SHUT_RDWR);
    pthread_mutex_unlock(&r->mu);
    if (r->acceptor_on)
        pthread_join(r->acceptor, NULL);
    for (int s = 0; s < MB_MAX_SITES; s++)
        if (r->reader_on[s])
            pthread_join(r->reader[s], NULL);
    for (int i = 0; i < r->n_conns; i++) {
        if (r->conns[i]->started)
            pthread_join(r->conns[i]->th, NULL);
        close(r->conns[i]->fd);
        free(r->conns[i]);
    }
    pthread_rwlock_wrlock(&r->host.lock);
    rt_exec_free(r->host.x);
    r->host.x = NULL;
    pthread_rwlock_unlock(&r->host.lock);
    rt_state_free(r->state);
    for (int s = 0; s < MB_MAX_SITES; s++) {
        if (r->out_fd[s] >= 0)
            close(r->out_fd[s]);
        if (r->ctl[s] >= 0)
            close(r->ctl[s]);
    }
    if (r->own_lfd)
        close(r->lfd);
    mb_plan_free(r->plan);
    mb_timeline_free(&r->pending);
    rt_host_destroy(&r->host);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    for (int i = 0; i < MB_MAX_SITES; i++)
        pthread_mutex_destroy(&r->wmu[i]);
    mb_key_wipe(&r->auth, sizeof r->auth);
    free(r);
}
