/* mecbed: autoregressive generation on one site (docs/generation.md). A
 * decoder (mecbed/decoder.h) runs its prefill graph on the prompt, then one
 * decode graph per further token, the KV cache passed from each step's
 * outputs to the next step's inputs; greedy sampling (the graphs' argmax).
 * Reports time to first token (the prefill), time per output token (each
 * decode step) and the memory-bandwidth bound of decode. */
#ifndef MECBED_GENERATE_H
#define MECBED_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/backend.h"
#include "mecbed/decoder.h"
#include "mecbed/topology.h"

/* A decoder with weights, its decode graph built for one cache capacity. */
typedef struct mb_gen_model {
    const mb_decoder_cfg *cfg;
    int64_t capacity;
    mb_graph *decode;   /* owns the weights */
    double build_s;     /* seconds to build (draw the weights) */
} mb_gen_model;

mb_gen_model *mb_gen_model_new(const mb_decoder_cfg *cfg, int64_t capacity, uint64_t seed, char *err, size_t errlen);
void mb_gen_model_free(mb_gen_model *m);

typedef struct mb_gen_result {
    int n_tokens;           /* generated tokens (the first from prefill) */
    int64_t *tokens;        /* n_tokens ids (caller frees with mb_gen_result_free) */
    double ttft_ms;         /* prefill: prompt in, first token out */
    double *step_ms;        /* n_tokens - 1 decode steps */
    double tpot_median_ms, tpot_p95_ms, tpot_mean_ms, tpot_min_ms;
    double tokens_per_s;    /* decode: 1000 / mean TPOT */
    int64_t weight_bytes;   /* weights one decode step reads */
    int64_t kv_bytes;       /* the whole KV cache (all layers, keys and values) */
} mb_gen_result;

/* Prefill prompt[0..P) and generate N tokens (N >= 1; P + N - 1 <= capacity).
 * Token ids must be in [0, vocab). Returns 0 or -1 with err. */
int mb_generate(const mb_gen_model *m, mb_backend *be, const int64_t *prompt, int P, int N, mb_gen_result *r,
                char *err, size_t errlen);
void mb_gen_result_free(mb_gen_result *r);

/* The same generation with every step run as a plan across sites, in this
 * process (mb_plan_execute): layers at layer_site[] (mb_decoder_assign's
 * layer-range split) on the sites of t. What `generate --verify` compares
 * with the unsplit run. Step times are those of the in-process execution. */
typedef struct mb_gen_split {
    const mb_topology *t;
    const int *layer_site; /* one site per layer */
    int device;            /* the site that holds the tokens */
} mb_gen_split;
int mb_generate_split(const mb_gen_model *m, mb_backend *be, const mb_gen_split *split, const int64_t *prompt, int P,
                      int N, mb_gen_result *r, char *err, size_t errlen);

/* A seeded prompt of P token ids in [0, vocab). Caller frees. */
int64_t *mb_gen_prompt(int64_t vocab, int P, uint64_t seed);

/* Memory bandwidth of this thread: the best of reps streaming reads of a
 * buffer of `bytes` (far larger than the caches), in GB/s; -1 if out of memory. */
double mb_mem_read_bandwidth(size_t bytes, int reps);

#endif
