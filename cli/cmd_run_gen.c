/* mecbed run --prompt-tokens P --gen-tokens N (cli/cmd_run_gen.h). */
#include "cmd_run_gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/decoder.h"
#include "mecbed/genplan.h"
#include "mecbed/gensession.h"
#include "mecbed/model.h"
#include "mecbed/profile.h"
#include "mecbed/zoo.h"

int mb_run_generate_check(const char *model, long P, long N, long split)
{
    const mb_decoder_cfg *dec = model ? mb_decoder_find(model) : NULL;
    if (!dec) {
        fprintf(stderr, "mecbed run: --prompt-tokens: %s is not a decoder (gpt2, smollm_135m, tinyllama_1b)\n",
                model ? model : "(no --model)");
        return 2;
    }
    if (P + N - 1 > MB_DECODER_ZOO_CAPACITY) {
        fprintf(stderr, "mecbed run: a prompt of %ld tokens and %ld generated need %ld cache positions; the "
                "decode graph holds %d\n", P, N, P + N - 1, MB_DECODER_ZOO_CAPACITY);
        return 2;
    }
    if (split > dec->layers) {
        fprintf(stderr, "mecbed run: --split %ld: %s has %lld layers\n", split, dec->name, (long long)dec->layers);
        return 2;
    }
    return 0;
}

/* What speculative decoding adds: the target's verification graph (k + 1
 * tokens over the cache, its weights the decode graph's) and the draft's
 * decode graph, with cost models on the run's topology. */
typedef struct spec_parts {
    char vname[160];
    mb_graph *vg, *dg;
    mb_profile *vp, *dp;
    mb_cost_model *vc, *dc;
} spec_parts;

static void spec_free(spec_parts *sp)
{
    mb_cost_free(sp->vc);
    mb_cost_free(sp->dc);
    mb_profile_free(sp->vp);
    mb_profile_free(sp->dp);
    mb_graph_free(sp->vg);
    mb_graph_free(sp->dg);
}

static int spec_build(mb_plan_setup *s, const mb_decoder_cfg *dec, const mb_decoder_cfg *draft, int k,
                      spec_parts *sp, char *err, size_t errlen)
{
    const char *src = NULL;
    memset(sp, 0, sizeof *sp);
    snprintf(sp->vname, sizeof sp->vname, "%s:verify=%d", dec->name, k + 1);
    sp->vg = mb_zoo_build_structure(sp->vname, err, errlen);
    if (sp->vg && mb_decoder_share_weights(sp->vg, s->g, err, errlen) < 0)
        return -1;
    sp->vp = sp->vg ? mb_profile_default(sp->vg, &src, err, errlen) : NULL;
    sp->vc = sp->vp ? mb_cost_new(sp->vg, &s->topo, sp->vp, &s->types, NULL, err, errlen) : NULL;
    sp->dg = sp->vc ? mb_zoo_build(draft->name, 1, err, errlen) : NULL;
    sp->dp = sp->dg ? mb_profile_default(sp->dg, &src, err, errlen) : NULL;
    sp->dc = sp->dp ? mb_cost_new(sp->dg, &s->topo, sp->dp, &s->types, NULL, err, errlen) : NULL;
    return sp->dc ? 0 : -1;
}

/* --policy-opt of a generation: edges=K (galaxy), k=K,a=A (speculative). */
static int gen_opts(const mb_session_config *cfg, int galaxy, int spec, int *edges, int *k, double *a)
{
    const char *o = cfg->policy_opts;
    while (o && *o) {
        int n = 0;
        if (galaxy && sscanf(o, "edges=%d%n", edges, &n) == 1 && *edges >= 1)
            ;
        else if (spec && sscanf(o, "k=%d%n", k, &n) == 1 && *k >= 1 && *k <= 32)
            ;
        else if (spec && sscanf(o, "a=%lf%n", a, &n) == 1 && *a >= 0 && *a <= 1)
            ;
        else {
            fprintf(stderr, "mecbed run: --policy-opt '%s': a generation takes edges=K (K >= 1) with galaxy, "
                    "k=K (1..32) and a=A ([0, 1]) with speculative\n", cfg->policy_opts);
            return -1;
        }
        o += n;
        if (*o == ',')
            o++;
        else if (*o) {
            fprintf(stderr, "mecbed run: --policy-opt '%s': options are separated by commas\n", cfg->policy_opts);
            return -1;
        }
    }
    return 0;
}

int mb_run_generate(mb_plan_setup *s, const mb_session_config *cfg, long P, long N, int split, int json)
{
    char err[1024], name[160];
    const mb_decoder_cfg *dec = mb_decoder_find(s->model);
    if (!dec || s->g->n_outputs < 3 || mb_decoder_layer_of(s->g, s->g->outputs[1]) != 0) {
        fprintf(stderr, "mecbed run: --prompt-tokens: %s is not a decoder (gpt2, smollm_135m, tinyllama_1b)\n",
                s->model);
        return 2;
    }
    int pd = !strcmp(cfg->policy, "pd-device"), galaxy = !strcmp(cfg->policy, "galaxy"), edges = 0;
    int spec = !strcmp(cfg->policy, "speculative"), k = 4;
    double a = 0.8;
    if (!pd && !galaxy && !spec && strcmp(cfg->policy, "edgeshard") && strcmp(cfg->policy, "pipeline")) {
        fprintf(stderr, "mecbed run: --policy %s: a generation runs edgeshard (the layer-range pipeline, the "
                "default; also 'pipeline'), pd-device (the server prefills, the device decodes), galaxy (tensor "
                "parallel over the topology's edge nodes; --policy-opt edges=K) or speculative (a draft on the "
                "device, the target on the server; --policy-opt k=K,a=A)\n", cfg->policy);
        return 2;
    }
    if ((pd || galaxy || spec) && split >= 0) {
        fprintf(stderr, "mecbed run: --split: %s has no layer split to choose\n", cfg->policy);
        return 2;
    }
    if (gen_opts(cfg, galaxy, spec, &edges, &k, &a))
        return 2;
    if (spec && P + N - 1 + k > MB_DECODER_ZOO_CAPACITY) {
        fprintf(stderr, "mecbed run: speculative decoding with k=%d needs %ld cache positions (prompt + generated - 1 "
                "+ k); the graphs hold %d\n", k, P + N - 1 + k, MB_DECODER_ZOO_CAPACITY);
        return 2;
    }
    int server = -1;
    for (int i = 0; i < s->topo.n_sites; i++)
        if (i != s->device && s->topo.sites[i].role != MB_ROLE_DEVICE && server < 0 &&
            (!galaxy || s->topo.sites[i].role == MB_ROLE_EDGE))
            server = i;
    if (server < 0 || (!galaxy && s->topo.n_sites != 2)) {
        fprintf(stderr, "mecbed run: --prompt-tokens: the layer-range split runs between the device and one "
                "server (--link SPEC, or a topology of two sites)\n");
        return 2;
    }
    snprintf(name, sizeof name, "%s:prefill=%ld", dec->name, P);
    const char *psrc = NULL;
    /* the prefill graph borrows the decode graph's weights (drawn once):
     * the same values the node draws for it, so the same graph hash */
    mb_graph *pg = mb_zoo_build_structure(name, err, sizeof err);
    if (pg && mb_decoder_share_weights(pg, s->g, err, sizeof err) < 0) {
        mb_graph_free(pg);
        pg = NULL;
    }
    mb_profile *pp = pg ? mb_profile_default(pg, &psrc, err, sizeof err) : NULL;
    mb_cost_opts cold; /* the prefill is the session's first frame: cold connections (cost.h) */
    mb_cost_opts_default(&cold);
    cold.cold_connections = 1;
    mb_cost_model *pc = pp ? mb_cost_new(pg, &s->topo, pp, &s->types, &cold, err, sizeof err) : NULL;
    int rc = 1;
    spec_parts sp;
    memset(&sp, 0, sizeof sp);
    const mb_decoder_cfg *draft = spec ? mb_gen_default_draft(dec) : NULL;
    if (!pc) {
        fprintf(stderr, "mecbed run: the prefill graph: %s\n", err);
        goto out;
    }
    if (spec && (!draft || spec_build(s, dec, draft, k, &sp, err, sizeof err))) {
        fprintf(stderr, "mecbed run: speculative decoding: %s\n", draft ? err : "no draft model for this target");
        goto out;
    }
    mb_gen_run_config gc;
    memset(&gc, 0, sizeof gc);
    gc.s = *cfg;
    gc.dec = dec;
    gc.prefill = pg;
    gc.decode = s->g;
    gc.prefill_name = name;
    gc.decode_name = dec->name;
    gc.c_prefill = pc;
    gc.c_decode = s->cost;
    gc.p_prefill = pp;
    gc.server = server;
    gc.P = (int)P;
    gc.N = (int)N;
    gc.split = split;
    gc.pd = pd;
    gc.galaxy_edges = galaxy ? (edges ? edges : -1) : 0;
    if (spec) {
        gc.spec_k = k;
        gc.spec_a = a;
        gc.verify = sp.vg;
        gc.verify_name = sp.vname;
        gc.c_verify = sp.vc;
        gc.draft = sp.dg;
        gc.c_draft = sp.dc;
        gc.draft_cfg = draft;
    }
    gc.seed = cfg->seed;
    mb_gen_run_report r;
    if (mb_gen_run(&gc, &r, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        goto out;
    }
    if (json)
        mb_gen_run_write_json(&r, stdout);
    else
        mb_gen_run_write_text(&r, stdout);
    rc = r.output_match ? 0 : 1;
    mb_gen_run_report_free(&r);
out:
    spec_free(&sp);
    mb_cost_free(pc);
    mb_profile_free(pp);
    mb_graph_free(pg);
    return rc;
}
