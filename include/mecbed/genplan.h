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

typedef struct mb_gen_step_pred {
    double ms;           /* the step's predicted time */
    double compute_ms;   /* of which computing */
    int64_t up_bytes;    /* crossing from the device's side to the server's */
    int64_t down_bytes;  /* and back */
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

#endif
