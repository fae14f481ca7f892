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
#include "mecbed/genplan.h"
#include "mecbed/plan.h"
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

/* ---- the other generation policies, verified in this process
 * (runtime/gen_policies.c, docs/generation.md "Policies") ---- */

/* Galaxy: every step a plan of head and column regions across tp's workers
 * (mb_gen_galaxy_plan) on the sites of t. */
int mb_generate_galaxy(const mb_gen_model *m, mb_backend *be, const mb_topology *t, const mb_gen_tp *tp, int device,
                       const int64_t *prompt, int P, int N, mb_gen_result *r, char *err, size_t errlen);

/* P/D-Device: prefill on be_server (its own executor), then the first
 * send_positions positions of every layer's cache (P: all of the prompt's;
 * fewer is a broken transfer, which verification must catch) copied into
 * the device's cache buffers, decode on be_device. */
int mb_generate_pd(const mb_gen_model *m, mb_backend *be_server, mb_backend *be_device, const int64_t *prompt, int P,
                   int N, int send_positions, mb_gen_result *r, char *err, size_t errlen);

/* Speculative decoding with a real draft (on be_device) and target (on
 * be_server), greedy verification: per round the draft proposes k tokens
 * (k decode steps), the target runs the k+1 positions (one decode step per
 * position, the same tokens and cache slots a (k+1)-position step would
 * use), the proposals are accepted while they equal the target's tokens,
 * then the target's own token follows; rejected slots of both caches are
 * overwritten by the next round. Seeded random draft and target disagree,
 * so the fixed acceptance pattern makes the draft propose the target's
 * reference tokens (ref, from an unsplit run) for the first j_r of round
 * r's proposals, j_r = floor((r+1) m) - floor(r m) with m the expected
 * accepted proposals per round at rate a, a(1-a^k)/(1-a); its later
 * proposals are its own. Acceptance is still the target's check, so the
 * output is the target's greedy sequence exactly when the machinery is
 * right. unverified = 1 breaks it on purpose: the draft's own proposals,
 * the first j_r accepted without the target's check. */
typedef struct mb_gen_spec_opts {
    int k;
    double a;
    const int64_t *ref; /* the target's N tokens */
    int unverified;
} mb_gen_spec_opts;
typedef struct mb_gen_spec_stats {
    int rounds, proposed, accepted, forced; /* forced: proposals the pattern set */
} mb_gen_spec_stats;
int mb_generate_speculative(const mb_gen_model *target, const mb_gen_model *draft, mb_backend *be_server,
                            mb_backend *be_device, const int64_t *prompt, int P, int N, const mb_gen_spec_opts *o,
                            mb_gen_result *r, mb_gen_spec_stats *st, char *err, size_t errlen);

/* A seeded prompt of P token ids in [0, vocab). Caller frees. */
int64_t *mb_gen_prompt(int64_t vocab, int P, uint64_t seed);

/* Memory bandwidth of this thread: the best of reps streaming reads of a
 * buffer of `bytes` (far larger than the caches), in GB/s; -1 if out of memory. */
double mb_mem_read_bandwidth(size_t bytes, int reps);

#endif
