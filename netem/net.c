/* A topology brought up as namespaces and links (include/mecbed/link.h):
 * namespaces, per-link interfaces through a backend, addresses, routes,
 * spawned processes, and tearing it all down again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "mecbed/link.h"
#include "mecbed/netns.h"

#define MAX_CHILDREN 64

struct mb_net {
    mb_topology topo;
    const net_backend *be;
    char run[MB_RUN_ID_LEN + 1];
    char ns[MB_MAX_SITES][64];
    int ns_made[MB_MAX_SITES];
    int ns_host[MB_MAX_SITES]; /* an existing namespace (opts.host_netns): left alone */
    int octet;                 /* links' subnets: 10.<octet>.<link>.0/30 */
    char addr[MB_MAX_SITES][16];
    net_link links[MB_MAX_LINKS];
    int links_up[MB_MAX_LINKS];
    pid_t children[MAX_CHILDREN];
    double epoch;
    int cpu_latency_fd; /* the held PM QoS request (-1: none) */
    int owner_written;
    int down;
};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double net_epoch(const mb_net *net)
{
    return net->epoch;
}

static int ip(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Run "ip ..." given as one space-separated string (no argument has spaces). */
static int ip(char *err, size_t errlen, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *argv[32];
    int n = 0;
    argv[n++] = "ip";
    char *save = NULL;
    for (char *tok = strtok_r(line, " ", &save); tok && n < 31; tok = strtok_r(NULL, " ", &save))
        argv[n++] = tok;
    argv[n] = NULL;
    return mb_cmd_run(argv, NULL, 0, err, errlen) ? -1 : 0;
}

/* sysctl inside a namespace: write /proc/sys/... from a thread that entered it
 * (the proc file's network namespace is the opener's). */
static int ns_sysctl(const char *ns, const char *key, const char *val, char *err, size_t errlen)
{
    int saved;
    if (mb_netns_enter(ns, &saved))
        return fail(err, errlen, "cannot enter namespace %s: %s", ns, strerror(errno));
    char path[256];
    snprintf(path, sizeof path, "/proc/sys/%s", key);
    for (char *p = path + 10; *p; p++)
        if (*p == '.')
            *p = '/';
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || write(fd, val, strlen(val)) < 0)
        rc = fail(err, errlen, "namespace %s: cannot set %s: %s", ns, key, strerror(errno));
    if (fd >= 0)
        close(fd);
    mb_netns_leave(saved);
    return rc;
}

/* Next hop from site s towards site d: BFS over active links. Returns the
 * link to take from s, or -1 if d is unreachable. */
static int first_hop(const mb_net *net, int s, int d)
{
    int n = net->topo.n_sites;
    int prev_link[MB_MAX_SITES], seen[MB_MAX_SITES] = {0}, queue[MB_MAX_SITES], from[MB_MAX_SITES];
    int head = 0, tail = 0;
    queue[tail++] = s;
    seen[s] = 1;
    prev_link[s] = -1;
    from[s] = -1;
    while (head < tail) {
        int u = queue[head++];
        if (u == d)
            break;
        for (int i = 0; i < net->topo.n_links; i++) {
            if (!net->links[i].active)
                continue;
            const mb_topo_link *l = &net->topo.links[i];
            int v = l->a == u ? l->b : l->b == u ? l->a : -1;
            if (v < 0 || seen[v])
                continue;
            seen[v] = 1;
            prev_link[v] = i;
            from[v] = u;
            queue[tail++] = v;
        }
    }
    (void)n;
    if (!seen[d] || d == s)
        return -1;
    int v = d;
    while (from[v] != s)
        v = from[v];
    return prev_link[v];
}

static void net_down_hook(void *arg)
{
    mb_net_down(arg);
}

/* Under time dilation k (the run's, mb_net_opts.tdf) TCP's own clocks must
 * stretch too: its retransmission timeout never goes below 200 ms of the
 * host's time, which is 200/k ms of emulated time, so a connection idle for
 * a few emulated round trips would restart slow start (Linux's slow start
 * after idle) and retransmit early, where the emulated hardware would not.
 * Every route gets rto_min 200 ms x k: the `ip route` words for it, or "". */
static void dilated_rto_min(double k, char *buf, size_t n)
{
    buf[0] = 0;
    if (k > 1)
        snprintf(buf, n, " rto_min %.0fms", 200 * k);
}

/* While links are up, ask the kernel to keep every CPU's wake-up latency
 * at zero (a PM QoS request on /dev/cpu_dma_latency, held as long as the
 * file stays open, as cyclictest does). A packet that arrives while the
 * emulator, or the receiving process, sleeps on an idle CPU otherwise waits
 * for that CPU to leave its idle state: on this 2-vCPU VM (haltpoll) a
 * probe's one-way delay came out +0.14-0.33 ms late on an idle machine and
 * +0.03 ms with the request held. The price: idle CPUs poll instead of
 * halting for the run's length. MECBED_CPU_LATENCY=system leaves the host's
 * idle states alone. -1 where the request cannot be made (not root, no such
 * device): the run goes on without it. */
static int hold_cpu_latency(void)
{
    const char *e = getenv("MECBED_CPU_LATENCY");
    if (e && !strcmp(e, "system"))
        return -1;
    int fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int32_t zero = 0;
    if (write(fd, &zero, sizeof zero) != (ssize_t)sizeof zero) {
        close(fd);
        return -1;
    }
    return fd;
}

int mb_net_cpu_latency_held(const mb_net *net)
{
    return net && net->cpu_latency_fd >= 0;
}

int mb_net_up(const mb_topology *t, const mb_net_opts *o, mb_net **out, char *err, size_t errlen)
{
    *out = NULL;
    mb_net_opts opts = {0};
    if (o)
        opts = *o;
    for (int i = 0; i < t->n_links; i++)
        if (mb_net_check(opts.backend, &t->links[i].spec, err, errlen))
            return -1;
    const net_backend *be = net_backend_find(opts.backend);
    char why[256];
    if (mb_netns_available(why, sizeof why))
        return fail(err, errlen, "cannot emulate links: %s", why);

    mb_net *net = calloc(1, sizeof *net);
    if (!net)
        return fail(err, errlen, "out of memory");
    net->topo = *t;
    net->be = be;
    net->cpu_latency_fd = -1;
    net->octet = opts.addr_octet ? opts.addr_octet : 201;
    if (net->octet < 1 || net->octet > 254 ||
        (opts.host_netns && (opts.host_site < 0 || opts.host_site >= t->n_sites ||
                             strlen(opts.host_netns) >= sizeof net->ns[0] || t->sites[opts.host_site].address[0]))) {
        int octet = net->octet;
        free(net);
        return fail(err, errlen, "bad nesting options (address octet %d, host site %d)", octet, opts.host_site);
    }
    if (opts.run_id) {
        if (strlen(opts.run_id) != MB_RUN_ID_LEN || strspn(opts.run_id, "0123456789abcdefghijklmnopqrstuvwxyz") !=
                                                        MB_RUN_ID_LEN) {
            free(net);
            return fail(err, errlen, "run id '%s': must be %d characters of [0-9a-z]", opts.run_id, MB_RUN_ID_LEN);
        }
        memcpy(net->run, opts.run_id, MB_RUN_ID_LEN + 1);
    } else {
        mb_run_id_new(net->run);
    }
    mb_cleanup_install();
    if (mb_cleanup_owner_write(net->run) == 0)
        net->owner_written = 1;
    mb_cleanup_add_hook(net_down_hook, net);

    /* namespaces */
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].address[0])
            continue;
        if (opts.host_netns && s == opts.host_site) { /* an outer run's namespace: used as it is */
            snprintf(net->ns[s], sizeof net->ns[s], "%s", opts.host_netns);
            net->ns_host[s] = 1;
            continue;
        }
        snprintf(net->ns[s], sizeof net->ns[s], "%s%s-%s", MB_NETNS_PREFIX, net->run, t->sites[s].name);
        mb_cleanup_add_netns(net->ns[s]); /* before creating: a signal in between still removes it */
        if (mb_netns_create(net->ns[s], err, errlen))
            goto fail;
        net->ns_made[s] = 1;
        if (ip(err, errlen, "-n %s link set lo up", net->ns[s]) ||
            ns_sysctl(net->ns[s], "net.ipv4.ip_forward", "1", err, errlen) ||
            /* no IPv6 chatter (router solicitations, MLD) crossing the links */
            ns_sysctl(net->ns[s], "net.ipv6.conf.default.disable_ipv6", "1", err, errlen) ||
            ns_sysctl(net->ns[s], "net.ipv6.conf.all.disable_ipv6", "1", err, errlen) ||
            (opts.keep_cwnd_after_idle &&
             ns_sysctl(net->ns[s], "net.ipv4.tcp_slow_start_after_idle", "0", err, errlen)))
            goto fail;
    }

    char rto_min[32];
    dilated_rto_min(opts.tdf, rto_min, sizeof rto_min);
    /* links */
    for (int i = 0; i < t->n_links; i++) {
        net_link *l = &net->links[i];
        const mb_topo_link *tl = &t->links[i];
        l->index = i;
        l->spec = &net->topo.links[i].spec;
        if (t->sites[tl->a].address[0] || t->sites[tl->b].address[0])
            continue; /* a real network joins a remote site: nothing to emulate */
        l->active = 1;
        snprintf(l->ns[0], sizeof l->ns[0], "%s", net->ns[tl->a]);
        snprintf(l->ns[1], sizeof l->ns[1], "%s", net->ns[tl->b]);
        /* (i < MB_MAX_LINKS: they fit; checked, as the compiler cannot know) */
        int w0 = snprintf(l->ifname[0], sizeof l->ifname[0], "%s%sa%d", MB_IF_PREFIX, net->run, i);
        int w1 = snprintf(l->ifname[1], sizeof l->ifname[1], "%s%sb%d", MB_IF_PREFIX, net->run, i);
        int w2 = snprintf(l->addr[0], sizeof l->addr[0], "10.%d.%d.1", net->octet, i);
        int w3 = snprintf(l->addr[1], sizeof l->addr[1], "10.%d.%d.2", net->octet, i);
        if (w0 >= (int)sizeof l->ifname[0] || w1 >= (int)sizeof l->ifname[1] || w2 >= (int)sizeof l->addr[0] ||
            w3 >= (int)sizeof l->addr[1]) {
            snprintf(err, errlen, "link %d: interface name or address too long", i);
            goto fail;
        }
        if (be->link_up(net, l, &opts, err, errlen)) {
            be->link_down(net, l); /* whatever it made before failing */
            goto fail;
        }
        net->links_up[i] = 1;
        int mtu = l->spec->mtu > 0 ? l->spec->mtu : 1500;
        for (int side = 0; side < 2; side++) {
            if (ip(err, errlen, "-n %s addr add %s/30 dev %s", l->ns[side], l->addr[side], l->ifname[side]) ||
                ip(err, errlen, "-n %s link set dev %s mtu %d up", l->ns[side], l->ifname[side], mtu))
                goto fail;
            if (rto_min[0] && ip(err, errlen, "-n %s route replace 10.%d.%d.0/30 dev %s proto kernel scope link src %s%s",
                                 l->ns[side], net->octet, i, l->ifname[side], l->addr[side], rto_min))
                goto fail;
        }
    }
    /* a site's address: the one on its first link */
    for (int s = 0; s < t->n_sites; s++) {
        if (t->sites[s].address[0]) {
            snprintf(net->addr[s], sizeof net->addr[s], "%.15s", t->sites[s].address);
            char *colon = strchr(net->addr[s], ':');
            if (colon)
                *colon = 0;
            continue;
        }
        for (int i = 0; i < t->n_links && !net->addr[s][0]; i++)
            if (net->links[i].active && (t->links[i].a == s || t->links[i].b == s))
                snprintf(net->addr[s], sizeof net->addr[s], "%s", net->links[i].addr[t->links[i].a == s ? 0 : 1]);
    }
    /* routes: every link subnet not attached to s, via the first hop towards it */
    for (int s = 0; s < t->n_sites; s++) {
        if (!net->ns[s][0])
            continue;
        for (int j = 0; j < t->n_links; j++) {
            if (!net->links[j].active || t->links[j].a == s || t->links[j].b == s)
                continue;
            /* towards the nearer end of link j */
            int ha = first_hop(net, s, t->links[j].a), hb = first_hop(net, s, t->links[j].b);
            int hop = ha >= 0 ? ha : hb;
            if (hop < 0)
                continue; /* unreachable: a disconnected topology; nothing to route */
            const net_link *hl = &net->links[hop];
            int my_side = t->links[hop].a == s ? 0 : 1;
            if (ip(err, errlen, "-n %s route add 10.%d.%d.0/30 via %s dev %s%s", net->ns[s], net->octet, j,
                   hl->addr[1 - my_side], hl->ifname[my_side], rto_min))
                goto fail;
        }
    }
    net->cpu_latency_fd = hold_cpu_latency();
    net->epoch = now_s();
    for (int i = 0; i < t->n_links; i++)
        if (net->links[i].active && be->link_start && be->link_start(net, &net->links[i], err, errlen))
            goto fail;
    *out = net;
    return 0;
fail:;
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", err ? err : "");
    mb_net_down(net);
    if (err && errlen)
        snprintf(err, errlen, "%s", keep);
    return -1;
}

void mb_net_down(mb_net *net)
{
    if (!net || net->down)
        return;
    net->down = 1;
    mb_cleanup_remove_hook(net_down_hook, net);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (net->children[i] > 0) {
            kill(net->children[i], SIGKILL);
            waitpid(net->children[i], NULL, 0);
            mb_cleanup_remove_pid(net->children[i]);
            net->children[i] = 0;
        }
    for (int i = 0; i < net->topo.n_links; i++)
        if (net->links_up[i]) {
            net->be->link_down(net, &net->links[i]);
            net->links_up[i] = 0;
        }
    for (int s = 0; s < net->topo.n_sites; s++)
        if (net->ns[s][0] && !net->ns_host[s]) {
            mb_netns_delete(net->ns[s]);
            mb_cleanup_remove_netns(net->ns[s]);
        }
    if (net->owner_written)
        mb_cleanup_owner_remove(net->run);
    if (net->cpu_latency_fd >= 0)
        close(net->cpu_latency_fd);
    free(net);
}

const char *mb_net_run_id(const mb_net *net)
{
    return net->run;
}

const char *mb_net_backend(const mb_net *net)
{
    return net->be->name;
}

const mb_topology *mb_net_topology(const mb_net *net)
{
    return &net->topo;
}

const char *mb_net_netns(const mb_net *net, int site)
{
    return site >= 0 && site < net->topo.n_sites ? net->ns[site] : "";
}

const char *mb_net_addr(const mb_net *net, int site)
{
    return site >= 0 && site < net->topo.n_sites ? net->addr[site] : "";
}

const char *mb_net_ifname(const mb_net *net, int link, int side)
{
    if (link < 0 || link >= net->topo.n_links || side < 0 || side > 1)
        return "";
    return net->links[link].ifname[side];
}

const char *mb_net_next_hop(const mb_net *net, int from, int to)
{
    if (from < 0 || to < 0 || from >= net->topo.n_sites || to >= net->topo.n_sites || !net->ns[from][0])
        return NULL;
    int hop = first_hop(net, from, to);
    if (hop < 0)
        return NULL;
    return net->links[hop].addr[net->topo.links[hop].a == from ? 1 : 0];
}

double mb_net_epoch(const mb_net *net)
{
    return net->epoch;
}

int mb_net_spawn(mb_net *net, int site, char *const argv[], pid_t *pid, char *err, size_t errlen)
{
    if (site < 0 || site >= net->topo.n_sites || !net->ns[site][0])
        return fail(err, errlen, "site %d has no namespace", site);
    int slot = -1;
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (net->children[i] <= 0) {
            slot = i;
            break;
        }
    if (slot < 0)
        return fail(err, errlen, "more than %d processes", MAX_CHILDREN);
    int nsfd = mb_netns_open(net->ns[site]);
    if (nsfd < 0)
        return fail(err, errlen, "namespace %s: %s", net->ns[site], strerror(errno));
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC)) {
        close(nsfd);
        return fail(err, errlen, "pipe: %s", strerror(errno));
    }
    pid_t p = fork();
    if (p < 0) {
        close(nsfd), close(pipefd[0]), close(pipefd[1]);
        return fail(err, errlen, "fork: %s", strerror(errno));
    }
    if (p == 0) {
        close(pipefd[0]);
        /* die with the run: a SIGKILLed parent leaves no orphan node behind
         * (the signal comes when the forking thread ends: spawn from a
         * thread that lives as long as the run, e.g. the main thread) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (setns(nsfd, CLONE_NEWNET)) {
            int e = errno;
            if (write(pipefd[1], &e, sizeof e) < 0)
                _exit(126);
            _exit(126);
        }
        execvp(argv[0], argv);
        int e = errno;
        if (write(pipefd[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(nsfd);
    close(pipefd[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(pipefd[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    if (n == (ssize_t)sizeof e) {
        waitpid(p, NULL, 0);
        return fail(err, errlen, "cannot run %s in %s: %s", argv[0], net->ns[site], strerror(e));
    }
    net->children[slot] = p;
    mb_cleanup_add_pid(p);
    if (pid)
        *pid = p;
    return 0;
}

int mb_net_child_exited(mb_net *net, pid_t *pid, int *status)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (net->children[i] <= 0)
            continue;
        int st;
        pid_t r = waitpid(net->children[i], &st, WNOHANG);
        if (r == net->children[i]) {
            if (pid)
                *pid = r;
            if (status)
                *status = st;
            mb_cleanup_remove_pid(r);
            net->children[i] = 0;
            return 1;
        }
    }
    return 0;
}

int mb_net_socket(const mb_net *net, int site, int domain, int type, int protocol)
{
    if (site < 0 || site >= net->topo.n_sites || !net->ns[site][0]) {
        errno = EINVAL;
        return -1;
    }
    int saved;
    if (mb_netns_enter(net->ns[site], &saved))
        return -1;
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    int e = errno;
    mb_netns_leave(saved);
    errno = e;
    return fd;
}

int mb_net_in_site(const mb_net *net, int site, int (*fn)(void *), void *arg)
{
    if (site < 0 || site >= net->topo.n_sites || !net->ns[site][0]) {
        errno = EINVAL;
        return -1;
    }
    int saved;
    if (mb_netns_enter(net->ns[site], &saved))
        return -1;
    int rc = fn(arg);
    mb_netns_leave(saved);
    return rc;
}

int mb_net_link_counters(const mb_net *net, int link, int dir, mb_link_counters *c)
{
    memset(c, 0, sizeof *c);
    if (link < 0 || link >= net->topo.n_links || !net->links[link].active || !net->be->counters)
        return -1;
    return net->be->counters(&net->links[link], dir, c);
}

int mb_net_link_realtime(const mb_net *net, int link, mb_link_realtime *r)
{
    memset(r, 0, sizeof *r);
    r->radio_energy_j = r->distance_m = NAN;
    if (link < 0 || link >= net->topo.n_links || !net->links[link].active || !net->be->realtime)
        return -1;
    return net->be->realtime(&net->links[link], r);
}
