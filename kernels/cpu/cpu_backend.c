/* The fast CPU backend ("cpu"): says which ops it implements and hands a
 * request (checked against the graph by mb_backend_compute) to the kernel
 * for the op's family. Hot ops (Conv, Gemm,
 * MatMul, pooling, elementwise, BatchNormalization, Concat, ConvTranspose,
 * Resize, Pad) have kernels here; rarely hot ones (Softmax; Resize and Pad
 * on other axes than H and W) run the reference
 * backend's code, so both backends agree on their edge cases by
 * construction. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

float *cpu_scratch(cpu_ctx *c, int thread, size_t n)
{
    if (thread < 0 || thread >= CPU_MAX_THREADS)
        return NULL;
    if (c->scratch_len[thread] < n) {
        free(c->scratch[thread]);
        /* 64-byte aligned: whole cache lines, aligned vector loads */
        size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
        if (posix_memalign((void **)&c->scratch[thread], 64, bytes)) {
            c->scratch[thread] = NULL;
            c->scratch_len[thread] = 0;
            return NULL;
        }
        c->scratch_len[thread] = n;
    }
    return c->scratch[thread];
}

float *cpu_shared(cpu_ctx *c, size_t n)
{
    if (c->shared_len < n) {
        free(c->shared);
        size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
        if (posix_memalign((void **)&c->shared, 64, bytes)) {
            c->shared = NULL;
            c->shared_len = 0;
            return NULL;
        }
        c->shared_len = n;
    }
    return c->shared;
}

#define CPU_PARALLEL_MIN_NS 30000.0
#define CPU_PARALLEL_MIN_AWAKE_NS 5000.0
/* Tasks a thread claims at once: enough for about CPU_CHUNK_NS of work,
 * since each claim is a trip of the counter's cache line between the cores
 * (a few hundred ns on this VM: GoogLeNet's 3x3 max pools, 480 planes of
 * ~150 ns each, ran 2x slower on 2 threads than on 1 with one plane per
 * claim), but at least CPU_CHUNKS_PER_THREAD chunks per thread so that the
 * last chunk leaves the other thread idle only briefly. */
#define CPU_CHUNK_NS 4000.0
#define CPU_CHUNKS_PER_THREAD 8

static int run_chunk(const cpu_ctx *c, int n_tasks, double est_ns)
{
    double per_task = est_ns / n_tasks;
    double want = per_task > 0 ? CPU_CHUNK_NS / per_task : n_tasks;
    int cap = n_tasks / (CPU_CHUNKS_PER_THREAD * c->n_threads);
    int chunk = want < (double)cap ? (int)(want + 0.999) : cap;
    return chunk > 1 ? chunk : 1;
}

void cpu_run(cpu_ctx *c, int n_tasks, cpu_task_fn fn, void *arg, double est_ns)
{
    if (n_tasks <= 0)
        return;
    if (c->n_threads > 1 &&
        (est_ns >= c->parallel_min_ns || (est_ns >= c->parallel_min_awake_ns && cpu_pool_awake(c->pool)))) {
        cpu_pool_run_chunked(c->pool, n_tasks, run_chunk(c, n_tasks, est_ns), fn, arg);
        return;
    }
    for (int t = 0; t < n_tasks; t++)
        fn(arg, t, 0);
}

/* What this backend implements: the ops with kernels here (dispatch below),
 * and the delegated ones as far as the reference backend implements them.
 * Conv and pooling take explicit pads only (mb_graph_infer resolves
 * auto_pad); an op kind added to the IR is refused until it has a kernel. */
static int cpu_supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    const cpu_ctx *c = be->ctx;
    switch (n->type) {
    case MB_OP_CONV:
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return n->a.auto_pad == MB_AUTO_PAD_NOTSET;
    case MB_OP_CONSTANT:
    case MB_OP_GEMM:
    case MB_OP_MATMUL:
    case MB_OP_GLOBALAVGPOOL:
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_IDENTITY:
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
    case MB_OP_BATCHNORM:
    case MB_OP_CONCAT:
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
        return 1;
    case MB_OP_CONV_TRANSPOSE:
    case MB_OP_PAD:
    case MB_OP_RESIZE:
    case MB_OP_SOFTMAX:
        return c->ref && c->ref->supports_op(c->ref, g, n);
    case MB_OP_LAYERNORM:
    case MB_OP_GELU:
    case MB_OP_TRANSPOSE:
        return c->ref != NULL; /* fast kernels, falling back to the reference for rare layouts */
    case MB_OP_INPUT:
    case MB_OP_COUNT:
        return 0;
    default: /* the other transformer operators run the reference kernels */
        return n->type > MB_OP_IDENTITY && c->ref && c->ref->supports_op(c->ref, g, n);
    }
}

static int copy_whole(const mb_tensor *src, mb_tensor *out, const char *name, char *err, size_t errlen)
{
    if (mb_tensor_numel(src) != mb_tensor_numel(out)) {
        snprintf(err, errlen, "'%s': %lld elements in, %lld out", name, (long long)mb_tensor_numel(src),
                 (long long)mb_tensor_numel(out));
        return -1;
    }
    if (mb_tensor_numel(out))
        memcpy(out->data, src->data, mb_tensor_bytes(out));
    return 0;
}

static int dispatch(cpu_ctx *c, const mb_graph *g, int node, const mb_view *v, mb_region r, mb_tensor *out,
                    char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    switch (n->type) {
    case MB_OP_CONV:
        return cpu_conv(c, g, node, NULL, v, r, out, err, errlen);
    case MB_OP_GEMM:
        return cpu_gemm(c, g, node, v, out, err, errlen);
    case MB_OP_MATMUL:
        return cpu_matmul(c, g, node, v, out, err, errlen);
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return cpu_pool2d(c, g, node, v, r, out, err, errlen);
    case MB_OP_GLOBALAVGPOOL:
        return cpu_global_avgpool(c, g, node, v, out, err, errlen);
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_IDENTITY:
        return cpu_unary(c, g, node, v, r, out, err, errlen);
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
        if (n->type == MB_OP_DIV && n->out_dtype != MB_DT_FLOAT) /* integer division: the reference's */
            return c->ref->compute(c->ref, g, node, v, r, out, err, errlen);
        return cpu_binary(c, g, node, v, r, out, err, errlen);
    case MB_OP_BATCHNORM:
        return cpu_batchnorm(c, g, node, NULL, v, r, out, err, errlen);
    case MB_OP_CONCAT:
        return cpu_concat(c, g, node, v, r, out, err, errlen);
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
        return copy_whole(v[0].t, out, n->name, err, errlen);
    case MB_OP_CONSTANT:
        return copy_whole(n->params[0], out, n->name, err, errlen);
    case MB_OP_LAYERNORM:
        return cpu_layernorm(c, g, node, v, out, err, errlen);
    case MB_OP_SOFTMAX:
        return cpu_softmax(c, g, node, v, out, err, errlen);
    case MB_OP_GELU:
        return cpu_gelu(c, g, node, v, r, out, err, errlen);
    case MB_OP_TRANSPOSE:
        return cpu_transpose(c, g, node, v, out, err, errlen);
    case MB_OP_WHERE: /* the KV-cache update of generation; regions of 4-D outputs: the reference */
        if (n->out_ndim != 4)
            return cpu_where(c, g, node, v, out, err, errlen);
        return c->ref->compute(c->ref, g, node, v, r, out, err, errlen);
    case MB_OP_CONV_TRANSPOSE:
        return cpu_conv_transpose(c, g, node, v, r, out, err, errlen);
    case MB_OP_RESIZE:
        if (cpu_resize_fast(g, node))
            return cpu_resize(c, g, node, v, r, out, err, errlen);
        /* other ranks and axes run the reference kernel */
        __attribute__((fallthrough));
    case MB_OP_PAD:
        if (n->type == MB_OP_PAD && cpu_pad_fast(g, node))
            return cpu_pad(c, g, node, v, r, out, err, errlen);
        __attribute__((fallthrough));
    default: /* the rarely hot ops, and the transformer operators without a kernel here */
        if (n->type == MB_OP_INPUT || n->type >= MB_OP_COUNT) {
            snprintf(err, errlen, "node '%s': the cpu backend cannot compute a %s node", n->name, mb_op_name(n->type));
            return -1;
        }
        if (!c->ref) {
            snprintf(err, errlen, "node '%s' (%s): the cpu backend runs this op with the reference kernels, which "
                     "are not linked in", n->name, mb_op_name(n->type));
            return -1;
        }
        return c->ref->compute(c->ref, g, node, v, r, out, err, errlen);
    }
}

/* The request was checked by mb_backend_compute (kernels/backend_compute.c). */
static int cpu_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    cpu_ctx *c = be->ctx;
    pthread_mutex_lock(&c->lock);
    int rc = dispatch(c, g, node, in, r, out, err, errlen);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Conv + residual Add + activation in one pass (exec.c asks,
 * mb_exec_opts.fuse): each is applied to a task's part of the output right
 * after the conv wrote it. The residual must be a 4-D float tensor. A
 * BatchNormalization + activation chain runs the same way, per row. */
static int cpu_compute_fused(mb_backend *be, const mb_graph *g, int node, const mb_fusion *f, const mb_view *in,
                             mb_region r, mb_tensor *out, char *err, size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    int is_bn = nd->type == MB_OP_BATCHNORM && f->add < 0 && f->act >= 0;
    if ((nd->type != MB_OP_CONV && !is_bn) || nd->out_ndim != 4 || nd->out_dtype != MB_DT_FLOAT)
        return 0;
    cpu_post post = {NULL, NULL, 0};
    if (f->act >= 0) {
        const mb_node *a = &g->nodes[f->act];
        switch (a->type) {
        case MB_OP_RELU:
        case MB_OP_CLIP:
        case MB_OP_LEAKYRELU:
        case MB_OP_HARDSIGMOID:
        case MB_OP_HARDSWISH:
        case MB_OP_SIGMOID:
            post.act = a;
            break;
        default:
            return 0;
        }
    }
    if (f->add >= 0) {
        if (g->nodes[f->add].type != MB_OP_ADD || g->nodes[f->add].out_dtype != MB_DT_FLOAT || !f->res.t ||
            f->res.t->ndim != 4)
            return 0;
        post.res = &f->res;
        post.res_first = f->res_first;
    }
    cpu_ctx *c = be->ctx;
    pthread_mutex_lock(&c->lock);
    int rc = is_bn ? cpu_batchnorm(c, g, node, post.act, in, r, out, err, errlen)
                   : cpu_conv(c, g, node, &post, in, r, out, err, errlen);
    pthread_mutex_unlock(&c->lock);
    return rc ? -1 : 1;
}

static void cpu_free(mb_backend *be)
{
    if (!be)
        return;
    cpu_ctx *c = be->ctx;
    if (c) {
        cpu_pool_free(c->pool);
        if (c->ref)
            c->ref->free(c->ref);
        for (int i = 0; i < CPU_MAX_THREADS; i++)
            free(c->scratch[i]);
        free(c->shared);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    free(be);
}

mb_backend *mb_backend_cpu_new(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    if (n_threads > CPU_MAX_THREADS)
        n_threads = CPU_MAX_THREADS;
    mb_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    /* Our workers call OpenBLAS concurrently: it must not start threads of
     * its own (mb_platform_init does this too; a program may have skipped it). */
    openblas_set_num_threads(1);
    c->n_threads = n_threads;
    c->parallel_min_ns = CPU_PARALLEL_MIN_NS;
    const char *pm = getenv("MECBED_CPU_PARALLEL_MIN_NS");
    if (pm && *pm) {
        char *end;
        double v = strtod(pm, &end);
        if (*end == 0 && v >= 0)
            c->parallel_min_ns = v;
    }
    c->parallel_min_awake_ns = CPU_PARALLEL_MIN_AWAKE_NS;
    pm = getenv("MECBED_CPU_PARALLEL_MIN_AWAKE_NS");
    if (pm && *pm) {
        char *end;
        double v = strtod(pm, &end);
        if (*end == 0 && v >= 0)
            c->parallel_min_awake_ns = v;
    }
    if (c->parallel_min_awake_ns > c->parallel_min_ns)
        c->parallel_min_awake_ns = c->parallel_min_ns; /* never above the other (tests set 0) */
    c->pool = cpu_pool_new(n_threads);
    c->ref = mb_backend_ref_new();
    be->name = "cpu";
    be->supports_op = cpu_supports;
    be->compute = cpu_compute;
    be->compute_fused = cpu_compute_fused;
    be->free = cpu_free;
    be->ctx = c;
    be->n_threads = n_threads;
    if (!c->pool || !c->ref) {
        cpu_free(be);
        return NULL;
    }
    return be;
}
