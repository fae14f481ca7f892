/* The whole-graph executor: results against values computed by hand,
 * intermediates that are also outputs, inputs and constants, keep_all,
 * per-op timing, seeded inputs, and errors (bad inputs, a backend that
 * refuses an op or fails in the middle: injected through the backend
 * interface itself). */
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
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/zoo.h"
/* white-box: the wrapper below fills a backend table of its own */
#include "../kernels/backend_impl.h"

static int64_t d1(int64_t n)
{
    return n;
}

/* x[1,2,3,3] -> conv1x1 (2->2, known W, b) -> relu -> add(relu, x) -> concat(add, mul(x, k))
 * outputs: concat, relu (also consumed), x (an input). */
static mb_graph *small_graph(void)
{
    char err[256];
    mb_graph *g = mb_graph_new("small");
    mb_node x = {.type = MB_OP_INPUT};
    strcpy(x.name, "x");
    x.a.shape_ndim = 4;
    x.a.shape[0] = 1;
    x.a.shape[1] = 2;
    x.a.shape[2] = x.a.shape[3] = 3;
    mb_graph_add(g, &x); /* 0 */
    mb_node k = {.type = MB_OP_CONSTANT, .n_params = 1};
    strcpy(k.name, "k");
    k.params[0] = mb_tensor_new4(1, 2, 1, 1);
    k.params[0]->data[0] = 2;
    k.params[0]->data[1] = -3;
    mb_graph_add(g, &k); /* 1 */
    mb_node c = {.type = MB_OP_CONV, .n_inputs = 1, .inputs = {0}, .n_params = 2};
    strcpy(c.name, "conv");
    c.params[0] = mb_tensor_new4(2, 2, 1, 1);
    float w[4] = {1, -1, 0.5f, 0.25f};
    memcpy(c.params[0]->data, w, sizeof w);
    int64_t two = d1(2);
    c.params[1] = mb_tensor_new(1, &two);
    c.params[1]->data[0] = 0.1f;
    c.params[1]->data[1] = -0.2f;
    mb_graph_add(g, &c); /* 2 */
    mb_node r = {.type = MB_OP_RELU, .n_inputs = 1, .inputs = {2}};
    strcpy(r.name, "relu");
    mb_graph_add(g, &r); /* 3 */
    mb_node a = {.type = MB_OP_ADD, .n_inputs = 2, .inputs = {3, 0}};
    strcpy(a.name, "add");
    mb_graph_add(g, &a); /* 4 */
    mb_node m = {.type = MB_OP_MUL, .n_inputs = 2, .inputs = {0, 1}};
    strcpy(m.name, "mul");
    mb_graph_add(g, &m); /* 5 */
    mb_node cat = {.type = MB_OP_CONCAT, .n_inputs = 2, .inputs = {4, 5}};
    strcpy(cat.name, "cat");
    cat.a.axis = 1;
    mb_graph_add(g, &cat); /* 6 */
    mb_node dead = {.type = MB_OP_SIGMOID, .n_inputs = 1, .inputs = {5}}; /* nobody reads it */
    strcpy(dead.name, "dead");
    mb_graph_add(g, &dead); /* 7 */
    g->n_outputs = 3;
    g->outputs[0] = 6;
    g->outputs[1] = 3;
    g->outputs[2] = 0;
    if (mb_graph_infer(g, err, sizeof err))
        fail_msg("%s", err);
    return g;
}

static void expected(const mb_tensor *x, float *cat, float *relu)
{
    const float *x0 = x->data, *x1 = x->data + 9;
    for (int p = 0; p < 9; p++) {
        float c0 = fmaxf(0, 1 * x0[p] - 1 * x1[p] + 0.1f);
        float c1 = fmaxf(0, 0.5f * x0[p] + 0.25f * x1[p] - 0.2f);
        relu[p] = c0;
        relu[9 + p] = c1;
        cat[p] = c0 + x0[p];
        cat[9 + p] = c1 + x1[p];
        cat[18 + p] = 2 * x0[p];
        cat[27 + p] = -3 * x1[p];
    }
}

static mb_backend *cpu(void)
{
    char err[256];
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    if (!be)
        fail_msg("cpu backend: %s", err);
    return be;
}

static void free_inputs(mb_tensor **in)
{
    for (int i = 0; in && in[i]; i++)
        mb_tensor_free(in[i]);
    free(in);
}

static void test_results(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = small_graph();
    mb_backend *be = cpu();
    mb_tensor **in = mb_exec_make_inputs(g, 5);
    mb_tensor **out = NULL;
    assert_int_equal(mb_exec_run(g, be, in, &out, NULL, NULL, err, sizeof err), 0);
    float cat[36], relu[18];
    expected(in[0], cat, relu);
    assert_int_equal(out[0]->dims[1], 4);
    for (int i = 0; i < 36; i++)
        assert_true(fabsf(out[0]->data[i] - cat[i]) <= 1e-6f);
    for (int i = 0; i < 18; i++)
        assert_true(fabsf(out[1]->data[i] - relu[i]) <= 1e-6f);
    /* an input that is an output comes back as a copy, not the caller's tensor */
    assert_true(out[2] != in[0]);
    assert_memory_equal(out[2]->data, in[0]->data, mb_tensor_bytes(in[0]));
    for (int o = 0; o < 3; o++)
        mb_tensor_free(out[o]);
    free(out);
    free_inputs(in);
    mb_backend_free(be);
    mb_graph_free(g);
}

static void test_keep_all_and_times(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = small_graph();
    mb_backend *be = cpu();
    mb_tensor **in = mb_exec_make_inputs(g, 5);
    mb_tensor **out = NULL, **all = NULL;
    mb_op_time times[8];
    memset(times, 0xff, sizeof times);
    mb_exec_opts opts = {.keep_all = 1, .times = times, .repeats = 3};
    assert_int_equal(mb_exec_run(g, be, in, &out, &opts, &all, err, sizeof err), 0);
    assert_non_null(all);
    assert_null(all[1]); /* the constant is a free node */
    for (int i = 0; i < g->n_nodes; i++) {
        if (i != 1) {
            assert_non_null(all[i]);
            assert_int_equal(all[i]->ndim, g->nodes[i].out_ndim);
        }
        assert_int_equal(times[i].node, i);
        assert_true(times[i].ms >= 0 && times[i].ms < 1000);
    }
    assert_true(times[0].ms == 0);
    assert_true(all[0] != in[0]);
    float cat[36], relu[18];
    expected(in[0], cat, relu);
    for (int i = 0; i < 18; i++)
        assert_true(fabsf(all[3]->data[i] - relu[i]) <= 1e-6f);
    for (int i = 0; i < 18; i++) /* mul = x * k */
        assert_true(fabsf(all[5]->data[i] - cat[18 + i]) <= 1e-6f);
    assert_true(mb_tensor_max_abs_diff(all[6], out[0]) == 0);
    assert_true(all[6] != out[0]);
    for (int i = 0; i < g->n_nodes; i++)
        mb_tensor_free(all[i]);
    free(all);
    for (int o = 0; o < 3; o++)
        mb_tensor_free(out[o]);
    free(out);
    free_inputs(in);
    mb_backend_free(be);
    mb_graph_free(g);
}

static void test_make_inputs(void **state)
{
    (void)state;
    mb_graph *g = small_graph();
    mb_tensor **a = mb_exec_make_inputs(g, 9), **b = mb_exec_make_inputs(g, 9), **c = mb_exec_make_inputs(g, 10);
    assert_non_null(a[0]);
    assert_null(a[1]); /* NULL-terminated: one Input node */
    assert_int_equal(a[0]->ndim, 4);
    assert_int_equal(a[0]->dims[1], 2);
    assert_memory_equal(a[0]->data, b[0]->data, mb_tensor_bytes(a[0]));
    assert_true(memcmp(a[0]->data, c[0]->data, mb_tensor_bytes(a[0])) != 0);
    for (int i = 0; i < 18; i++)
        assert_true(a[0]->data[i] >= -1 && a[0]->data[i] < 1);
    free_inputs(a);
    free_inputs(b);
    free_inputs(c);
    mb_graph_free(g);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = small_graph();
    mb_backend *be = cpu();
    mb_tensor *wrong = mb_tensor_new4(1, 2, 4, 4);
    mb_tensor *ins[1] = {wrong};
    mb_tensor **out = (mb_tensor **)&err; /* must be reset to NULL on failure */
    assert_int_equal(mb_exec_run(g, be, ins, &out, NULL, NULL, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "has shape 1x2x4x4, the model expects 1x2x3x3"));
    ins[0] = NULL;
    assert_int_equal(mb_exec_run(g, be, ins, &out, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "no tensor given for graph input 0 ('x')"));
    mb_tensor_free(wrong);
    mb_backend_free(be);
    mb_graph_free(g);
}

/* A backend wrapping the real cpu backend that refuses or fails one op. */
typedef struct faulty {
    mb_backend be;
    mb_backend *inner;
    mb_op_type refuse, fail_at;
    int calls;
} faulty;

static int faulty_supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    const faulty *f = (const faulty *)be;
    return n->type != f->refuse && f->inner->supports_op(f->inner, g, n);
}

static int faulty_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                          char *err, size_t errlen)
{
    faulty *f = (faulty *)be;
    f->calls++;
    if (g->nodes[node].type == f->fail_at) {
        snprintf(err, errlen, "injected failure");
        return -1;
    }
    return f->inner->compute(f->inner, g, node, in, r, out, err, errlen);
}

static void test_backend_faults(void **state)
{
    (void)state;
    char err[256];
    mb_graph *g = small_graph();
    faulty f = {.be = {.name = "faulty", .supports_op = faulty_supports, .compute = faulty_compute},
                .inner = cpu(),
                .refuse = MB_OP_COUNT,
                .fail_at = MB_OP_ADD};
    mb_tensor **in = mb_exec_make_inputs(g, 5);
    mb_tensor **out = NULL;
    assert_int_equal(mb_exec_run(g, &f.be, in, &out, NULL, NULL, err, sizeof err), -1);
    assert_null(out);
    assert_non_null(strstr(err, "node 'add' (Add) on backend faulty: injected failure"));
    assert_int_equal(f.calls, 3); /* conv, relu, add: stops at the failure */
    f.fail_at = MB_OP_COUNT;
    f.refuse = MB_OP_CONCAT;
    f.calls = 0;
    assert_int_equal(mb_exec_run(g, &f.be, in, &out, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "backend faulty cannot run node 'cat' (Concat)"));
    assert_int_equal(f.calls, 0); /* checked before anything runs */
    free_inputs(in);
    mb_backend_free(f.inner);
    mb_graph_free(g);
}

/* A backend that declines every fused chain: the executor must then run the
 * conv, the Add and the activation separately, the Add and the activation
 * in place in the slot the plan gave the chain. */
static int decline_fused(mb_backend *be, const mb_graph *g, int node, const mb_fusion *f, const mb_view *in,
                         mb_region r, mb_tensor *out, char *err, size_t errlen)
{
    (void)be, (void)g, (void)node, (void)f, (void)in, (void)r, (void)out, (void)err, (void)errlen;
    return 0;
}

static mb_tensor **run_opts(const mb_graph *g, mb_backend *be, mb_tensor **in, int fuse, mb_op_time *times)
{
    char err[512];
    mb_tensor **out = NULL;
    mb_exec_opts o = {.times = times, .repeats = 2, .fuse = fuse};
    if (mb_exec_run(g, be, in, &out, &o, NULL, err, sizeof err))
        fail_msg("%s", err);
    return out;
}

/* --fuse: a conv, the residual Add after it and the activation after either
 * in one pass. Outputs are the unfused run's bit for bit (the same add and
 * activation code runs on the same values), fused Adds and activations
 * report 0 ms, every residual Add of ResNet-18 and MobileNetV2 is fused,
 * every Relu of DenseNet-121 runs inside its conv or BatchNormalization,
 * and a backend that declines gives the same result. */
static void test_fused_activations(void **state)
{
    (void)state;
    const char *models[] = {"mobilenetv2", "tiny_yolov2", "resnet18", "resnet50", "densenet121"};
    mb_backend *cpu = mb_backend_new("cpu", 2, NULL, 0);
    assert_non_null(cpu);
    mb_backend decliner = *cpu;
    decliner.compute_fused = decline_fused;
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char err[256];
        mb_graph *g = mb_zoo_build(models[m], MB_ZOO_SEED, err, sizeof err);
        assert_non_null(g);
        mb_graph_fold_batchnorm(g);
        assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
        mb_tensor **in = mb_exec_make_inputs(g, 3);
        mb_op_time *times = calloc((size_t)g->n_nodes, sizeof *times);
        mb_tensor **plain = run_opts(g, cpu, in, 0, NULL);
        mb_tensor **fused = run_opts(g, cpu, in, 1, times);
        mb_tensor **declined = run_opts(g, &decliner, in, 1, NULL);
        for (int k = 0; k < g->n_outputs; k++) {
            assert_memory_equal(plain[k]->data, fused[k]->data, mb_tensor_bytes(plain[k]));
            assert_memory_equal(plain[k]->data, declined[k]->data, mb_tensor_bytes(plain[k]));
            mb_tensor_free(plain[k]);
            mb_tensor_free(fused[k]);
            mb_tensor_free(declined[k]);
        }
        int n_fused = 0, n_act = 0, n_add = 0, n_add_fused = 0;
        for (int i = 1; i < g->n_nodes; i++) {
            const mb_node *a = &g->nodes[i];
            if (a->type == MB_OP_ADD) {
                n_add++;
                n_add_fused += times[i].ms == 0.0;
                if (times[i].ms == 0.0) /* inside the conv just before it */
                    assert_int_equal(g->nodes[i - 1].type, MB_OP_CONV);
                continue;
            }
            if (a->type != MB_OP_RELU && a->type != MB_OP_CLIP && a->type != MB_OP_LEAKYRELU)
                continue;
            n_act++;
            n_fused += times[i].ms == 0.0;
            if (times[i].ms == 0.0) {
                const mb_node *p = &g->nodes[a->inputs[0]];
                assert_true(p->type == MB_OP_CONV || p->type == MB_OP_BATCHNORM ||
                            (p->type == MB_OP_ADD && times[a->inputs[0]].ms == 0.0));
            }
        }
        print_message("%s: %d of %d activations and %d of %d Adds ran inside their conv\n", models[m], n_fused,
                      n_act, n_add_fused, n_add);
        assert_true(n_fused > 0);
        if (strcmp(models[m], "resnet18") == 0 || strcmp(models[m], "resnet50") == 0 ||
            strcmp(models[m], "mobilenetv2") == 0) {
            assert_true(n_add > 0);
            assert_int_equal(n_add_fused, n_add);
        }
        if (strcmp(models[m], "densenet121") == 0) /* every pre-activation Relu runs inside its BatchNorm */
            assert_int_equal(n_fused, n_act);
        free(plain);
        free(fused);
        free(declined);
        free(times);
        for (int k = 0; in[k]; k++)
            mb_tensor_free(in[k]);
        free(in);
        mb_graph_free(g);
    }
    mb_backend_free(cpu);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results),
        cmocka_unit_test(test_keep_all_and_times),
        cmocka_unit_test(test_make_inputs),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_backend_faults),
        cmocka_unit_test(test_fused_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
