/* mecbed runtime, private: one site's executor of a plan. Shared by the node
 * server (edge/cloud) and the device runner.
 *
 * Each step that concerns this site (a COMPUTE here, a SEND from here, a
 * SEND to here) waits for the earlier steps here that produce what it needs
 * (plan order is a valid schedule, so waiting only on earlier steps cannot
 * deadlock). A compute thread runs ready COMPUTE steps, one sender thread per
 * receiving peer writes ready SEND steps, and receiver threads (owned by the
 * caller) hand in arriving regions: computing, sending and receiving overlap.
 * Several frames may be in flight (streams); lower frames go first. */
#ifndef MECBED_RT_EXEC_H
#define MECBED_RT_EXEC_H

#include <pthread.h>
#include <stdint.h>

#include "mecbed/backend.h"
#include "mecbed/runtime.h"
#include "mecbed/plan.h"
#include "mecbed/timeline.h"
#include "mecbed/topology.h"

#define RT_MAX_INFLIGHT 4
#define RT_RECENT 64 /* frame ids remembered after they are taken (rt_exec.c) */

typedef struct rt_exec rt_exec;

/* out_fd[s]: connected data socket to site s for every site this one sends
 * to (-1 elsewhere); the executor writes to them but does not close them.
 * be is used by the compute thread only. names (optional, must outlive the
 * executor) names the sites in messages. */
rt_exec *rt_exec_new(const mb_graph *g, const mb_plan *p, int me, uint32_t epoch, mb_backend *be,
                     const int *out_fd, const mb_topology *names, char *err, size_t errlen);
/* A site's state across frames and plans (mb_plan_state: generation's KV
 * cache): tensors by key, owned here, kept as long as the run session on
 * this site. An executor reads its state inputs from it and writes its
 * state outputs into it when a frame ends (under the executor's lock; one
 * executor uses a state at a time). */
typedef struct rt_state rt_state;
rt_state *rt_state_new(void);
void rt_state_free(rt_state *st);
/* Bytes held, and the number of tensors. */
int64_t rt_state_bytes(const rt_state *st, int *n);
/* Before the first frame: the state the plan's bindings on this site use
 * (NULL: none; a frame needing it then fails). */
void rt_exec_set_state(rt_exec *x, rt_state *st);

/* Stops the threads (shutting the sockets down for writing is the caller's). */
void rt_exec_free(rt_exec *x);

/* Start a frame. inputs: one tensor per INPUT node (device only; NULL
 * elsewhere), borrowed until the frame is taken. 0, or -1 when the frame
 * window is full or the frame exists. */
int rt_exec_begin(rt_exec *x, uint32_t frame, mb_tensor *const *inputs, char *err, size_t errlen);

/* Receiver side: a TENSOR header for `frame` from `from` arrived (validated).
 * Returns a buffer of data_bytes to read into (owned by the executor), or
 * NULL with err (frame window full, executor failed). Then call
 * rt_exec_received(). */
float *rt_exec_recv_buffer(rt_exec *x, uint32_t frame, const mb_tensor_hdr *h, char *err,
                           size_t errlen);
void rt_exec_received(rt_exec *x, uint32_t frame, const mb_tensor_hdr *h, int from, float *buf,
                      double t0, double t1);

/* Mark the executor failed (peer lost, bad frame): every waiter wakes. */
void rt_exec_fail(rt_exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 and the message when failed. */
int rt_exec_failed(rt_exec *x, char *msg, size_t len);

/* Wait until this site's part of `frame` is done, the executor failed, or
 * the deadline (mb_now() seconds, <= 0: none) passed. 0 done, -1 otherwise
 * with err. */
int rt_exec_wait(rt_exec *x, uint32_t frame, double deadline, char *err, size_t errlen);
/* The lowest finished frame, if any: 1 and *frame, else 0. Blocks until one
 * finishes, the executor fails (-1) or the deadline passes (0). */
int rt_exec_next_done(rt_exec *x, double deadline, uint32_t *frame);
/* Take a finished frame: its events (appended to tl, may be NULL) and, on
 * the device, copies of the graph outputs (*outputs, g->n_outputs tensors,
 * may be NULL). Frees the frame's state. 0 or -1 when not finished. */
int rt_exec_take(rt_exec *x, uint32_t frame, mb_timeline *tl, mb_tensor ***outputs, char *err,
                 size_t errlen);
/* Number of steps this site takes part in. */
int rt_exec_my_steps(const rt_exec *x);
/* Where this site keeps a frame's tensors (rt_mem.h), for tests. */
struct rt_mem_plan;
const struct rt_mem_plan *rt_exec_mem(const rt_exec *x);
/* Under modelled step timing (mb_rt_set_step_timing): how many COMPUTE
 * steps this machine finished after their modelled end, and by how much in
 * total (wall seconds). */
void rt_exec_overruns(rt_exec *x, int *n, double *late_s);

#endif
