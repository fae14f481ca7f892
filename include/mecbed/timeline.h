/* mecbed: the timeline of a distributed run. Every op computed and every
 * region sent or received, on every site, with start and end times on the
 * runner's clock (node clocks are shifted by the offset estimated at HELLO).
 * Saved as CSV and as Chrome trace-event JSON (Perfetto, chrome://tracing). */
#ifndef MECBED_TIMELINE_H
#define MECBED_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/topology.h"
#include "mecbed/wire.h"

typedef enum mb_event_kind {
    MB_EV_COMPUTE = 0, /* site computed step's region of op: [t0, t1] */
    MB_EV_SEND = 1,    /* site wrote the region to peer's socket: [t0 start, t1 all written] */
    MB_EV_RECV = 2,    /* site received from peer: [t0 header arrived, t1 last byte] */
    MB_EV_REPLAN = 3,  /* the runner re-planned before frame: t1 - t0 = decision time */
    MB_EV_FALLBACK = 4, /* the frame was completed locally after a failure */
    MB_EV_QUEUE = 5     /* site's step waited for the node's shared compute (other
                         * sessions' steps): [t0 ready, t1 granted] */
} mb_event_kind;

typedef struct mb_event {
    uint32_t frame;
    int step;     /* plan step, -1 for none */
    int kind;     /* mb_event_kind */
    int site;     /* where it happened */
    int peer;     /* SEND: receiver; RECV: sender; else -1 */
    int op;       /* -1 for none */
    double t0, t1; /* seconds, monotonic clock of the runner after offset correction */
    int64_t bytes;
} mb_event;

typedef struct mb_timeline {
    int n, cap;
    mb_event *ev;
} mb_timeline;

void mb_timeline_init(mb_timeline *tl);
void mb_timeline_free(mb_timeline *tl);
int mb_timeline_add(mb_timeline *tl, const mb_event *e);

/* RESULT payload: u32 status (0 ok), error string, then events. */
int mb_result_encode(int status, const char *msg, const mb_event *ev, int n, mb_wbuf *b);
/* Appends decoded events to tl after shifting their times by +offset_s.
 * Sites and ops are range-checked against n_sites and n_ops. */
int mb_result_decode(const uint8_t *p, size_t len, int n_sites, int n_ops, double offset_s,
                     mb_timeline *tl, int *status, char *msg, size_t msglen, char *err,
                     size_t errlen);

/* t_origin: seconds subtracted from every time (the run's start). */
int mb_timeline_write_csv(const mb_timeline *tl, const mb_graph *g, const mb_topology *t,
                          double t_origin, const char *path, char *err, size_t errlen);
int mb_timeline_write_chrome(const mb_timeline *tl, const mb_graph *g, const mb_topology *t,
                             double t_origin, const char *path, char *err, size_t errlen);

#endif
