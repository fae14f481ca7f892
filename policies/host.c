/* The table of host functions lent to policies (mb_host), so plugins need
 * not link against mecbed. */
#include <math.h>
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

const mb_host mb_policy_host_table = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_host),
    .log = host_log,
    .graph_consumers = mb_graph_consumers,
    .node_input_region = mb_node_input_region,
    .node_full_region = mb_node_full_region,
    .profile_ms = host_profile_ms,
    .op_ms = mb_cost_op_ms,
    .region_ms = mb_cost_region_ms,
    .xfer_ms = mb_cost_xfer_ms,
    .rate_bps = mb_cost_rate_bps,
    .delay_ms = mb_cost_delay_ms,
    .compute_w = host_compute_w,
    .idle_w = host_idle_w,
    .plan_evaluate = mb_plan_evaluate,
    .plan_compute = mb_plan_compute,
    .plan_send = mb_plan_send,
    .plan_assign = mb_plan_assign,
    .plan_metric_set = mb_plan_metric_set,
    .plan_clear = mb_plan_clear,
    .mincut = mb_policy_mincut_sites,
    .opt_double = mb_policy_opt_double,
    .opt_string = mb_policy_opt_string,
    .now = mb_now,
};

const mb_host *mb_policy_host(void) { return &mb_policy_host_table; }
