/* Plans: building, validating, printing. The JSON form lives in
 * plan_json.c, in-process execution in plan_exec.c, prediction in cost.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/plan.h"
#include "mecbed/regionset.h"

mb_plan *mb_plan_new(const char *policy, const mb_graph *g, int device)
{
    mb_plan *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    snprintf(p->policy, sizeof(p->policy), "%s", policy ? policy : "");
    if (g) /* graph_hash stays 0: hashing hashes every weight; the host sets it once */
        snprintf(p->model, sizeof(p->model), "%s", g->name);
    p->device = device;
    p->pred.cut_value_ms = NAN;
    return p;
}

void mb_plan_free(mb_plan *p)
{
    if (!p)
        return;
    free(p->steps);
    free(p);
}

void mb_plan_clear(mb_plan *p)
{
    p->n_steps = 0;
    p->n_metrics = 0;
    p->n_state = 0;
    p->note[0] = 0;
    memset(p->share, 0, sizeof(p->share));
    memset(&p->pred, 0, sizeof(p->pred));
    p->pred.cut_value_ms = NAN;
}

mb_plan *mb_plan_clone(const mb_plan *p)
{
    mb_plan *q = malloc(sizeof(*q));
    if (!q)
        return NULL;
    *q = *p;
    q->steps = NULL;
    q->cap_steps = 0;
    if (p->n_steps) {
        q->steps = malloc(sizeof(*q->steps) * (size_t)p->n_steps);
        if (!q->steps) {
            free(q);
            return NULL;
        }
        memcpy(q->steps, p->steps, sizeof(*q->steps) * (size_t)p->n_steps);
        q->cap_steps = p->n_steps;
    }
    return q;
}

static int plan_push(mb_plan *p, const mb_plan_step *s)
{
    if (p->n_steps == p->cap_steps) {
        int cap = p->cap_steps ? 2 * p->cap_steps : 64;
        mb_plan_step *n = realloc(p->steps, sizeof(*n) * (size_t)cap);
        if (!n)
            return -1;
        p->steps = n;
        p->cap_steps = cap;
    }
    p->steps[p->n_steps] = *s;
    return p->n_steps++;
}

int mb_plan_compute(mb_plan *p, int op, int site, mb_region r)
{
    mb_plan_step s = {.kind = MB_STEP_COMPUTE, .op = op, .region = r, .site = site, .to = -1};
    return plan_push(p, &s);
}

int mb_plan_send(mb_plan *p, int op, mb_region r, int from, int to)
{
    mb_plan_step s = {.kind = MB_STEP_SEND, .op = op, .region = r, .site = from, .to = to};
    return plan_push(p, &s);
}

int mb_plan_metric_set(mb_plan *p, const char *name, double value)
{
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(p->metrics[i].name, name)) {
            p->metrics[i].value = value;
            return i;
        }
    if (p->n_metrics == MB_PLAN_MAX_METRICS)
        return -1;
    mb_plan_metric *m = &p->metrics[p->n_metrics];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->value = value;
    return p->n_metrics++;
}

double mb_plan_metric_get(const mb_plan *p, const char *name)
{
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(p->metrics[i].name, name))
            return p->metrics[i].value;
    return NAN;
}

int mb_plan_has_shares(const mb_plan *p)
{
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (p->share[i] > 0)
            return 1;
    return 0;
}

static int is_free_op(const mb_graph *g, int i)
{
    return g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
}

/* needed[i] = 1 when a graph output depends on node i. */
static void mark_needed(const mb_graph *g, char *needed)
{
    memset(needed, 0, (size_t)g->n_nodes);
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] >= 0 && g->outputs[k] < g->n_nodes)
            needed[g->outputs[k]] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (!needed[i])
            continue;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            needed[g->nodes[i].inputs[k]] = 1;
    }
}

int mb_plan_assign(mb_plan *p, const mb_graph *g, const int *site_of_op, char *err, size_t errlen)
{
    int n = g->n_nodes;
    char *needed = malloc((size_t)n + 1);
    /* sent[u * MB_MAX_SITES + s]: tensor u already sent to site s */
    char *sent = calloc((size_t)n * MB_MAX_SITES + 1, 1);
    int rc = -1;
    if (!needed || !sent) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    mark_needed(g, needed);
    if (p->device < 0 || p->device >= MB_MAX_SITES) {
        snprintf(err, errlen, "plan: device site %d out of range", p->device);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!needed[i] || is_free_op(g, i))
            continue;
        if (site_of_op[i] < 0 || site_of_op[i] >= MB_MAX_SITES) {
            snprintf(err, errlen, "op %d (%s): site %d out of range", i, g->nodes[i].name,
                     site_of_op[i]);
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!needed[i] || is_free_op(g, i))
            continue;
        int site = site_of_op[i];
        const mb_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int u = nd->inputs[k];
            if (g->nodes[u].type == MB_OP_CONSTANT)
                continue;
            int from = g->nodes[u].type == MB_OP_INPUT ? p->device : site_of_op[u];
            char *done = &sent[(size_t)u * MB_MAX_SITES + site];
            if (from == site || *done)
                continue;
            if (mb_plan_send(p, u, mb_node_full_region(g, u), from, site) < 0)
                goto oom;
            *done = 1;
        }
        if (mb_plan_compute(p, i, site, mb_node_full_region(g, i)) < 0)
            goto oom;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int o = g->outputs[k];
        int from = is_free_op(g, o) ? p->device : site_of_op[o];
        char *done = &sent[(size_t)o * MB_MAX_SITES + p->device];
        if (from == p->device || *done)
            continue;
        if (mb_plan_send(p, o, mb_node_full_region(g, o), from, p->device) < 0)
            goto oom;
        *done = 1;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    free(needed);
    free(sent);
    return rc;
}

/* ---- validation ---- */

static int region_inside(mb_region r, mb_region full)
{
    return r.h0 >= full.h0 && r.h1 <= full.h1 && r.w0 >= full.w0 && r.w1 <= full.w1 &&
           r.h0 < r.h1 && r.w0 < r.w1;
}

static int region_eq(mb_region a, mb_region b)
{
    return a.h0 == b.h0 && a.h1 == b.h1 && a.w0 == b.w0 && a.w1 == b.w1;
}

static const char *site_name(const mb_topology *t, int s)
{
    return t && s >= 0 && s < t->n_sites ? t->sites[s].name : "?";
}

/* The site a state binding puts op at (an input: is_in, else an output),
 * or dflt when none binds it. */
static int state_site(const mb_plan *p, int op, int is_in, int dflt)
{
    for (int i = 0; i < p->n_state; i++)
        if ((is_in ? p->state[i].in_op : p->state[i].out_op) == op)
            return p->state[i].site;
    return dflt;
}

/* A state output bound on several sites (partitioned): each keeps a part
 * and together they hold all of it. 1 when o is partitioned and that holds,
 * 0 when o is not partitioned (bound on one site or none), -1 with err. */
static int state_parts_check(const mb_plan *p, const mb_graph *g, const mb_topology *t, const mb_regionset *have,
                             int o, char *err, size_t errlen)
{
    int n = g->n_nodes, sites = 0;
    mb_regionset all = {0};
    for (int b = 0; b < p->n_state; b++) {
        if (p->state[b].out_op != o)
            continue;
        const mb_regionset *h = &have[(size_t)p->state[b].site * n + o];
        if (h->n == 0) {
            snprintf(err, errlen, "plan: state output %s keeps nothing on %s", g->nodes[o].name,
                     site_name(t, p->state[b].site));
            mb_regionset_free(&all);
            return -1;
        }
        for (int r = 0; r < h->n; r++)
            mb_regionset_add(&all, h->r[r]);
        sites++;
    }
    int covered = mb_regionset_covers(&all, mb_node_full_region(g, o));
    mb_regionset_free(&all);
    if (sites < 2)
        return 0;
    if (!covered) {
        snprintf(err, errlen, "plan: the sites keeping state output %s do not hold all of it together",
                 g->nodes[o].name);
        return -1;
    }
    return 1;
}

static int state_check(const mb_plan *p, const mb_graph *g, int ns, char *err, size_t errlen)
{
    if (p->n_state < 0 || p->n_state > MB_PLAN_MAX_STATE) {
        snprintf(err, errlen, "plan: %d state bindings (at most %d)", p->n_state, MB_PLAN_MAX_STATE);
        return -1;
    }
    for (int i = 0; i < p->n_state; i++) {
        const mb_plan_state *b = &p->state[i];
        int in_ok = b->in_op == -1 || (b->in_op >= 0 && b->in_op < g->n_nodes && g->nodes[b->in_op].type == MB_OP_INPUT);
        int out_ok = b->out_op == -1;
        for (int k = 0; k < g->n_outputs && !out_ok; k++)
            out_ok = g->outputs[k] == b->out_op;
        if (b->site < 0 || b->site >= ns || !in_ok || !out_ok || (b->in_op < 0 && b->out_op < 0)) {
            snprintf(err, errlen, "plan state binding %d (key %u): site %d, input op %d, output op %d: the site "
                     "must be in range, the input a graph input, the output a graph output", i, (unsigned)b->key,
                     b->site, b->in_op, b->out_op);
            return -1;
        }
        for (int j = 0; j < i; j++) {
            const mb_plan_state *c = &p->state[j];
            int same_op = (b->in_op >= 0 && c->in_op == b->in_op) || (b->out_op >= 0 && c->out_op == b->out_op);
            /* an op may be bound on several sites (a partitioned state:
             * each site keeps its part), under one key and pairing */
            if ((c->site == b->site && (same_op || c->key == b->key)) ||
                (same_op && (c->key != b->key || c->in_op != b->in_op || c->out_op != b->out_op))) {
                snprintf(err, errlen, "plan state binding %d (key %u) binds an op or a key twice on a site, or "
                         "an op under two keys", i, (unsigned)b->key);
                return -1;
            }
        }
    }
    return 0;
}

/* What each site holds before the first step: graph inputs on the device,
 * or on every site binding them as state; constants everywhere. */
static void seed_have(const mb_plan *p, const mb_graph *g, int ns, mb_regionset *have)
{
    int n = g->n_nodes;
    for (int i = 0; i < n; i++) {
        if (g->nodes[i].type == MB_OP_INPUT) {
            int bound = 0;
            for (int b = 0; b < p->n_state; b++)
                if (p->state[b].in_op == i) {
                    mb_regionset_add(&have[(size_t)p->state[b].site * n + i], mb_node_full_region(g, i));
                    bound = 1;
                }
            if (!bound)
                mb_regionset_add(&have[(size_t)p->device * n + i], mb_node_full_region(g, i));
        }
        if (g->nodes[i].type == MB_OP_CONSTANT)
            for (int s = 0; s < ns; s++)
                mb_regionset_add(&have[(size_t)s * n + i], mb_node_full_region(g, i));
    }
}

int mb_plan_validate(const mb_plan *p, const mb_graph *g, const mb_topology *t, char *err,
                     size_t errlen)
{
    int n = g->n_nodes;
    int ns = t ? t->n_sites : MB_MAX_SITES;
    if (p->device < 0 || p->device >= ns) {
        snprintf(err, errlen, "plan: device site %d out of range (topology has %d sites)",
                 p->device, ns);
        return -1;
    }
    /* have[site][op]: what each site holds; done[site][op]: what it computed. */
    mb_regionset *have = calloc((size_t)ns * (size_t)n, sizeof(*have));
    mb_regionset *done = calloc((size_t)ns * (size_t)n, sizeof(*done));
    mb_regionset *anywhere = calloc((size_t)n, sizeof(*anywhere));
    char *needed = malloc((size_t)n);
    int rc = -1;
    if (!have || !done || !anywhere || !needed) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    mark_needed(g, needed);
    if (state_check(p, g, ns, err, errlen))
        goto out;
    seed_have(p, g, ns, have);
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *st = &p->steps[k];
        if (st->op < 0 || st->op >= n) {
            snprintf(err, errlen, "plan step %d: op %d out of range (model has %d ops)", k, st->op,
                     n);
            goto out;
        }
        const mb_node *nd = &g->nodes[st->op];
        mb_region full = mb_node_full_region(g, st->op);
        if (st->site < 0 || st->site >= ns) {
            snprintf(err, errlen, "plan step %d (%s): site %d out of range", k, nd->name, st->site);
            goto out;
        }
        if (!region_inside(st->region, full)) {
            snprintf(err, errlen,
                     "plan step %d (%s): region rows [%lld,%lld) cols [%lld,%lld) is empty or "
                     "outside the output (%lld x %lld)",
                     k, nd->name, (long long)st->region.h0, (long long)st->region.h1,
                     (long long)st->region.w0, (long long)st->region.w1, (long long)full.h1,
                     (long long)full.w1);
            goto out;
        }
        mb_regionset *h = &have[(size_t)st->site * n + st->op];
        if (st->kind == MB_STEP_COMPUTE) {
            if (nd->type == MB_OP_INPUT || nd->type == MB_OP_CONSTANT) {
                snprintf(err, errlen, "plan step %d (%s): %s nodes are not computed", k, nd->name,
                         mb_op_name(nd->type));
                goto out;
            }
            int partial_ok = nd->local && nd->out_ndim >= 2 && nd->out_ndim <= 4;
            if (!partial_ok && !region_eq(st->region, full)) {
                snprintf(err, errlen,
                         "plan step %d (%s): %s cannot compute a partial region (only spatially "
                         "local ops with 2-D to 4-D outputs can)",
                         k, nd->name, mb_op_name(nd->type));
                goto out;
            }
            for (int j = 0; j < nd->n_inputs; j++) {
                int u = nd->inputs[j];
                mb_region need = mb_node_input_region(g, st->op, j, st->region);
                if (!mb_regionset_covers(&have[(size_t)st->site * n + u], need)) {
                    snprintf(err, errlen,
                             "plan step %d: %s on %s needs rows [%lld,%lld) cols [%lld,%lld) of "
                             "input %s, which is not on %s by then",
                             k, nd->name, site_name(t, st->site), (long long)need.h0,
                             (long long)need.h1, (long long)need.w0, (long long)need.w1,
                             g->nodes[u].name, site_name(t, st->site));
                    goto out;
                }
            }
            mb_regionset *d = &done[(size_t)st->site * n + st->op];
            if (mb_regionset_intersects(d, st->region)) {
                snprintf(err, errlen, "plan step %d: %s computes elements of %s twice on %s", k,
                         nd->name, nd->name, site_name(t, st->site));
                goto out;
            }
            if (mb_regionset_add(d, st->region) || mb_regionset_add(h, st->region) ||
                mb_regionset_add(&anywhere[st->op], st->region)) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        } else if (st->kind == MB_STEP_SEND) {
            if (st->to < 0 || st->to >= ns || st->to == st->site) {
                snprintf(err, errlen, "plan step %d (%s): send from %s to bad site %d", k, nd->name,
                         site_name(t, st->site), st->to);
                goto out;
            }
            if (!mb_regionset_covers(h, st->region)) {
                snprintf(err, errlen,
                         "plan step %d: %s sends rows [%lld,%lld) cols [%lld,%lld) of %s, which "
                         "it does not hold by then",
                         k, site_name(t, st->site), (long long)st->region.h0,
                         (long long)st->region.h1, (long long)st->region.w0,
                         (long long)st->region.w1, nd->name);
                goto out;
            }
            if (mb_regionset_add(&have[(size_t)st->to * n + st->op], st->region)) {
                snprintf(err, errlen, "out of memory");
                goto out;
            }
        } else {
            snprintf(err, errlen, "plan step %d: unknown kind %d", k, (int)st->kind);
            goto out;
        }
    }
    for (int i = 0; i < n; i++) {
        if (!needed[i] || g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT)
            continue;
        if (!mb_regionset_covers(&anywhere[i], mb_node_full_region(g, i))) {
            snprintf(err, errlen, "plan: op %s is needed but not computed in full on any site",
                     g->nodes[i].name);
            goto out;
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int o = g->outputs[k];
        int at = state_site(p, o, 0, p->device);
        int parts = state_parts_check(p, g, t, have, o, err, errlen);
        if (parts < 0)
            goto out;
        if (parts == 0 && !mb_regionset_covers(&have[(size_t)at * n + o], mb_node_full_region(g, o))) {
            snprintf(err, errlen, "plan: output %s does not end on %s (%s)", g->nodes[o].name,
                     at == p->device ? "the device" : "its state's site", site_name(t, at));
            goto out;
        }
    }
    rc = 0;
out:
    if (have)
        for (size_t i = 0; i < (size_t)ns * n; i++)
            mb_regionset_free(&have[i]);
    if (done)
        for (size_t i = 0; i < (size_t)ns * n; i++)
            mb_regionset_free(&done[i]);
    if (anywhere)
        for (int i = 0; i < n; i++)
            mb_regionset_free(&anywhere[i]);
    free(have);
    free(done);
    free(anywhere);
    free(needed);
    return rc;
}

void mb_plan_print(FILE *f, const mb_plan *p, const mb_graph *g, const mb_topology *t)
{
    fprintf(f, "plan: policy %s, model %s, device %s, %d steps\n", p->policy, p->model,
            site_name(t, p->device), p->n_steps);
    if (p->note[0])
        fprintf(f, "  %s\n", p->note);
    int ns = t ? t->n_sites : 0;
    for (int s = 0; s < ns; s++) {
        int cnt = 0, partial = 0;
        for (int k = 0; k < p->n_steps; k++)
            if (p->steps[k].kind == MB_STEP_COMPUTE && p->steps[k].site == s) {
                cnt++;
                partial += !region_eq(p->steps[k].region, mb_node_full_region(g, p->steps[k].op));
            }
        if (!cnt)
            continue;
        fprintf(f, "  %-10s runs %d ops%s", t->sites[s].name, cnt, partial ? "" : ":");
        if (partial)
            fprintf(f, " (%d of them partial regions)\n", partial);
        else {
            int shown = 0;
            for (int k = 0; k < p->n_steps && shown < 6; k++)
                if (p->steps[k].kind == MB_STEP_COMPUTE && p->steps[k].site == s) {
                    fprintf(f, " %s", g->nodes[p->steps[k].op].name);
                    shown++;
                }
            fprintf(f, "%s\n", cnt > shown ? " ..." : "");
        }
    }
    int shown = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *st = &p->steps[k];
        if (st->kind != MB_STEP_SEND)
            continue;
        if (shown++ >= 12) {
            fprintf(f, "  ...\n");
            break;
        }
        int64_t bytes = g->nodes[st->op].out_bytes;
        mb_region full = mb_node_full_region(g, st->op);
        int64_t area = mb_region_rows(full) * mb_region_cols(full);
        if (area > 0)
            bytes = bytes * (mb_region_rows(st->region) * mb_region_cols(st->region)) / area;
        fprintf(f, "  send %-24s %s -> %s  %lld bytes  at %.3f..%.3f ms\n", g->nodes[st->op].name,
                site_name(t, st->site), site_name(t, st->to), (long long)bytes, st->t_start_ms,
                st->t_end_ms);
    }
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

void mb_plan_shape_of(const mb_plan *p, const mb_graph *g, mb_plan_shape *out)
{
    memset(out, 0, sizeof *out);
    int n = g->n_nodes;
    unsigned char *where = calloc((size_t)n + 1, 1); /* bit 0: device, bit 1: elsewhere */
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < p->n_steps; i++) {
        const mb_plan_step *s = &p->steps[i];
        int v[8] = {(int)s->kind, s->op, (int)s->region.h0, (int)s->region.h1, (int)s->region.w0,
                    (int)s->region.w1, s->site, s->to};
        h = fnv(h, v, sizeof v);
        if (s->kind == MB_STEP_COMPUTE && where && s->op >= 0 && s->op < n)
            where[s->op] |= s->site == p->device ? 1 : 2;
    }
    int in_prefix = 1;
    const char *after = "input";
    for (int i = 0; where && i < n; i++) {
        if (g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT || !where[i])
            continue; /* not an op, or not needed */
        out->device_ops += where[i] == 1;
        out->server_ops += where[i] == 2;
        out->split_ops += where[i] == 3;
        if (in_prefix && where[i] == 1) {
            out->cut_index++;
            after = g->nodes[i].name;
        } else
            in_prefix = 0;
    }
    snprintf(out->cut_after, sizeof out->cut_after, "%s",
             !out->server_ops && !out->split_ops ? "(all on device)" : after);
    free(where);
    out->signature = h;
}
