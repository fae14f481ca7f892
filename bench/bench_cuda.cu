/* mecbed-bench-cuda: the CUDA backend on a GPU (make bench-cuda).
 *
 *  1. Per zoo model: latency of one inference through the executor on the
 *     cuda backend (median of --repeats runs of 3 passes each, wall clock of
 *     the whole pass: the backend interface is host in / host out, so every
 *     op's input upload and output download are included), next to the
 *     sum of per-op medians.
 *  2. Per conv shape (the CPU bench's hot shapes): the cuda backend's
 *     compute call against cuDNN's convolution on the same shape, as the
 *     anchor. cuDNN is timed twice: kernel only (data resident on the GPU,
 *     CUDA events), and with the same host traffic our call has (pageable ->
 *     pinned -> device, conv + bias, device -> pinned -> pageable), wall
 *     clock. The ratio reported is cuDNN-with-transfers time / ours (1.0 =
 *     as fast as cuDNN under the same interface). cuDNN runs in FMA math
 *     mode (no TF32), as our kernels and cuBLAS calls do.
 * Without a GPU it prints why and exits 77. */
#include <cuda_runtime.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifndef MB_NO_CUDNN
#include <cudnn.h>
#endif

extern "C" {
#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mb_cuda.h"
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct opts {
    int repeats, json;
    const char *models;
} opts;

static int first_row = 1;

static void json_row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void json_row(const char *fmt, ...)
{
    va_list ap;
    printf("%s\n  ", first_row ? "" : ",");
    first_row = 0;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

static int64_t dense_macs(const mb_graph *g)
{
    int64_t m = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        mb_op_type t = g->nodes[i].type;
        if (t == MB_OP_CONV || t == MB_OP_GEMM || t == MB_OP_MATMUL || t == MB_OP_CONV_TRANSPOSE)
            m += g->nodes[i].macs;
    }
    return m;
}

static int bench_model(const opts *o, mb_backend *be, const char *name)
{
    char err[512];
    mb_graph *g = mb_zoo_build(name, MB_ZOO_SEED, err, sizeof err);
    if (!g) {
        fprintf(stderr, "mecbed-bench-cuda: %s\n", err);
        return -1;
    }
    mb_graph_fold_batchnorm(g);
    if (mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed-bench-cuda: %s: %s\n", name, err);
        mb_graph_free(g);
        return -1;
    }
    mb_tensor **inputs = mb_exec_make_inputs(g, 1);
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    double *wall = (double *)calloc((size_t)o->repeats, sizeof(double));
    double *opsum = (double *)calloc((size_t)o->repeats, sizeof(double));
    mb_op_time *times = (mb_op_time *)calloc((size_t)g->n_nodes, sizeof *times);
    int rc = 0;
    for (int r = -1; r < o->repeats && !rc; r++) { /* r = -1: warm-up (weights go to the GPU) */
        mb_tensor **outs = NULL;
        mb_exec_opts eo;
        memset(&eo, 0, sizeof eo);
        eo.times = times;
        eo.repeats = 3;
        double t0 = now_s();
        rc = mb_exec_run(g, be, inputs, &outs, &eo, NULL, err, sizeof err);
        double ms = (now_s() - t0) * 1e3 / 3;
        if (rc)
            break;
        if (r >= 0) {
            wall[r] = ms;
            for (int i = 0; i < g->n_nodes; i++)
                opsum[r] += times[i].ms;
        }
        for (int k = 0; k < g->n_outputs; k++)
            mb_tensor_free(outs[k]);
        free(outs);
    }
    if (rc) {
        fprintf(stderr, "mecbed-bench-cuda: %s: %s\n", name, err);
    } else {
        double ms = median(wall, o->repeats), ops = median(opsum, o->repeats);
        double gf = 2.0 * (double)dense_macs(g) / (ops * 1e-3) * 1e-9;
        if (o->json)
            json_row("{\"kind\":\"model\",\"name\":\"%s\",\"ms\":%.4f,\"ops_ms\":%.4f,\"gflops\":%.1f,\"ops\":%d}",
                     name, ms, ops, gf, g->n_nodes);
        else
            printf("model %-14s %9.3f ms per pass (ops %9.3f ms, %7.1f GFLOP/s dense, %d ops)\n", name, ms, ops, gf,
                   g->n_nodes);
    }
    free(wall);
    free(opsum);
    free(times);
    for (int i = 0; i < n_in; i++)
        mb_tensor_free(inputs[i]);
    free(inputs);
    mb_graph_free(g);
    return rc;
}

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
    {"resnet 3x3 256->256 14", 256, 256, 14, 14, 3, 1, 1, 1},
    {"resnet 3x3 512->512 7", 512, 512, 7, 7, 3, 1, 1, 1},
    {"resnet 1x1 256->64 56", 256, 64, 56, 56, 1, 1, 0, 1},
    {"resnet 1x1 64->256 56", 64, 256, 56, 56, 1, 1, 0, 1},
    {"resnet 1x1 1024->256 14", 1024, 256, 14, 14, 1, 1, 0, 1},
    {"resnet 1x1/2 512->1024 28", 512, 1024, 28, 28, 1, 2, 0, 1},
    {"mobilenetv2 dw 3x3 144 56", 144, 144, 56, 56, 3, 1, 1, 144},
    {"mobilenetv2 dw 3x3/2 144 56", 144, 144, 56, 56, 3, 2, 1, 144},
};

#ifndef MB_NO_CUDNN
#define DNN(call)                                                                                           \
    do {                                                                                                    \
        cudnnStatus_t s_ = (call);                                                                          \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                                   \
            snprintf(why, whylen, "%s: %s", #call, cudnnGetErrorString(s_));                              \
            goto done;                                                                                      \
        }                                                                                                   \
    } while (0)
#define CU(call)                                                                                            \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess) {                                                                            \
            snprintf(why, whylen, "%s: %s", #call, cudaGetErrorString(e_));                               \
            goto done;                                                                                      \
        }                                                                                                   \
    } while (0)

/* cuDNN on one shape: kernel-only ms (events) and with host traffic (wall).
 * x, w, b, y: the host tensors our backend used. */
static int cudnn_conv(const conv_shape *cs, int reps, const mb_tensor *x, const mb_tensor *w, const mb_tensor *b,
                      mb_tensor *y, double *kernel_ms, double *total_ms, char *why, size_t whylen)
{
    int rc = -1;
    cudnnHandle_t h = NULL;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL, bd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    float *dx = NULL, *dw = NULL, *db = NULL, *dy = NULL, *pin = NULL;
    void *ws = NULL;
    size_t ws_len = 0;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaStream_t st = NULL;
    int n, c, hh, ww, returned = 0;
    float one = 1.0f, zero = 0.0f;
    cudnnConvolutionFwdAlgoPerf_t perf[8];
    double *t = (double *)calloc((size_t)reps, sizeof(double));
    size_t xb = mb_tensor_bytes(x), yb = mb_tensor_bytes(y);
    DNN(cudnnCreate(&h));
    CU(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    DNN(cudnnSetStream(h, st));
    DNN(cudnnCreateTensorDescriptor(&xd));
    DNN(cudnnCreateTensorDescriptor(&yd));
    DNN(cudnnCreateTensorDescriptor(&bd));
    DNN(cudnnCreateFilterDescriptor(&wd));
    DNN(cudnnCreateConvolutionDescriptor(&cd));
    DNN(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, cs->c, cs->h, cs->w));
    DNN(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, cs->m, cs->c / cs->group, cs->k, cs->k));
    DNN(cudnnSetConvolution2dDescriptor(cd, cs->p, cs->p, cs->s, cs->s, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionGroupCount(cd, cs->group));
    DNN(cudnnSetConvolutionMathType(cd, CUDNN_FMA_MATH));
    DNN(cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &n, &c, &hh, &ww));
    if (c != y->dims[1] || hh != y->dims[2] || ww != y->dims[3]) {
        snprintf(why, whylen, "cuDNN's output %dx%dx%d differs from mecbed's", c, hh, ww);
        goto done;
    }
    DNN(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hh, ww));
    DNN(cudnnSetTensor4dDescriptor(bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, c, 1, 1));
    CU(cudaMalloc(&dx, xb));
    CU(cudaMalloc(&dy, yb));
    CU(cudaMalloc(&dw, mb_tensor_bytes(w)));
    CU(cudaMalloc(&db, mb_tensor_bytes(b)));
    CU(cudaMallocHost(&pin, xb > yb ? xb : yb));
    CU(cudaMemcpy(dx, x->data, xb, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(dw, w->data, mb_tensor_bytes(w), cudaMemcpyHostToDevice));
    CU(cudaMemcpy(db, b->data, mb_tensor_bytes(b), cudaMemcpyHostToDevice));
    /* the fastest algorithm cuDNN finds (it runs them all) */
    DNN(cudnnFindConvolutionForwardAlgorithm(h, xd, wd, cd, yd, 8, &returned, perf));
    if (returned < 1 || perf[0].status != CUDNN_STATUS_SUCCESS) {
        snprintf(why, whylen, "cuDNN found no algorithm");
        goto done;
    }
    DNN(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, perf[0].algo, &ws_len));
    if (ws_len)
        CU(cudaMalloc(&ws, ws_len));
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    for (int r = -1; r < reps; r++) { /* kernel only */
        CU(cudaEventRecord(e0, st));
        DNN(cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cd, perf[0].algo, ws, ws_len, &zero, yd, dy));
        DNN(cudnnAddTensor(h, &one, bd, db, &one, yd, dy));
        CU(cudaEventRecord(e1, st));
        CU(cudaEventSynchronize(e1));
        float ms;
        CU(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 0)
            t[r] = ms;
    }
    *kernel_ms = median(t, reps);
    for (int r = -1; r < reps; r++) { /* the same host traffic as a backend call */
        double t0 = now_s();
        memcpy(pin, x->data, xb);
        CU(cudaMemcpyAsync(dx, pin, xb, cudaMemcpyHostToDevice, st));
        DNN(cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cd, perf[0].algo, ws, ws_len, &zero, yd, dy));
        DNN(cudnnAddTensor(h, &one, bd, db, &one, yd, dy));
        CU(cudaMemcpyAsync(pin, dy, yb, cudaMemcpyDeviceToHost, st));
        CU(cudaStreamSynchronize(st));
        memcpy(y->data, pin, yb);
        if (r >= 0)
            t[r] = (now_s() - t0) * 1e3;
    }
    *total_ms = median(t, reps);
    rc = 0;
done:
    free(t);
    if (e0)
        cudaEventDestroy(e0);
    if (e1)
        cudaEventDestroy(e1);
    cudaFree(ws);
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dw);
    cudaFree(db);
    if (pin)
        cudaFreeHost(pin);
    if (cd)
        cudnnDestroyConvolutionDescriptor(cd);
    if (wd)
        cudnnDestroyFilterDescriptor(wd);
    if (xd)
        cudnnDestroyTensorDescriptor(xd);
    if (yd)
        cudnnDestroyTensorDescriptor(yd);
    if (bd)
        cudnnDestroyTensorDescriptor(bd);
    if (h)
        cudnnDestroy(h);
    if (st)
        cudaStreamDestroy(st);
    return rc;
}
#endif

static int bench_conv(const opts *o, mb_backend *be, const conv_shape *cs)
{
    char err[512];
    mb_graph *g = mb_graph_new(cs->name);
    mb_node in;
    memset(&in, 0, sizeof in);
    in.type = MB_OP_INPUT;
    snprintf(in.name, sizeof in.name, "x");
    in.a.shape_ndim = 4;
    in.a.shape[0] = 1;
    in.a.shape[1] = cs->c;
    in.a.shape[2] = cs->h;
    in.a.shape[3] = cs->w;
    int x = mb_graph_add(g, &in);
    mb_node cv;
    memset(&cv, 0, sizeof cv);
    cv.type = MB_OP_CONV;
    cv.n_inputs = 1;
    cv.inputs[0] = x;
    cv.n_params = 2;
    snprintf(cv.name, sizeof cv.name, "conv");
    cv.params[0] = mb_tensor_new4(cs->m, cs->c / cs->group, cs->k, cs->k);
    int64_t bdim = cs->m;
    cv.params[1] = mb_tensor_new(1, &bdim);
    mb_tensor_fill_uniform(cv.params[0], 1, -0.1f, 0.1f);
    mb_tensor_fill_uniform(cv.params[1], 2, -0.1f, 0.1f);
    cv.a.stride[0] = cv.a.stride[1] = cs->s;
    for (int i = 0; i < 4; i++)
        cv.a.pads[i] = cs->p;
    cv.a.group = cs->group;
    int ci = mb_graph_add(g, &cv);
    g->outputs[g->n_outputs++] = ci;
    if (mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed-bench-cuda: %s: %s\n", cs->name, err);
        mb_graph_free(g);
        return -1;
    }
    const mb_node *n = &g->nodes[ci];
    mb_tensor *xt = mb_tensor_new4(1, cs->c, cs->h, cs->w);
    mb_tensor_fill_uniform(xt, 3, -1, 1);
    mb_tensor *yt = mb_tensor_new(4, n->out_dims), *yd = mb_tensor_new(4, n->out_dims);
    mb_view v = mb_view_whole(xt);
    mb_region r = mb_node_full_region(g, ci);
    int reps = o->repeats * 3;
    double *t = (double *)calloc((size_t)reps, sizeof(double));
    int rc = mb_backend_compute(be, g, ci, &v, r, yt, err, sizeof err); /* warm-up: weights to the GPU */
    for (int i = 0; i < reps && !rc; i++) {
        double t0 = now_s();
        rc = mb_backend_compute(be, g, ci, &v, r, yt, err, sizeof err);
        t[i] = (now_s() - t0) * 1e3;
    }
    if (rc) {
        fprintf(stderr, "mecbed-bench-cuda: %s: %s\n", cs->name, err);
    } else {
        double ms = median(t, reps), gf = 2.0 * (double)n->macs / (ms * 1e-3) * 1e-9;
        double k_ms = NAN, c_ms = NAN, diff = NAN;
        char why[256] = "";
#ifndef MB_NO_CUDNN
        if (cudnn_conv(cs, reps, xt, n->params[0], n->params[1], yd, &k_ms, &c_ms, why, sizeof why) == 0)
            diff = mb_tensor_max_abs_diff(yt, yd);
#else
        snprintf(why, sizeof why, "built without cuDNN (no cudnn.h)");
#endif
        if (o->json) {
            if (why[0])
                json_row("{\"kind\":\"conv\",\"name\":\"%s\",\"ms\":%.4f,\"gflops\":%.1f,\"cudnn\":null,"
                         "\"cudnn_why\":\"%s\"}",
                         cs->name, ms, gf, why);
            else
                json_row("{\"kind\":\"conv\",\"name\":\"%s\",\"ms\":%.4f,\"gflops\":%.1f,\"cudnn_kernel_ms\":%.4f,"
                         "\"cudnn_with_transfers_ms\":%.4f,\"ratio_cudnn_over_ours\":%.3f,\"max_abs_diff\":%.3g}",
                         cs->name, ms, gf, k_ms, c_ms, c_ms / ms, diff);
        } else if (why[0]) {
            printf("conv %-32s %8.3f ms %8.1f GFLOP/s   cuDNN: n/a (%s)\n", cs->name, ms, gf, why);
        } else {
            printf("conv %-32s %8.3f ms %8.1f GFLOP/s   cuDNN %8.3f ms with transfers (kernel %7.3f ms)  "
                   "ratio cuDNN/ours %.2f  max|diff| %.2g\n",
                   cs->name, ms, gf, c_ms, k_ms, c_ms / ms, diff);
        }
    }
    free(t);
    mb_tensor_free(xt);
    mb_tensor_free(yt);
    mb_tensor_free(yd);
    mb_graph_free(g);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed-bench-cuda [--repeats N] [--models a,b,...|none] [--json]\n"
               "Per-model latency on the cuda backend and per-conv-shape time against cuDNN.\n"
               "Exits 77 (skipped) when there is no GPU.\n");
}

int main(int argc, char **argv)
{
    opts o;
    o.repeats = 5;
    o.json = 0;
    o.models = "alexnet,resnet18,resnet50,mobilenetv2,googlenet,vgg16";
    static const struct option lo[] = {{"repeats", required_argument, 0, 'r'},
                                       {"models", required_argument, 0, 'm'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.repeats = atoi(optarg);
            if (o.repeats < 1) {
                fprintf(stderr, "mecbed-bench-cuda: --repeats %s: expected a positive count\n", optarg);
                return 2;
            }
            break;
        case 'm': o.models = optarg; break;
        case 'j': o.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    mb_platform_init(argc, argv);
    mb_backend *be = mb_backend_cuda_new(1);
    if (!be) {
        printf("SKIP: no GPU: %s\n", mb_backend_cuda_why());
        return 77;
    }
    if (o.json)
        printf("{\"device\":\"%s\",\"results\":[", mb_cuda_device_name(be));
    else
        printf("device: %s\n", mb_cuda_device_name(be));
    int rc = 0;
    if (strcmp(o.models, "none")) {
        char *list = strdup(o.models), *save = NULL;
        for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save))
            rc |= bench_model(&o, be, m) != 0;
        free(list);
    }
    for (size_t i = 0; i < sizeof conv_shapes / sizeof conv_shapes[0]; i++)
        rc |= bench_conv(&o, be, &conv_shapes[i]) != 0;
    if (o.json)
        printf("\n]}\n");
    mb_backend_free(be);
    return rc;
}
