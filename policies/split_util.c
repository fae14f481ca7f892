/* Helpers shared by the split policies; see split_util.h. */
#include "split_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int mb_split_is_const(const mb_graph *g, int i)
{
    return g->nodes[i].type == MB_OP_CONSTANT;
}

int mb_split_is_free(const mb_graph *g, int i)
{
    return g->nodes[i].type == MB_OP_CONSTANT || g->nodes[i].type == MB_OP_INPUT;
}

int mb_split_live_init(mb_split_live *lv, const mb_graph *g)
{
    int n = g->n_nodes;
    memset(lv, 0, sizeof(*lv));
    lv->n = n;
    lv->last_use = malloc(sizeof(int) * (size_t)n);
    lv->is_output = calloc((size_t)n, sizeof(int));
    lv->n_live = calloc((size_t)n + 1, sizeof(int));
    lv->single = malloc(sizeof(int) * ((size_t)n + 1));
    lv->bytes = calloc((size_t)n + 1, sizeof(int64_t));
    int *delta = calloc((size_t)n + 2, sizeof(int));
    int64_t *dbytes = calloc((size_t)n + 2, sizeof(int64_t));
    long long *dsum = calloc((size_t)n + 2, sizeof(long long));
    if (!lv->last_use || !lv->is_output || !lv->n_live || !lv->single || !lv->bytes || !delta || !dbytes || !dsum) {
        free(delta);
        free(dbytes);
        free(dsum);
        mb_split_live_free(lv);
        return -1;
    }
    for (int i = 0; i < n; i++)
        lv->last_use[i] = -1;
    for (int v = 0; v < n; v++)
        for (int k = 0; k < g->nodes[v].n_inputs; k++) {
            int u = g->nodes[v].inputs[k];
            if (u >= 0 && u < n && v > lv->last_use[u])
                lv->last_use[u] = v;
        }
    for (int o = 0; o < g->n_outputs; o++)
        if (g->outputs[o] >= 0 && g->outputs[o] < n)
            lv->is_output[g->outputs[o]] = 1;
    lv->min_pos = 1;
    for (int i = 0; i < n; i++)
        if (g->nodes[i].type == MB_OP_INPUT && i + 1 > lv->min_pos)
            lv->min_pos = i + 1;
    /* u is live at positions c in (u, end], end = n for outputs else last_use. */
    for (int u = 0; u < n; u++) {
        if (mb_split_is_const(g, u))
            continue;
        int end = lv->is_output[u] ? n : lv->last_use[u];
        if (end <= u)
            continue;
        delta[u + 1]++;
        delta[end + 1]--;
        dbytes[u + 1] += g->nodes[u].out_bytes;
        dbytes[end + 1] -= g->nodes[u].out_bytes;
        /* the sum of live indices identifies the single one where count == 1 */
        dsum[u + 1] += u;
        dsum[end + 1] -= u;
    }
    int cnt = 0;
    int64_t b = 0;
    long long s = 0;
    for (int c = 0; c <= n; c++) {
        cnt += delta[c];
        b += dbytes[c];
        s += dsum[c];
        lv->n_live[c] = cnt;
        lv->bytes[c] = b;
        lv->single[c] = cnt == 1 ? (int)s : -1;
    }
    free(delta);
    free(dbytes);
    free(dsum);
    return 0;
}

void mb_split_live_free(mb_split_live *lv)
{
    free(lv->last_use);
    free(lv->is_output);
    free(lv->n_live);
    free(lv->single);
    free(lv->bytes);
    memset(lv, 0, sizeof(*lv));
}

int mb_split_cut_positions(const mb_split_live *lv, int *out)
{
    int m = 0;
    for (int c = lv->min_pos; c <= lv->n; c++)
        if (lv->n_live[c] == 1)
            out[m++] = c;
    return m;
}

mb_region mb_split_hull(mb_region a, mb_region b)
{
    if (mb_region_empty(a))
        return b;
    if (mb_region_empty(b))
        return a;
    mb_region r;
    r.h0 = a.h0 < b.h0 ? a.h0 : b.h0;
    r.w0 = a.w0 < b.w0 ? a.w0 : b.w0;
    r.h1 = a.h1 > b.h1 ? a.h1 : b.h1;
    r.w1 = a.w1 > b.w1 ? a.w1 : b.w1;
    return r;
}

/* Close the gaps of one axis among parts: a part whose end is not
 * continued by another part (one starting at or before it and reaching
 * further) grows to the next part's start, or to the border when none
 * follows; likewise at its start. Overlaps (halos) are left alone. */
static void close_axis(int nt, mb_region *r[], const int *peer, int64_t lo_b, int64_t hi_b, int cols)
{
#define LO(x) (cols ? (x)->w0 : (x)->h0)
#define HI(x) (cols ? (x)->w1 : (x)->h1)
    for (int t = 0; t < nt; t++) {
        if (!peer[t])
            continue;
        int cont_end = 0, cont_start = 0;
        int64_t next = hi_b, prev = lo_b;
        for (int s = 0; s < nt; s++) {
            if (s == t || !peer[s])
                continue;
            if (LO(r[s]) <= HI(r[t]) && HI(r[s]) > HI(r[t]))
                cont_end = 1;
            if (HI(r[s]) >= LO(r[t]) && LO(r[s]) < LO(r[t]))
                cont_start = 1;
            if (LO(r[s]) > HI(r[t]) && LO(r[s]) < next)
                next = LO(r[s]);
            if (HI(r[s]) < LO(r[t]) && HI(r[s]) > prev)
                prev = HI(r[s]);
        }
        if (!cont_end) {
            if (cols)
                r[t]->w1 = next;
            else
                r[t]->h1 = next;
        }
        if (!cont_start) {
            if (cols)
                r[t]->w0 = prev;
            else
                r[t]->h0 = prev;
        }
    }
#undef LO
#undef HI
}

/* Widen the parts' regions of one op so that together they cover it: rows
 * first (bands), then columns among the parts of one band (same rows). */
static void close_gaps(int nt, mb_region *r[], mb_region full)
{
    int peer[64];
    for (int t = 0; t < nt; t++)
        peer[t] = !mb_region_empty(*r[t]);
    close_axis(nt, r, peer, full.h0, full.h1, 0);
    for (int t = 0; t < nt; t++) {
        if (mb_region_empty(*r[t]))
            continue;
        for (int s = 0; s < nt; s++)
            peer[s] = !mb_region_empty(*r[s]) && r[s]->h0 == r[t]->h0 && r[s]->h1 == r[t]->h1;
        /* one band at a time: the first part of the band does it for all */
        int first = 1;
        for (int s = 0; s < t; s++)
            first &= !peer[s];
        if (first)
            close_axis(nt, r, peer, full.w0, full.w1, 1);
    }
}

int mb_split_backprop(const mb_graph *g, int q, int p, int exit, int nt, const mb_region *want,
                      mb_region *reg)
{
    int n = g->n_nodes;
    mb_region *col[64];
    if (nt > 64)
        return -1;
    for (size_t i = 0; i < (size_t)nt * (size_t)n; i++)
        reg[i] = (mb_region){0, 0, 0, 0};
    for (int t = 0; t < nt; t++)
        reg[(size_t)t * n + exit] = want[t];
    for (int v = p - 1; v >= q; v--) {
        if (mb_split_is_free(g, v))
            continue;
        int any = 0;
        for (int t = 0; t < nt; t++) {
            col[t] = &reg[(size_t)t * n + v];
            any |= !mb_region_empty(*col[t]);
        }
        if (!any)
            continue;
        if (!mb_split_region_rank(g, v))
            return -1;
        if (nt > 1)
            close_gaps(nt, col, mb_node_full_region(g, v));
        for (int t = 0; t < nt; t++) {
            mb_region rv = *col[t];
            if (mb_region_empty(rv))
                continue;
            for (int k = 0; k < g->nodes[v].n_inputs; k++) {
                int u = g->nodes[v].inputs[k];
                if (mb_split_is_const(g, u))
                    continue;
                mb_region r = mb_node_input_region(g, v, k, rv);
                if (!mb_region_empty(r))
                    reg[(size_t)t * n + u] = mb_split_hull(reg[(size_t)t * n + u], r);
            }
        }
    }
    return 0;
}

int mb_split_region_rank(const mb_graph *g, int i)
{
    return g->nodes[i].out_ndim >= 2 && g->nodes[i].out_ndim <= 4;
}

double mb_split_area_frac(const mb_graph *g, int i, mb_region r)
{
    if (mb_region_empty(r))
        return 0.0;
    mb_region f = mb_node_full_region(g, i);
    double full = (double)mb_region_rows(f) * (double)mb_region_cols(f);
    return full > 0 ? (double)mb_region_rows(r) * (double)mb_region_cols(r) / full : 0.0;
}

int64_t mb_split_region_bytes(const mb_graph *g, int i, mb_region r)
{
    return (int64_t)llround(mb_split_area_frac(g, i, r) * (double)g->nodes[i].out_bytes);
}

int mb_split_steps_add(mb_split_steps *s, int kind, int node, int site, int to_site, mb_region r)
{
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 64;
        mb_split_step *nv = realloc(s->v, sizeof(*nv) * (size_t)nc);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = (mb_split_step){kind, node, site, to_site, r};
    return 0;
}

void mb_split_steps_free(mb_split_steps *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}
