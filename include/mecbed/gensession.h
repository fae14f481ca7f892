/* mecbed: a measured split generation (docs/generation.md, "Measured split
 * runs"). A decoder's layer-range split (EdgeShard, genplan.h) run for real
 * through the runtime: the device runner and an edge node (`mecbed node` in
 * its namespace, emulated link, node types and time dilation as `mecbed run`
 * does for CNNs). The prefill plan, then one decode plan whose frames are the
 * N-1 decode steps, in one runner session. Each layer's KV cache stays on
 * the site that runs it: the plans' state bindings (mb_plan_state) make a
 * site's present.L.* outputs its own past.L.* inputs of the next step. The
 * device feeds step t+1 the token step t returned. */
#ifndef MECBED_GENSESSION_H
#define MECBED_GENSESSION_H

#include <stdint.h>
#include <stdio.h>

#include "mecbed/decoder.h"
#include "mecbed/session.h"

typedef struct mb_gen_run_config {
    /* Links, kernels, site speed emulation, tdf, timeout, stop, log,
     * topology and device as for a run session; its model, graph, cost,
     * profile and policy fields are set here from the fields below. */
    mb_session_config s;
    const mb_decoder_cfg *dec;
    /* The two graphs as nodes build them from the zoo (mb_zoo_build of
     * prefill_name "NAME:prefill=P" and decode_name "NAME"), their cost
     * models on s.topo, and the prefill's profile (the calibration's). */
    mb_graph *prefill, *decode;
    const char *prefill_name, *decode_name;
    mb_cost_model *c_prefill, *c_decode;
    const mb_profile *p_prefill;
    int server;      /* the edge site */
    int P, N;        /* prompt tokens, generated tokens (>= 1) */
    int split;       /* layers on the device (0..L); -1: EdgeShard's choice */
    int pd;          /* P/D-Device instead: the server prefills every layer, each
                      * layer's KV cache crosses the link to the device, the device
                      * decodes every layer (split is then ignored) */
    /* Speculative decoding instead when spec_k > 0: the draft (its decode
     * graph, cost model and configuration) runs on the device in process,
     * spec_k proposals a round, the first of them the reference's tokens at
     * acceptance rate spec_a (the checkable pattern); the target verifies
     * them on the server in one step of spec_k + 1 tokens (`verify`, the zoo's
     * NAME:verify=V, its cost model c_verify), its cache kept there. */
    int spec_k;
    double spec_a;
    mb_graph *verify, *draft;
    const char *verify_name;
    mb_cost_model *c_verify, *c_draft;
    const mb_decoder_cfg *draft_cfg;
    int galaxy_edges; /* Galaxy instead when not 0: tensor parallel over the first
                       * galaxy_edges edge sites of s.topo (-1: all of them), each
                       * keeping its heads' KV cache */
    uint64_t seed;   /* the prompt's */
} mb_gen_run_config;

typedef struct mb_gen_run_report {
    const char *model;
    int P, N, layers, split, edgeshard_split;
    double tdf;
    int n_tokens;
    int64_t *tokens, *ref_tokens;  /* measured split run, unsplit local run */
    int output_match;
    double ttft_ms, predicted_ttft_ms;
    double *step_ms;               /* N-1 decode steps, emulated ms */
    double tpot_median_ms, tpot_p95_ms, tpot_mean_ms, predicted_tpot_ms;
    double tokens_per_s, predicted_tokens_per_s;
    double plan_ttft_ms, plan_tpot_ms; /* the plans' own evaluation (mb_plan_evaluate) */
    int64_t up_bytes_token, down_bytes_token;       /* measured on the device, median decode step */
    int64_t predicted_up_bytes, predicted_down_bytes; /* gen_pipeline's, per decode step */
    int64_t prefill_up_bytes, prefill_down_bytes;
    int pd;                        /* P/D-Device (mb_gen_run_config.pd) */
    int galaxy_k;                  /* Galaxy: the edge nodes it runs on (0: not Galaxy) */
    int spec_k;                    /* speculative: proposals a round (0: not speculative) */
    double spec_a;                 /* its acceptance rate parameter */
    int spec_rounds, spec_proposed, spec_accepted, spec_forced;
    int64_t spec_up, spec_down;    /* device bytes of the verification steps */
    double spec_draft_ms, spec_draft_mj; /* a draft step on the device: modelled time and energy */
    const char *draft_name;
    int64_t predicted_kv_bytes;    /* P/D: the cache the prefill plan sends (its down bytes) */
    double energy_mj_token, predicted_energy_mj_token; /* device, mean decode step */
    double ttft_energy_mj;
    int64_t cache_bytes_device, cache_bytes_server; /* KV cache each site keeps (plan bindings) */
    int64_t cache_bytes_device_held;                /* what the device's state held at the end */
    char device_type[32], server_type[32];
} mb_gen_run_report;

/* Bring up, run the generation, tear down. 0, or -1 with err (nothing left
 * behind). r is filled on success (free with mb_gen_run_report_free). */
int mb_gen_run(const mb_gen_run_config *c, mb_gen_run_report *r, char *err, size_t errlen);
void mb_gen_run_report_free(mb_gen_run_report *r);
void mb_gen_run_write_json(const mb_gen_run_report *r, FILE *f);
void mb_gen_run_write_text(const mb_gen_run_report *r, FILE *f);

#endif
