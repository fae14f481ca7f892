/* `mecbed generate --link SPEC --gen-policy NAME`: the generation policies
 * (docs/generation.md, "Policies") predicted from the cost model and, with
 * --verify, run in this process and checked against the unsplit model. */
#include "gen_policy.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/generate.h"
#include "mecbed/genplan.h"
#include "mecbed/nodetype.h"
#include "mecbed/topology.h"

/* The draft for cfg: --draft, else a smaller decoder of the zoo with the same vocabulary. */
static const mb_decoder_cfg *draft_for(const mb_decoder_cfg *cfg, const char *name, char *err, size_t errlen)
{
    if (name) {
        const mb_decoder_cfg *d = mb_decoder_find(name);
        if (!d)
            snprintf(err, errlen, "--draft '%s' is not a decoder of the zoo", name);
        else if (d->vocab != cfg->vocab) {
            snprintf(err, errlen, "--draft %s has a vocabulary of %lld tokens, %s one of %lld: speculative decoding "
                     "needs the same", d->name, (long long)d->vocab, cfg->name, (long long)cfg->vocab);
            d = NULL;
        }
        return d;
    }
    return mb_gen_default_draft(cfg);
}

typedef struct verify_out {
    int match;               /* -1: not verified */
    mb_gen_result ref, got;
    mb_gen_spec_stats spec;
    int spec_run;
} verify_out;

static int verify(const gen_policy_args *a, const mb_gen_policy_spec *ps, const mb_decoder_cfg *cfg,
                  const mb_decoder_cfg *draft, mb_gen_ctx *ctx, const mb_topology *t, const mb_nodetype_set *types,
                  const mb_gen_policy_pred *pr, mb_backend *be, const char *kernels, int threads, verify_out *v,
                  char *err, size_t errlen)
{
    int spec = !strcmp(ps->name, "speculative");
    int64_t C = a->capacity + (spec ? ps->k : 0);
    int64_t *prompt = mb_gen_prompt(cfg->vocab, a->P, (uint64_t)a->seed);
    mb_gen_model *m = prompt ? mb_gen_model_new(cfg, C, (uint64_t)a->seed, err, errlen) : NULL;
    mb_gen_model *dm = NULL;
    mb_backend *be2 = NULL;
    int rc = -1;
    if (!m || mb_generate(m, be, prompt, a->P, a->N, &v->ref, err, errlen))
        goto out;
    if (!strcmp(ps->name, "galaxy")) {
        mb_gen_tp tp;
        if (mb_gen_ctx_galaxy_tp(ctx, t, types, ps->edges, &tp, err, errlen) ||
            mb_generate_galaxy(m, be, t, &tp, 0, prompt, a->P, a->N, &v->got, err, errlen))
            goto out;
    } else if (!strcmp(ps->name, "pd-device")) {
        if (!(be2 = mb_backend_new(kernels, threads, err, errlen)) ||
            mb_generate_pd(m, be, be2, prompt, a->P, a->N, a->P, &v->got, err, errlen))
            goto out;
    } else if (spec) {
        mb_gen_spec_opts so = {ps->k, ps->a, v->ref.tokens, 0};
        if (!(dm = mb_gen_model_new(draft, C, (uint64_t)a->seed + 1, err, errlen)) ||
            !(be2 = mb_backend_new(kernels, threads, err, errlen)) ||
            mb_generate_speculative(m, dm, be, be2, prompt, a->P, a->N, &so, &v->got, &v->spec, err, errlen))
            goto out;
        v->spec_run = 1;
    } else { /* pipeline, device, edge: the layer-range split */
        int L = (int)cfg->layers, *ls = malloc(sizeof(int) * (size_t)L);
        if (!ls) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        for (int l = 0; l < L; l++)
            ls[l] = l < pr->split_after ? 0 : mb_topology_find(t, "edge0");
        mb_gen_split sp = {t, ls, 0};
        int r2 = mb_generate_split(m, be, &sp, prompt, a->P, a->N, &v->got, err, errlen);
        free(ls);
        if (r2)
            goto out;
    }
    v->match = v->ref.n_tokens == v->got.n_tokens &&
               !memcmp(v->ref.tokens, v->got.tokens, sizeof(int64_t) * (size_t)v->ref.n_tokens);
    rc = 0;
out:
    mb_backend_free(be2);
    mb_gen_model_free(dm);
    mb_gen_model_free(m);
    free(prompt);
    return rc;
}

static void pred_json(cJSON *e, const mb_gen_policy_pred *p)
{
    cJSON_AddStringToObject(e, "policy", p->policy);
    cJSON_AddStringToObject(e, "detail", p->detail);
    cJSON_AddNumberToObject(e, "predicted_ttft_ms", p->ttft_ms);
    cJSON_AddNumberToObject(e, "predicted_tpot_ms", p->tpot_ms);
    cJSON_AddNumberToObject(e, "predicted_total_ms", p->total_ms);
    cJSON_AddNumberToObject(e, "predicted_tokens_per_s", p->tokens_per_s);
    cJSON_AddNumberToObject(e, "energy_per_token_mj", p->energy_per_token_mj);
    cJSON_AddNumberToObject(e, "radio_per_token_mj", p->radio_per_token_mj);
    cJSON_AddNumberToObject(e, "ttft_energy_mj", p->ttft_energy_mj);
    cJSON_AddNumberToObject(e, "energy_total_mj", p->energy_total_mj);
    cJSON_AddNumberToObject(e, "up_bytes_per_token", p->up_bytes_per_token);
    cJSON_AddNumberToObject(e, "down_bytes_per_token", p->down_bytes_per_token);
    cJSON_AddNumberToObject(e, "backbone_bytes_per_token", p->backbone_bytes_per_token);
    if (p->split_after >= 0)
        cJSON_AddNumberToObject(e, "split_after", p->split_after);
    if (p->edges > 0) {
        cJSON_AddNumberToObject(e, "edges", p->edges);
        cJSON_AddNumberToObject(e, "sync_ms_per_token", p->sync_ms);
    }
    if (p->kv_transfer_bytes > 0)
        cJSON_AddNumberToObject(e, "kv_transfer_bytes", p->kv_transfer_bytes);
    if (p->draft_k > 0) {
        cJSON_AddNumberToObject(e, "draft_tokens", p->draft_k);
        cJSON_AddNumberToObject(e, "acceptance", p->acceptance);
        cJSON_AddNumberToObject(e, "tokens_per_round", p->tokens_per_round);
    }
}

static void print_json(const gen_policy_args *a, const mb_decoder_cfg *cfg, const mb_gen_policy_pred *p, int n,
                       const verify_out *v, const char *profile)
{
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "model", cfg->name);
    cJSON_AddStringToObject(js, "link", a->link);
    cJSON_AddNumberToObject(js, "edges", a->edges);
    cJSON_AddNumberToObject(js, "prompt_tokens", a->P);
    cJSON_AddNumberToObject(js, "gen_tokens", a->N);
    cJSON_AddStringToObject(js, "profile_decode", profile);
    if (n == 1)
        pred_json(js, p);
    else {
        cJSON *arr = cJSON_AddArrayToObject(js, "policies");
        for (int i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();
            pred_json(e, &p[i]);
            cJSON_AddItemToArray(arr, e);
        }
    }
    if (v && v->match >= 0) {
        cJSON_AddBoolToObject(js, "output_match", v->match);
        cJSON *toks = cJSON_AddArrayToObject(js, "tokens");
        for (int i = 0; i < v->got.n_tokens; i++)
            cJSON_AddItemToArray(toks, cJSON_CreateNumber((double)v->got.tokens[i]));
        if (v->spec_run) {
            cJSON_AddNumberToObject(js, "rounds", v->spec.rounds);
            cJSON_AddNumberToObject(js, "proposed", v->spec.proposed);
            cJSON_AddNumberToObject(js, "accepted", v->spec.accepted);
            cJSON_AddNumberToObject(js, "accepted_by_pattern", v->spec.forced);
            cJSON_AddNumberToObject(js, "measured_acceptance",
                                    v->spec.proposed ? (double)v->spec.accepted / v->spec.proposed : 0);
        }
    }
    char *s = cJSON_Print(js);
    puts(s);
    free(s);
    cJSON_Delete(js);
}

static void print_text(const gen_policy_args *a, const mb_decoder_cfg *cfg, const mb_gen_policy_pred *p, int n,
                       const verify_out *v, const char *profile)
{
    printf("%s over %s (%d edge node%s, LAN %s): prompt %d tokens, %d generated; profiles %s\n", cfg->name, a->link,
           a->edges, a->edges == 1 ? "" : "s", a->lan ? a->lan : MB_GEN_LAN_DEFAULT, a->P, a->N, profile);
    printf("  %-12s %10s %10s %10s %12s %12s  %s\n", "policy", "TTFT ms", "TPOT ms", "tokens/s", "mJ/token",
           "up B/token", "detail");
    for (int i = 0; i < n; i++)
        printf("  %-12s %10.2f %10.2f %10.2f %12.1f %12.0f  %s\n", p[i].policy, p[i].ttft_ms, p[i].tpot_ms,
               p[i].tokens_per_s, p[i].energy_per_token_mj, p[i].up_bytes_per_token, p[i].detail);
    if (n == 1 && p->edges > 1)
        printf("  all-reduces per token: %.2f ms (%d layers x 2), %.0f bytes between edge nodes\n", p->sync_ms,
               (int)cfg->layers, p->backbone_bytes_per_token);
    if (n == 1 && p->kv_transfer_bytes > 0)
        printf("  KV cache to the device: %.3f MB (in TTFT)\n", p->kv_transfer_bytes / 1e6);
    if (!v || v->match < 0)
        return;
    printf("verify: %d generated tokens %s the unsplit model's\n", v->got.n_tokens,
           v->match ? "identical to" : "DIFFER from");
    if (v->spec_run)
        printf("  speculative: %d rounds, %d of %d proposals accepted (%.2f; %d set by the acceptance pattern)\n",
               v->spec.rounds, v->spec.accepted, v->spec.proposed,
               v->spec.proposed ? (double)v->spec.accepted / v->spec.proposed : 0, v->spec.forced);
}

int mb_cli_gen_policy(const gen_policy_args *a, const mb_decoder_cfg *cfg, mb_backend *be, const char *kernels,
                      int threads)
{
    char err[1024];
    int all = !strcmp(a->policy, "all"), rc = 1, n = 0;
    mb_gen_policy_spec ps;
    if (!all && mb_gen_policy_parse(a->policy, &ps, err, sizeof err)) {
        fprintf(stderr, "mecbed generate: --gen-policy: %s\n", err);
        return 2;
    }
    if (all && a->verify) {
        fprintf(stderr, "mecbed generate: --verify checks one policy: --gen-policy NAME\n");
        return 2;
    }
    const mb_decoder_cfg *draft = draft_for(cfg, a->draft, err, sizeof err);
    if (!draft && a->draft) {
        fprintf(stderr, "mecbed generate: %s\n", err);
        return 2;
    }
    mb_topology t;
    mb_nodetype_set *types = calloc(1, sizeof *types);
    mb_gen_ctx *ctx = NULL;
    mb_gen_policy_pred preds[8];
    verify_out v;
    memset(&v, 0, sizeof v);
    v.match = -1;
    if (!types) {
        fprintf(stderr, "mecbed generate: out of memory\n");
        return 1;
    }
    if (mb_gen_topology(a->link, a->edges, a->lan, &t, err, sizeof err) ||
        mb_nodetypes_load_default(types, err, sizeof err) ||
        mb_nodetypes_check_sites(types, &t, NULL, err, sizeof err) ||
        !(ctx = mb_gen_ctx_new(cfg, draft, a->P, a->N, a->capacity, (uint64_t)a->seed, err, sizeof err)))
        goto fail;
    if (all) {
        char gal[32];
        snprintf(gal, sizeof gal, "galaxy:edges=%d", a->edges);
        const char *list[] = {"device", "edge", "pipeline", gal, "pd-device", "speculative:a=0.6",
                              "speculative:a=0.8"};
        for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
            if (!strncmp(list[i], "speculative", 11) && !draft) {
                if (i + 1 == sizeof list / sizeof list[0])
                    fprintf(stderr, "mecbed generate: no speculative decoding: no decoder of the zoo shares %s's "
                            "vocabulary (--draft NAME)\n", cfg->name);
                continue;
            }
            if (mb_gen_ctx_predict(ctx, list[i], &t, types, &preds[n++], err, sizeof err))
                goto fail;
        }
    } else {
        if (mb_gen_ctx_predict(ctx, a->policy, &t, types, &preds[n++], err, sizeof err))
            goto fail;
        if (a->verify && verify(a, &ps, cfg, draft, ctx, &t, types, &preds[0], be, kernels, threads, &v, err,
                                sizeof err))
            goto fail;
    }
    if (a->json)
        print_json(a, cfg, preds, n, &v, mb_gen_ctx_profile_source(ctx));
    else
        print_text(a, cfg, preds, n, &v, mb_gen_ctx_profile_source(ctx));
    rc = v.match == 0 ? 1 : 0;
    goto out;
fail:
    fprintf(stderr, "mecbed generate: %s\n", err);
out:
    mb_gen_result_free(&v.ref);
    mb_gen_result_free(&v.got);
    mb_gen_ctx_free(ctx);
    free(types);
    return rc;
}
