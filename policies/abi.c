/* Compile-time guard of the policy plugin ABI (policy.h): every struct a
 * plugin sees, field by field, tied to MB_POLICY_ABI_VERSION. Moving,
 * adding or removing a field without bumping the version (and writing the
 * new version's layout here) fails the build, as SQLite pins sqlite3_vfs's
 * iVersion to its fields. No code: only static assertions. */
#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"
#include "mecbed/policy.h"
#include "mecbed/topology.h"

#if MB_POLICY_ABI_VERSION != 3
#error "MB_POLICY_ABI_VERSION changed: write that version's layout below (and keep the rules in policy.h)"
#endif

#define PTR sizeof(void *)
#define ABI_ASSERT(cond, what) _Static_assert(cond, what ": bump MB_POLICY_ABI_VERSION")

/* The values plugins compare against must be the host's. */
ABI_ASSERT(MB_SITE_DEVICE == (int)MB_ROLE_DEVICE && MB_SITE_EDGE == (int)MB_ROLE_EDGE &&
               MB_SITE_CLOUD == (int)MB_ROLE_CLOUD,
           "MB_SITE_* differ from mb_role");
ABI_ASSERT(MB_OBJ_LATENCY == 0 && MB_OBJ_ENERGY == 1 && sizeof(mb_objective) == sizeof(int),
           "mb_objective changed");

ABI_ASSERT(sizeof(mb_region) == 4 * sizeof(int64_t) && offsetof(mb_region, h0) == 0 &&
               offsetof(mb_region, h1) == 8 && offsetof(mb_region, w0) == 16 &&
               offsetof(mb_region, w1) == 24,
           "mb_region changed");

ABI_ASSERT(offsetof(mb_cut, value_ms) == 0 && offsetof(mb_cut, n_server_ops) == sizeof(double) &&
               sizeof(mb_cut) == 2 * sizeof(double),
           "mb_cut changed");

/* mb_host: the version and size, then function pointers in this order. */
#define HOST_FNS(X)                                                                                \
    X(log) X(graph_n_nodes) X(graph_n_outputs) X(graph_output) X(node_name) X(node_op)             \
    X(node_kind) X(node_n_inputs) X(node_input) X(node_out_dims) X(node_out_bytes) X(node_macs)    \
    X(node_local) X(graph_consumers) X(node_input_region) X(node_full_region) X(topo_n_sites)      \
    X(site_role) X(site_name) X(profile_ms) X(op_ms) X(region_ms) X(xfer_ms) X(rate_bps)          \
    X(delay_ms) X(compute_w) X(idle_w) X(plan_new) X(plan_free) X(plan_clear) X(plan_compute)     \
    X(plan_send) X(plan_assign) X(plan_metric_set) X(plan_set_note) X(plan_set_cut_value)         \
    X(plan_evaluate) X(plan_pred) X(plan_n_steps) X(mincut) X(opt_double) X(opt_string) X(now)

#define HOST_IDX(f) HOST_IDX_##f,
enum { HOST_FNS(HOST_IDX) HOST_N_FNS };
#define HOST_BASE (offsetof(mb_host, struct_size) + sizeof(size_t))
ABI_ASSERT(offsetof(mb_host, abi_version) == 0 && offsetof(mb_host, struct_size) == sizeof(size_t),
           "mb_host's header changed");
#define HOST_AT(f) ABI_ASSERT(offsetof(mb_host, f) == HOST_BASE + HOST_IDX_##f * PTR, "mb_host." #f " moved");
HOST_FNS(HOST_AT)
ABI_ASSERT(sizeof(mb_host) == HOST_BASE + HOST_N_FNS * PTR, "mb_host's size changed");

/* mb_policy_ops: version and size, then pointers in this order. */
#define OPS_PTRS(X) X(name) X(summary) X(option_keys) X(init) X(fini) X(plan) X(replan) X(options)
#define OPS_IDX(f) OPS_IDX_##f,
enum { OPS_PTRS(OPS_IDX) OPS_N_PTRS };
#define OPS_BASE (offsetof(mb_policy_ops, struct_size) + sizeof(size_t))
ABI_ASSERT(offsetof(mb_policy_ops, abi_version) == 0 &&
               offsetof(mb_policy_ops, struct_size) == sizeof(size_t),
           "mb_policy_ops's header changed");
#define OPS_AT(f) ABI_ASSERT(offsetof(mb_policy_ops, f) == OPS_BASE + OPS_IDX_##f * PTR, "mb_policy_ops." #f " moved");
OPS_PTRS(OPS_AT)
ABI_ASSERT(sizeof(mb_policy_ops) == OPS_BASE + OPS_N_PTRS * PTR, "mb_policy_ops's size changed");

/* mb_policy_option (version 3): name, type, default, help. */
ABI_ASSERT(offsetof(mb_policy_option, name) == 0 && offsetof(mb_policy_option, type) == PTR &&
               offsetof(mb_policy_option, dflt) == 2 * PTR &&
               offsetof(mb_policy_option, help) == 3 * PTR && sizeof(mb_policy_option) == 4 * PTR,
           "mb_policy_option changed");
ABI_ASSERT(MB_OPT_STRING == 0 && MB_OPT_NUMBER == 1 && MB_OPT_INT == 2 && MB_OPT_BOOL == 3,
           "mb_option_type changed");

/* mb_policy_input: four handles, device and objective, options and state. */
ABI_ASSERT(offsetof(mb_policy_input, host) == 0 && offsetof(mb_policy_input, g) == PTR &&
               offsetof(mb_policy_input, topo) == 2 * PTR &&
               offsetof(mb_policy_input, cost) == 3 * PTR &&
               offsetof(mb_policy_input, device) == 4 * PTR &&
               offsetof(mb_policy_input, objective) == 4 * PTR + sizeof(int) &&
               offsetof(mb_policy_input, options) == 4 * PTR + 2 * sizeof(int) &&
               offsetof(mb_policy_input, state) == 5 * PTR + 2 * sizeof(int) &&
               sizeof(mb_policy_input) == 6 * PTR + 2 * sizeof(int),
           "mb_policy_input changed");
