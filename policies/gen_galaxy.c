/* Tensor-parallel generation across K edge nodes (Galaxy, Ye et al.,
 * INFOCOM 2024; include/mecbed/genplan.h, docs/generation.md "Policies").
 *
 * Each worker (an edge node) holds a group of KV heads (with their query
 * heads, their columns of the Q/K/V projections and of the attention output
 * projection, and their slice of every layer's KV cache), a slice of the
 * MLP's hidden columns and a slice of the LM head's vocabulary; norms,
 * residual adds and the other small ops are replicated on every worker.
 * Groups and slices are apportioned by worker speed.
 *
 * Prediction: per layer the slowest worker's share of the layer's ops plus
 * two all-reduces of the [T, D] hidden state (after attention and after the
 * MLP: Galaxy's and Megatron's row-parallel projections sum partial
 * results), each through the leader (edge0): every other worker sends its
 * partial to the leader, the leader sends the sum back. The device embeds
 * the token and sends the hidden state (and masks) to the leader, which
 * forwards it to the other workers; the workers' partial argmaxes (value,
 * index) meet at the leader, which sends the token to the device.
 *
 * Verification (mb_gen_galaxy_plan): a plan of regions (plan.h) in which
 * each worker computes its heads' and columns' regions of the same ops and
 * receives the exact slices it needs from the others (all-gathers of the
 * heads' context, the attention output, the MLP hidden state and the MLP
 * output: four per layer, where the prediction's partial-sum all-reduces
 * are two), so the split result is bit-identical to the unsplit model and
 * generation must give the same tokens. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/decoder.h"
#include "mecbed/genplan.h"
#include "mecbed/regionset.h"

/* Split n units among k workers in proportion to speed[] (largest remainder). */
static void apportion(int64_t n, int k, const double *speed, int64_t *start)
{
    double sum = 0;
    for (int w = 0; w < k; w++)
        sum += speed[w] > 0 ? speed[w] : 0;
    int64_t cnt[MB_GEN_MAX_WORKERS], given = 0;
    double rem[MB_GEN_MAX_WORKERS];
    for (int w = 0; w < k; w++) {
        double x = sum > 0 ? (double)n * (speed[w] > 0 ? speed[w] : 0) / sum : (double)n / k;
        cnt[w] = (int64_t)floor(x);
        rem[w] = x - (double)cnt[w];
        given += cnt[w];
    }
    while (given < n) {
        int best = 0;
        for (int w = 1; w < k; w++)
            if (rem[w] > rem[best])
                best = w;
        cnt[best]++;
        rem[best] = -1;
        given++;
    }
    start[0] = 0;
    for (int w = 0; w < k; w++)
        start[w + 1] = start[w] + cnt[w];
}

int mb_gen_tp_partition(const mb_decoder_cfg *cfg, int k, const int *sites, const double *speed, mb_gen_tp *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (k < 1 || k > MB_GEN_MAX_WORKERS) {
        snprintf(err, errlen, "tensor parallelism needs 1 to %d edge nodes, not %d", MB_GEN_MAX_WORKERS, k);
        return -1;
    }
    out->k = k;
    memcpy(out->sites, sites, sizeof(int) * (size_t)k);
    out->kv_heads = cfg->kv_heads;
    out->group = cfg->heads / cfg->kv_heads;
    out->dh = cfg->width / cfg->heads;
    out->ffn = cfg->ffn;
    out->vocab = cfg->vocab;
    apportion(cfg->kv_heads, k, speed, out->kv0);
    apportion(cfg->ffn, k, speed, out->f0);
    apportion(cfg->vocab, k, speed, out->v0);
    return 0;
}

/* Every range starts where the previous ends and they cover the whole. */
static int tp_check(const mb_gen_tp *tp, char *err, size_t errlen)
{
    const int64_t *r[3] = {tp->kv0, tp->f0, tp->v0}, total[3] = {tp->kv_heads, tp->ffn, tp->vocab};
    static const char *const what[3] = {"KV heads", "FFN columns", "vocabulary columns"};
    if (tp->k < 1 || tp->k > MB_GEN_MAX_WORKERS) {
        snprintf(err, errlen, "tensor parallelism across %d workers: 1 to %d", tp->k, MB_GEN_MAX_WORKERS);
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        int ok = r[i][0] == 0 && r[i][tp->k] == total[i];
        for (int w = 0; w < tp->k; w++)
            ok = ok && r[i][w + 1] >= r[i][w];
        if (!ok) {
            snprintf(err, errlen, "the workers' %s [%lld, %lld) do not cover [0, %lld) once", what[i],
                     (long long)r[i][0], (long long)r[i][tp->k], (long long)total[i]);
            return -1;
        }
    }
    return 0;
}

enum { TP_DEVICE = 0, TP_WHOLE, TP_SPLIT };

typedef struct tp_rule {
    const char *name; /* suffix after "layers.L." (prefix match when it ends in '*') */
    int rows;         /* split along the region's rows (axis 0) instead of its columns */
    int what;         /* 0: KV heads x unit; 1: FFN columns; 2: vocabulary */
    int unit;         /* 0: 1 per KV head; 1: g (query heads); 2: dh; 3: g * dh */
    int g1_only;      /* only without grouped-query attention (the 4-D scores otherwise) */
} tp_rule;

static const tp_rule rules[] = {
    {"attn.q_proj", 0, 0, 3, 0},   {"attn.k_proj", 0, 0, 2, 0},   {"attn.v_proj", 0, 0, 2, 0},
    {"attn.q_split", 0, 0, 1, 0},  {"attn.q.rope*", 0, 0, 1, 0},  {"attn.q_scale", 0, 0, 1, 0},
    {"attn.k_split", 0, 0, 0, 0},  {"attn.k.rope*", 0, 0, 0, 0},  {"attn.v_split", 0, 0, 0, 0},
    {"attn.q_heads", 1, 0, 1, 0},  {"attn.k_heads", 1, 0, 0, 0},  {"attn.v_heads", 1, 0, 0, 0},
    {"present.key", 1, 0, 0, 0},   {"present.value", 1, 0, 0, 0}, {"attn.scores", 1, 0, 0, 0},
    {"attn.masked", 1, 0, 0, 1},   {"attn.softmax", 1, 0, 0, 1},  {"attn.context", 1, 0, 0, 0},
    {"attn.merge", 0, 0, 1, 0},    {"attn.concat", 0, 0, 3, 0},   {"attn.o_proj", 0, 0, 3, 0},
    {"mlp.fc", 0, 1, 0, 0},        {"mlp.gelu", 0, 1, 0, 0},      {"mlp.gate_proj", 0, 1, 0, 0},
    {"mlp.up_proj", 0, 1, 0, 0},   {"mlp.gate_sigmoid", 0, 1, 0, 0}, {"mlp.silu", 0, 1, 0, 0},
    {"mlp.swiglu", 0, 1, 0, 0},    {"mlp.proj", 0, 0, 3, 0},      {"mlp.down_proj", 0, 0, 3, 0},
};

static const tp_rule *rule_of(const char *suffix, int grouped)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const tp_rule *r = &rules[i];
        size_t n = strlen(r->name);
        int match = r->name[n - 1] == '*' ? !strncmp(suffix, r->name, n - 1) : !strcmp(suffix, r->name);
        if (match && !(r->g1_only && grouped))
            return r;
    }
    return NULL;
}

static const tp_rule lm_rule = {"lm_head", 0, 2, 0, 0};

/* Where node v goes: TP_DEVICE (before the first layer), TP_WHOLE (every
 * worker computes it whole) or TP_SPLIT (worker w computes *r, maybe empty). */
static int tp_piece(const mb_graph *g, int v, const mb_gen_tp *tp, int w, mb_region *r)
{
    const mb_node *n = &g->nodes[v];
    int layer = mb_decoder_layer_of(g, v);
    if (layer == MB_DEC_PRE)
        return TP_DEVICE;
    const tp_rule *ru = NULL;
    if (layer >= 0) {
        const char *s = strchr(n->name + 7, '.'); /* "layers.L." */
        ru = s ? rule_of(s + 1, tp->group > 1) : NULL;
    } else if (!strcmp(n->name, "lm_head"))
        ru = &lm_rule;
    if (!ru || !n->local || n->out_ndim < 2 || n->out_ndim > 3)
        return TP_WHOLE;
    int64_t a, b;
    if (ru->what == 1)
        a = tp->f0[w], b = tp->f0[w + 1];
    else if (ru->what == 2)
        a = tp->v0[w], b = tp->v0[w + 1];
    else {
        int64_t u = ru->unit == 0 ? 1 : ru->unit == 1 ? tp->group : ru->unit == 2 ? tp->dh : tp->group * tp->dh;
        a = tp->kv0[w] * u, b = tp->kv0[w + 1] * u;
    }
    *r = mb_region_full_dims(n->out_ndim, n->out_dims);
    int64_t ext = ru->rows ? r->h1 : r->w1;
    if (b > ext || (ru->what == 0 && tp->kv0[tp->k] * (b - a) != ext * (tp->kv0[w + 1] - tp->kv0[w])))
        return TP_WHOLE; /* not the shape the rule expects: keep it whole */
    if (ru->rows)
        r->h0 = a, r->h1 = b;
    else
        r->w0 = a, r->w1 = b;
    return TP_SPLIT;
}

/* ---- the verification plan ---- */

typedef struct tp_build {
    const mb_graph *g;
    mb_plan *p;
    int S;
    mb_regionset *held;  /* [n * S] */
    int *psite;          /* [n * (MB_GEN_MAX_WORKERS + 1)]: sites of the pieces of node u */
    mb_region *preg;     /* their regions */
    int *npieces;        /* [n] */
} tp_build;

static int add_piece(tp_build *b, int u, int site, mb_region r)
{
    int i = b->npieces[u]++;
    b->psite[u * (MB_GEN_MAX_WORKERS + 1) + i] = site;
    b->preg[u * (MB_GEN_MAX_WORKERS + 1) + i] = r;
    return mb_regionset_add(&b->held[(size_t)u * b->S + site], r);
}

/* Make region need of node u available on site: receive the parts other
 * sites computed. */
static int ensure(tp_build *b, int u, int site, mb_region need, char *err, size_t errlen)
{
    mb_regionset *h = &b->held[(size_t)u * b->S + site];
    if (mb_region_empty(need) || mb_regionset_covers(h, need))
        return 0;
    for (int i = 0; i < b->npieces[u]; i++) {
        int from = b->psite[u * (MB_GEN_MAX_WORKERS + 1) + i];
        mb_region x = mb_region_intersect(b->preg[u * (MB_GEN_MAX_WORKERS + 1) + i], need);
        if (from == site || mb_region_empty(x) || mb_regionset_covers(h, x))
            continue;
        if (mb_plan_send(b->p, u, x, from, site) < 0 || mb_regionset_add(h, x)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    if (!mb_regionset_covers(h, need)) {
        snprintf(err, errlen, "%s: no site holds the part of '%s' that site %d needs", b->g->name,
                 b->g->nodes[u].name, site);
        return -1;
    }
    return 0;
}

static int compute_on(tp_build *b, int v, int site, mb_region r, char *err, size_t errlen)
{
    const mb_node *n = &b->g->nodes[v];
    mb_region cr = mb_node_compute_region(b->g, v, r);
    for (int k = 0; k < n->n_inputs; k++) {
        int u = n->inputs[k];
        if (b->g->nodes[u].type == MB_OP_CONSTANT)
            continue;
        if (ensure(b, u, site, mb_node_input_region(b->g, v, k, cr), err, errlen))
            return -1;
    }
    if (mb_plan_compute(b->p, v, site, cr) < 0 || add_piece(b, v, site, cr)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int build_steps(tp_build *b, const mb_gen_tp *tp, int device, char *err, size_t errlen)
{
    const mb_graph *g = b->g;
    for (int v = 0; v < g->n_nodes; v++) {
        const mb_node *n = &g->nodes[v];
        mb_region full = mb_region_full_dims(n->out_ndim, n->out_dims);
        if (n->type == MB_OP_CONSTANT)
            continue;
        if (n->type == MB_OP_INPUT) {
            if (add_piece(b, v, device, full))
                goto oom;
            continue;
        }
        mb_region r;
        int cls = tp_piece(g, v, tp, 0, &r);
        if (cls == TP_DEVICE) {
            if (compute_on(b, v, device, full, err, errlen))
                return -1;
            continue;
        }
        for (int w = 0; w < tp->k; w++) {
            if (cls == TP_SPLIT)
                tp_piece(g, v, tp, w, &r);
            else
                r = full;
            if (!mb_region_empty(r) && compute_on(b, v, tp->sites[w], r, err, errlen))
                return -1;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) { /* the token and the cache end on the device */
        int o = g->outputs[i];
        if (ensure(b, o, device, mb_region_full_dims(g->nodes[o].out_ndim, g->nodes[o].out_dims), err, errlen))
            return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

mb_plan *mb_gen_galaxy_plan(const mb_graph *g, const mb_topology *t, const mb_gen_tp *tp, int device, char *err,
                            size_t errlen)
{
    int n = g->n_nodes, S = t->n_sites;
    if (tp_check(tp, err, errlen))
        return NULL;
    tp_build b = {g, mb_plan_new("galaxy", g, device), S, NULL, NULL, NULL, NULL};
    b.held = calloc((size_t)n * (size_t)S, sizeof *b.held);
    b.psite = malloc(sizeof(int) * (size_t)n * (MB_GEN_MAX_WORKERS + 1));
    b.preg = malloc(sizeof(mb_region) * (size_t)n * (MB_GEN_MAX_WORKERS + 1));
    b.npieces = calloc((size_t)n, sizeof(int));
    int rc = -1;
    if (!b.p || !b.held || !b.psite || !b.preg || !b.npieces)
        snprintf(err, errlen, "out of memory");
    else if (!build_steps(&b, tp, device, err, errlen))
        rc = mb_plan_validate(b.p, g, t, err, errlen);
    for (size_t i = 0; b.held && i < (size_t)n * (size_t)S; i++)
        mb_regionset_free(&b.held[i]);
    free(b.held);
    free(b.psite);
    free(b.preg);
    free(b.npieces);
    if (rc) {
        mb_plan_free(b.p);
        return NULL;
    }
    snprintf(b.p->note, sizeof b.p->note, "tensor parallel across %d edge node%s", tp->k, tp->k == 1 ? "" : "s");
    return b.p;
}

/* ---- the prediction ---- */

/* An all-reduce of bytes among the workers through the leader: every other
 * worker sends to the leader, the leader sends the sum back. */
static double allreduce_ms(const mb_cost_model *c, const mb_gen_tp *tp, int64_t bytes, int64_t *backbone)
{
    double up = 0, down = 0;
    for (int w = 1; w < tp->k; w++) {
        double a = mb_cost_xfer_ms(c, tp->sites[w], tp->sites[0], bytes);
        double d = mb_cost_xfer_ms(c, tp->sites[0], tp->sites[w], bytes);
        up = a > up ? a : up;
        down = d > down ? d : down;
        *backbone += 2 * bytes;
    }
    return up + down;
}

int mb_gen_galaxy_predict_step(const mb_graph *g, const mb_cost_model *c, const mb_gen_tp *tp, int device,
                               int n_layers, mb_gen_step_pred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (tp_check(tp, err, errlen))
        return -1;
    int n = g->n_nodes, leader = tp->sites[0];
    /* per worker and segment (layers, then the post-layer ops) */
    double *seg = calloc((size_t)(n_layers + 1) * MB_GEN_MAX_WORKERS, sizeof(double));
    unsigned char *sent = calloc((size_t)n, 1);
    int ids = mb_graph_find(g, "input_ids");
    int64_t tokens = ids >= 0 ? g->nodes[ids].out_dims[0] : 1, width = tp->kv_heads * tp->group * tp->dh;
    if (!seg || !sent) {
        free(seg);
        free(sent);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int v = 0; v < n; v++) {
        const mb_node *nd = &g->nodes[v];
        if (nd->type == MB_OP_INPUT || nd->type == MB_OP_CONSTANT)
            continue;
        int layer = mb_decoder_layer_of(g, v);
        mb_region r;
        int cls = tp_piece(g, v, tp, 0, &r);
        if (cls == TP_DEVICE) {
            out->device_ms += mb_cost_op_ms(c, device, v);
            continue;
        }
        for (int k = 0; k < nd->n_inputs; k++) { /* what the device made and the workers read */
            int u = nd->inputs[k];
            const mb_node *un = &g->nodes[u];
            if (un->type != MB_OP_CONSTANT && !sent[u] && tp_piece(g, u, tp, 0, &r) == TP_DEVICE) {
                sent[u] = 1;
                out->up_bytes += un->out_bytes;
            }
        }
        int s = layer >= 0 ? layer : n_layers;
        for (int w = 0; w < tp->k; w++) {
            mb_region full = mb_region_full_dims(nd->out_ndim, nd->out_dims);
            if (cls == TP_SPLIT)
                tp_piece(g, v, tp, w, &r);
            else
                r = full;
            if (!mb_region_empty(r))
                seg[s * MB_GEN_MAX_WORKERS + w] += mb_cost_region_ms(c, tp->sites[w], v, r);
        }
    }
    free(sent);
    out->compute_ms = out->device_ms;
    for (int s = 0; s <= n_layers; s++) {
        double worst = 0;
        for (int w = 0; w < tp->k; w++)
            worst = seg[s * MB_GEN_MAX_WORKERS + w] > worst ? seg[s * MB_GEN_MAX_WORKERS + w] : worst;
        out->compute_ms += worst;
    }
    free(seg);
    /* two all-reduces of the [T, D] hidden state per layer */
    int64_t hidden = tokens * width * 4;
    out->sync_ms = 2 * n_layers * allreduce_ms(c, tp, hidden, &out->backbone_bytes);
    /* the device's tensors to the leader, the leader's to the other workers */
    double x = mb_cost_xfer_ms(c, device, leader, out->up_bytes), bcast = 0, gather = 0;
    for (int w = 1; w < tp->k; w++) {
        double b = mb_cost_xfer_ms(c, leader, tp->sites[w], out->up_bytes);
        double a = mb_cost_xfer_ms(c, tp->sites[w], leader, 8); /* a partial argmax: value, index */
        bcast = b > bcast ? b : bcast;
        gather = a > gather ? a : gather;
        out->backbone_bytes += out->up_bytes + 8;
    }
    int tok = g->outputs[0];
    out->down_bytes = g->nodes[tok].out_bytes;
    double down = mb_cost_xfer_ms(c, leader, device, out->down_bytes);
    if (!isfinite(x) || !isfinite(bcast) || !isfinite(gather) || !isfinite(down) || !isfinite(out->sync_ms)) {
        snprintf(err, errlen, "no route between the device and every edge node");
        return -1;
    }
    out->ms = out->compute_ms + out->sync_ms + x + bcast + gather + down;
    out->up_ms = x;
    out->down_ms = down;
    return 0;
}
