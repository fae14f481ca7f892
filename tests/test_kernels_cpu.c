/* The fast CPU backend against the reference backend, op by op and shape by
 * shape (tails, padding incl. asymmetric, stride, dilation, groups,
 * depthwise, 1x1, broadcasting, batch > 1), and every tile split of every
 * local op against the same backend's whole-op output.
 *
 * Oracle (NOTES.md): bit-exact where the same kernel computes the same
 * elements, else max abs error <= 1e-5 of the output's scale.
 *  - cpu vs ref: 1e-5 of scale everywhere. The two sum in different orders
 *    (OpenBLAS blocks K; batch norm is folded to x*a+b; global average pool
 *    uses partial sums), so equality is not expected.
 *  - tiles vs whole on cpu: asserted bit-exact for every op except GEMM-path
 *    convolutions. Depthwise, pooling and elementwise kernels compute each
 *    element with the same operations in the same order whatever the region
 *    (the code path depends only on the element's position in the image).
 *    A GEMM-path conv hands a different N (pixels) to sgemm per tile, and
 *    OpenBLAS may pick another kernel (its small-matrix path) or blocking for
 *    another shape, so its tiles are held to 1e-5 of scale; the test reports
 *    whether they came out bit-exact anyway.
 *  - 2 threads vs 1: held to the same rule as tiles (tasks split the same
 *    pixels differently when threads differ). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/platform.h"

#include "../kernels/backend_impl.h"


static mb_backend *ref_be, *cpu1, *cpu2;
static int n_gemm_tiles, n_gemm_tiles_exact;

#include "kernel_cases.h"

/* Does the cpu backend run this conv through its direct AVX-512 kernels
 * (kernels/cpu/cpu_conv_direct.c)? Then every element is bias + the sum over
 * (c, ky, kx) in order whatever the region or thread count, so tiles and
 * threads are held bit-exact, not to a tolerance. */
static int direct_path(const mb_node *n)
{
    if (n->type != MB_OP_CONV || n->params[0]->dims[1] == 1)
        return 0;
    const char *e = getenv("MECBED_CPU_CONV");
    if (e && !strcmp(e, "gemm"))
        return 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f"))
        return 0;
#else
    return 0;
#endif
    const mb_tensor *w = n->params[0];
    int s1 = n->a.stride[0] <= 1 && n->a.stride[1] <= 1;
    /* large-K 1x1 layers may stay on sgemm (cpu_conv: K >= 512 on 128+
     * output pixels, which a tile may or may not have; K >= 256 on 1024+
     * pixels only with MECBED_CPU_1X1_KBLOCK=off, or where the bars are
     * moved) */
    const char *kb = getenv("MECBED_CPU_1X1_KBLOCK");
    int old_bars = (kb && (!strcmp(kb, "off") || !strcmp(kb, "0"))) || getenv("MECBED_CPU_1X1_GEMM_K") ||
                   getenv("MECBED_CPU_1X1_GEMM_BIG");
    if (w->dims[2] == 1 && w->dims[3] == 1 && s1 && (w->dims[1] >= 512 || (old_bars && w->dims[1] >= 256)))
        return 0;
    return n->a.dilation[0] <= 1 && n->a.dilation[1] <= 1;
}

/* The whole check for the last node of g: cpu (1 and 2 threads) vs ref, and
 * tiles vs whole. Frees g. */
static void check_op(mb_graph *g, const char *label)
{
    int node = g->n_nodes - 1;
    const mb_node *n = &g->nodes[node];
    mb_tensor *in[MB_MAX_INPUTS] = {0};
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        in[k] = rand_tensor(src->out_ndim, src->out_dims, 100 + (uint64_t)k * 7 + (uint64_t)node, -2, 2);
    }
    assert_true(mb_backend_supports(cpu1, g, node));
    mb_tensor *want = run_whole(ref_be, g, node, in);
    mb_tensor *got = run_whole(cpu1, g, node, in);
    expect_close("cpu vs ref", label, got, want);
    mb_tensor *got2 = run_whole(cpu2, g, node, in);
    /* ConvTranspose is GEMM + col2im here: its sgemm sees another N per tile */
    int tol = (gemm_path(n) && !direct_path(n)) || n->type == MB_OP_CONV_TRANSPOSE;
    if (tol)
        expect_close("2 threads vs 1", label, got2, got);
    else if (!bit_equal(got2, got))
        fail_msg("%s: 2 threads differ from 1 (expected bit-exact)", label);
    if (n->local && n->out_ndim == 4) {
        for (int rep = 0; rep < 4; rep++) {
            int gh = (int)rnd(1, 4), gw = (int)rnd(1, 4);
            if (rep == 0)
                gh = gw = 2;
            mb_tensor *st = run_tiled(rep & 1 ? cpu2 : cpu1, g, node, in, gh, gw);
            if (tol) {
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
    mb_tensor_free(got2);
    for (int k = 0; k < n->n_inputs; k++)
        mb_tensor_free(in[k]);
    mb_graph_free(g);
}

/* The direct conv kernels on shapes that hit their edges: output channels
 * not a multiple of the 14-channel block (14, 8, 4, 2, 1 tails), frames not a
 * multiple of the 32-pixel block, rows wider than a block and a 1-wide
 * image (one store segment per lane), stride 2 (phase planes), asymmetric
 * and oversized padding, groups, batch 2, the in-place 1x1 path on views
 * with margins (tiles), and the 7x7/2 stem. check_op holds them to the
 * reference (1e-5 of scale) and, on an AVX-512 CPU, tiles and 2 threads to
 * bit-exact. Then each fused activation against the unfused run, bit for
 * bit (Relu, Clip and LeakyRelu are applied in registers, HardSwish after
 * each block). */
static void test_conv_direct(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 5, 7, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 19, 13, 40, 29, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 17, 25, 13, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 6, 9, 12, 13, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 1, 1},
        {1, 33, 20, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 24, 40, 11, 10, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 3, 16, 23, 21, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1},
        {1, 12, 18, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1},
        {1, 10, 9, 8, 9, 5, 3, 1, 2, 2, 1, 2, 1, 1, 1, 1, 1},
        {1, 4, 5, 2, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1},
        {1, 40, 24, 5, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 7, 8, 3, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1},
        {1, 64, 72, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 9, 11, 15, 17, 3, 3, 3, 2, 1, 0, 1, 2, 1, 1, 1, 1},
        /* either side of the old 1x1 K >= 256 sgemm bar (1024 output pixels) */
        {1, 256, 20, 32, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 256, 20, 31, 33, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        /* 1x1 with K split into chunks of 256 (the last one short) and the
         * input packed per tile (256+ output pixels; smaller tiles of them
         * run unsplit, still bit-exact): in place, strided (frame), batch 2
         * without bias; and K >= 512 under the 128-pixel sgemm bar, unsplit */
        {1, 300, 30, 17, 19, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 520, 23, 33, 35, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1},
        {2, 290, 9, 5, 37, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},
        {1, 600, 17, 7, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "direct conv case %zu", i);
        check_op(conv_graph(&specs[i], 500 + i), label);
    }
    static const mb_op_type acts[] = {MB_OP_RELU, MB_OP_LEAKYRELU, MB_OP_CLIP, MB_OP_HARDSWISH};
    for (size_t s = 0; s < 4; s++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            mb_graph *g = conv_graph(&specs[s * 3], 600 + s);
            mb_node act = {.type = acts[a], .n_inputs = 1, .inputs = {g->n_nodes - 1}};
            snprintf(act.name, sizeof act.name, "act");
            act.a.alpha = acts[a] == MB_OP_CLIP ? -0.5f : 0.1f;
            act.a.beta = 0.75f;
            g->outputs[0] = mb_graph_add(g, &act);
            char err[512];
            if (mb_graph_infer(g, err, sizeof err))
                fail_msg("%s", err);
            mb_tensor **in = mb_exec_make_inputs(g, 7);
            mb_tensor **y[3] = {0};
            for (int k = 0; k < 3; k++) {
                mb_exec_opts o = {.fuse = k > 0};
                if (mb_exec_run(g, k == 2 ? cpu2 : cpu1, in, &y[k], &o, NULL, err, sizeof err))
                    fail_msg("%s", err);
            }
            mb_tensor **want = NULL;
            if (mb_exec_run(g, ref_be, in, &want, NULL, NULL, err, sizeof err))
                fail_msg("%s", err);
            expect_close("fused vs ref", mb_op_name(acts[a]), y[1][0], want[0]);
            if (!bit_equal(y[1][0], y[0][0]) || !bit_equal(y[2][0], y[0][0]))
                fail_msg("conv + %s case %zu: fused run differs from unfused", mb_op_name(acts[a]), s * 3);
            for (int k = 0; k < 3; k++) {
                mb_tensor_free(y[k][0]);
                free(y[k]);
            }
            mb_tensor_free(want[0]);
            free(want);
            mb_tensor_free(in[0]);
            free(in);
            mb_graph_free(g);
        }
}

/* The depthwise kernel's in-place paths (stride 1 on planes up to 256
 * outputs, stride 2 along x) against its padded-copy path
 * (MECBED_CPU_DW=copy, read on every op), bit for bit, on 1 and 2 threads:
 * both start each output at the bias and add the nine taps in (ky, kx)
 * order, padding taps included (tiles of part of a row already mix the
 * paths, but only where the whole op takes the in-place one). */
static void dw_paths_agree(const conv_spec *sp, uint64_t seed, const char *label)
{
    mb_graph *g = conv_graph(sp, seed);
    int node = g->n_nodes - 1;
    const mb_node *n = &g->nodes[node];
    mb_tensor *in[MB_MAX_INPUTS] = {0};
    const mb_node *src = &g->nodes[n->inputs[0]];
    in[0] = rand_tensor(src->out_ndim, src->out_dims, seed, -2, 2);
    const char *was = getenv("MECBED_CPU_DW");
    char keep[32] = "";
    if (was)
        snprintf(keep, sizeof keep, "%s", was);
    mb_tensor *got = run_whole(cpu1, g, node, in);
    mb_tensor *got2 = run_whole(cpu2, g, node, in);
    setenv("MECBED_CPU_DW", "copy", 1);
    mb_tensor *want = run_whole(cpu1, g, node, in);
    if (was)
        setenv("MECBED_CPU_DW", keep, 1);
    else
        unsetenv("MECBED_CPU_DW");
    if (!bit_equal(got, want) || !bit_equal(got2, want))
        fail_msg("%s: in-place depthwise differs from the padded copy by %g (expected bit-exact)", label,
                 mb_tensor_max_abs_diff(got, want));
    mb_tensor_free(got);
    mb_tensor_free(got2);
    mb_tensor_free(want);
    mb_tensor_free(in[0]);
    mb_graph_free(g);
}

/* Depthwise 3x3 (kernels/cpu/cpu_conv_dw.c on AVX-512, the portable loops
 * elsewhere or with MECBED_CPU_DW=generic): stride 1 and 2 on each axis,
 * row widths around the 16- and 32-column vectors (1, 7, 15, 16, 17, 31, 33,
 * 70), heights that leave 1..3 rows after the 4-row blocks, asymmetric and
 * oversized padding, channel multiplier 2, batch 2, no bias; MobileNetV2's
 * 7x7 and 14x14 planes (in place, two planes at a time), the 16x16 / 17x16
 * edge of the in-place stride-1 path, stride 2 to 7x7 and on 112-wide rows.
 * check_op holds each to the reference (1e-5 of scale), and its tiles and 2
 * threads to bit-exact, dw_paths_agree the in-place paths to the padded
 * copy. Then each fused activation against the unfused run, bit for bit
 * (Relu, Clip and LeakyRelu in registers, HardSwish after each plane). */
static void test_conv_depthwise(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 3, 3, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1},
        {2, 5, 5, 14, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 5, 0},
        {1, 4, 8, 7, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1},
        {1, 6, 6, 13, 16, 3, 3, 2, 1, 0, 1, 1, 0, 1, 1, 6, 1},
        {1, 6, 6, 10, 31, 3, 3, 1, 2, 1, 0, 0, 1, 1, 1, 6, 1},
        {1, 2, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {1, 3, 3, 6, 15, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 3, 1},
        {1, 7, 7, 30, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7, 1},
        {1, 5, 5, 5, 7, 3, 3, 2, 2, 2, 0, 1, 2, 1, 1, 5, 1},
        {1, 4, 4, 12, 12, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 4, 1},
        {1, 5, 5, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 5, 1},     /* 7x7: planes in pairs, one left */
        {2, 3, 3, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 0},   /* 14x14: 8 + 5 vectors, pairs across n */
        {1, 4, 4, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1},   /* the largest in place */
        {1, 3, 3, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1},   /* one row more: the copy */
        {1, 6, 6, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6, 1},   /* 14 -> 7 */
        {1, 3, 3, 21, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 1},  /* 112 wide: 2 + 2 vectors */
        {1, 3, 3, 9, 66, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 3, 1},    /* last lane of a vector read */
        {1, 3, 3, 11, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 0},
        {1, 3, 6, 11, 9, 3, 3, 1, 1, 2, 1, 0, 1, 2, 2, 3, 1}, /* dilated: portable loops */
        {1, 3, 3, 9, 10, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 3, 1}, /* 5x5: portable loops */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "depthwise conv case %zu", i);
        check_op(conv_graph(&specs[i], 700 + i), label);
        dw_paths_agree(&specs[i], 750 + i, label);
    }
    static const mb_op_type acts[] = {MB_OP_RELU, MB_OP_LEAKYRELU, MB_OP_CLIP, MB_OP_HARDSWISH};
    static const size_t act_specs[] = {0, 1, 2, 10, 14};
    for (size_t si = 0; si < sizeof act_specs / sizeof act_specs[0]; si++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
            size_t s = act_specs[si];
            mb_graph *g = conv_graph(&specs[s], 800 + s);
            mb_node act = {.type = acts[a], .n_inputs = 1, .inputs = {g->n_nodes - 1}};
            snprintf(act.name, sizeof act.name, "act");
            act.a.alpha = acts[a] == MB_OP_CLIP ? -0.5f : 0.1f;
            act.a.beta = 0.75f;
            g->outputs[0] = mb_graph_add(g, &act);
            char err[512];
            if (mb_graph_infer(g, err, sizeof err))
                fail_msg("%s", err);
            mb_tensor **in = mb_exec_make_inputs(g, 9);
            mb_tensor **y[3] = {0};
            for (int k = 0; k < 3; k++) {
                mb_exec_opts o = {.fuse = k > 0};
                if (mb_exec_run(g, k == 2 ? cpu2 : cpu1, in, &y[k], &o, NULL, err, sizeof err))
                    fail_msg("%s", err);
            }
            mb_tensor **want = NULL;
            if (mb_exec_run(g, ref_be, in, &want, NULL, NULL, err, sizeof err))
                fail_msg("%s", err);
            expect_close("fused vs ref", mb_op_name(acts[a]), y[1][0], want[0]);
            if (!bit_equal(y[1][0], y[0][0]) || !bit_equal(y[2][0], y[0][0]))
                fail_msg("depthwise conv + %s case %zu: fused run differs from unfused", mb_op_name(acts[a]), s);
            for (int k = 0; k < 3; k++) {
                mb_tensor_free(y[k][0]);
                free(y[k]);
            }
            mb_tensor_free(want[0]);
            free(want);
            mb_tensor_free(in[0]);
            free(in);
            mb_graph_free(g);
        }
}

/* A Conv like conv_graph's, reading node x, appended to g. */
static int add_conv(mb_graph *g, const conv_spec *s, int x, uint64_t seed, const char *name)
{
    mb_node op = conv_node(s, x, seed);
    snprintf(op.name, sizeof op.name, "%s", name);
    return mb_graph_add(g, &op);
}

/* One residual case: x -> A = conv(x) (the residual), B = conv(x), Add(B, A)
 * or Add(A, B), optionally an activation. Fused (1 and 2 threads) against
 * unfused, bit for bit; then B + Add (+ act) fused on the tiles of a random
 * grid (mb_backend_compute_fused, whole input and residual tensors as views,
 * so residual rows are not contiguous with the tile's) against the unfused
 * output's rectangles. */
static void check_residual(const conv_spec *s, int res_first, mb_op_type act_type, uint64_t seed)
{
    char err[512], label[96];
    snprintf(label, sizeof label, "conv %lldx%lld k%d s%d g%d + Add%s + %s", (long long)s->h, (long long)s->w, s->kh,
             s->sh, s->group, res_first ? " (residual first)" : "", act_type == MB_OP_COUNT ? "nothing" : mb_op_name(act_type));
    mb_graph *g = mb_graph_new("residual");
    int x = add_input4(g, s->n, s->c, s->h, s->w);
    int a = add_conv(g, s, x, seed, "a"), b = add_conv(g, s, x, seed + 7, "b");
    mb_node add = {.type = MB_OP_ADD, .n_inputs = 2, .inputs = {res_first ? a : b, res_first ? b : a}};
    snprintf(add.name, sizeof add.name, "add");
    int last = mb_graph_add(g, &add), addi = last;
    if (act_type != MB_OP_COUNT) {
        mb_node act = {.type = act_type, .n_inputs = 1, .inputs = {last}};
        snprintf(act.name, sizeof act.name, "act");
        act.a.alpha = act_type == MB_OP_CLIP ? -0.5f : 0.1f;
        act.a.beta = 0.75f;
        last = mb_graph_add(g, &act);
    }
    g->outputs[g->n_outputs++] = last;
    if (mb_graph_infer(g, err, sizeof err))
        fail_msg("%s: %s", label, err);
    mb_tensor **in = mb_exec_make_inputs(g, seed);
    /* y: unfused and fused on 1 thread, then on 2 (sgemm paths may split
     * the sum differently with 2 threads, so each is held to its own) */
    mb_tensor **y[4] = {0}, **all = NULL;
    mb_op_time times[8];
    for (int k = 0; k < 4; k++) {
        mb_exec_opts o = {.fuse = k & 1, .times = k == 1 ? times : NULL, .keep_all = k == 0};
        if (mb_exec_run(g, k >= 2 ? cpu2 : cpu1, in, &y[k], &o, k == 0 ? &all : NULL, err, sizeof err))
            fail_msg("%s: %s", label, err);
    }
    if (times[addi].ms != 0.0)
        fail_msg("%s: the Add did not run inside the conv", label);
    if (!bit_equal(y[1][0], y[0][0]) || !bit_equal(y[3][0], y[2][0]))
        fail_msg("%s: fused run differs from unfused by %g", label, mb_tensor_max_abs_diff(y[1][0], y[0][0]));
    /* tiles */
    const mb_node *bn = &g->nodes[b];
    int64_t H = bn->out_dims[2], W = bn->out_dims[3];
    int64_t hc = H > 1 ? rnd(1, H - 1) : H, wc = W > 1 ? rnd(1, W - 1) : W;
    mb_region tiles[4] = {{0, hc, 0, wc}, {0, hc, wc, W}, {hc, H, 0, wc}, {hc, H, wc, W}};
    mb_fusion f = {.add = addi, .act = act_type != MB_OP_COUNT ? last : -1};
    f.res = mb_view_whole(all[a]);
    mb_view v = mb_view_whole(in[0]);
    for (int t = 0; t < 4; t++) {
        mb_region r = tiles[t];
        if (r.h0 >= r.h1 || r.w0 >= r.w1)
            continue;
        int64_t dims[4] = {bn->out_dims[0], bn->out_dims[1], r.h1 - r.h0, r.w1 - r.w0};
        mb_tensor *o = mb_tensor_new(4, dims);
        mb_backend *be = t & 1 ? cpu2 : cpu1;
        int rc = mb_backend_compute_fused(be, g, b, &f, &v, r, o, err, sizeof err);
        if (rc != 1)
            fail_msg("%s: fused tile %d returned %d: %s", label, t, rc, err);
        /* the same tile unfused: conv, Add, activation, each on its own */
        mb_tensor *w = mb_tensor_new(4, dims);
        if (mb_backend_compute(be, g, b, &v, r, w, err, sizeof err))
            fail_msg("%s: %s", label, err);
        for (int k = addi; k <= last; k++) {
            mb_view tv = {.t = w, .h_off = r.h0, .w_off = r.w0}, av[2];
            for (int q = 0; q < g->nodes[k].n_inputs; q++)
                av[q] = g->nodes[k].inputs[q] == a ? f.res : tv;
            if (mb_backend_compute(be, g, k, av, r, w, err, sizeof err)) /* in place */
                fail_msg("%s: %s", label, err);
        }
        if (!bit_equal(o, w))
            fail_msg("%s: tile %d differs from the unfused tile by %g", label, t, mb_tensor_max_abs_diff(o, w));
        mb_tensor_free(w);
        mb_tensor_free(o);
    }
    for (int k = 0; k < 4; k++) {
        mb_tensor_free(y[k][0]);
        free(y[k]);
    }
    for (int i = 0; i < g->n_nodes; i++)
        mb_tensor_free(all[i]);
    free(all);
    mb_tensor_free(in[0]);
    free(in);
    mb_graph_free(g);
}

/* Conv + residual Add (+ activation) fused (mb_exec_opts.fuse): the direct
 * kernels (register activation switched off, the add and activation over
 * each task's rows), the depthwise kernel, im2col + sgemm (dilated), and
 * sgemm in place (1x1 with K >= 512), each bit-identical to the unfused
 * run, whole and on tiles, either operand order of the Add. */
static void test_conv_residual(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 19, 13, 40, 29, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 17, 25, 13, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 33, 20, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 7, 7, 30, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 7, 1},
        {1, 4, 8, 7, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1},
        {1, 4, 6, 13, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1},
        {1, 512, 16, 12, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        /* 1x1 with K split into chunks (direct kernel): the residual and
         * the activation only after the last chunk */
        {1, 300, 20, 16, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 400, 9, 16, 18, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
    };
    static const mb_op_type acts[] = {MB_OP_RELU, MB_OP_COUNT, MB_OP_HARDSWISH, MB_OP_CLIP};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        for (int k = 0; k < 4; k++)
            check_residual(&specs[i], k & 1, acts[(i + (size_t)k) % 4], 900 + i * 10 + (uint64_t)k);
}

/* The small-map kernel vectorised over output channels (cpu_conv_oc.c)
 * against the direct kernel it stands in for, bit for bit: every element is
 * bias + the same FMAs in the same order on both. MECBED_CPU_CONV_OC (read
 * on every conv) picks the path: 0 the direct kernel, whole op on one
 * thread; 1 the oc kernel, whole on 1 and 2 threads, on random tile grids,
 * and with K cut into chunks of 1 or 2 KiB of packed weights
 * (MECBED_CPU_CONV_OC_WKB: partial sums stored and reloaded). Shapes: 1x1
 * and 3x3, stride 1 and 2, pads (asymmetric), maps 7..28 wide (one tile per
 * row, several per row, two rows per tile, runs across rows for 1x1),
 * output channels 20..72 (a 16-lane block alone, 32-channel blocks with
 * 8- and 4-channel tails), K 45..600, groups, batch 2 without bias; each
 * also against the reference. Then the fused residual Add and activations
 * on it (check_residual). */
static void test_conv_oc(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 64, 72, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 40, 50, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 33, 20, 14, 14, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0},
        {1, 300, 48, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 24, 40, 11, 10, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 17, 36, 13, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 5, 33, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 9, 44, 15, 17, 3, 3, 3, 2, 1, 0, 1, 2, 1, 1, 1, 1},
        {1, 32, 33, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 16, 40, 5, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0},
        {1, 24, 64, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1},
        {1, 600, 36, 7, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
        {1, 48, 32, 14, 14, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 1, 1},
    };
    const char *e = getenv("MECBED_CPU_CONV_OC");
    char *saved = e ? strdup(e) : NULL; /* restored at the end: cli_cpu_conv_orders.sh sets it */
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "oc conv case %zu", i);
        mb_graph *g = conv_graph(&specs[i], 1500 + i);
        int node = g->n_nodes - 1;
        const mb_node *n = &g->nodes[node];
        mb_tensor *in[1] = {rand_tensor(4, g->nodes[0].out_dims, 1600 + i, -2, 2)};
        setenv("MECBED_CPU_CONV_OC", "0", 1);
        mb_tensor *old = run_whole(cpu1, g, node, in);
        setenv("MECBED_CPU_CONV_OC", "1", 1);
        mb_tensor *want = run_whole(ref_be, g, node, in);
        int exact = direct_path(n); /* else the old path is sgemm: summed in another order */
        for (int k = 0; k < 8; k++) {
            setenv("MECBED_CPU_CONV_OC_WKB", k & 2 ? (k & 4 ? "1" : "2") : "64", 1);
            mb_tensor *got = k < 2 ? run_whole(k ? cpu2 : cpu1, g, node, in)
                                   : run_tiled(k & 1 ? cpu2 : cpu1, g, node, in, (int)rnd(1, 4), (int)rnd(1, 4));
            expect_close("oc vs ref", label, got, want);
            if (exact && !bit_equal(got, old))
                fail_msg("%s: oc run %d differs from the direct kernel by %g (expected bit-exact)", label, k,
                         mb_tensor_max_abs_diff(got, old));
            mb_tensor_free(got);
        }
        unsetenv("MECBED_CPU_CONV_OC_WKB");
        mb_tensor_free(old);
        mb_tensor_free(want);
        mb_tensor_free(in[0]);
        mb_graph_free(g);
    }
    static const mb_op_type acts[] = {MB_OP_RELU, MB_OP_COUNT, MB_OP_HARDSWISH, MB_OP_CLIP, MB_OP_LEAKYRELU};
    for (size_t i = 0; i < 4; i++)
        for (int k = 0; k < 5; k++)
            check_residual(&specs[i], k & 1, acts[(i + (size_t)k) % 5], 1700 + i * 10 + (uint64_t)k);
    if (saved)
        setenv("MECBED_CPU_CONV_OC", saved, 1);
    else
        unsetenv("MECBED_CPU_CONV_OC");
    free(saved);
}

/* The direct kernel with each tile's input packed k-major (dc_kpack in
 * cpu_conv_direct.c; by default on strided convs, MECBED_CPU_DC_KPACK=1 on
 * every conv with taps > 1) against the frame path (=0), bit for bit: the
 * kernel sums the same k in the same order, only from a copy. On the oc
 * kernel's maps the direct kernel is forced (MECBED_CPU_CONV_OC=0). Shapes:
 * stride 2 with 14/8/4 channel tails and tiles of 7 blocks whose last block
 * is partial, the 3->32 3x3/2 and 7x7/2 stems, stride (3, 2) with
 * asymmetric pads, groups and batch 2 without bias, stride 1 (forced);
 * whole on 1 and 2 threads and on random tile grids, each also against the
 * reference. Then fused residual Add and activations with the packing
 * forced (check_residual). */
static void test_conv_kpack(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 32, 40, 70, 66, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 3, 32, 64, 62, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 3, 20, 45, 47, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1},
        {1, 9, 11, 31, 37, 3, 3, 3, 2, 1, 0, 1, 2, 1, 1, 1, 1},
        {2, 16, 18, 30, 30, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 2, 0},
        {1, 19, 13, 40, 29, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    };
    const char *e = getenv("MECBED_CPU_DC_KPACK"), *eo = getenv("MECBED_CPU_CONV_OC");
    char *saved = e ? strdup(e) : NULL, *saved_oc = eo ? strdup(eo) : NULL; /* cli_cpu_conv_orders.sh sets them */
    setenv("MECBED_CPU_CONV_OC", "0", 1);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "kpack conv case %zu", i);
        mb_graph *g = conv_graph(&specs[i], 2500 + i);
        int node = g->n_nodes - 1;
        mb_tensor *in[1] = {rand_tensor(4, g->nodes[0].out_dims, 2600 + i, -2, 2)};
        setenv("MECBED_CPU_DC_KPACK", "0", 1);
        mb_tensor *old = run_whole(cpu1, g, node, in);
        setenv("MECBED_CPU_DC_KPACK", "1", 1);
        mb_tensor *want = run_whole(ref_be, g, node, in);
        int exact = direct_path(&g->nodes[node]);
        for (int k = 0; k < 6; k++) {
            mb_tensor *got = k < 2 ? run_whole(k ? cpu2 : cpu1, g, node, in)
                                   : run_tiled(k & 1 ? cpu2 : cpu1, g, node, in, (int)rnd(1, 4), (int)rnd(1, 4));
            expect_close("kpack vs ref", label, got, want);
            if (exact && !bit_equal(got, old))
                fail_msg("%s: packed run %d differs from the frame path by %g (expected bit-exact)", label, k,
                         mb_tensor_max_abs_diff(got, old));
            mb_tensor_free(got);
        }
        mb_tensor_free(old);
        mb_tensor_free(want);
        mb_tensor_free(in[0]);
        mb_graph_free(g);
    }
    static const mb_op_type acts[] = {MB_OP_RELU, MB_OP_COUNT, MB_OP_HARDSWISH, MB_OP_CLIP};
    for (size_t i = 0; i < 4; i++)
        check_residual(&specs[i], (int)(i & 1), acts[i], 2700 + i);
    if (saved)
        setenv("MECBED_CPU_DC_KPACK", saved, 1);
    else
        unsetenv("MECBED_CPU_DC_KPACK");
    if (saved_oc)
        setenv("MECBED_CPU_CONV_OC", saved_oc, 1);
    else
        unsetenv("MECBED_CPU_CONV_OC");
    free(saved);
    free(saved_oc);
}

/* The direct kernel's output channels in even blocks (dc_block_rows in
 * cpu_conv_direct.c: 16 -> 8 + 8, 32 -> 11 + 11 + 10, 64 -> 13 x 4 + 12,
 * 128 -> 13 x 8 + 12 x 2; weights packed by the same transpose for 8..14
 * rows) against the old DC_MR, 8, 4, 2, 1 blocks (MECBED_CPU_DC_EVEN=0),
 * bit for bit: which channels share a micro-kernel call changes no sum.
 * Maps large enough for packed weights (1024+ frame pixels a task) and
 * small (unpacked), stride 1 and 2, groups, batch 2 without bias; whole on
 * 1 and 2 threads and on random tile grids, each against the reference. */
static void test_conv_even_blocks(void **state)
{
    (void)state;
    static const conv_spec specs[] = {
        /* n  c   m   h   w  kh kw sh sw pt pl pb pr dh dw  g  b */
        {1, 20, 16, 40, 41, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 9, 32, 44, 40, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 16, 64, 36, 36, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 12, 128, 12, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 8, 44, 20, 22, 3, 3, 2, 2, 1, 0, 1, 1, 1, 1, 2, 0},
        {1, 40, 23, 34, 33, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1},
    };
    const char *e = getenv("MECBED_CPU_DC_EVEN"), *eo = getenv("MECBED_CPU_CONV_OC");
    char *saved = e ? strdup(e) : NULL, *saved_oc = eo ? strdup(eo) : NULL;
    setenv("MECBED_CPU_CONV_OC", "0", 1);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "even-block conv case %zu", i);
        mb_graph *g = conv_graph(&specs[i], 2800 + i);
        int node = g->n_nodes - 1;
        mb_tensor *in[1] = {rand_tensor(4, g->nodes[0].out_dims, 2900 + i, -2, 2)};
        setenv("MECBED_CPU_DC_EVEN", "0", 1);
        mb_tensor *old = run_whole(cpu1, g, node, in);
        setenv("MECBED_CPU_DC_EVEN", "1", 1);
        mb_tensor *want = run_whole(ref_be, g, node, in);
        int exact = direct_path(&g->nodes[node]);
        for (int k = 0; k < 4; k++) {
            mb_tensor *got = k < 2 ? run_whole(k ? cpu2 : cpu1, g, node, in)
                                   : run_tiled(k & 1 ? cpu2 : cpu1, g, node, in, (int)rnd(1, 4), (int)rnd(1, 4));
            expect_close("even blocks vs ref", label, got, want);
            if (exact && !bit_equal(got, old))
                fail_msg("%s: run %d differs from the old blocks by %g (expected bit-exact)", label, k,
                         mb_tensor_max_abs_diff(got, old));
            mb_tensor_free(got);
        }
        mb_tensor_free(old);
        mb_tensor_free(want);
        mb_tensor_free(in[0]);
        mb_graph_free(g);
    }
    if (saved)
        setenv("MECBED_CPU_DC_EVEN", saved, 1);
    else
        unsetenv("MECBED_CPU_DC_EVEN");
    if (saved_oc)
        setenv("MECBED_CPU_CONV_OC", saved_oc, 1);
    else
        unsetenv("MECBED_CPU_CONV_OC");
    free(saved);
    free(saved_oc);
}

static void test_delegated_ops(void **state)
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
    /* Pad: each mode, asymmetric, as wide as ONNX allows (reflect pads <
     * the dimension), batch > 1; pads on C and negative pads (reference kernel) */
    static const struct {
        int mode;
        int64_t amounts[8];
    } pad_cases[] = {
        {MB_PAD_REFLECT, {0, 0, 2, 1, 0, 0, 1, 3}}, {MB_PAD_EDGE, {0, 0, 3, 0, 0, 0, 0, 2}},
        {MB_PAD_REFLECT, {0, 0, 4, 5, 0, 0, 4, 5}}, {MB_PAD_CONSTANT, {0, 0, 0, 4, 0, 0, 5, 0}},
        {MB_PAD_CONSTANT, {0, 1, 1, 1, 0, 2, 1, 1}}, {MB_PAD_CONSTANT, {0, 0, -1, 2, 0, 0, 1, -2}},
    };
    for (size_t i = 0; i < sizeof pad_cases / sizeof pad_cases[0]; i++) {
        g = mb_graph_new("pad");
        x = add_input4(g, 2, 3, 5, 6);
        mb_node pd = {.type = MB_OP_PAD, .n_inputs = 1, .inputs = {x}};
        memcpy(pd.a.pad_amounts, pad_cases[i].amounts, sizeof pad_cases[i].amounts);
        pd.a.pad_mode = pad_cases[i].mode;
        pd.a.pad_value = -0.75f;
        char label[64];
        snprintf(label, sizeof label, "pad case %zu", i);
        check_op(finish(g, &pd), label);
    }
    /* Resize: nearest and linear, each coordinate mode, up and down,
     * integer and fractional scales, batch > 1; a scale on C (reference
     * kernel) */
    static const struct {
        int n, c, h, w;
        float sc, sh, sw;
        int mode, coord, nearest;
    } rz_cases[] = {
        {1, 2, 5, 6, 1, 2, 1.5f, MB_RESIZE_NEAREST, MB_COORD_ASYMMETRIC, MB_NEAREST_FLOOR},
        {1, 2, 5, 6, 1, 2, 1.5f, MB_RESIZE_LINEAR, MB_COORD_HALF_PIXEL, MB_NEAREST_FLOOR},
        {2, 3, 7, 9, 1, 2, 2, MB_RESIZE_NEAREST, MB_COORD_ASYMMETRIC, MB_NEAREST_FLOOR},
        {1, 4, 8, 8, 1, 4, 4, MB_RESIZE_NEAREST, MB_COORD_HALF_PIXEL, MB_NEAREST_ROUND_PREFER_FLOOR},
        {1, 3, 9, 7, 1, 0.5f, 0.6f, MB_RESIZE_NEAREST, MB_COORD_TF_HALF_PIXEL_FOR_NN, MB_NEAREST_CEIL},
        {1, 3, 6, 5, 1, 3, 2, MB_RESIZE_NEAREST, MB_COORD_ALIGN_CORNERS, MB_NEAREST_ROUND_PREFER_CEIL},
        {2, 3, 7, 9, 1, 2, 2, MB_RESIZE_LINEAR, MB_COORD_PYTORCH_HALF_PIXEL, MB_NEAREST_FLOOR},
        {1, 2, 6, 8, 1, 2.5f, 1.7f, MB_RESIZE_LINEAR, MB_COORD_ALIGN_CORNERS, MB_NEAREST_FLOOR},
        {1, 2, 9, 11, 1, 0.5f, 0.75f, MB_RESIZE_LINEAR, MB_COORD_ASYMMETRIC, MB_NEAREST_FLOOR},
        {1, 2, 4, 4, 2, 2, 2, MB_RESIZE_NEAREST, MB_COORD_ASYMMETRIC, MB_NEAREST_FLOOR},
    };
    for (size_t i = 0; i < sizeof rz_cases / sizeof rz_cases[0]; i++) {
        g = mb_graph_new("resize");
        x = add_input4(g, rz_cases[i].n, rz_cases[i].c, rz_cases[i].h, rz_cases[i].w);
        mb_node rz = {.type = MB_OP_RESIZE, .n_inputs = 1, .inputs = {x}};
        rz.a.scales[0] = 1;
        rz.a.scales[1] = rz_cases[i].sc;
        rz.a.scales[2] = rz_cases[i].sh;
        rz.a.scales[3] = rz_cases[i].sw;
        rz.a.resize_mode = rz_cases[i].mode;
        rz.a.coord_mode = rz_cases[i].coord;
        rz.a.nearest_mode = rz_cases[i].nearest;
        char label[64];
        snprintf(label, sizeof label, "resize case %zu", i);
        check_op(finish(g, &rz), label);
    }
    /* ConvTranspose: stride, kernel < / = / > stride, pads incl. asymmetric,
     * output_padding, dilation, groups, batch > 1, with and without bias */
    static const struct {
        int n, c, m, h, w, kh, kw, sh, sw, pt, pl, pb, pr, oph, opw, dh, dw, group, bias;
    } ct_cases[] = {
        {1, 4, 3, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},
        {1, 8, 6, 7, 9, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1},
        {2, 6, 4, 5, 5, 4, 4, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0},
        {1, 5, 7, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},
        {1, 4, 4, 5, 7, 3, 2, 3, 2, 2, 0, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 6, 4, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 1},
        {1, 6, 6, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 6, 1},
        {1, 3, 2, 4, 4, 1, 1, 3, 3, 0, 0, 0, 0, 2, 2, 1, 1, 1, 1},
        /* kernel = stride (taps disjoint): pads crop, output_padding adds rows no tap reaches */
        {1, 4, 4, 5, 6, 2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1},
        {2, 6, 4, 4, 5, 3, 3, 3, 3, 2, 0, 1, 2, 2, 1, 1, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof ct_cases / sizeof ct_cases[0]; i++) {
        g = mb_graph_new("convt");
        x = add_input4(g, ct_cases[i].n, ct_cases[i].c, ct_cases[i].h, ct_cases[i].w);
        int mg = ct_cases[i].m / ct_cases[i].group;
        mb_node ct = {.type = MB_OP_CONV_TRANSPOSE, .n_inputs = 1, .inputs = {x}, .n_params = ct_cases[i].bias ? 2 : 1};
        ct.params[0] = rand4(ct_cases[i].c, mg, ct_cases[i].kh, ct_cases[i].kw, 11 + i);
        if (ct_cases[i].bias)
            ct.params[1] = rand1(ct_cases[i].m, 12 + i, -1, 1);
        ct.a.kernel[0] = ct_cases[i].kh;
        ct.a.kernel[1] = ct_cases[i].kw;
        ct.a.stride[0] = ct_cases[i].sh;
        ct.a.stride[1] = ct_cases[i].sw;
        ct.a.pads[0] = ct_cases[i].pt;
        ct.a.pads[1] = ct_cases[i].pl;
        ct.a.pads[2] = ct_cases[i].pb;
        ct.a.pads[3] = ct_cases[i].pr;
        ct.a.output_padding[0] = ct_cases[i].oph;
        ct.a.output_padding[1] = ct_cases[i].opw;
        ct.a.dilation[0] = ct_cases[i].dh;
        ct.a.dilation[1] = ct_cases[i].dw;
        ct.a.group = ct_cases[i].group;
        char label[64];
        snprintf(label, sizeof label, "convtranspose case %zu", i);
        check_op(finish(g, &ct), label);
    }
}

/* ---- contract errors ---------------------------------------------------- */

static void test_bad_requests(void **state)
{
    (void)state;
    conv_spec s = {1, 4, 5, 10, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    mb_graph *g = conv_graph(&s, 3);
    int node = 1;
    mb_tensor *x = rand4(1, 4, 10, 10, 1);
    char err[512];
    /* a view too small for the tile */
    mb_region r = {2, 6, 0, 10};
    mb_tensor *sub = mb_tensor_new4(1, 4, 4, 10); /* rows [2,6) but [1,7) are needed */
    mb_view whole = mb_view_whole(x);
    assert_int_equal(mb_tensor_copy_region(&whole, (mb_region){2, 6, 0, 10}, sub), 0);
    mb_view v = {sub, 2, 0, 10, 10};
    mb_tensor *out = mb_tensor_new4(1, 5, 4, 10);
    err[0] = 0;
    assert_int_equal(mb_backend_compute(cpu1, g, node, &v, r, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "needed"));
    /* wrong output dims */
    mb_tensor *bad = mb_tensor_new4(1, 5, 3, 10);
    v = mb_view_whole(x);
    assert_int_equal(mb_backend_compute(cpu1, g, node, &v, r, bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "dimension"));
    /* region outside the output */
    mb_region outside = {8, 12, 0, 10};
    assert_int_equal(mb_backend_compute(cpu1, g, node, &v, outside, out, err, sizeof err), -1);
    assert_non_null(strstr(err, "outside"));
    /* an input node cannot be computed */
    assert_int_equal(mb_backend_compute(cpu1, g, 0, NULL, r, out, err, sizeof err), -1);
    assert_false(mb_backend_supports(cpu1, g, 0));
    mb_tensor_free(sub);
    mb_tensor_free(out);
    mb_tensor_free(bad);
    mb_graph_free(g);
    /* a non-local op asked for part of its output */
    g = mb_graph_new("gap");
    int xi = add_input4(g, 1, 4, 10, 10);
    mb_node gap = {.type = MB_OP_GLOBALAVGPOOL, .n_inputs = 1, .inputs = {xi}};
    finish(g, &gap);
    mb_tensor *o2 = mb_tensor_new4(1, 4, 1, 1);
    mb_region part = {0, 1, 0, 1};
    assert_int_equal(mb_backend_compute(cpu1, g, 1, &v, part, o2, err, sizeof err), 0); /* 1x1 is its whole output */
    mb_tensor *x2 = mb_tensor_new4(1, 4, 5, 10);
    mb_view v2 = {x2, 0, 0, 10, 10};
    assert_int_equal(mb_backend_compute(cpu1, g, 1, &v2, part, o2, err, sizeof err), -1);
    assert_non_null(strstr(err, "whole"));
    mb_tensor_free(o2);
    mb_tensor_free(x2);
    mb_tensor_free(x);
    mb_graph_free(g);
}

static void test_backend_by_name(void **state)
{
    (void)state;
    char err[256];
    mb_backend *be = mb_backend_new("cpu", 2, err, sizeof err);
    assert_non_null(be);
    assert_string_equal(mb_backend_name(be), "cpu");
    assert_int_equal(mb_backend_threads(be), 2);
    mb_backend_free(be);
    be = mb_backend_new("ref", 1, err, sizeof err);
    assert_non_null(be);
    assert_string_equal(mb_backend_name(be), "ref");
    mb_backend_free(be);
    err[0] = 0;
    be = mb_backend_new("cuda", 1, err, sizeof err);
    if (!be)
        assert_non_null(strstr(err, "cuda")); /* not built, or no GPU: says so */
    else
        mb_backend_free(be);
    err[0] = 0;
    assert_null(mb_backend_new("tpu", 1, err, sizeof err));
    assert_non_null(strstr(err, "unknown backend 'tpu'"));
    mb_backend_free(NULL);
}

/* mb_platform_init must have given OpenBLAS an AVX-512 core on an AVX-512
 * CPU (Debian's 0.3.21 picks Haswell on Zen 5 by itself). */
static void test_blas_core(void **state)
{
    (void)state;
    FILE *f = fopen("/proc/cpuinfo", "r");
    int avx512 = 0;
    char line[8192];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            avx512 = strstr(line, " avx512f") && strstr(line, " avx512bw") && strstr(line, " avx512vl");
            break;
        }
    if (f)
        fclose(f);
    const char *core = mb_platform_blas_core();
    print_message("OpenBLAS core: %s (CPU has AVX-512: %s)\n", core, avx512 ? "yes" : "no");
    if (avx512 && !getenv("MECBED_BLAS_CORETYPE") && !getenv("MECBED_NO_REEXEC_TEST")) {
        assert_true(strcasecmp(core, "haswell") != 0);
        assert_true(strcasecmp(core, "zen") != 0);
    }
}

/* Pooling's fast path (kernels/cpu/cpu_pool2d.c: row pointers into the view,
 * AVX-512 interiors, scalar borders) against its padded-copy path
 * (MECBED_CPU_POOL_FAST=0), bit for bit, on inputs with NaNs, infinities
 * and signed zeros (max is `t > m ? t : m` in tap order, so which NaN or
 * zero wins depends on that order; only NaN payloads of sums may differ);
 * tiles of the fast path on those inputs
 * bit for bit against its whole op; then check_op (reference, threads,
 * tiles) on ordinary inputs. Images up to 70 wide so rows hold several
 * 16-wide vectors and a masked tail. */
static int pool_same(const mb_tensor *a, const mb_tensor *b)
{
    if (!mb_tensor_same_shape(a, b))
        return 0;
    for (int64_t i = 0; i < mb_tensor_numel(a); i++) {
        uint32_t x, y;
        memcpy(&x, &a->data[i], 4);
        memcpy(&y, &b->data[i], 4);
        /* which NaN a sum of two NaNs returns follows the add's operand
         * order, which the compiler may swap (addition commutes) */
        if (x != y && !(isnan(a->data[i]) && isnan(b->data[i])))
            return 0;
    }
    return 1;
}

static void check_pool_fast(mb_graph *g, const char *label, uint64_t seed)
{
    int node = g->n_nodes - 1;
    const mb_node *src = &g->nodes[g->nodes[node].inputs[0]];
    mb_tensor *in[MB_MAX_INPUTS] = {0};
    in[0] = rand_tensor(src->out_ndim, src->out_dims, seed, -2, 2);
    static const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f};
    uint64_t st = seed * 2654435761u + 1;
    for (int64_t i = 0; i < mb_tensor_numel(in[0]); i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        if ((st >> 33) % 8 == 0)
            in[0]->data[i] = special[(st >> 40) % 6];
    }
    mb_tensor *fast = run_whole(cpu1, g, node, in);
    setenv("MECBED_CPU_POOL_FAST", "0", 1);
    mb_tensor *padded = run_whole(cpu1, g, node, in);
    unsetenv("MECBED_CPU_POOL_FAST");
    if (!pool_same(fast, padded))
        fail_msg("%s: fast path differs from the padded path (expected bit-exact)", label);
    for (int rep = 0; rep < 3; rep++) {
        int gh = (int)rnd(1, 4), gw = (int)rnd(1, 4);
        mb_tensor *t = run_tiled(rep & 1 ? cpu2 : cpu1, g, node, in, gh, gw);
        if (!pool_same(t, fast))
            fail_msg("%s: %dx%d tiles of the fast path differ from its whole op", label, gh, gw);
        mb_tensor_free(t);
    }
    mb_tensor_free(fast);
    mb_tensor_free(padded);
    mb_tensor_free(in[0]);
    check_op(g, label);
}

static int pool_len_ok(int64_t in, int k, int d, int pb, int pe)
{
    return in + pb + pe - ((int64_t)(k - 1) * d + 1) >= 0;
}

static void test_pooling_fast(void **state)
{
    (void)state;
    /* the zoo's shapes: tiny_yolov2 2x2/2 and 2x2/1 with end pads,
     * googlenet 3x3/2 ceil and 3x3/1 p1, densenet 3x3/2 p1 and avg 2x2/2 */
    static const int p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1}, pe[4] = {0, 0, 1, 1};
    check_pool_fast(pool_graph(MB_OP_MAXPOOL, 3, 26, 52, 2, 2, 2, 2, p0, 1, 0, 0), "maxpool 2x2/2 52", 1);
    check_pool_fast(pool_graph(MB_OP_MAXPOOL, 3, 13, 13, 2, 2, 1, 1, pe, 1, 0, 0), "maxpool 2x2/1 end pads", 2);
    check_pool_fast(pool_graph(MB_OP_MAXPOOL, 2, 28, 57, 3, 3, 2, 2, p0, 1, 1, 0), "maxpool 3x3/2 ceil 57", 3);
    check_pool_fast(pool_graph(MB_OP_MAXPOOL, 2, 14, 28, 3, 3, 1, 1, p1, 1, 0, 0), "maxpool 3x3/1 p1 28", 4);
    check_pool_fast(pool_graph(MB_OP_MAXPOOL, 2, 22, 56, 3, 3, 2, 2, p1, 1, 0, 0), "maxpool 3x3/2 p1 56", 5);
    check_pool_fast(pool_graph(MB_OP_AVGPOOL, 2, 28, 56, 2, 2, 2, 2, p0, 1, 0, 0), "avgpool 2x2/2 56", 6);
    check_pool_fast(pool_graph(MB_OP_AVGPOOL, 2, 14, 29, 3, 3, 1, 1, p1, 1, 0, 0), "avgpool 3x3/1 p1 29", 7);
    for (int i = 0; i < 60; i++) {
        int is_avg = (int)rnd(0, 1), kh = (int)rnd(1, 4), kw = (int)rnd(1, 4), sh = (int)rnd(1, 3);
        int sw = (int)rnd(1, 3), dil = rnd(0, 3) ? 1 : 2, ceil_mode = (int)rnd(0, 1), cpad = (int)rnd(0, 1);
        if (rnd(0, 2) == 0)
            kh = kw = 3;
        int eh = (kh - 1) * dil + 1, ew = (kw - 1) * dil + 1;
        int pads[4] = {(int)rnd(0, eh - 1), (int)rnd(0, ew - 1), (int)rnd(0, eh - 1), (int)rnd(0, ew - 1)};
        int h = (int)rnd(1, 20), w = (int)rnd(1, 70), c = (int)rnd(1, 3);
        if (!pool_len_ok(h, kh, dil, pads[0], pads[2]) || !pool_len_ok(w, kw, dil, pads[1], pads[3]))
            continue;
        char label[96];
        snprintf(label, sizeof label, "random %s %d: %dx%d/%dx%d d%d %dx%d ceil %d cip %d", is_avg ? "avg" : "max",
                 i, kh, kw, sh, sw, dil, h, w, ceil_mode, cpad);
        check_pool_fast(pool_graph(is_avg ? MB_OP_AVGPOOL : MB_OP_MAXPOOL, c, h, w, kh, kw, sh, sw, pads, dil,
                                   ceil_mode, cpad),
                        label, 100 + (uint64_t)i);
    }
}

static int setup(void **state)
{
    (void)state;
    ref_be = mb_backend_new("ref", 1, NULL, 0);
    cpu1 = mb_backend_new("cpu", 1, NULL, 0);
    /* every job on both threads, however small (the default runs small
     * jobs on the calling thread) */
    setenv("MECBED_CPU_PARALLEL_MIN_NS", "0", 1);
    cpu2 = mb_backend_new("cpu", 2, NULL, 0);
    unsetenv("MECBED_CPU_PARALLEL_MIN_NS");
    return ref_be && cpu1 && cpu2 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mb_backend_free(ref_be);
    mb_backend_free(cpu1);
    mb_backend_free(cpu2);
    if (n_gemm_tiles)
        printf("GEMM-path conv tilings: %d of %d came out bit-exact (tolerance 1e-5 of scale applies)\n",
               n_gemm_tiles_exact, n_gemm_tiles);
    return 0;
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blas_core),       cmocka_unit_test(test_backend_by_name),
        cmocka_unit_test(test_conv_shapes),     cmocka_unit_test(test_conv_random),
        cmocka_unit_test(test_conv_direct),     cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_residual),   cmocka_unit_test(test_conv_oc),
        cmocka_unit_test(test_conv_kpack),
        cmocka_unit_test(test_conv_even_blocks),
        cmocka_unit_test(test_pooling),         cmocka_unit_test(test_pooling_fast),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_unary),           cmocka_unit_test(test_binary),
        cmocka_unit_test(test_batchnorm),       cmocka_unit_test(test_concat),
        cmocka_unit_test(test_gemm),            cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_shape_ops),       cmocka_unit_test(test_delegated_ops),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
