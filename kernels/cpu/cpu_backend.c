/* The fast CPU backend ("cpu"): checks a compute request against the graph,
 * then hands it to the kernel for the op's family. Hot ops (Conv, Gemm,
 * MatMul, pooling, elementwise, BatchNormalization, Concat) have kernels here;
 * rarely hot ones (ConvTranspose, Pad, Resize, Softmax) run the reference
 * backend's code, so both backends agree on their edge cases by
 * construction. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "mecbed/backend.h"

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

#define CPU_PARALLEL_MIN_NS 30000.0

void cpu_run(cpu_ctx *c, int n_tasks, cpu_task_fn fn, void *arg, double est_ns)
{
    if (c->n_threads > 1 && est_ns >= c->parallel_min_ns) {
        cpu_pool_run(c->pool, n_tasks, fn, arg);
        return;
    }
    for (int t = 0; t < n_tasks; t++)
        fn(arg, t, 0);
}

int cpu_view_covers(const mb_view *v, mb_region need, char *err, size_t errlen, const char *what)
{
    if (mb_region_empty(need))
        return 0;
    const mb_tensor *t = v->t;
    if (need.h0 < v->h_off || need.w0 < v->w_off || need.h1 > v->h_off + t->dims[2] ||
        need.w1 > v->w_off + t->dims[3]) {
        snprintf(err, errlen,
                 "%s: the input view holds rows [%lld,%lld) and columns [%lld,%lld) but rows [%lld,%lld) and "
                 "columns [%lld,%lld) are needed",
                 what, (long long)v->h_off, (long long)(v->h_off + t->dims[2]), (long long)v->w_off,
                 (long long)(v->w_off + t->dims[3]), (long long)need.h0, (long long)need.h1, (long long)need.w0,
                 (long long)need.w1);
        return -1;
    }
    return 0;
}

/* Ops whose kernels are the reference backend's. */
static int delegated(mb_op_type t)
{
    return t == MB_OP_CONV_TRANSPOSE || t == MB_OP_PAD || t == MB_OP_RESIZE || t == MB_OP_SOFTMAX;
}

static int cpu_supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    (void)g;
    const cpu_ctx *c = be->ctx;
    if (n->type == MB_OP_INPUT || n->type < 0 || n->type >= MB_OP_COUNT)
        return 0;
    if (delegated(n->type))
        return c->ref && c->ref->supports_op(c->ref, g, n);
    return 1;
}

/* Check the request against the graph and fill each view's full extent from
 * the producing node (callers may leave full_h/full_w zero for whole tensors). */
static int check_request(const mb_graph *g, int node, const mb_view *in, mb_region r, const mb_tensor *out,
                         mb_view *v, char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    char what[MB_NAME_LEN + 64];
    snprintf(what, sizeof what, "node %d '%s' (%s)", node, n->name, mb_op_name(n->type));
    mb_region full = mb_node_full_region(g, node);
    int four = n->out_ndim == 4;
    if (four) {
        if (r.h0 < 0 || r.w0 < 0 || r.h1 > full.h1 || r.w1 > full.w1 || r.h0 > r.h1 || r.w0 > r.w1) {
            snprintf(err, errlen, "%s: region rows [%lld,%lld) columns [%lld,%lld) is outside the %lldx%lld output",
                     what, (long long)r.h0, (long long)r.h1, (long long)r.w0, (long long)r.w1, (long long)full.h1,
                     (long long)full.w1);
            return -1;
        }
        if (!n->local && (r.h0 != 0 || r.w0 != 0 || r.h1 != full.h1 || r.w1 != full.w1)) {
            snprintf(err, errlen, "%s: not a spatially local op, only its whole output can be computed", what);
            return -1;
        }
    }
    if (!out || out->ndim != n->out_ndim) {
        snprintf(err, errlen, "%s: output tensor has rank %d, expected %d", what, out ? out->ndim : -1,
                 n->out_ndim);
        return -1;
    }
    for (int d = 0; d < n->out_ndim; d++) {
        int64_t want = n->out_dims[d];
        if (four && d == 2)
            want = r.h1 - r.h0;
        if (four && d == 3)
            want = r.w1 - r.w0;
        if (out->dims[d] != want) {
            snprintf(err, errlen, "%s: output dimension %d is %lld, expected %lld", what, d,
                     (long long)out->dims[d], (long long)want);
            return -1;
        }
    }
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        if (!in || !in[k].t || (!in[k].t->data && mb_tensor_numel(in[k].t) > 0)) {
            snprintf(err, errlen, "%s: input %d is missing", what, k);
            return -1;
        }
        v[k] = in[k];
        const mb_tensor *t = in[k].t;
        int ok = t->ndim == src->out_ndim;
        if (ok && t->ndim == 4) {
            ok = t->dims[0] == src->out_dims[0] && t->dims[1] == src->out_dims[1] && v[k].h_off >= 0 &&
                 v[k].w_off >= 0 && v[k].h_off + t->dims[2] <= src->out_dims[2] &&
                 v[k].w_off + t->dims[3] <= src->out_dims[3];
            if ((v[k].full_h && v[k].full_h != src->out_dims[2]) || (v[k].full_w && v[k].full_w != src->out_dims[3]))
                ok = 0;
            v[k].full_h = src->out_dims[2];
            v[k].full_w = src->out_dims[3];
        } else if (ok) {
            for (int d = 0; d < t->ndim; d++)
                ok = ok && t->dims[d] == src->out_dims[d];
            v[k].h_off = v[k].w_off = 0;
        }
        if (!ok) {
            snprintf(err, errlen, "%s: input %d does not match the shape of '%s'", what, k, src->name);
            return -1;
        }
        mb_region need = mb_node_input_region(g, node, k, four ? r : full);
        if (t->ndim == 4) {
            if (!n->local && (v[k].h_off || v[k].w_off || t->dims[2] != src->out_dims[2] ||
                              t->dims[3] != src->out_dims[3])) {
                snprintf(err, errlen, "%s: input %d must be the whole tensor", what, k);
                return -1;
            }
            char w2[sizeof what + 32];
            snprintf(w2, sizeof w2, "%s input %d", what, k);
            if (cpu_view_covers(&v[k], need, err, errlen, w2))
                return -1;
        }
    }
    return 0;
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
        return cpu_conv(c, g, node, v, r, out, err, errlen);
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
        return cpu_binary(c, g, node, v, r, out, err, errlen);
    case MB_OP_BATCHNORM:
        return cpu_batchnorm(c, g, node, v, r, out, err, errlen);
    case MB_OP_CONCAT:
        return cpu_concat(c, g, node, v, r, out, err, errlen);
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
        return copy_whole(v[0].t, out, n->name, err, errlen);
    case MB_OP_CONSTANT:
        return copy_whole(n->params[0], out, n->name, err, errlen);
    case MB_OP_CONV_TRANSPOSE:
    case MB_OP_PAD:
    case MB_OP_RESIZE:
    case MB_OP_SOFTMAX:
        if (!c->ref) {
            snprintf(err, errlen, "node '%s' (%s): the cpu backend runs this op with the reference kernels, which "
                     "are not linked in", n->name, mb_op_name(n->type));
            return -1;
        }
        return c->ref->compute(c->ref, g, node, v, r, out, err, errlen);
    case MB_OP_INPUT:
    default:
        snprintf(err, errlen, "node '%s': the cpu backend cannot compute a %s node", n->name, mb_op_name(n->type));
        return -1;
    }
}

static int cpu_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    cpu_ctx *c = be->ctx;
    if (!g || node < 0 || node >= g->n_nodes) {
        snprintf(err, errlen, "cpu backend: node %d does not exist", node);
        return -1;
    }
    const mb_node *n = &g->nodes[node];
    mb_view *v = NULL;
    if (n->n_inputs) {
        v = calloc((size_t)n->n_inputs, sizeof *v);
        if (!v) {
            snprintf(err, errlen, "cpu backend: out of memory");
            return -1;
        }
    }
    int rc = check_request(g, node, in, r, out, v, err, errlen);
    if (rc == 0) {
        if (n->out_ndim != 4)
            r = mb_node_full_region(g, node);
        pthread_mutex_lock(&c->lock);
        rc = dispatch(c, g, node, v, r, out, err, errlen);
        pthread_mutex_unlock(&c->lock);
    }
    free(v);
    return rc;
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
    c->pool = cpu_pool_new(n_threads);
    c->ref = mb_backend_ref_new();
    be->name = "cpu";
    be->supports_op = cpu_supports;
    be->compute = cpu_compute;
    be->free = cpu_free;
    be->ctx = c;
    be->n_threads = n_threads;
    if (!c->pool || !c->ref) {
        cpu_free(be);
        return NULL;
    }
    return be;
}
