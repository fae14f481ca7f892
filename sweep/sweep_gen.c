/* mecbed sweep, plan mode with measure = generation: one generation policy
 * of a decoder per point (include/mecbed/genplan.h; docs/generation.md,
 * "Policies"), its graphs and profiles made once per model and kept. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/genplan.h"
#include "mecbed/nodetype.h"
#include "mecbed/sweep.h"
#include "mecbed/topology.h"
#include "mecbed/model.h"

#define GEN_CACHE 8

typedef struct gen_entry {
    const mb_decoder_cfg *cfg;
    int P, N;
    mb_gen_ctx *ctx;
} gen_entry;

static gen_entry cache[GEN_CACHE];
static int n_cache;

void sw_gen_cache_free(void)
{
    for (int i = 0; i < n_cache; i++)
        mb_gen_ctx_free(cache[i].ctx);
    memset(cache, 0, sizeof cache);
    n_cache = 0;
}

static mb_gen_ctx *ctx_get(const sw_config *c, const sw_point *p, char *err, size_t errlen)
{
    const mb_decoder_cfg *cfg = mb_decoder_find(p->model);
    if (!cfg) {
        snprintf(err, errlen, "model %s: measure = generation needs a decoder (gpt2, smollm_135m, tinyllama_1b, "
                 "gpt2_draft)", p->model);
        return NULL;
    }
    for (int i = 0; i < n_cache; i++)
        if (cache[i].cfg == cfg && cache[i].P == c->prompt_tokens && cache[i].N == c->gen_tokens)
            return cache[i].ctx;
    if (n_cache == GEN_CACHE) {
        snprintf(err, errlen, "at most %d decoders per generation sweep", GEN_CACHE);
        return NULL;
    }
    int64_t C = (int64_t)c->prompt_tokens + c->gen_tokens - 1;
    if (C > cfg->max_pos) {
        snprintf(err, errlen, "prompt_tokens + gen_tokens - 1 = %lld: %s knows %lld positions", (long long)C,
                 cfg->name, (long long)cfg->max_pos);
        return NULL;
    }
    mb_gen_ctx *x = mb_gen_ctx_new(cfg, mb_gen_default_draft(cfg), c->prompt_tokens, c->gen_tokens, C, MB_ZOO_SEED, err,
                                   errlen);
    if (!x)
        return NULL;
    if (c->require_pinned && strcmp(mb_gen_ctx_profile_source(x), "pinned")) {
        snprintf(err, errlen, "model %s: profile = pinned, but its decode graph's profile is %s", cfg->name,
                 mb_gen_ctx_profile_source(x));
        mb_gen_ctx_free(x);
        return NULL;
    }
    cache[n_cache] = (gen_entry){cfg, c->prompt_tokens, c->gen_tokens, x};
    return cache[n_cache++].ctx;
}

static double metric(const mb_gen_policy_pred *g, const char *name)
{
    const struct {
        const char *n;
        double v;
    } m[] = {
        {"ttft_ms", g->ttft_ms},
        {"tpot_ms", g->tpot_ms},
        {"total_ms", g->total_ms},
        {"tokens_per_s", g->tokens_per_s},
        {"energy_per_token_mj", g->energy_per_token_mj},
        {"radio_per_token_mj", g->radio_per_token_mj},
        {"ttft_energy_mj", g->ttft_energy_mj},
        {"tokens_per_round", g->draft_k ? g->tokens_per_round : NAN},
        {"sync_ms", g->edges ? g->sync_ms : NAN},
        {"kv_transfer_bytes", g->kv_transfer_bytes > 0 ? g->kv_transfer_bytes : NAN},
        {"backbone_bytes_per_token", g->backbone_bytes_per_token},
        {"split_after", g->split_after >= 0 ? g->split_after : NAN},
        {"edges", g->edges ? g->edges : NAN},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(m[i].n, name))
            return m[i].v;
    return NAN;
}

int sw_gen_point(const sw_config *c, const sw_point *p, const mb_nodetype_set *types, sw_row *row, char *err,
                 size_t errlen)
{
    mb_gen_policy_spec ps;
    if (!p->link[0]) {
        snprintf(err, errlen, "measure = generation needs links");
        return -1;
    }
    if (mb_gen_policy_parse(p->policy, &ps, err, errlen))
        return -1;
    mb_gen_ctx *x = ctx_get(c, p, err, errlen);
    if (!x)
        return -1;
    mb_topology *t = calloc(1, sizeof *t);
    int rc = -1;
    mb_gen_policy_pred g;
    char e2[1024];
    if (!t)
        snprintf(err, errlen, "out of memory");
    else if (mb_gen_topology(p->link, ps.edges > 0 ? ps.edges : 1, NULL, t, e2, sizeof e2))
        snprintf(err, errlen, "link: %s", e2);
    else if (!sw_apply_node_types(t, p->node_types, err, errlen) &&
             !mb_nodetypes_check_sites(types, t, NULL, err, errlen) &&
             !mb_gen_ctx_predict(x, p->policy, t, types, &g, err, errlen)) {
        const mb_graph *dg = mb_gen_ctx_decode(x);
        sw_row_set(row, "ops", "%d", mb_graph_n_ops(dg));
        sw_row_set(row, "profile", "%s", mb_gen_ctx_profile_source(x));
        sw_row_num(row, "latency_ms", g.total_ms);
        sw_row_num(row, "energy_mj", g.energy_total_mj);
        sw_row_set(row, "bytes_up", "%.0f", g.up_bytes_per_token);
        sw_row_set(row, "bytes_down", "%.0f", g.down_bytes_per_token);
        sw_row_set(row, "bytes_backbone", "%.0f", g.backbone_bytes_per_token);
        sw_row_set(row, "note", "%s", g.detail);
        for (int i = 0; i < c->metrics.n; i++) {
            char col[64];
            snprintf(col, sizeof col, "m_%s", c->metrics.v[i]);
            sw_row_num(row, col, metric(&g, c->metrics.v[i]));
        }
        rc = 0;
    }
    free(t);
    return rc;
}
