/* Elementwise ops on the GPU: activations, Add/Sub/Mul/Div with numpy
 * broadcasting, inference BatchNormalization (ONNX semantics, the same
 * scalar definitions as kernels/ref/ref_eltwise.c). One thread per output
 * element (grid-stride); for 4-D local ops the output is the region tile and
 * inputs are addressed in the full frame through their views. */
#include <math.h>
#include <string.h>

#include "common.cuh"

__host__ __device__ static inline float unary_value(int op, float alpha, float beta, float x)
{
    switch (op) {
    case MB_OP_RELU:
        return x > 0.0f ? x : (isnan(x) ? x : 0.0f);
    case MB_OP_CLIP:
        if (x < alpha)
            x = alpha;
        if (x > beta)
            x = beta;
        return x;
    case MB_OP_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case MB_OP_HARDSIGMOID:
        return fmaxf(0.0f, fminf(1.0f, alpha * x + beta));
    case MB_OP_HARDSWISH:
        return x * fmaxf(0.0f, fminf(1.0f, x * (1.0f / 6.0f) + 0.5f));
    case MB_OP_LEAKYRELU:
        return x < 0.0f ? alpha * x : x;
    default:
        return x;
    }
}

typedef struct k_unary_flat {
    int op;
    float alpha, beta;
    const float *x;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        y[i] = unary_value(op, alpha, beta, x[i]);
    }
} k_unary_flat;

/* Output tile (N, C, rows, cols) at (h0, w0) of the full frame. */
typedef struct k_unary4 {
    int op;
    float alpha, beta;
    mbc_v4 v;
    float *y;
    int64_t C, rows, cols, h0, w0;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t xx = i % cols, t = i / cols;
        int64_t yy = t % rows;
        t /= rows;
        int64_t c = t % C, b = t / C;
        y[i] = unary_value(op, alpha, beta, *mbc_at(v, b, c, yy + h0, xx + w0));
    }
} k_unary4;

int mbc_unary(const mbc_req *q)
{
    const mb_node *n = q->n;
    int64_t cnt = mb_tensor_numel(q->out);
    if (n->out_ndim != 4) {
        k_unary_flat f = {(int)n->type, n->a.alpha, n->a.beta, q->din[0], q->dout};
        return mbc_launch(q, f, cnt);
    }
    k_unary4 f = {(int)n->type, n->a.alpha,          n->a.beta,           mbc_view4(q, 0), q->dout,
                  n->out_dims[1], mb_region_rows(q->r), mb_region_cols(q->r), q->r.h0,       q->r.w0};
    return mbc_launch(q, f, cnt);
}

/* ---- binary with broadcasting ------------------------------------------ */

/* Output element at full-frame index o reads operand data[sum_d (o[d] - off[d]) * stride[d]]. */
typedef struct operand {
    const float *data;
    int64_t stride[MB_MAX_DIMS];
    int64_t off[MB_MAX_DIMS];
} operand;

typedef struct box {
    int R;
    int64_t lo[MB_MAX_DIMS], ext[MB_MAX_DIMS];
} box;

__host__ __device__ static inline int64_t operand_index(const operand &op, const box &b, int64_t i)
{
    int64_t at = 0;
    for (int d = b.R - 1; d >= 0; d--) {
        int64_t o = b.lo[d] + i % b.ext[d];
        i /= b.ext[d];
        at += (o - op.off[d]) * op.stride[d];
    }
    return at;
}

__host__ __device__ static inline float binary_value(int op, float a, float b)
{
    switch (op) {
    case MB_OP_ADD:
        return a + b;
    case MB_OP_SUB:
        return a - b;
    case MB_OP_MUL:
        return a * b;
    default:
        return a / b;
    }
}

typedef struct k_binary {
    int op;
    operand a, b;
    box bx;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        y[i] = binary_value(op, a.data[operand_index(a, bx, i)], b.data[operand_index(b, bx, i)]);
    }
} k_binary;

/* Describe operand t (full dims fdims, rank frank; a view at voff_h/voff_w
 * for 4-D inputs) against the output box, checking that every element the
 * box needs is held. */
static int operand_init(const mbc_req *q, operand *op, int k, const mb_tensor *t, const float *dev, int frank,
                        const int64_t *fdims, int64_t voff_h, int64_t voff_w, const box *bx)
{
    int R = bx->R;
    if (frank > R || t->ndim != frank)
        return mbc_fail(q, "operand %d has rank %d, the output %d", k, t->ndim, R);
    op->data = dev;
    int64_t stride = 1;
    for (int d = R - 1; d >= 0; d--) {
        int j = d - (R - frank);
        op->stride[d] = 0;
        op->off[d] = 0;
        if (j < 0)
            continue;
        if (fdims[j] == 1) {
            if (t->dims[j] != 1)
                return mbc_fail(q, "operand %d: dimension %d is %lld, expected 1", k, j, (long long)t->dims[j]);
        } else {
            op->stride[d] = stride;
            op->off[d] = frank == 4 && j == 2 ? voff_h : frank == 4 && j == 3 ? voff_w : 0;
            int64_t lo = bx->lo[d], hi = bx->lo[d] + bx->ext[d];
            if (lo - op->off[d] < 0 || hi - op->off[d] > t->dims[j])
                return mbc_fail(q, "operand %d: indices [%lld,%lld) of dimension %d are needed but it holds [%lld,%lld)",
                                k, (long long)lo, (long long)hi, j, (long long)op->off[d],
                                (long long)(op->off[d] + t->dims[j]));
        }
        stride *= t->dims[j];
    }
    return 0;
}

int mbc_binary(const mbc_req *q)
{
    const mb_node *n = q->n;
    box bx;
    memset(&bx, 0, sizeof bx);
    bx.R = n->out_ndim;
    for (int d = 0; d < bx.R; d++) {
        bx.lo[d] = 0;
        bx.ext[d] = n->out_dims[d];
    }
    if (bx.R == 4) {
        bx.lo[2] = q->r.h0;
        bx.ext[2] = mb_region_rows(q->r);
        bx.lo[3] = q->r.w0;
        bx.ext[3] = mb_region_cols(q->r);
    }
    operand ops[2];
    for (int k = 0; k < 2; k++) {
        if (k < n->n_inputs) {
            const mb_node *src = &q->g->nodes[n->inputs[k]];
            if (operand_init(q, &ops[k], k, q->v[k].t, q->din[k], src->out_ndim, src->out_dims, q->v[k].h_off,
                             q->v[k].w_off, &bx))
                return -1;
        } else if (n->n_params > 0) {
            const mb_tensor *t = n->params[0];
            const float *dev = mbc_param(q, t);
            if (!dev || operand_init(q, &ops[k], k, t, dev, t->ndim, t->dims, 0, 0, &bx))
                return -1;
        } else {
            return mbc_fail(q, "needs a second operand (input 1 or params[0])");
        }
    }
    k_binary f = {(int)n->type, ops[0], ops[1], bx, q->dout};
    return mbc_launch(q, f, mb_tensor_numel(q->out));
}

/* ---- batch normalization ------------------------------------------------ */

typedef struct bn_params {
    const float *scale, *bias, *mean, *var;
    float eps;
} bn_params;

__host__ __device__ static inline float bn_value(const bn_params &p, int64_t c, float x)
{
    return (x - p.mean[c]) / sqrtf(p.var[c] + p.eps) * p.scale[c] + p.bias[c];
}

typedef struct k_bn_flat {
    bn_params p;
    const float *x;
    float *y;
    int64_t C, inner;
    __host__ __device__ void operator()(int64_t i) const
    {
        y[i] = bn_value(p, (i / inner) % C, x[i]);
    }
} k_bn_flat;

typedef struct k_bn4 {
    bn_params p;
    mbc_v4 v;
    float *y;
    int64_t C, rows, cols, h0, w0;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t xx = i % cols, t = i / cols;
        int64_t yy = t % rows;
        t /= rows;
        int64_t c = t % C, b = t / C;
        y[i] = bn_value(p, c, *mbc_at(v, b, c, yy + h0, xx + w0));
    }
} k_bn4;

int mbc_batchnorm(const mbc_req *q)
{
    const mb_node *n = q->n;
    int64_t C = n->out_dims[1];
    const float *d[4];
    for (int k = 0; k < 4; k++) {
        if (mb_tensor_numel(n->params[k]) != C)
            return mbc_fail(q, "parameter %d has %lld elements, channels are %lld", k,
                            (long long)mb_tensor_numel(n->params[k]), (long long)C);
        if (!(d[k] = mbc_param(q, n->params[k])))
            return -1;
    }
    bn_params p = {d[0], d[1], d[2], d[3], n->a.epsilon};
    int64_t cnt = mb_tensor_numel(q->out);
    if (n->out_ndim != 4) {
        int64_t inner = 1;
        for (int k = 2; k < n->out_ndim; k++)
            inner *= n->out_dims[k];
        k_bn_flat f = {p, q->din[0], q->dout, C, inner};
        return mbc_launch(q, f, cnt);
    }
    k_bn4 f = {p, mbc_view4(q, 0), q->dout, C, mb_region_rows(q->r), mb_region_cols(q->r), q->r.h0, q->r.w0};
    return mbc_launch(q, f, cnt);
}
