/* mecbed runtime, private: what node and runner share. The current plan and
 * its executor behind a read-write lock (receivers read; re-planning, which
 * only happens between frames, writes), and the loop that receives one
 * peer's TENSOR frames into the executor. */
#ifndef MECBED_RT_CONN_H
#define MECBED_RT_CONN_H

#include <pthread.h>

#include "mecbed/wire.h"
#include "rt_exec.h"

typedef struct rt_host {
    pthread_rwlock_t lock;
    const mb_graph *g;
    const mb_plan *plan; /* NULL until the first plan */
    rt_exec *x;
    int me;
    uint32_t epoch;
    double timeout_s;    /* a frame's data may stall this long mid-frame */
    pthread_mutex_t mu;  /* with cv: waiting for the first plan */
    pthread_cond_t cv;
    int closing;
} rt_host;

void rt_host_init(rt_host *h);
void rt_host_destroy(rt_host *h);

/* Receive one peer's data connection until BYE, EOF or an error (after its
 * HELLO, which named the sending site). On a protocol violation sends ERROR
 * on fd and fails the executor with a message naming the peer. Returns 0 on
 * BYE/EOF between frames, -1 on error. Does not close fd. */
int rt_peer_receive(rt_host *h, int fd, int from, const char *from_name);

/* Peer HELLO (role PEER) for the data connection from `site`. */
int rt_send_hello(int fd, int role, int site, uint32_t epoch, uint64_t hash, const char *model,
                  char *err, size_t errlen);

#endif
