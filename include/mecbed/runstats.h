/* mecbed runtime: figures computed from what a run did (latency statistics,
 * radio energy from the link's packet log). */
#ifndef MECBED_RUNSTATS_H
#define MECBED_RUNSTATS_H

#include <stdint.h>

#include "mecbed/energy.h"
#include "mecbed/plan.h"
#include "mecbed/timeline.h"

/* Packets of one direction of the device's link, from the emulator's CSV log
 * (absolute times on the mb_now() clock). */
typedef struct rs_packet {
    double t0, t1; /* radio busy with the packet: up [arrival, departure], down [delivery - serialisation, delivery] */
    int bytes;
    int up;
} rs_packet;

typedef struct rs_packets {
    int n, cap;
    rs_packet *p;
} rs_packets;

/* Append the delivered packets of one emulator CSV log (epoch: the link's
 * mb_net_epoch). Returns 0, or -1 with err (missing or malformed file). */
int rs_packets_read(rs_packets *ps, const char *path, double epoch, int up, char *err, size_t errlen);
void rs_packets_free(rs_packets *ps);

/* Radio bursts of the device in [t_start, t_end] (times relative to
 * t_start): from packets when ps has any, else from the timeline's transfers
 * to and from the device. Packets closer than gap_s join one burst. Returns
 * the count written to out (at most max). */
int rs_bursts(const rs_packets *ps, const mb_timeline *tl, uint32_t frame, int device,
              double t_start, double t_end, double gap_s, mb_radio_burst *out, int max);

/* rs_bursts on a run dilated by TDF k (timescale.h): gap_s is emulated
 * time, and the bursts come back in emulated time (times / k, rates x k),
 * ready for mb_radio_frame_energy. t_start, t_end: wall (mb_now()). */
int rs_bursts_emulated(const rs_packets *ps, const mb_timeline *tl, uint32_t frame, int device,
                       double t_start, double t_end, double gap_s, double k, mb_radio_burst *out, int max);

/* Device compute busy time (ms) of a frame: its COMPUTE events. */
double rs_device_busy_ms(const mb_timeline *tl, uint32_t frame, int device);

/* The plan's critical path (ms) with the durations this frame measured:
 * each COMPUTE its own time, each SEND its pure transfer time (receiver's
 * end minus the later of its start and the previous arrival on that
 * directed link), scheduled like the cost model does (one compute at a time
 * per site, one message at a time per link direction, in plan order).
 * NAN when an event is missing. */
double rs_critical_path_ms(const mb_plan *p, const mb_graph *g, const mb_timeline *tl, uint32_t frame);

/* One frame of a stream, wall times (mb_now()): when it was due (released),
 * when its work started and ended; done = 0 when it never completed. */
typedef struct rs_frame_times {
    double release, start, end;
    int done;
} rs_frame_times;

/* Deadline misses of a stream whose frames are due every deadline_ms
 * (1000 / fps, emulated ms) on a run dilated by k (wall = emulated x k):
 * a frame misses when it never completed or its result came later than
 * its release + the deadline, queueing behind earlier frames included (a
 * camera frame answered late is late, whatever delayed it). *own (may be
 * NULL) receives how many of the misses took longer than the deadline
 * from their own start: the rest were late only because they queued. */
int rs_deadline_misses(const rs_frame_times *f, int n, double deadline_ms, double k, int *own);

/* Bytes the device sent and received in a frame (SEND/RECV events). */
void rs_device_bytes(const mb_timeline *tl, uint32_t frame, int device, int64_t *up, int64_t *down);

#endif
