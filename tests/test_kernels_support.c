/* mb_backend_supports tells the truth, for every op kind of the graph IR
 * (mb_op_type) and every backend this build can start (ref, cpu, and cuda
 * where a GPU is present): a backend that says yes computes a small case of
 * the op through mb_backend_compute and agrees with the reference backend
 * (1e-5 of the output's scale); one that says no is refused by
 * mb_backend_compute with a message, never run. Attribute values no backend
 * implements (an unresolved auto_pad, an unknown Pad or Resize mode) must be
 * answered no, and refused the same way.
 *
 * case_for() switches over mb_op_type without a default, so an op kind
 * added to the IR is a compile warning (an error under WERROR=1) here and a
 * test failure until it has a case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "mb_skip.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/backend.h"
#include "mecbed/platform.h"
#include "graph_build.h"


static mb_backend *ref_be;

/* Unary ops and the attributes that give them their usual meaning. */
static void unary_attrs(mb_node *op)
{
    switch (op->type) {
    case MB_OP_CLIP:
        op->a.alpha = 0;
        op->a.beta = 6;
        break;
    case MB_OP_HARDSIGMOID:
        op->a.alpha = 0.2f;
        op->a.beta = 0.5f;
        break;
    case MB_OP_LEAKYRELU:
        op->a.alpha = 0.1f;
        break;
    default:
        break;
    }
}

/* The op's window attributes for conv, conv-transpose and pooling cases. */
static void window(mb_node *op, int k, int s, int p)
{
    op->a.kernel[0] = op->a.kernel[1] = k;
    op->a.stride[0] = op->a.stride[1] = s;
    for (int i = 0; i < 4; i++)
        op->a.pads[i] = p;
}

/* A small one-op graph whose last node is of kind t (inputs first). NULL
 * when there is no case for t. */
static mb_graph *case_for(mb_op_type t)
{
    mb_graph *g = mb_graph_new(mb_op_name(t));
    int x = add_input4(g, 1, 4, 6, 7);
    mb_node op = {.type = t, .n_inputs = 1, .inputs = {x}};
    int64_t d2[2] = {3, 5}, d3[3] = {2, 3, 5};
    switch (t) {
    case MB_OP_INPUT: /* the graph's only node */
        g->outputs[g->n_outputs++] = x;
        if (mb_graph_infer(g, NULL, 0))
            fail_msg("an input-only graph does not infer");
        return g;
    case MB_OP_CONSTANT:
        op.n_inputs = 0;
        op.n_params = 1;
        op.params[0] = rand_tensor(2, d2, 3, -1, 1);
        break;
    case MB_OP_CONV:
        op.n_params = 2;
        op.params[0] = rand_tensor(4, (int64_t[]){5, 4, 3, 3}, 4, -1, 1);
        op.params[1] = rand1(5, 5, -1, 1);
        window(&op, 3, 1, 1);
        break;
    case MB_OP_CONV_TRANSPOSE:
        op.n_params = 2;
        op.params[0] = rand_tensor(4, (int64_t[]){4, 3, 3, 3}, 6, -1, 1);
        op.params[1] = rand1(3, 7, -1, 1);
        window(&op, 3, 2, 1);
        break;
    case MB_OP_GEMM:
        op.inputs[0] = add_input(g, 2, d2);
        op.n_params = 2;
        op.params[0] = rand_tensor(2, (int64_t[]){5, 4}, 8, -1, 1);
        op.params[1] = rand1(4, 9, -1, 1);
        break;
    case MB_OP_MATMUL:
        op.inputs[0] = add_input(g, 3, d3);
        op.n_params = 1;
        op.params[0] = rand_tensor(2, (int64_t[]){5, 2}, 10, -1, 1);
        break;
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        window(&op, 2, 2, 0);
        break;
    case MB_OP_GLOBALAVGPOOL:
        break;
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_IDENTITY:
        unary_attrs(&op);
        break;
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
        op.n_inputs = 2;
        op.inputs[1] = add_input4(g, 1, 4, 1, 7); /* broadcast over rows */
        break;
    case MB_OP_CONCAT:
        op.n_inputs = 2;
        op.inputs[1] = add_input4(g, 1, 2, 6, 7);
        op.a.axis = 1;
        break;
    case MB_OP_BATCHNORM:
        op.n_params = 4;
        op.params[0] = rand1(4, 11, 0.5f, 1.5f);
        op.params[1] = rand1(4, 12, -1, 1);
        op.params[2] = rand1(4, 13, -1, 1);
        op.params[3] = rand1(4, 14, 0.1f, 2);
        op.a.epsilon = 1e-5f;
        break;
    case MB_OP_SOFTMAX:
        op.inputs[0] = add_input(g, 2, d2);
        op.a.axis = 1;
        break;
    case MB_OP_FLATTEN:
        op.a.axis = 1;
        break;
    case MB_OP_RESHAPE:
        op.a.shape_ndim = 2;
        op.a.shape[0] = 1;
        op.a.shape[1] = -1;
        break;
    case MB_OP_PAD:
        op.a.pad_amounts[2] = 1; /* begin: N C H W, then end */
        op.a.pad_amounts[3] = 2;
        op.a.pad_amounts[6] = 2;
        op.a.pad_amounts[7] = 1;
        op.a.pad_mode = MB_PAD_REFLECT;
        break;
    case MB_OP_RESIZE:
        op.a.scales[0] = op.a.scales[1] = 1;
        op.a.scales[2] = op.a.scales[3] = 2;
        op.a.resize_mode = MB_RESIZE_LINEAR;
        op.a.coord_mode = MB_COORD_HALF_PIXEL;
        break;
    case MB_OP_GELU: case MB_OP_ERF: case MB_OP_TANH: case MB_OP_EXP: case MB_OP_LOG: case MB_OP_SQRT:
    case MB_OP_RECIPROCAL: case MB_OP_ABS: case MB_OP_NEG: case MB_OP_FLOOR: case MB_OP_CEIL: case MB_OP_NOT:
    case MB_OP_SOFTPLUS: case MB_OP_SOFTSIGN: case MB_OP_SIN: case MB_OP_COS: case MB_OP_SIGN: case MB_OP_ISINF:
    case MB_OP_TAN: case MB_OP_ROUND:
        op.a.alpha = op.a.beta = 1;
        break;
    case MB_OP_ELU: case MB_OP_SELU: case MB_OP_THRESHOLDED_RELU:
        op.a.alpha = 1.2f;
        op.a.beta = 1.05f;
        break;
    case MB_OP_POW: case MB_OP_MIN: case MB_OP_MAX: case MB_OP_EQUAL: case MB_OP_LESS: case MB_OP_GREATER:
    case MB_OP_LESS_EQUAL: case MB_OP_GREATER_EQUAL: case MB_OP_AND: case MB_OP_OR: case MB_OP_XOR: case MB_OP_MOD:
        op.n_inputs = 2;
        op.inputs[1] = add_input4(g, 1, 4, 1, 7);
        break;
    case MB_OP_WHERE:
        op.n_inputs = 3;
        op.inputs[1] = add_input4(g, 1, 4, 6, 7);
        op.inputs[2] = add_input4(g, 1, 1, 6, 1);
        break;
    case MB_OP_TRANSPOSE:
        memcpy(op.a.perm, (int[]){0, 2, 3, 1}, 4 * sizeof(int));
        break;
    case MB_OP_LAYERNORM:
        op.a.axis = -1;
        op.a.epsilon = 1e-5f;
        op.n_params = 2;
        op.params[0] = rand1(7, 15, 0.5f, 1.5f);
        op.params[1] = rand1(7, 16, -1, 1);
        break;
    case MB_OP_INSTANCENORM:
        op.a.epsilon = 1e-5f;
        op.n_params = 2;
        op.params[0] = rand1(4, 17, 0.5f, 1.5f);
        op.params[1] = rand1(4, 18, -1, 1);
        break;
    case MB_OP_LOGSOFTMAX: case MB_OP_HARDMAX: case MB_OP_CUMSUM:
        op.a.axis = 1;
        op.a.reverse = 1;
        break;
    case MB_OP_REDUCEMEAN: case MB_OP_REDUCESUM: case MB_OP_REDUCEMAX: case MB_OP_REDUCEMIN: case MB_OP_REDUCEPROD:
    case MB_OP_REDUCESUMSQUARE: case MB_OP_REDUCEL1: case MB_OP_REDUCEL2: case MB_OP_REDUCELOGSUM:
    case MB_OP_REDUCELOGSUMEXP:
        op.a.axes_mask = (1 << 2) | (1 << 3);
        op.a.keepdims = 1;
        break;
    case MB_OP_ARGMAX: case MB_OP_ARGMIN:
        op.a.axis = 3;
        op.a.keepdims = 1;
        break;
    case MB_OP_SLICE:
        op.a.starts[2] = 1, op.a.ends[2] = 5, op.a.steps[2] = 2;
        op.a.starts[3] = 6, op.a.ends[3] = -1, op.a.steps[3] = -1;
        break;
    case MB_OP_GATHER:
        op.a.axis = 1;
        op.n_params = 1;
        op.params[0] = rand1(2, 19, 0, 0);
        op.params[0]->data[0] = 3;
        break;
    case MB_OP_GATHER_ELEMENTS:
        op.a.axis = 2;
        op.n_params = 1;
        op.params[0] = rand_tensor(4, (int64_t[]){1, 4, 2, 7}, 20, 0, 0);
        for (int q = 0; q < 56; q++)
            op.params[0]->data[q] = (float)(q % 6);
        break;
    case MB_OP_EXPAND:
        op.a.shape_ndim = 4;
        memcpy(op.a.shape, (int64_t[]){2, 4, 6, 7}, 4 * sizeof(int64_t));
        break;
    case MB_OP_TILE:
        op.a.shape_ndim = 4;
        memcpy(op.a.shape, (int64_t[]){1, 1, 2, 1}, 4 * sizeof(int64_t));
        break;
    case MB_OP_CAST:
        op.a.dtype = MB_DT_INT32;
        break;
    case MB_OP_TRILU:
        op.a.upper = 1;
        op.a.diag_k = 1;
        break;
    case MB_OP_NLLLOSS: /* targets: input 1, made whole classes by make_inputs */
        op.inputs[0] = add_input(g, 2, d2);
        op.inputs[1] = add_input(g, 1, d2);
        op.n_inputs = 2;
        op.a.reduction = 1;
        break;
    case MB_OP_COUNT:
        mb_graph_free(g);
        return NULL;
    }
    snprintf(op.name, sizeof op.name, "op");
    int i = mb_graph_add(g, &op);
    g->outputs[g->n_outputs++] = i;
    char err[512];
    if (mb_graph_infer(g, err, sizeof err))
        fail_msg("%s case does not infer: %s", mb_op_name(t), err);
    return g;
}

/* Random inputs for the last node of g (positive, so Div stays tame). */
static void make_inputs(const mb_graph *g, mb_tensor **in, mb_view *v)
{
    const mb_node *n = &g->nodes[g->n_nodes - 1];
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        in[k] = rand_tensor(src->out_ndim, src->out_dims, 100 + (uint64_t)k, 0.5f, 2);
        if (n->type == MB_OP_NLLLOSS && k == 1) /* class indices */
            for (int64_t q = 0; q < mb_tensor_numel(in[k]); q++)
                in[k]->data[q] = (float)(q % 5);
        v[k] = mb_view_whole(in[k]);
    }
}

/* The refusal path: mb_backend_compute returns -1 with a message that names
 * the backend (or says a graph input is not computed), and writes nothing. */
static void expect_refused(mb_backend *be, const mb_graph *g, int node, const mb_view *v, const char *what)
{
    const mb_node *n = &g->nodes[node];
    mb_tensor *out = mb_tensor_new(n->out_ndim, n->out_dims);
    memset(out->data, 0, mb_tensor_bytes(out));
    char err[512] = "", want[64];
    snprintf(want, sizeof want, "not supported by the %s backend", mb_backend_name(be));
    int rc = mb_backend_compute(be, g, node, v, mb_node_full_region(g, node), out, err, sizeof err);
    if (rc != -1 || (!strstr(err, want) && !(n->type == MB_OP_INPUT && strstr(err, "not computed"))))
        fail_msg("%s on %s: supports says no, yet compute returned %d with '%s'", what, mb_backend_name(be), rc,
                 err);
    for (int64_t i = 0; i < mb_tensor_numel(out); i++)
        assert_true(out->data[i] == 0);
    mb_tensor_free(out);
}

/* One backend, one op kind: supports -> computes and matches ref; no ->
 * refused. Returns 1 if it claimed support. */
static int check_kind(mb_backend *be, mb_op_type t)
{
    mb_graph *g = case_for(t);
    if (!g)
        fail_msg("no test case for op kind %d (%s): add one to case_for()", (int)t, mb_op_name(t));
    int node = g->n_nodes - 1;
    const mb_node *n = &g->nodes[node];
    mb_tensor *in[MB_MAX_INPUTS] = {0};
    mb_view v[MB_MAX_INPUTS];
    make_inputs(g, in, v);
    int yes = mb_backend_supports(be, g, node);
    if (t == MB_OP_INPUT)
        assert_false(yes);
    if (!yes) {
        expect_refused(be, g, node, v, mb_op_name(t));
    } else {
        mb_tensor *got = mb_tensor_new(n->out_ndim, n->out_dims), *want = mb_tensor_new(n->out_ndim, n->out_dims);
        char err[512] = "";
        mb_region r = mb_node_full_region(g, node);
        if (mb_backend_compute(be, g, node, v, r, got, err, sizeof err))
            fail_msg("%s says it supports %s, but: %s", mb_backend_name(be), mb_op_name(t), err);
        if (!mb_backend_supports(ref_be, g, node))
            fail_msg("%s supports %s but the reference backend does not", mb_backend_name(be), mb_op_name(t));
        if (mb_backend_compute(ref_be, g, node, v, r, want, err, sizeof err))
            fail_msg("ref on %s: %s", mb_op_name(t), err);
        double d = mb_tensor_max_abs_diff(got, want), s = scale_of(want);
        if (!(d <= TOL * s))
            fail_msg("%s on %s: max |diff| %g vs ref exceeds %g", mb_backend_name(be), mb_op_name(t), d, TOL * s);
        mb_tensor_free(got);
        mb_tensor_free(want);
    }
    for (int k = 0; k < n->n_inputs; k++)
        mb_tensor_free(in[k]);
    mb_graph_free(g);
    return yes;
}

static void every_kind_on(mb_backend *be)
{
    int claimed = 0;
    for (int t = 0; t < MB_OP_COUNT; t++)
        claimed += check_kind(be, (mb_op_type)t);
    print_message("%s: supports %d of %d op kinds (all but graph inputs expected), each computed and "
                  "checked against ref\n",
                  mb_backend_name(be), claimed, (int)MB_OP_COUNT);
    /* every built-in backend implements every computable op kind */
    assert_int_equal(claimed, MB_OP_COUNT - 1);
}

static void test_every_kind_ref(void **state)
{
    (void)state;
    every_kind_on(ref_be);
}

static void test_every_kind_cpu(void **state)
{
    (void)state;
    char err[256];
    mb_backend *cpu = mb_backend_new("cpu", 2, err, sizeof err);
    assert_non_null(cpu);
    every_kind_on(cpu);
    mb_backend_free(cpu);
}

static void test_every_kind_cuda(void **state)
{
    (void)state;
    char err[1024] = "";
    mb_backend *cuda = mb_backend_new("cuda", 1, err, sizeof err);
    if (!cuda) {
        assert_non_null(strstr(err, "backend 'cuda': ")); /* says why */
        MB_SKIP("cuda: not run: %s", err);
    }
    every_kind_on(cuda);
    mb_backend_free(cuda);
}

/* Attribute values with no kernel anywhere: answered no, refused cleanly. */
static void test_unimplemented_attributes(void **state)
{
    (void)state;
    static const char *const names[] = {"ref", "cpu", "cuda"};
    for (size_t b = 0; b < sizeof names / sizeof names[0]; b++) {
        char err[1024];
        mb_backend *be = mb_backend_new(names[b], 1, err, sizeof err);
        if (!be)
            continue; /* cuda without a GPU: test_every_kind_cuda says why */
        static const mb_op_type windowed[] = {MB_OP_CONV, MB_OP_CONV_TRANSPOSE, MB_OP_MAXPOOL, MB_OP_AVGPOOL};
        for (int c = 0; c < 6; c++) {
            mb_op_type t = c < 4 ? windowed[c] : c == 4 ? MB_OP_PAD : MB_OP_RESIZE;
            mb_graph *g = case_for(t);
            int node = g->n_nodes - 1;
            mb_node *n = &g->nodes[node];
            if (c < 4)
                n->a.auto_pad = MB_AUTO_PAD_SAME_UPPER; /* as if mb_graph_infer had not resolved it */
            else if (c == 4)
                n->a.pad_mode = 7; /* no such mode */
            else
                n->a.resize_mode = 2; /* cubic: no kernel */
            assert_false(mb_backend_supports(be, g, node));
            mb_tensor *in[MB_MAX_INPUTS] = {0};
            mb_view v[MB_MAX_INPUTS];
            make_inputs(g, in, v);
            expect_refused(be, g, node, v, mb_op_name(t));
            for (int k = 0; k < n->n_inputs; k++)
                mb_tensor_free(in[k]);
            mb_graph_free(g);
        }
        mb_backend_free(be);
    }
}

/* The entry points with bad arguments: answers, not crashes. */
static void test_bad_arguments(void **state)
{
    (void)state;
    mb_graph *g = case_for(MB_OP_RELU);
    char err[256] = "";
    assert_false(mb_backend_supports(ref_be, g, -1));
    assert_false(mb_backend_supports(ref_be, g, g->n_nodes));
    assert_false(mb_backend_supports(ref_be, NULL, 0));
    assert_false(mb_backend_supports(NULL, g, 1));
    mb_tensor *out = mb_tensor_new4(1, 4, 6, 7);
    assert_int_equal(mb_backend_compute(ref_be, g, g->n_nodes, NULL, (mb_region){0, 6, 0, 7}, out, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(mb_backend_compute(NULL, g, 1, NULL, (mb_region){0, 6, 0, 7}, out, err, sizeof err), -1);
    assert_true(err[0] != 0);
    /* a missing input view */
    assert_int_equal(mb_backend_compute(ref_be, g, 1, NULL, (mb_region){0, 6, 0, 7}, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "input 0 is missing"));
    unsigned long long mj;
    assert_int_equal(mb_backend_energy_mj(ref_be, &mj, err, sizeof err), -1);
    assert_non_null(strstr(err, "not on a GPU"));
    assert_string_equal(mb_backend_name(ref_be), "ref");
    assert_int_equal(mb_backend_threads(ref_be), 1);
    mb_tensor_free(out);
    mb_graph_free(g);
}

static int setup(void **state)
{
    (void)state;
    ref_be = mb_backend_new("ref", 1, NULL, 0);
    return ref_be ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mb_backend_free(ref_be);
    return 0;
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_ref),          cmocka_unit_test(test_every_kind_cpu),
        cmocka_unit_test(test_every_kind_cuda),         cmocka_unit_test(test_unimplemented_attributes),
        cmocka_unit_test(test_bad_arguments),
    };
    return MB_TESTS_EXIT(cmocka_run_group_tests(tests, setup, teardown));
}
