/* mecbed-bench: kernel and model throughput of the fast CPU backend against
 * the sgemm rate measured in the same run.
 *
 *   mecbed-bench [--threads N] [--models a,b,..] [--no-models] [--no-convs]
 *                [--repeats R] [--json]
 *
 * 1. sgemm 1024^3 (OpenBLAS, one thread): the anchor every ratio refers to.
 * 2. Per zoo model (BatchNormalization folded, activations fused into their
 *    convs: as deployed): latency (median
 *    of R whole inferences), GFLOP/s = 2 * dense MACs / time (Conv, Gemm,
 *    MatMul MACs: the work sgemm could do), and its ratio to the sgemm rate.
 * 3. Per conv shape of the zoo's hot layers: GFLOP/s and ratio.
 * 4. Per op type (--no-optypes skips it), one representative shape each:
 *    time against the op's limit in this run, the larger of its compute
 *    time at the sgemm rate and its memory time (a memcpy moving the same
 *    bytes, read + written, timed here at that size, so caches count as
 *    they do for the op). "x limit" is time / limit: 1 is the bound. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int use_best; /* --best: report the fastest run (a noisy, shared machine) */
static int use_cputime; /* --cputime: this thread's CPU time, not wall time */

/* Seconds. With --cputime (one thread only) time spent preempted by other
 * processes does not count, which keeps numbers usable on a shared machine. */
static double clock_now(void)
{
    if (!use_cputime)
        return mb_now();
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    if (use_best)
        return v[0];
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Best of ten n^3 sgemm calls, GFLOP/s, timed with this thread's CPU time
 * whatever --cputime says: the anchor is the machine's capability, which
 * time spent preempted by other processes would understate (and so inflate
 * every ratio). */
static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_rate(int n)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n),
          *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0;
    }
    for (long i = 0; i < (long)n * n; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.2f;
    }
    double best = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = thread_cpu_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = thread_cpu_now() - t0;
        if (t < best)
            best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * (double)n * n / best * 1e-9;
}

static int64_t dense_macs(const mb_graph *g)
{
    int64_t s = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        mb_op_type t = g->nodes[i].type;
        if (t == MB_OP_CONV || t == MB_OP_CONV_TRANSPOSE || t == MB_OP_GEMM || t == MB_OP_MATMUL)
            s += g->nodes[i].macs;
    }
    return s;
}

typedef struct opts {
    int threads, repeats, json, models, convs, optypes, top_ops;
    char *model_list;
} opts;

static int first_row = 1;

static void emit(const opts *o, const char *kind, const char *name, double ms, double gflops, double peak,
                 const char *extra)
{
    if (o->json) {
        printf("%s{\"kind\":\"%s\",\"name\":\"%s\",\"ms\":%.4f,\"gflops\":%.2f,\"ratio\":%.4f%s%s}", first_row ? "" : ",\n",
               kind, name, ms, gflops, gflops / peak, extra && *extra ? "," : "", extra ? extra : "");
        first_row = 0;
    } else {
        printf("%-6s %-34s %10.3f ms %8.1f GFLOP/s %6.1f %% of sgemm  %s\n", kind, name, ms, gflops,
               100.0 * gflops / peak, extra ? extra : "");
    }
}

static int bench_model(const opts *o, const char *name, double peak)
{
    char err[512];
    mb_graph *g = mb_zoo_build(name, MB_ZOO_SEED, err, sizeof err);
    if (!g) {
        fprintf(stderr, "mecbed-bench: %s\n", err);
        return -1;
    }
    int folded = mb_graph_fold_batchnorm(g);
    if (mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", name, err);
        mb_graph_free(g);
        return -1;
    }
    mb_backend *be = mb_backend_new("cpu", o->threads, NULL, 0);
    mb_tensor **inputs = mb_exec_make_inputs(g, 1);
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    int reps = o->repeats;
    double *t = calloc((size_t)reps + 1, sizeof(double));
    mb_op_time *times = calloc((size_t)g->n_nodes, sizeof *times);
    int rc = 0;
    /* Each sample is one mb_exec_run of several passes: the executor reuses
     * its activation buffers from the second pass on, as a deployed model
     * would. Wall clock: the sum of the per-op medians it reports (3 passes).
     * CPU time: the call's CPU time / 5 passes, so the first pass's buffer
     * allocation adds a fifth of its cost (slightly pessimistic; subtracting
     * a 1-pass call instead was tried and gave impossible minima, the
     * difference of two noisy times). */
    for (int r = -1; r < reps && !rc; r++) { /* r = -1: warm-up */
        int passes = use_cputime ? 5 : 3;
        mb_tensor **outs = NULL;
        double t0 = clock_now();
        mb_exec_opts eo = {.times = times, .repeats = passes, .fuse = 1};
        rc = mb_exec_run(g, be, inputs, &outs, &eo, NULL, err, sizeof err);
        double ms = (clock_now() - t0) * 1e3;
        if (r >= 0 && use_cputime) {
            t[r] = ms / passes;
        } else if (r >= 0) {
            double sum = 0;
            for (int i = 0; i < g->n_nodes; i++)
                sum += times[i].ms;
            t[r] = sum;
        }
        if (!rc) {
            for (int k = 0; k < g->n_outputs; k++)
                mb_tensor_free(outs[k]);
            free(outs);
        }
    }
    if (rc) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", name, err);
    } else {
        double ms = median(t, reps);
        int64_t dm = dense_macs(g);
        double gf = 2.0 * (double)dm / (ms * 1e-3) * 1e-9;
        char extra[256];
        if (o->json)
            snprintf(extra, sizeof extra, "\"dense_macs\":%lld,\"macs\":%lld,\"bn_folded\":%d,\"threads\":%d",
                     (long long)dm, (long long)mb_graph_macs(g), folded, o->threads);
        else
            snprintf(extra, sizeof extra, "(%.2f GMACs dense, %d BN folded)", dm * 1e-9, folded);
        emit(o, "model", name, ms, gf, peak, extra);
        if (o->top_ops && !o->json) {
            /* per-op-type breakdown from one timed pass */
            mb_tensor **outs = NULL;
            mb_exec_opts eo = {.times = times, .repeats = 3, .fuse = 1};
            if (!mb_exec_run(g, be, inputs, &outs, &eo, NULL, err, sizeof err)) {
                for (int k = 0; k < g->n_outputs; k++)
                    mb_tensor_free(outs[k]);
                free(outs);
                double by_type[MB_OP_COUNT] = {0};
                int64_t macs_type[MB_OP_COUNT] = {0};
                double tot = 0;
                for (int i = 0; i < g->n_nodes; i++) {
                    by_type[g->nodes[i].type] += times[i].ms;
                    macs_type[g->nodes[i].type] += g->nodes[i].macs;
                    tot += times[i].ms;
                }
                for (int ty = 0; ty < MB_OP_COUNT; ty++)
                    if (by_type[ty] > 0.01 * tot)
                        printf("         %-20s %8.2f ms %5.1f %%  %7.1f GFLOP/s\n", mb_op_name(ty), by_type[ty],
                               100 * by_type[ty] / tot, 2.0 * macs_type[ty] / (by_type[ty] * 1e-3) * 1e-9);
                if (o->top_ops > 1)
                    for (int i = 0; i < g->n_nodes; i++) {
                        const mb_node *nd = &g->nodes[i];
                        if (nd->type != MB_OP_CONV || times[i].ms <= 0)
                            continue;
                        printf("           %-28s k%dx%d s%d g%-4d %4lldx%-4lld -> %4lld  %7.3f ms %6.1f GFLOP/s\n",
                               nd->name, nd->a.kernel[0], nd->a.kernel[1], nd->a.stride[0], nd->a.group,
                               (long long)nd->out_dims[2], (long long)nd->out_dims[3], (long long)nd->out_dims[1],
                               times[i].ms, 2.0 * nd->macs / (times[i].ms * 1e-3) * 1e-9);
                    }
            }
        }
    }
    free(t);
    free(times);
    for (int i = 0; i < n_in; i++)
        mb_tensor_free(inputs[i]);
    free(inputs);
    mb_backend_free(be);
    mb_graph_free(g);
    return rc;
}

/* One conv layer as a two-node graph. */
typedef struct conv_shape {
    const char *name;
    int c, m, h, w, k, s, p, group;
} conv_shape;

static const conv_shape conv_shapes[] = {
    {"vgg16 conv1_2 3x3 64->64 224", 64, 64, 224, 224, 3, 1, 1, 1},
    {"vgg16 conv3_2 3x3 256->256 56", 256, 256, 56, 56, 3, 1, 1, 1},
    {"vgg16 conv5_2 3x3 512->512 14", 512, 512, 14, 14, 3, 1, 1, 1},
    {"resnet conv1 7x7/2 3->64 224", 3, 64, 224, 224, 7, 2, 3, 1},
    {"resnet 3x3 64->64 56", 64, 64, 56, 56, 3, 1, 1, 1},
    {"resnet 3x3 128->128 28", 128, 128, 28, 28, 3, 1, 1, 1},
    {"resnet 3x3 256->256 14", 256, 256, 14, 14, 3, 1, 1, 1},
    {"resnet 3x3 512->512 7", 512, 512, 7, 7, 3, 1, 1, 1},
    {"resnet 1x1 256->64 56", 256, 64, 56, 56, 1, 1, 0, 1},
    {"resnet 1x1 64->256 56", 64, 256, 56, 56, 1, 1, 0, 1},
    {"resnet 1x1 1024->256 14", 1024, 256, 14, 14, 1, 1, 0, 1},
    {"resnet 1x1/2 512->1024 28", 512, 1024, 28, 28, 1, 2, 0, 1},
    /* stride 2, 7x7 maps, small K, 13x13 maps: the direct kernels' hard cases */
    {"resnet 3x3/2 128->128 56", 128, 128, 56, 56, 3, 2, 1, 1},
    {"resnet 1x1/2 256->512 56", 256, 512, 56, 56, 1, 2, 0, 1},
    {"resnet 1x1 512->2048 7", 512, 2048, 7, 7, 1, 1, 0, 1},
    {"resnet 1x1 512->128 28", 512, 128, 28, 28, 1, 1, 0, 1},
    {"mobilenetv2 1x1 16->96 112", 16, 96, 112, 112, 1, 1, 0, 1},
    {"mobilenetv2 1x1 320->1280 7", 320, 1280, 7, 7, 1, 1, 0, 1},
    {"tiny_yolov2 3x3 512->1024 13", 512, 1024, 13, 13, 3, 1, 1, 1},
    {"tiny_yolov2 3x3 3->16 416", 3, 16, 416, 416, 3, 1, 1, 1},
    {"mobilenetv2 dw 3x3 144 56", 144, 144, 56, 56, 3, 1, 1, 144},
    {"mobilenetv2 dw 3x3/2 144 56", 144, 144, 56, 56, 3, 2, 1, 144},
};

static int bench_conv(const opts *o, const conv_shape *cs, double peak)
{
    char err[512];
    mb_graph *g = mb_graph_new(cs->name);
    mb_node in = {.type = MB_OP_INPUT};
    snprintf(in.name, sizeof in.name, "x");
    in.a.shape_ndim = 4;
    in.a.shape[0] = 1;
    in.a.shape[1] = cs->c;
    in.a.shape[2] = cs->h;
    in.a.shape[3] = cs->w;
    int x = mb_graph_add(g, &in);
    mb_node cv = {.type = MB_OP_CONV, .n_inputs = 1, .inputs = {x}, .n_params = 2};
    snprintf(cv.name, sizeof cv.name, "conv");
    cv.params[0] = mb_tensor_new4(cs->m, cs->c / cs->group, cs->k, cs->k);
    int64_t bd = cs->m;
    cv.params[1] = mb_tensor_new(1, &bd);
    mb_tensor_fill_uniform(cv.params[0], 1, -0.1f, 0.1f);
    mb_tensor_fill_uniform(cv.params[1], 2, -0.1f, 0.1f);
    cv.a.stride[0] = cv.a.stride[1] = cs->s;
    for (int i = 0; i < 4; i++)
        cv.a.pads[i] = cs->p;
    cv.a.group = cs->group;
    int ci = mb_graph_add(g, &cv);
    g->outputs[g->n_outputs++] = ci;
    if (mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", cs->name, err);
        mb_graph_free(g);
        return -1;
    }
    mb_tensor *xt = mb_tensor_new4(1, cs->c, cs->h, cs->w);
    mb_tensor_fill_uniform(xt, 3, -1, 1);
    const mb_node *n = &g->nodes[ci];
    mb_tensor *yt = mb_tensor_new(4, n->out_dims);
    mb_backend *be = mb_backend_new("cpu", o->threads, NULL, 0);
    mb_view v = mb_view_whole(xt);
    mb_region r = mb_node_full_region(g, ci);
    int reps = o->repeats * 3;
    double *t = calloc((size_t)reps, sizeof(double));
    int rc = mb_backend_compute(be, g, ci, &v, r, yt, err, sizeof err); /* warm-up */
    for (int i = 0; i < reps && !rc; i++) {
        double t0 = clock_now();
        rc = mb_backend_compute(be, g, ci, &v, r, yt, err, sizeof err);
        t[i] = (clock_now() - t0) * 1e3;
    }
    if (rc) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", cs->name, err);
    } else {
        double ms = median(t, reps);
        double gf = 2.0 * (double)n->macs / (ms * 1e-3) * 1e-9;
        char extra[128];
        if (o->json)
            snprintf(extra, sizeof extra, "\"macs\":%lld,\"threads\":%d", (long long)n->macs, o->threads);
        else
            snprintf(extra, sizeof extra, "(%.3f GMACs)", n->macs * 1e-9);
        emit(o, "conv", cs->name, ms, gf, peak, extra);
    }
    free(t);
    mb_backend_free(be);
    mb_tensor_free(xt);
    mb_tensor_free(yt);
    mb_graph_free(g);
    return rc;
}

/* ---- per op type ---------------------------------------------------- */

/* One op on one shape: a model file whose last node is timed, its inputs
 * being the graph's Input nodes (seeded uniform values). */
typedef struct op_case {
    const char *label;
    const char *body; /* model file lines after the magic */
} op_case;

static const op_case op_cases[] = {
    {"Conv 3x3 64->64 56 (direct)", "Input x shape=1,64,56,56\nConv y x kernel=3 pads=1 W=he(64x64x3x3) B=const(64,0)\n"},
    {"Conv 1x1 16->96 112 (small K)", "Input x shape=1,16,112,112\nConv y x kernel=1 W=he(96x16x1x1) B=const(96,0.1)\n"},
    {"Conv 3x3/2 128->128 56 (direct)", "Input x shape=1,128,56,56\nConv y x kernel=3 stride=2 pads=1 W=he(128x128x3x3) "
     "B=const(128,0)\n"},
    {"Conv depthwise 3x3 144 56", "Input x shape=1,144,56,56\nConv y x kernel=3 pads=1 group=144 W=he(144x1x3x3)\n"},
    {"Conv depthwise 3x3/2 96 112", "Input x shape=1,96,112,112\nConv y x kernel=3 stride=2 pads=1 group=96 "
     "W=he(96x1x3x3)\n"},
    {"Conv grouped 3x3 g32 256 28", "Input x shape=1,256,28,28\nConv y x kernel=3 pads=1 group=32 W=he(256x8x3x3)\n"},
    {"ConvTranspose 2x2/2 16->16 160", "Input x shape=1,16,160,160\nConvTranspose y x stride=2 W=he(16x16x2x2)\n"},
    {"ConvTranspose 4x4/2 64->32 40", "Input x shape=1,64,40,40\nConvTranspose y x stride=2 pads=1 W=he(64x32x4x4)\n"},
    {"Gemm 2048->1000 (FC)", "Input x shape=1,2048\nGemm y x trans_b=1 B=he(1000x2048) C=const(1000,0)\n"},
    {"MaxPool 3x3/2 64 112", "Input x shape=1,64,112,112\nMaxPool y x kernel=3 stride=2 pads=1\n"},
    {"AveragePool 3x3/1 256 28", "Input x shape=1,256,28,28\nAveragePool y x kernel=3 stride=1 pads=1\n"},
    {"GlobalAveragePool 2048 7", "Input x shape=1,2048,7,7\nGlobalAveragePool y x\n"},
    {"Relu 64x112x112", "Input x shape=1,64,112,112\nRelu y x\n"},
    {"Clip 96x112x112", "Input x shape=1,96,112,112\nClip y x alpha=0 beta=6\n"},
    {"Sigmoid 64x112x112", "Input x shape=1,64,112,112\nSigmoid y x\n"},
    {"HardSwish 64x112x112", "Input x shape=1,64,112,112\nHardSwish y x\n"},
    {"Add 256x56x56", "Input a shape=1,256,56,56\nInput b shape=1,256,56,56\nAdd y a,b\n"},
    {"Mul 256x56x56 by channel", "Input a shape=1,256,56,56\nMul y a B=uniform(1x256x1x1,0.5,1.5)\n"},
    {"BatchNormalization 64x112x112", "Input x shape=1,64,112,112\nBatchNormalization y x epsilon=1e-5 "
     "scale=uniform(64,0.8,1.2) bias=const(64,0) mean=const(64,0) var=const(64,1)\n"},
    {"Concat 2x128x56x56", "Input a shape=1,128,56,56\nInput b shape=1,128,56,56\nConcat y a,b axis=1\n"},
    {"Pad 64x112x112 by 1", "Input x shape=1,64,112,112\nPad y x pad_amounts=0,0,1,1,0,0,1,1\n"},
    {"Resize nearest 2x 64 80->160", "Input x shape=1,64,80,80\nResize y x scales=1,1,2,2 resize_mode=nearest "
     "coord_mode=asymmetric nearest_mode=floor\n"},
    {"Resize linear 2x 64 80->160", "Input x shape=1,64,80,80\nResize y x scales=1,1,2,2 resize_mode=linear "
     "coord_mode=half_pixel\n"},
    {"Softmax 12x197x197 last axis", "Input x shape=12,197,197\nSoftmax y x axis=-1\n"},
};

/* Milliseconds for a memcpy of n bytes (best of 10, warm). */
static double copy_ms(size_t n)
{
    char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    if (!a || !b) {
        free(a);
        free(b);
        return 0;
    }
    memset(a, 1, n);
    memset(b, 2, n);
    double best = 1e30;
    for (int r = 0; r < 10; r++) {
        double t0 = clock_now();
        memcpy(b, a, n);
        double t = clock_now() - t0;
        best = t < best ? t : best;
        a[r] = b[n - 1 - (size_t)r % n]; /* keep the copy alive */
    }
    free(a);
    free(b);
    return best * 1e3;
}

static mb_graph *op_graph(const op_case *oc, char *err, size_t errlen)
{
    char path[] = "/tmp/mecbed-bench-op.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a temporary model file");
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(path);
        snprintf(err, errlen, "cannot write a temporary model file");
        return NULL;
    }
    fprintf(f, "mecbed-model 1\nname optype\n%soutput y\n", oc->body);
    fclose(f);
    mb_graph *g = mb_modelfile_read(path, err, errlen);
    unlink(path);
    return g;
}

static int bench_optype(const opts *o, const op_case *oc, double peak)
{
    char err[512];
    mb_graph *g = op_graph(oc, err, sizeof err);
    if (!g) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", oc->label, err);
        return -1;
    }
    int node = g->n_nodes - 1;
    const mb_node *n = &g->nodes[node];
    mb_tensor **inputs = mb_exec_make_inputs(g, 1);
    mb_view v[MB_MAX_INPUTS];
    size_t bytes = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int in = 0;
        for (int i = 0; i < n->inputs[k]; i++)
            in += g->nodes[i].type == MB_OP_INPUT;
        v[k] = mb_view_whole(inputs[in]);
        bytes += mb_tensor_bytes(inputs[in]);
    }
    for (int p = 0; p < n->n_params; p++)
        bytes += mb_tensor_bytes(n->params[p]);
    mb_tensor *y = mb_tensor_new(n->out_ndim, n->out_dims);
    bytes += mb_tensor_bytes(y);
    mb_backend *be = mb_backend_new("cpu", o->threads, NULL, 0);
    mb_region r = mb_node_full_region(g, node);
    int reps = o->repeats * 4;
    double *t = calloc((size_t)reps, sizeof(double));
    int rc = !y || !be || !t ? -1 : mb_backend_compute(be, g, node, v, r, y, err, sizeof err);
    for (int i = 0; i < reps && !rc; i++) {
        double t0 = clock_now();
        rc = mb_backend_compute(be, g, node, v, r, y, err, sizeof err);
        t[i] = (clock_now() - t0) * 1e3;
    }
    if (rc) {
        fprintf(stderr, "mecbed-bench: %s: %s\n", oc->label, err[0] ? err : "out of memory");
    } else {
        double ms = median(t, reps);
        double mem_ms = copy_ms(bytes / 2) / o->threads; /* memcpy of n bytes moves 2n */
        double flop_ms = 2.0 * (double)n->macs / (peak * o->threads) * 1e-6;
        double limit = mem_ms > flop_ms ? mem_ms : flop_ms;
        double gf = 2.0 * (double)n->macs / (ms * 1e-3) * 1e-9, gbs = (double)bytes / (ms * 1e-3) * 1e-9;
        if (o->json) {
            printf("%s{\"kind\":\"optype\",\"name\":\"%s\",\"op\":\"%s\",\"ms\":%.4f,\"gflops\":%.2f,\"gbs\":%.2f,"
                   "\"limit_ms\":%.4f,\"bound\":\"%s\",\"x_limit\":%.3f,\"threads\":%d}",
                   first_row ? "" : ",\n", oc->label, mb_op_name(n->type), ms, gf, gbs, limit,
                   mem_ms > flop_ms ? "memory" : "compute", ms / limit, o->threads);
            first_row = 0;
        } else {
            printf("op     %-34s %10.3f ms %8.1f GFLOP/s %6.1f GB/s  limit %8.3f ms (%s) %6.2fx limit\n",
                   oc->label, ms, gf, gbs, limit, mem_ms > flop_ms ? "memory " : "compute", ms / limit);
        }
    }
    free(t);
    mb_backend_free(be);
    mb_tensor_free(y);
    for (int i = 0; inputs && inputs[i]; i++)
        mb_tensor_free(inputs[i]);
    free(inputs);
    mb_graph_free(g);
    return rc ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed-bench [--threads N] [--models a,b,..] [--no-models] [--no-convs] [--no-optypes]\n"
            "                    [--repeats R]\n"
            "                    [--ops] [--best] [--cputime] [--json]\n"
            "Measures the single-thread sgemm rate (1024^3), then per zoo model the latency of the fast CPU\n"
            "backend, its GFLOP/s (2 x Conv/Gemm/MatMul MACs / time) and the ratio to the sgemm rate, then the\n"
            "same for the hot conv shapes. Times are medians of wall time (--best: the fastest run;\n"
            "--cputime: the thread's CPU time, so time preempted by other processes does not count; both for\n"
            "a busy machine).\n"
            "--ops adds a per-op-type time breakdown per model; twice, every conv too.\n"
            "Last, one representative shape per op type against its limit in this run: the larger of its\n"
            "compute time at the sgemm rate and a memcpy of the bytes it must read and write.\n");
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    opts o = {.threads = 1, .repeats = 5, .models = 1, .convs = 1, .optypes = 1};
    static const struct option lo[] = {
        {"threads", required_argument, 0, 't'}, {"models", required_argument, 0, 'm'},
        {"no-models", no_argument, 0, 'M'},     {"no-convs", no_argument, 0, 'C'},
        {"repeats", required_argument, 0, 'r'}, {"json", no_argument, 0, 'j'},
        {"ops", no_argument, 0, 'o'},           {"help", no_argument, 0, 'h'},
        {"best", no_argument, 0, 'b'},          {"cputime", no_argument, 0, 'c'},
        {"no-optypes", no_argument, 0, 'T'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "t:m:r:h", lo, NULL)) != -1) {
        switch (ch) {
        case 't': o.threads = atoi(optarg); break;
        case 'm': o.model_list = optarg; break;
        case 'M': o.models = 0; break;
        case 'C': o.convs = 0; break;
        case 'T': o.optypes = 0; break;
        case 'r': o.repeats = atoi(optarg); break;
        case 'j': o.json = 1; break;
        case 'o': o.top_ops++; break;
        case 'b': use_best = 1; break;
        case 'c': use_cputime = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (use_cputime && o.threads != 1) {
        fprintf(stderr, "mecbed-bench: --cputime measures one thread: use it with --threads 1\n");
        return 2;
    }
    if (o.threads < 1 || o.threads > 64 || o.repeats < 1 || o.repeats > 1000) {
        fprintf(stderr, "mecbed-bench: --threads must be 1..64 and --repeats 1..1000\n");
        return 2;
    }
    char cpu[256];
    mb_platform_cpu_model(cpu, sizeof cpu);
    double load = 0;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load) != 1)
            load = 0;
        fclose(lf);
    }
    if (load > 0.5 * mb_platform_cores())
        fprintf(stderr, "mecbed-bench: load average %.1f on %d cores: other work is running, numbers will be low "
                "and noisy (--best helps)\n", load, mb_platform_cores());
    double peak = sgemm_rate(1024);
    if (o.json)
        printf("{\"cpu\":\"%s\",\"blas_core\":\"%s\",\"threads\":%d,\"clock\":\"%s\",\"stat\":\"%s\","
               "\"sgemm_1024_gflops\":%.2f,\"rows\":[\n",
               cpu, mb_platform_blas_core(), o.threads, use_cputime ? "thread_cpu" : "wall",
               use_best ? "best" : "median", peak);
    else
        printf("cpu: %s | OpenBLAS core: %s | threads: %d | clock: %s%s\nsgemm 1024^3 (1 thread, best of 10, thread CPU time): %.1f GFLOP/s\n",
               cpu, mb_platform_blas_core(), o.threads, use_cputime ? "thread CPU time" : "wall",
               use_best ? ", best run" : ", median", peak);
    int fails = 0;
    if (o.models) {
        const char *const *names = mb_zoo_names();
        char *list = o.model_list ? strdup(o.model_list) : NULL;
        if (list) {
            for (char *sv = NULL, *tok = strtok_r(list, ",", &sv); tok; tok = strtok_r(NULL, ",", &sv))
                fails += bench_model(&o, tok, peak) != 0;
        } else {
            for (int i = 0; names[i]; i++)
                fails += bench_model(&o, names[i], peak) != 0;
        }
        free(list);
    }
    if (o.convs)
        for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
            fails += bench_conv(&o, &conv_shapes[i], peak) != 0;
    if (o.optypes)
        for (size_t i = 0; i < sizeof op_cases / sizeof op_cases[0]; i++)
            fails += bench_optype(&o, &op_cases[i], peak) != 0;
    /* the anchor again: on a shared machine, load may have changed under us */
    double peak2 = sgemm_rate(1024);
    if (o.json)
        printf("\n],\"sgemm_1024_gflops_end\":%.2f}\n", peak2);
    else
        printf("sgemm 1024^3 again at the end: %.1f GFLOP/s%s\n", peak2,
               fabs(peak2 - peak) > 0.05 * peak ? " (differs by more than 5 %: rerun on a quiet machine)" : "");
    return fails ? 1 : 0;
}
