/* mecbed runtime, private: what node and runner share. The current plan and
 * its executor behind a read-write lock (receivers read; re-planning, which
 * only happens between frames, writes), and the loop that receives one
 * peer's TENSOR frames into the executor. */
#ifndef MECBED_RT_CONN_H
#define MECBED_RT_CONN_H

#include <pthread.h>

#include "mecbed/auth.h"
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

/* Connect to addr as a client: HELLO (role, site, epoch, hash, model
 * name) and the challenge-response with auth (auth.h), within timeout_s in
 * all; a handshake cut before any verdict (the other side crowded with
 * unauthenticated connections) is tried again. Returns the fd, or -1 with
 * err and *refused = 1 when the handshake (not the connect) failed.
 * *t_hello (may be NULL): when the successful attempt's HELLO went out. */
int rt_connect_hello(const char *addr, const mb_auth *auth, int role, int site, uint32_t epoch, uint64_t hash,
                     const char *model, double timeout_s, double *t_hello, int *refused, char *err,
                     size_t errlen);

/* The host part of "host:port" (or of a socket's peer) as a numeric IPv4
 * address; -1 when it does not resolve. */
int rt_addr_host(const char *addr, char *ip, size_t iplen);

#endif
