/* The `headpar` policy: Galaxy-style tensor parallelism of transformers
 * across K edge nodes (Ye et al., "Galaxy: A Resource-Efficient
 * Collaborative Edge AI System for In-situ Transformer Inference", INFOCOM
 * 2024), expressed in the common plan form: every split is a region
 * (rows x columns along mb_region_axes) of an op's output, and every
 * exchange is a SEND of a region, so the validator, --verify, the cost
 * model and the runtime treat it like the tile and oplevel plans.
 *
 *  - Attention (head parallel): each worker computes its group of heads,
 *    from the Q/K/V projections (columns [h0*d, h1*d) of the [T, D] Gemm
 *    outputs) through scores, softmax and context ([H, T, *]: rows
 *    [h0, h1)) to the merged [T, D] context (the same columns). Attention's
 *    quadratic part (the [heads, T, T] scores) never leaves its worker.
 *  - Everything else that is local along tokens (projections after the
 *    heads, residual adds, LayerNorms, the MLP; Galaxy's sequence-parallel
 *    "connective" blocks) is split by token rows [r0, r1).
 *  - mlp=hidden splits the MLP's hidden dimension instead (fc1 and its
 *    activation by columns: ops of width != the residual width), the
 *    second MLP layer by token rows.
 *  - Synchronisation: where a worker needs rows or heads another worker
 *    made, it receives exactly those regions over the backbone (the
 *    all-gather of the block input before Q/K/V, the all-to-all of the
 *    merged heads before the projection; with mlp=hidden also the
 *    all-gather before fc1 and the all-to-all of the hidden activations).
 *    Galaxy's all-reduce of partial sums is replaced by these exact
 *    exchanges (same bytes order, no change in floating-point summation:
 *    the split result is bit-exact where the kernels are).
 *  - Ops that are not local (patch embedding reshape, class-token concat,
 *    slices, embedding gathers, the head) run whole on the leader (the
 *    first edge node); the device sends the input there and receives the
 *    output.
 *
 * Head groups, token rows and hidden columns are apportioned by worker
 * speed. The policy builds a plan for every k = 1..K workers (and each MLP
 * mode unless mlp= fixes it) and the device alone (k = 0), scores each with
 * the host's schedule simulation and energy model, and keeps the best under
 * the objective. A model without multi-head attention (a CNN) has nothing
 * to split by heads: the best of the device alone and the model whole on
 * the first edge node, said so in the note (so `compare` and sweeps over
 * every policy plan every model).
 * Options: k=N (at most N edge nodes), exact_k=1 (exactly that many),
 * mlp=auto|tokens|hidden. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "mecbed/regionset.h"
#include "tile.h"

#define HP_MAX_W MB_TILE_MAX_EDGE

enum { CLS_WHOLE = 0, CLS_HEADS, CLS_TOKENS, CLS_HIDDEN };

typedef struct hp_model {
    int64_t H, T, D, dh; /* heads, tokens, residual width, head width */
    int n_attn;          /* attention blocks found (Softmax over [H, T, T]) */
    char *cls;           /* [n] CLS_* before the MLP mode is applied */
    int *hidden;         /* [n] 1: a [T, F] op with F != D (MLP hidden) */
} hp_model;

typedef struct hp_build {
    const mb_policy_input *in;
    const hp_model *m;
    int kk, workers[HP_MAX_W], mlp_hidden;
    int64_t head0[HP_MAX_W + 1], row0[HP_MAX_W + 1];
    mb_regionset *held;  /* [n * n_sites] */
    mb_regionset *made;  /* [n]: pieces computed (one region per site at most) */
    int *made_site;      /* [n * HP_MAX_W] site of each piece, in regionset order */
    int64_t sync_bytes;  /* worker <-> worker */
} hp_build;

static int head_aligned(const hp_model *m, const mb_node *n)
{
    if (n->out_ndim == 3)
        return n->out_dims[0] == m->H || (n->out_dims[0] == m->T && n->out_dims[1] == m->H);
    return 0;
}

static int weights_linear(const mb_node *n)
{
    return (n->type == MB_OP_GEMM || n->type == MB_OP_MATMUL) && n->n_inputs == 1 && n->out_ndim == 2;
}

/* Mark the head-aligned producers of op s's inputs, back to the Q/K/V
 * projections ([T, D] linear layers). */
static void mark_back(const mb_graph *g, hp_model *m, int s, int *stack)
{
    int sp = 0;
    for (int k = 0; k < g->nodes[s].n_inputs; k++)
        stack[sp++] = g->nodes[s].inputs[k];
    while (sp) {
        int u = stack[--sp];
        const mb_node *n = &g->nodes[u];
        if (m->cls[u] == CLS_HEADS || !n->local)
            continue;
        if (weights_linear(n) && n->out_dims[0] == m->T && n->out_dims[1] == m->D) {
            m->cls[u] = CLS_HEADS; /* Q, K or V */
            continue;
        }
        if (!head_aligned(m, n))
            continue;
        m->cls[u] = CLS_HEADS;
        for (int k = 0; k < n->n_inputs; k++)
            stack[sp++] = n->inputs[k];
    }
}

/* Mark the ops of the attention around Softmax s: back to the projections,
 * forward (with the other operands, V) to the merge back into [T, D]. */
static void mark_attention(const mb_graph *g, hp_model *m, int s, int *stack)
{
    m->cls[s] = CLS_HEADS;
    mark_back(g, m, s, stack);
    int cons[64], u = s;
    for (int guard = 0; guard < 16; guard++) {
        int nc = mb_graph_consumers(g, u, cons, 64);
        if (nc != 1)
            return;
        u = cons[0];
        const mb_node *n = &g->nodes[u];
        if (!n->local)
            return;
        if (n->out_ndim == 2 && n->out_dims[0] == m->T && n->out_dims[1] == m->D) {
            m->cls[u] = CLS_HEADS; /* heads merged back into [T, D] */
            return;
        }
        if (!head_aligned(m, n))
            return;
        m->cls[u] = CLS_HEADS;
        mark_back(g, m, u, stack);
    }
}

static void model_free(hp_model *m)
{
    free(m->cls);
    free(m->hidden);
}

/* 0: attention found; 1: none (m->H == 0, every op CLS_WHOLE); -1: error. */
static int model_make(const mb_graph *g, hp_model *m, char *err, size_t errlen)
{
    int n = g->n_nodes;
    memset(m, 0, sizeof *m);
    for (int v = 0; v < n && !m->H; v++) {
        const mb_node *s = &g->nodes[v];
        if (s->type == MB_OP_SOFTMAX && s->out_ndim == 3 && s->out_dims[1] == s->out_dims[2] && s->local) {
            m->H = s->out_dims[0];
            m->T = s->out_dims[1];
        }
    }
    /* the residual width: the Q projection's, a [T, D] linear layer feeding attention */
    for (int v = 0; v < n && m->H && !m->D; v++) {
        const mb_node *x = &g->nodes[v];
        if (weights_linear(x) && x->out_dims[0] == m->T && x->out_dims[1] % m->H == 0)
            m->D = x->out_dims[1];
    }
    size_t nn = n > 0 ? (size_t)n : 1;
    m->cls = calloc(nn, 1);
    m->hidden = calloc(nn, sizeof(int));
    int *stack = m->H && m->D ? malloc(sizeof(int) * nn * MB_MAX_INPUTS) : NULL;
    if (!m->cls || !m->hidden || (m->H && m->D && !stack)) {
        free(stack);
        model_free(m);
        snprintf(err, errlen, "headpar: out of memory");
        return -1;
    }
    if (!m->H || !m->D) {
        m->H = m->T = m->D = 0; /* nothing to split by heads: every op whole */
        return 1;
    }
    m->dh = m->D / m->H;
    for (int v = 0; v < n; v++) {
        const mb_node *s = &g->nodes[v];
        if (s->type == MB_OP_SOFTMAX && s->out_ndim == 3 && s->out_dims[0] == m->H && s->out_dims[1] == m->T &&
            s->out_dims[2] == m->T && s->local) {
            mark_attention(g, m, v, stack);
            m->n_attn++;
        }
    }
    free(stack);
    for (int v = 0; v < n; v++) {
        const mb_node *x = &g->nodes[v];
        if (mb_split_is_free(g, v) || m->cls[v] == CLS_HEADS)
            continue;
        if (x->local && x->out_ndim == 2 && x->out_dims[0] == m->T) {
            m->cls[v] = CLS_TOKENS;
            m->hidden[v] = x->out_dims[1] != m->D;
        }
    }
    return 0;
}

/* The region worker w computes of op v (empty: none). */
static mb_region piece(const hp_build *b, int v, int w)
{
    const mb_graph *g = b->in->g;
    const mb_node *x = &g->nodes[v];
    mb_region full = mb_node_full_region(g, v), r = full;
    int c = b->m->cls[v];
    if (c == CLS_TOKENS && b->mlp_hidden && b->m->hidden[v])
        c = CLS_HIDDEN;
    if (b->kk == 1 || c == CLS_WHOLE)
        return w == 0 ? full : (mb_region){0, 0, 0, 0};
    const hp_model *m = b->m;
    int64_t h0 = b->head0[w], h1 = b->head0[w + 1];
    switch (c) {
    case CLS_HEADS:
        if (x->out_ndim == 2) {
            r.w0 = h0 * m->dh;
            r.w1 = h1 * m->dh;
        } else if (x->out_dims[0] == m->H) {
            r.h0 = h0;
            r.h1 = h1;
        } else {
            r.w0 = h0;
            r.w1 = h1;
        }
        return r;
    case CLS_HIDDEN: {
        int64_t F = x->out_dims[1];
        r.w0 = F * h0 / m->H; /* the hidden units in proportion to the head groups */
        r.w1 = F * h1 / m->H;
        return r;
    }
    default:
        r.h0 = b->row0[w];
        r.h1 = b->row0[w + 1];
        return r;
    }
}

static mb_regionset *held(hp_build *b, int v, int site)
{
    return &b->held[(size_t)v * (size_t)b->in->host->topo_n_sites(b->in->topo) + site];
}

/* Make region need of op u available on site: receive the parts of it that
 * the sites which computed them hold. */
static int ensure(hp_build *b, mb_plan *out, int u, mb_region need, int site)
{
    const mb_graph *g = b->in->g;
    const mb_host *h = b->in->host;
    if (mb_split_is_const(g, u) || mb_region_empty(need) || mb_regionset_covers(held(b, u, site), need))
        return 0;
    const mb_regionset *pieces = &b->made[u];
    for (int i = 0; i < pieces->n; i++) {
        int from = b->made_site[(size_t)u * HP_MAX_W + i];
        mb_region x = mb_region_intersect(pieces->r[i], need);
        if (from == site || mb_region_empty(x) || mb_regionset_covers(held(b, u, site), x))
            continue;
        if (h->plan_send(out, u, x, from, site) < 0 || mb_regionset_add(held(b, u, site), x))
            return -1;
        int fw = 0, tw = 0;
        for (int w = 0; w < b->kk; w++) {
            fw |= b->workers[w] == from;
            tw |= b->workers[w] == site;
        }
        if (fw && tw)
            b->sync_bytes += mb_split_region_bytes(g, u, x);
    }
    return mb_regionset_covers(held(b, u, site), need) ? 0 : -1;
}

static int record(hp_build *b, int v, int site, mb_region r)
{
    int i = b->made[v].n;
    if (i >= HP_MAX_W || mb_regionset_add(&b->made[v], r) || mb_regionset_add(held(b, v, site), r))
        return -1;
    b->made_site[(size_t)v * HP_MAX_W + i] = site;
    return 0;
}

static int build_steps(hp_build *b, mb_plan *out)
{
    const mb_graph *g = b->in->g;
    const mb_host *h = b->in->host;
    int n = g->n_nodes, dev = b->in->device;
    for (int v = 0; v < n; v++)
        if (g->nodes[v].type == MB_OP_INPUT && record(b, v, dev, mb_node_full_region(g, v)))
            return -1;
    for (int v = 0; v < n; v++) {
        if (mb_split_is_free(g, v))
            continue;
        for (int w = 0; w < b->kk; w++) {
            mb_region r = piece(b, v, w);
            if (mb_region_empty(r))
                continue;
            int site = b->workers[w];
            for (int k = 0; k < g->nodes[v].n_inputs; k++)
                if (ensure(b, out, g->nodes[v].inputs[k], mb_node_input_region(g, v, k, r), site))
                    return -1;
            if (h->plan_compute(out, v, site, r) < 0 || record(b, v, site, r))
                return -1;
        }
    }
    for (int o = 0; o < g->n_outputs; o++)
        if (ensure(b, out, g->outputs[o], mb_node_full_region(g, g->outputs[o]), dev))
            return -1;
    return 0;
}

/* Apportion heads and token rows to the kk workers by speed. */
static void apportion(hp_build *b)
{
    const mb_policy_input *in = b->in;
    double wgt[HP_MAX_W];
    int64_t part[HP_MAX_W];
    for (int w = 0; w < b->kk; w++) {
        double ms = 0;
        for (int v = 0; v < in->g->n_nodes; v++)
            if (!mb_split_is_free(in->g, v))
                ms += in->host->op_ms(in->cost, b->workers[w], v);
        wgt[w] = ms > 0 ? 1.0 / ms : 1.0;
    }
    mb_tile_apportion(b->m->H, wgt, b->kk, part);
    b->head0[0] = 0;
    for (int w = 0; w < b->kk; w++)
        b->head0[w + 1] = b->head0[w] + part[w];
    mb_tile_apportion(b->m->T, wgt, b->kk, part);
    b->row0[0] = 0;
    for (int w = 0; w < b->kk; w++)
        b->row0[w + 1] = b->row0[w] + part[w];
}

/* One candidate: kk workers, MLP mode; built into out and evaluated. */
static int candidate(const mb_policy_input *in, const hp_model *m, const int *workers, int kk, int mlp_hidden,
                     mb_plan *out, hp_build *res, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    int n = in->g->n_nodes, ns = h->topo_n_sites(in->topo);
    hp_build b = {.in = in, .m = m, .kk = kk, .mlp_hidden = mlp_hidden};
    memcpy(b.workers, workers, sizeof(int) * (size_t)kk);
    b.held = calloc((size_t)n * (size_t)ns, sizeof(mb_regionset));
    b.made = calloc((size_t)n, sizeof(mb_regionset));
    b.made_site = calloc((size_t)n * HP_MAX_W, sizeof(int));
    int rc = -1;
    h->plan_clear(out);
    if (b.held && b.made && b.made_site) {
        if (kk > 1)
            apportion(&b);
        if (build_steps(&b, out))
            snprintf(err, errlen, "headpar: cannot build the plan for %d edge nodes (out of memory, or a region "
                     "no site computed)", kk);
        else
            rc = h->plan_evaluate(out, in->cost, err, errlen);
    } else {
        snprintf(err, errlen, "headpar: out of memory");
    }
    for (size_t i = 0; b.held && i < (size_t)n * (size_t)ns; i++)
        mb_regionset_free(&b.held[i]);
    for (int i = 0; b.made && i < n; i++)
        mb_regionset_free(&b.made[i]);
    free(b.held);
    free(b.made);
    free(b.made_site);
    b.held = b.made = NULL;
    b.made_site = NULL;
    *res = b;
    return rc;
}

static double score(const mb_policy_input *in, const mb_plan *p)
{
    return in->objective == MB_OBJ_ENERGY ? p->pred.energy_mj : p->pred.latency_ms;
}

/* Metrics of the chosen plan: the split, its synchronisation bytes, and
 * the cost model's terms (per-token activation bytes, attention's
 * quadratic share of the work). */
static void report(const mb_policy_input *in, const hp_model *m, const hp_build *b, mb_plan *out)
{
    const mb_host *h = in->host;
    const mb_graph *g = in->g;
    double quad = 0, all = 0;
    for (int v = 0; v < g->n_nodes; v++) {
        if (mb_split_is_free(g, v))
            continue;
        double ms = h->op_ms(in->cost, b->kk ? b->workers[0] : in->device, v);
        all += ms;
        const mb_node *x = &g->nodes[v];
        int tt = x->out_ndim == 3 && x->out_dims[1] == m->T && x->out_dims[2] == m->T;
        int uses_tt = 0; /* the context MatMul reads the [H, T, T] probabilities */
        for (int k = 0; k < x->n_inputs; k++) {
            const mb_node *s = &g->nodes[x->inputs[k]];
            uses_tt |= s->out_ndim == 3 && s->out_dims[1] == m->T && s->out_dims[2] == m->T;
        }
        if (tt || (uses_tt && m->cls[v] == CLS_HEADS))
            quad += ms;
    }
    h->plan_metric_set(out, "k_edges", b->kk);
    h->plan_metric_set(out, "heads", (double)m->H);
    h->plan_metric_set(out, "tokens", (double)m->T);
    h->plan_metric_set(out, "attention_blocks", m->n_attn);
    h->plan_metric_set(out, "mlp_hidden", b->mlp_hidden);
    h->plan_metric_set(out, "token_bytes", (double)(m->D * 4));
    h->plan_metric_set(out, "scores_bytes", (double)(m->H * m->T * m->T * 4));
    h->plan_metric_set(out, "attn_quadratic_frac", all > 0 ? quad / all : 0);
    h->plan_metric_set(out, "sync_bytes", (double)b->sync_bytes);
    h->plan_metric_set(out, "sync_bytes_per_block", m->n_attn ? (double)b->sync_bytes / m->n_attn : 0);
    char note[256];
    if (!m->H)
        snprintf(note, sizeof note, "no multi-head attention in %s: nothing to split by heads; %s", g->name,
                 b->kk ? "the model whole on the first edge node" : "the model on the device");
    else if (!b->kk)
        snprintf(note, sizeof note, "the device alone beats %lld heads over the edge nodes", (long long)m->H);
    else
        snprintf(note, sizeof note, "%d edge node%s: %lld heads and %lld tokens split%s, %d attention blocks, "
                 "%.2f MB exchanged between edges",
                 b->kk, b->kk == 1 ? " (no split)" : "s", (long long)m->H, (long long)m->T,
                 b->mlp_hidden ? ", MLP by hidden units" : ", MLP by tokens", m->n_attn, b->sync_bytes / 1e6);
    h->plan_set_note(out, note);
}

/* The device alone (k = 0): the baseline every k is compared with. */
static int local_candidate(const mb_policy_input *in, mb_plan *p, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    int n = in->g->n_nodes;
    int *site = malloc(sizeof(int) * (size_t)n);
    if (!site) {
        snprintf(err, errlen, "headpar: out of memory");
        return -1;
    }
    for (int v = 0; v < n; v++)
        site[v] = in->device;
    h->plan_clear(p);
    int rc = h->plan_assign(p, in->g, site, err, errlen);
    free(site);
    return rc ? -1 : h->plan_evaluate(p, in->cost, err, errlen);
}

static int parse_opts(const mb_policy_input *in, int *k_max, int *exact, int *modes, int *n_modes, char *err,
                      size_t errlen)
{
    const mb_host *h = in->host;
    *k_max = (int)h->opt_double(in->options, "k", HP_MAX_W);
    *exact = h->opt_double(in->options, "exact_k", 0) != 0;
    char mbuf[16];
    const char *mlp = h->opt_string(in->options, "mlp", "auto", mbuf, sizeof mbuf);
    modes[0] = 0;
    modes[1] = 1;
    *n_modes = 2;
    if (!strcmp(mlp, "tokens"))
        *n_modes = 1;
    else if (!strcmp(mlp, "hidden"))
        modes[0] = 1, *n_modes = 1;
    else if (strcmp(mlp, "auto")) {
        snprintf(err, errlen, "headpar: option mlp is '%s', expected auto, tokens or hidden", mlp);
        return -1;
    }
    if (*k_max < 1) {
        snprintf(err, errlen, "headpar: option k must be >= 1");
        return -1;
    }
    return 0;
}

static int headpar_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    const mb_host *h = in->host;
    int k_max, exact, modes[2], n_modes, workers[HP_MAX_W], K = 0;
    if (parse_opts(in, &k_max, &exact, modes, &n_modes, err, errlen))
        return -1;
    for (int s = 0; s < h->topo_n_sites(in->topo) && K < k_max && K < HP_MAX_W; s++)
        if (h->site_role(in->topo, s) == MB_SITE_EDGE)
            workers[K++] = s;
    hp_model m;
    int found = model_make(in->g, &m, err, errlen);
    if (found < 0)
        return -1;
    /* k edge nodes: 1..min(K, heads, tokens) with attention, 1 without (the model whole on the first) */
    int kmax = found ? (K ? 1 : 0) : (K < m.H ? K : (int)m.H);
    if (exact && (found || !K)) {
        model_free(&m);
        snprintf(err, errlen, "headpar: exact_k: %s", found ? "the model has no multi-head attention to split"
                                                            : "the topology has no edge node");
        return -1;
    }
    mb_plan *trial = h->plan_new("headpar", in->g, in->device);
    double best = INFINITY;
    hp_build bb = {.kk = 0}, tb;
    int rc = trial ? 0 : -1;
    if (!rc && !exact) { /* k = 0: the device alone */
        rc = local_candidate(in, out, err, errlen);
        best = rc ? INFINITY : score(in, out);
    }
    for (int kk = exact ? kmax : 1; kk <= kmax && !rc; kk++)
        for (int i = 0; i < n_modes && !rc; i++) {
            if (kk == 1 && i > 0)
                break;
            rc = candidate(in, &m, workers, kk, modes[i], trial, &tb, err, errlen);
            if (!rc && score(in, trial) < best) {
                best = score(in, trial);
                bb = tb;
                rc = candidate(in, &m, workers, kk, modes[i], out, &tb, err, errlen);
            }
        }
    if (!trial)
        snprintf(err, errlen, "headpar: out of memory");
    if (!rc)
        report(in, &m, &bb, out);
    if (trial)
        h->plan_free(trial);
    model_free(&m);
    return rc;
}

static const mb_policy_option headpar_options[] = {
    {"k", MB_OPT_INT, "16", "at most this many edge nodes share the heads (up to 16); every k up to it is tried"},
    {"exact_k", MB_OPT_BOOL, "0", "use exactly min(k, edge nodes, heads) edge nodes, not the best k up to it"},
    {"mlp", MB_OPT_STRING, "auto", "MLP split: tokens (rows), hidden (fc1 columns, fc2 rows) or auto (the better)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_headpar_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "headpar",
    .summary = "Galaxy: transformer heads and tokens (or MLP hidden units) split across K edge nodes",
    .options = headpar_options,
    .plan = headpar_plan,
};
