/* Private to the reference backend (kernels/ref): one checked request per
 * compute call, and the kernel for each op family.
 *
 * Every kernel here is written to be obviously right, not fast: direct loops,
 * one output element at a time (or one output plane accumulated in a fixed
 * tap order), fp32 accumulation in an order that depends only on the output
 * element's position in the full tensor. That last point is what makes a tile
 * computed from a sub-tensor bit-identical to the same elements of the whole
 * output: the tile test (tests/test_tiles.c) relies on it. */
#ifndef MECBED_REF_IMPL_H
#define MECBED_REF_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "../backend_impl.h"

/* A validated compute request. v[k] views input k with full_h/full_w filled
 * from the producing node; r is the output region (the full output for
 * tensors that are not 4-D). */
typedef struct ref_req {
    const mb_graph *g;
    int node;
    const mb_node *n;
    const mb_view *v;
    mb_region r;
    mb_tensor *out;
    char *err;
    size_t errlen;
} ref_req;

/* Writes "node I 'name' (Op): <message>" into the request's err; returns -1. */
int ref_fail(const ref_req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Check that view k of a 4-D input holds rows [h0,h1) and columns [w0,w1)
 * (full-tensor coordinates; an empty range needs nothing). -1 with a message
 * naming what is missing. */
int ref_view_covers(const ref_req *q, int k, int64_t h0, int64_t h1, int64_t w0, int64_t w1);

/* Element (n, c, y, x) of a 4-D view, y and x in the full tensor's frame.
 * The caller has checked coverage. */
static inline const float *ref_at(const mb_view *v, int64_t n, int64_t c, int64_t y, int64_t x)
{
    const mb_tensor *t = v->t;
    return t->data + ((n * t->dims[1] + c) * t->dims[2] + (y - v->h_off)) * t->dims[3] + (x - v->w_off);
}

/* Element (n, c, y, x) of the output tile, y and x in the full frame. */
static inline float *ref_out_at(const ref_req *q, int64_t n, int64_t c, int64_t y, int64_t x)
{
    const mb_tensor *t = q->out;
    return t->data + ((n * t->dims[1] + c) * t->dims[2] + (y - q->r.h0)) * t->dims[3] + (x - q->r.w0);
}

/* Per-op kernels (ref_conv.c, ref_pool.c, ref_eltwise.c, ref_shape.c, ref_gemm.c). */
int ref_conv(const ref_req *q);
int ref_conv_transpose(const ref_req *q);
int ref_pool(const ref_req *q); /* MaxPool, AveragePool */
int ref_global_avgpool(const ref_req *q);
int ref_unary(const ref_req *q); /* Relu, Clip, Sigmoid, HardSigmoid, HardSwish, LeakyRelu, Identity */
int ref_binary(const ref_req *q); /* Add, Sub, Mul, Div */
int ref_batchnorm(const ref_req *q);
int ref_concat(const ref_req *q);
int ref_softmax(const ref_req *q);
int ref_copy_whole(const ref_req *q); /* Flatten, Reshape, Constant */
int ref_pad(const ref_req *q);
int ref_resize(const ref_req *q);
int ref_gemm(const ref_req *q);
int ref_matmul(const ref_req *q);

/* Transformer operators (ref_tensor.c), whole tensors. */
int ref_transpose(const ref_req *q);
int ref_layernorm(const ref_req *q);
int ref_instancenorm(const ref_req *q);
int ref_logsoftmax(const ref_req *q);
int ref_where(const ref_req *q);
int ref_expand(const ref_req *q);
int ref_tile(const ref_req *q);
int ref_slice(const ref_req *q);
int ref_gather(const ref_req *q);
int ref_reduce(const ref_req *q);
int ref_cast(const ref_req *q);
int ref_argmax(const ref_req *q); /* ArgMax, ArgMin */
int ref_hardmax(const ref_req *q);
int ref_cumsum(const ref_req *q);
int ref_trilu(const ref_req *q);
int ref_gather_elements(const ref_req *q);
int ref_nllloss(const ref_req *q);

/* Scalar definitions shared with tests (ONNX semantics). */
float ref_unary_value(mb_op_type op, float alpha, float beta, float x);
float ref_binary_value(mb_op_type op, float a, float b);

#endif
