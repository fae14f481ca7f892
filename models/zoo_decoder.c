/* Decoder-only language models for generation (include/mecbed/decoder.h,
 * docs/generation.md), built natively with seeded weights:
 *  - GPT-2 small (Radford et al. 2019; HuggingFace's layout: pre-LN blocks,
 *    learned positions, GELU (tanh) MLP, biases everywhere, LM head tied to
 *    the token embedding): 124,439,808 parameters;
 *  - SmolLM-135M (HuggingFace 2024), a small Llama-architecture model:
 *    RMSNorm, rotary embeddings, SwiGLU, grouped-query attention (9 query
 *    heads, 3 KV heads), tied LM head: 134,515,008 parameters;
 *  - TinyLlama-1.1B (Zhang et al. 2024): Llama 2 layout, 32 query heads and
 *    4 KV heads, untied LM head: 1,100,048,384 parameters.
 *
 * Tokens are a 2-D [T, width] tensor (batch 1); every linear layer is one
 * Gemm (W stored [out, in]); heads split with Reshape + Transpose. RMSNorm is
 * the pattern ONNX exporters write (x / sqrt(mean(x^2) + eps) * w: Mul,
 * ReduceMean, Add, Sqrt, Div, Mul), whose scale w is a constant operand of a
 * Mul and so, as mecbed counts, not a weight: the counts are below the
 * published ones by those vectors (0.04 M for SmolLM, 0.09 M for
 * TinyLlama). Rotary embeddings are Slice, Concat, Mul and Add with cos/sin
 * tables (Constants, gathered at the tokens' positions). A tied LM head is a
 * Constant copy of the embedding (counted once, as published). */
#include "mecbed/decoder.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zoo_build.h"

typedef struct db {
    zoo_tb t; /* graph, seeded weights, first failure (zoo_build.h) */
    char nm[MB_NAME_LEN];
    const mb_decoder_cfg *c;
    int64_t T, C;   /* tokens per step, cache capacity */
    int past;       /* decode graph */
    int pos, mask;  /* position_ids, additive mask [T, L] */
    int wrow, wcol; /* decode: cache slot written, [1, C] and [C, 1] */
    int wsel, wselt; /* decode of T > 1 tokens: one-hot slots [T, C] (float) and [C, T] */
    int cos, sin;   /* Llama: [T, 1, dh] */
} db;

static const mb_decoder_cfg configs[] = {
    {"gpt2", MB_DEC_GPT2, 50257, 768, 12, 12, 12, 3072, 1024, 1e-5f, 0.0f, 1, 124439808.0},
    {"smollm_135m", MB_DEC_LLAMA, 49152, 576, 30, 9, 3, 1536, 2048, 1e-5f, 10000.0f, 1, 134515008.0},
    {"tinyllama_1b", MB_DEC_LLAMA, 32000, 2048, 22, 32, 4, 5632, 2048, 1e-5f, 10000.0f, 0, 1100048384.0},
    /* a draft for speculative decoding with gpt2 (its vocabulary and layout,
     * 4 layers of width 256; not a published model: 16.3 M parameters) */
    {"gpt2_draft", MB_DEC_GPT2, 50257, 256, 4, 4, 4, 1024, 1024, 1e-5f, 0.0f, 1, 0},
    /* the same for smollm_135m: its vocabulary and Llama layout, 4 layers of
     * width 192, 3 query heads and 1 KV head (11.0 M parameters) */
    {"smollm_draft", MB_DEC_LLAMA, 49152, 192, 4, 3, 1, 512, 2048, 1e-5f, 10000.0f, 1, 0},
};
#define N_CFG (sizeof configs / sizeof configs[0])
static const char *const cfg_names[N_CFG + 1] = {"gpt2", "smollm_135m", "tinyllama_1b", "gpt2_draft", "smollm_draft", NULL};

const char *const *mb_decoder_names(void)
{
    return cfg_names;
}

static int same_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_' || *a == '.')
            a++;
        while (*b == '-' || *b == '_' || *b == '.')
            b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}

const mb_decoder_cfg *mb_decoder_find(const char *name)
{
    for (size_t i = 0; name && i < N_CFG; i++)
        if (same_name(name, configs[i].name))
            return &configs[i];
    return NULL;
}

static const char *nm(db *b, const char *pfx, const char *what)
{
    if (snprintf(b->nm, sizeof b->nm, "%s%s", pfx, what) >= (int)sizeof b->nm)
        b->nm[sizeof b->nm - 1] = 0; /* names are short; a long one is cut, never overflows */
    return b->nm;
}

static int binary(db *b, const char *name, mb_op_type t, int x, int y)
{
    mb_node n = zoo_node(name, t, x);
    n.inputs[1] = y;
    n.n_inputs = 2;
    return zoo_tb_add(&b->t, &n);
}

static int unary(db *b, const char *name, mb_op_type t, int x)
{
    mb_node n = zoo_node(name, t, x);
    n.n_inputs = 1;
    return zoo_tb_add(&b->t, &n);
}

static int with_scalar(db *b, const char *name, mb_op_type t, int x, float v)
{
    mb_node n = zoo_node(name, t, x);
    n.n_inputs = 1;
    n.params[0] = zoo_filled(1, (int64_t[]){1}, v);
    n.n_params = 1;
    return zoo_tb_add(&b->t, &n);
}

static int reshape(db *b, const char *name, int x, int nd, const int64_t *shape)
{
    mb_node n = zoo_node(name, MB_OP_RESHAPE, x);
    n.n_inputs = 1;
    n.a.shape_ndim = nd;
    memcpy(n.a.shape, shape, sizeof(int64_t) * (size_t)nd);
    return zoo_tb_add(&b->t, &n);
}

static int transpose(db *b, const char *name, int x, int nd, const int *perm)
{
    mb_node n = zoo_node(name, MB_OP_TRANSPOSE, x);
    n.n_inputs = 1;
    memcpy(n.a.perm, perm, sizeof(int) * (size_t)nd);
    return zoo_tb_add(&b->t, &n);
}

/* Slice [s, e) of axis ax (the others whole). */
static int slice(db *b, const char *name, int x, int ax, int64_t s, int64_t e)
{
    mb_node n = zoo_node(name, MB_OP_SLICE, x);
    n.n_inputs = 1;
    n.a.starts[ax] = s;
    n.a.ends[ax] = e;
    n.a.steps[ax] = 1;
    return zoo_tb_add(&b->t, &n);
}

/* y = x W^T (+ bias): W [out, in] uniform in +-sqrt(3/in) (unit gain). */
static int linear(db *b, const char *name, int x, int64_t in_f, int64_t out_f, int bias)
{
    mb_node n = zoo_node(name, MB_OP_GEMM, x);
    n.n_inputs = 1;
    float s = sqrtf(3.0f / (float)in_f);
    n.a.trans_b = 1;
    n.a.alpha = n.a.beta = 1.0f;
    n.params[n.n_params++] = zoo_tb_draw(&b->t, 2, (int64_t[]){out_f, in_f}, -s, s);
    if (bias)
        n.params[n.n_params++] = zoo_tb_draw(&b->t, 1, (int64_t[]){out_f}, -0.02f, 0.02f);
    return zoo_tb_add(&b->t, &n);
}

static int constant(db *b, const char *name, mb_tensor *t, int dtype)
{
    mb_node n = zoo_node(name, MB_OP_CONSTANT, -1);
    n.params[0] = t;
    n.n_params = 1;
    n.a.dtype = dtype;
    return zoo_tb_add(&b->t, &n);
}

static int norm(db *b, const char *name_in, int x)
{
    int64_t D = b->c->width;
    char name[MB_NAME_LEN]; /* name_in may be b->nm, which nm() below reuses */
    snprintf(name, sizeof name, "%s", name_in);
    if (b->c->arch == MB_DEC_GPT2) {
        mb_node n = zoo_node(name, MB_OP_LAYERNORM, x);
        n.n_inputs = 1;
        n.a.axis = -1;
        n.a.epsilon = b->c->eps;
        n.params[0] = zoo_tb_draw(&b->t, 1, (int64_t[]){D}, 0.8f, 1.2f);
        n.params[1] = zoo_tb_draw(&b->t, 1, (int64_t[]){D}, -0.1f, 0.1f);
        n.n_params = 2;
        return zoo_tb_add(&b->t, &n);
    }
    char p[MB_NAME_LEN + 1];
    snprintf(p, sizeof p, "%s.", name);
    int sq = binary(b, nm(b, p, "square"), MB_OP_MUL, x, x);
    mb_node m = zoo_node(nm(b, p, "mean"), MB_OP_REDUCEMEAN, sq);
    m.n_inputs = 1;
    m.a.axes_mask = 1 << 1;
    m.a.keepdims = 1;
    int ms = zoo_tb_add(&b->t, &m);
    ms = with_scalar(b, nm(b, p, "eps"), MB_OP_ADD, ms, b->c->eps);
    int r = unary(b, nm(b, p, "rms"), MB_OP_SQRT, ms);
    int y = binary(b, nm(b, p, "normalized"), MB_OP_DIV, x, r);
    mb_node w = zoo_node(name, MB_OP_MUL, y);
    w.n_inputs = 1;
    w.params[0] = zoo_tb_draw(&b->t, 1, (int64_t[]){D}, 0.8f, 1.2f);
    w.n_params = 1;
    return zoo_tb_add(&b->t, &w);
}

/* Rotary embedding of x [T, nh, dh] (HuggingFace's rotate_half form):
 * x*cos + cat(x2, x1)*sin', sin' = cat(-sin, sin) folding rotate_half's sign. */
static int rope(db *b, const char *p, int x, int64_t dh)
{
    int x1 = slice(b, nm(b, p, "rope.lo"), x, 2, 0, dh / 2);
    int x2 = slice(b, nm(b, p, "rope.hi"), x, 2, dh / 2, dh);
    mb_node cat = zoo_node(nm(b, p, "rope.rotate"), MB_OP_CONCAT, x2);
    cat.inputs[1] = x1;
    cat.n_inputs = 2;
    cat.a.axis = 2;
    int rot = zoo_tb_add(&b->t, &cat);
    int a = binary(b, nm(b, p, "rope.cos"), MB_OP_MUL, x, b->cos);
    int s = binary(b, nm(b, p, "rope.sin"), MB_OP_MUL, rot, b->sin);
    return binary(b, nm(b, p, "rope"), MB_OP_ADD, a, s);
}

/* The cache of one layer: keys [Hkv, dh, C] from k_t [Hkv, dh, T], values
 * [Hkv, C, dh] from v [Hkv, T, dh]. Prefill pads to C; decode writes slot p
 * of the past cache (Where over the slot mask). */
static void cache_update(db *b, const char *p, int layer, int *k_t, int *v, int *present_k, int *present_v)
{
    const mb_decoder_cfg *c = b->c;
    int64_t dh = c->width / c->heads, Hkv = c->kv_heads, C = b->C;
    if (!b->past) {
        mb_node pk = zoo_node(nm(b, p, "present.key"), MB_OP_PAD, *k_t);
        pk.n_inputs = 1;
        pk.a.pad_amounts[3 + 2] = C - b->T; /* end of axis 2 (rank 3: begin 0..2, end 3..5) */
        *present_k = zoo_tb_add(&b->t, &pk);
        mb_node pv = zoo_node(nm(b, p, "present.value"), MB_OP_PAD, *v);
        pv.n_inputs = 1;
        pv.a.pad_amounts[3 + 1] = C - b->T;
        *present_v = zoo_tb_add(&b->t, &pv);
        return; /* prefill attends over the new keys alone */
    }
    mb_node pk = zoo_node("", MB_OP_INPUT, -1);
    snprintf(pk.name, sizeof pk.name, "past.%d.key", layer);
    pk.a.shape_ndim = 3;
    memcpy(pk.a.shape, (int64_t[]){Hkv, dh, C}, 3 * sizeof(int64_t));
    int past_k = zoo_tb_add(&b->t, &pk);
    mb_node pv = zoo_node("", MB_OP_INPUT, -1);
    snprintf(pv.name, sizeof pv.name, "past.%d.value", layer);
    pv.a.shape_ndim = 3;
    memcpy(pv.a.shape, (int64_t[]){Hkv, C, dh}, 3 * sizeof(int64_t));
    int past_v = zoo_tb_add(&b->t, &pv);
    if (b->T > 1) { /* each new key and value into its slot: one-hot products, exact (one term each) */
        *k_t = binary(b, nm(b, p, "cache.key_slots"), MB_OP_MATMUL, *k_t, b->wsel);  /* [Hkv, dh, C] */
        *v = binary(b, nm(b, p, "cache.value_slots"), MB_OP_MATMUL, b->wselt, *v); /* [Hkv, C, dh] */
    }
    mb_node wk = zoo_node(nm(b, p, "present.key"), MB_OP_WHERE, b->wrow);
    wk.inputs[1] = *k_t;
    wk.inputs[2] = past_k;
    wk.n_inputs = 3;
    *present_k = *k_t = zoo_tb_add(&b->t, &wk);
    mb_node wv = zoo_node(nm(b, p, "present.value"), MB_OP_WHERE, b->wcol);
    wv.inputs[1] = *v;
    wv.inputs[2] = past_v;
    wv.n_inputs = 3;
    *present_v = *v = zoo_tb_add(&b->t, &wv);
}

/* Self-attention on x [T, D] with grouped-query heads; appends this layer's
 * present key and value to outs. */
static int attention(db *b, const char *p, int layer, int x, int *present_k, int *present_v)
{
    const mb_decoder_cfg *c = b->c;
    int64_t T = b->T, D = c->width, H = c->heads, Hkv = c->kv_heads, dh = D / H, g = H / Hkv;
    int bias = c->arch == MB_DEC_GPT2;
    int q = linear(b, nm(b, p, "attn.q_proj"), x, D, D, bias);
    int k = linear(b, nm(b, p, "attn.k_proj"), x, D, Hkv * dh, bias);
    int v = linear(b, nm(b, p, "attn.v_proj"), x, D, Hkv * dh, bias);
    q = reshape(b, nm(b, p, "attn.q_split"), q, 3, (int64_t[]){T, H, dh});
    k = reshape(b, nm(b, p, "attn.k_split"), k, 3, (int64_t[]){T, Hkv, dh});
    v = reshape(b, nm(b, p, "attn.v_split"), v, 3, (int64_t[]){T, Hkv, dh});
    if (c->arch == MB_DEC_LLAMA) {
        char pq[MB_NAME_LEN], pk[MB_NAME_LEN];
        snprintf(pq, sizeof pq, "%sattn.q.", p);
        snprintf(pk, sizeof pk, "%sattn.k.", p);
        q = rope(b, pq, q, dh);
        k = rope(b, pk, k, dh);
    }
    q = with_scalar(b, nm(b, p, "attn.q_scale"), MB_OP_MUL, q, 1.0f / sqrtf((float)dh));
    q = transpose(b, nm(b, p, "attn.q_heads"), q, 3, (int[]){1, 0, 2}); /* [H, T, dh] */
    k = transpose(b, nm(b, p, "attn.k_heads"), k, 3, (int[]){1, 2, 0}); /* [Hkv, dh, T] */
    v = transpose(b, nm(b, p, "attn.v_heads"), v, 3, (int[]){1, 0, 2}); /* [Hkv, T, dh] */
    cache_update(b, p, layer, &k, &v, present_k, present_v);
    int64_t L = b->past ? b->C : T;
    if (g > 1) /* the g query heads of one KV head become g*T rows of one batched MatMul */
        q = reshape(b, nm(b, p, "attn.q_groups"), q, 3, (int64_t[]){Hkv, g * T, dh});
    int s = binary(b, nm(b, p, "attn.scores"), MB_OP_MATMUL, q, k); /* [Hkv, g*T, L] */
    if (g > 1)
        s = reshape(b, nm(b, p, "attn.scores_groups"), s, 4, (int64_t[]){Hkv, g, T, L});
    s = binary(b, nm(b, p, "attn.masked"), MB_OP_ADD, s, b->mask);
    mb_node sm = zoo_node(nm(b, p, "attn.softmax"), MB_OP_SOFTMAX, s);
    sm.n_inputs = 1;
    sm.a.axis = -1;
    s = zoo_tb_add(&b->t, &sm);
    if (g > 1)
        s = reshape(b, nm(b, p, "attn.probs"), s, 3, (int64_t[]){Hkv, g * T, L});
    int o = binary(b, nm(b, p, "attn.context"), MB_OP_MATMUL, s, v); /* [Hkv, g*T, dh] */
    if (g > 1)
        o = reshape(b, nm(b, p, "attn.context_heads"), o, 3, (int64_t[]){H, T, dh});
    o = transpose(b, nm(b, p, "attn.merge"), o, 3, (int[]){1, 0, 2});
    o = reshape(b, nm(b, p, "attn.concat"), o, 2, (int64_t[]){T, D});
    return linear(b, nm(b, p, "attn.o_proj"), o, D, D, bias);
}

static int mlp(db *b, const char *p, int x)
{
    const mb_decoder_cfg *c = b->c;
    int64_t D = c->width, F = c->ffn;
    if (c->arch == MB_DEC_GPT2) {
        int h = linear(b, nm(b, p, "mlp.fc"), x, D, F, 1);
        mb_node ge = zoo_node(nm(b, p, "mlp.gelu"), MB_OP_GELU, h);
        ge.n_inputs = 1;
        ge.a.gelu_tanh = 1; /* GPT-2's gelu_new */
        h = zoo_tb_add(&b->t, &ge);
        return linear(b, nm(b, p, "mlp.proj"), h, F, D, 1);
    }
    int gate = linear(b, nm(b, p, "mlp.gate_proj"), x, D, F, 0);
    int up = linear(b, nm(b, p, "mlp.up_proj"), x, D, F, 0);
    int sg = unary(b, nm(b, p, "mlp.gate_sigmoid"), MB_OP_SIGMOID, gate);
    int act = binary(b, nm(b, p, "mlp.silu"), MB_OP_MUL, gate, sg);
    int h = binary(b, nm(b, p, "mlp.swiglu"), MB_OP_MUL, act, up);
    return linear(b, nm(b, p, "mlp.down_proj"), h, F, D, 0);
}

static int int_input(db *b, const char *name, int64_t T)
{
    mb_node n = zoo_node(name, MB_OP_INPUT, -1);
    n.a.shape_ndim = 1;
    n.a.shape[0] = T;
    n.a.dtype = MB_DT_INT64;
    return zoo_tb_add(&b->t, &n);
}

/* Positions of the keys attended to: the step's own (prefill) or the C
 * cache slots (decode); mask [T, L] = -1e9 where key position > query's. */
static void masks(db *b)
{
    int64_t T = b->T, C = b->C;
    int keys = b->pos;
    int64_t L = T;
    if (b->past) {
        mb_tensor *ar = mb_tensor_new(1, (int64_t[]){C});
        for (int64_t j = 0; ar && j < C; j++)
            ar->data[j] = (float)j;
        keys = constant(b, "cache.slots", ar, MB_DT_INT64);
        L = C;
    }
    int krow = reshape(b, "mask.key_positions", keys, 2, (int64_t[]){1, L});
    int qcol = reshape(b, "mask.query_positions", b->pos, 2, (int64_t[]){T, 1});
    int fut = binary(b, "mask.future", MB_OP_GREATER, krow, qcol);
    mb_node cast = zoo_node("mask.float", MB_OP_CAST, fut);
    cast.n_inputs = 1;
    cast.a.dtype = MB_DT_FLOAT;
    int m = zoo_tb_add(&b->t, &cast);
    b->mask = with_scalar(b, "mask.additive", MB_OP_MUL, m, -1e9f);
    if (b->past && T == 1) {
        b->wrow = binary(b, "cache.write_slot", MB_OP_EQUAL, krow, qcol); /* [1, C] */
        b->wcol = reshape(b, "cache.write_slot_column", b->wrow, 2, (int64_t[]){C, 1});
    } else if (b->past) { /* T tokens (speculative verification): slots pos_0..pos_T-1 */
        int eq = binary(b, "cache.write_slots", MB_OP_EQUAL, krow, qcol); /* [T, C] */
        mb_node cs = zoo_node("cache.write_select", MB_OP_CAST, eq);
        cs.n_inputs = 1;
        cs.a.dtype = MB_DT_FLOAT;
        b->wsel = zoo_tb_add(&b->t, &cs);
        b->wselt = transpose(b, "cache.write_select_t", b->wsel, 2, (int[]){1, 0}); /* [C, T] */
        mb_node any = zoo_node("cache.written", MB_OP_REDUCEMAX, b->wsel);
        any.n_inputs = 1;
        any.a.axes_mask = 1;
        any.a.keepdims = 1;
        int w = zoo_tb_add(&b->t, &any); /* [1, C]: 1 where a token writes */
        b->wrow = with_scalar(b, "cache.write_slot", MB_OP_GREATER, w, 0.5f);
        b->wcol = reshape(b, "cache.write_slot_column", b->wrow, 2, (int64_t[]){C, 1});
    }
}

/* cos and sin' tables [C, dh] of the rotary embedding, gathered at the positions. */
static void rope_tables(db *b)
{
    const mb_decoder_cfg *c = b->c;
    int64_t dh = c->width / c->heads, C = b->C, T = b->T;
    mb_tensor *tc = mb_tensor_new(2, (int64_t[]){C, dh}), *ts = mb_tensor_new(2, (int64_t[]){C, dh});
    for (int64_t pos = 0; tc && ts && pos < C; pos++)
        for (int64_t i = 0; i < dh / 2; i++) {
            double f = (double)pos * pow((double)c->rope_theta, -2.0 * (double)i / (double)dh);
            tc->data[pos * dh + i] = tc->data[pos * dh + dh / 2 + i] = (float)cos(f);
            ts->data[pos * dh + i] = (float)-sin(f);
            ts->data[pos * dh + dh / 2 + i] = (float)sin(f);
        }
    int kc = constant(b, "rope.cos_table", tc, MB_DT_FLOAT), ks = constant(b, "rope.sin_table", ts, MB_DT_FLOAT);
    b->cos = reshape(b, "rope.cos_shape", binary(b, "rope.cos", MB_OP_GATHER, kc, b->pos), 3, (int64_t[]){T, 1, dh});
    b->sin = reshape(b, "rope.sin_shape", binary(b, "rope.sin", MB_OP_GATHER, ks, b->pos), 3, (int64_t[]){T, 1, dh});
}

static int embed(db *b, const char *name, int ids, int64_t rows, int64_t D)
{
    mb_node n = zoo_node(name, MB_OP_GATHER, ids);
    n.n_inputs = 1;
    n.a.gather_table = 1;
    n.params[0] = zoo_tb_draw(&b->t, 2, (int64_t[]){rows, D}, -0.05f, 0.05f);
    n.n_params = 1;
    return zoo_tb_add(&b->t, &n);
}

static int lm_head(db *b, int x, int tok_embed)
{
    const mb_decoder_cfg *c = b->c;
    if (!c->tied)
        return linear(b, "lm_head", x, c->width, c->vocab, 0);
    const mb_tensor *w = tok_embed >= 0 ? b->t.g->nodes[tok_embed].params[0] : NULL;
    int wc = constant(b, "lm_head.weight", w ? mb_tensor_clone(w) : NULL, MB_DT_FLOAT);
    mb_node n = zoo_node("lm_head", MB_OP_GEMM, x);
    n.inputs[1] = wc;
    n.n_inputs = 2;
    n.a.trans_b = 1;
    n.a.alpha = n.a.beta = 1.0f;
    return zoo_tb_add(&b->t, &n);
}

static int check_args(const mb_decoder_cfg *c, int64_t T, int64_t C, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!c || c->heads < 1 || c->kv_heads < 1 || c->heads % c->kv_heads || c->width % c->heads ||
        (c->width / c->heads) % 2 || c->layers < 1 || c->vocab < 2 || c->ffn < 1)
        why = "bad configuration (heads must divide width, KV heads divide heads, head width even)";
    else if (T < 1 || C < T)
        why = "the step's tokens must be at least 1 and at most the cache capacity";
    else if (C > c->max_pos)
        why = "cache capacity exceeds the positions the model knows";
    else if (2 * c->layers + 1 > MB_MAX_OUTPUTS)
        why = "too many layers for the graph's outputs";
    if (why)
        snprintf(err, errlen, "%s: %s (tokens %lld, capacity %lld, max positions %lld)", c ? c->name : "decoder", why,
                 (long long)T, (long long)C, c ? (long long)c->max_pos : 0LL);
    return why ? -1 : 0;
}

mb_graph *mb_decoder_build(const mb_decoder_cfg *c, int64_t T, int64_t C, int with_past, uint64_t seed,
                           int structure_only, char *err, size_t errlen)
{
    if (check_args(c, T, C, err, errlen))
        return NULL;
    db b = {0};
    b.t.g = mb_graph_new(c->name);
    if (!b.t.g) {
        snprintf(err, errlen, "%s: out of memory", c->name);
        return NULL;
    }
    b.t.seed = seed;
    b.t.salt = 0x3d00000000ull; /* the decoders' weight streams */
    b.t.structure_only = structure_only;
    b.c = c;
    b.T = T;
    b.C = C;
    b.past = with_past;
    int ids = int_input(&b, "input_ids", T);
    b.pos = int_input(&b, "position_ids", T);
    masks(&b);
    int tok = embed(&b, "embed_tokens", ids, c->vocab, c->width), x = tok;
    if (c->arch == MB_DEC_GPT2)
        x = binary(&b, "embed_add_positions", MB_OP_ADD, x, embed(&b, "embed_positions", b.pos, c->max_pos, c->width));
    else
        rope_tables(&b);
    int outs[MB_MAX_OUTPUTS];
    for (int l = 0; l < c->layers; l++) {
        char p[32];
        snprintf(p, sizeof p, "layers.%d.", l);
        int a = attention(&b, p, l, norm(&b, nm(&b, p, "norm1"), x), &outs[1 + 2 * l], &outs[2 + 2 * l]);
        x = binary(&b, nm(&b, p, "residual1"), MB_OP_ADD, x, a);
        int h = mlp(&b, p, norm(&b, nm(&b, p, "norm2"), x));
        x = binary(&b, nm(&b, p, "residual2"), MB_OP_ADD, x, h);
    }
    if (T > 1 && !with_past) /* prefill: the last position's token; T > 1 decode: every position's */
        x = slice(&b, "last_token", x, 0, T - 1, T);
    x = lm_head(&b, norm(&b, "norm", x), tok);
    mb_node am = zoo_node("next_token", MB_OP_ARGMAX, x);
    am.n_inputs = 1;
    am.a.axis = -1;
    outs[0] = zoo_tb_add(&b.t, &am);
    if (!b.t.failed) {
        b.t.g->n_outputs = (int)(1 + 2 * c->layers);
        memcpy(b.t.g->outputs, outs, sizeof(int) * (size_t)b.t.g->n_outputs);
        char e[300];
        if (mb_graph_infer(b.t.g, e, sizeof e)) {
            snprintf(b.t.err, sizeof b.t.err, "%s: %s", c->name, e);
            b.t.failed = 1;
        }
    }
    if (b.t.failed) {
        snprintf(err, errlen, "%s", b.t.err);
        mb_graph_free(b.t.g);
        return NULL;
    }
    return b.t.g;
}

static void borrow(mb_tensor *dst, const mb_tensor *src)
{
    if (dst->owns_data)
        free(dst->data);
    dst->data = src->data;
    dst->owns_data = 0;
}

int mb_decoder_share_weights(mb_graph *dst, const mb_graph *src, char *err, size_t errlen)
{
    int shared = 0;
    for (int i = 0; i < dst->n_nodes; i++) {
        mb_node *n = &dst->nodes[i];
        if (!n->n_params)
            continue;
        int j = mb_graph_find(src, n->name);
        const mb_node *s = j >= 0 ? &src->nodes[j] : NULL;
        int ok = s && s->n_params == n->n_params;
        for (int k = 0; ok && k < n->n_params; k++)
            ok = mb_tensor_same_shape(n->params[k], s->params[k]);
        if (!ok) {
            if (n->type == MB_OP_CONSTANT || n->n_params == 1) {
                int64_t ne = mb_tensor_numel(n->params[0]);
                if (ne <= 1)
                    continue; /* scalar operands (scales, epsilons) are the graph's own */
            }
            snprintf(err, errlen, "node '%s' of %s has no weights of the same shape in %s", n->name, dst->name,
                     src->name);
            return -1;
        }
        for (int k = 0; k < n->n_params; k++, shared++)
            borrow(n->params[k], s->params[k]);
    }
    return shared;
}

int64_t mb_decoder_weight_bytes_per_step(const mb_graph *g)
{
    int64_t bytes = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        if (n->type == MB_OP_GATHER) {
            bytes += n->out_bytes; /* the rows gathered from a table (a param or a Constant) */
            continue;
        }
        if (n->type == MB_OP_INPUT)
            continue;
        for (int k = 0; k < n->n_params; k++)
            if (n->type != MB_OP_CONSTANT)
                bytes += (int64_t)mb_tensor_bytes(n->params[k]);
        for (int k = 0; k < n->n_inputs; k++) {
            const mb_node *p = &g->nodes[n->inputs[k]];
            if (p->type == MB_OP_CONSTANT && p->n_params && mb_tensor_numel(p->params[0]) > 1 &&
                p->out_dtype == MB_DT_FLOAT)
                bytes += (int64_t)mb_tensor_bytes(p->params[0]); /* a weight operand: the tied LM head */
        }
    }
    return bytes;
}

/* The layer in a node's name, or -1. */
static int named_layer(const char *nm)
{
    int l, k = 0;
    if ((sscanf(nm, "layers.%d.%n", &l, &k) == 1 && k > 0) || (sscanf(nm, "past.%d.%n", &l, &k) == 1 && k > 0))
        return l >= 0 ? l : -1;
    return -1;
}

static int last_layer_node(const mb_graph *g)
{
    int last = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strncmp(g->nodes[i].name, "layers.", 7))
            last = i;
    return last;
}

int mb_decoder_layer_of(const mb_graph *g, int node)
{
    int l = named_layer(g->nodes[node].name);
    return l >= 0 ? l : node < last_layer_node(g) ? MB_DEC_PRE : MB_DEC_POST;
}

int mb_decoder_assign(const mb_graph *g, int n_layers, const int *layer_site, int device, int *site_of_op)
{
    int max_layer = -1, last = last_layer_node(g);
    for (int i = 0; i < g->n_nodes; i++) {
        int l = named_layer(g->nodes[i].name);
        if (l >= n_layers)
            return -1;
        if (l > max_layer)
            max_layer = l;
        site_of_op[i] = l >= 0 ? layer_site[l] : i < last ? device : layer_site[n_layers - 1];
    }
    return max_layer + 1 == n_layers ? n_layers : -1;
}
