/* mecbed: partition policies as plugins. The one header a policy author
 * needs, and the whole of what a plugin may see (docs/plugins.md walks
 * through policies/examples/). Host-side functions (registry, loader,
 * sessions) are in policy_host.h.
 *
 * Modelled on Linux's tcp_congestion_ops and SQLite's sqlite3_vfs: a policy
 * is a struct of callbacks with a name. `plan` is required; `init`, `fini`
 * and `replan` are optional (NULL). The host rejects a struct without
 * `plan`, without a name, with a duplicate name, or built for an ABI it does
 * not speak. Built-in policies register through the same call as plugins.
 *
 * ABI rules: the graph, node, topology, plan and cost model are opaque
 * handles; a plugin reads and builds them only through the functions of the
 * mb_host table handed to it, so their layouts can change freely. The
 * structs below are the whole ABI: mb_policy_ops and mb_host carry their
 * version and size and only ever grow at their end (a field added in version
 * N is read only when the other side's version is >= N). policies/abi.c
 * ties MB_POLICY_ABI_VERSION to the size and offset of every field here, so
 * a layout change that does not bump the version fails to compile. Plugins
 * never link against mecbed.
 *
 * An external plugin is a shared object exporting
 *     const mb_policy_ops *mb_policy_plugin(const mb_host *host);
 * (MB_POLICY_PLUGIN_SYMBOL). The host dlopens it by path, or by name as
 * <dir>/<name>.so along the plugin path ($MECBED_PLUGIN_PATH, the current
 * folder, <binary's dir>/plugins, the install prefix: docs/plugins.md);
 * a policy name that is not registered is looked up there too. Build one
 * against an installed mecbed with `pkg-config --cflags mecbed`. */
#ifndef MECBED_POLICY_H
#define MECBED_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* 2: opaque handles and accessors instead of the graph/plan/topology
 * layouts; plan new/free, declared option keys. Version 1 plugins read
 * layouts that are no longer part of the ABI and are refused.
 * 3: mb_policy_ops.options: declared options with a type, a default and a
 * help line (`mecbed policies` lists them; the host checks values against
 * the type). Version 2 plugins still load: their option_keys are used. */
#define MB_POLICY_ABI_VERSION 3
#define MB_POLICY_PLUGIN_SYMBOL "mb_policy_plugin"

/* Opaque to plugins: reached only through mb_host. */
typedef struct mb_graph mb_graph;
typedef struct mb_topology mb_topology;
typedef struct mb_plan mb_plan;
typedef struct mb_cost_model mb_cost_model;

/* A rectangle of a 4-D NCHW output: rows [h0,h1), columns [w0,w1), all
 * batches and channels, in the full tensor's frame (tensor.h holds the same
 * definition for the host). */
#ifndef MB_REGION_DEFINED
#define MB_REGION_DEFINED
typedef struct mb_region {
    int64_t h0, h1, w0, w1;
} mb_region;
#endif

typedef enum mb_objective { MB_OBJ_LATENCY = 0, MB_OBJ_ENERGY = 1 } mb_objective;
enum { MB_LOG_ERROR = 0, MB_LOG_WARN, MB_LOG_INFO, MB_LOG_DEBUG };
/* host->node_kind: graph inputs (on the device at time 0), constants (free on
 * every site, never planned) and operators. */
enum { MB_NODE_INPUT = 0, MB_NODE_CONSTANT = 1, MB_NODE_OP = 2 };
/* host->site_role; the same values as topology.h's mb_role. */
enum { MB_SITE_DEVICE = 0, MB_SITE_EDGE = 1, MB_SITE_CLOUD = 2 };

/* Two-site min-cut result (mb_host.mincut). */
typedef struct mb_cut {
    double value_ms;   /* the cut's capacity: device compute + transfers + server compute */
    int n_server_ops;  /* ops on the server side */
} mb_cut;

/* A declared --policy-opt option (ABI version 3). The host refuses keys a
 * policy does not declare and values that do not parse as the type, before
 * init; the policy reads values with opt_double/opt_string as before. */
typedef enum mb_option_type {
    MB_OPT_STRING = 0, /* any text */
    MB_OPT_NUMBER = 1, /* a finite number (strtod) */
    MB_OPT_INT = 2,    /* a whole number */
    MB_OPT_BOOL = 3    /* 0, 1, true, false, yes, no */
} mb_option_type;

typedef struct mb_policy_option {
    const char *name; /* the key; NULL ends the array */
    int type;         /* mb_option_type */
    const char *dflt; /* the default as text, for help and listings ("": decided by the policy) */
    const char *help; /* one line */
} mb_policy_option;

/* Functions the host lends to policies. Version 2. Node indices are in
 * topological order: a node's inputs have smaller indices. */
typedef struct mb_host {
    int abi_version;    /* MB_POLICY_ABI_VERSION of the host */
    size_t struct_size; /* sizeof(mb_host) in the host */

    /* Logging to mecbed's stderr, prefixed with the policy's name; shown at
     * MB_LOG_INFO and above only with --verbose. */
    void (*log)(int level, const char *policy, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* The graph. */
    int (*graph_n_nodes)(const mb_graph *g);
    int (*graph_n_outputs)(const mb_graph *g);
    int (*graph_output)(const mb_graph *g, int k); /* node index of output k */
    const char *(*node_name)(const mb_graph *g, int node);
    const char *(*node_op)(const mb_graph *g, int node); /* ONNX op type: "Conv", ... */
    int (*node_kind)(const mb_graph *g, int node);        /* MB_NODE_* */
    int (*node_n_inputs)(const mb_graph *g, int node);
    int (*node_input)(const mb_graph *g, int node, int k); /* producer of input k */
    /* Output rank; the first max dims go to dims (may be NULL). */
    int (*node_out_dims)(const mb_graph *g, int node, int64_t *dims, int max);
    int64_t (*node_out_bytes)(const mb_graph *g, int node);
    int64_t (*node_macs)(const mb_graph *g, int node);
    /* 1: any output rectangle is computable from an input rectangle. */
    int (*node_local)(const mb_graph *g, int node);
    /* Consumers of node (up to max into out); returns how many there are. */
    int (*graph_consumers)(const mb_graph *g, int node, int *out, int max);
    mb_region (*node_input_region)(const mb_graph *g, int node, int k, mb_region r);
    mb_region (*node_full_region)(const mb_graph *g, int node);

    /* The topology. */
    int (*topo_n_sites)(const mb_topology *t);
    int (*site_role)(const mb_topology *t, int site); /* MB_SITE_* */
    const char *(*site_name)(const mb_topology *t, int site);

    /* Profile and cost queries (cost.h). */
    double (*profile_ms)(const mb_cost_model *c, int op); /* on the profiled machine */
    double (*op_ms)(const mb_cost_model *c, int site, int op);
    double (*region_ms)(const mb_cost_model *c, int site, int op, mb_region r);
    double (*xfer_ms)(const mb_cost_model *c, int from, int to, int64_t bytes);
    double (*rate_bps)(const mb_cost_model *c, int from, int to);
    double (*delay_ms)(const mb_cost_model *c, int from, int to);
    double (*compute_w)(const mb_cost_model *c, int site);
    double (*idle_w)(const mb_cost_model *c, int site);

    /* Plans. The host creates the plan a policy fills (plan's out); a policy
     * makes its own only for candidates (free them with plan_free). */
    mb_plan *(*plan_new)(const char *policy, const mb_graph *g, int device);
    void (*plan_free)(mb_plan *p);
    void (*plan_clear)(mb_plan *p); /* drop steps and metrics: for replanning */
    /* Append a step; return its index or -1 (out of memory). */
    int (*plan_compute)(mb_plan *p, int op, int site, mb_region r);
    int (*plan_send)(mb_plan *p, int op, mb_region r, int from, int to);
    /* Whole-op placement: site_of_op[i] for every node (plan.h's mb_plan_assign). */
    int (*plan_assign)(mb_plan *p, const mb_graph *g, const int *site_of_op, char *err,
                       size_t errlen);
    int (*plan_metric_set)(mb_plan *p, const char *name, double value);
    void (*plan_set_note)(mb_plan *p, const char *note);
    void (*plan_set_cut_value)(mb_plan *p, double cut_value_ms);
    /* Evaluate a candidate plan under the cost model exactly as the host will
     * judge the final one; then read the prediction with plan_pred. */
    int (*plan_evaluate)(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen);
    /* A predicted figure by name: "latency_ms", "energy_mj",
     * "energy_system_mj", "device_compute_ms", "radio_mj", "bytes_up",
     * "bytes_down", "bytes_backbone", "redundant_elems", "cut_value_ms".
     * NAN for an unknown name. */
    double (*plan_pred)(const mb_plan *p, const char *field);
    int (*plan_n_steps)(const mb_plan *p);

    /* Two-site DAG min cut (DADS): device vs server, input pinned to device,
     * outputs returned to device. site_of_op (one per node) receives device
     * or server per op. Returns 0 or -1 with err. */
    int (*mincut)(const mb_cost_model *c, int device, int server, int *site_of_op, mb_cut *cut,
                  char *err, size_t errlen);

    /* Policy options ("key=value,key=value" from --policy-opt; the host has
     * already refused keys the policy did not declare). opt_double: the
     * value as a number (true/yes read 1, false/no 0), dflt when absent. */
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
    /* The --policy-opt keys the policy reads, NULL-terminated (NULL: none).
     * The host refuses any other key with an error naming it. Ignored when
     * `options` (version 3) is set. */
    const char *const *option_keys;

    /* Optional. Once per (model, topology) before any plan: offline work
     * that is not part of the decision time (CIC builds its splitting model
     * here). *state is handed back as in->state. */
    int (*init)(const mb_policy_input *in, void **state, char *err, size_t errlen);
    /* Optional. Frees what init made. */
    void (*fini)(void *state);
    /* Required. Append the plan's steps to out (created by the host with
     * policy, model and device set). May set the cut value, metrics and
     * note. The host times this call (decision_us), then validates and
     * evaluates the plan. Returns 0 or -1 with err (the host prefixes the
     * policy's name). */
    int (*plan)(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen);
    /* Optional. Conditions changed (in->cost updated): adjust prev into out
     * (out is empty). NULL: the host calls plan. */
    int (*replan)(const mb_policy_input *in, const mb_plan *prev, mb_plan *out, char *err,
                  size_t errlen);

    /* Version 3. The options the policy reads, with type, default and help,
     * ended by an entry whose name is NULL (NULL: use option_keys). */
    const mb_policy_option *options;
} mb_policy_ops;

#endif
