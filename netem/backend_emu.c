/* The emu backend: each side of a link is a TUN device in that node's
 * namespace; two emulator threads (one per direction, emu_link.c) carry the
 * packets between the two TUN fds. Nothing else joins the namespaces, so all
 * traffic between them crosses the emulator. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend.h"

/* UDP segmentation offload on a TUN (Linux 6.2; older headers lack the flags) */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#include "emu_link.h"
#include "mecbed/netns.h"

typedef struct emu_link {
    int fd[2];
    emu_dir *dir[2]; /* 0: a -> b (up), 1: b -> a (down) */
} emu_link;

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

/* coalesce=T (us, ms or s; default DEFAULT_COALESCE_S): the write window.
 * Packets due within T of the first are written in one wake-up, as a NIC's
 * interrupt coalescing (or a cellular slot) hands them to the stack; the
 * last of them, and a lone packet, on time. -1 when malformed. */
/* A 5G NR slot at 120 kHz subcarrier spacing, and about one packet time at
 * 100 Mbit/s: halves the wake-ups of a busy 100 Mbit/s link (each costs
 * 20-35 us of CPU on a VM), and is a tenth of LTE's 1 ms TTI, whose
 * receivers see packets in bursts anyway. coalesce=0: every packet at its
 * own time. */
#define DEFAULT_COALESCE_S 125e-6

static double coalesce_parse(const char *v)
{
    char *end;
    double x = strtod(v, &end);
    /* a bare 0 (no window) needs no unit */
    double u = !strcmp(end, "us") ? 1e-6 : !strcmp(end, "ms") ? 1e-3 : !strcmp(end, "s") ? 1 : !*end && x == 0 ? 1 : -1;
    if (end == v || u < 0 || !(x >= 0) || x * u > 0.1)
        return -1;
    return x * u;
}

static double coalesce_s(const mb_link_spec *s)
{
    char buf[64];
    const char *v = mb_linkspec_extra_get(s, "coalesce", buf, sizeof buf);
    double c = v ? coalesce_parse(v) : DEFAULT_COALESCE_S;
    return c > 0 ? c : 0;
}

static const char *const emu_keys[] = {"coalesce", NULL};

static int emu_validate(const mb_link_spec *s, char *err, size_t errlen)
{
    char buf[64];
    const char *v = mb_linkspec_extra_get(s, "coalesce", buf, sizeof buf);
    if (v && coalesce_parse(v) < 0)
        return fail(err, errlen, "link spec: coalesce='%s': a time from 0 to 100ms with its unit (us, ms, s), "
                    "e.g. coalesce=250us", v);
    return 0;
}

/* Everything in the generic grammar is emulated; other backends' keys are
 * refused before this (mb_net_check). */
static int emu_check(const mb_link_spec *s, char *err, size_t errlen)
{
    (void)s;
    (void)err;
    (void)errlen;
    return 0;
}

/* A TUN device created inside namespace ns (the device lives in the
 * namespace of the thread that opens /dev/net/tun). With *vnet set, it
 * carries virtio headers and takes TCP segmentation offload (TSO): the
 * sender's stack hands the emulator 64 KB super-packets instead of 1500-byte
 * packets (emu_gso.h), and, where the kernel has it (6.2+), UDP segmentation
 * offload (USO: a UDP_SEGMENT socket's send arrives whole); *vnet is cleared
 * where the kernel refuses TSO. */
#define TSO_FLAGS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
static int tun_open(const char *ns, const char *name, int *vnet, char *err, size_t errlen)
{
    int saved;
    if (mb_netns_enter(ns, &saved))
        return fail(err, errlen, "cannot enter namespace %s: %s", ns, strerror(errno));
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    int e = errno;
    if (fd >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (*vnet ? IFF_VNET_HDR : 0);
        snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
        if (ioctl(fd, TUNSETIFF, &ifr)) {
            e = errno;
            close(fd);
            fd = -1;
        } else if (*vnet && ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TSO_FLAGS | TUN_F_USO4 | TUN_F_USO6)) &&
                   ioctl(fd, TUNSETOFFLOAD, (unsigned long)TSO_FLAGS)) {
            /* virtio headers without offloads: plain packets, nothing gained */
            close(fd);
            mb_netns_leave(saved);
            *vnet = 0;
            return tun_open(ns, name, vnet, err, errlen);
        }
    }
    mb_netns_leave(saved);
    if (fd < 0)
        return fail(err, errlen, "TUN device %s in %s: %s", name, ns, strerror(e));
    return fd;
}

static int tun_side(net_link *l, emu_link *e, int side, int *vnet, char *err, size_t errlen)
{
    e->fd[side] = tun_open(l->ns[side], l->ifname[side], vnet, err, errlen);
    if (e->fd[side] < 0)
        return -1;
    /* a deep device queue: if the emulator thread is briefly descheduled,
     * packets wait instead of being dropped by the kernel */
    char *argv[] = {"ip", "-n", l->ns[side], "link", "set", "dev", l->ifname[side], "txqueuelen", "10000", NULL};
    return mb_cmd_run(argv, NULL, 0, err, errlen);
}

static int emu_link_up(mb_net *net, net_link *l, const mb_net_opts *o, char *err, size_t errlen)
{
    emu_link *e = calloc(1, sizeof *e);
    if (!e)
        return fail(err, errlen, "out of memory");
    e->fd[0] = e->fd[1] = -1;
    l->priv = e;
    /* MECBED_EMU_GSO=0: plain packets on the TUN devices (for comparison) */
    const char *gso = getenv("MECBED_EMU_GSO");
    int vnet = !(gso && !strcmp(gso, "0"));
    for (int side = 0; side < 2; side++)
        if (tun_side(l, e, side, &vnet, err, errlen))
            return -1;
    if (!vnet && !(gso && !strcmp(gso, "0"))) {
        /* side 1 refused virtio headers: side 0 again without them */
        close(e->fd[0]);
        e->fd[0] = -1;
        if (tun_side(l, e, 0, &vnet, err, errlen))
            return -1;
    }
    const mb_topology *t = mb_net_topology(net);
    const mb_topo_link *tl = &t->links[l->index];
    for (int dir = 0; dir < 2; dir++) {
        char name[96], csv[1024], pcap[1024];
        const char *dname = dir == 0 ? "up" : "down";
        snprintf(name, sizeof name, "link %s-%s %s", t->sites[tl->a].name, t->sites[tl->b].name, dname);
        emu_dir_cfg cfg = {
            .dir = dir == 0 ? l->spec->up : l->spec->down,
            .mtu = l->spec->mtu > 0 ? l->spec->mtu : 1500,
            .vnet = vnet,
            .batch_s = coalesce_s(l->spec),
            .seed = (o->seed ? o->seed : 1) * 1000003ULL + (uint64_t)l->index * 2 + (uint64_t)dir,
            .name = name,
        };
        if (o->log_dir) {
            snprintf(csv, sizeof csv, "%s/link%d-%s-%s.%s.csv", o->log_dir, l->index, t->sites[tl->a].name,
                     t->sites[tl->b].name, dname);
            snprintf(pcap, sizeof pcap, "%s/link%d-%s-%s.%s.pcap", o->log_dir, l->index, t->sites[tl->a].name,
                     t->sites[tl->b].name, dname);
            cfg.csv_path = csv;
            cfg.pcap_path = pcap;
        }
        e->dir[dir] = emu_dir_new(e->fd[dir], e->fd[1 - dir], &cfg, err, errlen);
        if (!e->dir[dir])
            return -1;
    }
    return 0;
}

static int emu_link_start(mb_net *net, net_link *l, char *err, size_t errlen)
{
    emu_link *e = l->priv;
    /* one thread per link (MECBED_EMU_THREADS=2: one per direction, to compare) */
    const char *t = getenv("MECBED_EMU_THREADS");
    if (!(t && !strcmp(t, "2")))
        return emu_dirs_start(e->dir, 2, net_epoch(net), err, errlen);
    for (int dir = 0; dir < 2; dir++)
        if (emu_dir_start(e->dir[dir], net_epoch(net), err, errlen))
            return -1;
    return 0;
}

static void emu_link_down(mb_net *net, net_link *l)
{
    (void)net;
    emu_link *e = l->priv;
    if (!e)
        return;
    for (int dir = 0; dir < 2; dir++)
        emu_dir_free(e->dir[dir]);
    /* closing a TUN fd removes the (non-persistent) device */
    for (int side = 0; side < 2; side++)
        if (e->fd[side] >= 0)
            close(e->fd[side]);
    free(e);
    l->priv = NULL;
}

static int emu_counters(const net_link *l, int dir, mb_link_counters *c)
{
    const emu_link *e = l->priv;
    if (!e || dir < 0 || dir > 1 || !e->dir[dir])
        return -1;
    emu_dir_counters(e->dir[dir], c);
    return 0;
}

const net_backend net_backend_emu = {
    .name = "emu",
    .summary = "user-space TUN emulator: rate, trace, delay, jitter, loss, queue, AQM",
    .check = emu_check,
    .keys = emu_keys,
    .validate = emu_validate,
    .link_up = emu_link_up,
    .link_start = emu_link_start,
    .link_down = emu_link_down,
    .counters = emu_counters,
};
