/* D3 tile partitioning: HPA boundaries and VSM fused tile stacks. The cost
 * model is in tile.h; this file only searches it. */
#include "tile.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mb_tile_solver {
    mb_tile_env env;
    int n;
    mb_split_live lv;
    int P;           /* cut positions */
    int *pos;        /* [P] increasing; includes n */
    int leader;      /* module site */
    double *D, *L, *C; /* prefix sums of device / leader / cloud op time */
    int *NL;         /* prefix count of ops a tile stack cannot hold */
    double *seg;     /* [P*P] best cost of segment pos[i]..pos[j] on the edge */
    double *E;       /* [P*P] best edge time from pos[i] to pos[j] */
    int *pred;       /* [P*P] last segment start index for E */
    mb_region *reg;  /* [n] scratch */
};

#define IDX(s, i, j) ((size_t)(i) * (size_t)(s)->P + (size_t)(j))

void mb_tile_apportion(int64_t total, const double *w, int n, int64_t *out)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += w[i] > 0 ? w[i] : 0;
    int64_t spare = total - n, used = 0;
    double rem[MB_TILE_MAX_EDGE];
    for (int i = 0; i < n; i++) {
        double share = sum > 0 ? (double)spare * (w[i] > 0 ? w[i] : 0) / sum : (double)spare / n;
        out[i] = 1 + (int64_t)floor(share);
        rem[i] = share - floor(share);
        used += out[i];
    }
    /* largest remainders take what rounding left over */
    while (used < total) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        out[best]++;
        rem[best] = -1;
        used++;
    }
}

static double site_op_ms(const mb_tile_solver *s, int site, int v)
{
    if (site == 0)
        return s->env.t_dev[v];
    if (site <= s->env.n_edge)
        return s->env.t_edge[site - 1][v];
    return s->env.t_cloud[v];
}

static double xfer(const mb_tile_solver *s, int a, int b, int64_t bytes)
{
    if (a == b)
        return 0.0;
    return s->env.xfer_ms(s->env.ctx, a, b, bytes);
}

/* Cost of running segment [q,p) as tiles: the leader scatters each tile's
 * input region over its link (sends serialise on the leader's side, each
 * arrives one latency later), nodes compute their regions (halos included),
 * tiles come back to the leader in order of completion. */
static double tiled_cost(mb_tile_solver *s, int q, int p, int nt, const mb_region *tiles, const int *sites)
{
    const mb_graph *g = s->env.g;
    int u0 = s->lv.single[q], u1 = s->lv.single[p];
    double finish[MB_TILE_MAX_EDGE], out_ser[MB_TILE_MAX_EDGE], out_lat[MB_TILE_MAX_EDGE];
    double link_free = 0;
    if (mb_split_backprop(g, q, p, u1, nt, tiles, s->reg) < 0)
        return INFINITY;
    for (int j = 0; j < nt; j++) {
        const mb_region *reg = s->reg + (size_t)j * s->n;
        double comp = 0;
        for (int v = q; v < p; v++)
            if (!mb_split_is_free(g, v))
                comp += site_op_ms(s, sites[j], v) * mb_split_area_frac(g, v, reg[v]);
        double arrive = 0;
        if (sites[j] != s->leader) {
            int64_t in_b = mb_split_region_bytes(g, u0, reg[u0]);
            double lat = xfer(s, s->leader, sites[j], 0);
            link_free += xfer(s, s->leader, sites[j], in_b) - lat;
            arrive = link_free + lat;
            int64_t out_b = mb_split_region_bytes(g, u1, tiles[j]);
            out_lat[j] = xfer(s, sites[j], s->leader, 0);
            out_ser[j] = xfer(s, sites[j], s->leader, out_b) - out_lat[j];
        } else {
            out_lat[j] = out_ser[j] = 0;
        }
        finish[j] = arrive + comp;
    }
    /* gather in order of finish */
    int order[MB_TILE_MAX_EDGE];
    for (int j = 0; j < nt; j++)
        order[j] = j;
    for (int i = 1; i < nt; i++)
        for (int j = i; j > 0 && finish[order[j]] < finish[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double in_free = 0, done = 0;
    for (int i = 0; i < nt; i++) {
        int j = order[i];
        double d = finish[j];
        if (sites[j] != s->leader) {
            double st = finish[j] > in_free ? finish[j] : in_free;
            in_free = st + out_ser[j];
            d = in_free + out_lat[j];
        }
        if (d > done)
            done = d;
    }
    return done;
}

/* Tile layout for kp fastest nodes as gn strips of gm tiles: strip heights
 * in proportion to the strip's speed, widths within a strip to each node's. */
static int make_layout(const mb_tile_solver *s, int q, int p, int gn, int gm, mb_region *tiles, int *sites)
{
    const mb_graph *g = s->env.g;
    int u1 = s->lv.single[p];
    mb_region full = mb_node_full_region(g, u1);
    int64_t H = mb_region_rows(full), W = mb_region_cols(full);
    if (H < gn || W < gm)
        return -1;
    int K = s->env.n_edge, ids[MB_TILE_MAX_EDGE];
    double speed[MB_TILE_MAX_EDGE + 1];
    for (int k = 0; k < K; k++) {
        double t = 0;
        for (int v = q; v < p; v++)
            t += s->env.t_edge[k][v];
        speed[k + 1] = t > 0 ? 1.0 / t : 1e12;
        ids[k] = k + 1;
    }
    for (int i = 1; i < K; i++)
        for (int j = i; j > 0 && speed[ids[j]] > speed[ids[j - 1]]; j--) {
            int t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
    int strip_nodes[MB_TILE_MAX_EDGE][MB_TILE_MAX_EDGE];
    double strip_w[MB_TILE_MAX_EDGE] = {0};
    for (int r = 0; r < gm; r++)
        for (int i = 0; i < gn; i++) {
            int strip = (r % 2 == 0) ? i : gn - 1 - i; /* snake keeps strips even */
            int node = ids[r * gn + i];
            strip_nodes[strip][r] = node;
            strip_w[strip] += speed[node];
        }
    int64_t hs[MB_TILE_MAX_EDGE], ws[MB_TILE_MAX_EDGE];
    mb_tile_apportion(H, strip_w, gn, hs);
    int t = 0;
    int64_t h0 = full.h0;
    for (int st = 0; st < gn; st++) {
        double w[MB_TILE_MAX_EDGE];
        for (int c = 0; c < gm; c++)
            w[c] = speed[strip_nodes[st][c]];
        mb_tile_apportion(W, w, gm, ws);
        int64_t w0 = full.w0;
        for (int c = 0; c < gm; c++) {
            tiles[t] = (mb_region){h0, h0 + hs[st], w0, w0 + ws[c]};
            sites[t] = strip_nodes[st][c];
            w0 += ws[c];
            t++;
        }
        h0 += hs[st];
    }
    return t;
}

static int seg_tileable(const mb_tile_solver *s, int q, int p)
{
    const mb_graph *g = s->env.g;
    if (s->env.n_edge < 2 || s->NL[p] - s->NL[q] != 0)
        return 0;
    int u0 = s->lv.single[q], u1 = s->lv.single[p];
    if (u0 < 0 || u1 < 0 || u1 < q || u1 >= p)
        return 0;
    return mb_split_region_rank(g, u0) && mb_split_region_rank(g, u1);
}

/* Best way to run [q,p) on the edge: whole on the leader, or tiled. */
static double seg_best(mb_tile_solver *s, int q, int p, mb_tile_seg *out)
{
    double best = s->L[p] - s->L[q];
    if (out) {
        memset(out, 0, sizeof(*out));
        out->q = q;
        out->p = p;
        out->ms = best;
    }
    if (!seg_tileable(s, q, p))
        return best;
    int K = s->env.n_edge;
    int maxt = s->env.max_tiles > 0 && s->env.max_tiles < K ? s->env.max_tiles : K;
    mb_region tiles[MB_TILE_MAX_EDGE];
    int sites[MB_TILE_MAX_EDGE];
    for (int kp = 2; kp <= maxt; kp++)
        for (int gn = 1; gn <= kp; gn++) {
            if (kp % gn)
                continue;
            int gm = kp / gn;
            int nt = make_layout(s, q, p, gn, gm, tiles, sites);
            if (nt <= 0)
                continue;
            double c = tiled_cost(s, q, p, nt, tiles, sites);
            if (c < best) {
                best = c;
                if (out) {
                    out->tiled = 1;
                    out->grid_n = gn;
                    out->grid_m = gm;
                    out->n_tiles = nt;
                    memcpy(out->tile, tiles, sizeof(tiles[0]) * (size_t)nt);
                    memcpy(out->site, sites, sizeof(sites[0]) * (size_t)nt);
                    out->ms = c;
                }
            }
        }
    return best;
}

void mb_tile_solver_free(mb_tile_solver *s)
{
    if (!s)
        return;
    mb_split_live_free(&s->lv);
    free(s->pos);
    free(s->D);
    free(s->L);
    free(s->C);
    free(s->NL);
    free(s->seg);
    free(s->E);
    free(s->pred);
    free(s->reg);
    free(s);
}

/* Fill seg[] and the DP table E[i][j] = best edge time from pos[i] to pos[j]
 * as a sequence of segments. */
static void solver_tables(mb_tile_solver *s)
{
    int P = s->P;
    for (int i = 0; i < P; i++)
        for (int j = i + 1; j < P; j++)
            s->seg[IDX(s, i, j)] = seg_best(s, s->pos[i], s->pos[j], NULL);
    for (int i = 0; i < P; i++) {
        s->E[IDX(s, i, i)] = 0;
        s->pred[IDX(s, i, i)] = -1;
        for (int j = i + 1; j < P; j++) {
            double best = INFINITY;
            int arg = i;
            for (int k = i; k < j; k++) {
                double c = s->E[IDX(s, i, k)] + s->seg[IDX(s, k, j)];
                if (c < best) {
                    best = c;
                    arg = k;
                }
            }
            s->E[IDX(s, i, j)] = best;
            s->pred[IDX(s, i, j)] = arg;
        }
    }
}

mb_tile_solver *mb_tile_solver_new(const mb_tile_env *env, char *err, size_t errlen)
{
    const mb_graph *g = env->g;
    if (env->n_edge < 0 || env->n_edge > MB_TILE_MAX_EDGE) {
        snprintf(err, errlen, "tile: %d edge nodes (1..%d supported)", env->n_edge, MB_TILE_MAX_EDGE);
        return NULL;
    }
    if (!env->xfer_ms || !env->t_dev || (env->has_cloud && !env->t_cloud)) {
        snprintf(err, errlen, "tile: incomplete cost input");
        return NULL;
    }
    mb_tile_solver *s = calloc(1, sizeof(*s));
    if (!s || mb_split_live_init(&s->lv, g) < 0) {
        free(s);
        snprintf(err, errlen, "tile: out of memory");
        return NULL;
    }
    s->env = *env;
    int n = s->n = g->n_nodes;
    s->pos = malloc(sizeof(int) * ((size_t)n + 2));
    s->D = calloc((size_t)n + 1, sizeof(double));
    s->L = calloc((size_t)n + 1, sizeof(double));
    s->C = calloc((size_t)n + 1, sizeof(double));
    s->NL = calloc((size_t)n + 1, sizeof(int));
    s->reg = malloc(sizeof(mb_region) * (size_t)n * MB_TILE_MAX_EDGE);
    if (!s->pos || !s->D || !s->L || !s->C || !s->NL || !s->reg)
        goto oom;
    s->P = mb_split_cut_positions(&s->lv, s->pos);
    if (s->P == 0 || s->pos[s->P - 1] != n)
        s->pos[s->P++] = n; /* several outputs: "all before n" is still a valid boundary */
    s->leader = 0;
    double best_total = INFINITY;
    for (int k = 0; k < env->n_edge; k++) {
        double t = 0;
        for (int v = 0; v < n; v++)
            t += env->t_edge[k][v];
        if (t < best_total) {
            best_total = t;
            s->leader = k + 1;
        }
    }
    for (int v = 0; v < n; v++) {
        int fr = mb_split_is_free(g, v);
        s->D[v + 1] = s->D[v] + (fr ? 0 : env->t_dev[v]);
        s->L[v + 1] = s->L[v] + (fr || !s->leader ? 0 : env->t_edge[s->leader - 1][v]);
        s->C[v + 1] = s->C[v] + (fr || !env->has_cloud ? 0 : env->t_cloud[v]);
        int bad = !fr && (!g->nodes[v].local || !mb_split_region_rank(g, v));
        s->NL[v + 1] = s->NL[v] + bad;
    }
    size_t PP = (size_t)s->P * (size_t)s->P;
    s->seg = calloc(PP, sizeof(double));
    s->E = calloc(PP, sizeof(double));
    s->pred = calloc(PP, sizeof(int));
    if (!s->seg || !s->E || !s->pred)
        goto oom;
    if (s->leader)
        solver_tables(s);
    return s;
oom:
    mb_tile_solver_free(s);
    snprintf(err, errlen, "tile: out of memory");
    return NULL;
}

static int pos_index(const mb_tile_solver *s, int c)
{
    for (int i = 0; i < s->P; i++)
        if (s->pos[i] == c)
            return i;
    return -1;
}

static double total_ms(const mb_tile_solver *s, int ia, int ib, mb_tile_result *r)
{
    int a = s->pos[ia], b = s->pos[ib], n = s->n;
    int dev = 0, cloud = s->env.n_edge + 1, L = s->leader;
    int64_t out_b = s->lv.bytes[n];
    double dm = s->D[a], up = 0, ed = 0, bb = 0, cl = 0, dn = 0;
    int64_t bb_bytes = 0, sent = 0;
    if (a == n) {
        /* all on the device */
    } else if (a == b) {
        if (!s->env.has_cloud)
            return INFINITY;
        up = xfer(s, dev, cloud, s->lv.bytes[a]);
        cl = s->C[n] - s->C[a];
        dn = xfer(s, cloud, dev, out_b);
        bb_bytes = s->lv.bytes[a] + out_b;
        sent = 2 * (s->lv.bytes[a] + out_b); /* via the edge: two hops each way */
    } else {
        if (!L)
            return INFINITY;
        up = xfer(s, dev, L, s->lv.bytes[a]);
        ed = s->E[IDX(s, ia, ib)];
        sent = s->lv.bytes[a];
        if (b < n) {
            if (!s->env.has_cloud)
                return INFINITY;
            bb = xfer(s, L, cloud, s->lv.bytes[b]);
            cl = s->C[n] - s->C[b];
            dn = xfer(s, cloud, dev, out_b);
            bb_bytes = s->lv.bytes[b] + out_b;
            sent += s->lv.bytes[b] + 2 * out_b;
        } else {
            dn = xfer(s, L, dev, out_b);
            sent += out_b;
        }
    }
    if (r) {
        r->a = a;
        r->b = b;
        r->leader = L;
        r->device_ms = dm;
        r->up_ms = up;
        r->edge_ms = ed;
        r->backbone_ms = bb;
        r->cloud_ms = cl;
        r->down_ms = dn;
        r->backbone_bytes = bb_bytes;
        r->bytes_sent = sent;
    }
    return dm + up + ed + bb + cl + dn;
}

void mb_tile_result_free(mb_tile_result *r)
{
    free(r->segs);
    r->segs = NULL;
    r->n_segs = 0;
}

static int fill_result(mb_tile_solver *s, int ia, int ib, mb_tile_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->latency_ms = total_ms(s, ia, ib, r);
    if (!isfinite(r->latency_ms)) {
        snprintf(err, errlen, "tile: boundaries %d,%d not possible in this topology", s->pos[ia], s->pos[ib]);
        return -1;
    }
    if (s->pos[ia] < s->pos[ib]) {
        int cnt = 0;
        for (int j = ib; j != ia; j = s->pred[IDX(s, ia, j)])
            cnt++;
        r->segs = calloc((size_t)cnt, sizeof(mb_tile_seg));
        if (!r->segs) {
            snprintf(err, errlen, "tile: out of memory");
            return -1;
        }
        r->n_segs = cnt;
        int k = cnt;
        for (int j = ib; j != ia; j = s->pred[IDX(s, ia, j)]) {
            int i = s->pred[IDX(s, ia, j)];
            seg_best(s, s->pos[i], s->pos[j], &r->segs[--k]);
            /* tiled segment bytes: scatter and gather on the edge LAN */
            if (r->segs[k].tiled) {
                const mb_graph *g = s->env.g;
                int u0 = s->lv.single[s->pos[i]], u1 = s->lv.single[s->pos[j]];
                mb_split_backprop(g, s->pos[i], s->pos[j], u1, r->segs[k].n_tiles, r->segs[k].tile, s->reg);
                for (int t = 0; t < r->segs[k].n_tiles; t++) {
                    if (r->segs[k].site[t] == s->leader)
                        continue;
                    r->bytes_sent += mb_split_region_bytes(g, u0, s->reg[(size_t)t * s->n + u0]);
                    r->bytes_sent += mb_split_region_bytes(g, u1, r->segs[k].tile[t]);
                }
            }
        }
    }
    return 0;
}

int mb_tile_eval(mb_tile_solver *s, int a, int b, mb_tile_result *out, char *err, size_t errlen)
{
    int ia = pos_index(s, a), ib = pos_index(s, b);
    if (ia < 0 || ib < 0 || ia > ib) {
        snprintf(err, errlen, "tile: boundaries %d,%d are not cut positions in order", a, b);
        return -1;
    }
    return fill_result(s, ia, ib, out, err, errlen);
}

int mb_tile_solve(mb_tile_solver *s, mb_tile_result *out, char *err, size_t errlen)
{
    double best = INFINITY;
    int ba = -1, bb = -1;
    for (int ia = 0; ia < s->P; ia++)
        for (int ib = ia; ib < s->P; ib++) {
            double t = total_ms(s, ia, ib, NULL);
            if (t < best) {
                best = t;
                ba = ia;
                bb = ib;
            }
        }
    if (ba < 0) {
        snprintf(err, errlen, "tile: no feasible boundaries");
        return -1;
    }
    return fill_result(s, ba, bb, out, err, errlen);
}

int mb_tile_adjust(mb_tile_solver *s, int a, int b, mb_tile_result *out, char *err, size_t errlen)
{
    int ia = pos_index(s, a), ib = pos_index(s, b);
    if (ia < 0 || ib < 0 || ia > ib) {
        snprintf(err, errlen, "tile: earlier boundaries %d,%d are not cut positions in order", a, b);
        return -1;
    }
    double best = total_ms(s, ia, ib, NULL);
    int ba = ia, bb = ib;
    for (int da = -1; da <= 1; da++)
        for (int db = -1; db <= 1; db++) {
            int na = ia + da, nb = ib + db;
            if (na < 0 || nb < 0 || na >= s->P || nb >= s->P || na > nb)
                continue;
            double t = total_ms(s, na, nb, NULL);
            if (t < best - 1e-9) {
                best = t;
                ba = na;
                bb = nb;
            }
        }
    return fill_result(s, ba, bb, out, err, errlen);
}

int mb_tile_steps(const mb_tile_env *env, const mb_tile_result *r, mb_split_steps *out)
{
    const mb_graph *g = env->g;
    int n = g->n_nodes, dev = 0, cloud = env->n_edge + 1, L = r->leader;
    mb_split_live lv;
    if (mb_split_live_init(&lv, g) < 0)
        return -1;
    mb_region *regs = malloc(sizeof(mb_region) * (size_t)n * MB_TILE_MAX_EDGE);
    int rc = regs ? 0 : -1;
    for (int v = 0; v < r->a && !rc; v++)
        if (!mb_split_is_free(g, v))
            rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, dev, dev, mb_node_full_region(g, v));
    int at = r->a == r->b ? cloud : L; /* where the part after the device starts */
    if (r->a < n && !rc) {
        int u = lv.single[r->a];
        rc = mb_split_steps_add(out, MB_SPLIT_SEND, u, dev, at, mb_node_full_region(g, u));
    }
    for (int k = 0; k < r->n_segs && !rc; k++) {
        const mb_tile_seg *sg = &r->segs[k];
        if (!sg->tiled) {
            for (int v = sg->q; v < sg->p && !rc; v++)
                if (!mb_split_is_free(g, v))
                    rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, L, L, mb_node_full_region(g, v));
            continue;
        }
        int u0 = lv.single[sg->q], u1 = lv.single[sg->p];
        if (mb_split_backprop(g, sg->q, sg->p, u1, sg->n_tiles, sg->tile, regs) < 0) {
            rc = -1;
            break;
        }
        for (int t = 0; t < sg->n_tiles && !rc; t++) {
            const mb_region *reg = regs + (size_t)t * n;
            int site = sg->site[t];
            if (site != L)
                rc = mb_split_steps_add(out, MB_SPLIT_SEND, u0, L, site, reg[u0]);
            for (int v = sg->q; v < sg->p && !rc; v++)
                if (!mb_split_is_free(g, v) && !mb_region_empty(reg[v]))
                    rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, site, site, reg[v]);
            if (site != L && !rc)
                rc = mb_split_steps_add(out, MB_SPLIT_SEND, u1, site, L, sg->tile[t]);
        }
    }
    if (r->a < r->b && r->b < n && !rc) {
        int u = lv.single[r->b];
        rc = mb_split_steps_add(out, MB_SPLIT_SEND, u, L, cloud, mb_node_full_region(g, u));
    }
    int last = r->a == n ? dev : r->b < n ? cloud : L;
    if (last == cloud)
        for (int v = r->b; v < n && !rc; v++)
            if (!mb_split_is_free(g, v))
                rc = mb_split_steps_add(out, MB_SPLIT_COMPUTE, v, cloud, cloud, mb_node_full_region(g, v));
    if (last != dev)
        for (int o = 0; o < g->n_outputs && !rc; o++)
            rc = mb_split_steps_add(out, MB_SPLIT_SEND, g->outputs[o], last, dev,
                                    mb_node_full_region(g, g->outputs[o]));
    free(regs);
    mb_split_live_free(&lv);
    return rc;
}
