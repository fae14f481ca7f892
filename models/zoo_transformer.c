/* The zoo's transformers, built natively like the CNNs (seeded weights):
 * DeiT-Tiny and ViT-B/16 (Touvron et al. 2021; Dosovitskiy et al. 2021;
 * timm's layout: pre-LN blocks, class token, learned position embedding,
 * head on the class token) and BERT-base at sequence length 128 (Devlin et
 * al. 2019; HuggingFace's layout: post-LN blocks, word, position and token
 * type embeddings, attention mask, pooler).
 *
 * Tokens are kept as a 2-D [tokens, width] tensor (batch 1), so every
 * linear layer is one Gemm (W stored [out, in] as PyTorch exports it,
 * counted as weights with its bias), and attention splits heads with
 * Reshape + Transpose into [heads, tokens, head_dim] for batched MatMuls,
 * as PyTorch's exporter writes it. The class token and position embeddings
 * are constant operands (mecbed does not count those as weights), so the
 * parameter counts are below the published ones by exactly their size
 * (0.04 M for DeiT-Tiny, 0.15 M for ViT-B/16, 0.39 M for BERT-base). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "zoo_build.h"
#include "zoo_models.h"

typedef zoo_tb tb;
#define TF_SALT 0x7f00000000ull /* the transformers' weight streams */

static char nmbuf[MB_NAME_LEN];
static const char *nm(const char *pfx, const char *what)
{
    snprintf(nmbuf, sizeof nmbuf, "%s%s", pfx, what);
    return nmbuf;
}

/* y = x W^T + b, W [out, in] uniform in +-sqrt(3/in) (unit gain), b small. */
static int linear(tb *b, const char *name, int x, int64_t in_f, int64_t out_f)
{
    mb_node n = zoo_node(name, MB_OP_GEMM, x);
    float s = sqrtf(3.0f / (float)in_f);
    n.a.trans_b = 1;
    n.a.alpha = n.a.beta = 1.0f;
    n.params[0] = zoo_tb_draw(b, 2, (int64_t[]){out_f, in_f}, -s, s);
    n.params[1] = zoo_tb_draw(b, 1, (int64_t[]){out_f}, -0.02f, 0.02f);
    n.n_params = 2;
    return zoo_tb_add(b, &n);
}

static int layernorm(tb *b, const char *name, int x, int64_t d, float eps)
{
    mb_node n = zoo_node(name, MB_OP_LAYERNORM, x);
    n.a.axis = -1;
    n.a.epsilon = eps;
    n.params[0] = zoo_tb_draw(b, 1, (int64_t[]){d}, 0.8f, 1.2f);
    n.params[1] = zoo_tb_draw(b, 1, (int64_t[]){d}, -0.1f, 0.1f);
    n.n_params = 2;
    return zoo_tb_add(b, &n);
}

static int reshape(tb *b, const char *name, int x, int nd, const int64_t *shape)
{
    mb_node n = zoo_node(name, MB_OP_RESHAPE, x);
    n.a.shape_ndim = nd;
    memcpy(n.a.shape, shape, sizeof(int64_t) * (size_t)nd);
    return zoo_tb_add(b, &n);
}

static int transpose(tb *b, const char *name, int x, int nd, const int *perm)
{
    mb_node n = zoo_node(name, MB_OP_TRANSPOSE, x);
    memcpy(n.a.perm, perm, sizeof(int) * (size_t)nd);
    return zoo_tb_add(b, &n);
}

static int binary(tb *b, const char *name, mb_op_type t, int x, int y)
{
    mb_node n = zoo_node(name, t, x);
    n.inputs[1] = y;
    n.n_inputs = 2;
    return zoo_tb_add(b, &n);
}

static int scale_by(tb *b, const char *name, mb_op_type t, int x, float v)
{
    mb_node n = zoo_node(name, t, x);
    n.params[0] = zoo_filled(1, (int64_t[]){1}, v);
    n.n_params = 1;
    return zoo_tb_add(b, &n);
}

typedef struct tf_cfg {
    int64_t tokens, width, heads, mlp;
    float eps;
    int pre_ln; /* ViT: x + f(LN(x)); BERT: LN(x + f(x)) */
} tf_cfg;

/* Multi-head self-attention on x [T, D]; mask (or -1): additive [1, 1, T]
 * broadcast over heads and query rows. */
static int attention(tb *b, const char *p, int x, const tf_cfg *c, int mask)
{
    int64_t T = c->tokens, D = c->width, H = c->heads, dh = D / H;
    int q = linear(b, nm(p, "attn.q"), x, D, D);
    int k = linear(b, nm(p, "attn.k"), x, D, D);
    int v = linear(b, nm(p, "attn.v"), x, D, D);
    int64_t split[3] = {T, H, dh};
    q = transpose(b, nm(p, "attn.q_heads"), reshape(b, nm(p, "attn.q_split"), q, 3, split), 3, (int[]){1, 0, 2});
    k = transpose(b, nm(p, "attn.k_heads"), reshape(b, nm(p, "attn.k_split"), k, 3, split), 3, (int[]){1, 2, 0});
    v = transpose(b, nm(p, "attn.v_heads"), reshape(b, nm(p, "attn.v_split"), v, 3, split), 3, (int[]){1, 0, 2});
    int s = binary(b, nm(p, "attn.scores"), MB_OP_MATMUL, q, k); /* [H, T, T] */
    s = scale_by(b, nm(p, "attn.scale"), MB_OP_MUL, s, 1.0f / sqrtf((float)dh));
    if (mask >= 0)
        s = binary(b, nm(p, "attn.masked"), MB_OP_ADD, s, mask);
    mb_node sm = zoo_node(nm(p, "attn.softmax"), MB_OP_SOFTMAX, s);
    sm.a.axis = -1;
    s = zoo_tb_add(b, &sm);
    int o = binary(b, nm(p, "attn.context"), MB_OP_MATMUL, s, v); /* [H, T, dh] */
    o = transpose(b, nm(p, "attn.merge"), o, 3, (int[]){1, 0, 2});
    o = reshape(b, nm(p, "attn.concat"), o, 2, (int64_t[]){T, D});
    return linear(b, nm(p, "attn.proj"), o, D, D);
}

static int gelu(tb *b, const char *name, int x)
{
    mb_node n = zoo_node(name, MB_OP_GELU, x);
    return zoo_tb_add(b, &n);
}

static int block(tb *b, int i, int x, const tf_cfg *c, int mask)
{
    char p[32];
    snprintf(p, sizeof p, "blocks.%d.", i);
    if (c->pre_ln) {
        int a = attention(b, p, layernorm(b, nm(p, "norm1"), x, c->width, c->eps), c, mask);
        x = binary(b, nm(p, "add1"), MB_OP_ADD, x, a);
        int h = linear(b, nm(p, "mlp.fc1"), layernorm(b, nm(p, "norm2"), x, c->width, c->eps), c->width, c->mlp);
        h = gelu(b, nm(p, "mlp.gelu"), h);
        h = linear(b, nm(p, "mlp.fc2"), h, c->mlp, c->width);
        return binary(b, nm(p, "add2"), MB_OP_ADD, x, h);
    }
    int a = attention(b, p, x, c, mask);
    x = layernorm(b, nm(p, "attn.norm"), binary(b, nm(p, "attn.residual"), MB_OP_ADD, x, a), c->width, c->eps);
    int h = linear(b, nm(p, "ffn.fc1"), x, c->width, c->mlp);
    h = gelu(b, nm(p, "ffn.gelu"), h);
    h = linear(b, nm(p, "ffn.fc2"), h, c->mlp, c->width);
    return layernorm(b, nm(p, "ffn.norm"), binary(b, nm(p, "ffn.residual"), MB_OP_ADD, x, h), c->width, c->eps);
}

/* x + P with P a constant operand (as the ONNX importer represents it). */
static int add_const(tb *b, const char *name, int x, int ndim, const int64_t *dims, float lo, float hi)
{
    mb_node n = zoo_node(name, MB_OP_ADD, x);
    n.params[0] = zoo_tb_draw(b, ndim, dims, lo, hi);
    n.n_params = 1;
    return zoo_tb_add(b, &n);
}

static int constant(tb *b, const char *name, int ndim, const int64_t *dims, float lo, float hi)
{
    mb_node n = zoo_node(name, MB_OP_CONSTANT, -1);
    n.params[0] = zoo_tb_draw(b, ndim, dims, lo, hi);
    n.n_params = 1;
    return zoo_tb_add(b, &n);
}

static mb_graph *finish(tb *b, int out, char *err, size_t errlen)
{
    if (!b->failed) {
        b->g->outputs[0] = out;
        b->g->n_outputs = 1;
        if (mb_graph_infer(b->g, b->err, sizeof b->err))
            b->failed = 1;
    }
    if (b->failed) {
        snprintf(err, errlen, "%s", b->err);
        mb_graph_free(b->g);
        return NULL;
    }
    return b->g;
}

/* ViT: 16x16 patches of a 224x224 image, class token, depth blocks, head. */
static mb_graph *vit(const char *name, uint64_t seed, int64_t D, int depth, int64_t heads, char *err, size_t errlen)
{
    tb b = {mb_graph_new(name), seed, 0, TF_SALT, zoo_structure_only(), 0, ""};
    if (!b.g) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    const int64_t P = 16, side = 224 / P, T = side * side + 1;
    tf_cfg c = {T, D, heads, 4 * D, 1e-6f, 1};
    mb_node in = zoo_node("image", MB_OP_INPUT, -1);
    in.a.shape_ndim = 4;
    memcpy(in.a.shape, (int64_t[]){1, 3, 224, 224}, 4 * sizeof(int64_t));
    int x = zoo_tb_add(&b, &in);
    mb_node pe = zoo_node("patch_embed.proj", MB_OP_CONV, x);
    float s = sqrtf(3.0f / (float)(3 * P * P));
    pe.a.kernel[0] = pe.a.kernel[1] = (int)P;
    pe.a.stride[0] = pe.a.stride[1] = (int)P;
    pe.params[0] = zoo_tb_draw(&b, 4, (int64_t[]){D, 3, P, P}, -s, s);
    pe.params[1] = zoo_tb_draw(&b, 1, (int64_t[]){D}, -0.02f, 0.02f);
    pe.n_params = 2;
    x = zoo_tb_add(&b, &pe);
    x = reshape(&b, "patch_embed.flatten", x, 2, (int64_t[]){D, T - 1});
    x = transpose(&b, "patch_embed.tokens", x, 2, (int[]){1, 0});
    int cls = constant(&b, "cls_token", 2, (int64_t[]){1, D}, -0.02f, 0.02f);
    mb_node cat = zoo_node("cat_cls", MB_OP_CONCAT, cls);
    cat.inputs[1] = x;
    cat.n_inputs = 2;
    cat.a.axis = 0;
    x = zoo_tb_add(&b, &cat);
    x = add_const(&b, "add_pos_embed", x, 2, (int64_t[]){T, D}, -0.02f, 0.02f);
    for (int i = 0; i < depth; i++)
        x = block(&b, i, x, &c, -1);
    x = layernorm(&b, "norm", x, D, c.eps);
    mb_node sl = zoo_node("cls_select", MB_OP_SLICE, x);
    sl.a.starts[0] = 0;
    sl.a.ends[0] = 1;
    sl.a.steps[0] = 1;
    x = zoo_tb_add(&b, &sl);
    x = linear(&b, "head", x, D, 1000);
    return finish(&b, x, err, errlen);
}

mb_graph *zoo_deit_tiny(uint64_t seed, char *err, size_t errlen)
{
    return vit("deit_tiny", seed, 192, 12, 3, err, errlen);
}

mb_graph *zoo_vit_b16(uint64_t seed, char *err, size_t errlen)
{
    return vit("vit_b16", seed, 768, 12, 12, err, errlen);
}

static int int_input(tb *b, const char *name, int64_t T)
{
    mb_node n = zoo_node(name, MB_OP_INPUT, -1);
    n.a.shape_ndim = 1;
    n.a.shape[0] = T;
    n.a.dtype = MB_DT_INT64;
    return zoo_tb_add(b, &n);
}

static int embedding(tb *b, const char *name, int ids, int64_t rows, int64_t D)
{
    mb_node n = zoo_node(name, MB_OP_GATHER, ids);
    n.a.gather_table = 1;
    n.params[0] = zoo_tb_draw(b, 2, (int64_t[]){rows, D}, -0.05f, 0.05f);
    n.n_params = 1;
    return zoo_tb_add(b, &n);
}

/* BERT-base, uncased vocabulary, sequence length 128: inputs input_ids,
 * token_type_ids and attention_mask (int64, [128]); output the pooled
 * [1, 768] (tanh of a linear layer on the first token). */
mb_graph *zoo_bert_base(uint64_t seed, char *err, size_t errlen)
{
    tb b = {mb_graph_new("bert_base"), seed, 0, TF_SALT, zoo_structure_only(), 0, ""};
    if (!b.g) {
        snprintf(err, errlen, "bert_base: out of memory");
        return NULL;
    }
    const int64_t T = 128, D = 768, V = 30522;
    tf_cfg c = {T, D, 12, 3072, 1e-12f, 0};
    int ids = int_input(&b, "input_ids", T);
    int types = int_input(&b, "token_type_ids", T);
    int maskin = int_input(&b, "attention_mask", T);
    int x = embedding(&b, "embeddings.word", ids, V, D);
    x = binary(&b, "embeddings.add_type", MB_OP_ADD, x, embedding(&b, "embeddings.token_type", types, 2, D));
    x = add_const(&b, "embeddings.add_position", x, 2, (int64_t[]){T, D}, -0.05f, 0.05f);
    x = layernorm(&b, "embeddings.norm", x, D, c.eps);
    /* additive mask: 0 where attended, -10000 where masked, [1, 1, T] */
    mb_node cast = zoo_node("mask.float", MB_OP_CAST, maskin);
    cast.a.dtype = MB_DT_FLOAT;
    int m = zoo_tb_add(&b, &cast);
    m = reshape(&b, "mask.shape", m, 3, (int64_t[]){1, 1, T});
    m = scale_by(&b, "mask.scale", MB_OP_MUL, m, 10000.0f);
    m = scale_by(&b, "mask.additive", MB_OP_SUB, m, 10000.0f);
    for (int i = 0; i < 12; i++)
        x = block(&b, i, x, &c, m);
    mb_node sl = zoo_node("pooler.first_token", MB_OP_SLICE, x);
    sl.a.starts[0] = 0;
    sl.a.ends[0] = 1;
    sl.a.steps[0] = 1;
    x = zoo_tb_add(&b, &sl);
    x = linear(&b, "pooler.dense", x, D, D);
    mb_node th = zoo_node("pooler.tanh", MB_OP_TANH, x);
    x = zoo_tb_add(&b, &th);
    return finish(&b, x, err, errlen);
}
