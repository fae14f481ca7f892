/* mecbed sweep, plan mode: one point through the cost model in-process
 * (the same set-up as `mecbed plan`: model, topology, node types, profile,
 * cost model, policy), and the decision-time measurement. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/cost.h"
#include "mecbed/model.h"
#include "mecbed/nodetype.h"
#include "mecbed/plan.h"
#include "mecbed/policy_host.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"
#include "mecbed/sweep.h"

/* Graphs and profiles are loaded once per model (VGG16's weights take a
 * second to build). */
typedef struct graph_entry {
    char name[SW_STR];
    mb_graph *g;
    mb_profile *prof;
    const char *source;
} graph_entry;

static graph_entry *cache;
static int n_cache;

void sw_plan_cache_free(void)
{
    sw_gen_cache_free();
    for (int i = 0; i < n_cache; i++) {
        mb_graph_free(cache[i].g);
        mb_profile_free(cache[i].prof);
    }
    free(cache);
    cache = NULL;
    n_cache = 0;
}

static graph_entry *graph_get(const sw_config *c, const sw_point *p, char *err, size_t errlen)
{
    char name[SW_STR];
    if (p->dag_ops)
        snprintf(name, sizeof name, "dag:%d:%llu", p->dag_ops, (unsigned long long)c->dag_seed);
    else
        snprintf(name, sizeof name, "%s", p->model);
    for (int i = 0; i < n_cache; i++)
        if (!strcmp(cache[i].name, name))
            return &cache[i];
    graph_entry e = {0};
    snprintf(e.name, sizeof e.name, "%s", name);
    if (p->dag_ops) {
        e.g = sw_dag_generate(p->dag_ops, c->dag_seed);
        e.prof = e.g ? sw_dag_profile(e.g, c->dag_seed) : NULL;
        e.source = "synthetic";
        if (!e.prof) {
            snprintf(err, errlen, "out of memory generating a %d-op DAG", p->dag_ops);
            mb_graph_free(e.g);
            return NULL;
        }
    } else {
        char e2[1024];
        e.g = mb_model_load(p->model, e2, sizeof e2);
        if (!e.g) {
            snprintf(err, errlen, "model %s: %s", p->model, e2);
            return NULL;
        }
        e.prof = mb_profile_default(e.g, &e.source, e2, sizeof e2);
        if (!e.prof) {
            snprintf(err, errlen, "model %s: profile: %s", p->model, e2);
            mb_graph_free(e.g);
            return NULL;
        }
        if (c->require_pinned && strcmp(e.source, "pinned")) {
            snprintf(err, errlen,
                     "model %s: profile = pinned, but policies/profiles/%s.csv is missing or does not "
                     "match the model (got a %s one)",
                     p->model, p->model, e.source);
            mb_graph_free(e.g);
            mb_profile_free(e.prof);
            return NULL;
        }
    }
    graph_entry *nc = realloc(cache, (size_t)(n_cache + 1) * sizeof *nc);
    if (!nc) {
        mb_graph_free(e.g);
        mb_profile_free(e.prof);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cache = nc;
    cache[n_cache] = e;
    return &cache[n_cache++];
}

/* "dev/edge/cloud" node types onto the topology's sites (by role). */
int sw_apply_node_types(mb_topology *t, const char *spec, char *err, size_t errlen)
{
    if (!strcmp(spec, "-"))
        return 0;
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", spec);
    int role = 0;
    for (char *tok = strtok_r(buf, "/", &save); tok; tok = strtok_r(NULL, "/", &save), role++) {
        if (role > MB_ROLE_CLOUD) {
            snprintf(err, errlen, "node_types '%s': at most device/edge/cloud", spec);
            return -1;
        }
        if (!strcmp(tok, "-"))
            continue;
        for (int i = 0; i < t->n_sites; i++)
            if ((int)t->sites[i].role == role) {
                snprintf(t->sites[i].node_type, sizeof t->sites[i].node_type, "%s", tok);
                t->sites[i].line = 0; /* not the topology file's type= any more */
            }
    }
    return 0;
}

/* Where the plan puts the model (mb_plan_shape_of): the row's columns. */
static void plan_shape(const mb_plan *p, const mb_graph *g, sw_row *row)
{
    mb_plan_shape sh;
    mb_plan_shape_of(p, g, &sh);
    sw_row_set(row, "device_ops", "%d", sh.device_ops);
    sw_row_set(row, "server_ops", "%d", sh.server_ops);
    sw_row_set(row, "split_ops", "%d", sh.split_ops);
    sw_row_set(row, "cut_index", "%d", sh.cut_index);
    sw_row_set(row, "cut_after", "%s", sh.cut_after);
    sw_row_set(row, "plan_sig", "%016llx", (unsigned long long)sh.signature);
}

static void pred_cols(sw_row *row, const mb_plan *p, const sw_config *c, const mb_graph *g)
{
    sw_row_num(row, "latency_ms", p->pred.latency_ms);
    sw_row_num(row, "energy_mj", p->pred.energy_mj);
    sw_row_num(row, "energy_system_mj", p->pred.energy_system_mj);
    sw_row_num(row, "radio_mj", p->pred.radio_mj);
    sw_row_num(row, "device_compute_ms", p->pred.device_compute_ms);
    sw_row_set(row, "bytes_up", "%lld", (long long)p->pred.bytes_up);
    sw_row_set(row, "bytes_down", "%lld", (long long)p->pred.bytes_down);
    sw_row_set(row, "bytes_backbone", "%lld", (long long)p->pred.bytes_backbone);
    sw_row_num(row, "decision_us", p->pred.decision_us);
    sw_row_num(row, "cut_value_ms", p->pred.cut_value_ms);
    sw_row_set(row, "note", "%s", p->note);
    for (int i = 0; i < c->metrics.n; i++) {
        char col[64];
        snprintf(col, sizeof col, "m_%s", c->metrics.v[i]);
        sw_row_num(row, col, mb_plan_metric_get(p, c->metrics.v[i]));
    }
    plan_shape(p, g, row);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sw_plan_point(const sw_config *c, const sw_point *p, const char *extra_types, sw_row *row,
                  char *err, size_t errlen)
{
    if (c->measure == SW_MEASURE_GENERATION) {
        mb_nodetype_set *gt = calloc(1, sizeof *gt);
        int grc = -1;
        if (!gt)
            snprintf(err, errlen, "out of memory");
        else if (!mb_nodetypes_load_default(gt, err, errlen) &&
                 !(extra_types && mb_nodetypes_read(gt, extra_types, err, errlen)))
            grc = sw_gen_point(c, p, gt, row, err, errlen);
        free(gt);
        return grc;
    }
    mb_policy_register_builtins();
    graph_entry *ge = graph_get(c, p, err, errlen);
    if (!ge)
        return -1;
    const mb_graph *g = ge->g;
    sw_row_set(row, "ops", "%d", mb_graph_n_ops(g));
    sw_row_set(row, "profile", "%s", ge->source);
    mb_topology topo;
    char e2[1024];
    if (p->link[0] ? mb_topology_from_link(p->link, &topo, e2, sizeof e2)
                   : mb_topology_read(p->topology, &topo, e2, sizeof e2)) {
        snprintf(err, errlen, "%s%s", p->link[0] ? "link: " : "", e2);
        return -1;
    }
    if (sw_apply_node_types(&topo, p->node_types, err, errlen))
        return -1;
    int device = -1;
    for (int i = 0; i < topo.n_sites && device < 0; i++)
        if (topo.sites[i].role == MB_ROLE_DEVICE)
            device = i;
    if (device < 0) {
        snprintf(err, errlen, "%s: the topology has no device site", p->topology);
        return -1;
    }
    mb_nodetype_set *types = calloc(1, sizeof *types);
    if (!types) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (mb_nodetypes_load_default(types, err, errlen) ||
        (extra_types && mb_nodetypes_read(types, extra_types, err, errlen)) ||
        mb_nodetypes_check_sites(types, &topo, p->link[0] ? NULL : p->topology, err, errlen)) {
        free(types);
        return -1;
    }
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    mb_cost_model *cost = mb_cost_new(g, &topo, ge->prof, types, &o, err, errlen);
    free(types);
    if (!cost)
        return -1;
    char pname[64];
    const char *opts = strchr(p->policy, ':');
    snprintf(pname, sizeof pname, "%.*s", (int)(opts ? opts - p->policy : (long)strlen(p->policy)),
             p->policy);
    opts = opts ? opts + 1 : "";
    const mb_policy_ops *ops = mb_policy_find_or_load(pname, err, errlen);
    int rc = -1;
    if (!ops)
        goto out;
    if (c->measure == SW_MEASURE_PLAN) {
        mb_plan *pl = mb_policy_run(ops, g, &topo, cost, device, MB_OBJ_LATENCY, opts, err, errlen);
        if (!pl)
            goto out;
        pred_cols(row, pl, c, g);
        mb_plan_free(pl);
        rc = 0;
        goto out;
    }
    /* Decision time: init once (offline work, untimed), then plan at each of
     * decision_rates in turn, decision_repeats times; report the median. */
    mb_policy_session *s = mb_policy_session_new(ops, g, &topo, cost, device, MB_OBJ_LATENCY, opts,
                                                 err, errlen);
    if (!s)
        goto out;
    int n = c->decision_repeats;
    double *us = calloc((size_t)n, sizeof *us);
    mb_plan *last = NULL;
    for (int i = 0; us && i < n; i++) {
        if (c->decision_rates.n) {
            double mbps = strtod(c->decision_rates.v[i % c->decision_rates.n], NULL);
            for (int l = 0; l < topo.n_links; l++)
                if (topo.links[l].a == device || topo.links[l].b == device) {
                    double bps = mb_cost_goodput_bps(mbps * 1e6, topo.links[l].spec.mtu);
                    mb_cost_set_rate(cost, l, bps, bps);
                }
        }
        mb_plan *pl = mb_policy_session_plan(s, NULL, err, errlen);
        if (!pl) {
            n = -1;
            break;
        }
        us[i] = pl->pred.decision_us;
        mb_plan_free(last);
        last = pl;
    }
    if (n > 0 && us && last) {
        pred_cols(row, last, c, g);
        qsort(us, (size_t)n, sizeof *us, cmp_d);
        sw_row_num(row, "decision_us", n % 2 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]));
        sw_row_num(row, "decision_us_min", us[0]);
        rc = 0;
    } else if (!us)
        snprintf(err, errlen, "out of memory");
    free(us);
    mb_plan_free(last);
    mb_policy_session_free(s);
out:
    mb_cost_free(cost);
    return rc;
}

/* ---- rows ---- */

void sw_row_set(sw_row *r, const char *name, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->name[i], name)) {
            free(r->val[i]);
            r->val[i] = strdup(buf);
            return;
        }
    if (r->n == SW_MAX_COLS)
        return;
    r->name[r->n] = strdup(name);
    r->val[r->n] = strdup(buf);
    r->n++;
}

void sw_row_num(sw_row *r, const char *name, double v)
{
    if (isfinite(v))
        sw_row_set(r, name, "%.9g", v);
    else
        sw_row_set(r, name, "%s", "");
}

const char *sw_row_get(const sw_row *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->name[i], name))
            return r->val[i] ? r->val[i] : "";
    return "";
}

void sw_row_free(sw_row *r)
{
    for (int i = 0; i < r->n; i++) {
        free(r->name[i]);
        free(r->val[i]);
    }
    r->n = 0;
}
