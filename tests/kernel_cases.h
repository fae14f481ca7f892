/* Op-by-op kernel cases shared by the backend tests (test_kernels_cpu.c,
 * test_kernels_cuda.c): graph builders, random tensors, whole and tiled
 * execution, and one test per op family. Each case builds a one-op graph and
 * hands it to check_op(), which the including test defines: it decides which
 * backend is held to the reference and how. KERNEL_CASES_EXTRA_CONV may add
 * conv_spec initialisers to test_conv_shapes (default none). Include after
 * cmocka.h and mecbed/backend.h. */
#ifndef MECBED_TESTS_KERNEL_CASES_H
#define MECBED_TESTS_KERNEL_CASES_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#ifndef KERNEL_CASES_EXTRA_CONV
#define KERNEL_CASES_EXTRA_CONV
#endif

/* ---- graph building ----------------------------------------------------- */

#include "graph_build.h"

/* Finish a graph whose last node is the op under test. */
static mb_graph *finish(mb_graph *g, mb_node *op)
{
    snprintf(op->name, sizeof op->name, "op");
    int i = mb_graph_add(g, op);
    g->outputs[g->n_outputs++] = i;
    char err[512];
    int rc = mb_graph_infer(g, err, sizeof err);
    if (rc)
        fail_msg("graph does not infer: %s", err);
    return g;
}

/* ---- running and comparing ---------------------------------------------- */

static mb_tensor *run_whole(mb_backend *be, const mb_graph *g, int node, mb_tensor **in)
{
    const mb_node *n = &g->nodes[node];
    mb_view v[MB_MAX_INPUTS];
    for (int k = 0; k < n->n_inputs; k++)
        v[k] = mb_view_whole(in[k]);
    mb_tensor *out = mb_tensor_new(n->out_ndim, n->out_dims);
    char err[512] = "";
    int rc = mb_backend_compute(be, g, node, v, mb_node_full_region(g, node), out, err, sizeof err);
    if (rc)
        fail_msg("%s backend failed on %s: %s", mb_backend_name(be), mb_op_name(n->type), err);
    return out;
}

static int bit_equal(const mb_tensor *a, const mb_tensor *b)
{
    return mb_tensor_same_shape(a, b) && !memcmp(a->data, b->data, mb_tensor_bytes(a));
}

static void expect_close(const char *what, const char *op, const mb_tensor *got, const mb_tensor *want)
{
    double d = mb_tensor_max_abs_diff(got, want), s = scale_of(want);
    if (!(d <= TOL * s))
        fail_msg("%s %s: max abs diff %g exceeds %g (scale %g)", op, what, d, TOL * s, s);
}

/* Tile the output with a random grid; each tile's inputs are copies of the
 * region mb_node_input_region names, sometimes grown by a random margin (a
 * view may hold more than needed). Returns the stitched output. */
static mb_tensor *run_tiled(mb_backend *be, const mb_graph *g, int node, mb_tensor **in, int grid_h, int grid_w)
{
    const mb_node *n = &g->nodes[node];
    int64_t H = n->out_dims[2], W = n->out_dims[3];
    if (grid_h > H)
        grid_h = (int)H;
    if (grid_w > W)
        grid_w = (int)W;
    /* random distinct cut points */
    int64_t hc[16], wc[16];
    hc[0] = 0;
    wc[0] = 0;
    for (int i = 1; i < grid_h; i++)
        hc[i] = rnd(hc[i - 1] + 1, H - (grid_h - i));
    for (int i = 1; i < grid_w; i++)
        wc[i] = rnd(wc[i - 1] + 1, W - (grid_w - i));
    hc[grid_h] = H;
    wc[grid_w] = W;
    mb_tensor *out = mb_tensor_new(n->out_ndim, n->out_dims);
    for (int ti = 0; ti < grid_h; ti++)
        for (int tj = 0; tj < grid_w; tj++) {
            mb_region r = {hc[ti], hc[ti + 1], wc[tj], wc[tj + 1]};
            mb_view v[MB_MAX_INPUTS];
            mb_tensor *sub[MB_MAX_INPUTS] = {0};
            for (int k = 0; k < n->n_inputs; k++) {
                if (in[k]->ndim != 4) {
                    v[k] = mb_view_whole(in[k]);
                    continue;
                }
                mb_region need = mb_node_input_region(g, node, k, r);
                int64_t ih = in[k]->dims[2], iw = in[k]->dims[3];
                if (rnd(0, 2) == 0) { /* grow by a margin */
                    need.h0 -= rnd(0, 2);
                    need.w0 -= rnd(0, 2);
                    need.h1 += rnd(0, 2);
                    need.w1 += rnd(0, 2);
                    need.h0 = need.h0 < 0 ? 0 : need.h0;
                    need.w0 = need.w0 < 0 ? 0 : need.w0;
                    need.h1 = need.h1 > ih ? ih : need.h1;
                    need.w1 = need.w1 > iw ? iw : need.w1;
                }
                if (mb_region_empty(need)) /* keep a valid (if unused) view */
                    need = (mb_region){0, 1, 0, 1};
                sub[k] = mb_tensor_new4(in[k]->dims[0], in[k]->dims[1], mb_region_rows(need), mb_region_cols(need));
                mb_view whole = mb_view_whole(in[k]);
                assert_int_equal(mb_tensor_copy_region(&whole, need, sub[k]), 0);
                v[k] = (mb_view){sub[k], need.h0, need.w0, ih, iw};
            }
            mb_tensor *tile = mb_tensor_new4(n->out_dims[0], n->out_dims[1], mb_region_rows(r), mb_region_cols(r));
            char err[512] = "";
            int rc = mb_backend_compute(be, g, node, v, r, tile, err, sizeof err);
            if (rc)
                fail_msg("%s tile [%lld,%lld)x[%lld,%lld) of %s failed: %s", mb_backend_name(be), (long long)r.h0,
                         (long long)r.h1, (long long)r.w0, (long long)r.w1, mb_op_name(n->type), err);
            assert_int_equal(mb_tensor_paste_region(out, r, tile), 0);
            mb_tensor_free(tile);
            for (int k = 0; k < n->n_inputs; k++)
                mb_tensor_free(sub[k]);
        }
    return out;
}

/* Is this node computed through a GEMM (1x1 or im2col + sgemm / cuBLAS)?
 * Its tiles hand the GEMM another shape and may be summed in another order. */
static int gemm_path(const mb_node *n)
{
    if (n->type != MB_OP_CONV)
        return 0;
    const mb_tensor *w = n->params[0];
    return w->dims[1] != 1; /* more than one input channel per group */
}

/* The whole check for the last node of g (defined by the including test). Frees g. */
static void check_op(mb_graph *g, const char *label);

/* ---- convolution -------------------------------------------------------- */

typedef struct conv_spec {
    int n, c, m, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group, bias;
} conv_spec;

/* The Conv node of spec s reading node x, its weights drawn from seed. */
static mb_node conv_node(const conv_spec *s, int x, uint64_t seed)
{
    mb_node op = {.type = MB_OP_CONV, .n_inputs = 1, .inputs = {x}, .n_params = s->bias ? 2 : 1};
    op.params[0] = rand4(s->m, s->c / s->group, s->kh, s->kw, seed);
    if (s->bias)
        op.params[1] = rand1(s->m, seed + 1, -1, 1);
    op.a.stride[0] = s->sh;
    op.a.stride[1] = s->sw;
    op.a.pads[0] = s->pt;
    op.a.pads[1] = s->pl;
    op.a.pads[2] = s->pb;
    op.a.pads[3] = s->pr;
    op.a.dilation[0] = s->dh;
    op.a.dilation[1] = s->dw;
    op.a.group = s->group;
    return op;
}

static mb_graph *conv_graph(const conv_spec *s, uint64_t seed)
{
    mb_graph *g = mb_graph_new("conv");
    int x = add_input4(g, s->n, s->c, s->h, s->w);
    mb_node op = conv_node(s, x, seed);
    return finish(g, &op);
}

static void test_conv_shapes(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 5, 7, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},     /* 3x3 same, odd sizes (tails) */
        {1, 16, 8, 10, 13, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},   /* 1x1 straight to GEMM */
        {2, 16, 24, 7, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},    /* 1x1, batch 2, no bias */
        {1, 12, 8, 11, 10, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1},   /* 1x1 stride 2 (packed) */
        {1, 6, 5, 12, 13, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 1, 1},    /* asymmetric pads, stride 2 */
        {1, 4, 6, 13, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1},    /* dilation 2 */
        {1, 3, 8, 23, 21, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1},    /* 7x7/2 stem */
        {1, 4, 3, 9, 10, 1, 3, 1, 2, 0, 1, 0, 1, 1, 1, 1, 1},     /* 1x3, anisotropic stride */
        {1, 5, 4, 10, 8, 5, 2, 1, 1, 2, 0, 1, 1, 1, 3, 1, 1},     /* 5x2, mixed dilation */
        {1, 8, 6, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},      /* groups 2 */
        {2, 12, 12, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0},    /* groups 3, batch 2 */
        {1, 6, 6, 11, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 1},    /* depthwise 3x3 */
        {1, 6, 6, 12, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6, 1},    /* depthwise 3x3/2 */
        {1, 4, 8, 10, 9, 3, 3, 1, 1, 0, 1, 2, 0, 1, 1, 4, 1},     /* depthwise, multiplier 2, asym pads */
        {1, 5, 5, 14, 12, 5, 5, 1, 1, 4, 4, 4, 4, 2, 2, 5, 0},    /* depthwise 5x5 dilated */
        {2, 3, 3, 6, 5, 3, 3, 3, 2, 2, 2, 1, 0, 1, 1, 3, 1},      /* depthwise stride 3x2 */
        {1, 4, 4, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1},      /* depthwise, image smaller than interior */
        {1, 4, 5, 2, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1},      /* pads larger than the image */
        {1, 512, 8, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},  /* K = 4608: several im2col tiles */
        {1, 64, 40, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* 40 channels: split for 2 threads */
        /* 28 columns and wider: the shifted-GEMM path (narrower tiles fall back to im2col) */
        {1, 6, 10, 9, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* 3x3 same */
        {2, 5, 7, 8, 33, 3, 3, 1, 1, 0, 2, 1, 0, 2, 2, 1, 1},     /* dilated, asymmetric pads, batch 2 */
        {1, 8, 6, 7, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 0},     /* groups 2, no bias */
        {1, 4, 5, 9, 31, 5, 3, 1, 1, 2, 1, 2, 1, 1, 1, 1, 1},     /* 5x3 */
        {1, 3, 4, 6, 29, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},     /* no padding */
        KERNEL_CASES_EXTRA_CONV
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "conv case %zu", i);
        check_op(conv_graph(&specs[i], 10 + i), label);
    }
}

static void test_conv_random(void **state)
{
    (void)state;
    for (int i = 0; i < 30; i++) {
        conv_spec s = {0};
        s.n = (int)rnd(1, 2);
        s.group = (int)(rnd(0, 2) == 0 ? rnd(1, 3) : 1);
        int dw = rnd(0, 3) == 0;
        s.c = s.group * (int)rnd(1, 6);
        s.m = s.group * (int)rnd(1, 5);
        if (dw) {
            s.group = s.c;
            s.m = s.c * (int)rnd(1, 2);
        }
        s.kh = (int)rnd(1, 4);
        s.kw = (int)rnd(1, 4);
        s.sh = (int)rnd(1, 3);
        s.sw = (int)rnd(1, 3);
        s.dh = (int)rnd(1, 2);
        s.dw = (int)rnd(1, 2);
        /* pads stay below the kernel's extent (shape inference refuses more) */
        s.pt = (int)rnd(0, (s.kh - 1) * s.dh);
        s.pl = (int)rnd(0, (s.kw - 1) * s.dw);
        s.pb = (int)rnd(0, (s.kh - 1) * s.dh);
        s.pr = (int)rnd(0, (s.kw - 1) * s.dw);
        s.h = (int)rnd((s.kh - 1) * s.dh + 1, 17);
        s.w = (int)rnd((s.kw - 1) * s.dw + 1, 17);
        s.bias = (int)rnd(0, 1);
        char label[64];
        snprintf(label, sizeof label, "random conv %d", i);
        check_op(conv_graph(&s, 1000 + (uint64_t)i), label);
    }
}

/* ---- pooling ------------------------------------------------------------ */

static mb_graph *pool_graph(mb_op_type t, int c, int h, int w, int kh, int kw, int sh, int sw, const int *pads,
                            int dil, int ceil_mode, int count_pad)
{
    mb_graph *g = mb_graph_new("pool");
    int x = add_input4(g, 2, c, h, w);
    mb_node op = {.type = t, .n_inputs = 1, .inputs = {x}};
    op.a.kernel[0] = kh;
    op.a.kernel[1] = kw;
    op.a.stride[0] = sh;
    op.a.stride[1] = sw;
    for (int i = 0; i < 4; i++)
        op.a.pads[i] = pads[i];
    op.a.dilation[0] = op.a.dilation[1] = dil;
    op.a.ceil_mode = ceil_mode;
    op.a.count_include_pad = count_pad;
    return finish(g, &op);
}

static void test_pooling(void **state)
{
    (void)state;
    static const int p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1}, pa[4] = {0, 1, 1, 0}, p2[4] = {2, 1, 0, 2};
    for (int t = 0; t < 2; t++) {
        mb_op_type ty = t ? MB_OP_AVGPOOL : MB_OP_MAXPOOL;
        const char *nm = t ? "avgpool" : "maxpool";
        char l[64];
        snprintf(l, sizeof l, "%s 3x3/2 p1", nm);
        check_op(pool_graph(ty, 3, 13, 12, 3, 3, 2, 2, p1, 1, 0, 0), l);
        snprintf(l, sizeof l, "%s 2x2/2", nm);
        check_op(pool_graph(ty, 4, 10, 11, 2, 2, 2, 2, p0, 1, 0, 0), l);
        snprintf(l, sizeof l, "%s 3x3/2 ceil", nm);
        check_op(pool_graph(ty, 2, 12, 10, 3, 3, 2, 2, p0, 1, 1, 0), l);
        snprintf(l, sizeof l, "%s asym pads ceil", nm);
        check_op(pool_graph(ty, 2, 11, 9, 3, 2, 2, 3, pa, 1, 1, 0), l);
        snprintf(l, sizeof l, "%s 3x3/1 p1", nm);
        check_op(pool_graph(ty, 3, 9, 9, 3, 3, 1, 1, p1, 1, 0, 0), l);
        if (t) {
            check_op(pool_graph(ty, 3, 9, 10, 3, 3, 1, 1, p1, 1, 0, 1), "avgpool count_include_pad");
            check_op(pool_graph(ty, 2, 11, 9, 3, 2, 2, 3, pa, 1, 1, 1), "avgpool count_include_pad ceil");
            check_op(pool_graph(ty, 2, 12, 13, 4, 3, 2, 2, p2, 1, 0, 1), "avgpool count_include_pad 4x3");
        } else {
            check_op(pool_graph(ty, 2, 12, 13, 3, 3, 1, 1, p2, 2, 0, 0), "maxpool dilated");
        }
    }
}

static void test_global_avgpool(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("gap");
    int x = add_input4(g, 2, 5, 7, 9);
    mb_node op = {.type = MB_OP_GLOBALAVGPOOL, .n_inputs = 1, .inputs = {x}};
    check_op(finish(g, &op), "globalavgpool");
    g = mb_graph_new("gap1");
    x = add_input4(g, 1, 3, 1, 1);
    mb_node op1 = {.type = MB_OP_GLOBALAVGPOOL, .n_inputs = 1, .inputs = {x}};
    check_op(finish(g, &op1), "globalavgpool 1x1");
}

/* ---- elementwise -------------------------------------------------------- */

static void test_unary(void **state)
{
    (void)state;
    static const struct {
        mb_op_type t;
        float alpha, beta;
    } ops[] = {
        {MB_OP_RELU, 0, 0},        {MB_OP_CLIP, 0, 6},         {MB_OP_CLIP, -0.5f, 0.75f},
        {MB_OP_SIGMOID, 0, 0},     {MB_OP_HARDSIGMOID, 0.2f, 0.5f}, {MB_OP_HARDSWISH, 0, 0},
        {MB_OP_LEAKYRELU, 0.1f, 0}, {MB_OP_IDENTITY, 0, 0},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        for (int rank4 = 0; rank4 < 2; rank4++) {
            mb_graph *g = mb_graph_new("unary");
            int x;
            if (rank4) {
                x = add_input4(g, 2, 3, 9, 11);
            } else {
                int64_t d[2] = {3, 1000};
                x = add_input(g, 2, d);
            }
            mb_node op = {.type = ops[i].t, .n_inputs = 1, .inputs = {x}};
            op.a.alpha = ops[i].alpha;
            op.a.beta = ops[i].beta;
            char l[64];
            snprintf(l, sizeof l, "%s rank %d", mb_op_name(ops[i].t), rank4 ? 4 : 2);
            check_op(finish(g, &op), l);
        }
    }
}

static void test_binary(void **state)
{
    (void)state;
    static const mb_op_type ops[] = {MB_OP_ADD, MB_OP_SUB, MB_OP_MUL, MB_OP_DIV};
    /* second operand shapes against x [2, 3, 7, 9] */
    static const int64_t shapes[][5] = {
        /* ndim, dims... */
        {4, 2, 3, 7, 9}, {4, 1, 3, 1, 1}, {3, 3, 1, 1}, {4, 1, 1, 7, 1}, {4, 2, 1, 1, 9}, {1, 9, 0, 0, 0},
        {4, 1, 3, 7, 9}, {2, 7, 9, 0, 0},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int as_param = 0; as_param < 2; as_param++) {
                if (ops[i] == MB_OP_DIV && !as_param)
                    continue; /* random inputs include values near zero */
                mb_graph *g = mb_graph_new("binary");
                int x = add_input4(g, 2, 3, 7, 9);
                int nd = (int)shapes[s][0];
                mb_node op = {.type = ops[i], .n_inputs = 1, .inputs = {x}};
                if (as_param) {
                    op.n_params = 1;
                    /* keep divisors away from zero */
                    op.params[0] = rand_tensor(nd, &shapes[s][1], 77 + s, 0.5f, 2.0f);
                } else {
                    int y = add_input(g, nd, &shapes[s][1]);
                    op.n_inputs = 2;
                    op.inputs[1] = y;
                }
                char l[64];
                snprintf(l, sizeof l, "%s shape %zu %s", mb_op_name(ops[i]), s, as_param ? "param" : "input");
                check_op(finish(g, &op), l);
            }
    /* broadcasting the first operand, and ranks other than 4 */
    mb_graph *g = mb_graph_new("binary2");
    int a = add_input4(g, 1, 3, 1, 1), b = add_input4(g, 2, 3, 5, 6);
    mb_node op = {.type = MB_OP_SUB, .n_inputs = 2, .inputs = {a, b}};
    check_op(finish(g, &op), "Sub broadcast first operand");
    g = mb_graph_new("binary3");
    int64_t d3[3] = {4, 1, 6}, e3[3] = {1, 5, 6};
    a = add_input(g, 3, d3);
    b = add_input(g, 3, e3);
    mb_node op3 = {.type = MB_OP_MUL, .n_inputs = 2, .inputs = {a, b}};
    check_op(finish(g, &op3), "Mul rank 3 both broadcast");
}

static void test_batchnorm(void **state)
{
    (void)state;
    for (int rank = 2; rank <= 4; rank++) {
        mb_graph *g = mb_graph_new("bn");
        int64_t d[4] = {2, 6, 7, 9};
        int x = add_input(g, rank, d);
        mb_node op = {.type = MB_OP_BATCHNORM, .n_inputs = 1, .inputs = {x}, .n_params = 4};
        op.params[0] = rand1(6, 1, 0.5f, 1.5f);
        op.params[1] = rand1(6, 2, -1, 1);
        op.params[2] = rand1(6, 3, -1, 1);
        op.params[3] = rand1(6, 4, 0.1f, 2);
        op.a.epsilon = 1e-5f;
        char l[32];
        snprintf(l, sizeof l, "batchnorm rank %d", rank);
        check_op(finish(g, &op), l);
    }
}

static void test_concat(void **state)
{
    (void)state;
    for (int axis = 0; axis < 4; axis++) {
        mb_graph *g = mb_graph_new("concat");
        int64_t d0[4] = {2, 3, 6, 7}, d1[4] = {2, 3, 6, 7}, d2[4] = {2, 3, 6, 7};
        d1[axis] = 2;
        d2[axis] = 4;
        int a = add_input(g, 4, d0), b = add_input(g, 4, d1), c = add_input(g, 4, d2);
        mb_node op = {.type = MB_OP_CONCAT, .n_inputs = 3, .inputs = {a, b, c}};
        op.a.axis = axis;
        char l[32];
        snprintf(l, sizeof l, "concat axis %d", axis);
        check_op(finish(g, &op), l);
    }
    mb_graph *g = mb_graph_new("concat2");
    int64_t d[2] = {3, 4}, e[2] = {3, 5};
    int a = add_input(g, 2, d), b = add_input(g, 2, e);
    mb_node op = {.type = MB_OP_CONCAT, .n_inputs = 2, .inputs = {a, b}};
    op.a.axis = -1;
    check_op(finish(g, &op), "concat rank 2 axis -1");
}

/* ---- gemm / matmul ------------------------------------------------------ */

static void test_gemm(void **state)
{
    (void)state;
    static const int ms[] = {1, 3, 70};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int cb = 0; cb < 3; cb++) {
                    int64_t M = ms[mi], K = 37, N = 150;
                    mb_graph *g = mb_graph_new("gemm");
                    int64_t ad[2] = {ta ? K : M, ta ? M : K};
                    int x = add_input(g, 2, ad);
                    mb_node op = {.type = MB_OP_GEMM, .n_inputs = 1, .inputs = {x}, .n_params = 1};
                    int64_t bd[2] = {tb ? N : K, tb ? K : N};
                    op.params[0] = rand_tensor(2, bd, 5, -1, 1);
                    if (cb == 1) {
                        op.params[op.n_params++] = rand1(N, 6, -1, 1);
                    } else if (cb == 2) {
                        int64_t cd[2] = {M, 1};
                        op.params[op.n_params++] = rand_tensor(2, cd, 7, -1, 1);
                        op.a.alpha = 0.5f;
                        op.a.beta = 2.0f;
                    }
                    op.a.trans_a = ta;
                    op.a.trans_b = tb;
                    char l[64];
                    snprintf(l, sizeof l, "gemm M=%lld ta=%d tb=%d c=%d", (long long)M, ta, tb, cb);
                    check_op(finish(g, &op), l);
                }
    /* B as a second input */
    mb_graph *g = mb_graph_new("gemm2");
    int64_t ad[2] = {4, 9}, bd[2] = {9, 5};
    int a = add_input(g, 2, ad), b = add_input(g, 2, bd);
    mb_node op = {.type = MB_OP_GEMM, .n_inputs = 2, .inputs = {a, b}};
    check_op(finish(g, &op), "gemm B input");
}

static void test_matmul(void **state)
{
    (void)state;
    static const int64_t cases[][2][5] = {
        /* {ndimA, dims}, {ndimB, dims} */
        {{2, 5, 7}, {2, 7, 9}},
        {{3, 4, 5, 7}, {2, 7, 6}},        /* B shared: one tall GEMM */
        {{3, 4, 5, 7}, {3, 4, 7, 6}},     /* batched */
        {{4, 2, 1, 3, 4}, {3, 3, 4, 5}},  /* broadcast batch dims */
        {{1, 7}, {2, 7, 3}},              /* 1-D left */
        {{3, 2, 3, 7}, {1, 7}},           /* 1-D right */
        {{2, 1, 300}, {2, 300, 80}},      /* a single row: sgemv */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int as_param = 0; as_param < 2; as_param++) {
            mb_graph *g = mb_graph_new("matmul");
            int a = add_input(g, (int)cases[i][0][0], &cases[i][0][1]);
            mb_node op = {.type = MB_OP_MATMUL, .n_inputs = 1, .inputs = {a}};
            if (as_param) {
                op.n_params = 1;
                op.params[0] = rand_tensor((int)cases[i][1][0], &cases[i][1][1], 9, -1, 1);
            } else {
                op.n_inputs = 2;
                op.inputs[1] = add_input(g, (int)cases[i][1][0], &cases[i][1][1]);
            }
            char l[64];
            snprintf(l, sizeof l, "matmul case %zu %s", i, as_param ? "param" : "input");
            check_op(finish(g, &op), l);
        }
}

/* ---- shape ops and delegated ops ---------------------------------------- */

static void test_shape_ops(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("flatten");
    int x = add_input4(g, 2, 3, 4, 5);
    mb_node op = {.type = MB_OP_FLATTEN, .n_inputs = 1, .inputs = {x}};
    op.a.axis = 1;
    check_op(finish(g, &op), "flatten");
    g = mb_graph_new("reshape");
    x = add_input4(g, 2, 3, 4, 5);
    mb_node rs = {.type = MB_OP_RESHAPE, .n_inputs = 1, .inputs = {x}};
    rs.a.shape_ndim = 3;
    rs.a.shape[0] = 0;
    rs.a.shape[1] = -1;
    rs.a.shape[2] = 10;
    check_op(finish(g, &rs), "reshape");
}

#endif
