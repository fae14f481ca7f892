/* mecbed runtime, private: the memory plan of one site's executor.
 *
 * Profiles are measured by kernels/exec.c, which reuses an op's buffer as
 * soon as its last consumer has run, so memory-bound ops see warm caches.
 * The runtime must run ops the same way or its op times are not the
 * profile's. Here the tensors this site holds in a frame are assigned to
 * slots by liveness over the steps this site runs, and a frame's slots live
 * in one arena allocated (and faulted in) once per in-flight frame slot and
 * reused by every later frame.
 *
 * Steps of a site run concurrently (a compute thread, a sender per peer,
 * receivers), not in plan order, so "the last reader came earlier in plan
 * order" is not enough to reuse a buffer. A tensor B may take the slot of
 * an earlier tensor A only when every step that touches A (writes or reads
 * it) is an ancestor, through the executor's own dependencies, of every step
 * that writes B: then B's writers cannot start before A is dead, and no
 * dependency is added, so the schedule is exactly the one without reuse.
 * Consequences: a received tensor's first write has no local ancestor, so it
 * never lands in a reused slot; a tensor shipped by a SEND is never
 * reused after it (nothing waits for a send), so a compute never waits for
 * a transfer to free its buffer; graph outputs on the device are kept. */
#ifndef MECBED_RT_MEM_H
#define MECBED_RT_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/plan.h"

/* A step's part on this site (rt_exec's analysis). */
enum { RT_ROLE_NONE = 0, RT_ROLE_COMPUTE, RT_ROLE_SEND, RT_ROLE_RECV };

/* Above this many steps on one site the ancestor sets (n^2 bits) are not
 * built and every tensor keeps its own slot (the layout without reuse). */
#define RT_MEM_MAX_STEPS 8192

typedef struct rt_mem_plan {
    int n_slots;
    int *slot_of;     /* per op: its slot, -1 when borrowed (constants, the device's inputs) or absent */
    size_t *slot_off; /* per slot: offset in a frame's arena, floats */
    size_t *recv_off; /* per step: where a partial-region RECV lands in the arena (floats) */
    size_t *recv_len; /* per step: that landing area's length (floats), 0 for other steps */
    size_t arena_len; /* floats per frame */
    int n_held;       /* tensors held on this site */
    int n_reused;     /* of them, placed in a slot an earlier tensor left */
} rt_mem_plan;

/* role: per plan step, RT_ROLE_*. dep_off/dep_list: per step, CSR of the
 * steps that wait for it (producer -> consumer, producers earlier in plan
 * order). me: this site. 0, or -1 with err (out of memory). */
int rt_mem_plan_build(rt_mem_plan *mp, const mb_graph *g, const mb_plan *p, int me, const uint8_t *role,
                      const int *dep_off, const int *dep_list, char *err, size_t errlen);
void rt_mem_plan_free(rt_mem_plan *mp);

#endif
