/* mecbed: decoder-only language models (GPT-2, Llama-architecture) for
 * autoregressive generation, built natively with seeded weights.
 *
 * Generation is two plain graphs over one set of weights (docs/generation.md):
 *  - prefill: T prompt tokens at positions 0..T-1, no past;
 *  - decode:  one token at position p with the KV cache of every layer as
 *    graph inputs (past.L.key, past.L.value) and the updated cache as graph
 *    outputs (present.L.key, present.L.value): the explicit-KV-cache form of
 *    ONNX exports, with a static capacity C (the cache is a fixed-size
 *    buffer, slot j holding position j; slots past p are masked out).
 * So the executor, plans, the runtime and the wire protocol run generation
 * unchanged: every step is one run of a fixed graph.
 *
 * Inputs, in order: input_ids int64 [T], position_ids int64 [T], then (decode)
 * past.L.key [Hkv, dh, C] and past.L.value [Hkv, C, dh] for L = 0..layers-1
 * (keys are kept transposed, so attention multiplies by them directly).
 * Outputs, in order: next_token int64 [1] (greedy: the argmax of the last
 * position's logits), then present.L.key, present.L.value, same shapes. */
#ifndef MECBED_DECODER_H
#define MECBED_DECODER_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"

enum { MB_DEC_GPT2 = 0, MB_DEC_LLAMA = 1 };

typedef struct mb_decoder_cfg {
    const char *name;
    int arch;          /* MB_DEC_GPT2: LayerNorm, learned positions, GELU MLP, biases;
                          MB_DEC_LLAMA: RMSNorm, rotary embeddings, SwiGLU, grouped-query attention */
    int64_t vocab, width, layers, heads, kv_heads, ffn;
    int64_t max_pos;   /* positions the model knows (GPT-2: rows of its position table) */
    float eps;         /* LayerNorm / RMSNorm epsilon */
    float rope_theta;  /* Llama: rotary base */
    int tied;          /* the LM head is the token embedding (stored once more as a Constant, counted once) */
    double published_params; /* the published parameter count (0 for test configurations) */
} mb_decoder_cfg;

/* The built-in configurations ("gpt2", "smollm_135m", "tinyllama_1b"), NULL-terminated. */
const char *const *mb_decoder_names(void);
/* By name (loose, like the zoo: "GPT-2" finds gpt2); NULL if none. */
const mb_decoder_cfg *mb_decoder_find(const char *name);

/* Build one step graph: tokens T at once; capacity C of the KV cache (the
 * longest prompt plus generation it serves, at most max_pos); with_past 0:
 * prefill (positions 0..T-1; next_token [1], the last position's), 1: decode
 * (T tokens at position_ids over the cache, each written into its slot;
 * T > 1 is speculative decoding's verification: next_token [T], the token
 * after each position). structure_only: weights
 * get their shapes but no values (listing, planning). NULL with err. */
mb_graph *mb_decoder_build(const mb_decoder_cfg *c, int64_t tokens, int64_t capacity, int with_past, uint64_t seed,
                           int structure_only, char *err, size_t errlen);

/* Make dst use src's weights (params and Constants of the nodes of the same
 * name and shape) without copying: dst's tensors then borrow src's memory,
 * so src must outlive dst. Returns the number of tensors shared, -1 with err
 * when a weight of dst has no counterpart in src. */
int mb_decoder_share_weights(mb_graph *dst, const mb_graph *src, char *err, size_t errlen);

/* Bytes of weights one step of g reads: every parameter and Constant
 * operand, but only the gathered rows of an embedding or table. */
int64_t mb_decoder_weight_bytes_per_step(const mb_graph *g);

/* Which layer node i of a decoder graph belongs to: 0..layers-1 (its
 * "layers.L." ops and its past.L.* cache inputs), MB_DEC_PRE (inputs,
 * masks, embeddings, rotary tables: before the first layer) or MB_DEC_POST
 * (final norm, LM head, argmax). */
enum { MB_DEC_PRE = -1, MB_DEC_POST = -2 };
int mb_decoder_layer_of(const mb_graph *g, int node);
/* A layer-range split: site_of_op[i] for every node, the layers at
 * layer_site[L], what precedes them on device, what follows them on the
 * site of the last layer (so only the token comes back). Returns the number
 * of layers found, -1 if g's layers are not 0..n_layers-1. */
int mb_decoder_assign(const mb_graph *g, int n_layers, const int *layer_site, int device, int *site_of_op);

#define MB_DECODER_ZOO_CAPACITY 256 /* cache capacity of the zoo's decode graphs (`--model gpt2`) */

#endif
