/* The table of host functions lent to policies (mb_host), so plugins need
 * not link against mecbed. */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "mecbed/cost.h"
#include "mecbed/platform.h"
#include "mincut.h"
#include "policy_util.h"

int mb_policy_verbose;

void mb_policy_set_verbose(int on)
{
    mb_policy_verbose = on;
}

static void host_log(int level, const char *policy, const char *fmt, ...)
{
    if (level > MB_LOG_WARN && !mb_policy_verbose)
        return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mecbed: policy %s: %s: ", policy ? policy : "?",
            names[level < 0 ? 0 : level > 3 ? 3 : level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double host_profile_ms(const mb_cost_model *c, int op)
{
    /* profile time = site time / factor of any site; site 0 always exists */
    double f = mb_cost_site_factor(c, 0);
    return f > 0 ? mb_cost_op_ms(c, 0, op) / f : 0;
}

static double host_compute_w(const mb_cost_model *c, int site)
{
    const mb_nodetype *t = mb_cost_site_type(c, site);
    return t ? t->compute_w : 0;
}

static double host_idle_w(const mb_cost_model *c, int site)
{
    const mb_nodetype *t = mb_cost_site_type(c, site);
    return t ? t->idle_w : 0;
}

int mb_policy_mincut_sites(const mb_cost_model *c, int device, int server, int *site_of_op,
                           mb_cut *cut, char *err, size_t errlen)
{
    const mb_graph *g = mb_cost_graph(c);
    mb_cut_costs cc;
    if (mb_cut_costs_from_model(c, device, server, &cc, err, errlen))
        return -1;
    int *srv = malloc(sizeof(int) * (size_t)g->n_nodes);
    if (!srv) {
        mb_cut_costs_free(&cc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double v = mb_dag_mincut(g, &cc, srv);
    mb_cut_costs_free(&cc);
    if (v < 0) {
        free(srv);
        snprintf(err, errlen, "min cut: out of memory");
        return -1;
    }
    int ns = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        site_of_op[i] = srv[i] ? server : device;
        ns += srv[i];
    }
    free(srv);
    if (cut) {
        cut->value_ms = v;
        cut->n_server_ops = ns;
    }
    return 0;
}

/* Options: "key=value,key=value". */
static const char *opt_find(const char *opts, const char *key, size_t *vlen)
{
    size_t kl = strlen(key);
    const char *s = opts;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > kl && !strncmp(s, key, kl) && s[kl] == '=') {
            *vlen = len - kl - 1;
            return s + kl + 1;
        }
        s = end ? end + 1 : NULL;
    }
    return NULL;
}

double mb_policy_opt_double(const char *opts, const char *key, double dflt)
{
    size_t n;
    const char *v = opt_find(opts, key, &n);
    if (!v)
        return dflt;
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*s", (int)(n < 63 ? n : 63), v);
    /* bool options (MB_OPT_BOOL) read as 1 or 0 */
    if (!strcmp(buf, "true") || !strcmp(buf, "yes"))
        return 1;
    if (!strcmp(buf, "false") || !strcmp(buf, "no"))
        return 0;
    char *end;
    double d = strtod(buf, &end);
    return end == buf || *end ? dflt : d;
}

const char *mb_policy_opt_string(const char *opts, const char *key, const char *dflt, char *buf,
                                 size_t len)
{
    size_t n;
    const char *v = opt_find(opts, key, &n);
    if (!v)
        return dflt;
    snprintf(buf, len, "%.*s", (int)n, v);
    return buf;
}

/* ---- accessors: plugins see the graph, topology and plan only through these ---- */

static int host_graph_n_nodes(const mb_graph *g) { return g->n_nodes; }
static int host_graph_n_outputs(const mb_graph *g) { return g->n_outputs; }

static int host_graph_output(const mb_graph *g, int k)
{
    return k >= 0 && k < g->n_outputs ? g->outputs[k] : -1;
}

/* Out-of-range nodes read as NULL/0 rather than crash the host on a plugin's bug. */
static const mb_node *node_at(const mb_graph *g, int i)
{
    return i >= 0 && i < g->n_nodes ? &g->nodes[i] : NULL;
}

static const char *host_node_name(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? n->name : NULL;
}

static const char *host_node_op(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? mb_op_name(n->type) : NULL;
}

static int host_node_kind(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    if (!n)
        return -1;
    return n->type == MB_OP_INPUT ? MB_NODE_INPUT
           : n->type == MB_OP_CONSTANT ? MB_NODE_CONSTANT
                                       : MB_NODE_OP;
}

static int host_node_n_inputs(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? n->n_inputs : 0;
}

static int host_node_input(const mb_graph *g, int i, int k)
{
    const mb_node *n = node_at(g, i);
    return n && k >= 0 && k < n->n_inputs ? n->inputs[k] : -1;
}

static int host_node_out_dims(const mb_graph *g, int i, int64_t *dims, int max)
{
    const mb_node *n = node_at(g, i);
    if (!n)
        return 0;
    for (int d = 0; dims && d < n->out_ndim && d < max; d++)
        dims[d] = n->out_dims[d];
    return n->out_ndim;
}

static int64_t host_node_out_bytes(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? n->out_bytes : 0;
}

static int64_t host_node_macs(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? n->macs : 0;
}

static int host_node_local(const mb_graph *g, int i)
{
    const mb_node *n = node_at(g, i);
    return n ? n->local : 0;
}

static int host_topo_n_sites(const mb_topology *t) { return t->n_sites; }

static int host_site_role(const mb_topology *t, int s)
{
    return s >= 0 && s < t->n_sites ? (int)t->sites[s].role : -1;
}

static const char *host_site_name(const mb_topology *t, int s)
{
    return s >= 0 && s < t->n_sites ? t->sites[s].name : NULL;
}

static void host_plan_set_note(mb_plan *p, const char *note)
{
    snprintf(p->note, sizeof(p->note), "%s", note ? note : "");
}

static void host_plan_set_cut_value(mb_plan *p, double v) { p->pred.cut_value_ms = v; }

static double host_plan_pred(const mb_plan *p, const char *field)
{
    const mb_plan_pred *r = &p->pred;
    static const struct {
        const char *name;
        size_t off;
        int is_int;
    } fields[] = {
        {"latency_ms", offsetof(mb_plan_pred, latency_ms), 0},
        {"energy_mj", offsetof(mb_plan_pred, energy_mj), 0},
        {"energy_system_mj", offsetof(mb_plan_pred, energy_system_mj), 0},
        {"device_compute_ms", offsetof(mb_plan_pred, device_compute_ms), 0},
        {"radio_mj", offsetof(mb_plan_pred, radio_mj), 0},
        {"bytes_up", offsetof(mb_plan_pred, bytes_up), 1},
        {"bytes_down", offsetof(mb_plan_pred, bytes_down), 1},
        {"bytes_backbone", offsetof(mb_plan_pred, bytes_backbone), 1},
        {"redundant_elems", offsetof(mb_plan_pred, redundant_elems), 1},
        {"cut_value_ms", offsetof(mb_plan_pred, cut_value_ms), 0},
    };
    for (size_t i = 0; field && i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!strcmp(field, fields[i].name)) {
            const char *base = (const char *)r + fields[i].off;
            return fields[i].is_int ? (double)*(const int64_t *)(const void *)base
                                    : *(const double *)(const void *)base;
        }
    return NAN;
}

static int host_plan_n_steps(const mb_plan *p) { return p->n_steps; }

const mb_host mb_policy_host_table = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_host),
    .log = host_log,
    .graph_n_nodes = host_graph_n_nodes,
    .graph_n_outputs = host_graph_n_outputs,
    .graph_output = host_graph_output,
    .node_name = host_node_name,
    .node_op = host_node_op,
    .node_kind = host_node_kind,
    .node_n_inputs = host_node_n_inputs,
    .node_input = host_node_input,
    .node_out_dims = host_node_out_dims,
    .node_out_bytes = host_node_out_bytes,
    .node_macs = host_node_macs,
    .node_local = host_node_local,
    .graph_consumers = mb_graph_consumers,
    .node_input_region = mb_node_input_region,
    .node_full_region = mb_node_full_region,
    .topo_n_sites = host_topo_n_sites,
    .site_role = host_site_role,
    .site_name = host_site_name,
    .profile_ms = host_profile_ms,
    .op_ms = mb_cost_op_ms,
    .region_ms = mb_cost_region_ms,
    .xfer_ms = mb_cost_xfer_ms,
    .rate_bps = mb_cost_rate_bps,
    .delay_ms = mb_cost_delay_ms,
    .compute_w = host_compute_w,
    .idle_w = host_idle_w,
    .plan_new = mb_plan_new,
    .plan_free = mb_plan_free,
    .plan_clear = mb_plan_clear,
    .plan_compute = mb_plan_compute,
    .plan_send = mb_plan_send,
    .plan_assign = mb_plan_assign,
    .plan_metric_set = mb_plan_metric_set,
    .plan_set_note = host_plan_set_note,
    .plan_set_cut_value = host_plan_set_cut_value,
    .plan_evaluate = mb_plan_evaluate,
    .plan_pred = host_plan_pred,
    .plan_n_steps = host_plan_n_steps,
    .mincut = mb_policy_mincut_sites,
    .opt_double = mb_policy_opt_double,
    .opt_string = mb_policy_opt_string,
    .now = mb_now,
};

const mb_host *mb_policy_host(void) { return &mb_policy_host_table; }
