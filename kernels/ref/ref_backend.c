/* The reference backend ("ref"): the oracle every other backend, every split
 * and the ONNX conformance runner are checked against. This file says which
 * ops and attributes it implements and dispatches a request, already checked
 * against the graph by mb_backend_compute(), to the op's kernel. The
 * kernels themselves check that every in-image input element they read lies
 * inside the view they were given, so a wrong input-region computation shows
 * up as an error, never as silently wrong numbers. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend_impl.h"
#include "ref_impl.h"

int ref_fail(const ref_req *q, const char *fmt, ...)
{
    if (q->err && q->errlen) {
        int k = snprintf(q->err, q->errlen, "node %d '%s' (%s): ", q->node, q->n->name, mb_op_name(q->n->type));
        if (k >= 0 && (size_t)k < q->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(q->err + k, q->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

int ref_view_covers(const ref_req *q, int k, int64_t h0, int64_t h1, int64_t w0, int64_t w1)
{
    if (h0 >= h1 || w0 >= w1)
        return 0;
    const mb_view *v = &q->v[k];
    int64_t vh1 = v->h_off + v->t->dims[2], vw1 = v->w_off + v->t->dims[3];
    if (h0 < v->h_off || h1 > vh1 || w0 < v->w_off || w1 > vw1)
        return ref_fail(q,
                        "input %d: rows [%lld,%lld) and columns [%lld,%lld) are needed but the view holds rows "
                        "[%lld,%lld) and columns [%lld,%lld)",
                        k, (long long)h0, (long long)h1, (long long)w0, (long long)w1, (long long)v->h_off,
                        (long long)vh1, (long long)v->w_off, (long long)vw1);
    return 0;
}

/* What this backend implements, op by op and attribute by attribute (an op
 * kind added to the IR is refused until it has a kernel here). Shapes were
 * already validated by mb_graph_infer. */
static int ref_supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    (void)be;
    (void)g;
    const mb_op_attrs *a = &n->a;
    switch (n->type) {
    case MB_OP_CONV:
    case MB_OP_CONV_TRANSPOSE:
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return a->auto_pad == MB_AUTO_PAD_NOTSET; /* mb_graph_infer resolves it into pads */
    case MB_OP_PAD:
        return a->pad_mode == MB_PAD_CONSTANT || a->pad_mode == MB_PAD_REFLECT || a->pad_mode == MB_PAD_EDGE;
    case MB_OP_RESIZE:
        return (a->resize_mode == MB_RESIZE_NEAREST || a->resize_mode == MB_RESIZE_LINEAR) &&
               a->coord_mode >= MB_COORD_HALF_PIXEL && a->coord_mode <= MB_COORD_TF_HALF_PIXEL_FOR_NN &&
               a->nearest_mode >= MB_NEAREST_ROUND_PREFER_FLOOR && a->nearest_mode <= MB_NEAREST_CEIL;
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
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
    case MB_OP_CONCAT:
    case MB_OP_BATCHNORM:
    case MB_OP_SOFTMAX:
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
    case MB_OP_IDENTITY:
        return 1;
    case MB_OP_GELU: case MB_OP_ERF: case MB_OP_TANH: case MB_OP_EXP: case MB_OP_LOG: case MB_OP_SQRT:
    case MB_OP_RECIPROCAL: case MB_OP_ABS: case MB_OP_NEG: case MB_OP_FLOOR: case MB_OP_CEIL: case MB_OP_NOT:
    case MB_OP_ELU: case MB_OP_SELU: case MB_OP_SOFTPLUS: case MB_OP_SOFTSIGN: case MB_OP_SIN: case MB_OP_COS:
    case MB_OP_SIGN:
    case MB_OP_POW: case MB_OP_MIN: case MB_OP_MAX: case MB_OP_EQUAL: case MB_OP_LESS: case MB_OP_GREATER:
    case MB_OP_LESS_EQUAL: case MB_OP_GREATER_EQUAL: case MB_OP_AND: case MB_OP_OR: case MB_OP_XOR:
    case MB_OP_TRANSPOSE: case MB_OP_LAYERNORM: case MB_OP_WHERE: case MB_OP_LOGSOFTMAX:
    case MB_OP_REDUCEMEAN: case MB_OP_REDUCESUM: case MB_OP_REDUCEMAX: case MB_OP_REDUCEMIN:
    case MB_OP_REDUCEPROD: case MB_OP_REDUCESUMSQUARE: case MB_OP_REDUCEL1: case MB_OP_REDUCEL2:
    case MB_OP_REDUCELOGSUM: case MB_OP_REDUCELOGSUMEXP:
    case MB_OP_SLICE: case MB_OP_GATHER: case MB_OP_EXPAND: case MB_OP_TILE: case MB_OP_CAST:
    case MB_OP_INSTANCENORM:
    case MB_OP_ARGMAX: case MB_OP_ARGMIN: case MB_OP_TRILU: case MB_OP_GATHER_ELEMENTS: case MB_OP_CUMSUM:
    case MB_OP_HARDMAX: case MB_OP_THRESHOLDED_RELU: case MB_OP_ISINF: case MB_OP_TAN:
    case MB_OP_ROUND: case MB_OP_NLLLOSS:
        return 1;
    case MB_OP_MOD:
        return !n->a.fmod; /* the importer refuses fmod = 1 (C's fmod of floats) */
    case MB_OP_INPUT: /* produced on the device, never computed */
    case MB_OP_COUNT:
    default:
        return 0;
    }
}

/* The transformer operators (ref_tensor.c, and the elementwise families). */
static int dispatch_tensor_ops(const ref_req *q)
{
    mb_op_type t = q->n->type;
    if (t >= MB_OP_GELU && t <= MB_OP_SIGN)
        return ref_unary(q);
    if (t >= MB_OP_POW && t <= MB_OP_XOR)
        return ref_binary(q);
    if (t >= MB_OP_REDUCEMEAN && t <= MB_OP_REDUCELOGSUMEXP)
        return ref_reduce(q);
    switch (t) {
    case MB_OP_TRANSPOSE: return ref_transpose(q);
    case MB_OP_LAYERNORM: return ref_layernorm(q);
    case MB_OP_WHERE: return ref_where(q);
    case MB_OP_LOGSOFTMAX: return ref_logsoftmax(q);
    case MB_OP_SLICE: return ref_slice(q);
    case MB_OP_GATHER: return ref_gather(q);
    case MB_OP_EXPAND: return ref_expand(q);
    case MB_OP_TILE: return ref_tile(q);
    case MB_OP_CAST: return ref_cast(q);
    case MB_OP_INSTANCENORM: return ref_instancenorm(q);
    case MB_OP_ARGMAX: case MB_OP_ARGMIN: return ref_argmax(q);
    case MB_OP_HARDMAX: return ref_hardmax(q);
    case MB_OP_CUMSUM: return ref_cumsum(q);
    case MB_OP_TRILU: return ref_trilu(q);
    case MB_OP_GATHER_ELEMENTS: return ref_gather_elements(q);
    case MB_OP_MOD: return ref_binary(q);
    case MB_OP_THRESHOLDED_RELU: case MB_OP_ISINF: case MB_OP_TAN: case MB_OP_ROUND: return ref_unary(q);
    case MB_OP_NLLLOSS: return ref_nllloss(q);
    default: return ref_fail(q, "unknown op type %d", (int)t);
    }
}

static int dispatch(const ref_req *q)
{
    switch (q->n->type) {
    case MB_OP_CONV:
        return ref_conv(q);
    case MB_OP_CONV_TRANSPOSE:
        return ref_conv_transpose(q);
    case MB_OP_GEMM:
        return ref_gemm(q);
    case MB_OP_MATMUL:
        return ref_matmul(q);
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return ref_pool(q);
    case MB_OP_GLOBALAVGPOOL:
        return ref_global_avgpool(q);
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_IDENTITY:
        return ref_unary(q);
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
        if (ref_binary(q))
            return -1;
        if (q->n->type == MB_OP_DIV && q->n->out_dtype != MB_DT_FLOAT) {
            /* integer division truncates; exact for |a|, |b| <= 2^24 (mb_dtype) */
            int64_t cnt = mb_tensor_numel(q->out);
            for (int64_t i = 0; i < cnt; i++)
                q->out->data[i] = truncf(q->out->data[i]);
        }
        return 0;
    case MB_OP_CONCAT:
        return ref_concat(q);
    case MB_OP_BATCHNORM:
        return ref_batchnorm(q);
    case MB_OP_SOFTMAX:
        return ref_softmax(q);
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
    case MB_OP_CONSTANT:
        return ref_copy_whole(q);
    case MB_OP_PAD:
        return ref_pad(q);
    case MB_OP_RESIZE:
        return ref_resize(q);
    default:
        return dispatch_tensor_ops(q);
    case MB_OP_INPUT:
        return ref_fail(q, "a graph input is given, not computed");
    case MB_OP_COUNT:
        return ref_fail(q, "unknown op type %d", (int)q->n->type);
    }
}

/* The request was checked by mb_backend_compute (kernels/backend_compute.c):
 * the views have the producers' shapes and cover what r needs. The kernels
 * still check every in-image element they read (ref_view_covers). */
static int ref_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    (void)be;
    ref_req q = {g, node, &g->nodes[node], in, r, out, err, errlen};
    return dispatch(&q);
}

static void ref_free(mb_backend *be)
{
    free(be);
}

mb_backend *mb_backend_ref_new(void)
{
    mb_backend *be = calloc(1, sizeof *be);
    if (!be)
        return NULL;
    be->name = "ref";
    be->supports_op = ref_supports;
    be->compute = ref_compute;
    be->free = ref_free;
    be->ctx = NULL;
    be->n_threads = 1;
    return be;
}
