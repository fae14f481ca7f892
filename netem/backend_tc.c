/* The tc backend: a veth pair between the two namespaces, shaped on each
 * side's egress by kernel qdiscs. netem (delay, jitter, loss, rate) where the
 * kernel has it, detected at run time; otherwise tbf, which can only limit the
 * rate: asking for more is an error that names the emu backend. */
#define _GNU_SOURCE
#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "backend.h"
#include "mecbed/netns.h"

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

static int netem_cached = -1;

/* Try a netem qdisc on the loopback of a throw-away namespace (a child
 * process that unshares: nothing to clean up). */
int mb_tc_has_netem(void)
{
    if (netem_cached >= 0)
        return netem_cached;
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        if (unshare(CLONE_NEWNET))
            _exit(2);
        execlp("tc", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", (char *)NULL);
        _exit(3);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return netem_cached = 0;
    netem_cached = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    return netem_cached;
}

static int needs_netem(const mb_link_dir *d)
{
    return d->delay_s > 0 || d->jitter_s > 0 || d->loss_model != MB_LOSS_NONE || d->duplicate > 0 || d->corrupt > 0 ||
           d->reorder > 0;
}

static int tc_check(const mb_link_spec *s, char *err, size_t errlen)
{
    const mb_link_dir *dirs[2] = {&s->up, &s->down};
    for (int i = 0; i < 2; i++) {
        const mb_link_dir *d = dirs[i];
        if (d->trace[0])
            return fail(err, errlen, "the tc backend cannot follow a capacity trace (%s): use --backend emu", d->trace);
        if (d->aqm_target_s > 0)
            return fail(err, errlen, "the tc backend does not do aqm= here: use --backend emu");
        if (needs_netem(d) && !mb_tc_has_netem())
            return fail(err, errlen,
                        "this kernel has no netem qdisc (sch_netem), so the tc backend can only limit the rate; "
                        "for delay, jitter, loss, duplicate, corrupt or reorder use --backend emu");
    }
    return 0;
}

static int run_tc(char *err, size_t errlen, char **argv)
{
    return mb_cmd_run(argv, NULL, 0, err, errlen) ? -1 : 0;
}

#define ARG(...) snprintf(bufs[n], sizeof bufs[n], __VA_ARGS__), argv[n] = bufs[n], n++

/* One direction: the qdisc on the sending side's egress. */
static int shape(const char *ns, const char *ifname, const mb_link_dir *d, int mtu, char *err, size_t errlen)
{
    char bufs[40][64];
    char *argv[41];
    int n = 0;
    ARG("tc");
    ARG("-n");
    ARG("%s", ns);
    ARG("qdisc");
    ARG("add");
    ARG("dev");
    ARG("%s", ifname);
    ARG("root");
    long limit_p = d->queue_packets > 0 ? d->queue_packets
                   : d->queue_bytes > 0 ? (d->queue_bytes + mtu - 1) / mtu : 1000;
    if (needs_netem(d)) {
        ARG("netem");
        ARG("limit");
        ARG("%ld", limit_p);
        ARG("delay");
        ARG("%.0fus", d->delay_s * 1e6);
        if (d->jitter_s > 0) {
            ARG("%.0fus", d->jitter_s * 1e6);
            if (d->jitter_dist == MB_JITTER_NORMAL || d->jitter_dist == MB_JITTER_PARETO) {
                ARG("distribution");
                ARG("%s", d->jitter_dist == MB_JITTER_NORMAL ? "normal" : "pareto");
            }
        }
        if (d->loss_model == MB_LOSS_BERNOULLI) {
            ARG("loss");
            ARG("random");
            ARG("%.6f%%", d->loss * 100);
        } else if (d->loss_model == MB_LOSS_GILBERT_ELLIOTT) {
            ARG("loss");
            ARG("gemodel");
            ARG("%.6f%%", d->ge_p * 100);
            ARG("%.6f%%", d->ge_r * 100);
            ARG("%.6f%%", d->ge_loss_bad * 100); /* netem's "1-h": loss probability in the bad state */
            ARG("%.6f%%", d->ge_loss_good * 100);
        }
        if (d->duplicate > 0) {
            ARG("duplicate");
            ARG("%.6f%%", d->duplicate * 100);
        }
        if (d->corrupt > 0) {
            ARG("corrupt");
            ARG("%.6f%%", d->corrupt * 100);
        }
        if (d->reorder > 0) { /* netem's own reorder: P, and the gap (tc's default 1 when left out) */
            ARG("reorder");
            ARG("%.6f%%", d->reorder * 100);
            ARG("gap");
            ARG("%ld", d->reorder_gap > 1 ? d->reorder_gap : 1);
        }
        if (d->rate_bps > 0) {
            ARG("rate");
            ARG("%.0fbit", d->rate_bps);
        }
    } else if (d->rate_bps > 0) {
        /* burst: at least four full frames, or 4 ms at the rate, so a late
         * wake-up of the qdisc watchdog on a busy machine (measured here:
         * 2 % of the rate lost with 2 frames at 10 Mbit/s) does not cost
         * tokens */
        double burst = d->rate_bps / 8 * 4e-3;
        if (burst < 4.0 * (mtu + 14))
            burst = 4.0 * (mtu + 14);
        long limit_b = d->queue_bytes > 0 ? d->queue_bytes : limit_p * (mtu + 14);
        ARG("tbf");
        ARG("rate");
        ARG("%.0fbit", d->rate_bps);
        ARG("burst");
        ARG("%.0f", burst);
        ARG("limit");
        ARG("%ld", limit_b + (long)burst);
    } else {
        return 0; /* unlimited, no delay: a bare veth */
    }
    argv[n] = NULL;
    return run_tc(err, errlen, argv);
}

/* What a tc link records (with a log directory): a pcap per direction,
 * captured as packets arrive on the receiving side (the shaper's output).
 * Per-packet queueing is inside the kernel's qdisc and not visible here:
 * the CSV log is an emu-only feature. */
typedef struct tc_cap {
    pcap_t *pc;
    pcap_dumper_t *dump;
    pthread_t thread;
    int started;
    volatile int stop;
} tc_cap;

typedef struct tc_link {
    tc_cap cap[2]; /* 0: a -> b, captured on b's side; 1: b -> a on a's side */
    char path[2][1024];
} tc_link;

static void *cap_run(void *arg)
{
    tc_cap *c = arg;
    while (!c->stop) {
        int n = pcap_dispatch(c->pc, -1, pcap_dump, (u_char *)c->dump);
        if (n == PCAP_ERROR_BREAK || n == PCAP_ERROR)
            break;
    }
    pcap_dump_flush(c->dump);
    return NULL;
}

static int cap_open(tc_cap *c, const char *ns, const char *ifname, const char *path, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    int saved;
    if (mb_netns_enter(ns, &saved))
        return fail(err, errlen, "cannot enter namespace %s: %s", ns, strerror(errno));
    /* the capture socket belongs to the namespace it is made in */
    c->pc = pcap_create(ifname, ebuf);
    int rc = -1;
    if (c->pc && pcap_set_snaplen(c->pc, 65535) == 0 && pcap_set_immediate_mode(c->pc, 1) == 0 &&
        pcap_set_timeout(c->pc, 100) == 0 && pcap_activate(c->pc) >= 0)
        rc = 0;
    mb_netns_leave(saved);
    if (rc)
        return fail(err, errlen, "capture on %s in %s: %s", ifname, ns, c->pc ? pcap_geterr(c->pc) : ebuf);
    pcap_setdirection(c->pc, PCAP_D_IN);
    c->dump = pcap_dump_open(c->pc, path);
    if (!c->dump)
        return fail(err, errlen, "%s: %s", path, pcap_geterr(c->pc));
    return 0;
}

static void cap_close(tc_cap *c)
{
    if (c->started) {
        c->stop = 1;
        pcap_breakloop(c->pc);
        pthread_join(c->thread, NULL);
        c->started = 0;
    }
    if (c->dump)
        pcap_dump_close(c->dump);
    if (c->pc)
        pcap_close(c->pc);
    c->dump = NULL;
    c->pc = NULL;
}

static int tc_link_up(mb_net *net, net_link *l, const mb_net_opts *o, char *err, size_t errlen)
{
    char *argv[] = {"ip", "link", "add", l->ifname[0], "netns", l->ns[0], "type", "veth", "peer", "name",
                    l->ifname[1], "netns", l->ns[1], NULL};
    if (mb_cmd_run(argv, NULL, 0, err, errlen))
        return -1;
    int mtu = l->spec->mtu > 0 ? l->spec->mtu : 1500;
    for (int side = 0; side < 2; side++) {
        /* no TSO/GSO/GRO: the shaper must see wire-sized packets, as a real
         * bottleneck would (ethtool is optional: tbf segments GSO packets) */
        char *eargv[] = {"ip", "netns", "exec", l->ns[side], "ethtool", "-K", l->ifname[side], "tso", "off", "gso",
                         "off", "gro", "off", NULL};
        char e2[256];
        mb_cmd_run(eargv, NULL, 0, e2, sizeof e2);
        if (shape(l->ns[side], l->ifname[side], side == 0 ? &l->spec->up : &l->spec->down, mtu, err, errlen))
            return -1;
    }
    if (o->log_dir) {
        tc_link *t = calloc(1, sizeof *t);
        if (!t)
            return fail(err, errlen, "out of memory");
        l->priv = t;
        const mb_topology *topo = mb_net_topology(net);
        const mb_topo_link *tl = &topo->links[l->index];
        for (int dir = 0; dir < 2; dir++)
            snprintf(t->path[dir], sizeof t->path[dir], "%s/link%d-%s-%s.%s.pcap", o->log_dir, l->index,
                     topo->sites[tl->a].name, topo->sites[tl->b].name, dir == 0 ? "up" : "down");
    }
    return 0;
}

static int tc_link_start(mb_net *net, net_link *l, char *err, size_t errlen)
{
    (void)net;
    tc_link *t = l->priv;
    if (!t)
        return 0;
    for (int dir = 0; dir < 2; dir++) {
        /* opened here: a capture needs the interface up */
        int rx_side = dir == 0 ? 1 : 0;
        if (cap_open(&t->cap[dir], l->ns[rx_side], l->ifname[rx_side], t->path[dir], err, errlen))
            return -1;
        int rc = pthread_create(&t->cap[dir].thread, NULL, cap_run, &t->cap[dir]);
        if (rc)
            return fail(err, errlen, "cannot start a capture thread: %s", strerror(rc));
        t->cap[dir].started = 1;
    }
    return 0;
}

static void tc_link_down(mb_net *net, net_link *l)
{
    (void)net;
    tc_link *t = l->priv;
    if (t) {
        for (int dir = 0; dir < 2; dir++)
            cap_close(&t->cap[dir]);
        free(t);
        l->priv = NULL;
    }
    /* deleting one end of a veth removes both, qdiscs included */
    char *argv[] = {"ip", "-n", l->ns[0], "link", "del", l->ifname[0], NULL};
    char e[256];
    mb_cmd_run(argv, NULL, 0, e, sizeof e);
}

const net_backend net_backend_tc = {
    .name = "tc",
    .summary = "kernel qdiscs on veth pairs: tbf rate; netem delay, jitter, loss if present",
    .check = tc_check,
    .link_up = tc_link_up,
    .link_start = tc_link_start,
    .link_down = tc_link_down,
};
