/* Reference elementwise ops: unary activations, binary arithmetic with numpy
 * broadcasting, and inference BatchNormalization (ONNX semantics). */
#include <math.h>

#include "ref_impl.h"

float ref_unary_value(mb_op_type op, float alpha, float beta, float x)
{
    switch (op) {
    case MB_OP_RELU:
        return x > 0.0f ? x : (isnan(x) ? x : 0.0f);
    case MB_OP_CLIP: /* min(max(x, min), max) */
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
    case MB_OP_GELU:
        if (beta != 0.0f) /* tanh form; beta carries gelu_tanh for this function */
            return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        /* PyTorch's exported form, op for op: ((x * (erf(x / sqrt 2) + 1)) * 0.5) */
        return (x * (erff(x / 1.41421354f) + 1.0f)) * 0.5f;
    case MB_OP_ERF:
        return erff(x);
    case MB_OP_TANH:
        return tanhf(x);
    case MB_OP_EXP:
        return expf(x);
    case MB_OP_LOG:
        return logf(x);
    case MB_OP_SQRT:
        return sqrtf(x);
    case MB_OP_RECIPROCAL:
        return 1.0f / x;
    case MB_OP_ABS:
        return fabsf(x);
    case MB_OP_NEG:
        return -x;
    case MB_OP_FLOOR:
        return floorf(x);
    case MB_OP_CEIL:
        return ceilf(x);
    case MB_OP_NOT:
        return x == 0.0f ? 1.0f : 0.0f;
    case MB_OP_ELU:
        return x < 0.0f ? alpha * (expf(x) - 1.0f) : x;
    case MB_OP_SELU:
        return x <= 0.0f ? beta * (alpha * expf(x) - alpha) : beta * x;
    case MB_OP_SOFTPLUS:
        return logf(expf(x) + 1.0f);
    case MB_OP_SOFTSIGN:
        return x / (1.0f + fabsf(x));
    case MB_OP_SIN:
        return sinf(x);
    case MB_OP_COS:
        return cosf(x);
    case MB_OP_SIGN:
        return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x;
    case MB_OP_THRESHOLDED_RELU:
        return x > alpha ? x : 0.0f;
    case MB_OP_ISINF:
        return (isinf(x) && ((x > 0 && alpha != 0.0f) || (x < 0 && beta != 0.0f))) ? 1.0f : 0.0f;
    case MB_OP_TAN:
        return tanf(x);
    case MB_OP_ROUND:
        return nearbyintf(x); /* the default rounding mode: half to even */
    case MB_OP_IDENTITY:
    default:
        return x;
    }
}

int ref_unary(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_view *v = &q->v[0];
    float alpha = n->a.alpha, beta = n->type == MB_OP_GELU ? (float)n->a.gelu_tanh : n->a.beta;
    if (n->out_ndim != 4) {
        int64_t cnt = mb_tensor_numel(q->out);
        for (int64_t i = 0; i < cnt; i++)
            q->out->data[i] = ref_unary_value(n->type, alpha, beta, v->t->data[i]);
        return 0;
    }
    mb_region r = q->r;
    if (ref_view_covers(q, 0, r.h0, r.h1, r.w0, r.w1))
        return -1;
    int64_t N = n->out_dims[0], C = n->out_dims[1];
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = r.h0; y < r.h1; y++)
                for (int64_t x = r.w0; x < r.w1; x++)
                    *ref_out_at(q, b, c, y, x) = ref_unary_value(n->type, alpha, beta, *ref_at(v, b, c, y, x));
    return 0;
}

float ref_binary_value(mb_op_type op, float a, float b)
{
    switch (op) {
    case MB_OP_ADD:
        return a + b;
    case MB_OP_SUB:
        return a - b;
    case MB_OP_MUL:
        return a * b;
    case MB_OP_POW:
        return powf(a, b);
    case MB_OP_MIN:
        return isnan(a) || isnan(b) ? NAN : fminf(a, b);
    case MB_OP_MAX:
        return isnan(a) || isnan(b) ? NAN : fmaxf(a, b);
    case MB_OP_EQUAL:
        return a == b;
    case MB_OP_LESS:
        return a < b;
    case MB_OP_GREATER:
        return a > b;
    case MB_OP_LESS_EQUAL:
        return a <= b;
    case MB_OP_GREATER_EQUAL:
        return a >= b;
    case MB_OP_AND:
        return a != 0.0f && b != 0.0f;
    case MB_OP_OR:
        return a != 0.0f || b != 0.0f;
    case MB_OP_XOR:
        return (a != 0.0f) != (b != 0.0f);
    case MB_OP_MOD: { /* integer Mod (fmod = 0): the divisor's sign, as Python's %; MB_OP_MOD with
                         fmod = 1 is handled by the caller (ref_mod_value) */
        float r = fmodf(a, b);
        return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r;
    }
    case MB_OP_DIV:
    default:
        return a / b;
    }
}

/* One operand of a broadcasting op, addressed by output coordinates: element
 * at output index o is data[sum_d (o[d] - off[d]) * stride[d]]; stride 0
 * where the operand broadcasts (or lacks the axis). */
typedef struct operand {
    const float *data;
    int64_t stride[MB_MAX_DIMS];
    int64_t off[MB_MAX_DIMS];
} operand;

/* Describe operand t (a view of input k, or a parameter when k < 0) of full
 * dims fdims against an output of rank R whose element range is lo..hi, and
 * check that every element the range needs lies in t. */
static int operand_init(const ref_req *q, operand *op, int k, const mb_tensor *t, int frank, const int64_t *fdims,
                        int64_t voff_h, int64_t voff_w, int R, const int64_t *lo, const int64_t *hi)
{
    if (frank > R || t->ndim != frank)
        return ref_fail(q, "operand %d has rank %d, the output %d", k, t->ndim, R);
    op->data = t->data;
    int64_t stride = 1;
    for (int d = R - 1; d >= 0; d--) {
        int j = d - (R - frank);
        op->stride[d] = 0;
        op->off[d] = 0;
        if (j < 0)
            continue;
        if (fdims[j] == 1) {
            if (t->dims[j] != 1)
                return ref_fail(q, "operand %d: dimension %d is %lld, expected 1", k, j, (long long)t->dims[j]);
        } else {
            op->stride[d] = stride;
            op->off[d] = frank == 4 && j == 2 ? voff_h : frank == 4 && j == 3 ? voff_w : 0;
            if (lo[d] < hi[d] && (lo[d] - op->off[d] < 0 || hi[d] - op->off[d] > t->dims[j]))
                return ref_fail(q, "operand %d: indices [%lld,%lld) of dimension %d are needed but it holds "
                                   "[%lld,%lld)",
                                k, (long long)lo[d], (long long)hi[d], j, (long long)op->off[d],
                                (long long)(op->off[d] + t->dims[j]));
        }
        stride *= t->dims[j];
    }
    return 0;
}

static inline int64_t operand_index(const operand *op, int R, const int64_t *o)
{
    int64_t i = 0;
    for (int d = 0; d < R; d++)
        i += (o[d] - op->off[d]) * op->stride[d];
    return i;
}

/* Output index range: the region for 4-D outputs, everything otherwise. */
static void out_range(const ref_req *q, int64_t *lo, int64_t *hi)
{
    const mb_node *n = q->n;
    for (int d = 0; d < n->out_ndim; d++) {
        lo[d] = 0;
        hi[d] = n->out_dims[d];
    }
    if (n->out_ndim == 4) {
        lo[2] = q->r.h0;
        hi[2] = q->r.h1;
        lo[3] = q->r.w0;
        hi[3] = q->r.w1;
    }
}

/* Advance the odometer o over [lo,hi); 0 when it wraps around. */
static int next_index(int R, int64_t *o, const int64_t *lo, const int64_t *hi)
{
    for (int d = R - 1; d >= 0; d--) {
        if (++o[d] < hi[d])
            return 1;
        o[d] = lo[d];
    }
    return 0;
}

int ref_binary(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_graph *g = q->g;
    int R = n->out_ndim;
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], o[MB_MAX_DIMS];
    out_range(q, lo, hi);
    /* an empty tile reads nothing (its operands' views may be empty too) */
    for (int d = 0; d < R; d++)
        if (lo[d] >= hi[d])
            return 0;
    operand ops[2];
    for (int k = 0; k < 2; k++) {
        int64_t voff_h = 0, voff_w = 0;
        const mb_tensor *t;
        int frank;
        const int64_t *fdims;
        if (k < n->n_inputs) {
            const mb_node *src = &g->nodes[n->inputs[k]];
            t = q->v[k].t;
            frank = src->out_ndim;
            fdims = src->out_dims;
            voff_h = q->v[k].h_off;
            voff_w = q->v[k].w_off;
        } else if (n->n_params > 0) {
            t = n->params[0];
            frank = t->ndim;
            fdims = t->dims;
        } else {
            return ref_fail(q, "needs a second operand (input 1 or params[0])");
        }
        if (operand_init(q, &ops[k], k, t, frank, fdims, voff_h, voff_w, R, lo, hi))
            return -1;
    }
    for (int d = 0; d < R; d++)
        o[d] = lo[d];
    float *y = q->out->data;
    do {
        float a = ops[0].data[operand_index(&ops[0], R, o)];
        float b = ops[1].data[operand_index(&ops[1], R, o)];
        *y++ = ref_binary_value(n->type, a, b);
    } while (next_index(R, o, lo, hi));
    return 0;
}

int ref_batchnorm(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_view *v = &q->v[0];
    const float *scale = n->params[0]->data, *bias = n->params[1]->data, *mean = n->params[2]->data,
                *var = n->params[3]->data;
    float eps = n->a.epsilon;
    int64_t N = n->out_dims[0], C = n->out_dims[1];
    for (int k = 0; k < 4; k++)
        if (mb_tensor_numel(n->params[k]) != C)
            return ref_fail(q, "parameter %d has %lld elements, channels are %lld", k,
                            (long long)mb_tensor_numel(n->params[k]), (long long)C);
    if (n->out_ndim != 4) {
        int64_t inner = 1;
        for (int d = 2; d < n->out_ndim; d++)
            inner *= n->out_dims[d];
        for (int64_t b = 0; b < N; b++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < inner; i++) {
                    int64_t at = (b * C + c) * inner + i;
                    q->out->data[at] = (v->t->data[at] - mean[c]) / sqrtf(var[c] + eps) * scale[c] + bias[c];
                }
        return 0;
    }
    mb_region r = q->r;
    if (ref_view_covers(q, 0, r.h0, r.h1, r.w0, r.w1))
        return -1;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t y = r.h0; y < r.h1; y++)
                for (int64_t x = r.w0; x < r.w1; x++)
                    *ref_out_at(q, b, c, y, x) =
                        (*ref_at(v, b, c, y, x) - mean[c]) / sqrtf(var[c] + eps) * scale[c] + bias[c];
    return 0;
}
