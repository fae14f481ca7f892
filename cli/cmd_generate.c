/* mecbed generate: autoregressive generation with a decoder on this machine
 * (docs/generation.md): prefill a prompt, decode tokens one at a time with a
 * KV cache, greedy sampling; time to first token, time per output token and
 * the memory-bandwidth bound of decode. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "gen_policy.h"
#include "mecbed/cost.h"
#include "mecbed/generate.h"
#include "mecbed/genplan.h"
#include "mecbed/model.h"
#include "mecbed/nodetype.h"
#include "mecbed/platform.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed generate --model NAME [--prompt-tokens P] [--gen-tokens N] [options]\n"
            "\n"
            "Generates N tokens after a seeded prompt of P tokens with a decoder of the zoo\n"
            "(gpt2, smollm_135m, tinyllama_1b; seeded weights): one prefill step on the\n"
            "prompt (its time is the time to first token, TTFT), then N-1 decode steps of\n"
            "one token each, the KV cache of every layer passed from a step's outputs to the\n"
            "next step's inputs; greedy sampling. Reports TTFT, the time per output token\n"
            "(TPOT, median and p95 over the decode steps), tokens/s, and the memory-bandwidth\n"
            "bound of decode: the weight bytes a decode step reads / this thread's memory\n"
            "bandwidth, measured by a streaming read in the same run (before and after\n"
            "the generation, the best of both).\n"
            "\n"
            "  -m, --model NAME       decoder: gpt2, smollm_135m, tinyllama_1b (drafts for\n"
            "                         speculative decoding: gpt2_draft, smollm_draft)\n"
            "  -p, --prompt-tokens P  prompt length (default 32)\n"
            "  -n, --gen-tokens N     tokens to generate (default 32)\n"
            "      --capacity C       KV-cache capacity (default P+N-1, the least that fits)\n"
            "  -k, --kernels NAME     kernel backend: cpu (default), ref, cuda\n"
            "  -t, --threads N        backend threads (default 1)\n"
            "  -s, --seed S           weights and prompt seed (default %d)\n"
            "      --bandwidth-mb MB  buffer of the bandwidth measurement (default 512; 0 skips it)\n"
            "      --json             one JSON object: model, params, prompt_tokens, gen_tokens,\n"
            "                         capacity, ttft_ms, tpot_ms (median), tpot_p95_ms,\n"
            "                         tpot_mean_ms, tpot_min_ms, tokens_per_s,\n"
            "                         weight_bytes_per_token, kv_cache_bytes, mem_bandwidth_gbs,\n"
            "                         bound_tpot_ms, tpot_to_bound, tpot_min_to_bound, build_s,\n"
            "                         tokens, step_ms, kernels, threads, blas_core\n"
            "\n"
            "Planning a split (EdgeShard's layer-range pipeline, docs/generation.md):\n"
            "      --link SPEC        the device and an edge server joined by this link\n"
            "                         (docs/link-spec.md): predicts TTFT and TPOT for every cut\n"
            "                         (layers [0,k) on the device, the rest on the edge, each\n"
            "                         layer's KV cache where the layer runs) from profiles of\n"
            "                         the prefill and decode graphs and the node types\n"
            "                         (device phone, edge edge-cpu); no local measurement\n"
            "      --split K|edgeshard  the cut to report and verify (default edgeshard: the\n"
            "                         least TTFT + (N-1) TPOT that fits --device-memory)\n"
            "      --device-memory MB weights the device can hold (default: no limit)\n"
            "      --verify           run the split in this process, step by step across the\n"
            "                         sites, and check its tokens equal the unsplit model's\n"
            "                         (JSON: output_match)\n"
            "\n"
            "Other generation policies (docs/generation.md, \"Policies\"), with --link:\n"
            "      --gen-policy NAME[:key=value,...]  predict TTFT, TPOT and device energy per\n"
            "                         token of one policy (--verify: run it here, compare tokens):\n"
            "                           pipeline[:split=K,memory=MB]  EdgeShard's cut (the default\n"
            "                             without --gen-policy prints every cut)\n"
            "                           device, edge        every layer on the device / on edge0\n"
            "                           galaxy[:edges=K]    tensor parallel across the edge nodes:\n"
            "                             heads and MLP columns split, two all-reduces per layer\n"
            "                           pd-device           prefill on edge0, the KV cache to the\n"
            "                             device, decode there\n"
            "                           speculative[:k=K,a=A]  a draft on the device proposes K\n"
            "                             tokens (default 4), the target on edge0 verifies them in\n"
            "                             one step; A: acceptance rate (default 0.8)\n"
            "                         or all: a table of every policy (no --verify)\n"
            "      --edges K          edge nodes: edge0 behind --link, edge1.. on a LAN (default 1)\n"
            "      --lan SPEC         the LAN between edge0 and the others (default %s)\n"
            "      --draft NAME       the draft of speculative decoding (default: the smallest\n"
            "                         decoder with the model's vocabulary: gpt2_draft for gpt2)\n"
            "  -h, --help             this text\n",
            MB_ZOO_SEED, MB_GEN_LAN_DEFAULT);
}

typedef struct gen_opts {
    const char *model, *kernels, *link, *split;
    const char *gen_policy, *lan, *draft;
    long P, N, capacity, threads, seed, bw_mb, edges;
    double device_mem_mb;
    int json, verify;
} gen_opts;

static int parse(int argc, char **argv, gen_opts *o)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"prompt-tokens", required_argument, NULL, 'p'},
        {"gen-tokens", required_argument, NULL, 'n'}, {"capacity", required_argument, NULL, 'C'},
        {"kernels", required_argument, NULL, 'k'}, {"threads", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},    {"bandwidth-mb", required_argument, NULL, 'B'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {"link", required_argument, NULL, 'L'},    {"split", required_argument, NULL, 'S'},
        {"verify", no_argument, NULL, 'V'},        {"device-memory", required_argument, NULL, 'D'},
        {"gen-policy", required_argument, NULL, 'G'}, {"edges", required_argument, NULL, 'E'},
        {"lan", required_argument, NULL, 'A'},     {"draft", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->P = 32;
    o->N = 32;
    o->threads = 1;
    o->seed = MB_ZOO_SEED;
    o->bw_mb = 512;
    o->kernels = "cpu";
    o->edges = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:k:t:s:h", opts, NULL)) != -1) {
        long *v = NULL, lo = 0, hi = 0;
        const char *what = NULL;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'k': o->kernels = optarg; break;
        case 'j': o->json = 1; break;
        case 'L': o->link = optarg; break;
        case 'S': o->split = optarg; break;
        case 'V': o->verify = 1; break;
        case 'G': o->gen_policy = optarg; break;
        case 'A': o->lan = optarg; break;
        case 'R': o->draft = optarg; break;
        case 'E': v = &o->edges, lo = 1, hi = MB_GEN_MAX_WORKERS, what = "--edges"; break;
        case 'D': {
            char *end;
            o->device_mem_mb = strtod(optarg, &end);
            if (end == optarg || *end || !(o->device_mem_mb > 0)) {
                fprintf(stderr, "mecbed generate: --device-memory '%s': expected megabytes > 0\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 1;
        case 'p': v = &o->P, lo = 1, hi = 1 << 20, what = "--prompt-tokens"; break;
        case 'n': v = &o->N, lo = 1, hi = 1 << 20, what = "--gen-tokens"; break;
        case 'C': v = &o->capacity, lo = 1, hi = 1 << 20, what = "--capacity"; break;
        case 't': v = &o->threads, lo = 1, hi = 1024, what = "--threads"; break;
        case 's': v = &o->seed, lo = 0, hi = 2147483647L, what = "--seed"; break;
        case 'B': v = &o->bw_mb, lo = 0, hi = 1 << 16, what = "--bandwidth-mb"; break;
        default: usage(stderr); return 2;
        }
        if (v && mb_cli_int(optarg, lo, hi, v)) {
            fprintf(stderr, "mecbed generate: %s '%s': expected an integer from %ld to %ld\n", what, optarg, lo, hi);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed generate: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->model) {
        fprintf(stderr, "mecbed generate: --model is required (gpt2, smollm_135m, tinyllama_1b)\n");
        return 2;
    }
    if (!o->capacity)
        o->capacity = o->P + o->N - 1;
    if ((o->split || o->verify || o->device_mem_mb > 0 || o->gen_policy || o->edges > 1 || o->lan || o->draft) &&
        !o->link) {
        fprintf(stderr, "mecbed generate: --split, --verify, --device-memory, --gen-policy, --edges, --lan and "
                "--draft plan a split: they need --link\n");
        return 2;
    }
    if (!o->gen_policy && (o->edges > 1 || o->lan || o->draft)) {
        fprintf(stderr, "mecbed generate: --edges, --lan and --draft are for --gen-policy (galaxy, speculative, all)\n");
        return 2;
    }
    if (o->gen_policy && (o->split || o->device_mem_mb > 0)) {
        fprintf(stderr, "mecbed generate: with --gen-policy, give the cut as pipeline:split=K,memory=MB\n");
        return 2;
    }
    return 0;
}

typedef struct gen_report {
    const mb_gen_model *m;
    const mb_gen_result *r;
    double bw_gbs, bound_ms;
    int64_t params;
} gen_report;

static void print_json(const gen_opts *o, const gen_report *g, mb_backend *be)
{
    const mb_gen_result *r = g->r;
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "model", g->m->cfg->name);
    cJSON_AddNumberToObject(js, "params", (double)g->params);
    cJSON_AddNumberToObject(js, "prompt_tokens", (double)o->P);
    cJSON_AddNumberToObject(js, "gen_tokens", (double)o->N);
    cJSON_AddNumberToObject(js, "capacity", (double)g->m->capacity);
    cJSON_AddNumberToObject(js, "ttft_ms", r->ttft_ms);
    cJSON_AddNumberToObject(js, "tpot_ms", r->tpot_median_ms);
    cJSON_AddNumberToObject(js, "tpot_p95_ms", r->tpot_p95_ms);
    cJSON_AddNumberToObject(js, "tpot_mean_ms", r->tpot_mean_ms);
    cJSON_AddNumberToObject(js, "tpot_min_ms", r->tpot_min_ms);
    cJSON_AddNumberToObject(js, "tokens_per_s", r->tokens_per_s);
    cJSON_AddNumberToObject(js, "weight_bytes_per_token", (double)r->weight_bytes);
    cJSON_AddNumberToObject(js, "kv_cache_bytes", (double)r->kv_bytes);
    if (g->bw_gbs > 0) {
        cJSON_AddNumberToObject(js, "mem_bandwidth_gbs", g->bw_gbs);
        cJSON_AddNumberToObject(js, "bound_tpot_ms", g->bound_ms);
        if (r->n_tokens > 1) {
            cJSON_AddNumberToObject(js, "tpot_to_bound", r->tpot_median_ms / g->bound_ms);
            cJSON_AddNumberToObject(js, "tpot_min_to_bound", r->tpot_min_ms / g->bound_ms);
        }
    }
    cJSON_AddNumberToObject(js, "build_s", g->m->build_s);
    cJSON *toks = cJSON_AddArrayToObject(js, "tokens");
    for (int i = 0; i < r->n_tokens; i++)
        cJSON_AddItemToArray(toks, cJSON_CreateNumber((double)r->tokens[i]));
    cJSON *steps = cJSON_AddArrayToObject(js, "step_ms");
    for (int i = 0; i + 1 < r->n_tokens; i++)
        cJSON_AddItemToArray(steps, cJSON_CreateNumber(r->step_ms[i]));
    cJSON_AddStringToObject(js, "kernels", mb_backend_name(be));
    cJSON_AddNumberToObject(js, "threads", (double)o->threads);
    cJSON_AddStringToObject(js, "blas_core", mb_platform_blas_core());
    char *s = cJSON_Print(js);
    puts(s);
    free(s);
    cJSON_Delete(js);
}

static void print_text(const gen_opts *o, const gen_report *g, mb_backend *be)
{
    const mb_gen_result *r = g->r;
    printf("%s: %.3f M params, prompt %ld tokens, %d generated, KV cache %lld positions (%.2f MB), %s kernels, "
           "%ld thread%s (OpenBLAS %s); weights built in %.2f s\n",
           g->m->cfg->name, g->params / 1e6, o->P, r->n_tokens, (long long)g->m->capacity, r->kv_bytes / 1e6,
           mb_backend_name(be), o->threads, o->threads == 1 ? "" : "s", mb_platform_blas_core(), g->m->build_s);
    printf("  TTFT (prefill)          %10.2f ms\n", r->ttft_ms);
    if (r->n_tokens > 1) {
        printf("  TPOT median / p95       %10.2f / %.2f ms  (%d decode steps)\n", r->tpot_median_ms, r->tpot_p95_ms,
               r->n_tokens - 1);
        printf("  tokens/s (decode)       %10.2f\n", r->tokens_per_s);
    }
    printf("  weights read per token  %10.2f MB\n", r->weight_bytes / 1e6);
    if (g->bw_gbs > 0) {
        printf("  memory bandwidth        %10.2f GB/s (streaming read, one thread)\n", g->bw_gbs);
        printf("  bound on TPOT           %10.2f ms", g->bound_ms);
        if (r->n_tokens > 1)
            printf("  (TPOT median %.2fx, fastest step %.2fx the bound)", r->tpot_median_ms / g->bound_ms,
                   r->tpot_min_ms / g->bound_ms);
        printf("\n");
    }
    printf("  tokens:");
    for (int i = 0; i < r->n_tokens && i < 16; i++)
        printf(" %lld", (long long)r->tokens[i]);
    printf("%s\n", r->n_tokens > 16 ? " ..." : "");
}

/* ---- planning a split (--link) ---- */

typedef struct plan_ctx {
    mb_topology t;
    mb_nodetype_set types;
    mb_graph *pg; /* prefill graph, borrowing the model's weights */
    mb_profile *pp, *dp;
    const char *psrc, *dsrc;
    mb_cost_model *pc, *dc;
    mb_gen_split_pred *preds;
    int device, server, edgeshard, chosen;
} plan_ctx;

static void plan_free(plan_ctx *x)
{
    mb_cost_free(x->pc);
    mb_cost_free(x->dc);
    mb_profile_free(x->pp);
    mb_profile_free(x->dp);
    mb_graph_free(x->pg);
    free(x->preds);
}

static int plan_build(const gen_opts *o, const mb_gen_model *m, plan_ctx *x, char *err, size_t errlen)
{
    int L = (int)m->cfg->layers;
    if (mb_topology_from_link(o->link, &x->t, err, errlen) || mb_nodetypes_load_default(&x->types, err, errlen) ||
        mb_nodetypes_check_sites(&x->types, &x->t, NULL, err, errlen))
        return -1;
    x->device = mb_topology_find(&x->t, "device");
    x->server = mb_topology_find(&x->t, "edge0");
    if (!(x->pg = mb_decoder_build(m->cfg, o->P, m->capacity, 0, 0, 1, err, errlen)) ||
        mb_decoder_share_weights(x->pg, m->decode, err, errlen) < 0)
        return -1;
    if (!(x->pp = mb_profile_default(x->pg, &x->psrc, err, errlen)) ||
        !(x->dp = mb_profile_default(m->decode, &x->dsrc, err, errlen)))
        return -1;
    mb_cost_opts cold; /* the prefill: a session's first messages, on cold connections (cost.h) */
    mb_cost_opts_default(&cold);
    cold.cold_connections = 1;
    if (!(x->pc = mb_cost_new(x->pg, &x->t, x->pp, &x->types, &cold, err, errlen)) ||
        !(x->dc = mb_cost_new(m->decode, &x->t, x->dp, &x->types, NULL, err, errlen)))
        return -1;
    if (!(x->preds = calloc((size_t)L + 1, sizeof *x->preds))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->edgeshard = mb_gen_pipeline_plan(x->pg, x->pc, m->decode, x->dc, L, x->device, x->server, (int)o->N,
                                        o->device_mem_mb * 1e6, x->preds, err, errlen);
    if (x->edgeshard < 0)
        return -1;
    x->chosen = x->edgeshard;
    if (o->split && strcmp(o->split, "edgeshard")) {
        long k;
        if (mb_cli_int(o->split, 0, L, &k)) {
            snprintf(err, errlen, "--split '%s': expected edgeshard or a layer count from 0 to %d", o->split, L);
            return -1;
        }
        x->chosen = (int)k;
    }
    return 0;
}

/* Tokens of the unsplit model and of the chosen split, run here. 1 when equal. */
static int plan_verify(const gen_opts *o, const mb_gen_model *m, mb_backend *be, const plan_ctx *x,
                       const int64_t *prompt, mb_gen_result *ref, mb_gen_result *got, char *err, size_t errlen)
{
    int L = (int)m->cfg->layers;
    int *ls = malloc(sizeof(int) * (size_t)L);
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int l = 0; l < L; l++)
        ls[l] = l < x->chosen ? x->device : x->server;
    mb_gen_split sp = {&x->t, ls, x->device};
    int rc = mb_generate(m, be, prompt, (int)o->P, (int)o->N, ref, err, errlen) ||
             mb_generate_split(m, be, &sp, prompt, (int)o->P, (int)o->N, got, err, errlen);
    free(ls);
    if (rc)
        return -1;
    return ref->n_tokens == got->n_tokens &&
           !memcmp(ref->tokens, got->tokens, sizeof(int64_t) * (size_t)ref->n_tokens);
}

/* Device energy per decode token of cut k (docs/energy.md; genplan.h). */
static double split_energy(const plan_ctx *x, int k, const gen_opts *o)
{
    mb_gen_policy_pred e;
    memset(&e, 0, sizeof e);
    mb_gen_pred_energy(&e, x->pc, &x->preds[k].prefill, x->dc, &x->preds[k].decode, 1, x->device, x->server,
                       (int)o->N);
    return e.energy_per_token_mj;
}

static void plan_json(const gen_opts *o, const mb_gen_model *m, const plan_ctx *x, int match,
                      const mb_gen_result *got)
{
    const mb_gen_split_pred *c = &x->preds[x->chosen];
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "model", m->cfg->name);
    cJSON_AddStringToObject(js, "link", o->link);
    cJSON_AddNumberToObject(js, "prompt_tokens", (double)o->P);
    cJSON_AddNumberToObject(js, "gen_tokens", (double)o->N);
    cJSON_AddNumberToObject(js, "layers", (double)m->cfg->layers);
    cJSON_AddStringToObject(js, "policy", x->chosen == x->edgeshard ? "edgeshard" : "layers");
    cJSON_AddNumberToObject(js, "split_after", x->chosen);
    cJSON_AddNumberToObject(js, "edgeshard_split_after", x->edgeshard);
    cJSON_AddNumberToObject(js, "predicted_ttft_ms", c->prefill.ms);
    cJSON_AddNumberToObject(js, "predicted_tpot_ms", c->decode.ms);
    cJSON_AddNumberToObject(js, "predicted_total_ms", c->total_ms);
    cJSON_AddNumberToObject(js, "energy_per_token_mj", split_energy(x, x->chosen, o));
    cJSON_AddNumberToObject(js, "up_bytes_per_token", (double)c->decode.up_bytes);
    cJSON_AddNumberToObject(js, "down_bytes_per_token", (double)c->decode.down_bytes);
    cJSON_AddStringToObject(js, "profile_prefill", x->psrc);
    cJSON_AddStringToObject(js, "profile_decode", x->dsrc);
    cJSON *arr = cJSON_AddArrayToObject(js, "splits");
    for (int k = 0; k <= m->cfg->layers; k++) {
        const mb_gen_split_pred *p = &x->preds[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "split_after", k);
        cJSON_AddNumberToObject(e, "predicted_ttft_ms", p->prefill.ms);
        cJSON_AddNumberToObject(e, "predicted_tpot_ms", p->decode.ms);
        cJSON_AddNumberToObject(e, "predicted_total_ms", p->total_ms);
        cJSON_AddNumberToObject(e, "energy_per_token_mj", split_energy(x, k, o));
        cJSON_AddNumberToObject(e, "up_bytes_per_token", (double)p->decode.up_bytes);
        cJSON_AddNumberToObject(e, "down_bytes_per_token", (double)p->decode.down_bytes);
        cJSON_AddNumberToObject(e, "device_weight_bytes", p->device_weight_bytes);
        cJSON_AddItemToArray(arr, e);
    }
    if (match >= 0) {
        cJSON_AddBoolToObject(js, "output_match", match);
        cJSON *toks = cJSON_AddArrayToObject(js, "tokens");
        for (int i = 0; i < got->n_tokens; i++)
            cJSON_AddItemToArray(toks, cJSON_CreateNumber((double)got->tokens[i]));
    }
    char *str = cJSON_Print(js);
    puts(str);
    free(str);
    cJSON_Delete(js);
}

static void plan_text(const gen_opts *o, const mb_gen_model *m, const plan_ctx *x, int match,
                      const mb_gen_result *got)
{
    int L = (int)m->cfg->layers;
    printf("%s over %s: prompt %ld tokens, %ld generated; device (%s) and edge0 (%s); profiles: prefill %s, "
           "decode %s\n",
           m->cfg->name, o->link, o->P, o->N, mb_cost_site_type(x->dc, x->device)->name,
           mb_cost_site_type(x->dc, x->server)->name, x->psrc, x->dsrc);
    printf("  %-14s %10s %10s %12s %12s %14s %10s\n", "layers on dev", "TTFT ms", "TPOT ms", "total ms", "up B/token",
           "dev weights MB", "mJ/token");
    for (int k = 0; k <= L; k++) {
        const mb_gen_split_pred *p = &x->preds[k];
        char tag[32];
        snprintf(tag, sizeof tag, "%d%s", k, k == 0 ? " (edge)" : k == L ? " (device)" : "");
        printf("  %-14s %10.2f %10.2f %12.1f %12lld %14.1f %10.1f%s\n", tag, p->prefill.ms, p->decode.ms,
               p->total_ms, (long long)p->decode.up_bytes, p->device_weight_bytes / 1e6, split_energy(x, k, o),
               k == x->edgeshard ? "  <- edgeshard" : k == x->chosen ? "  <- --split" : "");
    }
    const mb_gen_split_pred *c = &x->preds[x->chosen];
    char where[96];
    if (x->chosen == 0)
        snprintf(where, sizeof where, "every layer on edge0 (the embedding on the device)");
    else if (x->chosen == L)
        snprintf(where, sizeof where, "every layer on the device");
    else
        snprintf(where, sizeof where, "layers 0..%d on the device, %d..%d on edge0", x->chosen - 1, x->chosen, L - 1);
    printf("split (%s): %s: predicted TTFT %.2f ms, TPOT %.2f ms\n", x->chosen == x->edgeshard ? "edgeshard" : "--split",
           where, c->prefill.ms, c->decode.ms);
    if (match >= 0)
        printf("verify: %d generated tokens %s the unsplit model's\n", got->n_tokens,
               match ? "identical to" : "DIFFER from");
}

static int plan_mode(const gen_opts *o, const mb_decoder_cfg *cfg, mb_backend *be)
{
    char err[1024];
    plan_ctx x;
    memset(&x, 0, sizeof x);
    mb_gen_result ref = {0}, got = {0};
    int rc = 1, match = -1;
    int64_t *prompt = mb_gen_prompt(cfg->vocab, (int)o->P, (uint64_t)o->seed);
    mb_gen_model *m = prompt ? mb_gen_model_new(cfg, o->capacity, (uint64_t)o->seed, err, sizeof err) : NULL;
    if (!m || plan_build(o, m, &x, err, sizeof err) ||
        (o->verify && (match = plan_verify(o, m, be, &x, prompt, &ref, &got, err, sizeof err)) < 0)) {
        fprintf(stderr, "mecbed generate: %s\n", prompt ? err : "out of memory");
        goto out;
    }
    if (o->json)
        plan_json(o, m, &x, match, &got);
    else
        plan_text(o, m, &x, match, &got);
    rc = match == 0 ? 1 : 0;
out:
    mb_gen_result_free(&ref);
    mb_gen_result_free(&got);
    plan_free(&x);
    mb_gen_model_free(m);
    free(prompt);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    gen_opts o;
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : 2;
    const mb_decoder_cfg *cfg = mb_decoder_find(o.model);
    if (!cfg) {
        fprintf(stderr, "mecbed generate: --model '%s' is not a decoder (gpt2, smollm_135m, tinyllama_1b)\n", o.model);
        return 2;
    }
    if (o.capacity < o.P + o.N - 1 || o.capacity > cfg->max_pos) {
        fprintf(stderr, "mecbed generate: a prompt of %ld tokens and %ld generated need a KV cache of %ld positions "
                "(--capacity %ld); %s knows at most %lld positions\n", o.P, o.N, o.P + o.N - 1, o.capacity,
                cfg->name, (long long)cfg->max_pos);
        return 2;
    }
    char err[1024];
    mb_backend *be = mb_backend_new(o.kernels, (int)o.threads, err, sizeof err);
    if (!be) {
        fprintf(stderr, "mecbed generate: %s\n", err);
        return 1;
    }
    if (o.link && o.gen_policy) {
        gen_policy_args ga = {o.gen_policy, o.link, o.lan, o.draft, (int)o.edges, (int)o.P, (int)o.N, o.json,
                              o.verify, o.capacity, o.seed};
        int prc3 = mb_cli_gen_policy(&ga, cfg, be, o.kernels, (int)o.threads);
        mb_backend_free(be);
        return prc3;
    }
    if (o.link) {
        int prc2 = plan_mode(&o, cfg, be);
        mb_backend_free(be);
        return prc2;
    }
    int rc = 1;
    mb_gen_result r = {0};
    int64_t *prompt = mb_gen_prompt(cfg->vocab, (int)o.P, (uint64_t)o.seed);
    mb_gen_model *m = prompt ? mb_gen_model_new(cfg, o.capacity, (uint64_t)o.seed, err, sizeof err) : NULL;
    if (!m) {
        fprintf(stderr, "mecbed generate: %s\n", prompt ? err : "out of memory");
        goto out;
    }
    /* bandwidth before and after the run, the best of both: the bound is
     * then the tightest this machine showed during the run */
    double bw_before = o.bw_mb > 0 ? mb_mem_read_bandwidth((size_t)o.bw_mb << 20, 3) : 0;
    if (mb_generate(m, be, prompt, (int)o.P, (int)o.N, &r, err, sizeof err)) {
        fprintf(stderr, "mecbed generate: %s\n", err);
        goto out;
    }
    gen_report g = {m, &r, 0, 0, mb_graph_params(m->decode)};
    if (o.bw_mb > 0) {
        g.bw_gbs = mb_mem_read_bandwidth((size_t)o.bw_mb << 20, 3);
        if (bw_before > g.bw_gbs)
            g.bw_gbs = bw_before;
        if (g.bw_gbs > 0)
            g.bound_ms = (double)r.weight_bytes / (g.bw_gbs * 1e9) * 1e3;
    }
    if (o.json)
        print_json(&o, &g, be);
    else
        print_text(&o, &g, be);
    rc = 0;
out:
    mb_gen_result_free(&r);
    mb_gen_model_free(m);
    free(prompt);
    mb_backend_free(be);
    return rc;
}
