/* The reference backend ("ref"): the oracle every other backend, every split
 * and the ONNX conformance runner are checked against. This file validates a
 * compute request against the graph (region inside the output, views of the
 * right shape, non-local ops whole) and dispatches to the op's kernel. The
 * kernels themselves check that every in-image input element they read lies
 * inside the view they were given, so a wrong input-region computation shows
 * up as an error, never as silently wrong numbers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/backend.h"
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

/* What this backend implements, attribute by attribute. Shapes were already
 * validated by mb_graph_infer. */
static int ref_supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    (void)be;
    (void)g;
    const mb_op_attrs *a = &n->a;
    switch (n->type) {
    case MB_OP_INPUT:
        return 0; /* produced on the device, never computed */
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
    default:
        return n->type >= 0 && n->type < MB_OP_COUNT;
    }
}

/* Check the request and build the views the kernels use (full extent filled
 * from the producer: callers may leave full_h/full_w zero for whole tensors). */
static int check_request(ref_req *q, const mb_view *in, mb_view *v)
{
    const mb_graph *g = q->g;
    const mb_node *n = q->n;
    mb_region full = mb_node_full_region(g, q->node);
    int four = n->out_ndim == 4;
    if (four) {
        mb_region r = q->r;
        if (r.h0 < 0 || r.w0 < 0 || r.h1 > full.h1 || r.w1 > full.w1 || r.h0 > r.h1 || r.w0 > r.w1)
            return ref_fail(q, "region rows [%lld,%lld) columns [%lld,%lld) is not inside the %lldx%lld output",
                            (long long)r.h0, (long long)r.h1, (long long)r.w0, (long long)r.w1,
                            (long long)full.h1, (long long)full.w1);
        if (!n->local && (r.h0 || r.w0 || r.h1 != full.h1 || r.w1 != full.w1))
            return ref_fail(q, "not a spatially local op: only its whole output can be computed");
    } else {
        q->r = full;
    }
    const mb_tensor *out = q->out;
    if (!out || out->ndim != n->out_ndim)
        return ref_fail(q, "output tensor has rank %d, expected %d", out ? out->ndim : -1, n->out_ndim);
    for (int d = 0; d < n->out_ndim; d++) {
        int64_t want = n->out_dims[d];
        if (four && d == 2)
            want = mb_region_rows(q->r);
        if (four && d == 3)
            want = mb_region_cols(q->r);
        if (out->dims[d] != want)
            return ref_fail(q, "output dimension %d is %lld, expected %lld", d, (long long)out->dims[d],
                            (long long)want);
    }
    if (mb_tensor_numel(out) > 0 && !out->data)
        return ref_fail(q, "output tensor has no data");
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        const mb_tensor *t = in ? in[k].t : NULL;
        if (!t || (!t->data && mb_tensor_numel(t) > 0))
            return ref_fail(q, "input %d is missing", k);
        v[k] = in[k];
        int ok = t->ndim == src->out_ndim;
        if (ok && t->ndim == 4) {
            ok = t->dims[0] == src->out_dims[0] && t->dims[1] == src->out_dims[1] && v[k].h_off >= 0 &&
                 v[k].w_off >= 0 && v[k].h_off + t->dims[2] <= src->out_dims[2] &&
                 v[k].w_off + t->dims[3] <= src->out_dims[3] &&
                 (!v[k].full_h || v[k].full_h == src->out_dims[2]) &&
                 (!v[k].full_w || v[k].full_w == src->out_dims[3]);
            v[k].full_h = src->out_dims[2];
            v[k].full_w = src->out_dims[3];
            if (ok && !n->local &&
                (v[k].h_off || v[k].w_off || t->dims[2] != src->out_dims[2] || t->dims[3] != src->out_dims[3]))
                return ref_fail(q, "input %d must be the whole tensor (not a spatially local op)", k);
        } else if (ok) {
            for (int d = 0; d < t->ndim; d++)
                ok = ok && t->dims[d] == src->out_dims[d];
            v[k].h_off = v[k].w_off = 0;
        }
        if (!ok)
            return ref_fail(q, "input %d (a view of rank %d) does not fit the output of '%s'", k, t->ndim,
                            src->name);
    }
    return 0;
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
        return ref_binary(q);
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
    case MB_OP_INPUT:
        return ref_fail(q, "a graph input is given, not computed");
    case MB_OP_COUNT:
    default:
        return ref_fail(q, "unknown op type %d", (int)q->n->type);
    }
}

static int ref_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!g || node < 0 || node >= g->n_nodes) {
        if (err && errlen)
            snprintf(err, errlen, "ref backend: node %d does not exist", node);
        return -1;
    }
    ref_req q = {g, node, &g->nodes[node], NULL, r, out, err, errlen};
    if (!ref_supports(be, g, q.n)) {
        if (q.n->type == MB_OP_INPUT)
            return ref_fail(&q, "a graph input is given, not computed");
        return ref_fail(&q, "not supported by the reference backend (an unresolved auto_pad or an unknown mode)");
    }
    mb_view *v = NULL;
    if (q.n->n_inputs > 0) {
        v = calloc((size_t)q.n->n_inputs, sizeof *v);
        if (!v)
            return ref_fail(&q, "out of memory");
    }
    int rc = check_request(&q, in, v);
    if (rc == 0) {
        q.v = v;
        rc = dispatch(&q);
    }
    free(v);
    return rc;
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
