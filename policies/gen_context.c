/* Predicting a generation policy from a decoder, a topology and node types
 * (include/mecbed/genplan.h): the graphs (with seeded weights, to profile
 * them) and their per-op profiles, made once and kept, so that `generate`
 * and sweeps over links plan every policy from one set of profiles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/genplan.h"

#define CTX_MAX_VERIFY 8

typedef struct ctx_graph {
    mb_graph *g;
    mb_profile *prof;
    const char *source;
} ctx_graph;

struct mb_gen_ctx {
    const mb_decoder_cfg *cfg, *draft;
    int P, N;
    int64_t capacity;
    uint64_t seed;
    ctx_graph decode, prefill, d_decode, d_prefill;
    int n_verify;
    int verify_k[CTX_MAX_VERIFY];
    ctx_graph verify[CTX_MAX_VERIFY];
};

static void graph_free(ctx_graph *x)
{
    mb_graph_free(x->g);
    mb_profile_free(x->prof);
    memset(x, 0, sizeof *x);
}

void mb_gen_ctx_free(mb_gen_ctx *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n_verify; i++)
        graph_free(&x->verify[i]);
    graph_free(&x->prefill);
    graph_free(&x->d_prefill);
    graph_free(&x->decode);
    graph_free(&x->d_decode);
    free(x);
}

/* A graph of cfg: decode (tokens 0) with weights, or T tokens without a
 * past borrowing owner's weights; profiled. */
static int graph_make(const mb_decoder_cfg *cfg, int64_t T, int64_t C, uint64_t seed, const mb_graph *owner,
                      ctx_graph *out, char *err, size_t errlen)
{
    char e2[768];
    out->g = owner ? mb_decoder_build(cfg, T, C, 0, 0, 1, e2, sizeof e2) : mb_decoder_build(cfg, 1, C, 1, seed, 0, e2,
                                                                                            sizeof e2);
    if (!out->g || (owner && mb_decoder_share_weights(out->g, owner, e2, sizeof e2) < 0) ||
        !(out->prof = mb_profile_default(out->g, &out->source, e2, sizeof e2))) {
        snprintf(err, errlen, "%s: %s", cfg->name, e2);
        return -1;
    }
    return 0;
}

mb_gen_ctx *mb_gen_ctx_new(const mb_decoder_cfg *cfg, const mb_decoder_cfg *draft, int P, int N, int64_t capacity,
                           uint64_t seed, char *err, size_t errlen)
{
    mb_gen_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->cfg = cfg;
    x->draft = draft;
    x->P = P;
    x->N = N;
    x->capacity = capacity;
    x->seed = seed;
    if (draft && draft->vocab != cfg->vocab) {
        snprintf(err, errlen, "draft %s has a vocabulary of %lld tokens, target %s one of %lld: speculative decoding "
                 "needs the same", draft->name, (long long)draft->vocab, cfg->name, (long long)cfg->vocab);
        mb_gen_ctx_free(x);
        return NULL;
    }
    if (graph_make(cfg, 1, capacity, seed, NULL, &x->decode, err, errlen) ||
        graph_make(cfg, P, capacity, seed, x->decode.g, &x->prefill, err, errlen)) {
        mb_gen_ctx_free(x);
        return NULL;
    }
    return x;
}

const mb_graph *mb_gen_ctx_decode(const mb_gen_ctx *x)
{
    return x->decode.g;
}

const char *mb_gen_ctx_profile_source(const mb_gen_ctx *x)
{
    return x->decode.source;
}

/* The draft's graphs, made on first use. */
static int draft_ready(mb_gen_ctx *x, char *err, size_t errlen)
{
    if (!x->draft) {
        snprintf(err, errlen, "speculative decoding needs a draft model with %s's vocabulary (%s has none: "
                 "--draft NAME)", x->cfg->name, x->cfg->name);
        return -1;
    }
    if (x->d_decode.g)
        return 0;
    if (graph_make(x->draft, 1, x->capacity, x->seed + 1, NULL, &x->d_decode, err, errlen) ||
        graph_make(x->draft, x->P, x->capacity, 0, x->d_decode.g, &x->d_prefill, err, errlen)) {
        graph_free(&x->d_decode);
        graph_free(&x->d_prefill);
        return -1;
    }
    return 0;
}

/* The target's graph of k+1 tokens (the cost of verifying k proposals). */
static ctx_graph *verify_graph(mb_gen_ctx *x, int k, char *err, size_t errlen)
{
    for (int i = 0; i < x->n_verify; i++)
        if (x->verify_k[i] == k)
            return &x->verify[i];
    if (x->n_verify == CTX_MAX_VERIFY) {
        snprintf(err, errlen, "at most %d draft lengths per run", CTX_MAX_VERIFY);
        return NULL;
    }
    int64_t C = x->capacity > k + 1 ? x->capacity : k + 1;
    if (graph_make(x->cfg, k + 1, C, 0, x->decode.g, &x->verify[x->n_verify], err, errlen)) {
        graph_free(&x->verify[x->n_verify]);
        return NULL;
    }
    x->verify_k[x->n_verify] = k;
    return &x->verify[x->n_verify++];
}

int mb_gen_topology(const char *link, int edges, const char *lan, mb_topology *t, char *err, size_t errlen)
{
    if (edges < 1 || edges > MB_GEN_MAX_WORKERS) {
        snprintf(err, errlen, "--edges %d: expected 1 to %d edge nodes", edges, MB_GEN_MAX_WORKERS);
        return -1;
    }
    if (mb_topology_from_link(link, t, err, errlen))
        return -1;
    mb_link_spec ls;
    char e2[512];
    if (edges > 1 && mb_linkspec_parse(lan ? lan : MB_GEN_LAN_DEFAULT, &ls, e2, sizeof e2)) {
        snprintf(err, errlen, "--lan '%s': %s", lan ? lan : MB_GEN_LAN_DEFAULT, e2);
        return -1;
    }
    for (int i = 1; i < edges; i++) {
        mb_site *s = &t->sites[t->n_sites];
        snprintf(s->name, sizeof s->name, "edge%d", i);
        s->role = MB_ROLE_EDGE;
        t->links[t->n_links].a = 1; /* edge0 */
        t->links[t->n_links].b = t->n_sites;
        t->links[t->n_links].spec = ls;
        t->n_links++;
        t->n_sites++;
    }
    return 0;
}

/* Options of a policy spec "name:key=value,...". */
typedef struct pol_opts {
    char name[32];
    long split, k, edges;
    double a, memory_mb;
} pol_opts;

static int parse_spec(const char *spec, pol_opts *o, char *err, size_t errlen);

int mb_gen_policy_parse(const char *spec, mb_gen_policy_spec *out, char *err, size_t errlen)
{
    pol_opts o;
    if (parse_spec(spec, &o, err, errlen))
        return -1;
    const char *const *n = mb_gen_policy_names();
    for (; *n && strcmp(*n, o.name); n++)
        ;
    if (!*n) {
        snprintf(err, errlen, "unknown generation policy '%s' (pipeline, device, edge, galaxy, pd-device, "
                 "speculative)", o.name);
        return -1;
    }
    snprintf(out->name, sizeof out->name, "%s", o.name);
    out->split = (int)o.split;
    out->k = (int)o.k;
    out->edges = (int)o.edges;
    out->a = o.a;
    out->memory_mb = o.memory_mb;
    return 0;
}

static int parse_spec(const char *spec, pol_opts *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->split = -1;
    o->k = 4;
    o->a = 0.8;
    o->edges = 0;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof o->name) {
        snprintf(err, errlen, "generation policy '%s': expected NAME[:key=value,...]", spec);
        return -1;
    }
    memcpy(o->name, spec, n);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", colon ? colon + 1 : "");
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '='), *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : NAN;
        if (!eq || end == eq + 1 || *end || !isfinite(v)) {
            snprintf(err, errlen, "generation policy '%s': option '%s' is not key=number", spec, kv);
            return -1;
        }
        *eq = 0;
        int whole = v == floor(v);
        if (!strcmp(kv, "a") && v >= 0 && v <= 1)
            o->a = v;
        else if (!strcmp(kv, "k") && whole && v >= 1 && v <= 64)
            o->k = (long)v;
        else if (!strcmp(kv, "split") && whole && v >= 0)
            o->split = (long)v;
        else if (!strcmp(kv, "edges") && whole && v >= 1 && v <= MB_GEN_MAX_WORKERS)
            o->edges = (long)v;
        else if (!strcmp(kv, "memory") && v > 0)
            o->memory_mb = v;
        else {
            snprintf(err, errlen, "generation policy '%s': option %s=%s is unknown or out of range (a in [0,1], "
                     "k 1..64, split >= 0, edges 1..%d, memory > 0 MB)", spec, kv, eq + 1, MB_GEN_MAX_WORKERS);
            return -1;
        }
    }
    return 0;
}

const mb_decoder_cfg *mb_gen_default_draft(const mb_decoder_cfg *cfg)
{
    const mb_decoder_cfg *best = NULL;
    for (const char *const *n = mb_decoder_names(); *n; n++) {
        const mb_decoder_cfg *d = mb_decoder_find(*n);
        if (d != cfg && d->vocab == cfg->vocab && d->width * d->layers < cfg->width * cfg->layers &&
            (!best || d->width * d->layers < best->width * best->layers))
            best = d;
    }
    return best;
}

const char *const *mb_gen_policy_names(void)
{
    static const char *const names[] = {"pipeline", "device", "edge", "galaxy", "pd-device", "speculative", NULL};
    return names;
}

typedef struct costs {
    mb_cost_model *c[6];
} costs;

static void costs_free(costs *cs)
{
    for (int i = 0; i < 6; i++)
        mb_cost_free(cs->c[i]);
}

static mb_cost_model *cost_of(costs *cs, int i, const ctx_graph *x, const mb_topology *t, const mb_nodetype_set *types,
                              char *err, size_t errlen)
{
    /* 0 and 2: the target's and the draft's prefill, a session's first
     * messages: on cold connections (TCP slow start, cost.h) */
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    o.cold_connections = i == 0 || i == 2;
    if (!cs->c[i])
        cs->c[i] = mb_cost_new(x->g, t, x->prof, types, &o, err, errlen);
    return cs->c[i];
}

static int predict_pipeline(mb_gen_ctx *x, const pol_opts *o, const mb_topology *t, costs *cs,
                            const mb_nodetype_set *types, int device, int server, mb_gen_policy_pred *out, char *err,
                            size_t errlen)
{
    int L = (int)x->cfg->layers;
    mb_cost_model *pc = cost_of(cs, 0, &x->prefill, t, types, err, errlen);
    mb_cost_model *dc = pc ? cost_of(cs, 1, &x->decode, t, types, err, errlen) : NULL;
    mb_gen_split_pred *preds = calloc((size_t)L + 1, sizeof *preds);
    if (!dc || !preds) {
        free(preds);
        if (dc)
            snprintf(err, errlen, "out of memory");
        return -1;
    }
    int best = mb_gen_pipeline_plan(x->prefill.g, pc, x->decode.g, dc, L, device, server, x->N, o->memory_mb * 1e6,
                                    preds, err, errlen);
    int k = !strcmp(o->name, "device") ? L : !strcmp(o->name, "edge") ? 0 : o->split >= 0 ? (int)o->split : best;
    if (best < 0 || k > L) {
        if (best >= 0)
            snprintf(err, errlen, "pipeline: split=%d: %s has %d layers", k, x->cfg->name, L);
        free(preds);
        return -1;
    }
    const mb_gen_split_pred *p = &preds[k];
    snprintf(out->policy, sizeof out->policy, "%s", o->name);
    const char *tag = k == best && !strcmp(o->name, "pipeline") ? " (edgeshard's cut)" : "";
    if (k == L)
        snprintf(out->detail, sizeof out->detail, "every layer on the device%s", tag);
    else if (k == 0)
        snprintf(out->detail, sizeof out->detail, "every layer on edge0, the embedding on the device%s", tag);
    else
        snprintf(out->detail, sizeof out->detail, "layers [0,%d) on the device, [%d,%d) on edge0%s", k, k, L, tag);
    out->split_after = k;
    out->ttft_ms = p->prefill.ms;
    out->tpot_ms = p->decode.ms;
    out->total_ms = p->total_ms;
    out->tokens_per_s = p->decode.ms > 0 ? 1000.0 / p->decode.ms : 0;
    out->up_bytes_per_token = (double)p->decode.up_bytes;
    out->down_bytes_per_token = (double)p->decode.down_bytes;
    out->device_weight_bytes = p->device_weight_bytes;
    mb_gen_pred_energy(out, pc, &p->prefill, dc, &p->decode, 1, device, server, x->N);
    free(preds);
    return 0;
}

/* The workers: every edge site (or the first `edges`), apportioned by speed. */
int mb_gen_galaxy_tp(const mb_cost_model *dc, const mb_topology *t, const mb_decoder_cfg *cfg, int edges,
                     mb_gen_tp *tp, char *err, size_t errlen)
{
    int sites[MB_GEN_MAX_WORKERS], k = 0;
    double speed[MB_GEN_MAX_WORKERS];
    for (int i = 0; i < t->n_sites && k < MB_GEN_MAX_WORKERS; i++)
        if (t->sites[i].role == MB_ROLE_EDGE && (!edges || k < edges)) {
            sites[k] = i;
            speed[k++] = 1.0 / mb_cost_site_factor(dc, i);
        }
    if (k < 1 || (edges && k < edges)) {
        snprintf(err, errlen, "galaxy: edges=%d, the topology has %d edge node%s", edges, k, k == 1 ? "" : "s");
        return -1;
    }
    return mb_gen_tp_partition(cfg, k, sites, speed, tp, err, errlen);
}

int mb_gen_ctx_galaxy_tp(mb_gen_ctx *x, const mb_topology *t, const mb_nodetype_set *types, int edges,
                         mb_gen_tp *tp, char *err, size_t errlen)
{
    mb_cost_model *dc = mb_cost_new(x->decode.g, t, x->decode.prof, types, NULL, err, errlen);
    int rc = dc ? mb_gen_galaxy_tp(dc, t, x->cfg, edges, tp, err, errlen) : -1;
    mb_cost_free(dc);
    return rc;
}

static int predict_galaxy(mb_gen_ctx *x, const pol_opts *o, const mb_topology *t, costs *cs,
                          const mb_nodetype_set *types, int device, mb_gen_policy_pred *out, char *err, size_t errlen)
{
    mb_cost_model *pc = cost_of(cs, 0, &x->prefill, t, types, err, errlen);
    mb_cost_model *dc = pc ? cost_of(cs, 1, &x->decode, t, types, err, errlen) : NULL;
    if (!dc)
        return -1;
    mb_gen_tp tp;
    mb_gen_step_pred pf, dd;
    int L = (int)x->cfg->layers, k;
    if (mb_gen_galaxy_tp(dc, t, x->cfg, (int)o->edges, &tp, err, errlen))
        return -1;
    k = tp.k;
    if (
        mb_gen_galaxy_predict_step(x->prefill.g, pc, &tp, device, L, &pf, err, errlen) ||
        mb_gen_galaxy_predict_step(x->decode.g, dc, &tp, device, L, &dd, err, errlen))
        return -1;
    snprintf(out->policy, sizeof out->policy, "galaxy");
    snprintf(out->detail, sizeof out->detail, "tensor parallel across %d edge node%s", k, k == 1 ? "" : "s");
    out->edges = k;
    out->ttft_ms = pf.ms;
    out->tpot_ms = dd.ms;
    out->total_ms = pf.ms + (x->N > 1 ? (x->N - 1) * dd.ms : 0);
    out->tokens_per_s = dd.ms > 0 ? 1000.0 / dd.ms : 0;
    out->up_bytes_per_token = (double)dd.up_bytes;
    out->down_bytes_per_token = (double)dd.down_bytes;
    out->backbone_bytes_per_token = (double)dd.backbone_bytes;
    out->sync_ms = dd.sync_ms;
    mb_gen_pred_energy(out, pc, &pf, dc, &dd, 1, device, tp.sites[0], x->N);
    return 0;
}

int mb_gen_ctx_predict(mb_gen_ctx *x, const char *spec, const mb_topology *t, const mb_nodetype_set *types,
                       mb_gen_policy_pred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->split_after = -1;
    pol_opts o;
    if (parse_spec(spec, &o, err, errlen))
        return -1;
    int device = -1, server = mb_topology_find(t, "edge0");
    for (int i = 0; i < t->n_sites && device < 0; i++)
        if (t->sites[i].role == MB_ROLE_DEVICE)
            device = i;
    if (device < 0 || server < 0) {
        snprintf(err, errlen, "generation policies need a device site and an edge site named edge0");
        return -1;
    }
    costs cs = {{0}};
    int rc = -1;
    if (!strcmp(o.name, "pipeline") || !strcmp(o.name, "device") || !strcmp(o.name, "edge"))
        rc = predict_pipeline(x, &o, t, &cs, types, device, server, out, err, errlen);
    else if (!strcmp(o.name, "galaxy"))
        rc = predict_galaxy(x, &o, t, &cs, types, device, out, err, errlen);
    else if (!strcmp(o.name, "pd-device")) {
        mb_cost_model *pc = cost_of(&cs, 0, &x->prefill, t, types, err, errlen);
        mb_cost_model *dc = pc ? cost_of(&cs, 1, &x->decode, t, types, err, errlen) : NULL;
        rc = dc ? mb_gen_pd_predict(x->prefill.g, pc, x->decode.g, dc, mb_gen_kv_bytes(x->cfg, x->P), device, server,
                                    x->N, out, err, errlen)
                : -1;
    } else if (!strcmp(o.name, "speculative")) {
        ctx_graph *vg = draft_ready(x, err, errlen) ? NULL : verify_graph(x, (int)o.k, err, errlen);
        mb_cost_model *c2 = vg ? cost_of(&cs, 2, &x->d_prefill, t, types, err, errlen) : NULL;
        mb_cost_model *c3 = c2 ? cost_of(&cs, 3, &x->d_decode, t, types, err, errlen) : NULL;
        mb_cost_model *c0 = c3 ? cost_of(&cs, 0, &x->prefill, t, types, err, errlen) : NULL;
        mb_cost_model *c4 = c0 ? cost_of(&cs, 4, vg, t, types, err, errlen) : NULL;
        rc = c4 ? mb_gen_spec_predict(x->d_prefill.g, c2, x->d_decode.g, c3, x->prefill.g, c0, vg->g, c4, device,
                                      server, (int)o.k, o.a, x->N, out, err, errlen)
                : -1;
        out->draft_k = (int)o.k;
        out->acceptance = o.a;
    } else {
        snprintf(err, errlen, "unknown generation policy '%s' (pipeline, device, edge, galaxy, pd-device, "
                 "speculative)", o.name);
    }
    costs_free(&cs);
    return rc;
}

int64_t mb_gen_kv_bytes(const mb_decoder_cfg *cfg, int positions)
{
    return 2 * cfg->layers * cfg->kv_heads * (cfg->width / cfg->heads) * (int64_t)positions * 4;
}
