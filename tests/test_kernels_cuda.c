/* The CUDA backend (kernels/cuda) against the reference backend, op by op
 * and shape by shape (tails, padding incl. asymmetric, stride, dilation,
 * groups, depthwise, 1x1, broadcasting, batch > 1, every Pad and Resize
 * mode), and every tile split of every local op against the same backend's
 * whole-op output. The shapes are those of tests/test_kernels_cpu.c plus
 * the paths only this backend has (output-channel slices, Pad/Resize modes).
 *
 * Oracle (NOTES.md): bit-exact where the same kernel computes the same
 * elements, else max abs error <= 1e-5 of the output's scale.
 *  - cuda vs ref: 1e-5 of scale (cuBLAS sums in its own order, the GPU fuses
 *    multiply-adds, expf differs in the last bits, GlobalAveragePool reduces
 *    as a tree).
 *  - tiles vs whole on cuda: bit-exact for every kernel of our own (one
 *    thread per output element, the same operations whatever the tile);
 *    cuBLAS-path convolutions are held to 1e-5 of scale (another N per tile
 *    may select another cuBLAS kernel).
 *
 * The suite runs twice: first on the host-simulation harness ("cuda-hostsim",
 * kernels/cuda: the backend's own request checks, host planning, kernel
 * functors run in host loops and its cuBLAS argument mapping run by a
 * column-major reference GEMM), which needs no GPU and so runs everywhere;
 * then on the GPU. Without a GPU (or in a build without nvcc) the GPU part
 * is skipped with exit 77 and the reason, after the harness part passed.
 * Also without a GPU: the backend refuses to start and says why, and the
 * NVML loader reports why it has no energy counter instead of inventing one. */
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
#include <dirent.h>
#include <sys/stat.h>

#include "mecbed/backend.h"
#include "mecbed/onnx.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"

/* kernels/cuda (kernels/cuda/mb_cuda.h). In builds that found nvcc this test
 * links those objects itself (mk/cuda.mk) for the host-simulation harness;
 * without nvcc they are absent (weak), and the test skips. The GPU is
 * reached like every program reaches it: mb_backend_new("cuda"), which opens
 * libmecbed-cuda.so. */
typedef struct mbc_nvml mbc_nvml;
const char *mb_cuda_device_name(const mb_backend *be) __attribute__((weak));
mbc_nvml *mbc_nvml_open(const char *pci_bus_id, char *why, size_t whylen) __attribute__((weak));
int mbc_nvml_energy_mj(mbc_nvml *m, unsigned long long *mj, char *why, size_t whylen) __attribute__((weak));
void mbc_nvml_close(mbc_nvml *m) __attribute__((weak));
mb_backend *mbc_hostsim_new(void) __attribute__((weak));

static mb_backend *ref_be, *cuda;
static int n_ops, n_tilings, n_gemm_tiles, n_gemm_tiles_exact;

/* Conv shapes only the CUDA backend treats specially: outputs >= 1 MiB with
 * batch 1 and one group are computed as GEMM output-channel slices, each
 * downloaded while the next is computed. In order: pointwise sliced, im2col
 * sliced, batch 2 (not sliced), 1x1 grouped (dilation ignored). */
#define KERNEL_CASES_EXTRA_CONV \
        {1, 32, 64, 64, 72, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, \
        {1, 16, 40, 80, 90, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, \
        {2, 16, 40, 60, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, \
        {1, 8, 16, 33, 35, 1, 1, 1, 1, 0, 0, 0, 0, 3, 3, 4, 1},
#include "kernel_cases.h"

/* The whole check for the last node of g: cuda vs ref, and tiles vs whole.
 * Frees g. */
static void check_op(mb_graph *g, const char *label)
{
    int node = g->n_nodes - 1;
    const mb_node *n = &g->nodes[node];
    mb_tensor *in[MB_MAX_INPUTS] = {0};
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        in[k] = rand_tensor(src->out_ndim, src->out_dims, 100 + (uint64_t)k * 7 + (uint64_t)node, -2, 2);
    }
    assert_true(mb_backend_supports(cuda, g, node));
    mb_tensor *want = run_whole(ref_be, g, node, in);
    mb_tensor *got = run_whole(cuda, g, node, in);
    expect_close("cuda vs ref", label, got, want);
    n_ops++;
    /* the same call again: cached weights, reused buffers, same answer */
    mb_tensor *again = run_whole(cuda, g, node, in);
    if (!bit_equal(again, got))
        fail_msg("%s: a second run differs from the first", label);
    mb_tensor_free(again);
    if (n->local && n->out_ndim == 4) {
        for (int rep = 0; rep < 4; rep++) {
            int gh = (int)rnd(1, 4), gw = (int)rnd(1, 4);
            if (rep == 0)
                gh = gw = 2;
            mb_tensor *st = run_tiled(cuda, g, node, in, gh, gw);
            n_tilings++;
            if (gemm_path(n)) {
                expect_close("tiles vs whole", label, st, got);
                n_gemm_tiles++;
                n_gemm_tiles_exact += bit_equal(st, got);
            } else if (!bit_equal(st, got)) {
                fail_msg("%s: %dx%d tiles differ from the whole op by %g (expected bit-exact)", label, gh, gw,
                         mb_tensor_max_abs_diff(st, got));
            }
            mb_tensor_free(st);
        }
    }
    mb_tensor_free(want);
    mb_tensor_free(got);
    for (int k = 0; k < n->n_inputs; k++)
        mb_tensor_free(in[k]);
    mb_graph_free(g);
}

static void test_softmax_pad_resize_convt(void **state)
{
    (void)state;
    /* Softmax over each axis */
    for (int axis = -1; axis < 4; axis++) {
        mb_graph *g = mb_graph_new("softmax");
        int x = add_input4(g, 2, 3, 4, 5);
        mb_node op = {.type = MB_OP_SOFTMAX, .n_inputs = 1, .inputs = {x}};
        op.a.axis = axis;
        check_op(finish(g, &op), "softmax");
    }
    /* Pad constant (local) */
    mb_graph *g = mb_graph_new("pad");
    int x = add_input4(g, 1, 3, 6, 7);
    mb_node pad = {.type = MB_OP_PAD, .n_inputs = 1, .inputs = {x}};
    pad.a.pad_amounts[2] = 1;
    pad.a.pad_amounts[3] = 2;
    pad.a.pad_amounts[6] = 3;
    pad.a.pad_amounts[7] = 0;
    pad.a.pad_value = 0.5f;
    check_op(finish(g, &pad), "pad");
    /* Resize nearest and linear */
    for (int mode = 0; mode < 2; mode++) {
        g = mb_graph_new("resize");
        x = add_input4(g, 1, 2, 5, 6);
        mb_node rz = {.type = MB_OP_RESIZE, .n_inputs = 1, .inputs = {x}};
        rz.a.scales[0] = rz.a.scales[1] = 1;
        rz.a.scales[2] = 2;
        rz.a.scales[3] = 1.5f;
        rz.a.resize_mode = mode;
        rz.a.coord_mode = mode ? MB_COORD_HALF_PIXEL : MB_COORD_ASYMMETRIC;
        rz.a.nearest_mode = MB_NEAREST_FLOOR;
        check_op(finish(g, &rz), mode ? "resize linear" : "resize nearest");
    }
    /* ConvTranspose */
    g = mb_graph_new("convt");
    x = add_input4(g, 1, 4, 5, 6);
    mb_node ct = {.type = MB_OP_CONV_TRANSPOSE, .n_inputs = 1, .inputs = {x}, .n_params = 2};
    ct.params[0] = rand4(4, 3, 3, 3, 11);
    ct.params[1] = rand1(3, 12, -1, 1);
    ct.a.stride[0] = ct.a.stride[1] = 2;
    ct.a.pads[0] = ct.a.pads[1] = ct.a.pads[2] = ct.a.pads[3] = 1;
    check_op(finish(g, &ct), "convtranspose");
}


/* Pad in every mode and Resize in every coordinate / nearest mode (the
 * cuda backend computes them itself; cpu delegates them to ref). */
static void test_pad_resize_modes(void **state)
{
    (void)state;
    for (int mode = MB_PAD_CONSTANT; mode <= MB_PAD_EDGE; mode++)
        for (int rank4 = 0; rank4 < 2; rank4++) {
            mb_graph *g = mb_graph_new("pad");
            int x;
            mb_node pad = {.type = MB_OP_PAD, .n_inputs = 1};
            if (rank4) {
                x = add_input4(g, 2, 3, 5, 6);
                pad.a.pad_amounts[2] = 2;
                pad.a.pad_amounts[3] = 3;
                pad.a.pad_amounts[6] = 4; /* more than the height: reflect folds twice */
                pad.a.pad_amounts[7] = 1;
            } else {
                int64_t d[2] = {4, 7};
                x = add_input(g, 2, d);
                pad.a.pad_amounts[0] = 1;
                pad.a.pad_amounts[1] = 2;
                pad.a.pad_amounts[2] = 0;
                pad.a.pad_amounts[3] = 3;
            }
            pad.inputs[0] = x;
            pad.a.pad_mode = mode;
            pad.a.pad_value = -1.25f;
            char l[64];
            snprintf(l, sizeof l, "pad mode %d rank %d", mode, rank4 ? 4 : 2);
            check_op(finish(g, &pad), l);
        }
    for (int rmode = 0; rmode < 2; rmode++)
        for (int coord = MB_COORD_HALF_PIXEL; coord <= MB_COORD_TF_HALF_PIXEL_FOR_NN; coord++)
            for (int nm = MB_NEAREST_ROUND_PREFER_FLOOR; nm <= (rmode ? MB_NEAREST_ROUND_PREFER_FLOOR : MB_NEAREST_CEIL);
                 nm++) {
                mb_graph *g = mb_graph_new("resize");
                int x = add_input4(g, 1, 2, 7, 5);
                mb_node rz = {.type = MB_OP_RESIZE, .n_inputs = 1, .inputs = {x}};
                rz.a.scales[0] = rz.a.scales[1] = 1;
                rz.a.scales[2] = coord & 1 ? 0.5f : 2.0f; /* down- and up-sampling */
                rz.a.scales[3] = 1.6f;
                rz.a.resize_mode = rmode;
                rz.a.coord_mode = coord;
                rz.a.nearest_mode = nm;
                char l[64];
                snprintf(l, sizeof l, "resize mode %d coord %d nearest %d", rmode, coord, nm);
                check_op(finish(g, &rz), l);
            }
    /* ConvTranspose: groups, dilation, output_padding, asymmetric pads */
    mb_graph *g = mb_graph_new("convt2");
    int x = add_input4(g, 2, 4, 5, 4);
    mb_node ct = {.type = MB_OP_CONV_TRANSPOSE, .n_inputs = 1, .inputs = {x}, .n_params = 1};
    ct.params[0] = rand4(4, 3, 3, 2, 21);
    ct.a.group = 2;
    ct.a.stride[0] = 2;
    ct.a.stride[1] = 3;
    ct.a.dilation[0] = 2;
    ct.a.pads[0] = 1;
    ct.a.pads[1] = 0;
    ct.a.pads[2] = 0;
    ct.a.pads[3] = 2;
    ct.a.output_padding[0] = 1;
    check_op(finish(g, &ct), "convtranspose grouped dilated");
}

/* ---- contract errors (same messages as the other backends) ------------- */

static void test_bad_requests(void **state)
{
    (void)state;
    conv_spec s = {1, 4, 5, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    mb_graph *g = conv_graph(&s, 3);
    mb_tensor *x = rand4(1, 4, 10, 10, 1);
    char err[512];
    mb_region r = {2, 6, 0, 10};
    mb_tensor *sub = mb_tensor_new4(1, 4, 4, 10); /* rows [2,6) but [1,7) are needed */
    mb_view whole = mb_view_whole(x);
    assert_int_equal(mb_tensor_copy_region(&whole, (mb_region){2, 6, 0, 10}, sub), 0);
    mb_view v = {sub, 2, 0, 10, 10};
    mb_tensor *out = mb_tensor_new4(1, 5, 4, 10);
    err[0] = 0;
    assert_int_equal(mb_backend_compute(cuda, g, 1, &v, r, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "needed"));
    mb_tensor *bad = mb_tensor_new4(1, 5, 3, 10);
    v = mb_view_whole(x);
    assert_int_equal(mb_backend_compute(cuda, g, 1, &v, r, bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "dimension"));
    mb_region outside = {8, 12, 0, 10};
    assert_int_equal(mb_backend_compute(cuda, g, 1, &v, outside, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside"));
    assert_int_equal(mb_backend_compute(cuda, g, 0, NULL, r, out, err, sizeof err), -1);
    assert_false(mb_backend_supports(cuda, g, 0));
    /* after refused requests the backend still computes */
    r = (mb_region){0, 10, 0, 10};
    mb_tensor *full = mb_tensor_new4(1, 5, 10, 10);
    assert_int_equal(mb_backend_compute(cuda, g, 1, &v, r, full, err, sizeof err), 0);
    mb_tensor_free(full);
    mb_tensor_free(sub);
    mb_tensor_free(out);
    mb_tensor_free(bad);
    mb_tensor_free(x);
    mb_graph_free(g);
}

/* A weight tensor freed and another allocated at the same address with the
 * same size must not be served from the device cache. */
static void test_weight_cache(void **state)
{
    (void)state;
    conv_spec s = {1, 3, 4, 6, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0};
    mb_graph *g = conv_graph(&s, 5);
    mb_tensor *x = rand4(1, 3, 6, 7, 9);
    mb_tensor *in[1] = {x};
    mb_tensor *a = run_whole(cuda, g, 1, in);
    mb_tensor_fill_uniform(g->nodes[1].params[0], 1234, -1, 1); /* same address, new values */
    mb_tensor *b = run_whole(cuda, g, 1, in);
    mb_tensor *want = run_whole(ref_be, g, 1, in);
    expect_close("after the weights changed", "conv", b, want);
    assert_false(bit_equal(a, b));
    mb_tensor_free(a);
    mb_tensor_free(b);
    mb_tensor_free(want);
    mb_tensor_free(x);
    mb_graph_free(g);
}

/* Whole zoo models through the executor (every op kind in sequence, BN
 * folded and not): the output within 1e-4 of its scale of ref's. */
static void test_models(void **state)
{
    (void)state;
    static const char *const names[] = {"mobilenetv2", "resnet18", "googlenet"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char err[512];
        mb_graph *g = mb_zoo_build(names[i], MB_ZOO_SEED, err, sizeof err);
        if (!g)
            fail_msg("%s: %s", names[i], err);
        if (i == 0)
            mb_graph_fold_batchnorm(g);
        if (mb_graph_infer(g, err, sizeof err))
            fail_msg("%s: %s", names[i], err);
        mb_tensor **in = mb_exec_make_inputs(g, 1);
        mb_tensor **want = NULL, **got = NULL;
        if (mb_exec_run(g, ref_be, in, &want, NULL, NULL, err, sizeof err))
            fail_msg("%s on ref: %s", names[i], err);
        if (mb_exec_run(g, cuda, in, &got, NULL, NULL, err, sizeof err))
            fail_msg("%s on %s: %s", names[i], mb_backend_name(cuda), err);
        for (int k = 0; k < g->n_outputs; k++) {
            double d = mb_tensor_max_abs_diff(got[k], want[k]), sc = scale_of(want[k]);
            print_message("%s: max |%s - ref| = %.3g (scale %.3g)\n", names[i], mb_backend_name(cuda), d, sc);
            if (!(d <= 1e-4 * sc))
                fail_msg("%s output %d: max abs diff %g exceeds 1e-4 of scale %g", names[i], k, d, sc);
            mb_tensor_free(got[k]);
            mb_tensor_free(want[k]);
        }
        free(got);
        free(want);
        for (int k = 0; in[k]; k++) /* NULL-terminated */
            mb_tensor_free(in[k]);
        free(in);
        mb_graph_free(g);
    }
}

/* ONNX's own backend test models (Debian libonnx-testdata), imported as
 * `mecbed conformance` does, with their test_data_set_0 inputs: the whole
 * graph on this backend against ref (which conformance holds to ONNX's
 * expected outputs). Brings in the edge cases of ONNX's operator tests
 * (auto_pad, ceil_mode, 1-D as 4-D, resize modes, reshapes ...). */
#define ONNX_MAX_IO 16
/* max |a - b| where a NaN on both sides counts as agreement (sqrt or pow of
 * a negative number is NaN on every backend), a NaN on one side as infinite. */
static double nan_aware_diff(const mb_tensor *a, const mb_tensor *b)
{
    if (!mb_tensor_same_shape(a, b))
        return INFINITY;
    double m = 0;
    for (int64_t i = 0; i < mb_tensor_numel(a); i++) {
        if (isnan(a->data[i]) && isnan(b->data[i]))
            continue;
        double d = fabs((double)a->data[i] - (double)b->data[i]);
        if (!(d <= m))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

static int onnx_case(const char *dir, int *compared)
{
    char p[4096], err[1024];
    snprintf(p, sizeof p, "%.4000s/model.onnx", dir);
    mb_onnx_model *m = mb_onnx_open(p, err, sizeof err);
    if (!m)
        return 0;
    mb_onnx_tensor *ins[ONNX_MAX_IO] = {0};
    int n_in = 0, rc = 0;
    for (; n_in < ONNX_MAX_IO; n_in++) {
        struct stat st;
        snprintf(p, sizeof p, "%.4000s/test_data_set_0/input_%d.pb", dir, n_in);
        if (stat(p, &st))
            break;
        if (!(ins[n_in] = mb_onnx_tensor_read(p, err, sizeof err)))
            break;
    }
    mb_onnx_binding bind[ONNX_MAX_IO];
    memset(bind, 0, sizeof bind);
    for (int k = 0; k < n_in && k < mb_onnx_n_inputs(m); k++) {
        bind[k].name = mb_onnx_input_name(m, k);
        bind[k].value = ins[k];
    }
    mb_onnx_opts o = {bind, n_in < mb_onnx_n_inputs(m) ? n_in : mb_onnx_n_inputs(m), 0};
    int why = 0;
    mb_graph *g = mb_onnx_import(m, &o, &why, err, sizeof err);
    mb_tensor *feeds[ONNX_MAX_IO] = {0};
    int fed = 0, ok = g != NULL;
    for (int i = 0; ok && i < g->n_nodes; i++) {
        const mb_node *nd = &g->nodes[i];
        if (nd->type != MB_OP_INPUT) {
            ok = nd->type == MB_OP_CONSTANT || mb_backend_supports(ref_be, g, i);
            continue;
        }
        const mb_tensor *v = NULL;
        for (int k = 0; k < o.n_bind; k++)
            if (!strncmp(bind[k].name, nd->name, MB_NAME_LEN - 1))
                v = ins[k]->f;
        ok = v && fed < ONNX_MAX_IO;
        if (ok)
            feeds[fed++] = (mb_tensor *)v;
    }
    mb_tensor **want = NULL, **got = NULL;
    if (ok && !mb_exec_run(g, ref_be, feeds, &want, NULL, NULL, err, sizeof err)) {
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].type != MB_OP_INPUT && !mb_backend_supports(cuda, g, i))
                fail_msg("%s: %s does not support node '%s' (%s), ref does", dir, mb_backend_name(cuda),
                         g->nodes[i].name,
                         mb_op_name(g->nodes[i].type));
        if (mb_exec_run(g, cuda, feeds, &got, NULL, NULL, err, sizeof err))
            fail_msg("%s on %s: %s", dir, mb_backend_name(cuda), err);
        for (int k = 0; k < g->n_outputs; k++) {
            double d = nan_aware_diff(got[k], want[k]), sc = scale_of(want[k]);
            if (!(d <= TOL * sc)) {
                print_error("%s output %d: max |%s - ref| %g exceeds %g (scale %g)\n", dir, k, mb_backend_name(cuda), d,
                            TOL * sc, sc);
                rc = -1;
            }
            mb_tensor_free(got[k]);
            mb_tensor_free(want[k]);
        }
        free(got);
        free(want);
        (*compared)++;
    }
    mb_graph_free(g);
    for (int k = 0; k < n_in; k++)
        mb_onnx_tensor_free(ins[k]);
    mb_onnx_close(m);
    return rc;
}

static void test_onnx_suite(void **state)
{
    (void)state;
    const char *data = getenv("ONNX_TESTDATA");
    if (!data || !*data)
        data = "/usr/share/libonnx-testdata/data";
    static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
    int compared = 0, failed = 0, found = 0;
    for (size_t si = 0; si < sizeof suites / sizeof suites[0]; si++) {
        char d[4096];
        snprintf(d, sizeof d, "%.3000s/%s", data, suites[si]);
        DIR *dir = opendir(d);
        if (!dir)
            continue;
        found = 1;
        struct dirent *e;
        while ((e = readdir(dir)))
            if (!strncmp(e->d_name, "test_", 5)) {
                char t[4096];
                snprintf(t, sizeof t, "%.3000s/%.1000s", d, e->d_name);
                failed += onnx_case(t, &compared) != 0;
            }
        closedir(dir);
    }
    if (!found) {
        MB_SKIP("ONNX test data not found in %s (Debian libonnx-testdata): not run", data);
    }
    print_message("ONNX test models: %d run on %s and ref, %d differ\n", compared, mb_backend_name(cuda), failed);
    assert_int_equal(failed, 0);
    assert_true(compared >= 150); /* conformance passes well over 150 in-scope tests */
}

static void test_energy(void **state)
{
    (void)state;
    unsigned long long e0 = 0;
    char why[256] = "";
    if (mb_backend_energy_mj(cuda, &e0, why, sizeof why)) {
        print_message("GPU energy: not available (%s)\n", why);
        assert_true(why[0] != 0);
        return;
    }
    print_message("GPU energy counter: %llu mJ on %s\n", e0, mb_cuda_device_name(cuda));
}

static int setup(void **state)
{
    (void)state;
    ref_be = mb_backend_new("ref", 1, NULL, 0);
    n_ops = n_tilings = n_gemm_tiles = n_gemm_tiles_exact = 0;
    return ref_be && cuda ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mb_backend_free(ref_be);
    printf("%s: %d ops checked against ref, %d tilings; GEMM-path conv tilings bit-exact: %d of %d\n",
           mb_backend_name(cuda),
           n_ops, n_tilings, n_gemm_tiles_exact, n_gemm_tiles);
    return 0;
}

/* What can be checked without a GPU: the backend either starts or says
 * why not (through mb_backend_new too), and NVML either opens or says why. */
static int cpu_side_checks(void)
{
    char err[1024] = "";
    mb_backend *be = mb_backend_new("cuda", 1, err, sizeof err);
    if (be) {
        mb_backend_free(be);
    } else if (!strstr(err, "backend 'cuda': ") ||
               (!strstr(err, "no usable GPU: ") && !strstr(err, "cannot load libmecbed-cuda.so ("))) {
        fprintf(stderr, "FAIL: mb_backend_new(\"cuda\") gave no reason: '%s'\n", err);
        return -1;
    } else {
        printf("mb_backend_new(\"cuda\"): %s\n", err);
    }
    char why[256] = "";
    mbc_nvml *m = mbc_nvml_open(NULL, why, sizeof why);
    if (m) {
        unsigned long long mj;
        if (mbc_nvml_energy_mj(m, &mj, why, sizeof why))
            printf("NVML present, energy counter not supported: %s\n", why);
        else
            printf("NVML energy counter: %llu mJ\n", mj);
        mbc_nvml_close(m);
    } else if (!why[0]) {
        fprintf(stderr, "FAIL: mbc_nvml_open failed without a reason\n");
        return -1;
    } else {
        printf("NVML: %s\n", why);
    }
    return 0;
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    if (!mbc_hostsim_new) {
        printf("SKIP: this build has no CUDA backend (nvcc was not found when it was built)\n");
        return 77;
    }
    if (cpu_side_checks())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_shapes),     cmocka_unit_test(test_conv_random),
        cmocka_unit_test(test_pooling),         cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_unary),           cmocka_unit_test(test_binary),
        cmocka_unit_test(test_batchnorm),       cmocka_unit_test(test_concat),
        cmocka_unit_test(test_gemm),            cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_shape_ops),       cmocka_unit_test(test_softmax_pad_resize_convt),
        cmocka_unit_test(test_pad_resize_modes), cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_weight_cache),    cmocka_unit_test(test_models),
        cmocka_unit_test(test_onnx_suite),
        cmocka_unit_test(test_energy),
    };
    /* 1. the harness: the kernels' arithmetic on the CPU */
    cuda = mbc_hostsim_new();
    if (!cuda) {
        fprintf(stderr, "FAIL: the host-simulation harness did not start\n");
        return 1;
    }
    printf("harness: %s\n", mb_cuda_device_name(cuda));
    int rc = cmocka_run_group_tests_name("cuda-hostsim (host simulation of the CUDA kernels)", tests, setup, teardown);
    mb_backend_free(cuda);
    if (rc)
        return 1;
    /* 2. the GPU */
    char err[1024] = "";
    cuda = mb_backend_new("cuda", 1, err, sizeof err);
    if (!cuda) {
        printf("SKIP: GPU part: %s (the host simulation of the kernels passed)\n", err);
        return 77;
    }
    printf("GPU: %s\n", mb_cuda_device_name(cuda));
    rc = cmocka_run_group_tests_name("cuda (GPU)", tests, setup, teardown);
    mb_backend_free(cuda);
    return MB_TESTS_EXIT(rc);
}
