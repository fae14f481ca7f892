/* Every zoo model through ONNX and back: export (mb_onnx_save), import
 * (mb_onnx_load) and compare node by node (type, name, inputs, attributes,
 * shapes, weights bit for bit), then run both on the cpu backend and require
 * identical outputs. Also a TensorProto write/read round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/onnx.h"
#include "mecbed/platform.h"

static char dir[256];

static void same_graph(const mb_graph *a, const mb_graph *b)
{
    if (a->n_nodes != b->n_nodes)
        fail_msg("%s: %d nodes exported, %d imported", a->name, a->n_nodes, b->n_nodes);
    for (int i = 0; i < a->n_nodes; i++) {
        const mb_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (x->type != y->type || strcmp(x->name, y->name))
            fail_msg("%s node %d: %s '%s' came back as %s '%s'", a->name, i, mb_op_name(x->type), x->name,
                     mb_op_name(y->type), y->name);
        assert_int_equal(x->n_inputs, y->n_inputs);
        assert_memory_equal(x->inputs, y->inputs, sizeof(int) * (size_t)x->n_inputs);
        mb_op_attrs ax = x->a, ay = y->a;
        ax.bn_folded = ay.bn_folded = 0;
        if (memcmp(&ax, &ay, sizeof ax))
            fail_msg("%s node '%s' (%s): attributes differ after the round trip", a->name, x->name,
                     mb_op_name(x->type));
        assert_int_equal(x->out_ndim, y->out_ndim);
        assert_memory_equal(x->out_dims, y->out_dims, sizeof(int64_t) * (size_t)x->out_ndim);
        if (x->n_params != y->n_params)
            fail_msg("%s node '%s': %d params exported, %d imported", a->name, x->name, x->n_params, y->n_params);
        for (int k = 0; k < x->n_params; k++) {
            assert_true(mb_tensor_same_shape(x->params[k], y->params[k]));
            if (memcmp(x->params[k]->data, y->params[k]->data, mb_tensor_bytes(x->params[k])))
                fail_msg("%s node '%s': weights %d differ", a->name, x->name, k);
        }
    }
    assert_int_equal(a->n_outputs, b->n_outputs);
    assert_memory_equal(a->outputs, b->outputs, sizeof(int) * (size_t)a->n_outputs);
}

static void test_zoo_roundtrip(void **state)
{
    (void)state;
    char err[1024], path[512];
    mb_backend *be = mb_backend_new("cpu", 1, err, sizeof err);
    assert_non_null(be);
    const char *const *names = mb_zoo_names();
    int n = 0;
    for (; names[n]; n++) {
        mb_graph *g = mb_zoo_build(names[n], MB_ZOO_SEED, err, sizeof err);
        if (!g)
            fail_msg("zoo %s: %s", names[n], err);
        snprintf(path, sizeof path, "%s/%s.onnx", dir, names[n]);
        if (mb_onnx_save(g, path, err, sizeof err))
            fail_msg("export %s: %s", names[n], err);
        mb_graph *h = mb_onnx_load(path, err, sizeof err);
        if (!h)
            fail_msg("import %s: %s", names[n], err);
        unlink(path);
        same_graph(g, h);

        mb_tensor **in = mb_exec_make_inputs(g, 3);
        mb_tensor **o1 = NULL, **o2 = NULL;
        if (mb_exec_run(g, be, in, &o1, NULL, NULL, err, sizeof err) ||
            mb_exec_run(h, be, in, &o2, NULL, NULL, err, sizeof err))
            fail_msg("run %s: %s", names[n], err);
        for (int k = 0; k < g->n_outputs; k++) {
            double d = mb_tensor_max_abs_diff(o1[k], o2[k]);
            if (d != 0)
                fail_msg("%s output %d differs after the round trip by %g", names[n], k, d);
            mb_tensor_free(o1[k]);
            mb_tensor_free(o2[k]);
        }
        print_message("%s: %d nodes, outputs identical\n", names[n], g->n_nodes);
        int n_in = 0;
        for (int i = 0; i < g->n_nodes; i++)
            n_in += g->nodes[i].type == MB_OP_INPUT;
        for (int k = 0; k < n_in; k++)
            mb_tensor_free(in[k]);
        free(in);
        free(o1);
        free(o2);
        mb_graph_free(g);
        mb_graph_free(h);
    }
    assert_true(n >= 9);
    mb_backend_free(be);
}

static void test_folded_and_hand_built(void **state)
{
    (void)state;
    char err[1024], path[512];
    /* BN folded into convs (bias added), and every op the exporter writes */
    mb_graph *g = mb_zoo_build("mobilenetv2", MB_ZOO_SEED, err, sizeof err);
    assert_non_null(g);
    assert_true(mb_graph_fold_batchnorm(g) > 0);
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/folded.onnx", dir);
    assert_int_equal(mb_onnx_save(g, path, err, sizeof err), 0);
    mb_graph *h = mb_onnx_load(path, err, sizeof err);
    if (!h)
        fail_msg("%s", err);
    same_graph(g, h);
    mb_graph_free(g);
    mb_graph_free(h);

    static const char *text =
        "mecbed-model 1\n"
        "Input x shape=1,2,6,6\n"
        "Pad p x pad_amounts=0,0,1,2,0,0,0,1 pad_mode=reflect\n"
        "Resize r p scales=1,1,2,1.5 resize_mode=linear coord_mode=align_corners\n"
        "ConvTranspose t r W=uniform(2x3x3x3,-1,1) B=const(3,0.5) stride=2,1 pads=1,0,1,0 output_padding=1,0\n"
        "Clip c t alpha=-1 beta=1\n"
        "HardSigmoid hs c alpha=0.3 beta=0.4\n"
        "LeakyRelu lr hs alpha=0.1\n"
        "HardSwish hw lr\n"
        "Sigmoid sg hw\n"
        "MaxPool mp sg kernel=2,2 stride=2,2 ceil_mode=1 dilation=1,1\n"
        "AveragePool ap sg kernel=3,3 stride=2,2 pads=1,1,1,1 count_include_pad=1\n"
        "Div dv ap B=const(1,4)\n"
        "Flatten f mp axis=1\n"
        "Flatten f2 dv axis=1\n"
        "Concat cc f,f2 axis=1\n"
        "Gemm gm cc trans_b=1 alpha=0.5 beta=2 B=uniform(5x672,-1,1) C=const(5,1)\n"
        "Softmax sm gm axis=1\n"
        "Reshape rs sm shape=1,5,1\n"
        "MatMul mm rs B=uniform(1x3,-1,1)\n"
        "Identity id mm\n"
        "output id sm\n";
    snprintf(path, sizeof path, "%s/all.mbm", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    g = mb_modelfile_read(path, err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/all.onnx", dir);
    if (mb_onnx_save(g, path, err, sizeof err))
        fail_msg("%s", err);
    h = mb_onnx_load(path, err, sizeof err);
    if (!h)
        fail_msg("%s", err);
    same_graph(g, h);
    mb_graph_free(g);
    mb_graph_free(h);
}

static void test_tensor_pb_roundtrip(void **state)
{
    (void)state;
    char err[512], path[512];
    int64_t d[3] = {2, 3, 4};
    mb_tensor *t = mb_tensor_new(3, d);
    mb_tensor_fill_uniform(t, 9, -5, 5);
    snprintf(path, sizeof path, "%s/t.pb", dir);
    assert_int_equal(mb_onnx_tensor_write(t, "x", path, err, sizeof err), 0);
    mb_onnx_tensor *r = mb_onnx_tensor_read(path, err, sizeof err);
    assert_non_null(r);
    assert_string_equal(r->name, "x");
    assert_true(mb_tensor_same_shape(t, r->f));
    assert_memory_equal(t->data, r->f->data, mb_tensor_bytes(t));
    mb_onnx_tensor_free(r);
    assert_int_equal(mb_onnx_tensor_write(t, "x", "/nonexistent-dir/t.pb", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/t.pb"));
    mb_tensor_free(t);
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    /* the exported zoo runs to 550 MB a file: memory-backed /dev/shm when there is one */
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/mecbed-test-onnxrt.XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_pb_roundtrip),
        cmocka_unit_test(test_folded_and_hand_built),
        cmocka_unit_test(test_zoo_roundtrip),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
