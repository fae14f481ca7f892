/* Plans as JSON (cJSON), the form `mecbed plan --json` prints and the
 * runtime reads. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/plan.h"

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

char *mb_plan_to_json(const mb_plan *p, const mb_graph *g, const mb_topology *t, int with_steps)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    char hash[32];
    snprintf(hash, sizeof(hash), "%016" PRIx64, p->graph_hash);
    cJSON_AddStringToObject(o, "policy", p->policy);
    cJSON_AddStringToObject(o, "model", p->model);
    cJSON_AddStringToObject(o, "graph_hash", hash);
    cJSON_AddStringToObject(o, "device", t ? t->sites[p->device].name : "device");
    cJSON *sites = cJSON_AddArrayToObject(o, "sites");
    for (int s = 0; t && s < t->n_sites; s++)
        cJSON_AddItemToArray(sites, cJSON_CreateString(t->sites[s].name));
    cJSON *pr = cJSON_AddObjectToObject(o, "pred");
    add_num(pr, "latency_ms", p->pred.latency_ms);
    add_num(pr, "energy_mj", p->pred.energy_mj);
    add_num(pr, "energy_system_mj", p->pred.energy_system_mj);
    add_num(pr, "device_compute_ms", p->pred.device_compute_ms);
    add_num(pr, "radio_mj", p->pred.radio_mj);
    add_num(pr, "bytes_up", (double)p->pred.bytes_up);
    add_num(pr, "bytes_down", (double)p->pred.bytes_down);
    add_num(pr, "bytes_backbone", (double)p->pred.bytes_backbone);
    add_num(pr, "redundant_elems", (double)p->pred.redundant_elems);
    add_num(pr, "decision_us", p->pred.decision_us);
    add_num(pr, "cut_value_ms", p->pred.cut_value_ms);
    cJSON *m = cJSON_AddObjectToObject(o, "metrics");
    for (int i = 0; i < p->n_metrics; i++)
        add_num(m, p->metrics[i].name, p->metrics[i].value);
    cJSON_AddStringToObject(o, "note", p->note);
    if (mb_plan_has_shares(p)) {
        cJSON *sh = cJSON_AddObjectToObject(o, "shares");
        for (int s = 0; s < MB_MAX_SITES; s++)
            if (p->share[s] > 0) {
                char nm[32];
                snprintf(nm, sizeof nm, "site%d", s);
                add_num(sh, t && s < t->n_sites ? t->sites[s].name : nm, p->share[s]);
            }
    }
    if (p->n_state > 0) { /* state bindings (generation's KV cache), by name */
        cJSON *sa = cJSON_AddArrayToObject(o, "state");
        for (int i = 0; i < p->n_state; i++) {
            const mb_plan_state *b = &p->state[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "site", t && b->site < t->n_sites ? t->sites[b->site].name : "?");
            if (b->in_op >= 0)
                cJSON_AddStringToObject(e, "input", g->nodes[b->in_op].name);
            if (b->out_op >= 0)
                cJSON_AddStringToObject(e, "output", g->nodes[b->out_op].name);
            cJSON_AddNumberToObject(e, "key", b->key);
            cJSON_AddItemToArray(sa, e);
        }
    }
    if (with_steps) {
        cJSON *steps = cJSON_AddArrayToObject(o, "steps");
        for (int k = 0; k < p->n_steps; k++) {
            const mb_plan_step *st = &p->steps[k];
            cJSON *s = cJSON_CreateObject();
            cJSON_AddStringToObject(s, "kind", st->kind == MB_STEP_COMPUTE ? "compute" : "send");
            cJSON_AddNumberToObject(s, "op", st->op);
            cJSON_AddStringToObject(s, "op_name", g->nodes[st->op].name);
            double reg[4] = {(double)st->region.h0, (double)st->region.h1, (double)st->region.w0,
                             (double)st->region.w1};
            cJSON_AddItemToObject(s, "region", cJSON_CreateDoubleArray(reg, 4));
            if (st->kind == MB_STEP_COMPUTE) {
                cJSON_AddStringToObject(s, "site", t ? t->sites[st->site].name : "?");
            } else {
                cJSON_AddStringToObject(s, "from", t ? t->sites[st->site].name : "?");
                cJSON_AddStringToObject(s, "to", t ? t->sites[st->to].name : "?");
            }
            add_num(s, "t_start_ms", st->t_start_ms);
            add_num(s, "t_end_ms", st->t_end_ms);
            cJSON_AddItemToArray(steps, s);
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static int site_of(const cJSON *o, const char *key, const mb_topology *t, int *out, char *err,
                   size_t errlen, int k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "plan step %d: \"%s\" must be a site name", k, key);
        return -1;
    }
    *out = mb_topology_find(t, v->valuestring);
    if (*out < 0) {
        snprintf(err, errlen, "plan step %d: site \"%s\" is not in the topology", k, v->valuestring);
        return -1;
    }
    return 0;
}

/* "shares": {site name: fraction in (0, 1]} of a server other than the device. */
static int shares_from_json(const cJSON *sh, const mb_topology *t, mb_plan *p, char *err, size_t errlen)
{
    if (!sh)
        return 0;
    if (!cJSON_IsObject(sh)) {
        snprintf(err, errlen, "plan: \"shares\" must be an object {site: share}");
        return -1;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, sh)
    {
        int s = mb_topology_find(t, v->string);
        if (s < 0 || s == p->device) {
            snprintf(err, errlen, "plan: shares: \"%s\" is %s", v->string,
                     s < 0 ? "not in the topology" : "the device (only servers are shared)");
            return -1;
        }
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 1)) {
            snprintf(err, errlen, "plan: shares: %s's share must be a number in (0, 1]", v->string);
            return -1;
        }
        p->share[s] = v->valuedouble;
    }
    return 0;
}

/* An op of a state binding by name ("input" or "output"), -1 when absent. */
static int state_op(const cJSON *e, const char *key, const mb_graph *g, int i, int *op, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, key);
    *op = -1;
    if (!v)
        return 0;
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "plan: state binding %d: \"%s\" must be an op name", i, key);
        return -1;
    }
    if ((*op = mb_graph_find(g, v->valuestring)) < 0) {
        snprintf(err, errlen, "plan: state binding %d: %s \"%s\" is not in model %s", i, key, v->valuestring,
                 g->name);
        return -1;
    }
    return 0;
}

/* "state": [{site, input?, output?, key}]: mb_plan_state bindings (checked
 * further by mb_plan_validate). */
static int state_from_json(const cJSON *sa, const mb_graph *g, const mb_topology *t, mb_plan *p, char *err,
                           size_t errlen)
{
    if (!sa)
        return 0;
    if (!cJSON_IsArray(sa) || cJSON_GetArraySize(sa) > MB_PLAN_MAX_STATE) {
        snprintf(err, errlen, "plan: \"state\" must be an array of at most %d bindings", MB_PLAN_MAX_STATE);
        return -1;
    }
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, sa)
    {
        mb_plan_state b = {0};
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(e, "key");
        const cJSON *site = cJSON_GetObjectItemCaseSensitive(e, "site");
        if (!cJSON_IsObject(e) || !cJSON_IsString(site) || (b.site = mb_topology_find(t, site->valuestring)) < 0) {
            snprintf(err, errlen, "plan: state binding %d: \"site\" must name a site of the topology", i);
            return -1;
        }
        if (!cJSON_IsNumber(key) || !(key->valuedouble >= 0 && key->valuedouble <= 4294967295.0) ||
            key->valuedouble != floor(key->valuedouble)) {
            snprintf(err, errlen, "plan: state binding %d: \"key\" must be an integer in [0, 2^32)", i);
            return -1;
        }
        b.key = (uint32_t)key->valuedouble;
        if (state_op(e, "input", g, i, &b.in_op, err, errlen) || state_op(e, "output", g, i, &b.out_op, err, errlen))
            return -1;
        if (b.in_op < 0 && b.out_op < 0) {
            snprintf(err, errlen, "plan: state binding %d binds neither an \"input\" nor an \"output\"", i);
            return -1;
        }
        p->state[p->n_state++] = b;
        i++;
    }
    return 0;
}

mb_plan *mb_plan_from_json(const char *text, const mb_graph *g, const mb_topology *t, char *err,
                           size_t errlen)
{
    cJSON *o = cJSON_Parse(text);
    mb_plan *p = NULL;
    if (!o) {
        snprintf(err, errlen, "plan: not valid JSON near '%.20s'",
                 cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "");
        return NULL;
    }
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(o, "policy");
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(o, "device");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(o, "steps");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(o, "graph_hash");
    if (!cJSON_IsString(pol) || !cJSON_IsString(dev) || !cJSON_IsArray(steps)) {
        snprintf(err, errlen, "plan: needs \"policy\" and \"device\" strings and a \"steps\" array");
        goto fail;
    }
    int d = mb_topology_find(t, dev->valuestring);
    if (d < 0) {
        snprintf(err, errlen, "plan: device \"%s\" is not in the topology", dev->valuestring);
        goto fail;
    }
    p = mb_plan_new(pol->valuestring, g, d);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    p->graph_hash = mb_graph_hash(g);
    if (cJSON_IsString(hash) && strtoull(hash->valuestring, NULL, 16) != p->graph_hash) {
        snprintf(err, errlen, "plan: made for another model (graph_hash %s, %s has %016" PRIx64 ")",
                 hash->valuestring, g->name, p->graph_hash);
        goto fail;
    }
    int k = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, steps)
    {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(s, "kind");
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(s, "op_name");
        const cJSON *reg = cJSON_GetObjectItemCaseSensitive(s, "region");
        if (!cJSON_IsString(kind) || !cJSON_IsString(op) || !cJSON_IsArray(reg) ||
            cJSON_GetArraySize(reg) != 4) {
            snprintf(err, errlen, "plan step %d: needs \"kind\", \"op_name\" and a 4-number \"region\"",
                     k);
            goto fail;
        }
        int opi = mb_graph_find(g, op->valuestring);
        if (opi < 0) {
            snprintf(err, errlen, "plan step %d: op \"%s\" is not in model %s", k, op->valuestring,
                     g->name);
            goto fail;
        }
        int64_t r[4];
        for (int i = 0; i < 4; i++) {
            const cJSON *x = cJSON_GetArrayItem(reg, i);
            /* whole numbers within any tensor's size: a cast of 1e92 or NaN
             * to an integer is undefined behaviour */
            if (!cJSON_IsNumber(x) || !(fabs(x->valuedouble) <= 4e18) || x->valuedouble != floor(x->valuedouble)) {
                snprintf(err, errlen, "plan step %d: region entries must be integers", k);
                goto fail;
            }
            r[i] = (int64_t)x->valuedouble;
        }
        mb_region rg = {r[0], r[1], r[2], r[3]};
        if (!strcmp(kind->valuestring, "compute")) {
            int site;
            if (site_of(s, "site", t, &site, err, errlen, k))
                goto fail;
            mb_plan_compute(p, opi, site, rg);
        } else if (!strcmp(kind->valuestring, "send")) {
            int from, to;
            if (site_of(s, "from", t, &from, err, errlen, k) || site_of(s, "to", t, &to, err, errlen, k))
                goto fail;
            mb_plan_send(p, opi, rg, from, to);
        } else {
            snprintf(err, errlen, "plan step %d: kind \"%s\" is not compute or send", k,
                     kind->valuestring);
            goto fail;
        }
        k++;
    }
    if (shares_from_json(cJSON_GetObjectItemCaseSensitive(o, "shares"), t, p, err, errlen) ||
        state_from_json(cJSON_GetObjectItemCaseSensitive(o, "state"), g, t, p, err, errlen))
        goto fail;
    cJSON_Delete(o);
    return p;
fail:
    mb_plan_free(p);
    cJSON_Delete(o);
    return NULL;
}
