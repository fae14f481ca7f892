/* A measured split generation (include/mecbed/gensession.h,
 * docs/generation.md "Measured split runs"): a run session's bring-up
 * (site speeds, time dilation, links, nodes, the runner), then the prefill
 * plan and the decode plan of a layer-range split, both with state
 * bindings that keep each layer's KV cache where the layer runs. */
#define _GNU_SOURCE
#include "mecbed/gensession.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/exec.h"
#include "mecbed/generate.h"
#include "mecbed/genplan.h"
#include "mecbed/jsontext.h"
#include "mecbed/platform.h"
#include "mecbed/timescale.h"
#include "session_priv.h"

/* The state key of a KV tensor: 2 L (+1 for values), from "layers.L.present.key"
 * (an output) or "past.L.value" (an input); -1 for anything else. */
static int kv_key(const char *name)
{
    int l, n = 0;
    const char *rest = NULL;
    if (sscanf(name, "layers.%d.present.%n", &l, &n) == 1 && n > 0)
        rest = name + n;
    else if (sscanf(name, "past.%d.%n", &l, &n) == 1 && n > 0)
        rest = name + n;
    if (!rest || l < 0)
        return -1;
    return !strcmp(rest, "key") ? 2 * l : !strcmp(rest, "value") ? 2 * l + 1 : -1;
}

/* A graph output or input op by its state key; -1 when none. */
static int kv_op(const mb_graph *g, int key, int input)
{
    for (int i = 0; i < g->n_nodes; i++)
        if ((g->nodes[i].type == MB_OP_INPUT) == input && kv_key(g->nodes[i].name) == key) {
            if (input)
                return i;
            for (int k = 0; k < g->n_outputs; k++)
                if (g->outputs[k] == i)
                    return i;
        }
    return -1;
}

/* full's steps into p (whose state bindings are set) without the sends
 * the bindings make needless: of a bound input (it is on its site), and of a
 * bound output from a site that keeps it (its part stays there). 0, or -1
 * with err. */
static int copy_unbound_steps(const mb_plan *full, mb_plan *p, char *err, size_t errlen)
{
    for (int i = 0; i < full->n_steps; i++) {
        const mb_plan_step *st = &full->steps[i];
        int bound = 0;
        for (int j = 0; j < p->n_state && st->kind == MB_STEP_SEND; j++)
            bound |= st->op == p->state[j].in_op || (st->op == p->state[j].out_op && st->site == p->state[j].site);
        if (bound)
            continue;
        if ((st->kind == MB_STEP_COMPUTE ? mb_plan_compute(p, st->op, st->site, st->region)
                                         : mb_plan_send(p, st->op, st->region, st->site, st->to)) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* The plan of a layer-range split (k layers on the device) of g with its
 * KV cache bound as state on the site that decodes each layer (layers
 * [0, k_state) on the device): mb_plan_assign's plan without the sends of
 * bound inputs, and of bound outputs kept where they are computed; a layer
 * computed on the server but decoded on the device (P/D-Device's prefill)
 * sends its prompt's keys and values to the device, which pads them to the
 * capacity (the present K/V) and binds them there.
 * Validated, and its steps' times evaluated (the modelled step timing runs
 * them). NULL with err. */
static mb_plan *gen_plan(const mb_graph *g, const mb_cost_model *c, const mb_topology *t, int L, int k, int k_state,
                         int device, int server, const char *model, char *err, size_t errlen)
{
    int *ls = malloc(sizeof(int) * (size_t)L), *site = malloc(sizeof(int) * (size_t)g->n_nodes);
    mb_plan *full = mb_plan_new("edgeshard", g, device), *p = mb_plan_new("edgeshard", g, device);
    if (!ls || !site || !full || !p) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int l = 0; l < L; l++)
        ls[l] = l < k ? device : server;
    if (mb_decoder_assign(g, L, ls, device, site) != L)
        goto fail;
    /* A layer computed on the server but decoded on the device (P/D-Device's
     * prefill): its present K/V are the prefill graph's pads of the prompt's
     * keys and values to the cache capacity. Padding on the device sends the
     * prompt's P positions instead of all C (what mb_gen_pd_predict counts). */
    for (int key = 0; key < 2 * L; key++) {
        int out = kv_op(g, key, 0);
        if (out >= 0 && key / 2 < k_state && ls[key / 2] != device && g->nodes[out].type == MB_OP_PAD)
            site[out] = device;
    }
    if (mb_plan_assign(full, g, site, err, errlen))
        goto fail;
    for (int key = 0; key < 2 * L; key++) {
        int out = kv_op(g, key, 0), in = kv_op(g, key, 1);
        if (out < 0) {
            snprintf(err, errlen, "%s: no present K/V output for layer %d", g->name, key / 2);
            goto fail;
        }
        mb_plan_state *b = &p->state[p->n_state++];
        *b = (mb_plan_state){.site = key / 2 < k_state ? device : server, .in_op = in, .out_op = out,
                             .key = (uint32_t)key};
    }
    if (copy_unbound_steps(full, p, err, errlen))
        goto fail;
    snprintf(p->model, sizeof p->model, "%s", model);
    if (k_state == k)
        snprintf(p->note, sizeof p->note, "layers [0, %d) on the device, [%d, %d) on the server", k, k, L);
    else
        snprintf(p->note, sizeof p->note, "layers [0, %d) on the device, [%d, %d) on the server; the KV cache of "
                 "layers [0, %d) to the device", k, k, L, k_state);
    if (mb_plan_validate(p, g, t, err, errlen) || mb_plan_evaluate(p, c, err, errlen))
        goto fail;
    free(ls);
    free(site);
    mb_plan_free(full);
    return p;
fail:
    free(ls);
    free(site);
    mb_plan_free(full);
    mb_plan_free(p);
    return NULL;
}

/* Galaxy's plan of g (mb_gen_galaxy_plan: each worker computes its heads'
 * and columns' regions) with each layer's KV cache partitioned over the
 * workers: every worker binds the K/V it computes (its heads) under the
 * layer's key, and the plan loses the sends of past K/V to the workers and
 * of present K/V to the device. Validated and evaluated. NULL with err. */
static mb_plan *galaxy_state_plan(const mb_graph *g, const mb_cost_model *c, const mb_topology *t,
                                  const mb_gen_tp *tp, int L, int device, const char *model, char *err,
                                  size_t errlen)
{
    mb_plan *full = mb_gen_galaxy_plan(g, t, tp, device, err, errlen), *p = full ? mb_plan_new("galaxy", g, device) : NULL;
    if (!p) {
        if (full)
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int key = 0; key < 2 * L; key++) {
        int out = kv_op(g, key, 0), in = kv_op(g, key, 1);
        if (out < 0) {
            snprintf(err, errlen, "%s: no present K/V output for layer %d", g->name, key / 2);
            goto fail;
        }
        for (int w = 0; w < tp->k; w++) {
            int computes = 0;
            for (int i = 0; i < full->n_steps && !computes; i++)
                computes = full->steps[i].kind == MB_STEP_COMPUTE && full->steps[i].op == out &&
                           full->steps[i].site == tp->sites[w];
            if (computes && p->n_state < MB_PLAN_MAX_STATE)
                p->state[p->n_state++] =
                    (mb_plan_state){.site = tp->sites[w], .in_op = in, .out_op = out, .key = (uint32_t)key};
        }
    }
    if (copy_unbound_steps(full, p, err, errlen))
        goto fail;
    snprintf(p->model, sizeof p->model, "%s", model);
    snprintf(p->note, sizeof p->note, "tensor parallel over %d edge node%s, each keeping its heads' KV cache", tp->k,
             tp->k == 1 ? "" : "s");
    if (mb_plan_validate(p, g, t, err, errlen) || mb_plan_evaluate(p, c, err, errlen))
        goto fail;
    mb_plan_free(full);
    return p;
fail:
    mb_plan_free(full);
    mb_plan_free(p);
    return NULL;
}

static mb_tensor *ids(int64_t v0, int n)
{
    int64_t d = n;
    mb_tensor *t = mb_tensor_new(1, &d);
    for (int i = 0; t && i < n; i++)
        t->data[i] = (float)(v0 + i);
    return t;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Device energy of one step (the runtime's model: compute and idle power
 * over the device's busy and waiting time, the radio from the step's
 * transfers on the timeline), in emulated time. */
static double step_energy(mb_session *s, const mb_timeline *tl, uint32_t frame, const mb_frame_report *fr)
{
    int dev = s->cfg.device;
    const mb_nodetype *nt = mb_cost_site_type(s->cfg.cost, dev);
    double lat_s = ss_emulated(s, fr->t_end - fr->t_start), busy_s = rs_device_busy_ms(tl, frame, dev) / 1e3;
    busy_s = ss_emulated(s, busy_s);
    double e = nt->compute_w * busy_s + nt->idle_w * (lat_s > busy_s ? lat_s - busy_s : 0);
    const mb_radio_model *rm = mb_radio_get((mb_radio_kind)mb_radio_from_name(nt->radio));
    if (!rm)
        return e * 1e3;
    mb_radio_burst b[512];
    rs_packets none = {0};
    int nb = rs_bursts_emulated(&none, tl, frame, dev, fr->t_start, fr->t_end, 0.002, s->k, b, 512);
    mb_radio_energy re;
    mb_radio_frame_energy(rm, b, nb, lat_s, 0, &re); /* back to back, as the cost model and run sessions */
    return e * 1e3 + re.total_mj;
}

/* Bring the sites up as a run session does, without a policy: the runner
 * starts on the prefill graph. */
static mb_session *gen_bring_up(const mb_gen_run_config *c, char *err, size_t errlen)
{
    mb_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = c->s;
    s->cfg.model = c->prefill_name;
    s->cfg.g = c->prefill;
    s->cfg.cost = c->c_prefill;
    s->cfg.profile = c->p_prefill;
    s->cfg.policy = "edgeshard";
    s->cfg.frames = 1;
    if (!s->cfg.backend)
        s->cfg.backend = "emu";
    if (!s->cfg.kernels)
        s->cfg.kernels = "cpu";
    if (!(s->cfg.timeout_s > 0))
        s->cfg.timeout_s = 60;
    s->saved_ns = -1;
    s->k = 1;
    for (int l = 0; l < MB_MAX_LINKS; l++)
        s->probed_bps[l] = NAN;
    mb_timeline_init(&s->tl);
    s->rec = calloc(1, sizeof *s->rec);
    char why[512] = "";
    for (int i = 0; i < c->s.topo->n_sites; i++)
        if (i != c->s.device && c->s.topo->sites[i].address[0]) {
            snprintf(err, errlen, "a measured generation runs on emulated links only (site %s has address=)",
                     c->s.topo->sites[i].name);
            goto fail;
        }
    if (!s->rec || ss_sites_plan_speed(s, err, errlen) || ss_net_prepare(s, err, errlen))
        goto fail;
    if (!(s->be = mb_backend_new(s->cfg.kernels, 1, why, sizeof why))) {
        snprintf(err, errlen, "kernels: %s", why);
        goto fail;
    }
    if (ss_bring_up(s, err, errlen))
        goto fail;
    s->net_epoch = s->net ? mb_net_epoch(s->net) : 0;
    return s;
fail:
    mb_session_free(s);
    return NULL;
}

/* One step through the runner: its token, emulated time, device bytes and energy. */
static int run_step(mb_session *s, uint32_t frame, mb_tensor *const *in, int64_t *tok, int n_tok, double *ms,
                    int64_t *up, int64_t *down, double *mj, char *err, size_t errlen)
{
    mb_tensor **out = NULL;
    mb_frame_report fr;
    mb_timeline tl;
    mb_timeline_init(&tl);
    int rc = mb_runner_frame(s->runner, frame, in, &out, &tl, &fr);
    if (rc || !out || !out[0]) {
        snprintf(err, errlen, "step %u: %s", frame, rc ? fr.error : "no token on the device");
        rc = -1;
    } else {
        for (int i = 0; i < n_tok && i < mb_tensor_numel(out[0]); i++)
            tok[i] = (int64_t)out[0]->data[i];
        *ms = ss_emulated(s, fr.t_end - fr.t_start) * 1e3;
        rs_device_bytes(&tl, frame, s->cfg.device, up, down);
        *mj = step_energy(s, &tl, frame, &fr);
    }
    if (out)
        for (int i = 0; i < s->cfg.g->n_outputs; i++)
            mb_tensor_free(out[i]);
    free(out);
    mb_timeline_free(&tl);
    return rc;
}

static void summarize(mb_gen_run_report *r)
{
    int n = r->n_tokens - 1;
    r->tpot_median_ms = r->tpot_p95_ms = r->tpot_mean_ms = NAN;
    r->tokens_per_s = NAN;
    if (n < 1)
        return;
    double *v = malloc(sizeof(double) * (size_t)n), sum = 0;
    if (!v)
        return;
    memcpy(v, r->step_ms, sizeof(double) * (size_t)n);
    qsort(v, (size_t)n, sizeof(double), cmp_d);
    for (int i = 0; i < n; i++)
        sum += v[i];
    r->tpot_median_ms = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    int k = (int)ceil(0.95 * n) - 1;
    r->tpot_p95_ms = v[k < 0 ? 0 : k];
    r->tpot_mean_ms = sum / n;
    r->tokens_per_s = 1000.0 / r->tpot_mean_ms;
    free(v);
}

/* Prefill, then the decode steps, through the runner. */
static int generate(mb_session *s, const mb_gen_run_config *c, const mb_plan *pp, const mb_plan *dp,
                    const int64_t *prompt, mb_gen_run_report *r, char *err, size_t errlen)
{
    int n_in = 0;
    for (int i = 0; i < c->decode->n_nodes; i++)
        n_in += c->decode->nodes[i].type == MB_OP_INPUT;
    mb_tensor **in = calloc((size_t)n_in + 2, sizeof *in);
    int64_t *up = calloc((size_t)c->N + 1, sizeof(int64_t)), *down = calloc((size_t)c->N + 1, sizeof(int64_t));
    double *mj = calloc((size_t)c->N + 1, sizeof(double));
    int rc = -1;
    if (!in || !up || !down || !mj || !(in[0] = ids(0, c->P)) || !(in[1] = ids(0, c->P))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < c->P; i++)
        in[0]->data[i] = (float)prompt[i];
    if (mb_runner_plan(s->runner, pp, err, errlen) ||
        run_step(s, 1, in, &r->tokens[0], 1, &r->ttft_ms, &r->prefill_up_bytes, &r->prefill_down_bytes,
                 &r->ttft_energy_mj, err, errlen))
        goto out;
    r->n_tokens = 1;
    s->cfg.g = c->decode;
    s->cfg.cost = c->c_decode;
    double t0 = mb_now();
    if (c->N > 1 && (mb_runner_set_graph(s->runner, c->decode, c->decode_name) ||
                     mb_runner_plan(s->runner, dp, err, errlen)))
        goto out;
    ss_info(s, "generation: the decode plan accepted in %.1f s (the nodes build its graph)", mb_now() - t0);
    for (int t = 1; t < c->N; t++) {
        mb_tensor_free(in[0]);
        mb_tensor_free(in[1]);
        in[0] = ids(r->tokens[t - 1], 1);
        in[1] = ids(c->P + t - 1, 1);
        if (!in[0] || !in[1]) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (run_step(s, (uint32_t)t + 1, in, &r->tokens[t], 1, &r->step_ms[t - 1], &up[t - 1], &down[t - 1],
                     &mj[t - 1], err, errlen))
            goto out;
        r->n_tokens = t + 1;
        if (s->cfg.stop && *s->cfg.stop) {
            snprintf(err, errlen, "interrupted");
            goto out;
        }
    }
    r->cache_bytes_device_held = mb_runner_state_bytes(s->runner);
    int n = c->N - 1;
    if (n > 0) {
        double e = 0;
        for (int i = 0; i < n; i++)
            e += mj[i];
        r->energy_mj_token = e / n;
        qsort(up, (size_t)n, sizeof(int64_t), cmp_i64);
        qsort(down, (size_t)n, sizeof(int64_t), cmp_i64);
        r->up_bytes_token = up[n / 2];
        r->down_bytes_token = down[n / 2];
    }
    rc = 0;
out:
    for (int i = 0; in && i < 2; i++)
        mb_tensor_free(in[i]);
    free(in);
    free(up);
    free(down);
    free(mj);
    return rc;
}

/* ---- speculative decoding (docs/generation.md, "Speculative decoding,
 * measured"): the draft on the device, the target on the edge ---- */

/* The draft's decode graph run in process on the device, its cache kept
 * here between steps. */
typedef struct spec_draft {
    const mb_graph *g;
    mb_backend *be;
    int n_cache;
    mb_tensor **cache;
} spec_draft;

static void draft_free(spec_draft *d)
{
    for (int i = 0; d->cache && i < d->n_cache; i++)
        mb_tensor_free(d->cache[i]);
    free(d->cache);
    mb_backend_free(d->be);
}

/* Zero caches of the draft's past inputs. 0, or -1 with err. */
static int draft_init(spec_draft *d, const mb_graph *g, const char *kernels, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->g = g;
    d->n_cache = g->n_outputs - 1;
    d->cache = calloc((size_t)d->n_cache, sizeof *d->cache);
    if (!d->cache || !(d->be = mb_backend_new(kernels, 1, err, errlen)))
        return d->cache ? -1 : (snprintf(err, errlen, "out of memory"), -1);
    int k = 0;
    for (int i = 0; i < g->n_nodes && k < d->n_cache; i++)
        if (g->nodes[i].type == MB_OP_INPUT && !strncmp(g->nodes[i].name, "past.", 5) &&
            !(d->cache[k++] = mb_tensor_new(g->nodes[i].a.shape_ndim, g->nodes[i].a.shape))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    return 0;
}

/* One draft step: token tok at position pos; its next token; the cache moves on. */
static int draft_step(spec_draft *d, int64_t tok, int64_t pos, int64_t *next, char *err, size_t errlen)
{
    int n_in = 2 + d->n_cache, rc = -1;
    mb_tensor **in = calloc((size_t)n_in, sizeof *in), **out = NULL;
    if (!in || !(in[0] = ids(tok, 1)) || !(in[1] = ids(pos, 1))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(in + 2, d->cache, sizeof(mb_tensor *) * (size_t)d->n_cache);
    if (mb_exec_run(d->g, d->be, in, &out, NULL, NULL, err, errlen))
        goto out;
    *next = (int64_t)out[0]->data[0];
    mb_tensor_free(out[0]);
    for (int k = 0; k < d->n_cache; k++) {
        mb_tensor_free(d->cache[k]);
        d->cache[k] = out[k + 1];
    }
    free(out);
    rc = 0;
out:
    if (in) {
        mb_tensor_free(in[0]);
        mb_tensor_free(in[1]);
    }
    free(in);
    return rc;
}

typedef struct spec_round {
    mb_session *s;
    const mb_gen_run_config *c;
    spec_draft *d;
    mb_gen_run_report *r;
    double m;             /* expected accepted proposals per round */
    double draft_ms, draft_mj, verify_ms, verify_mj; /* predicted: a draft step, the verification */
    double *pred_ms;      /* per token, predicted */
    double e_meas, e_pred; /* device energy of the decode, measured and predicted */
    uint32_t frame;
} spec_round;

/* One round from n tokens: k proposals drafted here (the first `forced` the
 * reference's: the acceptance pattern), verified by the target on the edge
 * in one step of k + 1 tokens through the runner. The new count, -1 on error. */
static int spec_round_run(spec_round *x, int n, char *err, size_t errlen)
{
    const mb_gen_run_config *c = x->c;
    mb_gen_run_report *r = x->r;
    int k = c->spec_k, R = r->spec_rounds;
    int forced = (int)(floor((R + 1) * x->m) - floor(R * x->m));
    forced = forced > k ? k : forced;
    forced = forced > c->N - n - 1 ? (c->N - n - 1 > 0 ? c->N - n - 1 : 0) : forced;
    int64_t pos = c->P + n - 1, cur = r->tokens[n - 1], prop[64], ver[65], dn;
    for (int i = 0; i < k; i++) {
        if (draft_step(x->d, cur, pos + i, &dn, err, errlen))
            return -1;
        prop[i] = i < forced ? r->ref_tokens[n + i] : dn;
        cur = prop[i];
    }
    mb_tensor *in[2] = {ids(pos, k + 1), ids(pos, k + 1)};
    int rc = -1, j = 0;
    double ms = 0, mj = 0;
    int64_t up = 0, down = 0;
    if (!in[0] || !in[1]) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    in[0]->data[0] = (float)r->tokens[n - 1];
    for (int i = 0; i < k; i++)
        in[0]->data[i + 1] = (float)prop[i];
    if (run_step(x->s, ++x->frame, in, ver, k + 1, &ms, &up, &down, &mj, err, errlen))
        goto out;
    while (j < k && prop[j] == ver[j])
        j++;
    int drafts = k;
    if (j == k) { /* every proposal kept: the draft's cache needs the last one too */
        if (draft_step(x->d, prop[k - 1], pos + k, &dn, err, errlen))
            goto out;
        drafts++;
    }
    r->spec_rounds++;
    r->spec_proposed += k;
    r->spec_accepted += j;
    r->spec_forced += forced;
    r->spec_up += up;
    r->spec_down += down;
    int emit = 0;
    for (int i = 0; i < j && n < c->N; i++, emit++)
        r->tokens[n++] = prop[i];
    if (n < c->N) {
        r->tokens[n++] = ver[j];
        emit++;
    }
    /* the draft's steps take the device type's modelled time (what
     * --emulate model charges every compute step); the verification is measured */
    double round_ms = drafts * x->draft_ms + ms, round_pred = drafts * x->draft_ms + x->verify_ms;
    x->e_meas += drafts * x->draft_mj + mj;
    x->e_pred += drafts * x->draft_mj + x->verify_mj;
    for (int i = 0; i < emit; i++) {
        r->step_ms[n - 2 - i] = round_ms / emit;
        x->pred_ms[n - 2 - i] = round_pred / emit;
    }
    r->n_tokens = n;
    rc = n;
out:
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    return rc;
}

/* Prefill on the edge (and the draft's, here, meanwhile), then rounds of
 * drafting here and verifying on the edge. */
static int generate_spec(mb_session *s, const mb_gen_run_config *c, const mb_plan *pp, const mb_plan *vp,
                         const int64_t *prompt, mb_gen_run_report *r, char *err, size_t errlen)
{
    spec_draft d;
    spec_round x = {.s = s, .c = c, .d = &d, .r = r, .frame = 1};
    int k = c->spec_k, rc = -1;
    double a = c->spec_a;
    x.m = a >= 1 ? k : a * (1 - pow(a, k)) / (1 - a);
    x.draft_ms = r->spec_draft_ms;
    x.draft_mj = r->spec_draft_mj;
    x.verify_ms = vp->pred.latency_ms;
    x.verify_mj = vp->pred.energy_mj;
    x.pred_ms = calloc((size_t)c->N, sizeof(double));
    mb_tensor *in[2] = {ids(0, c->P), ids(0, c->P)};
    int64_t up = 0, down = 0, dn;
    if (draft_init(&d, c->draft, s->cfg.kernels ? s->cfg.kernels : "cpu", err, errlen) || !x.pred_ms || !in[0] ||
        !in[1]) {
        if (!err[0])
            snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < c->P; i++)
        in[0]->data[i] = (float)prompt[i];
    if (mb_runner_plan(s->runner, pp, err, errlen) ||
        run_step(s, 1, in, &r->tokens[0], 1, &r->ttft_ms, &r->prefill_up_bytes, &r->prefill_down_bytes,
                 &r->ttft_energy_mj, err, errlen))
        goto out;
    for (int i = 0; i < c->P; i++) /* the draft reads the prompt while the edge prefills */
        if (draft_step(&d, prompt[i], i, &dn, err, errlen))
            goto out;
    r->n_tokens = 1;
    if (c->N > 1 && (mb_runner_set_graph(s->runner, c->verify, c->verify_name) ||
                     mb_runner_plan(s->runner, vp, err, errlen)))
        goto out;
    for (int n = 1; n < c->N;) {
        if ((n = spec_round_run(&x, n, err, errlen)) < 0)
            goto out;
        if (s->cfg.stop && *s->cfg.stop) {
            snprintf(err, errlen, "interrupted");
            goto out;
        }
    }
    if (c->N > 1) {
        double *v = x.pred_ms;
        qsort(v, (size_t)(c->N - 1), sizeof(double), cmp_d);
        int n = c->N - 1;
        r->predicted_tpot_ms = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += v[i];
        r->predicted_tokens_per_s = 1000.0 * n / sum;
        r->energy_mj_token = x.e_meas / n;
        r->predicted_energy_mj_token = x.e_pred / n;
        r->up_bytes_token = r->spec_up / n;
        r->down_bytes_token = r->spec_down / n;
        r->predicted_up_bytes = vp->pred.bytes_up * r->spec_rounds / n;
        r->predicted_down_bytes = vp->pred.bytes_down * r->spec_rounds / n;
    }
    (void)up;
    (void)down;
    rc = 0;
out:
    mb_tensor_free(in[0]);
    mb_tensor_free(in[1]);
    free(x.pred_ms);
    draft_free(&d);
    return rc;
}

/* The part of op's output a site computes in plan p (a fraction of the
 * whole: rows x columns of its regions). */
static double part_computed(const mb_graph *g, const mb_plan *p, int op, int site)
{
    mb_region f = mb_node_full_region(g, op);
    double whole = (double)mb_region_rows(f) * (double)mb_region_cols(f), part = 0;
    for (int k = 0; k < p->n_steps; k++)
        if (p->steps[k].kind == MB_STEP_COMPUTE && p->steps[k].op == op && p->steps[k].site == site)
            part += (double)mb_region_rows(p->steps[k].region) * (double)mb_region_cols(p->steps[k].region);
    return whole > 0 && part < whole ? part / whole : 1.0;
}

/* What each site keeps: the KV tensors its bindings hold (of a cache
 * partitioned over several sites, each one's part). */
static void cache_bytes(const mb_graph *g, const mb_plan *p, int device, mb_gen_run_report *r)
{
    for (int i = 0; i < p->n_state; i++) {
        int op = p->state[i].out_op;
        int64_t b = (int64_t)llround((double)g->nodes[op].out_bytes * part_computed(g, p, op, p->state[i].site));
        if (p->state[i].site == device)
            r->cache_bytes_device += b;
        else
            r->cache_bytes_server += b;
    }
}

/* The KV cache plan p sends to the sites that keep it: a bound present
 * output, or the input it pads (P/D-Device's prefill, gen_plan). */
static int64_t kv_sent(const mb_graph *g, const mb_plan *p)
{
    int64_t b = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const mb_plan_step *st = &p->steps[i];
        for (int j = 0; st->kind == MB_STEP_SEND && j < p->n_state; j++) {
            const mb_node *o = &g->nodes[p->state[j].out_op];
            if (st->to == p->state[j].site &&
                (st->op == p->state[j].out_op || (o->type == MB_OP_PAD && o->inputs[0] == st->op))) {
                b += g->nodes[st->op].out_bytes;
                break;
            }
        }
    }
    return b;
}

/* The prediction (genplan.h) for every cut, the chosen cut, the unsplit
 * local reference and the two plans. */
static int prepare(const mb_gen_run_config *c, const int64_t *prompt, mb_gen_run_report *r, mb_plan **pp,
                   mb_plan **dp, char *err, size_t errlen)
{
    int L = (int)c->dec->layers;
    mb_gen_split_pred *pred = calloc((size_t)L + 1, sizeof *pred);
    if (!pred) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->edgeshard_split = mb_gen_pipeline_plan(c->prefill, c->c_prefill, c->decode, c->c_decode, L, c->s.device,
                                              c->server, c->N, 0, pred, err, errlen);
    int rc = -1;
    if (r->edgeshard_split < 0)
        goto out;
    r->split = c->pd ? L : c->galaxy_edges || c->spec_k > 0 ? 0 : c->split >= 0 ? c->split : r->edgeshard_split;
    if (r->split > L) {
        snprintf(err, errlen, "--split %d: the model has %d layers", r->split, L);
        goto out;
    }
    const mb_gen_split_pred *ps = &pred[r->split];
    r->predicted_ttft_ms = ps->prefill.ms;
    r->predicted_tpot_ms = ps->decode.ms;
    r->predicted_tokens_per_s = 1000.0 / ps->decode.ms;
    r->predicted_up_bytes = ps->decode.up_bytes;
    r->predicted_down_bytes = ps->decode.down_bytes;
    char why[512] = "";
    mb_backend *be = mb_backend_new(c->s.kernels ? c->s.kernels : "cpu", 1, why, sizeof why);
    mb_gen_model m = {.cfg = c->dec, .capacity = MB_DECODER_ZOO_CAPACITY, .decode = c->decode};
    mb_gen_result ref;
    memset(&ref, 0, sizeof ref);
    if (!be) {
        snprintf(err, errlen, "kernels: %s", why);
        goto out;
    }
    if (mb_generate(&m, be, prompt, c->P, c->N, &ref, err, errlen)) {
        mb_backend_free(be);
        goto out;
    }
    mb_backend_free(be);
    memcpy(r->ref_tokens, ref.tokens, sizeof(int64_t) * (size_t)c->N);
    mb_gen_result_free(&ref);
    /* P/D-Device: the server prefills every layer, the device decodes every
     * layer; the prefill sends each layer's cache to the device */
    int k_prefill = c->pd ? 0 : r->split;
    mb_gen_tp tp;
    if (c->spec_k > 0) { /* the target on the edge (prefill, then verification steps), its cache there */
        *pp = gen_plan(c->prefill, c->c_prefill, c->s.topo, L, 0, 0, c->s.device, c->server, c->prefill_name, err,
                       errlen);
        *dp = *pp ? gen_plan(c->verify, c->c_verify, c->s.topo, L, 0, 0, c->s.device, c->server, c->verify_name,
                             err, errlen)
                  : NULL;
        int Ld = (int)c->draft_cfg->layers; /* a draft step on the device alone: its modelled time */
        mb_plan *ds = *dp ? gen_plan(c->draft, c->c_draft, c->s.topo, Ld, Ld, Ld, c->s.device, c->server,
                                     c->draft_cfg->name, err, errlen)
                          : NULL;
        if (!ds) {
            mb_plan_free(*dp);
            *dp = NULL;
            goto out;
        }
        r->spec_draft_ms = ds->pred.latency_ms;
        r->spec_draft_mj = ds->pred.energy_mj;
        mb_plan_free(ds);
    } else if (c->galaxy_edges) {
        if (mb_gen_galaxy_tp(c->c_decode, c->s.topo, c->dec, c->galaxy_edges > 0 ? c->galaxy_edges : 0, &tp, err,
                             errlen))
            goto out;
        r->galaxy_k = tp.k;
        *pp = galaxy_state_plan(c->prefill, c->c_prefill, c->s.topo, &tp, L, c->s.device, c->prefill_name, err,
                                errlen);
        *dp = *pp ? galaxy_state_plan(c->decode, c->c_decode, c->s.topo, &tp, L, c->s.device, c->decode_name, err,
                                      errlen)
                  : NULL;
    } else {
        *pp = gen_plan(c->prefill, c->c_prefill, c->s.topo, L, k_prefill, r->split, c->s.device, c->server,
                       c->prefill_name, err, errlen);
        *dp = *pp ? gen_plan(c->decode, c->c_decode, c->s.topo, L, r->split, r->split, c->s.device, c->server,
                             c->decode_name, err, errlen)
                  : NULL;
    }
    if (!*dp)
        goto out;
    r->plan_ttft_ms = (*pp)->pred.latency_ms;
    r->plan_tpot_ms = (*dp)->pred.latency_ms;
    if (c->pd || c->galaxy_edges || c->spec_k > 0) { /* no pipeline cut to take the prediction from: the plans' own */
        r->predicted_ttft_ms = r->plan_ttft_ms;
        r->predicted_tpot_ms = r->plan_tpot_ms;
        r->predicted_tokens_per_s = 1000.0 / r->plan_tpot_ms;
        r->predicted_up_bytes = (*dp)->pred.bytes_up;
        r->predicted_down_bytes = (*dp)->pred.bytes_down;
        r->predicted_kv_bytes = kv_sent(c->prefill, *pp);
    }
    r->predicted_energy_mj_token = (*dp)->pred.energy_mj;
    cache_bytes(c->spec_k > 0 ? c->verify : c->decode, *dp, c->s.device, r);
    rc = 0;
out:
    free(pred);
    return rc;
}

int mb_gen_run(const mb_gen_run_config *c, mb_gen_run_report *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (c->P < 1 || c->N < 1) {
        snprintf(err, errlen, "a generation needs --prompt-tokens >= 1 and --gen-tokens >= 1 (got %d and %d)", c->P,
                 c->N);
        return -1;
    }
    r->model = c->dec->name;
    r->pd = c->pd;
    r->galaxy_k = 0;
    r->spec_k = c->spec_k;
    r->spec_a = c->spec_a;
    r->draft_name = c->draft_cfg ? c->draft_cfg->name : NULL;
    r->P = c->P;
    r->N = c->N;
    r->layers = (int)c->dec->layers;
    r->tokens = calloc((size_t)c->N, sizeof(int64_t));
    r->ref_tokens = calloc((size_t)c->N, sizeof(int64_t));
    r->step_ms = calloc((size_t)c->N, sizeof(double));
    int64_t *prompt = mb_gen_prompt(c->dec->vocab, c->P, c->seed ? c->seed : 1);
    mb_plan *pp = NULL, *dp = NULL;
    mb_session *s = NULL;
    int rc = -1;
    if (!r->tokens || !r->ref_tokens || !r->step_ms || !prompt) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(r->device_type, sizeof r->device_type, "%s", mb_cost_site_type(c->c_decode, c->s.device)->name);
    snprintf(r->server_type, sizeof r->server_type, "%s", mb_cost_site_type(c->c_decode, c->server)->name);
    double t0 = mb_now();
    if (prepare(c, prompt, r, &pp, &dp, err, errlen))
        goto out;
    double t1 = mb_now();
    if (!(s = gen_bring_up(c, err, errlen)))
        goto out;
    r->tdf = s->k;
    ss_info(s, "generation: prediction, reference run and plans %.1f s, bring-up %.1f s (tdf %.2f)", t1 - t0,
            mb_now() - t1, s->k);
    t1 = mb_now();
    rc = c->spec_k > 0 ? generate_spec(s, c, pp, dp, prompt, r, err, errlen)
                       : generate(s, c, pp, dp, prompt, r, err, errlen);
    ss_info(s, "generation: %d steps in %.1f s", r->n_tokens, mb_now() - t1);
    ss_teardown(s);
    if (!rc) {
        summarize(r);
        r->output_match = !memcmp(r->tokens, r->ref_tokens, sizeof(int64_t) * (size_t)c->N);
    }
out:
    mb_session_free(s);
    mb_plan_free(pp);
    mb_plan_free(dp);
    free(prompt);
    if (rc)
        mb_gen_run_report_free(r);
    return rc;
}

void mb_gen_run_report_free(mb_gen_run_report *r)
{
    if (!r)
        return;
    free(r->tokens);
    free(r->ref_tokens);
    free(r->step_ms);
    memset(r, 0, sizeof *r);
}

static void json_num(FILE *f, const char *k, double v)
{
    if (isfinite(v))
        fprintf(f, ",\"%s\":%.6g", k, v);
    else
        fprintf(f, ",\"%s\":null", k);
}

static void json_ids(FILE *f, const char *k, const int64_t *v, int n)
{
    fprintf(f, ",\"%s\":[", k);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%lld", i ? "," : "", (long long)v[i]);
    fputc(']', f);
}

void mb_gen_run_write_json(const mb_gen_run_report *r, FILE *f)
{
    fprintf(f, "{\"mode\":\"generate\",\"policy\":\"%s\",\"model\":",
            r->pd ? "pd-device" : r->galaxy_k ? "galaxy" : r->spec_k ? "speculative" : "edgeshard");
    mb_json_print_string(f, r->model);
    fprintf(f, ",\"prompt_tokens\":%d,\"gen_tokens\":%d,\"layers\":%d,\"split\":%d,\"edgeshard_split\":%d", r->P,
            r->N, r->layers, r->split, r->edgeshard_split);
    fprintf(f, ",\"device_type\":\"%s\",\"server_type\":\"%s\"", r->device_type, r->server_type);
    if (r->galaxy_k)
        fprintf(f, ",\"edges\":%d", r->galaxy_k);
    if (r->spec_k)
        fprintf(f, ",\"speculative\":{\"draft\":\"%s\",\"k\":%d,\"a\":%g,\"rounds\":%d,\"proposed\":%d,"
                "\"accepted\":%d,\"forced\":%d,\"acceptance\":%.4f,\"tokens_per_round\":%.4f,"
                "\"draft_step_ms\":%.4f}",
                r->draft_name ? r->draft_name : "?", r->spec_k, r->spec_a, r->spec_rounds, r->spec_proposed,
                r->spec_accepted, r->spec_forced, r->spec_proposed ? (double)r->spec_accepted / r->spec_proposed : 0,
                r->spec_rounds ? (double)(r->n_tokens - 1) / r->spec_rounds : 0, r->spec_draft_ms);
    json_num(f, "tdf", r->tdf);
    fprintf(f, ",\"output_match\":%s", r->output_match ? "true" : "false");
    json_num(f, "ttft_ms", r->ttft_ms);
    json_num(f, "predicted_ttft_ms", r->predicted_ttft_ms);
    json_num(f, "tpot_ms", r->tpot_median_ms);
    json_num(f, "tpot_p95_ms", r->tpot_p95_ms);
    json_num(f, "tpot_mean_ms", r->tpot_mean_ms);
    json_num(f, "predicted_tpot_ms", r->predicted_tpot_ms);
    json_num(f, "tpot_rel_err", mb_rel_error(r->tpot_median_ms, r->predicted_tpot_ms));
    json_num(f, "tokens_per_s", r->tokens_per_s);
    json_num(f, "predicted_tokens_per_s", r->predicted_tokens_per_s);
    json_num(f, "plan_ttft_ms", r->plan_ttft_ms);
    json_num(f, "plan_tpot_ms", r->plan_tpot_ms);
    fprintf(f, ",\"bytes_up_per_token\":%lld,\"bytes_down_per_token\":%lld", (long long)r->up_bytes_token,
            (long long)r->down_bytes_token);
    fprintf(f, ",\"predicted_bytes_up_per_token\":%lld,\"predicted_bytes_down_per_token\":%lld",
            (long long)r->predicted_up_bytes, (long long)r->predicted_down_bytes);
    fprintf(f, ",\"prefill_bytes_up\":%lld,\"prefill_bytes_down\":%lld", (long long)r->prefill_up_bytes,
            (long long)r->prefill_down_bytes);
    if (r->pd)
        fprintf(f, ",\"predicted_kv_transfer_bytes\":%lld", (long long)r->predicted_kv_bytes);
    json_num(f, "energy_mj_per_token", r->energy_mj_token);
    json_num(f, "predicted_energy_mj_per_token", r->predicted_energy_mj_token);
    json_num(f, "ttft_energy_mj", r->ttft_energy_mj);
    fprintf(f, ",\"cache_bytes\":{\"device\":%lld,\"server\":%lld,\"device_held\":%lld}",
            (long long)r->cache_bytes_device, (long long)r->cache_bytes_server, (long long)r->cache_bytes_device_held);
    json_ids(f, "tokens", r->tokens, r->n_tokens);
    json_ids(f, "reference_tokens", r->ref_tokens, r->N);
    fprintf(f, ",\"step_ms\":[");
    for (int i = 0; i + 1 < r->n_tokens; i++)
        fprintf(f, "%s%.4f", i ? "," : "", r->step_ms[i]);
    fprintf(f, "]}\n");
}

void mb_gen_run_write_text(const mb_gen_run_report *r, FILE *f)
{
    if (r->spec_k)
        fprintf(f, "%s: prompt %d tokens, %d generated; speculative decoding: draft %s on the device (%s, %.2f ms a "
                "step, modelled), target on the server (%s); k=%d, a=%g: %d rounds, %d of %d proposals accepted "
                "(%.1f tokens a round); tdf %.2f\n", r->model, r->P, r->N, r->draft_name ? r->draft_name : "?",
                r->device_type, r->spec_draft_ms, r->server_type, r->spec_k, r->spec_a, r->spec_rounds,
                r->spec_accepted, r->spec_proposed, r->spec_rounds ? (double)(r->n_tokens - 1) / r->spec_rounds : 0,
                r->tdf);
    else if (r->galaxy_k)
        fprintf(f, "%s: prompt %d tokens, %d generated; Galaxy: tensor parallel over %d edge node%s (%s), each "
                "keeping its heads' KV cache; the device (%s) embeds and takes the token; tdf %.2f\n", r->model, r->P,
                r->N, r->galaxy_k, r->galaxy_k == 1 ? "" : "s", r->server_type, r->device_type, r->tdf);
    else if (r->pd)
        fprintf(f, "%s: prompt %d tokens, %d generated; P/D-Device: the server (%s) prefills, the KV cache "
                "(%.2f MB measured down, %.2f MB planned) crosses to the device (%s), which decodes; tdf %.2f\n",
                r->model, r->P, r->N, r->server_type, r->prefill_down_bytes / 1e6, r->predicted_kv_bytes / 1e6,
                r->device_type, r->tdf);
    else
        fprintf(f, "%s: prompt %d tokens, %d generated; layers [0, %d) on the device (%s), [%d, %d) on the server "
                "(%s)%s; tdf %.2f\n", r->model, r->P, r->N, r->split, r->device_type, r->split, r->layers,
                r->server_type, r->split == r->edgeshard_split ? " (EdgeShard's cut)" : "", r->tdf);
    fprintf(f, "  TTFT      %9.2f ms   predicted %9.2f ms\n", r->ttft_ms, r->predicted_ttft_ms);
    fprintf(f, "  TPOT      %9.2f ms   predicted %9.2f ms (%+.1f %%), p95 %.2f ms, mean %.2f ms\n", r->tpot_median_ms,
            r->predicted_tpot_ms, 100 * mb_rel_error(r->tpot_median_ms, r->predicted_tpot_ms), r->tpot_p95_ms,
            r->tpot_mean_ms);
    fprintf(f, "  tokens/s  %9.2f      predicted %9.2f\n", r->tokens_per_s, r->predicted_tokens_per_s);
    fprintf(f, "  per token: %lld B up, %lld B down (predicted %lld, %lld); device energy %.2f mJ (predicted %.2f)\n",
            (long long)r->up_bytes_token, (long long)r->down_bytes_token, (long long)r->predicted_up_bytes,
            (long long)r->predicted_down_bytes, r->energy_mj_token, r->predicted_energy_mj_token);
    fprintf(f, "  KV cache kept: device %.2f MB, server %.2f MB (%s)\n", r->cache_bytes_device / 1e6,
            r->cache_bytes_server / 1e6, r->pd ? "sent once, after the prefill" : "never sent");
    fprintf(f, "  output_match: %s (", r->output_match ? "yes" : "NO");
    for (int i = 0; i < r->n_tokens && i < 12; i++)
        fprintf(f, "%s%lld", i ? " " : "", (long long)r->tokens[i]);
    fprintf(f, "%s)\n", r->n_tokens > 12 ? " ..." : "");
}
