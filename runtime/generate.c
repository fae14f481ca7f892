/* Autoregressive generation on one site (include/mecbed/generate.h,
 * docs/generation.md): prefill graph, then decode graphs whose KV-cache
 * outputs become the next step's inputs. The prefill graph is built per
 * prompt length with no weights of its own: it borrows the decode graph's. */
#include "mecbed/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/exec.h"
#include "mecbed/plan.h"
#include "mecbed/platform.h"

mb_gen_model *mb_gen_model_new(const mb_decoder_cfg *cfg, int64_t capacity, uint64_t seed, char *err, size_t errlen)
{
    mb_gen_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    double t0 = mb_now();
    m->cfg = cfg;
    m->capacity = capacity;
    m->decode = mb_decoder_build(cfg, 1, capacity, 1, seed, 0, err, errlen);
    if (!m->decode) {
        free(m);
        return NULL;
    }
    m->build_s = mb_now() - t0;
    return m;
}

void mb_gen_model_free(mb_gen_model *m)
{
    if (!m)
        return;
    mb_graph_free(m->decode);
    free(m);
}

void mb_gen_result_free(mb_gen_result *r)
{
    if (!r)
        return;
    free(r->tokens);
    free(r->step_ms);
    memset(r, 0, sizeof *r);
}

int64_t *mb_gen_prompt(int64_t vocab, int P, uint64_t seed)
{
    int64_t *p = malloc(sizeof(int64_t) * (size_t)(P > 0 ? P : 1));
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 0x51ull;
    for (int i = 0; p && i < P; i++)
        p[i] = (int64_t)(mb_rng_uniform(&s) * (float)vocab) % vocab;
    return p;
}

static mb_tensor *ids_tensor(const int64_t *v, int n)
{
    int64_t d = n;
    mb_tensor *t = mb_tensor_new(1, &d);
    for (int i = 0; t && i < n; i++)
        t->data[i] = (float)v[i];
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(mb_gen_result *r)
{
    int n = r->n_tokens - 1;
    if (n < 1)
        return;
    double *s = malloc(sizeof(double) * (size_t)n), sum = 0;
    if (!s)
        return;
    memcpy(s, r->step_ms, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    for (int i = 0; i < n; i++)
        sum += s[i];
    r->tpot_median_ms = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    int k = (int)ceil(0.95 * n) - 1; /* nearest rank */
    r->tpot_p95_ms = s[k < 0 ? 0 : k];
    r->tpot_mean_ms = sum / n;
    r->tpot_min_ms = s[0];
    r->tokens_per_s = r->tpot_mean_ms > 0 ? 1000.0 / r->tpot_mean_ms : 0;
    free(s);
}

static void free_outs(mb_tensor **o, int n)
{
    for (int i = 0; o && i < n; i++)
        mb_tensor_free(o[i]);
    free(o);
}

static int check_args(const mb_gen_model *m, const int64_t *prompt, int P, int N, char *err, size_t errlen)
{
    if (P < 1 || N < 1 || (int64_t)P + N - 1 > m->capacity) {
        snprintf(err, errlen, "%s: a prompt of %d tokens and %d generated need a cache of %d positions; its capacity "
                 "is %lld", m->cfg->name, P, N, P + N - 1, (long long)m->capacity);
        return -1;
    }
    for (int i = 0; i < P; i++)
        if (prompt[i] < 0 || prompt[i] >= m->cfg->vocab) {
            snprintf(err, errlen, "prompt token %d is %lld, outside the vocabulary [0, %lld)", i,
                     (long long)prompt[i], (long long)m->cfg->vocab);
            return -1;
        }
    return 0;
}

/* The plan of a layer-range split of g, or NULL with err. */
static mb_plan *split_plan(const mb_gen_model *m, const mb_graph *g, const mb_gen_split *sp, char *err, size_t errlen)
{
    int *site = malloc(sizeof(int) * (size_t)g->n_nodes);
    mb_plan *p = site ? mb_plan_new("edgeshard", g, sp->device) : NULL;
    if (!p) {
        free(site);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int ok = mb_decoder_assign(g, (int)m->cfg->layers, sp->layer_site, sp->device, site) == (int)m->cfg->layers;
    if (!ok)
        snprintf(err, errlen, "%s: the split does not cover layers 0..%lld", g->name, (long long)m->cfg->layers - 1);
    if (!ok || mb_plan_assign(p, g, site, err, errlen) || mb_plan_validate(p, g, sp->t, err, errlen)) {
        mb_plan_free(p);
        p = NULL;
    }
    free(site);
    return p;
}

/* One step: the whole graph here, or the plan across sites. */
static int run_step(const mb_graph *g, const mb_plan *plan, const mb_gen_split *sp, mb_backend *be, mb_tensor **in,
                    mb_tensor ***outs, char *err, size_t errlen)
{
    if (plan)
        return mb_plan_execute(plan, g, sp->t, be, in, outs, err, errlen);
    return mb_exec_run(g, be, in, outs, NULL, NULL, err, errlen);
}

/* The prefill: the first token and the cache (outs[1..]). */
static int prefill(const mb_gen_model *m, mb_backend *be, const mb_gen_split *sp, const int64_t *prompt, int P,
                   mb_tensor ***outs, double *ms, char *err, size_t errlen)
{
    mb_plan *plan = NULL;
    mb_graph *pg = mb_decoder_build(m->cfg, P, m->capacity, 0, 0, 1, err, errlen);
    if (!pg)
        return -1;
    int rc = -1;
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)P);
    mb_tensor *in[2] = {ids_tensor(prompt, P), NULL};
    for (int i = 0; pos && i < P; i++)
        pos[i] = i;
    in[1] = pos ? ids_tensor(pos, P) : NULL;
    if (!in[0] || !in[1]) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (mb_decoder_share_weights(pg, m->decode, err, errlen) < 0)
        goto out;
    if (sp && !(plan = split_plan(m, pg, sp, err, errlen)))
        goto out;
    double t0 = mb_now();
    rc = run_step(pg, plan, sp, be, in, outs, err, errlen);
    *ms = (mb_now() - t0) * 1e3;
out:
    mb_plan_free(plan);
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    free(pos);
    mb_graph_free(pg);
    return rc;
}

static int generate(const mb_gen_model *m, mb_backend *be, const mb_gen_split *sp, const int64_t *prompt, int P,
                    int N, mb_gen_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (check_args(m, prompt, P, N, err, errlen))
        return -1;
    mb_plan *plan = NULL;
    const mb_graph *dg = m->decode;
    int n_out = dg->n_outputs, n_in = 2 + (n_out - 1);
    r->tokens = calloc((size_t)N, sizeof(int64_t));
    r->step_ms = calloc((size_t)N, sizeof(double));
    mb_tensor **in = calloc((size_t)n_in, sizeof *in), **outs = NULL;
    if (!r->tokens || !r->step_ms || !in) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    r->weight_bytes = mb_decoder_weight_bytes_per_step(dg);
    for (int k = 1; k < n_out; k++)
        r->kv_bytes += dg->nodes[dg->outputs[k]].out_bytes;
    if (sp && !(plan = split_plan(m, dg, sp, err, errlen)))
        goto fail;
    if (prefill(m, be, sp, prompt, P, &outs, &r->ttft_ms, err, errlen))
        goto fail;
    r->tokens[0] = (int64_t)outs[0]->data[0];
    r->n_tokens = 1;
    for (int step = 1; step < N; step++) {
        int64_t tok = r->tokens[step - 1], pos = P + step - 1;
        mb_tensor_free(outs[0]);
        in[0] = ids_tensor(&tok, 1);
        in[1] = ids_tensor(&pos, 1);
        memcpy(in + 2, outs + 1, sizeof(mb_tensor *) * (size_t)(n_out - 1)); /* present -> past */
        free(outs);
        outs = NULL;
        if (!in[0] || !in[1]) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        double t0 = mb_now();
        int rc = run_step(dg, plan, sp, be, in, &outs, err, errlen);
        r->step_ms[step - 1] = (mb_now() - t0) * 1e3;
        for (int k = 0; k < n_in; k++) {
            mb_exec_release(in[k]);
            in[k] = NULL;
        }
        if (rc)
            goto fail;
        r->tokens[step] = (int64_t)outs[0]->data[0];
        r->n_tokens = step + 1;
    }
    free_outs(outs, n_out);
    free(in);
    mb_plan_free(plan);
    summarize(r);
    return 0;
fail:
    mb_plan_free(plan);
    free_outs(outs, n_out);
    for (int k = 0; in && k < n_in; k++)
        mb_tensor_free(in[k]);
    free(in);
    mb_gen_result_free(r);
    return -1;
}

int mb_generate(const mb_gen_model *m, mb_backend *be, const int64_t *prompt, int P, int N, mb_gen_result *r,
                char *err, size_t errlen)
{
    return generate(m, be, NULL, prompt, P, N, r, err, errlen);
}

int mb_generate_split(const mb_gen_model *m, mb_backend *be, const mb_gen_split *split, const int64_t *prompt, int P,
                      int N, mb_gen_result *r, char *err, size_t errlen)
{
    return generate(m, be, split, prompt, P, N, r, err, errlen);
}

/* Four independent vector accumulators: the compiler's SIMD loads, so the
 * loop is bound by memory, not by the adds. */
typedef uint64_t mb_v4u64 __attribute__((vector_size(32)));

double mb_mem_read_bandwidth(size_t bytes, int reps)
{
    size_t n = bytes / sizeof(mb_v4u64);
    mb_v4u64 *buf = n >= 16 ? aligned_alloc(64, n * sizeof(mb_v4u64)) : NULL;
    if (!buf)
        return -1;
    uint64_t *w = (uint64_t *)buf;
    for (size_t i = 0; i < n * 4; i++)
        w[i] = i;
    double best = 0;
    volatile uint64_t sink = 0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        mb_v4u64 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        double t0 = mb_now();
        for (size_t i = 0; i + 4 <= n; i += 4) {
            a0 += buf[i];
            a1 += buf[i + 1];
            a2 += buf[i + 2];
            a3 += buf[i + 3];
        }
        double dt = mb_now() - t0;
        a0 += a1 + a2 + a3;
        sink += a0[0] + a0[1] + a0[2] + a0[3];
        double gbs = dt > 0 ? (double)(n * sizeof(mb_v4u64)) / dt / 1e9 : 0;
        if (gbs > best)
            best = gbs;
    }
    (void)sink;
    free(buf);
    return best;
}
