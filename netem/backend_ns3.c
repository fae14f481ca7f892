/* The ns3 link backend: each link is carried through an ns-3 simulated link
 * (point-to-point or Wi-Fi) running in real time in a helper process of our
 * own, mecbed-ns3 (netem/ns3/mecbed-ns3.cc, built when libns3-dev is
 * installed). The helper enters both namespaces, opens a TAP device in each
 * (FdNetDevice on /dev/net/tun) and relays IPv4 frames across the simulated
 * link. This file spawns it, tells it when to start, reads its status lines
 * (real-time lag, counters, Wi-Fi radio energy) and stops it. docs/ns3.md.
 *
 * The helper is looked for in $MECBED_NS3, next to the running mecbed, and in
 * ../libexec/mecbed/ relative to it (make install). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "mecbed/linkspec.h"
#include "mecbed/netns.h"
#include "mecbed/trace.h"

#define MAX_ARGS 64

typedef struct ns3_status {
    int have;
    double sim_s, lag_limit_ms, lag_max_ms, lag_p50_ms, lag_p99_ms, lag_mean_ms, cpu_s, energy_j, distance_m;
    int valid;
    unsigned long long lag_over, in_pk[2], in_b[2], out_pk[2], out_b[2], drop[2];
} ns3_status;

typedef struct ns3_link {
    pid_t pid;
    int to_child, from_child;
    char mac[2][24];
    char trace_path[2][64];
    char buf[4096];
    size_t used;
    int gone;        /* its stdout closed: the helper died (or was stopped) */
    ns3_status st;
} ns3_link;

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

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* write(2) to the helper's stdin without dying of SIGPIPE if it is gone
 * (mecbed link does not ignore SIGPIPE): block it, write, drop a pending one. */
static ssize_t pipe_write(int fd, const char *s, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w = write(fd, s, n);
    int e = errno;
    if (w < 0 && e == EPIPE) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return w;
}

/* The helper program, or -1 with why it is missing. */
static int find_helper(char *path, size_t len, char *err, size_t errlen)
{
    const char *env = getenv("MECBED_NS3");
    if (env && *env) {
        if (access(env, X_OK))
            return fail(err, errlen, "MECBED_NS3=%s: %s", env, strerror(errno));
        snprintf(path, len, "%s", env);
        return 0;
    }
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(path, len, "%s/mecbed-ns3", self);
            if (!access(path, X_OK))
                return 0;
            snprintf(path, len, "%s/../libexec/mecbed/mecbed-ns3", self);
            if (!access(path, X_OK))
                return 0;
        }
    }
    return fail(err, errlen,
                "link backend 'ns3' is not built in this mecbed: its helper mecbed-ns3 was not found next to "
                "mecbed (it is built when libns3-dev is installed; see docs/ns3.md); use --backend emu or tc");
}

/* Spec -> helper arguments (strings live in store). Refuses what the ns-3
 * models here do not do. */
typedef struct argv_buf {
    char *argv[MAX_ARGS];
    char store[MAX_ARGS][1100];
    int n;
} argv_buf;

static void arg(argv_buf *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg(argv_buf *a, const char *fmt, ...)
{
    if (a->n >= MAX_ARGS - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->store[a->n], sizeof a->store[a->n], fmt, ap);
    va_end(ap);
    a->argv[a->n] = a->store[a->n];
    a->n++;
    a->argv[a->n] = NULL;
}

/* The link-spec keys this backend reads: ns3= picks the model, the others
 * are its parameters (the helper validates their values: docs/ns3.md). */
static const char *const ns3_keys[] = {"ns3",   "lag_limit", "standard", "manager", "mode", "distance",
                                       "speed", "stations",  "load",     "txpower", "rbs",  "ues",
                                       NULL};

/* Parameters each model takes (besides ns3= itself). */
static const struct {
    const char *model;
    const char *params; /* comma-separated, as the helper lists them */
} ns3_models[] = {
    {"p2p", "lag_limit"},
    {"wifi", "standard, manager, mode, distance, speed, stations, load, txpower, lag_limit"},
    {"lte", "distance, speed, rbs, ues, load, lag_limit"},
};

static const char *ns3_model(const mb_link_spec *s, char *buf, size_t len)
{
    const char *m = mb_linkspec_extra_get(s, "ns3", buf, len);
    return m ? m : "p2p";
}

static int param_listed(const char *list, const char *key, size_t kl)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == kl && !strncmp(p, key, kl))
            return 1;
        p = end ? end + 2 : NULL; /* ", " */
    }
    return 0;
}

/* The spec's ns-3 keys: a known model, and only that model's parameters
 * (their values are the helper's to judge, at check time). */
static int ns3_validate(const mb_link_spec *s, char *err, size_t errlen)
{
    char m[32];
    const char *model = mb_linkspec_extra_get(s, "ns3", m, sizeof m);
    size_t mi = 0, n_models = sizeof ns3_models / sizeof ns3_models[0];
    while (model && mi < n_models && strcmp(ns3_models[mi].model, model))
        mi++;
    if (model && mi == n_models)
        return fail(err, errlen, "ns3=%s: unknown ns-3 link model (p2p, wifi or lte)", model);
    for (const char *p = s->extra; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        size_t kl = eq ? (size_t)(eq - p) : strlen(p);
        if (kl != 3 || strncmp(p, "ns3", 3)) {
            if (!model)
                return fail(err, errlen, "link spec: unknown key '%.*s' without ns3= (an ns-3 model "
                            "parameter: add ns3=p2p, wifi or lte)", (int)kl, p);
            if (!param_listed(ns3_models[mi].params, p, kl))
                return fail(err, errlen, "ns3=%s: unknown parameter '%.*s' (%s)", model, (int)kl, p,
                            ns3_models[mi].params);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* The helper's --extra: the spec's ns-3 keys less ns3= (given as --model). */
static void helper_extra(const mb_link_spec *s, char *out, size_t len)
{
    size_t at = 0;
    out[0] = 0;
    for (const char *p = s->extra; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, "ns3=", 4) && at < len)
            at += (size_t)snprintf(out + at, len - at, "%s%.*s", at ? "," : "", (int)n, p);
        if (!end)
            break;
        p = end + 1;
    }
}

static int spec_args(const mb_link_spec *s, argv_buf *a, char *err, size_t errlen)
{
    char m[32], extra[sizeof s->extra];
    arg(a, "--model");
    arg(a, "%s", ns3_model(s, m, sizeof m));
    helper_extra(s, extra, sizeof extra);
    if (extra[0]) {
        arg(a, "--extra");
        arg(a, "%s", extra);
    }
    const mb_link_dir *d[2] = {&s->up, &s->down};
    static const char *const name[2] = {"up", "down"};
    for (int i = 0; i < 2; i++) {
        if (d[i]->jitter_s > 0)
            return fail(err, errlen, "the ns3 backend does not add jitter (delay variation comes from the "
                                     "simulated link itself): use --backend emu for jitter=");
        if (d[i]->aqm_target_s > 0)
            return fail(err, errlen, "the ns3 backend does not do aqm= (its queues are drop-tail): use --backend emu");
        if (d[i]->loss_model == MB_LOSS_GILBERT_ELLIOTT)
            return fail(err, errlen, "the ns3 backend does Bernoulli loss only: use --backend emu for "
                                     "Gilbert-Elliott loss");
        if (d[i]->duplicate > 0 || d[i]->corrupt > 0 || d[i]->reorder > 0)
            return fail(err, errlen, "the ns3 backend does not duplicate, corrupt or reorder packets: use "
                                     "--backend emu");
        if (d[i]->rate_bps > 0)
            arg(a, "--rate-%s", name[i]), arg(a, "%.0f", d[i]->rate_bps);
        if (d[i]->delay_s > 0)
            arg(a, "--delay-%s", name[i]), arg(a, "%.9f", d[i]->delay_s);
        if (d[i]->loss_model == MB_LOSS_BERNOULLI && d[i]->loss > 0)
            arg(a, "--loss-%s", name[i]), arg(a, "%.9f", d[i]->loss);
        if (d[i]->queue_packets > 0)
            arg(a, "--queue-%s", name[i]), arg(a, "%ld", d[i]->queue_packets);
        if (d[i]->queue_bytes > 0)
            arg(a, "--queue-bytes-%s", name[i]), arg(a, "%ld", d[i]->queue_bytes);
    }
    if (s->mtu > 0)
        arg(a, "--mtu"), arg(a, "%d", s->mtu);
    return 0;
}

static int ns3_check(const mb_link_spec *s, char *err, size_t errlen)
{
    char helper[PATH_MAX];
    if (find_helper(helper, sizeof helper, err, errlen))
        return -1;
    argv_buf a = {.n = 0};
    arg(&a, "%s", helper);
    arg(&a, "--check");
    if (spec_args(s, &a, err, errlen))
        return -1;
    const mb_link_dir *d[2] = {&s->up, &s->down};
    for (int i = 0; i < 2; i++)
        if (d[i]->trace[0]) {
            char m[32];
            if (strcmp(ns3_model(s, m, sizeof m), "p2p"))
                return fail(err, errlen, "ns3=%s: trace= applies to ns3=p2p only", m);
            char e[512];
            mb_trace *tr = mb_trace_read_dir(d[i], e, sizeof e);
            if (!tr)
                return fail(err, errlen, "%s", e);
            mb_trace_free(tr);
        }
    char e[1024];
    if (mb_cmd_run(a.argv, NULL, 0, e, sizeof e)) {
        /* mb_cmd_run says "'<command>' failed: <message>": keep the message */
        const char *m = strstr(e, "' failed: ");
        return fail(err, errlen, "link backend ns3: %s", m ? m + 10 : e);
    }
    return 0;
}

/* A rate trace for the helper (native format; opportunity traces as rates
 * over 10 ms bins, which is as fine as the serialisation of a few packets). */
static int write_trace(const mb_link_dir *dir, char *path, size_t len, char *err, size_t errlen)
{
    const char *src = dir->trace;
    /* stretched by the direction's time_scale under time dilation: the
     * helper gets the trace as this run must emulate it */
    mb_trace *tr = mb_trace_read_dir(dir, err, errlen);
    if (!tr)
        return -1;
    mb_trace *use = tr;
    if (tr->kind == MB_TRACE_OPPORTUNITIES) {
        use = mb_trace_binned(tr, 0.010);
        if (!use) {
            mb_trace_free(tr);
            return fail(err, errlen, "trace %s: cannot bin it into rates", src);
        }
    }
    snprintf(path, len, "/tmp/mecbed-ns3-trace-XXXXXX");
    int fd = mkstemp(path);
    int rc = -1;
    if (fd < 0) {
        fail(err, errlen, "mkstemp: %s", strerror(errno));
        path[0] = 0;
    } else {
        close(fd);
        rc = mb_trace_write(use, path, MB_TRACE_FMT_NATIVE, 0, err, errlen);
    }
    if (use != tr)
        mb_trace_free(use);
    mb_trace_free(tr);
    return rc;
}

/* Parse one "status ..." / "final ..." line. */
static void parse_status(ns3_status *st, char *line)
{
    char *save = NULL;
    strtok_r(line, " ", &save);
    for (char *tok = strtok_r(NULL, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        double x = strtod(v, NULL);
        unsigned long long u = strtoull(v, NULL, 10);
        if (!strcmp(k, "sim_s")) st->sim_s = x;
        else if (!strcmp(k, "valid")) st->valid = (int)u;
        else if (!strcmp(k, "lag_limit_ms")) st->lag_limit_ms = x;
        else if (!strcmp(k, "lag_max_ms")) st->lag_max_ms = x;
        else if (!strcmp(k, "lag_p50_ms")) st->lag_p50_ms = x;
        else if (!strcmp(k, "lag_p99_ms")) st->lag_p99_ms = x;
        else if (!strcmp(k, "lag_mean_ms")) st->lag_mean_ms = x;
        else if (!strcmp(k, "lag_over")) st->lag_over = u;
        else if (!strcmp(k, "cpu_s")) st->cpu_s = x;
        else if (!strcmp(k, "energy_j")) st->energy_j = x; /* "nan" parses to NAN */
        else if (!strcmp(k, "distance_m")) st->distance_m = x;
        else if (!strcmp(k, "a_in_pk")) st->in_pk[0] = u;
        else if (!strcmp(k, "a_in_b")) st->in_b[0] = u;
        else if (!strcmp(k, "b_out_pk")) st->out_pk[0] = u;
        else if (!strcmp(k, "b_out_b")) st->out_b[0] = u;
        else if (!strcmp(k, "a_drop")) st->drop[0] = u;
        else if (!strcmp(k, "b_in_pk")) st->in_pk[1] = u;
        else if (!strcmp(k, "b_in_b")) st->in_b[1] = u;
        else if (!strcmp(k, "a_out_pk")) st->out_pk[1] = u;
        else if (!strcmp(k, "a_out_b")) st->out_b[1] = u;
        else if (!strcmp(k, "b_drop")) st->drop[1] = u;
    }
    st->have = 1;
}

/* Read what the helper wrote; status lines update e->st. With want, wait
 * (up to timeout_s) for a line starting with want (or "error ") and copy it
 * to out. Returns 1 when found, 0 when not (yet), -1 at EOF. */
static int read_lines(ns3_link *e, const char *want, double timeout_s, char *out, size_t outlen)
{
    double end = mono() + timeout_s;
    for (;;) {
        /* complete lines in the buffer */
        char *nl;
        while ((nl = memchr(e->buf, '\n', e->used))) {
            *nl = 0;
            char line[4096];
            snprintf(line, sizeof line, "%s", e->buf);
            size_t k = (size_t)(nl - e->buf) + 1;
            memmove(e->buf, e->buf + k, e->used - k);
            e->used -= k;
            if (!strncmp(line, "status ", 7) || !strncmp(line, "final ", 6) || !strncmp(line, "now ", 4)) {
                int now = !strncmp(line, "now ", 4);
                parse_status(&e->st, line);
                if (now && want && !strcmp(want, "now ")) {
                    snprintf(out, outlen, "%s", "now");
                    return 1;
                }
            } else if (want && (!strncmp(line, want, strlen(want)) || !strncmp(line, "error ", 6))) {
                snprintf(out, outlen, "%s", line);
                return 1;
            }
        }
        if (e->used == sizeof e->buf) /* a line longer than the buffer: drop it */
            e->used = 0;
        double left = end - mono();
        int ms = want ? (left > 0 ? (int)(left * 1000) + 1 : 0) : 0;
        struct pollfd pfd = {.fd = e->from_child, .events = POLLIN};
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        ssize_t n = read(e->from_child, e->buf + e->used, sizeof e->buf - e->used);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            e->gone = 1;
            return -1;
        }
        e->used += (size_t)n;
    }
}

static int ns3_link_up(mb_net *net, net_link *l, const mb_net_opts *o, char *err, size_t errlen)
{
    (void)net;
    char helper[PATH_MAX];
    if (find_helper(helper, sizeof helper, err, errlen))
        return -1;
    ns3_link *e = calloc(1, sizeof *e);
    if (!e)
        return fail(err, errlen, "out of memory");
    e->pid = -1;
    e->to_child = e->from_child = -1;
    e->st.energy_j = NAN;
    l->priv = e;
    argv_buf *a = calloc(1, sizeof *a);
    if (!a)
        return fail(err, errlen, "out of memory");
    arg(a, "%s", helper);
    int rc = spec_args(l->spec, a, err, errlen);
    const mb_link_dir *d[2] = {&l->spec->up, &l->spec->down};
    for (int i = 0; i < 2 && !rc; i++)
        if (d[i]->trace[0]) {
            rc = write_trace(d[i], e->trace_path[i], sizeof e->trace_path[i], err, errlen);
            if (!rc) {
                arg(a, "--trace-%s", i ? "down" : "up");
                arg(a, "%s", e->trace_path[i]);
                if (!d[i]->trace_loop)
                    arg(a, "--trace-%s-once", i ? "down" : "up");
            }
        }
    if (rc) {
        free(a);
        return -1;
    }
    arg(a, "--seed"), arg(a, "%llu", (unsigned long long)(o->seed ? o->seed : 1) + (unsigned long long)l->index);
    arg(a, "--ns-a"), arg(a, "%s", l->ns[0]);
    arg(a, "--ns-b"), arg(a, "%s", l->ns[1]);
    arg(a, "--if-a"), arg(a, "%s", l->ifname[0]);
    arg(a, "--if-b"), arg(a, "%s", l->ifname[1]);
    arg(a, "--addr-a"), arg(a, "%s", l->addr[0]);
    arg(a, "--addr-b"), arg(a, "%s", l->addr[1]);

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC)) {
        free(a);
        return fail(err, errlen, "pipe: %s", strerror(errno));
    }
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]), close(in[1]);
        free(a);
        return fail(err, errlen, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        free(a);
        return fail(err, errlen, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        execv(a->argv[0], a->argv);
        dprintf(1, "error cannot run %s: %s\n", a->argv[0], strerror(errno));
        _exit(127);
    }
    free(a);
    close(in[0]);
    close(out[1]);
    e->pid = pid;
    e->to_child = in[1];
    e->from_child = out[0];
    mb_cleanup_add_pid(pid);
    fcntl(e->from_child, F_SETFL, fcntl(e->from_child, F_GETFL) | O_NONBLOCK);
    char line[4096];
    int r = read_lines(e, "ready ", 30, line, sizeof line);
    if (r != 1)
        return fail(err, errlen, "mecbed-ns3 %s before its TAP devices were ready",
                    r < 0 ? "exited" : "did not answer in 30 s");
    if (!strncmp(line, "error ", 6))
        return fail(err, errlen, "mecbed-ns3: %s", line + 6);
    if (sscanf(line, "ready %23s %23s", e->mac[0], e->mac[1]) != 2)
        return fail(err, errlen, "mecbed-ns3: unexpected answer '%s'", line);
    /* the helper made the TAP devices with the names net.c expects */
    return 0;
}

static int ns3_link_start(mb_net *net, net_link *l, char *err, size_t errlen)
{
    (void)net;
    ns3_link *e = l->priv;
    /* only IPv4 crosses the simulated link: permanent neighbour entries
     * instead of ARP */
    for (int side = 0; side < 2; side++) {
        char *argv[] = {"ip",      "-n", l->ns[side], "neigh", "replace", l->addr[1 - side], "lladdr",
                        e->mac[1 - side], "dev", l->ifname[side], "nud", "permanent", NULL};
        if (mb_cmd_run(argv, NULL, 0, err, errlen))
            return -1;
    }
    static const char start[] = "start\n";
    if (pipe_write(e->to_child, start, sizeof start - 1) != (ssize_t)(sizeof start - 1))
        return fail(err, errlen, "mecbed-ns3 is gone: %s", strerror(errno));
    char line[4096];
    int r = read_lines(e, "running", 10, line, sizeof line);
    if (r != 1)
        return fail(err, errlen, "mecbed-ns3 %s when told to start", r < 0 ? "exited" : "did not answer in 10 s");
    if (!strncmp(line, "error ", 6))
        return fail(err, errlen, "mecbed-ns3: %s", line + 6);
    return 0;
}

static void ns3_link_down(mb_net *net, net_link *l)
{
    (void)net;
    ns3_link *e = l->priv;
    if (!e)
        return;
    if (e->to_child >= 0) {
        static const char stop[] = "stop\n";
        if (pipe_write(e->to_child, stop, sizeof stop - 1) < 0) {
            /* gone already */
        }
        close(e->to_child);
    }
    if (e->pid > 0) {
        /* it stops at the next 10 ms tick; give it a moment for its last line */
        double end = mono() + 2;
        int done = 0;
        while (!done && mono() < end) {
            if (e->from_child >= 0)
                read_lines(e, NULL, 0, NULL, 0);
            if (waitpid(e->pid, NULL, WNOHANG) == e->pid)
                done = 1;
            else
                usleep(5000);
        }
        if (!done) {
            kill(e->pid, SIGKILL);
            waitpid(e->pid, NULL, 0);
        }
        mb_cleanup_remove_pid(e->pid);
    }
    if (e->from_child >= 0)
        close(e->from_child);
    for (int i = 0; i < 2; i++)
        if (e->trace_path[i][0])
            unlink(e->trace_path[i]);
    free(e);
    l->priv = NULL;
}

/* Fresh figures: ask the helper for a status line and wait for it (1 s at
 * most; then the last periodic one stands). */
static void refresh(ns3_link *e)
{
    static const char req[] = "status\n";
    char line[64];
    if (e->to_child >= 0 && pipe_write(e->to_child, req, sizeof req - 1) == (ssize_t)(sizeof req - 1))
        read_lines(e, "now ", 1, line, sizeof line);
    else
        read_lines(e, NULL, 0, NULL, 0);
}

static int ns3_counters(const net_link *l, int dir, mb_link_counters *c)
{
    ns3_link *e = l->priv;
    if (!e || dir < 0 || dir > 1 || e->from_child < 0)
        return -1;
    if (dir == 0 || !e->st.have)
        refresh(e);
    else
        read_lines(e, NULL, 0, NULL, 0);
    if (!e->st.have)
        return -1;
    const ns3_status *s = &e->st;
    c->in_packets = s->in_pk[dir];
    c->in_bytes = s->in_b[dir];
    c->out_packets = s->out_pk[dir];
    c->out_bytes = s->out_b[dir];
    c->drop_queue = s->drop[dir];
    c->cpu_s = s->cpu_s / 2; /* one process serves both directions */
    /* "how late packets were written after their due time": the simulator's
     * real-time lag at each frame written to a TAP */
    c->late_mean_us = s->lag_mean_ms * 1e3;
    c->late_p50_us = s->lag_p50_ms * 1e3;
    c->late_p99_us = s->lag_p99_ms * 1e3;
    c->late_max_us = s->lag_max_ms * 1e3;
    return 0;
}

static int ns3_realtime(const net_link *l, mb_link_realtime *r)
{
    ns3_link *e = l->priv;
    if (!e || e->from_child < 0)
        return -1;
    refresh(e);
    if (!e->st.have)
        return -1;
    const ns3_status *s = &e->st;
    /* a helper that died mid-run simulated nothing after that: invalid */
    r->valid = s->valid && !e->gone;
    r->died = e->gone;
    r->sim_s = s->sim_s;
    r->lag_limit_ms = s->lag_limit_ms;
    r->lag_max_ms = s->lag_max_ms;
    r->lag_p50_ms = s->lag_p50_ms;
    r->lag_p99_ms = s->lag_p99_ms;
    r->overruns = s->lag_over;
    r->radio_energy_j = s->energy_j;
    r->distance_m = s->distance_m;
    return 0;
}

const net_backend net_backend_ns3 = {
    .name = "ns3",
    .summary = "ns-3 simulated links (ns3=p2p, wifi, lte) in real time, mecbed-ns3 helper",
    .keys = ns3_keys,
    .validate = ns3_validate,
    .check = ns3_check,
    .link_up = ns3_link_up,
    .link_start = ns3_link_start,
    .link_down = ns3_link_down,
    .counters = ns3_counters,
    .realtime = ns3_realtime,
};
