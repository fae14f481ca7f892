/* One direction of an emulated link (netem/emu_link.c): a thread reads IP
 * packets from the sender's TUN fd, applies loss, the queue limit and AQM,
 * serves them at a constant rate or a trace's capacity, adds propagation delay
 * and jitter, and writes them to the receiver's TUN fd at their delivery time
 * (microsecond timers). Optional per-packet CSV log and pcap. With virtio
 * headers on the fds (cfg.vnet), TCP super-packets are handled as the wire
 * packets they stand for (emu_gso.h). */
#ifndef MECBED_NETEM_EMU_LINK_H
#define MECBED_NETEM_EMU_LINK_H

#include <stdint.h>

#include "mecbed/link.h"
#include "mecbed/linkspec.h"
#include "mecbed/trace.h"

typedef struct emu_dir emu_dir;

typedef struct emu_dir_cfg {
    mb_link_dir dir;       /* copied */
    int mtu;
    int vnet;              /* the fds carry virtio_net_hdr (IFF_VNET_HDR): GSO
                            * super-packets are cut into their wire packets on
                            * entry and due segments merged on delivery */
    uint64_t seed;
    double batch_s;        /* write window: packets due within it of the first
                            * go out together, at most this late (0: each at
                            * its own time) */
    const char *csv_path;  /* NULL: no CSV */
    const char *pcap_path; /* NULL: no pcap */
    const char *name;      /* for messages: "link 0 up" */
} emu_dir_cfg;

/* in_fd and out_fd are TUN fds (non-blocking); the emu_dir does not close
 * them. Loads the trace (error names the file). */
emu_dir *emu_dir_new(int in_fd, int out_fd, const emu_dir_cfg *cfg, char *err, size_t errlen);
/* Start the thread; epoch is the mb_now() time of trace time 0. */
int emu_dir_start(emu_dir *d, double epoch, char *err, size_t errlen);
/* One thread for n (1 or 2) directions, e.g. both of a link: a packet one
 * direction writes that makes the receiver answer (a TCP ACK) is read at
 * once, without waking another thread. Each direction's counters get the
 * CPU of its own work and of the wake-ups it caused. */
int emu_dirs_start(emu_dir *const *ds, int n, double epoch, char *err, size_t errlen);
/* Stop and join the thread (for both directions it serves), flush this
 * direction's logs. Idempotent. */
void emu_dir_stop(emu_dir *d);
void emu_dir_free(emu_dir *d);
void emu_dir_counters(const emu_dir *d, mb_link_counters *c);

#endif
