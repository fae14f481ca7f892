/* The transformer operators: shape inference and its errors, reference
 * kernel values worked out by hand, the fast CPU kernels (LayerNorm,
 * Softmax, Gelu, Transpose) against the reference, the zoo's transformers
 * against their published sizes, and the ONNX importer's fusion of the
 * decomposed LayerNormalization and Gelu patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/onnx.h"
#include "mecbed/zoo.h"
#include "graph_build.h"

static int add_node(mb_graph *g, const char *name, mb_op_type t, int x, int y)
{
    mb_node n = {.type = t};
    snprintf(n.name, sizeof n.name, "%s", name);
    n.inputs[0] = x;
    n.inputs[1] = y;
    n.n_inputs = x < 0 ? 0 : y < 0 ? 1 : 2;
    return mb_graph_add(g, &n);
}

static mb_node *last(mb_graph *g) { return &g->nodes[g->n_nodes - 1]; }

static mb_tensor *vec(int64_t n, const float *v)
{
    mb_tensor *t = mb_tensor_new(1, &n);
    memcpy(t->data, v, sizeof(float) * (size_t)n);
    return t;
}

/* Run g (one output) on backend name with inputs; returns the output. */
static mb_tensor *run1(const mb_graph *g, const char *name, mb_tensor **in)
{
    char err[512];
    mb_backend *be = mb_backend_new(name, 2, err, sizeof err);
    if (!be)
        fail_msg("%s", err);
    mb_tensor **out = NULL;
    if (mb_exec_run(g, be, in, &out, NULL, NULL, err, sizeof err))
        fail_msg("%s: %s", g->name, err);
    mb_backend_free(be);
    mb_tensor *o = out[0];
    free(out);
    return o;
}

static void infer_ok(mb_graph *g)
{
    char err[512];
    g->outputs[0] = g->n_nodes - 1;
    g->n_outputs = 1;
    if (mb_graph_infer(g, err, sizeof err))
        fail_msg("%s", err);
}

static void infer_fails(mb_graph *g, const char *needle)
{
    char err[512] = "";
    g->outputs[0] = g->n_nodes - 1;
    g->n_outputs = 1;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_shapes(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("shapes");
    int x = add_input(g, 3, (int64_t[]){2, 5, 7});
    add_node(g, "t", MB_OP_TRANSPOSE, x, -1);
    memcpy(last(g)->a.perm, (int[]){2, 0, 1}, 3 * sizeof(int));
    int t = g->n_nodes - 1;
    add_node(g, "r", MB_OP_REDUCESUM, t, -1);
    last(g)->a.axes_mask = 1 << 1;
    int r = g->n_nodes - 1;
    add_node(g, "s", MB_OP_SLICE, t, -1);
    last(g)->a.starts[0] = 6;
    last(g)->a.ends[0] = -1;
    last(g)->a.steps[0] = -2; /* 6, 4, 2, 0 */
    int s = g->n_nodes - 1;
    add_node(g, "gather", MB_OP_GATHER, s, -1);
    last(g)->a.axis = 2;
    last(g)->params[0] = vec(3, (float[]){4, -1, 0});
    last(g)->n_params = 1;
    int ga = g->n_nodes - 1;
    add_node(g, "a", MB_OP_ARGMAX, ga, -1);
    last(g)->a.axis = -1;
    infer_ok(g);
    assert_int_equal(g->nodes[t].out_ndim, 3);
    assert_true(g->nodes[t].out_dims[0] == 7 && g->nodes[t].out_dims[1] == 2 && g->nodes[t].out_dims[2] == 5);
    assert_true(g->nodes[r].out_ndim == 2 && g->nodes[r].out_dims[1] == 5); /* keepdims 0 */
    assert_int_equal(g->nodes[s].out_dims[0], 4);
    assert_true(g->nodes[ga].out_ndim == 3 && g->nodes[ga].out_dims[2] == 3);
    assert_int_equal(g->nodes[ga].n_weights, 0); /* constant indices are not weights */
    assert_int_equal(last(g)->out_dtype, MB_DT_INT64);
    assert_int_equal(g->nodes[t].local, 1); /* a 3-D Transpose maps regions (mb_node_input_box) */
    mb_graph_free(g);

    g = mb_graph_new("bad perm");
    x = add_input(g, 2, (int64_t[]){2, 3});
    add_node(g, "t", MB_OP_TRANSPOSE, x, -1);
    memcpy(last(g)->a.perm, (int[]){1, 1}, 2 * sizeof(int));
    infer_fails(g, "perm");
    mb_graph_free(g);

    g = mb_graph_new("bad slice");
    x = add_input(g, 2, (int64_t[]){2, 3});
    add_node(g, "s", MB_OP_SLICE, x, -1);
    last(g)->a.starts[1] = 1;
    last(g)->a.ends[1] = 9;
    last(g)->a.steps[1] = 1;
    infer_fails(g, "axis 1");
    mb_graph_free(g);

    g = mb_graph_new("bad layernorm");
    x = add_input(g, 2, (int64_t[]){2, 3});
    add_node(g, "ln", MB_OP_LAYERNORM, x, -1);
    last(g)->a.axis = -1;
    last(g)->params[0] = rand1(4, 1, 0, 1);
    last(g)->n_params = 1;
    infer_fails(g, "scale");
    mb_graph_free(g);
}

static void test_ref_values(void **state)
{
    (void)state;
    /* LayerNorm of [1, 2, 3, 4] (mean 2.5, var 1.25) with scale 2, bias 1 */
    mb_graph *g = mb_graph_new("ln");
    int x = add_input(g, 2, (int64_t[]){1, 4});
    add_node(g, "ln", MB_OP_LAYERNORM, x, -1);
    last(g)->a.axis = 1;
    last(g)->a.epsilon = 0;
    last(g)->params[0] = vec(1, (float[]){2});
    last(g)->params[1] = vec(1, (float[]){1});
    last(g)->n_params = 2;
    infer_ok(g);
    mb_tensor *in = mb_tensor_new(2, (int64_t[]){1, 4});
    memcpy(in->data, (float[]){1, 2, 3, 4}, 4 * sizeof(float));
    mb_tensor *o = run1(g, "ref", &in);
    for (int i = 0; i < 4; i++) {
        double want = 2 * ((i + 1) - 2.5) / sqrt(1.25) + 1;
        assert_true(fabs(o->data[i] - want) < 1e-6);
    }
    mb_tensor_free(o);
    mb_tensor_free(in);
    mb_graph_free(g);

    /* embedding lookup: rows 2, 0, 2 of a [3, 2] table, by int64 ids */
    g = mb_graph_new("emb");
    x = add_input(g, 1, (int64_t[]){3});
    g->nodes[x].a.dtype = MB_DT_INT64;
    add_node(g, "e", MB_OP_GATHER, x, -1);
    last(g)->a.gather_table = 1;
    last(g)->params[0] = mb_tensor_new(2, (int64_t[]){3, 2});
    memcpy(last(g)->params[0]->data, (float[]){10, 11, 20, 21, 30, 31}, 6 * sizeof(float));
    last(g)->n_params = 1;
    infer_ok(g);
    assert_int_equal(g->nodes[x].out_dtype, MB_DT_INT64);
    assert_int_equal(last(g)->n_weights, 6);
    in = vec(3, (float[]){2, 0, -1});
    o = run1(g, "cpu", &in);
    float want[6] = {30, 31, 10, 11, 30, 31};
    assert_memory_equal(o->data, want, sizeof want);
    mb_tensor_free(o);
    in->data[0] = 0.5f; /* not an integer: refused, not rounded */
    char err[256];
    mb_backend *be = mb_backend_new("ref", 1, err, sizeof err);
    mb_tensor **outs = NULL;
    assert_int_equal(mb_exec_run(g, be, &in, &outs, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an integer"));
    mb_backend_free(be);
    mb_tensor **gen = mb_exec_make_inputs(g, 5); /* generated ids are valid rows */
    for (int i = 0; i < 3; i++)
        assert_true(gen[0]->data[i] == floorf(gen[0]->data[i]) && gen[0]->data[i] >= 0 && gen[0]->data[i] < 3);
    mb_tensor_free(gen[0]);
    free(gen);
    mb_tensor_free(in);
    mb_graph_free(g);

    /* Where(x > 0, x, 0.5 * erf-form Gelu(x)), ReduceMax, Cast truncation */
    g = mb_graph_new("mix");
    x = add_input(g, 1, (int64_t[]){4});
    add_node(g, "gt", MB_OP_GREATER, x, -1);
    last(g)->params[0] = vec(1, (float[]){0});
    last(g)->n_params = 1;
    int gt = g->n_nodes - 1;
    int ge = add_node(g, "gelu", MB_OP_GELU, x, -1);
    mb_node w = {.type = MB_OP_WHERE, .n_inputs = 3, .inputs = {gt, x, ge}, .name = "where"};
    mb_graph_add(g, &w);
    int wh = g->n_nodes - 1;
    add_node(g, "cast", MB_OP_CAST, wh, -1);
    last(g)->a.dtype = MB_DT_INT32;
    infer_ok(g);
    assert_int_equal(g->nodes[gt].out_dtype, MB_DT_BOOL);
    in = vec(4, (float[]){2.7f, -1.0f, -2.9f, 0.0f});
    g->outputs[0] = wh;
    o = run1(g, "ref", &in);
    assert_true(fabsf(o->data[0] - 2.7f) < 1e-7f);
    assert_true(fabs(o->data[1] - (-1.0 * 0.5 * (1 + erf(-1.0 / sqrt(2.0))))) < 1e-7);
    assert_true(fabs(o->data[2] - (-2.9 * 0.5 * (1 + erf(-2.9 / sqrt(2.0))))) < 1e-7);
    mb_tensor_free(o);
    g->outputs[0] = g->n_nodes - 1;
    o = run1(g, "cpu", &in);
    assert_true(o->data[0] == 2.0f && o->data[1] == 0.0f && o->data[3] == 0.0f); /* truncation toward 0 */
    mb_tensor_free(o);
    mb_tensor_free(in);
    mb_graph_free(g);
}

/* One-op graph on input dims, cpu vs ref, within tol relative to scale. */
static void cpu_vs_ref(mb_graph *g, int ndim, const int64_t *dims, double tol, float lo, float hi)
{
    infer_ok(g);
    mb_tensor *in = rand_tensor(ndim, dims, 99, lo, hi);
    mb_tensor *a = run1(g, "ref", &in), *b = run1(g, "cpu", &in);
    double d = mb_tensor_max_abs_diff(a, b), s = scale_of(a);
    if (!(d <= tol * s))
        fail_msg("%s: cpu and ref differ by %g (scale %g)", g->name, d, s);
    mb_tensor_free(a);
    mb_tensor_free(b);
    mb_tensor_free(in);
    mb_graph_free(g);
}

static void test_cpu_kernels(void **state)
{
    (void)state;
    int64_t ld[2] = {7, 301}; /* a row length that is no multiple of 16 */
    mb_graph *g = mb_graph_new("layernorm");
    int x = add_input(g, 2, ld);
    add_node(g, "ln", MB_OP_LAYERNORM, x, -1);
    last(g)->a.axis = -1;
    last(g)->a.epsilon = 1e-6f;
    last(g)->params[0] = rand1(301, 3, 0.5f, 1.5f);
    last(g)->params[1] = rand1(301, 4, -1, 1);
    last(g)->n_params = 2;
    cpu_vs_ref(g, 2, ld, 1e-5, -3, 5);

    int64_t sd[3] = {3, 5, 197};
    for (int ax = 1; ax <= 2; ax++) {
        g = mb_graph_new(ax == 2 ? "softmax last" : "softmax middle");
        x = add_input(g, 3, sd);
        add_node(g, "sm", MB_OP_SOFTMAX, x, -1);
        last(g)->a.axis = ax;
        cpu_vs_ref(g, 3, sd, 1e-5, -30, 30);
    }
    int64_t gd[1] = {4099};
    for (int tanh_form = 0; tanh_form <= 1; tanh_form++) {
        g = mb_graph_new(tanh_form ? "gelu tanh" : "gelu erf");
        x = add_input(g, 1, gd);
        add_node(g, "gelu", MB_OP_GELU, x, -1);
        last(g)->a.gelu_tanh = tanh_form;
        cpu_vs_ref(g, 1, gd, 1e-6, -9, 9);
    }
    int64_t td[4] = {2, 3, 4, 5};
    static const int perms[2][4] = {{0, 2, 1, 3}, {3, 1, 0, 2}};
    for (int p = 0; p < 2; p++) {
        g = mb_graph_new("transpose");
        x = add_input(g, 4, td);
        add_node(g, "t", MB_OP_TRANSPOSE, x, -1);
        memcpy(last(g)->a.perm, perms[p], sizeof perms[p]);
        cpu_vs_ref(g, 4, td, 0, -1, 1); /* moves values: exact */
    }
}

static void test_zoo_sizes(void **state)
{
    (void)state;
    /* published: DeiT-Ti 5.72 M params, 1.3 G(MAC)s (Touvron et al. 2021); ViT-B/16 86.6 M,
     * 17.6 G (Dosovitskiy et al. 2021); BERT-base 110 M (Devlin et al. 2019), 11.2 GMACs at 128
     * tokens. mecbed does not count the class token and position embeddings (constant operands). */
    static const struct { const char *name; double params, gmacs; } pub[] = {
        {"deit_tiny", 5.717, 1.26}, {"vit_b16", 86.567, 17.58}, {"bert_base", 110.0, 11.2}};
    for (size_t i = 0; i < 3; i++) {
        char err[256];
        mb_graph *g = mb_zoo_build_structure(pub[i].name, err, sizeof err);
        if (!g)
            fail_msg("%s", err);
        double p = mb_graph_params(g) / 1e6, m = mb_graph_macs(g) / 1e9;
        print_message("%-10s %8.3f M params (published %.3f), %6.2f GMACs (published %.2f)\n", pub[i].name, p,
                      pub[i].params, m, pub[i].gmacs);
        if (fabs(p - pub[i].params) > 0.02 * pub[i].params)
            fail_msg("%s: %.3f M params, published %.3f", pub[i].name, p, pub[i].params);
        if (fabs(m - pub[i].gmacs) > 0.05 * pub[i].gmacs)
            fail_msg("%s: %.3f GMACs, published %.3f", pub[i].name, m, pub[i].gmacs);
        mb_graph_free(g);
    }
}

static int param1(mb_graph *g, const char *name, mb_op_type t, int x, float v)
{
    add_node(g, name, t, x, -1);
    last(g)->params[0] = vec(1, &v);
    last(g)->n_params = 1;
    return g->n_nodes - 1;
}

/* The opset < 17 LayerNormalization and the opset < 20 Gelu, written out op
 * by op, come back from an ONNX round trip as one node each. */
static void test_import_fusion(void **state)
{
    (void)state;
    mb_graph *g = mb_graph_new("patterns");
    int x = add_input(g, 2, (int64_t[]){6, 40});
    int m = add_node(g, "mean", MB_OP_REDUCEMEAN, x, -1);
    last(g)->a.axes_mask = 2;
    last(g)->a.keepdims = 1;
    int d = add_node(g, "dev", MB_OP_SUB, x, m);
    int p = param1(g, "pow", MB_OP_POW, d, 2.0f);
    int v = add_node(g, "var", MB_OP_REDUCEMEAN, p, -1);
    last(g)->a.axes_mask = 2;
    last(g)->a.keepdims = 1;
    int e = param1(g, "eps", MB_OP_ADD, v, 1e-5f);
    int s = add_node(g, "std", MB_OP_SQRT, e, -1);
    int n = add_node(g, "norm", MB_OP_DIV, d, s);
    add_node(g, "scale", MB_OP_MUL, n, -1);
    last(g)->params[0] = rand1(40, 7, 0.5f, 1.5f);
    last(g)->n_params = 1;
    int sc = g->n_nodes - 1;
    add_node(g, "shift", MB_OP_ADD, sc, -1);
    last(g)->params[0] = rand1(40, 8, -1, 1);
    last(g)->n_params = 1;
    int ln = g->n_nodes - 1;
    int dv = param1(g, "g.div", MB_OP_DIV, ln, 1.41421354f);
    int er = add_node(g, "g.erf", MB_OP_ERF, dv, -1);
    int ad = param1(g, "g.add", MB_OP_ADD, er, 1.0f);
    int mu = add_node(g, "g.mul", MB_OP_MUL, ln, ad);
    param1(g, "gelu", MB_OP_MUL, mu, 0.5f);
    infer_ok(g);

    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/mecbed-test-fusion-%d.onnx", (int)getpid());
    if (mb_onnx_save(g, path, err, sizeof err))
        fail_msg("%s", err);
    mb_graph *h = mb_onnx_load(path, err, sizeof err);
    unlink(path);
    if (!h)
        fail_msg("%s", err);
    int n_ln = 0, n_gelu = 0;
    for (int i = 0; i < h->n_nodes; i++) {
        n_ln += h->nodes[i].type == MB_OP_LAYERNORM;
        n_gelu += h->nodes[i].type == MB_OP_GELU;
        assert_true(h->nodes[i].type != MB_OP_POW && h->nodes[i].type != MB_OP_ERF);
    }
    assert_int_equal(n_ln, 1);
    assert_int_equal(n_gelu, 1);
    assert_int_equal(h->n_nodes, 3); /* input, LayerNormalization, Gelu */
    mb_tensor *in = rand_tensor(2, (int64_t[]){6, 40}, 5, -4, 4);
    mb_tensor *a = run1(g, "ref", &in), *b = run1(h, "ref", &in);
    double diff = mb_tensor_max_abs_diff(a, b);
    print_message("fused vs decomposed: max |diff| %g (scale %g)\n", diff, scale_of(a));
    assert_true(diff <= 1e-5 * scale_of(a));
    mb_tensor_free(a);
    mb_tensor_free(b);
    mb_tensor_free(in);
    mb_graph_free(g);
    mb_graph_free(h);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),     cmocka_unit_test(test_ref_values),    cmocka_unit_test(test_cpu_kernels),
        cmocka_unit_test(test_zoo_sizes),  cmocka_unit_test(test_import_fusion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
