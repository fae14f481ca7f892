/* mecbed runtime: sockets, the shared plan holder and the peer receive loop. */
#include "rt_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mecbed/platform.h"
#include "mecbed/runtime.h"

static int split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen, char *err,
                      size_t errlen)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr || !colon[1] || (size_t)(colon - addr) >= hlen ||
        strlen(colon + 1) >= plen) {
        snprintf(err, errlen, "address '%s' is not HOST:PORT", addr ? addr : "");
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    snprintf(port, plen, "%s", colon + 1);
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 0 || p > 65535) {
        snprintf(err, errlen, "address '%s': bad port", addr);
        return -1;
    }
    return 0;
}

/* Every runtime connection uses one congestion control, cubic unless
 * MECBED_TCP_CC names another ("system": the host's default), so that a run
 * measures the same TCP on every host: the cost model's slow start
 * (policies/cost.c) is Reno/cubic's, and a host defaulting to BBR (whose
 * startup paces from its own bandwidth estimate) measured a GPT-2 P/D-Device
 * prefill at 100 ms RTT 1200 ms or 964 ms from run to run, where cubic gave
 * 953 against 947 predicted. Set on listening sockets it carries over to the
 * connections they accept. A kernel without it keeps its default. */
static void set_congestion(int fd)
{
    const char *cc = getenv("MECBED_TCP_CC");
    if (!cc || !*cc)
        cc = "cubic";
    if (strcmp(cc, "system"))
        setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc));
}

static void tune_socket(int fd)
{
    int one = 1;
    /* Tensors go out as soon as they are computed: no Nagle delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int mb_listen_addr(const char *addr, int *port_out, char *err, size_t errlen)
{
    char host[128], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port, err, errlen))
        return -1;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    /* A deep backlog: a burst of connections (a crowd of silent clients, a
     * slowloris) is queued by the kernel while the accept loop cuts the
     * oldest unauthenticated ones, rather than having SYNs dropped and the
     * legitimate runner among them retrying a second later. */
    if (fd >= 0)
        set_congestion(fd);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024)) {
        snprintf(err, errlen, "listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    if (port_out) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        getsockname(fd, (struct sockaddr *)&sin, &sl);
        *port_out = ntohs(sin.sin_port);
    }
    return fd;
}

int mb_connect_addr(const char *addr, double timeout_s, char *err, size_t errlen)
{
    char host[128], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port, err, errlen))
        return -1;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) {
        snprintf(err, errlen, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    double deadline = mb_now() + (timeout_s > 0 ? timeout_s : 10);
    /* Retry refused connections until the deadline: a node started a
     * moment ago may not listen yet. */
    for (;;) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            snprintf(err, errlen, "socket: %s", strerror(errno));
            break;
        }
        set_congestion(fd);
        int c = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (c && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int left = (int)((deadline - mb_now()) * 1000);
            if (left < 1)
                left = 1;
            if (poll(&pfd, 1, left) == 1) {
                int e = 0;
                socklen_t el = sizeof e;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
                c = e ? -1 : 0;
                errno = e ? e : ETIMEDOUT;
            } else {
                c = -1;
                errno = ETIMEDOUT;
            }
        }
        if (!c) {
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            tune_socket(fd);
            freeaddrinfo(ai);
            return fd;
        }
        int e = errno;
        close(fd);
        if (mb_now() >= deadline || (e != ECONNREFUSED && e != ETIMEDOUT && e != ENETUNREACH &&
                                     e != EHOSTUNREACH)) {
            snprintf(err, errlen, "connect to %s: %s", addr, strerror(e));
            break;
        }
        usleep(20000);
    }
    freeaddrinfo(ai);
    return -1;
}

void rt_host_init(rt_host *h)
{
    memset(h, 0, sizeof *h);
    pthread_rwlock_init(&h->lock, NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->timeout_s = 10;
}

void rt_host_destroy(rt_host *h)
{
    pthread_rwlock_destroy(&h->lock);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

/* The handshake; *code is the node's ERROR code (0: none came). */
static int client_hello(int fd, const mb_auth *auth, int role, int site, uint32_t epoch, uint64_t hash,
                        const char *model, double timeout_s, int *code, char *err, size_t errlen)
{
    mb_hello hl = {.proto = MB_WIRE_VERSION, .role = (uint8_t)role, .site = site, .epoch = epoch,
                   .graph_hash = hash, .clock_ns = mb_wire_clock_ns(), .host_id = mb_wire_host_id()};
    snprintf(hl.model, sizeof hl.model, "%s", model ? model : "");
    char e[600];
    *code = 0;
    if (mb_auth_client(fd, auth, &hl, mb_now() + (timeout_s > 0 ? timeout_s : 10), code, e, sizeof e)) {
        if (*code == MB_WERR_AUTH && !strcmp(e, "authentication failed"))
            snprintf(err, errlen, "authentication failed: it holds another key (give this side the key file "
                                  "it was started with)");
        else
            snprintf(err, errlen, "%s%s", *code == MB_WERR_AUTH ? "authentication: " : "", e);
        return -1;
    }
    return 0;
}

/* Was the handshake cut by the other side before any verdict? A node (or a
 * device's data port) that is crowded with unauthenticated connections cuts
 * the oldest, or refuses with "too many connections": a legitimate peer
 * caught in such a crowd tries again, not gives up. A refusal with a reason
 * (key, model, version) is final. */
static int cut_before_verdict(int code, const char *e)
{
    if (code == MB_WERR_PROTOCOL)
        return strstr(e, "too many connections") != NULL;
    return !code && (!strncmp(e, "connection closed", 17) || strstr(e, "Connection reset") ||
                     strstr(e, "Broken pipe"));
}

int rt_connect_hello(const char *addr, const mb_auth *auth, int role, int site, uint32_t epoch, uint64_t hash,
                     const char *model, double timeout_s, double *t_hello, int *refused, char *err, size_t errlen)
{
    double limit = timeout_s > 0 ? timeout_s : 10, deadline = mb_now() + limit;
    *refused = 0;
    for (int attempt = 0;; attempt++) {
        double left = deadline - mb_now();
        int fd = mb_connect_addr(addr, left > 0.1 ? left : 0.1, err, errlen);
        if (fd < 0)
            return -1;
        if (t_hello)
            *t_hello = mb_now();
        int code;
        left = deadline - mb_now();
        if (!client_hello(fd, auth, role, site, epoch, hash, model, left > 0.1 ? left : 0.1, &code, err, errlen))
            return fd;
        close(fd);
        if (!cut_before_verdict(code, err) || mb_now() + 0.05 >= deadline) {
            *refused = 1;
            return -1;
        }
        /* a short, growing pause: the crowd's turnover frees a slot */
        usleep((useconds_t)(10000 * (attempt < 10 ? attempt + 1 : 10)));
    }
}

int rt_addr_host(const char *addr, char *ip, size_t iplen)
{
    char host[128], port[16], e[160];
    if (split_addr(addr, host, sizeof host, port, sizeof port, e, sizeof e))
        return -1;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai))
        return -1;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
    int rc = inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen) ? 0 : -1;
    freeaddrinfo(ai);
    return rc;
}

int mb_listen_spec(const char *spec, char *out, size_t outlen, char *err, size_t errlen)
{
    char host[128], port[16];
    if (spec && *spec && !strchr(spec, ':')) {
        char *end;
        long p = strtol(spec, &end, 10);
        if (*end || p < 0 || p > 65535) {
            snprintf(err, errlen, "'%s' is not [ADDR:]PORT", spec);
            return -1;
        }
        snprintf(out, outlen, "127.0.0.1:%ld", p);
        return 0;
    }
    if (split_addr(spec, host, sizeof host, port, sizeof port, err, errlen))
        return -1;
    snprintf(out, outlen, "%s:%s", host, port);
    return 0;
}

int rt_peer_receive(rt_host *h, int fd, int from, const char *from_name)
{
    char err[512];
    for (;;) {
        uint8_t raw[MB_WIRE_HDR_LEN];
        int eof = 0;
        /* Between frames a data connection may be idle for any time. */
        if (mb_wire_read_full(fd, raw, sizeof raw, 0, &eof, err, sizeof err)) {
            pthread_rwlock_rdlock(&h->lock);
            if (h->x && !h->closing)
                rt_exec_fail(h->x, "data connection from %s lost: %s", from_name,
                             eof ? "closed without BYE (peer died?)" : err);
            pthread_rwlock_unlock(&h->lock);
            return -1;
        }
        pthread_rwlock_rdlock(&h->lock);
        uint64_t max = h->plan ? mb_wire_plan_max_tensor(h->plan, h->g) : 0;
        mb_wire_hdr wh;
        int rc = mb_wire_hdr_decode(raw, MB_MSG_BIT(MB_MSG_TENSOR) | MB_MSG_BIT(MB_MSG_BYE), max, &wh,
                                    err, sizeof err);
        if (!rc && wh.type == MB_MSG_BYE) {
            pthread_rwlock_unlock(&h->lock);
            return 0;
        }
        if (!rc && (!h->plan || !h->x)) {
            snprintf(err, sizeof err, "TENSOR before any plan");
            rc = -1;
        }
        mb_tensor_hdr th;
        size_t bytes = 0;
        double t0 = mb_now();
        double deadline = t0 + h->timeout_s;
        if (!rc)
            rc = mb_tensor_hdr_recv(fd, wh.len, h->plan, h->g, h->epoch, from, h->me, deadline, &th,
                                    &bytes, err, sizeof err);
        float *buf = NULL;
        if (!rc) {
            buf = rt_exec_recv_buffer(h->x, wh.frame, &th, err, sizeof err);
            rc = buf ? 0 : -1;
        }
        if (!rc && mb_wire_read_full(fd, buf, bytes, deadline, NULL, err, sizeof err)) {
            /* Keep the buffer accounting straight, then fail. */
            rt_exec_fail(h->x, "receiving %s from %s: %s", h->g->nodes[th.op].name, from_name, err);
            rt_exec_received(h->x, wh.frame, &th, from, buf, t0, mb_now());
            pthread_rwlock_unlock(&h->lock);
            return -1;
        }
        if (!rc) {
            rt_exec_received(h->x, wh.frame, &th, from, buf, t0, mb_now());
            pthread_rwlock_unlock(&h->lock);
            continue;
        }
        /* A violation: tell the peer, fail the frame, drop the connection. */
        mb_wire_send_error(fd, wh.frame, MB_WERR_PROTOCOL, err);
        if (h->x)
            rt_exec_fail(h->x, "bad frame from %s: %s", from_name, err);
        pthread_rwlock_unlock(&h->lock);
        return -1;
    }
}
