/* CIC-style compressed min cut (IJCNN 2022; QDMP's articulation-point
 * result). Offline, in init, independent of bandwidth:
 *  1. chain contraction: every maximal chain v1 -> v2 -> ... -> vk (each
 *     link the only consumer / only data input of the other) keeps only its
 *     ends; its inner ops become one exact 2x2 cost table between v1 and vk,
 *     solved by dynamic programming and written into the flow graph as
 *     unary and pairwise terms (any submodular two-variable function is
 *     representable), so the compressed cut value equals DADS's;
 *  2. articulation points of the DAG (cut vertices of its undirected
 *     skeleton) are recorded: every cut's boundary lies between two adjacent
 *     ones, the unit the splitting model reports;
 *  3. the lower envelope of the cut value as a function of s = rate0/rate
 *     (both directions scaled together) is traced by parametric min cut
 *     (Eisner-Severance): each piece is one assignment, cost C + s*W.
 * The splitting model (option model=FILE) stores chains, articulation
 * points, envelope and the conditions it was built for; a later run loads it
 * instead of rebuilding when model, sites, node speeds and delays match.
 *
 * Online: if the conditions are those of the splitting model except for
 * rate (the same up/down ratio), the decision is a binary search in the
 * envelope and a copy of the precomputed plan. Otherwise it solves the min
 * cut on the compressed graph. Either way the cut value equals mincut's. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "mincut.h"
#include "policy_util.h"

typedef struct cic_line {
    double s_from; /* optimal for s in [s_from, next line's s_from) */
    double c, w;   /* cost = c + s * w (ms) */
    int *server;   /* per op: 1 on the server */
    mb_plan *plan; /* precomputed steps */
} cic_line;

typedef struct cic_model {
    const mb_graph *g;
    int n, device, server;
    /* conditions the model was built for */
    double fd, fe;             /* site factors (compute speed) */
    double up0, up1, dn0, dn1; /* transfer ms = x0 + x1 * MB */
    /* bandwidth-independent costs */
    double *td, *te, *mb;
    /* chains */
    int n_chains;
    int *chain_start, *chain_len, *chain_ops; /* ops of chain c: chain_ops[chain_start[c] ..] */
    char *inner;                              /* op eliminated by a chain */
    int *cons_start, *cons;                   /* consumers (distinct), CSR */
    char *is_out;
    int n_art;
    int *art;
    /* envelope */
    int n_lines;
    cic_line *lines;
    int compressed_vertices; /* ops kept in the compressed graph */
    /* flow-graph vertex ids of the compressed graph: 0 = s, 1 = t, then kept
     * ops and the auxiliary vertices of their shipped tensors (-1: none) */
    int *vid, *vup, *vdn;
    int n_vertices;
} cic_model;

static int is_free(const mb_graph *g, int i)
{
    return g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
}

/* ---- structure: consumers, chains, articulation points ---- */

static int build_consumers(cic_model *m)
{
    const mb_graph *g = m->g;
    int n = m->n;
    m->cons_start = calloc((size_t)n + 1, sizeof(int));
    int *cnt = calloc((size_t)n, sizeof(int));
    if (!m->cons_start || !cnt) {
        free(cnt);
        return -1;
    }
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k], dup = 0;
            for (int j = 0; j < k; j++)
                dup |= g->nodes[v].inputs[j] == u;
            if (!dup)
                cnt[u]++;
        }
    for (int i = 0; i < n; i++)
        m->cons_start[i + 1] = m->cons_start[i] + cnt[i];
    m->cons = malloc(sizeof(int) * (size_t)(m->cons_start[n] + 1));
    if (!m->cons) {
        free(cnt);
        return -1;
    }
    memset(cnt, 0, sizeof(int) * (size_t)n);
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k], dup = 0;
            for (int j = 0; j < k; j++)
                dup |= g->nodes[v].inputs[j] == u;
            if (!dup)
                m->cons[m->cons_start[u] + cnt[u]++] = v;
        }
    free(cnt);
    return 0;
}

static int n_cons(const cic_model *m, int u) { return m->cons_start[u + 1] - m->cons_start[u]; }

/* The only data (non-constant) input of v, or -1 when it has none or several. */
static int single_data_input(const mb_graph *g, int v)
{
    int u = -1, cnt = 0;
    for (int k = 0; k < g->nodes[v].n_inputs; k++) {
        int x = g->nodes[v].inputs[k];
        if (g->nodes[x].type == MB_OP_CONSTANT)
            continue;
        u = x;
        cnt++;
    }
    return cnt == 1 ? u : -1;
}

/* link u -> v belongs to a chain: both computed ops, v is u's only consumer,
 * u is v's only data input, and u is not a graph output. */
static int chain_link(const cic_model *m, int u, int v)
{
    return !is_free(m->g, u) && !is_free(m->g, v) && !m->is_out[u] && n_cons(m, u) == 1 &&
           m->cons[m->cons_start[u]] == v && single_data_input(m->g, v) == u;
}

static int build_chains(cic_model *m)
{
    int n = m->n;
    m->inner = calloc((size_t)n, 1);
    m->chain_start = malloc(sizeof(int) * (size_t)n);
    m->chain_len = malloc(sizeof(int) * (size_t)n);
    m->chain_ops = malloc(sizeof(int) * (size_t)n);
    if (!m->inner || !m->chain_start || !m->chain_len || !m->chain_ops)
        return -1;
    int used = 0;
    for (int v = 0; v < n; v++) {
        if (is_free(m->g, v))
            continue;
        int p = single_data_input(m->g, v);
        if (p >= 0 && chain_link(m, p, v))
            continue; /* not a chain head */
        int len = 1, x = v;
        while (n_cons(m, x) == 1 && chain_link(m, x, m->cons[m->cons_start[x]])) {
            x = m->cons[m->cons_start[x]];
            len++;
        }
        if (len < 3)
            continue;
        m->chain_start[m->n_chains] = used;
        m->chain_len[m->n_chains] = len;
        x = v;
        for (int j = 0; j < len; j++) {
            m->chain_ops[used++] = x;
            if (j > 0 && j < len - 1)
                m->inner[x] = 1;
            if (j < len - 1)
                x = m->cons[m->cons_start[x]];
        }
        m->n_chains++;
    }
    m->compressed_vertices = 0;
    for (int v = 0; v < n; v++)
        m->compressed_vertices += !is_free(m->g, v) && !m->inner[v];
    m->vid = malloc(sizeof(int) * (size_t)n);
    m->vup = malloc(sizeof(int) * (size_t)n);
    m->vdn = malloc(sizeof(int) * (size_t)n);
    if (!m->vid || !m->vup || !m->vdn)
        return -1;
    int next = 2;
    for (int v = 0; v < n; v++) {
        m->vid[v] = m->vup[v] = m->vdn[v] = -1;
        if (m->g->nodes[v].type == MB_OP_CONSTANT || m->inner[v])
            continue;
        m->vid[v] = next++;
        int shipped = m->is_out[v];
        for (int k = m->cons_start[v]; k < m->cons_start[v + 1]; k++)
            shipped |= !m->inner[m->cons[k]];
        if (shipped) {
            m->vup[v] = next++;
            m->vdn[v] = next++;
        }
    }
    m->n_vertices = next;
    return 0;
}

/* Tarjan's articulation points on the undirected skeleton (constants left out). */
static int build_articulation(cic_model *m)
{
    int n = m->n;
    const mb_graph *g = m->g;
    int *adj_start = calloc((size_t)n + 1, sizeof(int));
    int *disc = malloc(sizeof(int) * (size_t)n), *low = malloc(sizeof(int) * (size_t)n);
    int *parent = malloc(sizeof(int) * (size_t)n), *it = malloc(sizeof(int) * (size_t)n);
    int *stack = malloc(sizeof(int) * (size_t)n);
    char *isart = calloc((size_t)n, 1);
    int *adj = NULL, rc = -1;
    m->art = malloc(sizeof(int) * (size_t)n);
    if (!adj_start || !disc || !low || !parent || !it || !stack || !isart || !m->art)
        goto out;
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k];
            if (g->nodes[u].type == MB_OP_CONSTANT)
                continue;
            adj_start[u + 1]++;
            adj_start[v + 1]++;
        }
    for (int i = 0; i < n; i++)
        adj_start[i + 1] += adj_start[i];
    adj = malloc(sizeof(int) * (size_t)(adj_start[n] + 1));
    if (!adj)
        goto out;
    for (int i = 0; i < n; i++)
        it[i] = adj_start[i];
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k];
            if (g->nodes[u].type == MB_OP_CONSTANT)
                continue;
            adj[it[u]++] = v;
            adj[it[v]++] = u;
        }
    for (int i = 0; i < n; i++) {
        disc[i] = -1;
        parent[i] = -1;
        it[i] = adj_start[i];
    }
    int time = 0;
    for (int r = 0; r < n; r++) {
        if (disc[r] >= 0 || g->nodes[r].type == MB_OP_CONSTANT)
            continue;
        int sp = 0, root_children = 0;
        stack[sp++] = r;
        disc[r] = low[r] = time++;
        while (sp) {
            int u = stack[sp - 1];
            if (it[u] < adj_start[u + 1]) {
                int v = adj[it[u]++];
                if (disc[v] < 0) {
                    parent[v] = u;
                    disc[v] = low[v] = time++;
                    stack[sp++] = v;
                    if (u == r)
                        root_children++;
                } else if (v != parent[u] && disc[v] < low[u]) {
                    low[u] = disc[v];
                }
            } else {
                sp--;
                int p = parent[u];
                if (p >= 0) {
                    if (low[u] < low[p])
                        low[p] = low[u];
                    if (p != r && low[u] >= disc[p])
                        isart[p] = 1;
                }
            }
        }
        if (root_children > 1)
            isart[r] = 1;
    }
    m->n_art = 0;
    for (int i = 0; i < n; i++)
        if (isart[i])
            m->art[m->n_art++] = i;
    rc = 0;
out:
    free(adj_start);
    free(adj);
    free(disc);
    free(low);
    free(parent);
    free(it);
    free(stack);
    free(isart);
    return rc;
}

/* ---- the compressed min cut at scale s ---- */

static double tx_at(const cic_model *m, int u, double s) { return m->up0 + s * m->up1 * m->mb[u]; }
static double rx_at(const cic_model *m, int u, double s) { return m->dn0 + s * m->dn1 * m->mb[u]; }

/* cost of the data edge u -> v (u's only consumer v) for sides x (u), y (v) */
static double link_cost(const cic_model *m, int u, int x, int y, double s)
{
    return x == 0 && y == 1 ? tx_at(m, u, s) : x == 1 && y == 0 ? rx_at(m, u, s) : 0;
}

static double unary(const cic_model *m, int v, int x) { return x ? m->te[v] : m->td[v]; }

/* f[a][b]: cheapest inner assignment of chain c given its head's side a and
 * tail's side b (inner ops' unary costs and the chain's link costs). */
static void chain_table(const cic_model *m, int c, double s, double f[2][2])
{
    const int *ops = m->chain_ops + m->chain_start[c];
    int len = m->chain_len[c];
    for (int a = 0; a < 2; a++) {
        double F[2]; /* best cost with ops[j] on side x */
        for (int x = 0; x < 2; x++)
            F[x] = link_cost(m, ops[0], a, x, s) + unary(m, ops[1], x);
        for (int j = 2; j < len - 1; j++) {
            double G[2];
            for (int y = 0; y < 2; y++)
                G[y] = fmin(F[0] + link_cost(m, ops[j - 1], 0, y, s),
                            F[1] + link_cost(m, ops[j - 1], 1, y, s)) +
                       unary(m, ops[j], y);
            F[0] = G[0];
            F[1] = G[1];
        }
        for (int b = 0; b < 2; b++)
            f[a][b] = fmin(F[0] + link_cost(m, ops[len - 2], 0, b, s),
                           F[1] + link_cost(m, ops[len - 2], 1, b, s));
    }
}

/* The inner ops' sides of chain c for given ends (backtracking the DP). */
static void chain_assign(const cic_model *m, int c, double s, int a, int b, int *server)
{
    const int *ops = m->chain_ops + m->chain_start[c];
    int len = m->chain_len[c];
    double *F = malloc(sizeof(double) * 2 * (size_t)len);
    char *arg = malloc(2 * (size_t)len);
    if (!F || !arg) {
        free(F);
        free(arg);
        return;
    }
    for (int x = 0; x < 2; x++)
        F[2 * 1 + x] = link_cost(m, ops[0], a, x, s) + unary(m, ops[1], x);
    for (int j = 2; j < len - 1; j++)
        for (int y = 0; y < 2; y++) {
            double c0 = F[2 * (j - 1)] + link_cost(m, ops[j - 1], 0, y, s);
            double c1 = F[2 * (j - 1) + 1] + link_cost(m, ops[j - 1], 1, y, s);
            arg[2 * j + y] = c1 < c0;
            F[2 * j + y] = fmin(c0, c1) + unary(m, ops[j], y);
        }
    double c0 = F[2 * (len - 2)] + link_cost(m, ops[len - 2], 0, b, s);
    double c1 = F[2 * (len - 2) + 1] + link_cost(m, ops[len - 2], 1, b, s);
    int x = c1 < c0;
    for (int j = len - 2; j >= 1; j--) {
        server[ops[j]] = x;
        if (j > 1)
            x = arg[2 * j + x];
    }
    free(F);
    free(arg);
}

/* cost c*[x = 1] into the flow graph (negative c via the complement) */
static int add_unary(mb_flow *f, int v, double c, double *konst)
{
    if (c >= 0)
        return mb_flow_add_edge(f, 0, v, c);
    *konst += c;
    return mb_flow_add_edge(f, v, 1, -c);
}

static double cic_solve(const cic_model *m, double s, int *server)
{
    const mb_graph *g = m->g;
    int n = m->n;
    mb_flow *f = mb_flow_new(m->n_vertices);
    if (!f)
        return -1;
    double konst = 0;
    int bad = 0;
    enum { S = 0, T = 1 };
    for (int v = 0; v < n; v++) {
        const mb_node *nd = &g->nodes[v];
        int x = m->vid[v];
        if (x < 0)
            continue; /* a constant, or inside a chain table */
        if (nd->type == MB_OP_INPUT)
            bad |= mb_flow_add_edge(f, S, x, MB_FLOW_INF);
        else {
            bad |= mb_flow_add_edge(f, S, x, m->te[v]);
            bad |= mb_flow_add_edge(f, x, T, m->td[v]);
        }
        if (m->vup[v] < 0)
            continue;
        bad |= mb_flow_add_edge(f, x, m->vup[v], tx_at(m, v, s));
        bad |= mb_flow_add_edge(f, m->vdn[v], x, rx_at(m, v, s));
        for (int k = m->cons_start[v]; k < m->cons_start[v + 1]; k++) {
            int w = m->cons[k];
            if (m->inner[w])
                continue;
            bad |= mb_flow_add_edge(f, m->vup[v], m->vid[w], MB_FLOW_INF);
            bad |= mb_flow_add_edge(f, m->vid[w], m->vdn[v], MB_FLOW_INF);
        }
        if (m->is_out[v])
            bad |= mb_flow_add_edge(f, S, m->vdn[v], MB_FLOW_INF);
    }
    for (int c = 0; c < m->n_chains; c++) {
        const int *ops = m->chain_ops + m->chain_start[c];
        int a = m->vid[ops[0]], b = m->vid[ops[m->chain_len[c] - 1]];
        double t[2][2];
        chain_table(m, c, s, t);
        /* f(a,b) = f00 + (f10-f00) a + (f11-f10) b + (f01+f10-f00-f11) (1-a) b */
        konst += t[0][0];
        bad |= add_unary(f, a, t[1][0] - t[0][0], &konst);
        bad |= add_unary(f, b, t[1][1] - t[1][0], &konst);
        double w = t[0][1] + t[1][0] - t[0][0] - t[1][1];
        bad |= mb_flow_add_edge(f, a, b, w > 0 ? w : 0); /* >= 0: min of submodular costs */
    }
    double value = -1;
    if (!bad) {
        value = mb_flow_max(f, S, T) + konst;
        if (server) {
            for (int v = 0; v < n; v++)
                server[v] = m->vid[v] < 0 ? 0 : !mb_flow_source_side(f, m->vid[v]);
            for (int c = 0; c < m->n_chains; c++) {
                const int *ops = m->chain_ops + m->chain_start[c];
                chain_assign(m, c, s, server[ops[0]], server[ops[m->chain_len[c] - 1]], server);
            }
        }
    }
    mb_flow_free(f);
    return value;
}

/* ---- the envelope (parametric min cut over s) ---- */

static void line_of(const cic_model *m, const int *server, double *c, double *w)
{
    /* cost = sum of unaries + per crossing tensor x0 + s * x1 * MB */
    const mb_graph *g = m->g;
    double cc = 0, ww = 0;
    for (int v = 0; v < m->n; v++) {
        if (g->nodes[v].type == MB_OP_CONSTANT)
            continue;
        cc += g->nodes[v].type == MB_OP_INPUT ? 0 : unary(m, v, server[v]);
        int up = 0, down = server[v] && m->is_out[v];
        for (int k = m->cons_start[v]; k < m->cons_start[v + 1]; k++) {
            int w2 = m->cons[k];
            up |= !server[v] && server[w2];
            down |= server[v] && !server[w2];
        }
        if (up) {
            cc += m->up0;
            ww += m->up1 * m->mb[v];
        }
        if (down) {
            cc += m->dn0;
            ww += m->dn1 * m->mb[v];
        }
    }
    *c = cc;
    *w = ww;
}

#define S_MAX 1e7 /* rates down to 1e-7 of the model's rate */

typedef struct cand {
    double c, w;
    int *server;
} cand;

static int solve_cand(const cic_model *m, double s, cand *out)
{
    out->server = malloc(sizeof(int) * (size_t)m->n);
    if (!out->server || cic_solve(m, s, out->server) < 0)
        return -1;
    line_of(m, out->server, &out->c, &out->w);
    return 0;
}

/* Eisner-Severance: find every line of the lower envelope between a and b
 * (a optimal at smaller s, so a.w >= b.w). Appends to *list in s order. */
static int envelope(const cic_model *m, const cand *pa, const cand *pb, cand **list, int *n,
                    int *cap, int depth)
{
    /* copies: pa may point into *list, which the recursion reallocates */
    cand A = *pa, B = *pb;
    const cand *a = &A, *b = &B;
    if (a->w - b->w <= 1e-12 * fmax(1.0, a->w) || depth > 60)
        return 0;
    double s = (b->c - a->c) / (a->w - b->w);
    if (!(s > 0) || s > S_MAX)
        return 0;
    cand c;
    if (solve_cand(m, s, &c))
        return -1;
    double vc = c.c + s * c.w, va = a->c + s * a->w;
    if (vc >= va - 1e-9 * fmax(1.0, fabs(va))) {
        free(c.server);
        return 0;
    }
    if (envelope(m, a, &c, list, n, cap, depth + 1))
        return -1;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        cand *nl = realloc(*list, sizeof(cand) * (size_t)*cap);
        if (!nl)
            return -1;
        *list = nl;
    }
    (*list)[(*n)++] = c;
    return envelope(m, &(*list)[*n - 1], b, list, n, cap, depth + 1);
}

static int build_envelope(cic_model *m, const mb_policy_input *in, char *err, size_t errlen)
{
    cand lo, hi;
    if (solve_cand(m, 0, &lo) || solve_cand(m, S_MAX, &hi)) {
        snprintf(err, errlen, "cic: out of memory");
        return -1;
    }
    cand *list = malloc(sizeof(cand) * 16);
    int n = 0, cap = 16;
    if (!list)
        return -1;
    list[n++] = lo;
    cand first = lo;
    if (envelope(m, &first, &hi, &list, &n, &cap, 0)) {
        snprintf(err, errlen, "cic: out of memory");
        return -1;
    }
    if (hi.w < list[n - 1].w - 1e-12 * fmax(1.0, hi.w) || hi.c != list[n - 1].c) {
        if (n == cap) {
            cand *nl = realloc(list, sizeof(cand) * (size_t)(cap + 1));
            if (!nl)
                return -1;
            list = nl;
        }
        list[n++] = hi;
    } else
        free(hi.server);
    /* drop lines that never win (equal or dominated neighbours) */
    m->lines = calloc((size_t)n, sizeof(cic_line));
    if (!m->lines)
        return -1;
    m->n_lines = 0;
    for (int i = 0; i < n; i++) {
        double from = 0;
        if (m->n_lines) {
            cic_line *p = &m->lines[m->n_lines - 1];
            if (p->w - list[i].w <= 0) {
                free(list[i].server);
                continue;
            }
            from = (list[i].c - p->c) / (p->w - list[i].w);
            if (from <= p->s_from) { /* p never wins: replace it */
                free(p->server);
                mb_plan_free(p->plan);
                m->n_lines--;
                i--; /* reconsider list[i] against the new top */
                continue;
            }
        }
        cic_line *l = &m->lines[m->n_lines++];
        l->s_from = from;
        l->c = list[i].c;
        l->w = list[i].w;
        l->server = list[i].server;
        l->plan = NULL;
    }
    free(list);
    /* precompute each line's plan */
    int *where = malloc(sizeof(int) * (size_t)m->n);
    if (!where)
        return -1;
    for (int i = 0; i < m->n_lines; i++) {
        cic_line *l = &m->lines[i];
        for (int v = 0; v < m->n; v++)
            where[v] = l->server[v] ? m->server : m->device;
        l->plan = mb_plan_new("cic", m->g, m->device);
        if (!l->plan || in->host->plan_assign(l->plan, m->g, where, err, errlen)) {
            free(where);
            return -1;
        }
    }
    free(where);
    return 0;
}

/* ---- the splitting model file ---- */

static int model_write(const cic_model *m, const mb_policy_input *in, const char *path, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cic: cannot write splitting model %s", path);
        return -1;
    }
    fprintf(f, "# mecbed cic splitting model v1\n");
    fprintf(f, "model %s %016" PRIx64 " %d\n", m->g->name, mb_graph_hash(m->g), m->n);
    fprintf(f, "sites %s %s\n", in->topo->sites[m->device].name, in->topo->sites[m->server].name);
    fprintf(f, "conditions %.17g %.17g %.17g %.17g %.17g %.17g\n", m->fd, m->fe, m->up0, m->up1,
            m->dn0, m->dn1);
    fprintf(f, "articulation %d", m->n_art);
    for (int i = 0; i < m->n_art; i++)
        fprintf(f, " %d", m->art[i]);
    fprintf(f, "\nchains %d\n", m->n_chains);
    for (int c = 0; c < m->n_chains; c++) {
        fprintf(f, "chain %d", m->chain_len[c]);
        for (int j = 0; j < m->chain_len[c]; j++)
            fprintf(f, " %d", m->chain_ops[m->chain_start[c] + j]);
        fputc('\n', f);
    }
    fprintf(f, "lines %d\n", m->n_lines);
    for (int i = 0; i < m->n_lines; i++) {
        const cic_line *l = &m->lines[i];
        int ns = 0;
        for (int v = 0; v < m->n; v++)
            ns += l->server[v];
        fprintf(f, "line %.17g %.17g %.17g %d", l->s_from, l->c, l->w, ns);
        for (int v = 0; v < m->n; v++)
            if (l->server[v])
                fprintf(f, " %d", v);
        fputc('\n', f);
    }
    return fclose(f) ? -1 : 0;
}

/* Loads the envelope and chains of a matching splitting model; 1 loaded,
 * 0 absent or stale (rebuild), -1 malformed. */
static int model_read(cic_model *m, const mb_policy_input *in, const char *path, char *err,
                      size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char name[MB_NAME_LEN], dev[64], srv[64];
    uint64_t hash;
    int n, rc = -1;
    double cond[6];
    if (fscanf(f, "# mecbed cic splitting model v1 model %95s %" SCNx64 " %d sites %63s %63s "
                  "conditions %lf %lf %lf %lf %lf %lf",
               name, &hash, &n, dev, srv, &cond[0], &cond[1], &cond[2], &cond[3], &cond[4],
               &cond[5]) != 11) {
        snprintf(err, errlen, "cic: %s: not a splitting model (header)", path);
        goto out;
    }
    double now[6] = {m->fd, m->fe, m->up0, m->up1, m->dn0, m->dn1};
    int same = hash == mb_graph_hash(m->g) && n == m->n &&
               !strcmp(dev, in->topo->sites[m->device].name) &&
               !strcmp(srv, in->topo->sites[m->server].name);
    /* rates may differ (that is what the envelope is for); speeds and delays may not */
    for (int i = 0; i < 6 && same; i++)
        if (i != 3 && i != 5)
            same = fabs(cond[i] - now[i]) <= 1e-9 * fmax(1.0, fabs(now[i]));
    if (same && m->up1 > 0 && m->dn1 > 0)
        same = fabs(cond[5] / cond[3] - m->dn1 / m->up1) <= 1e-9 * (m->dn1 / m->up1);
    if (!same) {
        rc = 0;
        goto out;
    }
    int na, nc, nl;
    if (fscanf(f, " articulation %d", &na) != 1 || na < 0 || na > n)
        goto bad;
    m->n_art = na;
    for (int i = 0; i < na; i++)
        if (fscanf(f, "%d", &m->art[i]) != 1)
            goto bad;
    if (fscanf(f, " chains %d", &nc) != 1 || nc != m->n_chains)
        goto bad; /* chains are rebuilt from the graph; the count must agree */
    for (int c = 0; c < nc; c++) {
        int len, x;
        if (fscanf(f, " chain %d", &len) != 1 || len != m->chain_len[c])
            goto bad;
        for (int j = 0; j < len; j++)
            if (fscanf(f, "%d", &x) != 1 || x != m->chain_ops[m->chain_start[c] + j])
                goto bad;
    }
    if (fscanf(f, " lines %d", &nl) != 1 || nl < 1 || nl > 100000)
        goto bad;
    m->lines = calloc((size_t)nl, sizeof(cic_line));
    if (!m->lines)
        goto bad;
    double scale = cond[3] > 0 ? m->up1 / cond[3] : 1; /* s of the file -> s now */
    for (int i = 0; i < nl; i++) {
        cic_line *l = &m->lines[i];
        int ns;
        if (fscanf(f, " line %lf %lf %lf %d", &l->s_from, &l->c, &l->w, &ns) != 4 || ns < 0 ||
            ns > n)
            goto bad;
        l->server = calloc((size_t)n, sizeof(int));
        m->n_lines = i + 1;
        if (!l->server)
            goto bad;
        for (int k = 0; k < ns; k++) {
            int v;
            if (fscanf(f, "%d", &v) != 1 || v < 0 || v >= n)
                goto bad;
            l->server[v] = 1;
        }
        /* the file's s is relative to its rate; re-express relative to ours */
        l->s_from /= scale;
        l->w *= scale;
    }
    int *where = malloc(sizeof(int) * (size_t)n);
    if (!where)
        goto bad;
    for (int i = 0; i < m->n_lines; i++) {
        for (int v = 0; v < n; v++)
            where[v] = m->lines[i].server[v] ? m->server : m->device;
        m->lines[i].plan = mb_plan_new("cic", m->g, m->device);
        if (!m->lines[i].plan || in->host->plan_assign(m->lines[i].plan, m->g, where, err, errlen)) {
            free(where);
            goto out;
        }
    }
    free(where);
    rc = 1;
    goto out;
bad:
    snprintf(err, errlen, "cic: %s: malformed splitting model", path);
out:
    fclose(f);
    return rc;
}

/* ---- policy callbacks ---- */

static void model_free(cic_model *m)
{
    if (!m)
        return;
    free(m->td);
    free(m->te);
    free(m->mb);
    free(m->chain_start);
    free(m->chain_len);
    free(m->chain_ops);
    free(m->inner);
    free(m->cons_start);
    free(m->cons);
    free(m->is_out);
    free(m->art);
    free(m->vid);
    free(m->vup);
    free(m->vdn);
    for (int i = 0; i < m->n_lines; i++) {
        free(m->lines[i].server);
        mb_plan_free(m->lines[i].plan);
    }
    free(m->lines);
    free(m);
}

static void xfer_coeffs(const mb_policy_input *in, int server, double *c)
{
    const mb_host *h = in->host;
    c[0] = h->xfer_ms(in->cost, in->device, server, 0);
    c[1] = h->xfer_ms(in->cost, in->device, server, 1000000) - c[0];
    c[2] = h->xfer_ms(in->cost, server, in->device, 0);
    c[3] = h->xfer_ms(in->cost, server, in->device, 1000000) - c[2];
}

static int cic_init(const mb_policy_input *in, void **state, char *err, size_t errlen)
{
    const mb_graph *g = in->g;
    const mb_host *h = in->host;
    int server = mb_policy_pick_server(in, err, errlen);
    if (server < 0)
        return -1;
    cic_model *m = calloc(1, sizeof(*m));
    if (!m)
        goto oom;
    m->g = g;
    m->n = g->n_nodes;
    m->device = in->device;
    m->server = server;
    double xc[4];
    xfer_coeffs(in, server, xc);
    if (!isfinite(xc[0]) || !isfinite(xc[2])) {
        snprintf(err, errlen, "no route between the device and %s", in->topo->sites[server].name);
        model_free(m);
        return -1;
    }
    m->up0 = xc[0];
    m->up1 = xc[1];
    m->dn0 = xc[2];
    m->dn1 = xc[3];
    m->td = malloc(sizeof(double) * (size_t)m->n);
    m->te = malloc(sizeof(double) * (size_t)m->n);
    m->mb = malloc(sizeof(double) * (size_t)m->n);
    m->is_out = calloc((size_t)m->n, 1);
    if (!m->td || !m->te || !m->mb || !m->is_out)
        goto oom;
    /* speeds fingerprint: total device and server time of the model */
    m->fd = m->fe = 0;
    for (int v = 0; v < m->n; v++) {
        m->td[v] = is_free(g, v) ? 0 : h->op_ms(in->cost, in->device, v);
        m->te[v] = is_free(g, v) ? 0 : h->op_ms(in->cost, server, v);
        m->mb[v] = (double)g->nodes[v].out_bytes / 1e6;
        m->fd += m->td[v];
        m->fe += m->te[v];
    }
    for (int k = 0; k < g->n_outputs; k++)
        m->is_out[g->outputs[k]] = 1;
    if (build_consumers(m) || build_chains(m) || build_articulation(m))
        goto oom;
    char path[1024];
    const char *file = h->opt_string(in->options, "model", NULL, path, sizeof(path));
    int loaded = 0;
    if (file) {
        loaded = model_read(m, in, file, err, errlen);
        if (loaded < 0) {
            model_free(m);
            return -1;
        }
    }
    if (!loaded) {
        if (build_envelope(m, in, err, errlen)) {
            model_free(m);
            return -1;
        }
        if (file && model_write(m, in, file, err, errlen)) {
            model_free(m);
            return -1;
        }
    }
    h->log(MB_LOG_INFO, "cic", "%s: %d ops -> %d in the compressed graph, %d chains, %d articulation points, %d envelope lines (%s)",
           g->name, m->n, m->compressed_vertices, m->n_chains, m->n_art, m->n_lines,
           loaded ? "loaded" : "built");
    *state = m;
    return 0;
oom:
    model_free(m);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void cic_fini(void *state) { model_free(state); }

static int copy_steps(mb_plan *out, const mb_plan *src)
{
    if (out->cap_steps < src->n_steps) {
        mb_plan_step *s = realloc(out->steps, sizeof(*s) * (size_t)src->n_steps);
        if (!s)
            return -1;
        out->steps = s;
        out->cap_steps = src->n_steps;
    }
    memcpy(out->steps, src->steps, sizeof(*src->steps) * (size_t)src->n_steps);
    out->n_steps = src->n_steps;
    return 0;
}

static int cic_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    cic_model *m = in->state;
    const mb_host *h = in->host;
    if (!m) {
        snprintf(err, errlen, "cic: no splitting model (init did not run)");
        return -1;
    }
    double xc[4];
    xfer_coeffs(in, m->server, xc);
    /* same conditions but the rate (both directions scaled alike)? Then the
     * envelope answers. Speed fingerprint: two op times. */
    int fast = fabs(xc[0] - m->up0) <= 1e-9 * fmax(1.0, m->up0) &&
               fabs(xc[2] - m->dn0) <= 1e-9 * fmax(1.0, m->dn0) && m->up1 > 0 && m->dn1 > 0;
    double s = fast ? xc[1] / m->up1 : 0;
    if (fast)
        fast = fabs(xc[3] / m->dn1 - s) <= 1e-9 * s && s <= S_MAX;
    for (int k = 0; k < 2 && fast; k++) { /* compute speeds unchanged (DDS shares etc.) */
        int v = k ? m->n - 1 : m->n / 2;
        if (is_free(m->g, v))
            continue;
        fast = fabs(h->op_ms(in->cost, m->device, v) - m->td[v]) <= 1e-12 * fmax(1.0, m->td[v]) &&
               fabs(h->op_ms(in->cost, m->server, v) - m->te[v]) <= 1e-12 * fmax(1.0, m->te[v]);
    }
    if (fast) {
        int lo = 0, hi = m->n_lines - 1;
        while (lo < hi) { /* last line with s_from <= s */
            int mid = (lo + hi + 1) / 2;
            if (m->lines[mid].s_from <= s)
                lo = mid;
            else
                hi = mid - 1;
        }
        const cic_line *l = &m->lines[lo];
        if (copy_steps(out, l->plan)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        out->pred.cut_value_ms = l->c + s * l->w;
        h->plan_metric_set(out, "envelope_line", lo);
        snprintf(out->note, sizeof(out->note),
                 "splitting model: envelope line %d of %d (%d vertices for %d nodes in the compressed graph)",
                 lo, m->n_lines, m->compressed_vertices, m->n);
        return 0;
    }
    /* conditions outside the splitting model: min cut on the compressed graph */
    cic_model tmp = *m;
    tmp.up0 = xc[0];
    tmp.up1 = xc[1];
    tmp.dn0 = xc[2];
    tmp.dn1 = xc[3];
    double *td = malloc(sizeof(double) * (size_t)m->n), *te = malloc(sizeof(double) * (size_t)m->n);
    int *srv = malloc(sizeof(int) * (size_t)m->n), *where = malloc(sizeof(int) * (size_t)m->n);
    int rc = -1;
    if (!td || !te || !srv || !where) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int v = 0; v < m->n; v++) {
        td[v] = is_free(m->g, v) ? 0 : h->op_ms(in->cost, m->device, v);
        te[v] = is_free(m->g, v) ? 0 : h->op_ms(in->cost, m->server, v);
    }
    tmp.td = td;
    tmp.te = te;
    double value = cic_solve(&tmp, 1.0, srv);
    if (value < 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (int v = 0; v < m->n; v++)
        where[v] = srv[v] ? m->server : m->device;
    if (h->plan_assign(out, m->g, where, err, errlen))
        goto out;
    out->pred.cut_value_ms = value;
    h->plan_metric_set(out, "envelope_line", -1);
    snprintf(out->note, sizeof(out->note),
             "conditions outside the splitting model: min cut on the compressed graph (%d vertices for %d nodes)",
             m->compressed_vertices, m->n);
    rc = 0;
out:
    free(td);
    free(te);
    free(srv);
    free(where);
    return rc;
}

static const mb_policy_option cic_options[] = {
    {"model", MB_OPT_STRING, "", "splitting-model file to read (written when absent); default: build in memory"},
    {"server", MB_OPT_STRING, "", "the server site by name (default: the first non-device site)"},
    {NULL, 0, NULL, NULL},
};

const mb_policy_ops mb_policy_cic_ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "cic",
    .summary = "CIC: compressed DAG (chains, articulation points) + precomputed cut envelope",
    .options = cic_options,
    .init = cic_init,
    .fini = cic_fini,
    .plan = cic_plan,
};
