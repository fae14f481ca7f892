/* mecbed: planning generation (docs/generation.md). A layer-range pipeline
 * split of a decoder (EdgeShard, Zhang et al. 2024): layers [0, k) on the
 * device, [k, L) on a server, each layer's KV cache resident on the site
 * that runs the layer. One step's predicted time is the sum of its ops'
 * times on their sites (the cost model's) and one transfer per direction of
 * a cut (the tensors that cross it: the hidden state and the step's masks
 * up, the token down), each with the link's delay: a batch-one step is a
 * strict sequence, so nothing overlaps. Prefill (the prompt) gives the time
 * to first token, a decode step the time per output token. */
#ifndef MECBED_GENPLAN_H
#define MECBED_GENPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/cost.h"
#include "mecbed/decoder.h"
#include "mecbed/plan.h"

typedef struct mb_gen_step_pred {
    double ms;           /* the step's predicted time */
    double compute_ms;   /* of which computing */
    int64_t up_bytes;    /* crossing from the device's side to the server's */
    int64_t down_bytes;  /* and back */
    double device_ms;    /* of compute_ms, on the device */
    double up_ms, down_ms; /* the device's own transfers (its radio's bursts) */
    double sync_ms;      /* tensor parallel: the all-reduces between servers */
    int64_t backbone_bytes; /* between servers */
} mb_gen_step_pred;

/* Predict one step of g (a decoder graph; c: its cost model) with the layers
 * at layer_site[0..n_layers) (mb_decoder_assign's split). 0, or -1 with err. */
int mb_gen_predict_step(const mb_graph *g, const mb_cost_model *c, int n_layers, const int *layer_site,
                        mb_gen_step_pred *out, char *err, size_t errlen);

typedef struct mb_gen_split_pred {
    int k;                        /* layers [0, k) on the device, the rest on the server */
    mb_gen_step_pred prefill, decode;
    double total_ms;              /* TTFT + (N-1) TPOT */
    double device_weight_bytes;   /* weights of the device's layers (and the embedding) */
} mb_gen_split_pred;

/* Every cut k = 0..n_layers between device and server (k = n_layers: all on
 * the device; k = 0: all on the server but the embedding lookup), for a
 * generation of n_gen tokens; out has n_layers + 1 entries. Returns the k
 * EdgeShard picks, the least total time among the cuts whose device weights
 * fit device_mem_bytes (<= 0: no limit), or -1 with err. */
int mb_gen_pipeline_plan(const mb_graph *prefill, const mb_cost_model *c_prefill, const mb_graph *decode,
                         const mb_cost_model *c_decode, int n_layers, int device, int server, int n_gen,
                         double device_mem_bytes, mb_gen_split_pred *out, char *err, size_t errlen);

/* ---- the other generation policies (policies/gen_galaxy.c, gen_policies.c;
 * docs/generation.md, "Policies") ---- */

/* Device energy of one step (docs/energy.md's model): the device's node
 * type's compute_w x its compute time + idle_w x the rest of the step + its
 * radio (energy.h): an upload after the device's own compute and a download
 * at the step's end, each on the air for bytes / the link's rate, tail power
 * between them. interval_ms > 0: steps repeat that often (decode: the radio
 * stays connected, the gap to the next step's upload at tail power); 0: one
 * step with the radio already connected. */
typedef struct mb_gen_energy {
    double compute_mj, idle_mj, radio_mj, total_mj;
} mb_gen_energy;
void mb_gen_step_energy(const mb_cost_model *c, int device, int server, const mb_gen_step_pred *s,
                        double interval_ms, mb_gen_energy *out);

/* Tensor parallelism (Galaxy) across k workers: KV heads (with their query
 * heads), FFN columns and vocabulary apportioned by speed. sites[0] is the
 * leader, the worker the device talks to. */
#define MB_GEN_MAX_WORKERS 16
typedef struct mb_gen_tp {
    int k;
    int sites[MB_GEN_MAX_WORKERS];
    int64_t kv_heads, group, dh; /* the decoder's KV heads, query heads per KV head, head width */
    int64_t ffn, vocab;
    int64_t kv0[MB_GEN_MAX_WORKERS + 1]; /* worker w: KV heads [kv0[w], kv0[w+1]) */
    int64_t f0[MB_GEN_MAX_WORKERS + 1];  /* FFN columns */
    int64_t v0[MB_GEN_MAX_WORKERS + 1];  /* LM-head columns (vocabulary) */
} mb_gen_tp;
int mb_gen_tp_partition(const mb_decoder_cfg *cfg, int k, const int *sites, const double *speed, mb_gen_tp *out,
                        char *err, size_t errlen);
/* One step of g split across the workers: the slowest worker per layer,
 * two all-reduces of the hidden state per layer through the leader, the
 * device's tensors to the leader and on to the others, the partial argmaxes
 * to the leader, the token to the device. 0, or -1 with err. */
int mb_gen_galaxy_predict_step(const mb_graph *g, const mb_cost_model *c, const mb_gen_tp *tp, int device,
                               int n_layers, mb_gen_step_pred *out, char *err, size_t errlen);
/* Galaxy's workers on t: the first `edges` edge sites (0: all), their heads,
 * FFN columns and vocabulary apportioned by speed on dc. 0, or -1 with err. */
int mb_gen_galaxy_tp(const mb_cost_model *dc, const mb_topology *t, const mb_decoder_cfg *cfg, int edges,
                     mb_gen_tp *tp, char *err, size_t errlen);
/* The verifiable plan of one step of g: each worker computes its heads' and
 * columns' regions and receives the exact slices it needs (validated).
 * NULL with err (also when tp's ranges do not cover the heads, columns and
 * vocabulary exactly once). */
mb_plan *mb_gen_galaxy_plan(const mb_graph *g, const mb_topology *t, const mb_gen_tp *tp, int device, char *err,
                            size_t errlen);

/* What a generation policy predicts. */
typedef struct mb_gen_policy_pred {
    char policy[32];
    char detail[128];         /* e.g. "layers 0..5 on the device", "k=2 a=0.80" */
    double ttft_ms, tpot_ms, total_ms; /* total: TTFT + (N-1) TPOT */
    double tokens_per_s;      /* 1000 / TPOT */
    double energy_per_token_mj; /* device energy per output token in decode */
    double ttft_energy_mj;    /* device energy of the first token */
    double energy_total_mj;   /* TTFT's + (N-1) decode tokens' */
    double radio_per_token_mj; /* of energy_per_token_mj, the radio's */
    double up_bytes_per_token, down_bytes_per_token, backbone_bytes_per_token;
    double sync_ms;           /* galaxy: the all-reduces of one decode step */
    double kv_transfer_bytes; /* pd-device: the KV cache sent to the device */
    double tokens_per_round;  /* speculative: expected tokens per draft-verify round */
    double device_weight_bytes;
    int split_after;          /* pipeline, device, edge: layers [0, k) on the device; -1 otherwise */
    int edges;                /* galaxy: workers */
    int draft_k;              /* speculative: proposals per round */
    double acceptance;        /* speculative: the acceptance rate assumed */
} mb_gen_policy_pred;

/* Energy fields of p from the TTFT step and the decode step (one output
 * token per decode step unless tokens_per_step > 1: speculative rounds). */
void mb_gen_pred_energy(mb_gen_policy_pred *p, const mb_cost_model *c_ttft, const mb_gen_step_pred *ttft,
                        const mb_cost_model *c_step, const mb_gen_step_pred *step, double tokens_per_step,
                        int device, int server, int n_gen);

/* P/D-Device: the prompt to the server, prefill there, the first token and
 * every layer's KV cache for the P prompt positions (kv_bytes) to the device,
 * decode on the device. */
int mb_gen_pd_predict(const mb_graph *prefill, const mb_cost_model *c_prefill, const mb_graph *decode,
                      const mb_cost_model *c_decode, int64_t kv_bytes, int device, int server, int n_gen,
                      mb_gen_policy_pred *out, char *err, size_t errlen);

/* Speculative decoding: the draft's decode step on the device (k of them per
 * round), the target's step of k+1 positions on the server (verify: a graph
 * of k+1 tokens, its cost), acceptance rate a per proposal: expected tokens
 * per round (1 - a^(k+1)) / (1 - a) (k+1 at a = 1), TPOT = round / that.
 * TTFT: the target's prefill on the server (the prompt up, the token down),
 * the draft's own prefill on the device alongside. */
double mb_gen_spec_tokens_per_round(double a, int k);
int mb_gen_spec_predict(const mb_graph *draft_prefill, const mb_cost_model *c_draft_prefill,
                        const mb_graph *draft_decode, const mb_cost_model *c_draft,
                        const mb_graph *target_prefill, const mb_cost_model *c_target_prefill,
                        const mb_graph *verify, const mb_cost_model *c_verify, int device, int server, int k,
                        double a, int n_gen, mb_gen_policy_pred *out, char *err, size_t errlen);

/* Bytes of the KV cache of `positions` positions (every layer, keys and values). */
int64_t mb_gen_kv_bytes(const mb_decoder_cfg *cfg, int positions);

/* ---- predicting a policy by name (what `generate --gen-policy` and the
 * sweep's generation mode call) ---- */

/* The device joined to edge0 by link, edge0 to edge1..edges-1 by lan
 * (NULL: MB_GEN_LAN_DEFAULT): a device and K edge nodes on a LAN. */
#define MB_GEN_LAN_DEFAULT "rate=1gbit,delay=0.1ms"
int mb_gen_topology(const char *link, int edges, const char *lan, mb_topology *t, char *err, size_t errlen);

/* The smallest other decoder of the zoo with cfg's vocabulary (gpt2:
 * gpt2_draft), NULL if none: speculative decoding's default draft. */
const mb_decoder_cfg *mb_gen_default_draft(const mb_decoder_cfg *cfg);

/* "pipeline", "device", "edge", "galaxy", "pd-device", "speculative", NULL. */
const char *const *mb_gen_policy_names(void);

/* A decoder's graphs (seeded weights) and their profiles (pinned, cached or
 * measured now: mb_profile_default), for prompts of P tokens and N
 * generated with a cache of `capacity`; draft: a decoder of the same
 * vocabulary for speculative decoding (NULL: none). */
typedef struct mb_gen_ctx mb_gen_ctx;
mb_gen_ctx *mb_gen_ctx_new(const mb_decoder_cfg *cfg, const mb_decoder_cfg *draft, int P, int N, int64_t capacity,
                           uint64_t seed, char *err, size_t errlen);
void mb_gen_ctx_free(mb_gen_ctx *x);
const mb_graph *mb_gen_ctx_decode(const mb_gen_ctx *x);
const char *mb_gen_ctx_profile_source(const mb_gen_ctx *x); /* the decode graph's */
/* Predict policy spec "NAME[:key=value,...]" on topology t (a device site
 * and edge0; galaxy uses every edge site, or the first edges=K):
 *   pipeline[:split=K,memory=MB]  EdgeShard's cut (or layers [0,K) on the device)
 *   device, edge                  the pipeline's cuts L and 0
 *   galaxy[:edges=K]              tensor parallel across the edge nodes
 *   pd-device                     prefill on edge0, KV cache to the device, decode there
 *   speculative[:k=K,a=A]         draft on the device (k proposals, default 4),
 *                                 target on edge0, acceptance rate A (default 0.8)
 * 0, or -1 with err. */
int mb_gen_ctx_predict(mb_gen_ctx *x, const char *spec, const mb_topology *t, const mb_nodetype_set *types,
                       mb_gen_policy_pred *out, char *err, size_t errlen);
/* A policy spec's name and options (defaults: split -1, k 4, a 0.8, edges 0
 * = all, memory 0 = no limit). 0, or -1 with err naming the bad part. */
typedef struct mb_gen_policy_spec {
    char name[32];
    int split, k, edges;
    double a, memory_mb;
} mb_gen_policy_spec;
int mb_gen_policy_parse(const char *spec, mb_gen_policy_spec *out, char *err, size_t errlen);
/* The workers galaxy[:edges=K] uses on t (what its verification runs). */
int mb_gen_ctx_galaxy_tp(mb_gen_ctx *x, const mb_topology *t, const mb_nodetype_set *types, int edges,
                         mb_gen_tp *tp, char *err, size_t errlen);

#endif
