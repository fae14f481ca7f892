/* The tile-stitching proof. For every spatially local op, over random shapes,
 * (asymmetric) paddings, strides, dilations, groups and tile grids: computing
 * each tile from just the input region mb_node_input_region() names (cut out
 * with mb_tensor_copy_region, handed over as an offset view) and pasting the
 * tiles together reproduces the whole-op output bit for bit. Then the same
 * for fused tiles: random stacks of 2-4 local ops (with skip connections into
 * Add/Mul/Concat), the tile's region walked backwards through the stack, each
 * op computed only on its enlarged region. Any input region that is too small
 * makes the reference kernels fail loudly (they check every in-image read
 * against the view), so a wrong region formula cannot pass unnoticed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/backend.h"
#include "mecbed/graph.h"
#include "mecbed/platform.h"

/* How tiles are compared with the whole output: bit for bit (the default,
 * what make test runs on ref), or, with MECBED_TILE_TOL=rel, within rel times
 * the largest |value| of the whole output, for backends whose kernels
 * re-block by tile size (cpu's sgemm); the worst case seen is printed. */
static double tile_tol;
static double worst_rel;

static int same_output(const float *a, const float *b, int64_t n)
{
    if (tile_tol <= 0)
        return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    double scale = 0, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        /* equal infinities differ by 0 (a max pool window in the padding is -inf) */
        double m = fabs((double)b[i]), d = a[i] == b[i] ? 0 : fabs((double)a[i] - (double)b[i]);
        if (m > scale && m != INFINITY)
            scale = m;
        if (d > diff || d != d)
            diff = d != d ? INFINITY : d;
    }
    double rel = scale > 0 ? diff / scale : diff;
    if (rel > worst_rel)
        worst_rel = rel;
    return rel <= tile_tol;
}

/* ---- random graphs ---------------------------------------------------- */

static int rnd(uint64_t *s, int lo, int hi) /* inclusive */
{
    return lo + (int)(mb_rng_next(s) % (uint64_t)(hi - lo + 1));
}

static float rndf(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * mb_rng_uniform(s);
}

static mb_tensor *rand_tensor(uint64_t *s, int ndim, const int64_t *dims, float lo, float hi)
{
    mb_tensor *t = mb_tensor_new(ndim, dims);
    assert_non_null(t);
    mb_tensor_fill_uniform(t, mb_rng_next(s), lo, hi);
    return t;
}

static int add_input4(mb_graph *g, int64_t n, int64_t c, int64_t h, int64_t w)
{
    mb_node in = {.type = MB_OP_INPUT};
    snprintf(in.name, sizeof in.name, "x%d", g->n_nodes);
    in.a.shape_ndim = 4;
    in.a.shape[0] = n;
    in.a.shape[1] = c;
    in.a.shape[2] = h;
    in.a.shape[3] = w;
    int id = mb_graph_add(g, &in);
    g->n_outputs = 1;
    g->outputs[0] = id;
    char err[256];
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    return id;
}

/* Append n; if shape inference rejects it (e.g. an empty output), drop it
 * again and return -1 so the caller draws other parameters. */
static int try_add(mb_graph *g, mb_node *n)
{
    snprintf(n->name, sizeof n->name, "%s%d", mb_op_name(n->type), g->n_nodes);
    int id = mb_graph_add(g, n);
    assert_true(id >= 0);
    int old_out = g->outputs[0];
    g->n_outputs = 1;
    g->outputs[0] = id;
    char err[256];
    if (mb_graph_infer(g, err, sizeof err) == 0)
        return id;
    for (int k = 0; k < n->n_params; k++)
        mb_tensor_free(g->nodes[id].params[k]);
    g->n_nodes--;
    g->outputs[0] = old_out;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    return -1;
}

enum kind { K_CONV, K_CONVT, K_MAXPOOL, K_AVGPOOL, K_UNARY, K_BN, K_BINARY, K_CONCAT, K_PAD, K_RESIZE, K_COUNT };

static const mb_op_type unary_ops[] = {MB_OP_RELU,      MB_OP_CLIP,      MB_OP_SIGMOID, MB_OP_HARDSIGMOID,
                                       MB_OP_HARDSWISH, MB_OP_LEAKYRELU, MB_OP_IDENTITY};
static const mb_op_type binary_ops[] = {MB_OP_ADD, MB_OP_SUB, MB_OP_MUL, MB_OP_DIV};

static void rand_pads(uint64_t *s, mb_op_attrs *a, int kh, int kw)
{
    a->pads[0] = rnd(s, 0, kh - 1 + 1);
    a->pads[1] = rnd(s, 0, kw - 1 + 1);
    a->pads[2] = rnd(s, 0, kh - 1 + 1);
    a->pads[3] = rnd(s, 0, kw - 1 + 1);
}

/* One random local op of the given kind (sub picks the op within a family,
 * -1: random) consuming node src; may add extra input nodes for second
 * operands. Returns the op's index or -1 (try again). */
static int gen_op(mb_graph *g, uint64_t *s, int kind, int sub, int src)
{
    const mb_node *in = &g->nodes[src];
    int64_t N = in->out_dims[0], C = in->out_dims[1], H = in->out_dims[2], W = in->out_dims[3];
    mb_node n = {.n_inputs = 1, .inputs = {src}};
    mb_op_attrs *a = &n.a;
    switch (kind) {
    case K_CONV: {
        n.type = MB_OP_CONV;
        int divs[8], nd = 0;
        for (int d = 1; d <= C && nd < 8; d++)
            if (C % d == 0)
                divs[nd++] = d;
        int grp = rnd(s, 0, 3) == 0 ? (int)C : divs[rnd(s, 0, nd - 1)]; /* often depthwise */
        int64_t M = grp * rnd(s, 1, 3);
        int kh = rnd(s, 1, 5), kw = rnd(s, 1, 5);
        a->group = grp;
        a->stride[0] = rnd(s, 1, 3);
        a->stride[1] = rnd(s, 1, 3);
        a->dilation[0] = rnd(s, 1, 3);
        a->dilation[1] = rnd(s, 1, 3);
        int ap = rnd(s, 0, 7);
        if (ap < 3)
            a->auto_pad = ap == 0 ? MB_AUTO_PAD_SAME_UPPER : ap == 1 ? MB_AUTO_PAD_SAME_LOWER : MB_AUTO_PAD_VALID;
        else
            rand_pads(s, a, kh, kw);
        n.n_params = rnd(s, 0, 1) ? 2 : 1;
        n.params[0] = rand_tensor(s, 4, (int64_t[]){M, C / grp, kh, kw}, -1, 1);
        if (n.n_params == 2)
            n.params[1] = rand_tensor(s, 1, (int64_t[]){M}, -1, 1);
        break;
    }
    case K_CONVT: {
        n.type = MB_OP_CONV_TRANSPOSE;
        int grp = C % 2 == 0 && rnd(s, 0, 1) ? 2 : 1;
        int64_t Mg = rnd(s, 1, 2);
        int kh = rnd(s, 1, 4), kw = rnd(s, 1, 4);
        a->group = grp;
        for (int ax = 0; ax < 2; ax++) {
            a->stride[ax] = rnd(s, 1, 3);
            a->dilation[ax] = rnd(s, 1, 2);
            int lim = a->stride[ax] > a->dilation[ax] ? a->stride[ax] : a->dilation[ax];
            a->output_padding[ax] = rnd(s, 0, lim - 1);
        }
        rand_pads(s, a, kh, kw);
        n.n_params = rnd(s, 0, 1) ? 2 : 1;
        n.params[0] = rand_tensor(s, 4, (int64_t[]){C, Mg, kh, kw}, -1, 1);
        if (n.n_params == 2)
            n.params[1] = rand_tensor(s, 1, (int64_t[]){Mg * grp}, -1, 1);
        break;
    }
    case K_MAXPOOL:
    case K_AVGPOOL: {
        n.type = kind == K_MAXPOOL ? MB_OP_MAXPOOL : MB_OP_AVGPOOL;
        int kh = rnd(s, 1, 4), kw = rnd(s, 1, 4);
        a->kernel[0] = kh;
        a->kernel[1] = kw;
        a->stride[0] = rnd(s, 1, 3);
        a->stride[1] = rnd(s, 1, 3);
        a->dilation[0] = rnd(s, 1, 2);
        a->dilation[1] = rnd(s, 1, 2);
        a->pads[0] = rnd(s, 0, kh - 1);
        a->pads[1] = rnd(s, 0, kw - 1);
        a->pads[2] = rnd(s, 0, kh - 1);
        a->pads[3] = rnd(s, 0, kw - 1);
        a->ceil_mode = rnd(s, 0, 1);
        a->count_include_pad = rnd(s, 0, 1);
        break;
    }
    case K_UNARY: {
        int nu = (int)(sizeof unary_ops / sizeof unary_ops[0]);
        n.type = unary_ops[sub >= 0 ? sub % nu : rnd(s, 0, nu - 1)];
        a->alpha = rndf(s, -0.5f, 0.3f);
        a->beta = a->alpha + rndf(s, 0.1f, 1.0f);
        if (n.type == MB_OP_LEAKYRELU)
            a->alpha = rndf(s, 0.01f, 0.3f);
        break;
    }
    case K_BN:
        n.type = MB_OP_BATCHNORM;
        n.n_params = 4;
        for (int k = 0; k < 4; k++)
            n.params[k] = rand_tensor(s, 1, (int64_t[]){C}, k == 3 ? 0.1f : -1.0f, 2.0f);
        a->epsilon = 1e-5f;
        break;
    case K_BINARY: {
        int nb = (int)(sizeof binary_ops / sizeof binary_ops[0]);
        n.type = binary_ops[sub >= 0 ? sub % nb : rnd(s, 0, nb - 1)];
        /* the second operand: a parameter or another input, of a shape that
         * broadcasts over H and W only as full size or 1 */
        int64_t shapes[6][4] = {{N, C, H, W}, {1, C, 1, 1}, {1, 1, H, 1}, {N, 1, 1, W}, {1, 1, 1, 1}, {1, C, H, W}};
        int pick = rnd(s, 0, 5);
        float lo = n.type == MB_OP_DIV ? 0.5f : -1.0f;
        if (sub >= 0 && rnd(s, 0, 3) == 0) {
            /* neither operand full size: [1,C,1,W] op [N,1,H,1] -> [N,C,H,W] */
            n.n_inputs = 2;
            n.inputs[0] = add_input4(g, 1, C, 1, W);
            n.inputs[1] = add_input4(g, N, 1, H, 1);
        } else if (rnd(s, 0, 1)) {
            n.n_params = 1;
            if (pick == 1 && rnd(s, 0, 1)) /* lower rank: [C,1,1] */
                n.params[0] = rand_tensor(s, 3, (int64_t[]){C, 1, 1}, lo, 2.0f);
            else
                n.params[0] = rand_tensor(s, 4, shapes[pick], lo, 2.0f);
        } else {
            int other = add_input4(g, shapes[pick][0], shapes[pick][1], shapes[pick][2], shapes[pick][3]);
            n.n_inputs = 2;
            /* either order: the broadcasting operand may come first */
            int first = rnd(s, 0, 1) && pick != 0 ? other : src;
            n.inputs[0] = first;
            n.inputs[1] = first == src ? other : src;
        }
        break;
    }
    case K_CONCAT: {
        n.type = MB_OP_CONCAT;
        a->axis = rnd(s, 0, 1) ? 1 : -3;
        int extra = rnd(s, 1, 2);
        for (int k = 0; k < extra; k++)
            n.inputs[n.n_inputs++] = add_input4(g, N, rnd(s, 1, 3), H, W);
        /* shuffle where src sits */
        int pos = rnd(s, 0, n.n_inputs - 1);
        int t = n.inputs[pos];
        n.inputs[pos] = n.inputs[0];
        n.inputs[0] = t;
        break;
    }
    case K_PAD:
        n.type = MB_OP_PAD;
        a->pad_mode = MB_PAD_CONSTANT;
        a->pad_value = rndf(s, -1, 1);
        a->pad_amounts[2] = rnd(s, 0, 3);
        a->pad_amounts[3] = rnd(s, 0, 3);
        a->pad_amounts[6] = rnd(s, 0, 3);
        a->pad_amounts[7] = rnd(s, 0, 3);
        break;
    case K_RESIZE: {
        static const float scales[] = {0.5f, 0.6f, 0.75f, 1.0f, 1.5f, 2.0f, 2.5f, 3.0f};
        n.type = MB_OP_RESIZE;
        a->resize_mode = sub >= 0 ? sub % 2 : rnd(s, 0, 1);
        a->coord_mode = rnd(s, 0, 4);
        a->nearest_mode = rnd(s, 0, 3);
        a->scales[0] = a->scales[1] = 1.0f;
        a->scales[2] = scales[rnd(s, 0, 7)];
        a->scales[3] = scales[rnd(s, 0, 7)];
        break;
    }
    default:
        fail();
    }
    return try_add(g, &n);
}

/* ---- evaluation --------------------------------------------------------- */

/* Every node's whole output (inputs get seeded random values). */
static mb_tensor **eval_whole(mb_backend *be, const mb_graph *g, uint64_t seed)
{
    mb_tensor **val = calloc((size_t)g->n_nodes, sizeof *val);
    mb_view *v = calloc(MB_MAX_INPUTS, sizeof *v);
    assert_non_null(val);
    assert_non_null(v);
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        if (n->type == MB_OP_INPUT) {
            val[i] = mb_tensor_new(n->out_ndim, n->out_dims);
            assert_non_null(val[i]);
            mb_tensor_fill_uniform(val[i], seed * 1000 + (uint64_t)i, 0.5f, 2.0f);
            /* mix signs without hitting zero (Div) */
            for (int64_t j = 0; j < mb_tensor_numel(val[i]); j += 3)
                val[i]->data[j] = -val[i]->data[j];
            continue;
        }
        for (int k = 0; k < n->n_inputs; k++)
            v[k] = mb_view_whole(val[n->inputs[k]]);
        val[i] = mb_tensor_new(n->out_ndim, n->out_dims);
        assert_non_null(val[i]);
        char err[512] = "";
        int rc = mb_backend_compute(be, g, i, v, mb_node_full_region(g, i), val[i], err, sizeof err);
        if (rc)
            print_error("whole %s: %s\n", n->name, err);
        assert_int_equal(rc, 0);
    }
    free(v);
    return val;
}

static void free_vals(mb_tensor **val, int n)
{
    for (int i = 0; i < n; i++)
        mb_tensor_free(val[i]);
    free(val);
}

static mb_region hull(mb_region a, mb_region b)
{
    if (mb_region_empty(a))
        return b;
    if (mb_region_empty(b))
        return a;
    mb_region r = {a.h0 < b.h0 ? a.h0 : b.h0, a.h1 > b.h1 ? a.h1 : b.h1, a.w0 < b.w0 ? a.w0 : b.w0,
                   a.w1 > b.w1 ? a.w1 : b.w1};
    return r;
}

static char *describe(const mb_graph *g, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < g->n_nodes && o < len; i++) {
        const mb_node *n = &g->nodes[i];
        const mb_op_attrs *a = &n->a;
        o += (size_t)snprintf(buf + o, len - o,
                              "  [%d] %s in(", i, mb_op_name(n->type));
        for (int k = 0; k < n->n_inputs && o < len; k++)
            o += (size_t)snprintf(buf + o, len - o, "%s%d", k ? "," : "", n->inputs[k]);
        if (o < len)
            o += (size_t)snprintf(buf + o, len - o,
                                  ") out %lldx%lldx%lldx%lld k%dx%d s%d,%d d%d,%d p%d,%d,%d,%d g%d ceil%d cip%d "
                                  "op%d,%d scales %g,%g mode %d coord %d nearest %d\n",
                                  (long long)n->out_dims[0], (long long)n->out_dims[1], (long long)n->out_dims[2],
                                  (long long)n->out_dims[3], a->kernel[0], a->kernel[1], a->stride[0], a->stride[1],
                                  a->dilation[0], a->dilation[1], a->pads[0], a->pads[1], a->pads[2], a->pads[3],
                                  a->group, a->ceil_mode, a->count_include_pad, a->output_padding[0],
                                  a->output_padding[1], a->scales[2], a->scales[3], a->resize_mode, a->coord_mode,
                                  a->nearest_mode);
    }
    return buf;
}

/* Compute tile r of node out from the whole values of the graph's inputs
 * only: walk the region backwards (a node's region is the hull of what its
 * consumers need), then compute forwards, each node on its own region from
 * offset views of its producers' tiles. */
static mb_tensor *compute_tile(mb_backend *be, const mb_graph *g, mb_tensor **whole, int out, mb_region r, char *err,
                               size_t errlen)
{
    int nn = out + 1;
    mb_region *need = calloc((size_t)nn, sizeof *need);
    char *set = calloc((size_t)nn, 1);
    mb_tensor **tile = calloc((size_t)nn, sizeof *tile);
    mb_view *views = calloc((size_t)nn, sizeof *views);
    mb_view *v = calloc(MB_MAX_INPUTS, sizeof *v);
    assert_true(need && set && tile && views && v);
    need[out] = r;
    set[out] = 1;
    for (int i = out; i >= 0; i--) {
        if (!set[i])
            continue;
        const mb_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int p = n->inputs[k];
            mb_region in_r = mb_node_input_region(g, i, k, need[i]);
            need[p] = set[p] ? hull(need[p], in_r) : in_r;
            set[p] = 1;
        }
    }
    mb_tensor *result = NULL;
    for (int i = 0; i <= out; i++) {
        if (!set[i])
            continue;
        const mb_node *n = &g->nodes[i];
        mb_region ri = need[i];
        const mb_node *full = n;
        if (n->type == MB_OP_INPUT) {
            /* what a tile worker receives: just its region of the input */
            mb_view wv = mb_view_whole(whole[i]);
            tile[i] = mb_tensor_new4(full->out_dims[0], full->out_dims[1], mb_region_rows(ri), mb_region_cols(ri));
            assert_non_null(tile[i]);
            if (mb_tensor_copy_region(&wv, ri, tile[i])) {
                snprintf(err, errlen, "copy_region of input %d failed for rows [%lld,%lld) cols [%lld,%lld)", i,
                         (long long)ri.h0, (long long)ri.h1, (long long)ri.w0, (long long)ri.w1);
                goto done;
            }
        } else {
            for (int k = 0; k < n->n_inputs; k++)
                v[k] = views[n->inputs[k]];
            tile[i] = mb_tensor_new4(full->out_dims[0], full->out_dims[1], mb_region_rows(ri), mb_region_cols(ri));
            assert_non_null(tile[i]);
            if (mb_backend_compute(be, g, i, v, ri, tile[i], err, errlen))
                goto done;
        }
        views[i] = (mb_view){tile[i], ri.h0, ri.w0, full->out_dims[2], full->out_dims[3]};
    }
    result = tile[out];
    tile[out] = NULL;
done:
    for (int i = 0; i < nn; i++)
        mb_tensor_free(tile[i]);
    free(need);
    free(set);
    free(tile);
    free(views);
    free(v);
    return result;
}

/* Random cut points: k parts of [0,len), each non-empty. */
static int cuts(uint64_t *s, int64_t len, int maxparts, int64_t *at)
{
    int parts = rnd(s, 1, maxparts);
    if (parts > len)
        parts = (int)len;
    at[0] = 0;
    at[parts] = len;
    /* choose parts-1 distinct interior points, sorted */
    for (int k = 1; k < parts; k++) {
        int64_t c;
        int dup;
        do {
            c = rnd(s, 1, (int)len - 1);
            dup = 0;
            for (int j = 1; j < k; j++)
                dup |= at[j] == c;
        } while (dup);
        at[k] = c;
    }
    for (int i = 1; i < parts; i++)
        for (int j = i + 1; j < parts; j++)
            if (at[j] < at[i]) {
                int64_t t = at[i];
                at[i] = at[j];
                at[j] = t;
            }
    return parts;
}

/* Stitch node out from a random grid of tiles and compare bit for bit. */
static void check_tiles(mb_backend *be, const mb_graph *g, int out, uint64_t *s, uint64_t seed, int *n_tiles)
{
    mb_tensor **whole = eval_whole(be, g, seed);
    const mb_node *n = &g->nodes[out];
    mb_tensor *stitched = mb_tensor_new(n->out_ndim, n->out_dims);
    assert_non_null(stitched);
    /* poison: every element must be written by some tile */
    for (int64_t i = 0; i < mb_tensor_numel(stitched); i++)
        stitched->data[i] = 12345.678f;
    int64_t hc[6], wc[6];
    int nh = cuts(s, n->out_dims[2], 4, hc), nw = cuts(s, n->out_dims[3], 4, wc);
    for (int a = 0; a < nh; a++)
        for (int b = 0; b < nw; b++) {
            mb_region r = {hc[a], hc[a + 1], wc[b], wc[b + 1]};
            char err[512] = "";
            mb_tensor *t = compute_tile(be, g, whole, out, r, err, sizeof err);
            if (!t) {
                char desc[4096];
                print_error("tile rows [%lld,%lld) cols [%lld,%lld) failed: %s\n%s", (long long)r.h0,
                            (long long)r.h1, (long long)r.w0, (long long)r.w1, err, describe(g, desc, sizeof desc));
                fail();
            }
            assert_int_equal(mb_tensor_paste_region(stitched, r, t), 0);
            mb_tensor_free(t);
            (*n_tiles)++;
        }
    if (!same_output(stitched->data, whole[out]->data, mb_tensor_numel(stitched))) {
        char desc[4096];
        int64_t bad = 0;
        for (int64_t i = 0; i < mb_tensor_numel(stitched); i++)
            if (memcmp(&stitched->data[i], &whole[out]->data[i], sizeof(float))) {
                bad = i;
                break;
            }
        print_error("stitched output differs from the whole output (first at element %lld: %.9g vs %.9g), "
                    "grid %dx%d\n%s",
                    (long long)bad, stitched->data[bad], whole[out]->data[bad], nh, nw,
                    describe(g, desc, sizeof desc));
        fail();
    }
    mb_tensor_free(stitched);
    free_vals(whole, g->n_nodes);
}

/* An input view one row or column short of what mb_node_input_region names
 * must either be refused (the kernel needed that row) or give the very same
 * tile (the row was not read: the region over-approximates); never a
 * different answer. Counts refusals and over-approximations. */
static void check_shrunk(mb_backend *be, const mb_graph *g, int id, uint64_t *s, uint64_t seed, int *refused,
                         int *slack)
{
    mb_tensor **whole = eval_whole(be, g, seed);
    const mb_node *n = &g->nodes[id];
    int64_t hc[6], wc[6];
    int nh = cuts(s, n->out_dims[2], 3, hc), nw = cuts(s, n->out_dims[3], 3, wc);
    int a = rnd(s, 0, nh - 1), b = rnd(s, 0, nw - 1);
    mb_region r = {hc[a], hc[a + 1], wc[b], wc[b + 1]};
    mb_region in_r[MB_MAX_INPUTS];
    mb_tensor *sub[MB_MAX_INPUTS] = {NULL};
    mb_view v[MB_MAX_INPUTS];
    for (int k = 0; k < n->n_inputs; k++)
        in_r[k] = mb_node_input_region(g, id, k, r);
    mb_tensor *good = mb_tensor_new4(n->out_dims[0], n->out_dims[1], mb_region_rows(r), mb_region_cols(r));
    mb_tensor *try = mb_tensor_new4(n->out_dims[0], n->out_dims[1], mb_region_rows(r), mb_region_cols(r));
    assert_true(good && try);
    for (int side = -1; side < 4; side++)
        for (int shrink_k = 0; shrink_k < n->n_inputs; shrink_k++) {
            int skip = 0;
            for (int k = 0; k < n->n_inputs; k++) {
                const mb_node *src = &g->nodes[n->inputs[k]];
                mb_region q = in_r[k];
                if (k == shrink_k && side >= 0 &&
                    (side < 2 ? mb_region_rows(q) : mb_region_cols(q)) == 0)
                    skip = 1; /* nothing to take away */
                if (k == shrink_k && side >= 0 && !skip) {
                    if (side == 0)
                        q.h0++;
                    if (side == 1)
                        q.h1--;
                    if (side == 2)
                        q.w0++;
                    if (side == 3)
                        q.w1--;
                }
                if (q.h1 < q.h0)
                    q.h1 = q.h0;
                if (q.w1 < q.w0)
                    q.w1 = q.w0;
                mb_view wv = mb_view_whole(whole[n->inputs[k]]);
                sub[k] = mb_tensor_new4(src->out_dims[0], src->out_dims[1], mb_region_rows(q), mb_region_cols(q));
                assert_non_null(sub[k]);
                assert_int_equal(mb_tensor_copy_region(&wv, q, sub[k]), 0);
                v[k] = (mb_view){sub[k], q.h0, q.w0, src->out_dims[2], src->out_dims[3]};
            }
            char err[512] = "";
            int rc = skip ? 0 : mb_backend_compute(be, g, id, v, r, side < 0 ? good : try, err, sizeof err);
            if (skip) {
                /* nothing tried */
            } else if (side < 0) {
                if (rc)
                    print_error("%s\n", err);
                assert_int_equal(rc, 0);
            } else if (rc) {
                (*refused)++;
            } else {
                assert_true(same_output(try->data, good->data, mb_tensor_numel(good)));
                (*slack)++;
            }
            for (int k = 0; k < n->n_inputs; k++)
                mb_tensor_free(sub[k]);
            if (side < 0)
                break;
        }
    mb_tensor_free(good);
    mb_tensor_free(try);
    free_vals(whole, g->n_nodes);
}

/* ---- tests -------------------------------------------------------------- */

/* MECBED_TILE_SEED=n draws other random cases (for fuzzing beyond the fixed
 * default set that `make test` runs). */
static uint64_t seed_base;

/* The backend under test: ref, or MECBED_TILE_BACKEND=cpu|cuda to hold
 * another backend to the same bit-exact standard (by hand; make test runs
 * ref, whose kernels are bit-exact by construction). */
static mb_backend *tile_backend(void)
{
    const char *name = getenv("MECBED_TILE_BACKEND");
    char err[256] = "";
    mb_backend *be = mb_backend_new(name && *name ? name : "ref", 1, err, sizeof err);
    if (!be)
        print_error("%s\n", err);
    assert_non_null(be);
    return be;
}

/* Each local op family (each unary and binary op, both resize modes). */
static void test_single_ops(void **state)
{
    (void)state;
    mb_backend *be = tile_backend();
    assert_non_null(be);
    struct {
        int kind, subs;
    } fams[] = {{K_CONV, 1},   {K_CONVT, 1}, {K_MAXPOOL, 1}, {K_AVGPOOL, 1}, {K_UNARY, 7},
                {K_BN, 1},     {K_BINARY, 4}, {K_CONCAT, 1}, {K_PAD, 1},     {K_RESIZE, 2}};
    uint64_t s = 0x5eed ^ seed_base;
    int trials = 0, tiles = 0, all_refused = 0, all_slack = 0;
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
        for (int sub = 0; sub < fams[f].subs; sub++) {
            int refused = 0, slack = 0;
            int per = fams[f].kind == K_CONV || fams[f].kind == K_CONVT || fams[f].kind == K_RESIZE ? 60 : 25;
            for (int t = 0; t < per; t++) {
                mb_graph *g = mb_graph_new("tile");
                int x = add_input4(g, rnd(&s, 1, 2), rnd(&s, 1, 6), rnd(&s, 1, 13), rnd(&s, 1, 13));
                int id = -1;
                for (int tries = 0; tries < 50 && id < 0; tries++)
                    id = gen_op(g, &s, fams[f].kind, sub, x);
                assert_true(id >= 0);
                assert_true(g->nodes[id].local);
                check_tiles(be, g, id, &s, (uint64_t)trials, &tiles);
                check_shrunk(be, g, id, &s, (uint64_t)trials, &refused, &slack);
                trials++;
                mb_graph_free(g);
            }
            /* every family's kernel refuses a view that lacks a row it reads */
            if (refused == 0)
                print_error("kind %d/%d: a short view was never refused\n", fams[f].kind, sub);
            assert_true(refused > 0);
            if (slack)
                print_message("  kind %d/%d: %d of %d short views were not needed (region over-approximates)\n",
                              fams[f].kind, sub, slack, slack + refused);
            all_refused += refused;
            all_slack += slack;
        }
    print_message("single ops: %d graphs, %d tiles, all %s; views one row/column short: %d refused, "
                  "%d not needed (region over-approximates, same result)\n",
                  trials, tiles, tile_tol > 0 ? "within tolerance" : "bit-exact", all_refused, all_slack);
    mb_backend_free(be);
}

/* Fused tiles through stacks of 2-4 local ops, with skip connections. */
static void test_fused_chains(void **state)
{
    (void)state;
    mb_backend *be = tile_backend();
    assert_non_null(be);
    uint64_t s = 0xc4a1 ^ seed_base;
    int tiles = 0, chains = 0;
    for (int t = 0; t < 200; t++) {
        mb_graph *g = mb_graph_new("chain");
        int x = add_input4(g, rnd(&s, 1, 2), rnd(&s, 1, 4), rnd(&s, 4, 16), rnd(&s, 4, 16));
        int len = rnd(&s, 2, 4), last = x, made = 0;
        for (int k = 0; k < len; k++) {
            int id = -1;
            /* a skip connection: combine with an earlier node of the same shape */
            if (k > 0 && rnd(&s, 0, 2) == 0) {
                const mb_node *L = &g->nodes[last];
                for (int e = 0; e < last && id < 0; e++) {
                    const mb_node *E = &g->nodes[e];
                    if (E->out_ndim != 4 || memcmp(E->out_dims, L->out_dims, sizeof(int64_t) * 2) ||
                        E->out_dims[2] != L->out_dims[2] || E->out_dims[3] != L->out_dims[3] || e == last)
                        continue;
                    mb_node j = {.type = rnd(&s, 0, 1) ? MB_OP_ADD : MB_OP_MUL, .n_inputs = 2, .inputs = {last, e}};
                    if (rnd(&s, 0, 1)) {
                        j.type = MB_OP_CONCAT;
                        j.a.axis = 1;
                    }
                    id = try_add(g, &j);
                }
            }
            for (int tries = 0; tries < 50 && id < 0; tries++) {
                int kind = rnd(&s, 0, K_COUNT - 1);
                /* keep chains from blowing up: at most one upsampler */
                if ((kind == K_CONVT || kind == K_RESIZE) && g->nodes[last].out_dims[2] > 20)
                    continue;
                id = gen_op(g, &s, kind, -1, last);
            }
            if (id < 0)
                break;
            last = id;
            made++;
        }
        if (made < 2) {
            mb_graph_free(g);
            continue;
        }
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].type != MB_OP_INPUT)
                assert_true(g->nodes[i].local);
        check_tiles(be, g, last, &s, (uint64_t)t, &tiles);
        chains++;
        mb_graph_free(g);
    }
    assert_true(chains >= 150);
    print_message("fused chains: %d stacks, %d tiles, all %s\n", chains, tiles, tile_tol > 0 ? "within tolerance" : "bit-exact");
    if (tile_tol > 0)
        print_message("worst relative difference tile vs whole so far: %.3g\n", worst_rel);
    mb_backend_free(be);
}

/* A hand-made case that names the formula: 3x3 conv, stride 2, pad 1, and a
 * 2x2 max pool after it; the bottom-right tile of the pool needs exactly the
 * input rows and columns the NOTES formula gives. */
static void test_region_walk_known(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("known");
    int x = add_input4(g, 1, 1, 16, 16);
    mb_node c = {.type = MB_OP_CONV, .n_inputs = 1, .inputs = {x}, .n_params = 1};
    c.params[0] = mb_tensor_new4(1, 1, 3, 3);
    c.a.stride[0] = c.a.stride[1] = 2;
    c.a.pads[0] = c.a.pads[1] = c.a.pads[2] = c.a.pads[3] = 1;
    int conv = try_add(g, &c);
    assert_true(conv >= 0);
    mb_node p = {.type = MB_OP_MAXPOOL, .n_inputs = 1, .inputs = {conv}};
    p.a.kernel[0] = p.a.kernel[1] = 2;
    p.a.stride[0] = p.a.stride[1] = 2;
    int pool = try_add(g, &p);
    assert_true(pool >= 0);
    assert_int_equal(g->nodes[pool].out_dims[2], 4);
    /* pool rows [2,4) <- conv rows [4,8) <- input rows [4*2-1, 7*2-1+2+1) = [7,16) */
    mb_region r = {2, 4, 2, 4};
    mb_region rc = mb_node_input_region(g, pool, 0, r);
    assert_int_equal(rc.h0, 4);
    assert_int_equal(rc.h1, 8);
    mb_region rx = mb_node_input_region(g, conv, 0, rc);
    assert_int_equal(rx.h0, 7);
    assert_int_equal(rx.h1, 16);
    assert_int_equal(rx.w0, 7);
    assert_int_equal(rx.w1, 16);
    /* the top-left tile: rows [0,1) of conv need input rows [-1,2) clipped to [0,2) */
    mb_region r0 = mb_node_input_region(g, conv, 0, (mb_region){0, 1, 0, 1});
    assert_int_equal(r0.h0, 0);
    assert_int_equal(r0.h1, 2);
    mb_graph_free(g);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const char *tol = getenv("MECBED_TILE_TOL");
    if (tol)
        tile_tol = strtod(tol, NULL);
    const char *seed = getenv("MECBED_TILE_SEED");
    if (seed)
        seed_base = strtoull(seed, NULL, 0) * 0x9E3779B97F4A7C15ull;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_walk_known),
        cmocka_unit_test(test_single_ops),
        cmocka_unit_test(test_fused_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
