/* mecbed: the in-process executors. mb_exec_run runs a whole graph in one
 * process on one backend, in topological order, optionally timing every op. The per-op
 * profile is what cost models and `mecbed infer --profile` use.
 * mb_plan_execute runs a partition plan the same way, every site in this
 * process: the oracle that a split computes what the unsplit model does. */
#ifndef MECBED_EXEC_H
#define MECBED_EXEC_H

#include "mecbed/backend.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"

typedef struct mb_op_time {
    int node;
    double ms;  /* wall time of the op's compute call */
} mb_op_time;

typedef struct mb_exec_opts {
    int keep_all;          /* keep every intermediate tensor in outputs_all */
    mb_op_time *times;     /* if non-NULL, g->n_nodes entries filled */
    int repeats;           /* timing: run this many times, report the median (0 means 1) */
    int fuse;              /* a Conv whose only consumer is the next node, a residual Add
                              (other operand already computed, same shape) and/or an
                              activation (Relu, Clip, LeakyRelu, HardSigmoid, HardSwish,
                              Sigmoid), runs with them in one pass where the backend can
                              (cpu); their time then counts in the conv's and their own is 0.
                              MECBED_FUSE_ADD=0 leaves the Adds out */
} mb_exec_opts;

/* inputs: one tensor per MB_OP_INPUT node, in node order. On success *outputs
 * receives g->n_outputs new tensors (caller frees each with mb_tensor_free and
 * the array with free). If opts->keep_all, *all receives g->n_nodes tensors
 * (NULL for free nodes), caller frees. Returns 0 or -1 with err. */
int mb_exec_run(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, mb_tensor ***outputs,
                const mb_exec_opts *opts, mb_tensor ***all, char *err, size_t errlen);

/* Hand a tensor (one mb_exec_run returned, or any owning its data) back
 * to the executor's buffer arena, so the next call reuses its memory
 * instead of allocating and faulting in a new buffer: a generation loop
 * passes each step's KV cache back this way. NULL is ignored. */
void mb_exec_release(mb_tensor *t);

/* Seeded input tensors for every MB_OP_INPUT node (caller frees); NULL when
 * out of memory (mb_exec_memory_error says why). */
mb_tensor **mb_exec_make_inputs(const mb_graph *g, uint64_t seed);

/* -1 with err naming the op, its shape and size when one tensor of g (an
 * input or an op's output) is larger than this machine's memory: such a
 * model can be planned but not run here. 0 otherwise. mb_exec_run checks it
 * first. */
int mb_exec_check_memory(const mb_graph *g, char *err, size_t errlen);
/* The message for a failed allocation of g's tensors (`what`: "inputs",
 * "activations"): mb_exec_check_memory's when it applies, else a plain
 * out-of-memory message naming the model. */
void mb_exec_memory_error(const mb_graph *g, const char *what, char *err, size_t errlen);

/* Run a plan in one process: every site gets its own tensor store, COMPUTE
 * calls mb_backend_compute on the region from views of that site's store, SEND
 * copies the region into the receiver's store. inputs: one tensor per INPUT
 * node (as mb_exec_run). On success *outputs receives g->n_outputs tensors
 * taken from plan->device's store (caller frees each and the array). The plan
 * is validated first. Returns 0 or -1 with err. */
int mb_plan_execute(const mb_plan *p, const mb_graph *g, const mb_topology *t, mb_backend *be,
                    mb_tensor *const *inputs, mb_tensor ***outputs, char *err, size_t errlen);

#endif
