/* The text model format: reading, writing, round trips (bit-identical
 * weights), weight sources, and "file:line: what is wrong" for malformed
 * files. Also mb_model_load's dispatch between zoo names and files. */
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

#include "mecbed/model.h"
#include "mecbed/npy.h"
#include "mecbed/platform.h"

static char dir[256];

static const char *tmp(const char *name)
{
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *small_net =
    "mecbed-model 1\n"
    "name small   # a comment\n"
    "seed 7\n"
    "\n"
    "Input data shape=1,3,8,8\n"
    "Conv c1 data kernel=3,3 pads=1 W=he(4x3x3x3) B=const(4,0.5)\n"
    "BatchNormalization bn c1 scale=uniform(4,0.5,1.5) bias=const(4,0) mean=values(4,0,0.1,0.2,0.3) var=const(4,1)\n"
    "Clip r6 bn alpha=0 beta=6\n"
    "MaxPool p r6 kernel=2 stride=2\n"
    "Conv c2 p W=lecun(4x4x1x1,99)\n"
    "Add s c2,p\n"
    "Concat cat s p axis=1\n"
    "GlobalAveragePool g cat\n"
    "Flatten f g axis=1\n"
    "Gemm fc f trans_b=1 B=uniform(5x8,-0.1,0.1) C=const(5,0)\n"
    "Softmax sm fc axis=1\n"
    "output sm fc\n";

static void test_read_small(void **state)
{
    (void)state;
    char err[512] = "";
    put(tmp("small.mbm"), small_net);
    mb_graph *g = mb_modelfile_read(tmp("small.mbm"), err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    assert_string_equal(g->name, "small");
    assert_int_equal(g->n_nodes, 12);
    assert_int_equal(g->n_outputs, 2);
    assert_int_equal(g->outputs[0], mb_graph_find(g, "sm"));
    const mb_node *c1 = &g->nodes[mb_graph_find(g, "c1")];
    assert_int_equal(c1->a.pads[3], 1); /* one value fills all four */
    assert_int_equal(c1->n_params, 2);
    float bound = sqrtf(6.0f / 27.0f);
    for (int i = 0; i < 4 * 27; i++)
        assert_true(fabsf(c1->params[0]->data[i]) <= bound);
    assert_true(c1->params[1]->data[3] == 0.5f);
    const mb_node *bn = &g->nodes[mb_graph_find(g, "bn")];
    assert_true(bn->a.epsilon == 1e-5f); /* ONNX default applied */
    assert_true(bn->params[2]->data[3] == 0.3f);
    const mb_node *c2 = &g->nodes[mb_graph_find(g, "c2")];
    assert_int_equal(c2->a.kernel[0], 1); /* from W */
    /* explicit seed: the same values as the generator gives directly */
    mb_tensor *ref = mb_tensor_new4(4, 4, 1, 1);
    mb_tensor_fill_uniform(ref, 99, -sqrtf(3.0f / 4), sqrtf(3.0f / 4));
    assert_memory_equal(ref->data, c2->params[0]->data, 16 * sizeof(float));
    mb_tensor_free(ref);
    const mb_node *fc = &g->nodes[mb_graph_find(g, "fc")];
    assert_true(fc->a.alpha == 1.0f && fc->a.beta == 1.0f);
    assert_int_equal(fc->out_dims[1], 5);
    assert_int_equal(g->nodes[mb_graph_find(g, "cat")].out_dims[1], 8);
    mb_graph_free(g);
}

/* A generated tensor's values depend on the file seed, node and weight name,
 * not on where the node sits in the file. */
static void test_seed_stable_under_reordering(void **state)
{
    (void)state;
    char err[512];
    put(tmp("a.mbm"), "mecbed-model 1\nseed 3\nInput x shape=1,2,4,4\n"
                      "Conv a x W=he(2x2x1x1)\nConv b x W=he(2x2x3x3)\noutput a b\n");
    put(tmp("b.mbm"), "mecbed-model 1\nseed 3\nInput x shape=1,2,4,4\n"
                      "Conv b x W=he(2x2x3x3)\nConv a x W=he(2x2x1x1)\noutput a b\n");
    mb_graph *ga = mb_modelfile_read(tmp("a.mbm"), err, sizeof err);
    mb_graph *gb = mb_modelfile_read(tmp("b.mbm"), err, sizeof err);
    assert_non_null(ga);
    assert_non_null(gb);
    const mb_tensor *wa = ga->nodes[mb_graph_find(ga, "b")].params[0];
    const mb_tensor *wb = gb->nodes[mb_graph_find(gb, "b")].params[0];
    assert_memory_equal(wa->data, wb->data, mb_tensor_bytes(wa));
    /* and a different seed gives different values */
    put(tmp("c.mbm"), "mecbed-model 1\nseed 4\nInput x shape=1,2,4,4\nConv b x W=he(2x2x3x3)\n");
    mb_graph *gc = mb_modelfile_read(tmp("c.mbm"), err, sizeof err);
    assert_non_null(gc);
    assert_true(memcmp(wa->data, gc->nodes[1].params[0]->data, mb_tensor_bytes(wa)) != 0);
    mb_graph_free(ga);
    mb_graph_free(gb);
    mb_graph_free(gc);
}

static void test_npy_and_bin_weights(void **state)
{
    (void)state;
    char err[512];
    mb_tensor *w = mb_tensor_new4(3, 2, 3, 3);
    mb_tensor_fill_uniform(w, 5, -1, 1);
    assert_int_equal(mb_npy_write(w, tmp("w.npy"), err, sizeof err), 0);
    FILE *f = fopen(tmp("w.bin"), "wb");
    fwrite("padding!", 1, 8, f); /* the tensor starts at byte 8 */
    fwrite(w->data, sizeof(float), 54, f);
    fclose(f);
    put(tmp("w.mbm"), "mecbed-model 1\nInput x shape=1,2,5,5\n"
                      "Conv a x W=npy(w.npy)\nConv b x W=bin(3x2x3x3,w.bin,8)\noutput a b\n");
    mb_graph *g = mb_modelfile_read(tmp("w.mbm"), err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    assert_memory_equal(g->nodes[1].params[0]->data, w->data, mb_tensor_bytes(w));
    assert_memory_equal(g->nodes[2].params[0]->data, w->data, mb_tensor_bytes(w));
    mb_graph_free(g);
    mb_tensor_free(w);
}

/* Every attribute kind, every op the format names, written and read back. */
static void test_round_trip_all_attrs(void **state)
{
    (void)state;
    char err[512];
    const char *text =
        "mecbed-model 1\n"
        "Input x shape=1,4,6,6\n"
        "Constant k value=uniform(1x4x1x1,-1,1)\n"
        "Conv c x kernel=3,3 stride=2,1 pads=0,1,2,1 dilation=1,2 group=2 W=he(4x2x3x3) B=uniform(4,-1,1) bn_folded=1\n"
        "ConvTranspose ct x stride=2 output_padding=1,1 auto_pad=SAME_UPPER W=he(4x2x2x2)\n"
        "AveragePool ap x kernel=3 stride=2 pads=1 ceil_mode=1 count_include_pad=1\n"
        "MaxPool mp x kernel=2 auto_pad=SAME_LOWER\n"
        "Mul m x,k\n"
        "Sub s m B=const(1,0.25)\n"
        "Div d s B=const(scalar,2)\n"
        "LeakyRelu lr d\n"
        "HardSigmoid hs lr alpha=0.3\n"
        "HardSwish hw hs\n"
        "Sigmoid sg hw\n"
        "Clip cl sg\n"
        "Pad pd cl pad_amounts=0,0,1,2,0,0,3,0 pad_mode=reflect\n"
        "Pad pc cl pad_amounts=0,0,1,1,0,0,1,1 pad_value=-inf\n"
        "Resize rz cl scales=1,1,2,2 resize_mode=linear coord_mode=align_corners nearest_mode=floor cubic_coeff_a=-0.5\n"
        "Identity id rz\n"
        "Reshape rs id shape=1,-1\n"
        "MatMul mm rs B=uniform(576x3,-1,1)\n"
        "Gemm gm mm,mm trans_b=1 alpha=0.5 beta=0 C=const(1,1)\n"
        "Softmax so gm axis=-1\n"
        "output so c ct ap mp pd pc\n";
    put(tmp("all.mbm"), text);
    mb_graph *g = mb_modelfile_read(tmp("all.mbm"), err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    const mb_node *lr = &g->nodes[mb_graph_find(g, "lr")];
    assert_true(lr->a.alpha == 0.01f);
    const mb_node *hs = &g->nodes[mb_graph_find(g, "hs")];
    assert_true(hs->a.alpha == 0.3f && hs->a.beta == 0.5f);
    const mb_node *cl = &g->nodes[mb_graph_find(g, "cl")];
    assert_true(isinf(cl->a.alpha) && cl->a.alpha < 0 && isinf(cl->a.beta));
    const mb_node *gm = &g->nodes[mb_graph_find(g, "gm")];
    assert_true(gm->a.alpha == 0.5f && gm->a.beta == 0.0f);
    assert_int_equal(gm->n_params, 1); /* two inputs: the only weight is C */
    assert_int_equal(g->nodes[mb_graph_find(g, "rz")].a.coord_mode, MB_COORD_ALIGN_CORNERS);
    assert_int_equal(g->nodes[mb_graph_find(g, "pd")].out_dims[2], 6 + 1 + 3);
    assert_int_equal(g->nodes[mb_graph_find(g, "rs")].out_dims[1], 4 * 12 * 12);

    assert_int_equal(mb_modelfile_write(g, tmp("all2.mbm"), err, sizeof err), 0);
    mb_graph *h = mb_modelfile_read(tmp("all2.mbm"), err, sizeof err);
    if (!h)
        fail_msg("%s", err);
    assert_int_equal(h->n_nodes, g->n_nodes);
    assert_int_equal(h->n_outputs, g->n_outputs);
    for (int i = 0; i < g->n_nodes; i++) {
        assert_string_equal(h->nodes[i].name, g->nodes[i].name);
        assert_memory_equal(&h->nodes[i].a, &g->nodes[i].a, sizeof(mb_op_attrs));
        assert_int_equal(h->nodes[i].n_params, g->nodes[i].n_params);
        for (int k = 0; k < g->nodes[i].n_params; k++) {
            assert_true(mb_tensor_same_shape(h->nodes[i].params[k], g->nodes[i].params[k]));
            assert_memory_equal(h->nodes[i].params[k]->data, g->nodes[i].params[k]->data,
                                mb_tensor_bytes(g->nodes[i].params[k]));
        }
    }
    assert_true(mb_graph_hash(g) == mb_graph_hash(h));
    mb_graph_free(g);
    mb_graph_free(h);
}

static void test_round_trip_zoo(void **state)
{
    (void)state;
    char err[512];
    const char *models[] = {"mobilenetv2", "googlenet"};
    for (int m = 0; m < 2; m++) {
        mb_graph *g = mb_zoo_build(models[m], MB_ZOO_SEED, err, sizeof err);
        assert_non_null(g);
        assert_int_equal(mb_modelfile_write(g, tmp("zoo.mbm"), err, sizeof err), 0);
        mb_graph *h = mb_modelfile_read(tmp("zoo.mbm"), err, sizeof err);
        if (!h)
            fail_msg("%s", err);
        assert_string_equal(h->name, g->name);
        assert_true(mb_graph_hash(g) == mb_graph_hash(h));
        assert_int_equal(mb_graph_params(h), mb_graph_params(g));
        assert_int_equal(mb_graph_macs(h), mb_graph_macs(g));
        mb_graph_free(g);
        mb_graph_free(h);
    }
    unlink(tmp("zoo.mbm.bin"));
}

/* Model files with any file name: the weights' sidecar is named after the
 * model file, so a name holding a comma (`import m.onnx -o m-1,3,48,192.mbm`
 * once wrote a file infer refused), a space, quotes, '#', parentheses, '='
 * or a backslash is written quoted and read back bit-identically; npy() takes
 * a quoted name too. Malformed quoting is an error at its line. */
static void test_any_file_name(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = mb_zoo_build("mobilenetv2", MB_ZOO_SEED, err, sizeof err);
    assert_non_null(g);
    const char *names[] = {"m-1,3,48,192.mbm", "a b.mbm", "q\"uote.mbm", "x#y(1)=.mbm", "back\\slash.mbm",
                           "it's.mbm"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[600], bin[640];
        snprintf(path, sizeof path, "%s", tmp(names[k]));
        snprintf(bin, sizeof bin, "%s.bin", path);
        assert_int_equal(mb_modelfile_write(g, path, err, sizeof err), 0);
        assert_int_equal(access(bin, F_OK), 0); /* the sidecar has the model's name */
        mb_graph *h = mb_modelfile_read(path, err, sizeof err);
        if (!h)
            fail_msg("%s: %s", names[k], err);
        assert_true(mb_graph_hash(g) == mb_graph_hash(h));
        mb_graph_free(h);
        unlink(path);
        unlink(bin);
    }
    /* the reader's side by hand: a quoted npy() and bin() name */
    mb_tensor *w = mb_tensor_new4(3, 2, 3, 3);
    mb_tensor_fill_uniform(w, 5, -1, 1);
    assert_int_equal(mb_npy_write(w, tmp("w, \"1\".npy"), err, sizeof err), 0);
    FILE *f = fopen(tmp("w #2.bin"), "wb");
    assert_non_null(f);
    fwrite(w->data, sizeof(float), 54, f);
    fclose(f);
    put(tmp("q.mbm"), "mecbed-model 1\nInput x shape=1,2,5,5\n"
                      "Conv a x W=npy(\"w, \\\"1\\\".npy\")  # a comment\n"
                      "Conv b x W=bin(3x2x3x3,\"w #2.bin\",0)\noutput a b\n");
    mb_graph *q = mb_modelfile_read(tmp("q.mbm"), err, sizeof err);
    if (!q)
        fail_msg("%s", err);
    assert_memory_equal(q->nodes[1].params[0]->data, w->data, mb_tensor_bytes(w));
    assert_memory_equal(q->nodes[2].params[0]->data, w->data, mb_tensor_bytes(w));
    mb_graph_free(q);
    const char *bad[][2] = {
        {"Conv b x W=bin(3x2x3x3,\"w #2.bin,0)\n", "q.mbm:3: a quoted file name without its closing '\"'"},
        {"Conv b x W=bin(3x2x3x3,\"w #2\".bin,0)\n", "q.mbm:3: W: bin() takes DIMS, a file name"},
        {"Conv b x W=bin(3x2x3x3,w\"2.bin,0)\n", "q.mbm:3: a quoted file name without its closing"},
        {"Conv b x W=bin(3x2x3x3,w\"2\".bin,0)\n", "q.mbm:3: W: bin() takes DIMS, a file name"},
        {"Conv b x W=npy(\"\")\n", "q.mbm:3: W: npy() takes one file name"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char text[256];
        snprintf(text, sizeof text, "mecbed-model 1\nInput x shape=1,2,5,5\n%soutput b\n", bad[k][0]);
        put(tmp("q.mbm"), text);
        assert_null(mb_modelfile_read(tmp("q.mbm"), err, sizeof err));
        if (!strstr(err, bad[k][1]))
            fail_msg("'%s' lacks '%s'", err, bad[k][1]);
    }
    assert_int_equal(mb_modelfile_write(g, tmp("new\nline.mbm"), err, sizeof err), -1);
    assert_non_null(strstr(err, "a control character in the file name"));
    mb_tensor_free(w);
    mb_graph_free(g);
}

static void test_writer_sanitises_names(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = mb_graph_new("odd names");
    mb_node in = {.type = MB_OP_INPUT};
    strcpy(in.name, "input 0");
    in.a.shape_ndim = 2;
    in.a.shape[0] = 1;
    in.a.shape[1] = 4;
    mb_graph_add(g, &in);
    mb_node r = {.type = MB_OP_RELU, .n_inputs = 1, .inputs = {0}};
    strcpy(r.name, "/relu,1=x#");
    mb_graph_add(g, &r);
    g->outputs[g->n_outputs++] = 1;
    assert_int_equal(mb_graph_infer(g, err, sizeof err), 0);
    assert_int_equal(mb_modelfile_write(g, tmp("odd.mbm"), err, sizeof err), 0);
    mb_graph *h = mb_modelfile_read(tmp("odd.mbm"), err, sizeof err);
    if (!h)
        fail_msg("%s", err);
    assert_int_equal(mb_graph_find(h, "/relu_1_x_"), 1);
    assert_string_equal(h->name, "odd_names");
    mb_graph_free(h);
    /* two names that become equal are an error, not a silent merge */
    strcpy(g->nodes[0].name, "a b");
    strcpy(g->nodes[1].name, "a,b");
    assert_int_equal(mb_modelfile_write(g, tmp("odd.mbm"), err, sizeof err), -1);
    assert_non_null(strstr(err, "a_b"));
    mb_graph_free(g);
}

typedef struct bad_case {
    const char *text;
    const char *where; /* ":line:" expected */
    const char *what;
} bad_case;

static void test_malformed(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"", "", "empty file"},
        {"# only a comment\n", "", "empty file"},
        {"hello 1\n", ":1:", "not a mecbed model file"},
        {"mecbed-model 2\n", ":1:", "version 2 is not supported"},
        {"mecbed-model 1\n", ":2:", "no operators"},
        {"mecbed-model 1\nInput x shape=1,3\nCnov c x\n", ":3:", "unknown operator 'Cnov'"},
        {"mecbed-model 1\nInput x shape=1,3\nRelu\n", ":3:", "missing node name"},
        {"mecbed-model 1\nInput x shape=1,3\nRelu x x\n", ":3:", "defined twice"},
        {"mecbed-model 1\nInput x shape=1,3\nRelu r y\n", ":3:", "input 'y' is not defined above"},
        {"mecbed-model 1\nInput x shape=1,3\nRelu r x colour=red\n", ":3:", "unknown attribute 'colour'"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\n\nConv c x kernel=3,x W=he(1x3x3x3)\n", ":4:",
         "kernel: 'x' is not an integer"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x kernel=3,3,3 W=he(1x3x3x3)\n", ":3:",
         "kernel: expected at most 2"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x pads=1,1 W=he(1x3x3x3)\n", ":3:", "expected 1 or 4 values"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=he(1x3xx3)\n", ":3:", "W: dims '1x3xx3'"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=gauss(1x3x3x3)\n", ":3:", "unknown weight kind 'gauss'"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=he\n", ":3:", "expected a weight spec"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=values(1x3x1x1,1,2)\n", ":3:",
         "2 values given, its dims hold 3"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=values(1x2,1,zz)\n", ":3:", "'zz' is not a number"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=uniform(1x3x1x1,1,0)\n", ":3:", "lo <= hi"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=npy(nope.npy)\n", ":3:", "nope.npy"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=bin(1x3x1x1,nope.bin,0)\n", ":3:", "cannot open"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x W=he(1x3x1x1) W=he(1x3x1x1)\n", ":3:", "given twice"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nConv c x B=const(1,0)\n", ":3:", "parameter 0 ('W') is missing"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nMaxPool p x kernel=2 auto_pad=SOMETIMES\n", ":3:",
         "expected one of NOTSET"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d W=he(2000000000x3x3x3)\n", ":3:",
         "more than 134217728 values in one tensor"},
        /* attribute ranges, checked by shape inference (same rules for ONNX and exports) */
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d W=he(16x3x0x0)\n", ":3:", "weights dimension 2 is 0"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d W=he(0x3x3x3)\n", ":3:", "weights dimension 0 is 0"},
        {"mecbed-model 1\nInput d shape=1,4,8,8\nConv c d group=-1 W=he(4x4x3x3)\n", ":3:", "group is -1"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d dilation=-1 W=he(4x3x3x3)\n", ":3:",
         "dilation[0] is -1"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d stride=-2 W=he(4x3x3x3)\n", ":3:", "stride[0] is -2"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d pads=3 W=he(4x3x3x3)\n", ":3:", "pads[0] is 3"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConv c d pads=0,0,0,-1 W=he(4x3x3x3)\n", ":3:", "pads[3] is -1"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nConvTranspose t d stride=2 output_padding=9 W=he(3x2x3x3)\n",
         ":3:", "output_padding[0] is 9"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nMaxPool p d kernel=-1\n", ":3:", "kernel[0] is -1"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nMaxPool p d kernel=2 pads=2\n", ":3:", "pads[0] is 2"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nResize r d scales=1,1,nan,2\n", ":3:", "scales[2] is nan"},
        {"mecbed-model 1\nInput d shape=1,3,8,8\nResize r d scales=1,1,-1,2\n", ":3:", "scales[2] is -1"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nRelu r x\nseed 4\n", ":4:", "before the first operator"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\noutput x\nRelu r x\n", ":4:", "before the 'output' line"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\noutput zz\n", ":3:", "output 'zz' is not a node"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nRelu r x stride=\n", ":3:", "empty value"},
        /* errors found by shape inference point at the operator's line */
        {"mecbed-model 1\nInput x shape=1,3,4,4\nRelu r x\nConv c r W=he(8x4x3x3)\n", ":4:",
         "'c' (Conv): channels 3"},
        {"mecbed-model 1\n# comment\nInput x shape=1,8\n\nGemm fc x B=he(4x16)\n", ":5:", "inner dimensions differ"},
        {"mecbed-model 1\nInput x shape=1,3,4,4\nPad p x pad_amounts=0,0,0,0,0,0,0,0,1,1\n", ":3:",
         "pad_amounts has values beyond"},
        {"mecbed-model 1\nInput x\n", ":2:", "input needs a shape"},
    };
    char path[512];
    snprintf(path, sizeof path, "%s", tmp("bad.mbm"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        put(path, cases[i].text);
        char err[512] = "";
        mb_graph *g = mb_modelfile_read(path, err, sizeof err);
        char want[600];
        snprintf(want, sizeof want, "%s%s", path, cases[i].where);
        if (g || strncmp(err, want, strlen(want)) || !strstr(err, cases[i].what)) {
            mb_graph_free(g);
            fail_msg("case %zu: expected \"%s ... %s\", got \"%s\"", i, want, cases[i].what, g ? "(accepted)" : err);
        }
    }
    char err[512];
    assert_null(mb_modelfile_read(tmp("does-not-exist.mbm"), err, sizeof err));
    assert_non_null(strstr(err, "No such file"));
}

/* Bounded mutation fuzzing: random byte edits of a valid file either read
 * or fail with "path:..." (never crash; run under SANITIZE for memory bugs). */
static void test_mutations(void **state)
{
    (void)state;
    size_t len = strlen(small_net);
    char *buf = malloc(len + 64);
    static const char alphabet[] = "=,()x#- \n0123456789abcWB.eE+-inf";
    uint64_t rng = 12345;
    char path[512];
    snprintf(path, sizeof path, "%s", tmp("fuzz.mbm"));
    int accepted = 0;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, small_net, len + 1);
        size_t n = len;
        int edits = 1 + (int)(mb_rng_next(&rng) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(mb_rng_next(&rng) % n);
            int kind = (int)(mb_rng_next(&rng) % 3);
            char c = alphabet[mb_rng_next(&rng) % (sizeof alphabet - 1)];
            if (kind == 0) {
                buf[at] = c; /* replace */
            } else if (kind == 1 && n + 1 < len + 64) {
                memmove(buf + at + 1, buf + at, n - at + 1); /* insert */
                buf[at] = c;
                n++;
            } else if (n > 1) {
                memmove(buf + at, buf + at + 1, n - at); /* delete */
                n--;
            }
        }
        FILE *f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        char err[512] = "";
        mb_graph *g = mb_modelfile_read(path, err, sizeof err);
        if (g) {
            accepted++;
            mb_graph_free(g);
        } else if (strncmp(err, path, strlen(path))) {
            fail_msg("iteration %d: error does not name the file: \"%s\"", iter, err);
        }
    }
    print_message("mutations: %d of 1500 still valid models\n", accepted);
    free(buf);
}

/* The example in docs/model-format.md reads as documented. */
static void test_doc_example(void **state)
{
    (void)state;
    FILE *f = fopen("docs/model-format.md", "r");
    /* tests run from the repository root (tests/run.sh): a missing doc is a
     * failure, not a skip that would show as a pass */
    if (!f)
        fail_msg("docs/model-format.md not found (run from the repository root)");
    char line[512], text[4096] = "";
    int in_block = 0, done = 0;
    while (!done && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "```", 3)) {
            done = in_block;
            in_block = !in_block;
        } else if (in_block && strlen(text) + strlen(line) < sizeof text) {
            strcat(text, line);
        }
    }
    fclose(f);
    assert_non_null(strstr(text, "mecbed-model 1"));
    char err[512];
    mb_tensor *w = mb_tensor_new4(16, 16, 3, 3);
    assert_int_equal(mb_npy_write(w, tmp("conv2_w.npy"), err, sizeof err), 0);
    mb_tensor_free(w);
    put(tmp("doc.mbm"), text);
    mb_graph *g = mb_modelfile_read(tmp("doc.mbm"), err, sizeof err);
    if (!g)
        fail_msg("%s", err);
    assert_string_equal(g->name, "tiny_net");
    assert_int_equal(g->nodes[g->outputs[0]].out_dims[1], 10);
    mb_graph_free(g);
}

static void test_model_load(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = mb_model_load("ResNet-18", err, sizeof err); /* loose zoo name */
    if (!g)
        fail_msg("%s", err);
    assert_string_equal(g->name, "resnet18");
    mb_graph_free(g);
    put(tmp("small.mbm"), small_net);
    g = mb_model_load(tmp("small.mbm"), err, sizeof err);
    assert_non_null(g);
    assert_int_equal(g->nodes[g->n_nodes - 1].out_dims[1], 5);
    mb_graph_free(g);
    assert_null(mb_model_load("resnet19", err, sizeof err));
    assert_non_null(strstr(err, "unknown model 'resnet19'"));
    assert_non_null(strstr(err, "resnet18")); /* lists what exists */
    assert_null(mb_model_load(tmp("nope.mbm"), err, sizeof err));
    assert_non_null(strstr(err, "no such file"));
    assert_null(mb_model_load(dir, err, sizeof err));
    assert_non_null(strstr(err, "is a directory"));
    put(tmp("x.onnx"), "not really onnx");
    assert_null(mb_model_load(tmp("x.onnx"), err, sizeof err));
    assert_non_null(strstr(err, "x.onnx"));
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    snprintf(dir, sizeof dir, "%s/mecbed-modelfile-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_small),
        cmocka_unit_test(test_seed_stable_under_reordering),
        cmocka_unit_test(test_npy_and_bin_weights),
        cmocka_unit_test(test_round_trip_all_attrs),
        cmocka_unit_test(test_round_trip_zoo),
        cmocka_unit_test(test_any_file_name),
        cmocka_unit_test(test_writer_sanitises_names),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_doc_example),
        cmocka_unit_test(test_model_load),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
