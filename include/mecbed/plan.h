/* mecbed: partition plans, the one form every policy produces and the
 * runtime executes.
 *
 * A plan is an ordered list of steps over the sites of an mb_topology:
 *   COMPUTE (op, region, site): site computes that output region of op;
 *   SEND (op, region, from, to): from ships that region of op's output to to.
 * A whole op is its full region (mb_node_full_region); tile and
 * operator-level splits use rectangles of 4-D outputs (rows and columns, all
 * channels). The order is a valid sequential schedule: every step only needs
 * what earlier steps made available, so each site can run its own steps in
 * plan order (blocking on receives) and the whole plan can run in one
 * process (mb_plan_execute in exec.h, `mecbed plan --verify`).
 *
 * Free nodes: MB_OP_INPUT tensors exist on plan->device at time 0 and
 * MB_OP_CONSTANT tensors exist on every site; plans contain no steps for them
 * (a SEND of the input is how it reaches a server).
 *
 * Rules the validator (mb_plan_validate) enforces, with an error naming the
 * step:
 *  - sites, ops and regions are in range; a non-local op (and any op whose
 *    output is not 4-D) is only ever computed whole;
 *  - every input region a COMPUTE step needs (mb_node_input_region) is on its
 *    site by then, computed there or received; so is every region a SEND ships;
 *  - no site computes the same element of an op twice (different sites may
 *    overlap: halos recomputed by tile plans; the overlap is reported);
 *  - every op the outputs depend on is computed in full, and every graph
 *    output is on plan->device at the end.
 * With state bindings (mb_plan_state), a bound input exists at time 0 on its
 * binding's site (not on the device), and a bound output must end on its
 * binding's site instead of the device. */
#ifndef MECBED_PLAN_H
#define MECBED_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "mecbed/graph.h"
#include "mecbed/topology.h"

typedef enum mb_step_kind { MB_STEP_COMPUTE = 0, MB_STEP_SEND = 1 } mb_step_kind;

typedef struct mb_plan_step {
    mb_step_kind kind;
    int op;           /* node whose output (region) is computed or sent */
    mb_region region; /* in op's full output frame */
    int site;         /* COMPUTE: where it runs; SEND: the sender */
    int to;           /* SEND: the receiver; -1 for COMPUTE */
    /* Filled by mb_plan_evaluate (cost.h): predicted times in ms from the
     * frame's start. For a SEND, end is the arrival at `to`. */
    double t_start_ms, t_end_ms;
} mb_plan_step;

/* What the cost model predicts for a plan (mb_plan_evaluate), plus what the
 * policy reports about itself. */
typedef struct mb_plan_pred {
    double latency_ms;        /* input on the device -> every output back on the device */
    double energy_mj;         /* device side: compute + idle + radio (energy.h) */
    double energy_system_mj;  /* every site's compute and idle energy + the device's radio */
    double device_compute_ms; /* device busy time */
    double radio_mj;          /* the device radio's part of energy_mj */
    int64_t bytes_up;         /* bytes leaving the device */
    int64_t bytes_down;       /* bytes arriving at the device */
    int64_t bytes_backbone;   /* bytes between servers (edge <-> cloud, edge <-> edge) */
    int64_t redundant_elems;  /* output elements computed on more than one site (halos) */
    double decision_us;       /* wall time of the policy's plan() call, set by the host */
    double cut_value_ms;      /* min-cut family: the cut's value; NAN for other policies */
} mb_plan_pred;

#define MB_PLAN_MAX_METRICS 24

/* State kept on a site across frames (generation's KV cache,
 * docs/generation.md): on `site`, graph INPUT in_op (-1: none) is read from
 * the site's state slot `key` instead of arriving from the device, and
 * graph output out_op (-1: none), computed on `site`, is kept in that slot
 * when the frame ends instead of returning to the device. So a layer's
 * present K/V of step t becomes its past K/V of step t+1 where the layer
 * runs, never crossing a link. The slot lives as long as the run session on
 * that site (a later plan, even for another graph, reads what an earlier
 * one kept under the same key). */
typedef struct mb_plan_state {
    int site;
    int in_op, out_op;
    uint32_t key;
} mb_plan_state;

#define MB_PLAN_MAX_STATE 128

/* Policy-specific figures (e.g. "rounds", "server_util", "k_edges"). */
typedef struct mb_plan_metric {
    char name[32];
    double value;
} mb_plan_metric;

typedef struct mb_plan {
    char policy[32];
    char model[MB_NAME_LEN];
    uint64_t graph_hash;   /* mb_graph_hash of the graph it was made for; 0: not recorded
                            * (hashing reads every weight, so only plan files carry it:
                            * `mecbed plan` sets it before writing, mb_plan_from_json checks it) */
    int device;            /* site where the input is produced and the outputs must end */
    int n_steps, cap_steps;
    mb_plan_step *steps;
    mb_plan_pred pred;
    int n_metrics;
    mb_plan_metric metrics[MB_PLAN_MAX_METRICS];
    char note[256];        /* one line from the policy, e.g. "cut after conv3_2" */
    /* The fraction of each server's compute the plan's device holds when
     * several devices share it (0 < share <= 1; 0: none, the node serves
     * first come first served). Set by resource-sharing policies (dds); a
     * node runs this device's steps at share x its speed (docs/runtime.md,
     * "Several devices"); mb_plan_evaluate_shared predicts it. */
    double share[MB_MAX_SITES];
    int n_state;           /* state bindings (generation); 0 for every policy's plan */
    mb_plan_state state[MB_PLAN_MAX_STATE];
} mb_plan;

/* graph_hash is left 0 (hashing reads every weight); g may be NULL. */
mb_plan *mb_plan_new(const char *policy, const mb_graph *g, int device);
void mb_plan_free(mb_plan *p);
/* Drop every step and metric (header and device kept): for replanning. */
void mb_plan_clear(mb_plan *p);
mb_plan *mb_plan_clone(const mb_plan *p);

/* Append steps. Return the step's index, or -1 on allocation failure. */
int mb_plan_compute(mb_plan *p, int op, int site, mb_region r);
int mb_plan_send(mb_plan *p, int op, mb_region r, int from, int to);
/* Set (or overwrite) a named metric; -1 when the table is full. */
int mb_plan_metric_set(mb_plan *p, const char *name, double value);
/* NAN when absent. */
double mb_plan_metric_get(const mb_plan *p, const char *name);
/* Whether any site has a share (mb_plan.share). */
int mb_plan_has_shares(const mb_plan *p);

/* The common case for whole-op policies: site_of_op[i] says where node i
 * runs (entries for INPUT/CONSTANT nodes are ignored). Appends, in
 * topological order, a COMPUTE of every needed op at its site and a SEND of
 * a whole tensor the first time a consumer on another site needs it (the
 * input from plan->device; one send per tensor and destination however many
 * consumers), then sends of outputs not computed on the device back to it.
 * Returns 0, or -1 with err on a bad site index. */
int mb_plan_assign(mb_plan *p, const mb_graph *g, const int *site_of_op, char *err,
                   size_t errlen);

/* Check the rules above. Returns 0, or -1 with a message naming the first
 * offending step (or op) in err. */
int mb_plan_validate(const mb_plan *p, const mb_graph *g, const mb_topology *t, char *err,
                     size_t errlen);

/* JSON: {"policy","model","graph_hash","device","sites":[names],
 * "pred":{...},"metrics":{...},"note", "steps":[{"kind":"compute"|"send",
 * "op","op_name","region":[h0,h1,w0,w1],"site"|"from","to","t_start_ms",
 * "t_end_ms"}], and "shares":{site name: share} when the plan has shares}. with_steps = 0 leaves "steps" out. Returns a malloc'd
 * string (caller frees) or NULL. */
char *mb_plan_to_json(const mb_plan *p, const mb_graph *g, const mb_topology *t, int with_steps);
/* Read what mb_plan_to_json wrote (sites by name in t, ops by name in g).
 * NULL with err naming the field on malformed input. */
mb_plan *mb_plan_from_json(const char *text, const mb_graph *g, const mb_topology *t, char *err,
                           size_t errlen);
/* Human-readable summary: per site the ops it runs, the transfers, the prediction. */
void mb_plan_print(FILE *f, const mb_plan *p, const mb_graph *g, const mb_topology *t);

/* Where a plan puts the model, one definition for plan-mode and run-mode
 * results: ops computed on the device only, elsewhere only, or split
 * between them (inputs and constants not counted); the longest prefix in
 * topological order on the device alone and its last op ("input" when
 * empty, "(all on device)" when nothing leaves it); a hash of the steps
 * (equal plans, equal signature). */
typedef struct mb_plan_shape {
    int device_ops, server_ops, split_ops, cut_index;
    char cut_after[128];
    uint64_t signature;
} mb_plan_shape;
void mb_plan_shape_of(const mb_plan *p, const mb_graph *g, mb_plan_shape *out);

#endif
