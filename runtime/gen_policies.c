/* The generation policies beside the layer-range pipeline, run in this
 * process to verify them (include/mecbed/generate.h, docs/generation.md
 * "Policies"): Galaxy's tensor-parallel plans, P/D-Device's prefill and
 * decode on separate executors with the KV cache copied between them, and
 * speculative decoding with a real draft and target. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/exec.h"
#include "mecbed/generate.h"
#include "mecbed/platform.h"

/* ---- one model's state: its KV cache between steps ---- */

typedef struct gen_state {
    const mb_gen_model *m;
    mb_backend *be;
    int n_cache;
    mb_tensor **cache; /* present.L.key, present.L.value, ... */
    /* Galaxy: every step a plan across the sites of t (NULL: one executor) */
    const mb_topology *t;
    const mb_gen_tp *tp;
    int device;
    mb_plan *plan; /* the decode graph's */
} gen_state;

/* One step of g: the whole graph on this executor, or Galaxy's plan. */
static int state_run(gen_state *s, const mb_graph *g, mb_plan **plan, mb_tensor **in, mb_tensor ***outs, char *err,
                     size_t errlen)
{
    if (!s->tp)
        return mb_exec_run(g, s->be, in, outs, NULL, NULL, err, errlen);
    if (!*plan && !(*plan = mb_gen_galaxy_plan(g, s->t, s->tp, s->device, err, errlen)))
        return -1;
    return mb_plan_execute(*plan, g, s->t, s->be, in, outs, err, errlen);
}

static void state_free(gen_state *s)
{
    mb_plan_free(s->plan);
    s->plan = NULL;
    for (int i = 0; s->cache && i < s->n_cache; i++)
        mb_tensor_free(s->cache[i]);
    free(s->cache);
    s->cache = NULL;
}

static mb_tensor *ids(const int64_t *v, int n)
{
    int64_t d = n;
    mb_tensor *t = mb_tensor_new(1, &d);
    for (int i = 0; t && i < n; i++)
        t->data[i] = (float)v[i];
    return t;
}

/* Prefill prompt[0..P): the first token; the cache kept in s. */
static int state_prefill(gen_state *s, const int64_t *prompt, int P, int64_t *tok, double *ms, char *err,
                         size_t errlen)
{
    const mb_gen_model *m = s->m;
    mb_graph *pg = mb_decoder_build(m->cfg, P, m->capacity, 0, 0, 1, err, errlen);
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)P);
    mb_tensor *in[2] = {ids(prompt, P), NULL}, **outs = NULL;
    int rc = -1;
    for (int i = 0; pos && i < P; i++)
        pos[i] = i;
    in[1] = pos ? ids(pos, P) : NULL;
    if (!pg)
        goto out;
    if (!in[0] || !in[1]) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (mb_decoder_share_weights(pg, m->decode, err, errlen) < 0)
        goto out;
    double t0 = mb_now();
    mb_plan *pp = NULL;
    int run = state_run(s, pg, &pp, in, &outs, err, errlen);
    mb_plan_free(pp);
    if (run)
        goto out;
    *ms = (mb_now() - t0) * 1e3;
    *tok = (int64_t)outs[0]->data[0];
    mb_tensor_free(outs[0]);
    s->n_cache = pg->n_outputs - 1;
    s->cache = malloc(sizeof(mb_tensor *) * (size_t)s->n_cache);
    if (!s->cache) {
        for (int k = 1; k < pg->n_outputs; k++)
            mb_tensor_free(outs[k]);
        snprintf(err, errlen, "out of memory");
    } else {
        memcpy(s->cache, outs + 1, sizeof(mb_tensor *) * (size_t)s->n_cache);
        rc = 0;
    }
    free(outs);
out:
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    free(pos);
    mb_graph_free(pg);
    return rc;
}

/* One decode step: token tok at position pos; the cache updated in s. */
static int state_step(gen_state *s, int64_t tok, int64_t pos, int64_t *next, double *ms, char *err, size_t errlen)
{
    const mb_graph *dg = s->m->decode;
    int n_in = 2 + s->n_cache;
    mb_tensor **in = calloc((size_t)n_in, sizeof *in), **outs = NULL;
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    in[0] = ids(&tok, 1);
    in[1] = ids(&pos, 1);
    memcpy(in + 2, s->cache, sizeof(mb_tensor *) * (size_t)s->n_cache);
    int rc = -1;
    if (!in[0] || !in[1])
        snprintf(err, errlen, "out of memory");
    else {
        double t0 = mb_now();
        rc = state_run(s, dg, &s->plan, in, &outs, err, errlen);
        if (ms)
            *ms = (mb_now() - t0) * 1e3;
    }
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    if (rc) { /* the cache is still the caller's */
        free(in);
        return -1;
    }
    for (int k = 0; k < s->n_cache; k++)
        mb_exec_release(in[k + 2]);
    free(in);
    *next = (int64_t)outs[0]->data[0];
    mb_tensor_free(outs[0]);
    memcpy(s->cache, outs + 1, sizeof(mb_tensor *) * (size_t)s->n_cache);
    free(outs);
    return 0;
}

static int result_alloc(mb_gen_result *r, int N, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->tokens = calloc((size_t)N, sizeof(int64_t));
    r->step_ms = calloc((size_t)N, sizeof(double));
    if (r->tokens && r->step_ms)
        return 0;
    snprintf(err, errlen, "out of memory");
    mb_gen_result_free(r);
    return -1;
}

static int gen_args(const mb_gen_model *m, const int64_t *prompt, int P, int N, char *err, size_t errlen)
{
    if (P < 1 || N < 1 || (int64_t)P + N - 1 > m->capacity) {
        snprintf(err, errlen, "%s: a prompt of %d tokens and %d generated need a cache of %d positions; its capacity "
                 "is %lld", m->cfg->name, P, N, P + N - 1, (long long)m->capacity);
        return -1;
    }
    for (int i = 0; i < P; i++)
        if (prompt[i] < 0 || prompt[i] >= m->cfg->vocab) {
            snprintf(err, errlen, "prompt token %d is %lld, outside the vocabulary [0, %lld)", i, (long long)prompt[i],
                     (long long)m->cfg->vocab);
            return -1;
        }
    return 0;
}

static void summarize(mb_gen_result *r, int steps)
{
    double sum = 0, mn = INFINITY;
    for (int i = 0; i < steps; i++) {
        sum += r->step_ms[i];
        mn = r->step_ms[i] < mn ? r->step_ms[i] : mn;
    }
    if (steps < 1)
        return;
    r->tpot_mean_ms = sum / steps;
    r->tpot_min_ms = mn;
    r->tokens_per_s = r->tpot_mean_ms > 0 ? 1000.0 / r->tpot_mean_ms : 0;
}

/* ---- Galaxy ---- */

int mb_generate_galaxy(const mb_gen_model *m, mb_backend *be, const mb_topology *t, const mb_gen_tp *tp, int device,
                       const int64_t *prompt, int P, int N, mb_gen_result *r, char *err, size_t errlen)
{
    if (gen_args(m, prompt, P, N, err, errlen) || result_alloc(r, N, err, errlen))
        return -1;
    gen_state s = {m, be, 0, NULL, t, tp, device, NULL};
    int rc = -1;
    if (state_prefill(&s, prompt, P, &r->tokens[0], &r->ttft_ms, err, errlen))
        goto out;
    r->n_tokens = 1;
    for (int step = 1; step < N; step++) {
        if (state_step(&s, r->tokens[step - 1], P + step - 1, &r->tokens[step], &r->step_ms[step - 1], err, errlen))
            goto out;
        r->n_tokens = step + 1;
    }
    summarize(r, N - 1);
    r->weight_bytes = mb_decoder_weight_bytes_per_step(m->decode);
    rc = 0;
out:
    state_free(&s);
    if (rc)
        mb_gen_result_free(r);
    return rc;
}

/* ---- P/D-Device ---- */

/* A fresh zero cache of t's shape holding t's first `keep` positions (the
 * position axis: keys [Hkv, dh, C] axis 2, values [Hkv, C, dh] axis 1). */
static mb_tensor *cache_sent(const mb_tensor *t, int is_key, int64_t keep)
{
    mb_tensor *d = mb_tensor_new(t->ndim, t->dims);
    if (!d)
        return NULL;
    int64_t H = t->dims[0], a = t->dims[1], b = t->dims[2];
    for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < a; i++)
            for (int64_t j = 0; j < b; j++) {
                int64_t p = is_key ? j : i;
                if (p < keep) {
                    int64_t o = (h * a + i) * b + j;
                    d->data[o] = t->data[o];
                }
            }
    return d;
}

int mb_generate_pd(const mb_gen_model *m, mb_backend *be_server, mb_backend *be_device, const int64_t *prompt, int P,
                   int N, int send_positions, mb_gen_result *r, char *err, size_t errlen)
{
    if (gen_args(m, prompt, P, N, err, errlen) || result_alloc(r, N, err, errlen))
        return -1;
    gen_state srv = {m, be_server, 0, NULL, NULL, NULL, 0, NULL}, dev = {m, be_device, 0, NULL, NULL, NULL, 0, NULL};
    int rc = -1;
    if (state_prefill(&srv, prompt, P, &r->tokens[0], &r->ttft_ms, err, errlen))
        goto out;
    r->n_tokens = 1;
    /* the transfer: the prompt's positions of every layer's cache into the device's own buffers */
    dev.n_cache = srv.n_cache;
    dev.cache = calloc((size_t)dev.n_cache, sizeof(mb_tensor *));
    for (int k = 0; dev.cache && k < dev.n_cache; k++) {
        if (!(dev.cache[k] = cache_sent(srv.cache[k], k % 2 == 0, send_positions)))
            break;
        r->kv_bytes += (int64_t)send_positions * (srv.cache[k]->dims[0] * (k % 2 ? srv.cache[k]->dims[2] : srv.cache[k]->dims[1])) * 4;
    }
    if (!dev.cache || (dev.n_cache && !dev.cache[dev.n_cache - 1])) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    state_free(&srv);
    for (int step = 1; step < N; step++) {
        if (state_step(&dev, r->tokens[step - 1], P + step - 1, &r->tokens[step], &r->step_ms[step - 1], err,
                       errlen))
            goto out;
        r->n_tokens = step + 1;
    }
    summarize(r, N - 1);
    r->weight_bytes = mb_decoder_weight_bytes_per_step(m->decode);
    rc = 0;
out:
    state_free(&srv);
    state_free(&dev);
    if (rc)
        mb_gen_result_free(r);
    return rc;
}

/* ---- speculative decoding ---- */

typedef struct spec_run {
    gen_state tgt, dft;
    const mb_gen_spec_opts *o;
    int P, N;
    mb_gen_result *r;
    mb_gen_spec_stats *st;
    double m;            /* expected accepted proposals per round */
    int64_t *prop, *ver; /* [k] proposals, [k+1] the target's tokens */
} spec_run;

/* One round from n tokens generated: returns the new count, -1 on error. */
static int spec_round(spec_run *x, int n, char *err, size_t errlen)
{
    int k = x->o->k, R = x->st->rounds;
    int forced = (int)(floor((R + 1) * x->m) - floor(R * x->m));
    int64_t pos = x->P + n - 1, cur = x->r->tokens[n - 1], d;
    if (forced > k)
        forced = k;
    if (forced > x->N - n - 1)
        forced = x->N - n - 1 > 0 ? x->N - n - 1 : 0;
    double t0 = mb_now();
    for (int i = 0; i < k; i++) { /* the draft: k proposals */
        if (state_step(&x->dft, cur, pos + i, &d, NULL, err, errlen))
            return -1;
        x->prop[i] = !x->o->unverified && i < forced && x->o->ref ? x->o->ref[n + i] : d;
        cur = x->prop[i];
    }
    int j = 0;
    if (x->o->unverified) { /* broken on purpose: trust the draft */
        j = forced;
        for (int i = 0; i <= j; i++)
            if (state_step(&x->tgt, i ? x->prop[i - 1] : x->r->tokens[n - 1], pos + i, &x->ver[i], NULL, err, errlen))
                return -1;
    } else {
        for (int i = 0; i <= k; i++) /* the target: positions pos..pos+k */
            if (state_step(&x->tgt, i ? x->prop[i - 1] : x->r->tokens[n - 1], pos + i, &x->ver[i], NULL, err, errlen))
                return -1;
        while (j < k && x->prop[j] == x->ver[j])
            j++;
    }
    if (j == k && state_step(&x->dft, x->prop[k - 1], pos + k, &d, NULL, err, errlen))
        return -1; /* every proposal kept: the draft's cache needs the last one too */
    x->st->rounds++;
    x->st->proposed += k;
    x->st->accepted += j;
    x->st->forced += forced;
    int emit = 0;
    for (int i = 0; i < j && n < x->N; i++, emit++)
        x->r->tokens[n++] = x->prop[i];
    if (n < x->N) {
        x->r->tokens[n++] = x->ver[j];
        emit++;
    }
    double ms = (mb_now() - t0) * 1e3;
    for (int i = 0; i < emit; i++)
        x->r->step_ms[n - 1 - emit + i] = ms / emit;
    x->r->n_tokens = n;
    return n;
}

int mb_generate_speculative(const mb_gen_model *target, const mb_gen_model *draft, mb_backend *be_server,
                            mb_backend *be_device, const int64_t *prompt, int P, int N, const mb_gen_spec_opts *o,
                            mb_gen_result *r, mb_gen_spec_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    if (o->k < 1 || o->k > 64 || !(o->a >= 0 && o->a <= 1)) {
        snprintf(err, errlen, "speculative decoding: k=%d (1..64) and a=%g ([0, 1])", o->k, o->a);
        return -1;
    }
    if (draft->cfg->vocab != target->cfg->vocab) {
        snprintf(err, errlen, "draft %s and target %s have different vocabularies (%lld, %lld)", draft->cfg->name,
                 target->cfg->name, (long long)draft->cfg->vocab, (long long)target->cfg->vocab);
        return -1;
    }
    /* a round may run k positions past the last token kept */
    int64_t need = (int64_t)P + N - 1 + o->k;
    if (gen_args(target, prompt, P, N, err, errlen) || gen_args(draft, prompt, P, N, err, errlen))
        return -1;
    if (need > target->capacity || need > draft->capacity) {
        snprintf(err, errlen, "speculative decoding with k=%d needs caches of %lld positions (prompt + generated - 1 "
                 "+ k); they have %lld and %lld", o->k, (long long)need, (long long)target->capacity,
                 (long long)draft->capacity);
        return -1;
    }
    if (result_alloc(r, N, err, errlen))
        return -1;
    spec_run x = {{target, be_server, 0, NULL, NULL, NULL, 0, NULL}, {draft, be_device, 0, NULL, NULL, NULL, 0, NULL}, o, P, N, r, st, 0, NULL, NULL};
    x.m = o->a >= 1 ? o->k : o->a * (1 - pow(o->a, o->k)) / (1 - o->a);
    x.prop = calloc((size_t)o->k, sizeof(int64_t));
    x.ver = calloc((size_t)o->k + 1, sizeof(int64_t));
    double dms;
    int64_t dtok;
    int rc = -1, n = 1;
    if (!x.prop || !x.ver) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (state_prefill(&x.tgt, prompt, P, &r->tokens[0], &r->ttft_ms, err, errlen) ||
        state_prefill(&x.dft, prompt, P, &dtok, &dms, err, errlen))
        goto out;
    r->n_tokens = 1;
    while (n < N)
        if ((n = spec_round(&x, n, err, errlen)) < 0)
            goto out;
    summarize(r, N - 1);
    r->weight_bytes = mb_decoder_weight_bytes_per_step(target->decode);
    rc = 0;
out:
    state_free(&x.tgt);
    state_free(&x.dft);
    free(x.prop);
    free(x.ver);
    if (rc)
        mb_gen_result_free(r);
    return rc;
}
