/* mecbed: partition policies as plugins. The one header a policy author needs
 * (docs/plugins.md walks through policies/examples/).
 *
 * Modelled on Linux's tcp_congestion_ops and SQLite's sqlite3_vfs: a policy
 * is a struct of callbacks with a name. `plan` is required; `init`, `fini`
 * and `replan` are optional (NULL). mb_policy_register() rejects a struct
 * without `plan`, without a name, with a duplicate name, or built for an ABI
 * this host does not speak. Built-in policies register through the same call.
 *
 * ABI rules: mb_policy_ops and mb_host carry their version and size and only
 * ever grow at their end; a field added in version N is read only when the
 * other side's version is >= N. Plugins never link against mecbed: every
 * mecbed function they need is in the mb_host table handed to them. They may
 * read the public structs (mb_graph, mb_node, mb_topology, mb_plan) directly.
 *
 * An external plugin is a shared object exporting
 *     const mb_policy_ops *mb_policy_plugin(const mb_host *host);
 * (MB_POLICY_PLUGIN_SYMBOL). mb_policy_load() dlopens it by path, or by name
 * from the plugin directory ($MECBED_PLUGIN_DIR, then <binary's dir>/plugins,
 * then PREFIX/lib/mecbed/plugins), as <dir>/<name>.so. */
#ifndef MECBED_POLICY_H
#define MECBED_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"

#define MB_POLICY_ABI_VERSION 1
#define MB_POLICY_PLUGIN_SYMBOL "mb_policy_plugin"

typedef struct mb_cost_model mb_cost_model; /* cost.h; plugins reach it through mb_host */

typedef enum mb_objective { MB_OBJ_LATENCY = 0, MB_OBJ_ENERGY = 1 } mb_objective;
enum { MB_LOG_ERROR = 0, MB_LOG_WARN, MB_LOG_INFO, MB_LOG_DEBUG };

/* Two-site min-cut result (mb_host.mincut). */
typedef struct mb_cut {
    double value_ms;   /* the cut's capacity: device compute + transfers + server compute */
    int n_server_ops;  /* ops on the server side */
} mb_cut;

/* Functions the host lends to policies. Version 1. */
typedef struct mb_host {
    int abi_version;    /* MB_POLICY_ABI_VERSION of the host */
    size_t struct_size; /* sizeof(mb_host) in the host */

    /* Logging to mecbed's stderr, prefixed with the policy's name; shown at
     * MB_LOG_INFO and above only with --verbose. */
    void (*log)(int level, const char *policy, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Graph accessors (graph.h). */
    int (*graph_consumers)(const mb_graph *g, int node, int *out, int max);
    mb_region (*node_input_region)(const mb_graph *g, int node, int k, mb_region r);
    mb_region (*node_full_region)(const mb_graph *g, int node);

    /* Profile and cost queries (cost.h). */
    double (*profile_ms)(const mb_cost_model *c, int op);  /* on the profiled machine */
    double (*op_ms)(const mb_cost_model *c, int site, int op);
    double (*region_ms)(const mb_cost_model *c, int site, int op, mb_region r);
    double (*xfer_ms)(const mb_cost_model *c, int from, int to, int64_t bytes);
    double (*rate_bps)(const mb_cost_model *c, int from, int to);
    double (*delay_ms)(const mb_cost_model *c, int from, int to);
    double (*compute_w)(const mb_cost_model *c, int site);
    double (*idle_w)(const mb_cost_model *c, int site);
    /* Evaluate a candidate plan under the cost model: fills p->pred (latency,
     * energy, bytes) exactly as the host will judge the final plan. */
    int (*plan_evaluate)(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen);

    /* Building the plan (plan.h). */
    int (*plan_compute)(mb_plan *p, int op, int site, mb_region r);
    int (*plan_send)(mb_plan *p, int op, mb_region r, int from, int to);
    int (*plan_assign)(mb_plan *p, const mb_graph *g, const int *site_of_op, char *err,
                       size_t errlen);
    int (*plan_metric_set)(mb_plan *p, const char *name, double value);
    void (*plan_clear)(mb_plan *p);

    /* Two-site DAG min cut (DADS): device vs server, input pinned to device,
     * outputs returned to device. site_of_op (g->n_nodes) receives device or
     * server per op. Returns 0 or -1 with err. */
    int (*mincut)(const mb_cost_model *c, int device, int server, int *site_of_op, mb_cut *cut,
                  char *err, size_t errlen);

    /* Policy options ("key=value,key=value" from --policy-opt). */
    double (*opt_double)(const char *opts, const char *key, double dflt);
    /* Copies the value into buf; returns buf, or dflt when the key is absent. */
    const char *(*opt_string)(const char *opts, const char *key, const char *dflt, char *buf,
                              size_t len);
    /* Monotonic clock in seconds. */
    double (*now)(void);
} mb_host;

/* What a policy plans for. */
typedef struct mb_policy_input {
    const mb_host *host;
    const mb_graph *g;
    const mb_topology *topo;
    const mb_cost_model *cost;
    int device;          /* site of the device whose frame is planned */
    mb_objective objective;
    const char *options; /* "key=value,..." ("" when none) */
    void *state;         /* what init() stored (NULL without init) */
} mb_policy_input;

typedef struct mb_policy_ops {
    int abi_version;    /* MB_POLICY_ABI_VERSION the policy was built with */
    size_t struct_size; /* sizeof(mb_policy_ops) the policy was built with */
    const char *name;   /* [a-z0-9_-]+, unique */
    const char *summary;

    /* Optional. Once per (model, topology) before any plan: offline work
     * that is not part of the decision time (CIC builds its splitting model
     * here). *state is handed back as in->state. */
    int (*init)(const mb_policy_input *in, void **state, char *err, size_t errlen);
    /* Optional. Frees what init made. */
    void (*fini)(void *state);
    /* Required. Append the plan's steps to out (created by the host with
     * policy, model and device set). May set out->pred.cut_value_ms,
     * metrics and note. The host times this call (decision_us), then
     * validates and evaluates the plan. Returns 0 or -1 with err. */
    int (*plan)(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen);
    /* Optional. Conditions changed (in->cost updated): adjust prev into out
     * (out is empty). NULL: the host calls plan. */
    int (*replan)(const mb_policy_input *in, const mb_plan *prev, mb_plan *out, char *err,
                  size_t errlen);
} mb_policy_ops;

/* Registry. ops must stay valid while registered (static storage, or a
 * loaded plugin's). Returns 0 or -1 with err. */
int mb_policy_register(const mb_policy_ops *ops, char *err, size_t errlen);
int mb_policy_unregister(const char *name);
const mb_policy_ops *mb_policy_find(const char *name);
int mb_policy_count(void);
const mb_policy_ops *mb_policy_at(int i);
/* Register the built-ins (local, offload, layerwise, mincut, cic, tile,
 * oplevel, dds). Idempotent. */
void mb_policy_register_builtins(void);
/* dlopen a plugin by path (contains '/' or ends in .so) or by name, check
 * its ABI and register it. *name_out (optional) receives its name. */
int mb_policy_load(const char *path_or_name, const char **name_out, char *err, size_t errlen);

/* --verbose: let policies' MB_LOG_INFO/DEBUG messages through. */
void mb_policy_set_verbose(int on);

/* The host table mecbed hands to policies. */
const mb_host *mb_policy_host(void);

/* A policy bound to one model, topology and cost model: init once (offline
 * work), then plan or replan as conditions change, fini at the end. */
typedef struct mb_policy_session mb_policy_session;
mb_policy_session *mb_policy_session_new(const mb_policy_ops *ops, const mb_graph *g,
                                         const mb_topology *t, const mb_cost_model *c, int device,
                                         mb_objective obj, const char *options, char *err,
                                         size_t errlen);
/* prev NULL: plan(); else replan() (or plan() when the policy has none).
 * The plan is timed into decision_us, validated and evaluated. NULL + err. */
mb_plan *mb_policy_session_plan(mb_policy_session *s, const mb_plan *prev, char *err,
                                size_t errlen);
void mb_policy_session_free(mb_policy_session *s);

/* One-shot: session_new, session_plan, session_free. Run a policy: init (when given), plan timed into decision_us, validate,
 * evaluate. Returns a new plan or NULL with err. */
mb_plan *mb_policy_run(const mb_policy_ops *ops, const mb_graph *g, const mb_topology *t,
                       const mb_cost_model *c, int device, mb_objective obj, const char *options,
                       char *err, size_t errlen);

#endif
