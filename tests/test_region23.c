/* Regions of 2-D/3-D tensors (transformer activations): for every op of
 * DeiT-Tiny's first block and BERT-base's (and a few hand-made cases:
 * transposed Gemm operands, a batched MatMul with a broadcast operand, a
 * Reshape merging heads at unaligned columns), computing random regions
 * (token rows, feature or head columns, both) gives the elements of the
 * whole op's output (bit-exact on ref; on cpu within 1e-5 of the output's
 * scale, as GEMM blocking differs); the region mapping
 * says which input regions that needs, and the request is refused when a
 * view lacks them. Also the region copy/paste helpers on ranks 2 and 3. */
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
#include "mecbed/model.h"

/* Random input tensors of node v's inputs (full size). */
static void make_inputs(const mb_graph *g, int v, mb_tensor **in, uint64_t seed)
{
    const mb_node *n = &g->nodes[v];
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *s = &g->nodes[n->inputs[k]];
        in[k] = mb_tensor_new(s->out_ndim, s->out_dims);
        assert_non_null(in[k]);
        mb_tensor_fill_uniform(in[k], seed + (uint64_t)k, -2.0f, 2.0f);
    }
}

static mb_region random_region(mb_region full, uint64_t *st)
{
    mb_region r = full;
    int64_t H = full.h1, W = full.w1;
    int mode = (int)(mb_rng_next(st) % 3); /* rows, columns, both */
    if (mode != 1 && H > 1) {
        r.h0 = (int64_t)(mb_rng_next(st) % (uint64_t)H);
        r.h1 = r.h0 + 1 + (int64_t)(mb_rng_next(st) % (uint64_t)(H - r.h0));
    }
    if (mode != 0 && W > 1) {
        r.w0 = (int64_t)(mb_rng_next(st) % (uint64_t)W);
        r.w1 = r.w0 + 1 + (int64_t)(mb_rng_next(st) % (uint64_t)(W - r.w0));
    }
    return r;
}

/* Region r of node v on backend be equals the same elements of the whole op. */
static int check_region(mb_backend *be, const mb_graph *g, int v, mb_tensor **in, const mb_tensor *whole,
                        mb_region r)
{
    const mb_node *n = &g->nodes[v];
    mb_view views[MB_MAX_INPUTS];
    for (int k = 0; k < n->n_inputs; k++)
        views[k] = mb_view_whole(in[k]);
    int64_t dims[MB_MAX_DIMS];
    mb_region_box_dims(n->out_ndim, n->out_dims, r, dims);
    mb_tensor *part = mb_tensor_new(n->out_ndim, dims), *ref = mb_tensor_new(n->out_ndim, dims);
    char err[512];
    if (mb_backend_compute(be, g, v, views, r, part, err, sizeof err))
        fail_msg("%s on %s, region [%lld,%lld)x[%lld,%lld): %s", n->name, mb_backend_name(be), (long long)r.h0,
                 (long long)r.h1, (long long)r.w0, (long long)r.w1, err);
    mb_view wv = mb_view_whole(whole);
    assert_int_equal(mb_tensor_copy_region(&wv, r, ref), 0);
    /* ref: bit-exact. cpu: OpenBLAS blocks a GEMM of other sizes differently
     * (sgemv for one row, other tails), which changes summation order: the
     * project's tolerance, 1e-5 of the output's scale */
    double d = mb_tensor_max_abs_diff(part, ref), scale = 1.0;
    for (int64_t i = 0; i < mb_tensor_numel(whole); i++)
        scale = fmax(scale, fabs((double)whole->data[i]));
    double tol = strcmp(mb_backend_name(be), "ref") ? 1e-5 * scale : 0.0;
    if (!(d <= tol))
        fail_msg("%s on %s, region [%lld,%lld)x[%lld,%lld): max abs diff %g from the whole op (allowed %g)", n->name,
                 mb_backend_name(be), (long long)r.h0, (long long)r.h1, (long long)r.w0, (long long)r.w1, d, tol);
    mb_tensor_free(part);
    mb_tensor_free(ref);
    return 1;
}

/* Every local op with a 2-D/3-D output among nodes [lo, hi) of g. */
static int check_ops(const mb_graph *g, int lo, int hi, int per_op)
{
    char err[256];
    int checked = 0;
    for (int bi = 0; bi < 2; bi++) {
        mb_backend *be = mb_backend_new(bi ? "cpu" : "ref", 2, err, sizeof err);
        assert_non_null(be);
        for (int v = lo; v < hi && v < g->n_nodes; v++) {
            const mb_node *n = &g->nodes[v];
            if (!n->local || (n->out_ndim != 2 && n->out_ndim != 3))
                continue;
            mb_tensor *in[MB_MAX_INPUTS] = {0};
            make_inputs(g, v, in, 1000u + (uint64_t)v);
            mb_view views[MB_MAX_INPUTS];
            for (int k = 0; k < n->n_inputs; k++)
                views[k] = mb_view_whole(in[k]);
            mb_tensor *whole = mb_tensor_new(n->out_ndim, n->out_dims);
            if (mb_backend_compute(be, g, v, views, mb_node_full_region(g, v), whole, err, sizeof err))
                fail_msg("%s: %s", n->name, err);
            uint64_t st = 77u + (uint64_t)v;
            for (int t = 0; t < per_op; t++)
                checked += check_region(be, g, v, in, whole, random_region(mb_node_full_region(g, v), &st));
            mb_tensor_free(whole);
            for (int k = 0; k < n->n_inputs; k++)
                mb_tensor_free(in[k]);
        }
        mb_backend_free(be);
    }
    return checked;
}

static void test_zoo_blocks(void **state)
{
    (void)state;
    const char *models[] = {"deit_tiny", "bert_base"};
    for (int i = 0; i < 2; i++) {
        char err[256];
        mb_graph *g = mb_zoo_build(models[i], 1, err, sizeof err);
        assert_non_null(g);
        int first = mb_graph_find(g, i ? "blocks.0.attn.q" : "blocks.0.norm1");
        int end = mb_graph_find(g, i ? "blocks.1.attn.q" : "blocks.1.norm1");
        assert_true(first > 0 && end > first);
        /* the ops that must be splittable for head and token parallelism */
        const char *must[] = {"blocks.0.attn.q", "blocks.0.attn.q_split", "blocks.0.attn.k_heads", "blocks.0.attn.scores",
                              "blocks.0.attn.softmax", "blocks.0.attn.context", "blocks.0.attn.merge",
                              "blocks.0.attn.concat", "blocks.0.attn.proj"};
        for (size_t k = 0; k < sizeof must / sizeof *must; k++) {
            int v = mb_graph_find(g, must[k]);
            assert_true(v >= 0);
            if (!g->nodes[v].local)
                fail_msg("%s: %s is not local", models[i], must[k]);
        }
        int n = check_ops(g, first, end, 6);
        assert_true(n >= 6 * 2 * 15);
        mb_graph_free(g);
    }
}

static int add(mb_graph *g, const char *name, mb_op_type t, int x, int y)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "%s", name);
    n.type = t;
    n.inputs[0] = x;
    n.inputs[1] = y;
    n.n_inputs = x < 0 ? 0 : y < 0 ? 1 : 2;
    return mb_graph_add(g, &n);
}

static int input(mb_graph *g, const char *name, int nd, const int64_t *dims)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "%s", name);
    n.type = MB_OP_INPUT;
    n.a.shape_ndim = nd;
    memcpy(n.a.shape, dims, sizeof(int64_t) * (size_t)nd);
    return mb_graph_add(g, &n);
}

/* Gemm with transposed A and B as data inputs, a bias [1, N]; a batched
 * MatMul with a 2-D right operand; a Reshape merging 4 heads of 5. */
static void test_handmade(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("handmade");
    int a = input(g, "a", 2, (int64_t[]){7, 9});   /* A^T: [K=7, M=9] */
    int b = input(g, "b", 2, (int64_t[]){11, 7});  /* B^T: [N=11, K=7] */
    int gm = add(g, "gemm", MB_OP_GEMM, a, b);
    g->nodes[gm].a.trans_a = g->nodes[gm].a.trans_b = 1;
    g->nodes[gm].a.alpha = 0.5f;
    g->nodes[gm].a.beta = 1.0f;
    g->nodes[gm].params[0] = mb_tensor_new(2, (int64_t[]){1, 11});
    mb_tensor_fill_uniform(g->nodes[gm].params[0], 5, -1, 1);
    g->nodes[gm].n_params = 1;
    int x = input(g, "x", 3, (int64_t[]){4, 6, 5});
    int w = input(g, "w", 2, (int64_t[]){5, 8});
    add(g, "bmm", MB_OP_MATMUL, x, w);
    int y = input(g, "y", 3, (int64_t[]){6, 4, 5});
    int rs = add(g, "merge", MB_OP_RESHAPE, y, -1);
    g->nodes[rs].a.shape_ndim = 2;
    g->nodes[rs].a.shape[0] = 6;
    g->nodes[rs].a.shape[1] = 20;
    int sm = add(g, "softmax_rows", MB_OP_SOFTMAX, rs, -1);
    g->nodes[sm].a.axis = 1;
    g->outputs[0] = sm;
    g->n_outputs = 1;
    char err[256];
    if (mb_graph_infer(g, err, sizeof err))
        fail_msg("%s", err);
    for (int v = 0; v < g->n_nodes; v++)
        if (g->nodes[v].type != MB_OP_INPUT && !g->nodes[v].local)
            fail_msg("%s is not local", g->nodes[v].name);
    /* region mapping: columns of the merge need whole heads; the softmax whole rows */
    mb_region need = mb_node_input_region(g, rs, 0, (mb_region){1, 3, 7, 12});
    assert_true(need.h0 == 1 && need.h1 == 3 && need.w0 == 1 && need.w1 == 3);
    mb_region c = mb_node_compute_region(g, sm, (mb_region){2, 4, 3, 9});
    assert_true(c.h0 == 2 && c.h1 == 4 && c.w0 == 0 && c.w1 == 20);
    assert_true(check_ops(g, 0, g->n_nodes, 25) >= 25 * 2 * 4);
    mb_graph_free(g);
}

/* A view that lacks rows the region needs is refused, naming them. */
static void test_missing_rows_refused(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = mb_zoo_build("deit_tiny", 1, err, sizeof err);
    assert_non_null(g);
    int v = mb_graph_find(g, "blocks.0.mlp.fc1");
    const mb_node *n = &g->nodes[v];
    const mb_node *s = &g->nodes[n->inputs[0]];
    int64_t half[2] = {50, s->out_dims[1]};
    mb_tensor *in = mb_tensor_new(2, half);
    mb_view view = {in, 0, 0, 0, 0};
    mb_region r = {40, 60, 0, n->out_dims[1]};
    int64_t dims[2] = {20, n->out_dims[1]};
    mb_tensor *out = mb_tensor_new(2, dims);
    mb_backend *be = mb_backend_new("ref", 1, err, sizeof err);
    assert_int_equal(mb_backend_compute(be, g, v, &view, r, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "rows [40,60)"));
    /* the same view with rows [30, 80) of the full tensor works, and equals the whole op */
    mb_tensor *full = mb_tensor_new(s->out_ndim, s->out_dims);
    mb_tensor_fill_uniform(full, 3, -1, 1);
    mb_view fv = mb_view_whole(full);
    mb_tensor *part_in = mb_tensor_new(2, half);
    assert_int_equal(mb_tensor_copy_region(&fv, (mb_region){30, 80, 0, half[1]}, part_in), 0);
    mb_view pv = {part_in, 30, 0, 0, 0};
    assert_int_equal(mb_backend_compute(be, g, v, &pv, r, out, err, sizeof err), 0);
    mb_tensor *whole = mb_tensor_new(n->out_ndim, n->out_dims), *ref = mb_tensor_new(2, dims);
    assert_int_equal(mb_backend_compute(be, g, v, &fv, mb_node_full_region(g, v), whole, err, sizeof err), 0);
    mb_view wv = mb_view_whole(whole);
    assert_int_equal(mb_tensor_copy_region(&wv, r, ref), 0);
    assert_true(mb_tensor_max_abs_diff(out, ref) == 0.0);
    mb_tensor_free(in);
    mb_tensor_free(out);
    mb_tensor_free(full);
    mb_tensor_free(part_in);
    mb_tensor_free(whole);
    mb_tensor_free(ref);
    mb_backend_free(be);
    mb_graph_free(g);
}

static void test_copy_paste(void **state)
{
    (void)state;
    int64_t d3[3] = {4, 5, 3};
    mb_tensor *t = mb_tensor_new(3, d3), *u = mb_tensor_new(3, d3);
    for (int i = 0; i < 60; i++)
        t->data[i] = (float)i;
    mb_region r = {1, 3, 2, 4}; /* axis 0 [1,3), axis 1 [2,4), axis 2 whole */
    int64_t bd[3];
    mb_region_box_dims(3, d3, r, bd);
    assert_true(bd[0] == 2 && bd[1] == 2 && bd[2] == 3);
    mb_tensor *p = mb_tensor_new(3, bd);
    mb_view v = mb_view_whole(t);
    assert_int_equal(mb_tensor_copy_region(&v, r, p), 0);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                assert_true(p->data[(a * 2 + b) * 3 + c] == (float)(((1 + a) * 5 + 2 + b) * 3 + c));
    assert_int_equal(mb_tensor_paste_region(u, r, p), 0);
    for (int i = 0; i < 60; i++) {
        int a = i / 15, b = (i / 3) % 5;
        int in = a >= 1 && a < 3 && b >= 2 && b < 4;
        assert_true(u->data[i] == (in ? (float)i : 0.0f));
    }
    mb_region f = mb_region_full_dims(3, d3);
    assert_true(f.h1 == 4 && f.w1 == 5);
    mb_tensor_free(t);
    mb_tensor_free(u);
    mb_tensor_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_paste),
        cmocka_unit_test(test_handmade),
        cmocka_unit_test(test_missing_rows_refused),
        cmocka_unit_test(test_zoo_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
