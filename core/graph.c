/* The DAG IR: construction, validation and shape inference. */
#include "mecbed/graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
    [MB_OP_INPUT] = "Input",
    [MB_OP_CONSTANT] = "Constant",
    [MB_OP_CONV] = "Conv",
    [MB_OP_CONV_TRANSPOSE] = "ConvTranspose",
    [MB_OP_GEMM] = "Gemm",
    [MB_OP_MATMUL] = "MatMul",
    [MB_OP_MAXPOOL] = "MaxPool",
    [MB_OP_AVGPOOL] = "AveragePool",
    [MB_OP_GLOBALAVGPOOL] = "GlobalAveragePool",
    [MB_OP_RELU] = "Relu",
    [MB_OP_CLIP] = "Clip",
    [MB_OP_SIGMOID] = "Sigmoid",
    [MB_OP_HARDSIGMOID] = "HardSigmoid",
    [MB_OP_HARDSWISH] = "HardSwish",
    [MB_OP_LEAKYRELU] = "LeakyRelu",
    [MB_OP_ADD] = "Add",
    [MB_OP_SUB] = "Sub",
    [MB_OP_MUL] = "Mul",
    [MB_OP_DIV] = "Div",
    [MB_OP_CONCAT] = "Concat",
    [MB_OP_BATCHNORM] = "BatchNormalization",
    [MB_OP_SOFTMAX] = "Softmax",
    [MB_OP_FLATTEN] = "Flatten",
    [MB_OP_RESHAPE] = "Reshape",
    [MB_OP_PAD] = "Pad",
    [MB_OP_RESIZE] = "Resize",
    [MB_OP_IDENTITY] = "Identity",
};
_Static_assert(sizeof(op_names) / sizeof(op_names[0]) == MB_OP_COUNT, "every op needs a name");

const char *mb_op_name(mb_op_type t)
{
    return (t >= 0 && t < MB_OP_COUNT && op_names[t]) ? op_names[t] : "?";
}

int mb_op_from_name(const char *name)
{
    for (int i = 0; i < MB_OP_COUNT; i++)
        if (op_names[i] && !strcmp(op_names[i], name))
            return i;
    return -1;
}

mb_graph *mb_graph_new(const char *name)
{
    mb_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    snprintf(g->name, sizeof g->name, "%s", name ? name : "model");
    return g;
}

void mb_graph_free(mb_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_params; k++)
            mb_tensor_free(g->nodes[i].params[k]);
    free(g->nodes);
    free(g);
}

int mb_graph_add(mb_graph *g, const mb_node *n)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        mb_node *nn = realloc(g->nodes, sizeof(mb_node) * (size_t)cap);
        if (!nn)
            return -1;
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes] = *n;
    return g->n_nodes++;
}

int mb_graph_find(const mb_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name))
            return i;
    return -1;
}

/* ---- shape inference ---------------------------------------------------- */

typedef struct shape {
    int ndim;
    int64_t d[MB_MAX_DIMS];
} shape;

static int fail(char *err, size_t errlen, const mb_node *n, int idx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, const mb_node *n, int idx, const char *fmt, ...)
{
    if (err && errlen) {
        int k = snprintf(err, errlen, "node %d '%s' (%s): ", idx, n->name, mb_op_name(n->type));
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < errlen)
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static shape node_shape(const mb_node *n)
{
    shape s = {n->out_ndim, {0}};
    memcpy(s.d, n->out_dims, sizeof(int64_t) * (size_t)n->out_ndim);
    return s;
}

static shape tensor_shape(const mb_tensor *t)
{
    shape s = {t->ndim, {0}};
    memcpy(s.d, t->dims, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

static int64_t numel(const shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->d[i];
    return n;
}

static int at_least1(int v) { return v > 0 ? v : 1; }

/* Resolve auto_pad into explicit pads for one spatial axis of a conv or pool. */
static void resolve_auto_pad(int auto_pad, int64_t in, int k, int s, int d, int *pb, int *pe)
{
    if (auto_pad == MB_AUTO_PAD_VALID) {
        *pb = *pe = 0;
    } else if (auto_pad == MB_AUTO_PAD_SAME_UPPER || auto_pad == MB_AUTO_PAD_SAME_LOWER) {
        int64_t out = (in + s - 1) / s;
        int64_t total = (out - 1) * s + (int64_t)(k - 1) * d + 1 - in;
        if (total < 0)
            total = 0;
        int64_t small = total / 2, big = total - small;
        *pb = (int)(auto_pad == MB_AUTO_PAD_SAME_UPPER ? small : big);
        *pe = (int)(auto_pad == MB_AUTO_PAD_SAME_UPPER ? big : small);
    }
}

static int64_t pool_out(int64_t in, int k, int s, int d, int pb, int pe, int ceil_mode)
{
    int64_t span = in + pb + pe - ((int64_t)(k - 1) * d + 1);
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    /* ceil mode: the last window must start inside the input or its begin padding */
    if (ceil_mode && (out - 1) * s >= in + pb)
        out--;
    return out;
}

static int broadcast(const shape *a, const shape *b, shape *out)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return -1;
        out->d[i] = da == 1 ? db : da;
    }
    return 0;
}

/* Is this (4-D) operand of a binary op aligned with the output over H and W
 * (same size or broadcast from 1)? Lower-rank operands count if their last two
 * dims are 1 or match. */
static int operand_spatially_aligned(const shape *op, const shape *out)
{
    for (int ax = 2; ax <= 3; ax++) {
        int i = op->ndim - (4 - ax);
        int64_t d = i >= 0 ? op->d[i] : 1;
        if (d != 1 && d != out->d[ax])
            return 0;
    }
    return 1;
}

static int infer_node(mb_graph *g, int idx, char *err, size_t errlen)
{
    mb_node *n = &g->nodes[idx];
    mb_op_attrs *a = &n->a;
    shape in[MB_MAX_INPUTS];
    shape out = {0, {0}};

    if (n->n_inputs < 0 || n->n_inputs > MB_MAX_INPUTS || n->n_params < 0 || n->n_params > MB_MAX_PARAMS)
        return fail(err, errlen, n, idx, "bad input or parameter count");
    for (int k = 0; k < n->n_inputs; k++) {
        int p = n->inputs[k];
        if (p < 0 || p >= idx)
            return fail(err, errlen, n, idx, "input %d refers to node %d, which is not an earlier node", k, p);
        in[k] = node_shape(&g->nodes[p]);
    }
    for (int k = 0; k < n->n_params; k++)
        if (!n->params[k])
            return fail(err, errlen, n, idx, "parameter %d is missing", k);

    /* arity: inputs (data) and params (weights) */
    int min_in = 1, max_in = 1;
    switch (n->type) {
    case MB_OP_INPUT: case MB_OP_CONSTANT: min_in = max_in = 0; break;
    case MB_OP_GEMM: case MB_OP_MATMUL: max_in = 2; break;
    case MB_OP_ADD: case MB_OP_SUB: case MB_OP_MUL: case MB_OP_DIV:
        min_in = n->n_params ? 1 : 2;
        max_in = n->n_params ? 1 : 2;
        break;
    case MB_OP_CONCAT: max_in = MB_MAX_INPUTS; break;
    default: break;
    }
    if (n->n_inputs < min_in || n->n_inputs > max_in)
        return fail(err, errlen, n, idx, "has %d inputs, expects %d..%d", n->n_inputs, min_in, max_in);

    n->n_weights = 0;
    for (int k = 0; k < n->n_params; k++)
        if (n->type != MB_OP_CONSTANT)
            n->n_weights += mb_tensor_numel(n->params[k]);
    n->local = 0;
    int64_t macs = -1; /* -1: one per output element */

    switch (n->type) {
    case MB_OP_INPUT:
        if (a->shape_ndim < 1 || a->shape_ndim > MB_MAX_DIMS)
            return fail(err, errlen, n, idx, "input needs a shape");
        out.ndim = a->shape_ndim;
        for (int i = 0; i < out.ndim; i++) {
            if (a->shape[i] <= 0)
                return fail(err, errlen, n, idx, "input dimension %d is %lld", i, (long long)a->shape[i]);
            out.d[i] = a->shape[i];
        }
        macs = 0;
        break;
    case MB_OP_CONSTANT:
        if (n->n_params != 1)
            return fail(err, errlen, n, idx, "constant needs exactly one tensor");
        out = tensor_shape(n->params[0]);
        macs = 0;
        break;
    case MB_OP_CONV:
    case MB_OP_CONV_TRANSPOSE: {
        int tr = n->type == MB_OP_CONV_TRANSPOSE;
        if (n->n_params < 1 || n->n_params > 2)
            return fail(err, errlen, n, idx, "needs weights W and optional bias B as params");
        shape w = tensor_shape(n->params[0]);
        if (in[0].ndim != 4 || w.ndim != 4)
            return fail(err, errlen, n, idx, "only 2-D convolution (4-D input and weights) is supported");
        int grp = at_least1(a->group);
        a->group = grp;
        int64_t C = in[0].d[1];
        int64_t M = tr ? w.d[1] * grp : w.d[0];
        if (!tr && (C % grp || w.d[1] * grp != C || M % grp))
            return fail(err, errlen, n, idx, "channels %lld and weights [%lld,%lld,..] do not match group %d",
                        (long long)C, (long long)w.d[0], (long long)w.d[1], grp);
        if (tr && (w.d[0] != C || C % grp))
            return fail(err, errlen, n, idx, "input channels %lld do not match weights' first dim %lld",
                        (long long)C, (long long)w.d[0]);
        if (n->n_params == 2 && mb_tensor_numel(n->params[1]) != M)
            return fail(err, errlen, n, idx, "bias has %lld elements, expected %lld",
                        (long long)mb_tensor_numel(n->params[1]), (long long)M);
        for (int ax = 0; ax < 2; ax++) {
            if (a->kernel[ax] == 0)
                a->kernel[ax] = (int)w.d[2 + ax];
            if (a->kernel[ax] != w.d[2 + ax])
                return fail(err, errlen, n, idx, "kernel_shape disagrees with the weights");
            a->stride[ax] = at_least1(a->stride[ax]);
            a->dilation[ax] = at_least1(a->dilation[ax]);
        }
        out.ndim = 4;
        out.d[0] = in[0].d[0];
        out.d[1] = M;
        for (int ax = 0; ax < 2; ax++) {
            int k = a->kernel[ax], s = a->stride[ax], d = a->dilation[ax];
            int64_t len = in[0].d[2 + ax];
            if (!tr) {
                resolve_auto_pad(a->auto_pad, len, k, s, d, &a->pads[ax], &a->pads[2 + ax]);
                out.d[2 + ax] = pool_out(len, k, s, d, a->pads[ax], a->pads[2 + ax], 0);
            } else {
                int64_t full = s * (len - 1) + a->output_padding[ax] + (int64_t)(k - 1) * d + 1;
                if (a->auto_pad == MB_AUTO_PAD_SAME_UPPER || a->auto_pad == MB_AUTO_PAD_SAME_LOWER) {
                    int64_t total = full - len * s;
                    if (total < 0)
                        total = 0;
                    int64_t small = total / 2, big = total - small;
                    a->pads[ax] = (int)(a->auto_pad == MB_AUTO_PAD_SAME_UPPER ? small : big);
                    a->pads[2 + ax] = (int)(a->auto_pad == MB_AUTO_PAD_SAME_UPPER ? big : small);
                } else if (a->auto_pad == MB_AUTO_PAD_VALID) {
                    a->pads[ax] = a->pads[2 + ax] = 0;
                }
                out.d[2 + ax] = full - a->pads[ax] - a->pads[2 + ax];
            }
            if (a->pads[ax] < 0 || a->pads[2 + ax] < 0)
                return fail(err, errlen, n, idx, "negative padding");
            if (out.d[2 + ax] <= 0)
                return fail(err, errlen, n, idx, "output would be empty (input %lld, kernel %d)",
                            (long long)len, k);
        }
        a->auto_pad = MB_AUTO_PAD_NOTSET;
        if (!tr)
            macs = out.d[0] * M * out.d[2] * out.d[3] * (C / grp) * a->kernel[0] * a->kernel[1];
        else
            macs = in[0].d[0] * C * in[0].d[2] * in[0].d[3] * (M / grp) * a->kernel[0] * a->kernel[1];
        n->local = 1;
        break;
    }
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        if (in[0].ndim != 4)
            return fail(err, errlen, n, idx, "only 2-D pooling (4-D input) is supported");
        out = in[0];
        for (int ax = 0; ax < 2; ax++) {
            if (a->kernel[ax] <= 0)
                return fail(err, errlen, n, idx, "kernel_shape missing");
            a->stride[ax] = at_least1(a->stride[ax]);
            a->dilation[ax] = at_least1(a->dilation[ax]);
            int64_t len = in[0].d[2 + ax];
            resolve_auto_pad(a->auto_pad, len, a->kernel[ax], a->stride[ax], a->dilation[ax], &a->pads[ax],
                             &a->pads[2 + ax]);
            if (a->pads[ax] < 0 || a->pads[2 + ax] < 0)
                return fail(err, errlen, n, idx, "negative padding");
            out.d[2 + ax] = pool_out(len, a->kernel[ax], a->stride[ax], a->dilation[ax], a->pads[ax],
                                     a->pads[2 + ax], a->ceil_mode);
            if (out.d[2 + ax] <= 0)
                return fail(err, errlen, n, idx, "output would be empty");
        }
        a->auto_pad = MB_AUTO_PAD_NOTSET;
        macs = numel(&out) * a->kernel[0] * a->kernel[1];
        n->local = 1;
        break;
    case MB_OP_GLOBALAVGPOOL:
        if (in[0].ndim < 3)
            return fail(err, errlen, n, idx, "needs at least a 3-D input");
        out = in[0];
        for (int i = 2; i < out.ndim; i++)
            out.d[i] = 1;
        macs = numel(&in[0]);
        break;
    case MB_OP_RELU: case MB_OP_CLIP: case MB_OP_SIGMOID: case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH: case MB_OP_LEAKYRELU: case MB_OP_IDENTITY:
        out = in[0];
        n->local = out.ndim == 4;
        break;
    case MB_OP_BATCHNORM:
        if (n->n_params != 4)
            return fail(err, errlen, n, idx, "needs scale, bias, mean, var as params");
        if (in[0].ndim < 2)
            return fail(err, errlen, n, idx, "needs at least a 2-D input");
        for (int k = 0; k < 4; k++)
            if (mb_tensor_numel(n->params[k]) != in[0].d[1])
                return fail(err, errlen, n, idx, "parameter %d has %lld elements, channels are %lld", k,
                            (long long)mb_tensor_numel(n->params[k]), (long long)in[0].d[1]);
        out = in[0];
        n->local = out.ndim == 4;
        break;
    case MB_OP_ADD: case MB_OP_SUB: case MB_OP_MUL: case MB_OP_DIV: {
        shape b = n->n_params ? tensor_shape(n->params[0]) : in[1];
        if (n->n_params)
            n->n_weights = 0; /* a constant operand, not a learned weight */
        if (broadcast(&in[0], &b, &out))
            return fail(err, errlen, n, idx, "operands do not broadcast");
        n->local = out.ndim == 4 && operand_spatially_aligned(&in[0], &out) && operand_spatially_aligned(&b, &out);
        break;
    }
    case MB_OP_CONCAT: {
        out = in[0];
        int ax = a->axis < 0 ? a->axis + out.ndim : a->axis;
        if (ax < 0 || ax >= out.ndim)
            return fail(err, errlen, n, idx, "axis %d out of range", a->axis);
        a->axis = ax;
        for (int k = 1; k < n->n_inputs; k++) {
            if (in[k].ndim != out.ndim)
                return fail(err, errlen, n, idx, "input %d has rank %d, expected %d", k, in[k].ndim, out.ndim);
            for (int i = 0; i < out.ndim; i++)
                if (i != ax && in[k].d[i] != out.d[i])
                    return fail(err, errlen, n, idx, "input %d differs in dimension %d", k, i);
            out.d[ax] += in[k].d[ax];
        }
        n->local = out.ndim == 4 && ax == 1;
        macs = 0;
        break;
    }
    case MB_OP_SOFTMAX: {
        out = in[0];
        int ax = a->axis < 0 ? a->axis + out.ndim : a->axis;
        if (ax < 0 || ax >= out.ndim)
            return fail(err, errlen, n, idx, "axis %d out of range", a->axis);
        a->axis = ax;
        break;
    }
    case MB_OP_FLATTEN: {
        int ax = a->axis < 0 ? a->axis + in[0].ndim : a->axis;
        if (ax < 0 || ax > in[0].ndim)
            return fail(err, errlen, n, idx, "axis %d out of range", a->axis);
        a->axis = ax;
        out.ndim = 2;
        out.d[0] = out.d[1] = 1;
        for (int i = 0; i < in[0].ndim; i++)
            out.d[i < ax ? 0 : 1] *= in[0].d[i];
        macs = 0;
        break;
    }
    case MB_OP_RESHAPE: {
        if (a->shape_ndim < 1 || a->shape_ndim > MB_MAX_DIMS)
            return fail(err, errlen, n, idx, "needs a target shape");
        out.ndim = a->shape_ndim;
        int infer_at = -1;
        int64_t known = 1;
        for (int i = 0; i < out.ndim; i++) {
            int64_t v = a->shape[i];
            if (v == 0) {
                if (i >= in[0].ndim)
                    return fail(err, errlen, n, idx, "0 in target dimension %d has no input dimension to copy", i);
                v = in[0].d[i];
            }
            if (v == -1) {
                if (infer_at >= 0)
                    return fail(err, errlen, n, idx, "more than one -1 in the target shape");
                infer_at = i;
                continue;
            }
            if (v < 0)
                return fail(err, errlen, n, idx, "target dimension %d is %lld", i, (long long)v);
            out.d[i] = v;
            known *= v;
        }
        int64_t total = numel(&in[0]);
        if (infer_at >= 0) {
            if (known == 0 || total % known)
                return fail(err, errlen, n, idx, "cannot infer -1: %lld elements into %lld", (long long)total,
                            (long long)known);
            out.d[infer_at] = total / known;
        } else if (known != total) {
            return fail(err, errlen, n, idx, "%lld elements cannot take the target shape (%lld)",
                        (long long)total, (long long)known);
        }
        macs = 0;
        break;
    }
    case MB_OP_PAD: {
        out = in[0];
        int nd = out.ndim;
        int spatial_only = nd == 4;
        for (int i = 0; i < nd; i++) {
            int64_t b = a->pad_amounts[i], e = a->pad_amounts[nd + i];
            out.d[i] += b + e;
            if (out.d[i] <= 0)
                return fail(err, errlen, n, idx, "padding leaves dimension %d empty", i);
            if ((b < 0 || e < 0) || (i < 2 && (b || e)))
                spatial_only = 0;
            if (a->pad_mode == MB_PAD_REFLECT && (b >= in[0].d[i] || e >= in[0].d[i]))
                return fail(err, errlen, n, idx, "reflect padding %lld/%lld exceeds dimension %d (%lld)",
                            (long long)b, (long long)e, i, (long long)in[0].d[i]);
        }
        n->local = spatial_only && a->pad_mode == MB_PAD_CONSTANT;
        macs = 0;
        break;
    }
    case MB_OP_RESIZE: {
        out = in[0];
        for (int i = 0; i < out.ndim; i++) {
            float s = a->scales[i] > 0 ? a->scales[i] : 1.0f;
            a->scales[i] = s;
            out.d[i] = (int64_t)floor((double)in[0].d[i] * s);
            if (out.d[i] <= 0)
                return fail(err, errlen, n, idx, "scale %g leaves dimension %d empty", s, i);
        }
        n->local = out.ndim == 4 && out.d[0] == in[0].d[0] && out.d[1] == in[0].d[1];
        break;
    }
    case MB_OP_GEMM: {
        shape A = in[0];
        shape B = n->n_inputs == 2 ? in[1] : (n->n_params ? tensor_shape(n->params[0]) : (shape){0, {0}});
        if (A.ndim != 2 || B.ndim != 2)
            return fail(err, errlen, n, idx, "needs 2-D A and B (B as input 1 or params[0])");
        int64_t M = a->trans_a ? A.d[1] : A.d[0], K = a->trans_a ? A.d[0] : A.d[1];
        int64_t K2 = a->trans_b ? B.d[1] : B.d[0], N = a->trans_b ? B.d[0] : B.d[1];
        if (K != K2)
            return fail(err, errlen, n, idx, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
        out.ndim = 2;
        out.d[0] = M;
        out.d[1] = N;
        int cidx = n->n_inputs == 2 ? 0 : 1;
        if (n->n_params > cidx) {
            shape C = tensor_shape(n->params[cidx]), tmp;
            if (broadcast(&C, &out, &tmp) || tmp.d[0] != M || tmp.d[1] != N)
                return fail(err, errlen, n, idx, "bias C does not broadcast to [%lld,%lld]", (long long)M,
                            (long long)N);
        }
        if (a->alpha == 0 && a->beta == 0)
            a->alpha = a->beta = 1; /* unset: ONNX defaults */
        macs = M * N * K;
        break;
    }
    case MB_OP_MATMUL: {
        shape A = in[0];
        shape B = n->n_inputs == 2 ? in[1] : (n->n_params ? tensor_shape(n->params[0]) : (shape){0, {0}});
        if (A.ndim < 1 || B.ndim < 1)
            return fail(err, errlen, n, idx, "needs two operands");
        shape a2 = A, b2 = B;
        if (a2.ndim == 1) { a2.ndim = 2; a2.d[1] = a2.d[0]; a2.d[0] = 1; }
        if (b2.ndim == 1) { b2.ndim = 2; b2.d[1] = 1; }
        int64_t M = a2.d[a2.ndim - 2], K = a2.d[a2.ndim - 1], K2 = b2.d[b2.ndim - 2], N = b2.d[b2.ndim - 1];
        if (K != K2)
            return fail(err, errlen, n, idx, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
        shape ba = a2, bb = b2, bo;
        ba.ndim -= 2;
        bb.ndim -= 2;
        if (broadcast(&ba, &bb, &bo))
            return fail(err, errlen, n, idx, "batch dimensions do not broadcast");
        out = bo;
        if (A.ndim > 1)
            out.d[out.ndim++] = M;
        if (B.ndim > 1)
            out.d[out.ndim++] = N;
        macs = numel(&bo) * M * N * K;
        break;
    }
    case MB_OP_COUNT:
    default:
        return fail(err, errlen, n, idx, "unknown op type %d", (int)n->type);
    }

    if (out.ndim > MB_MAX_DIMS)
        return fail(err, errlen, n, idx, "rank %d exceeds %d", out.ndim, MB_MAX_DIMS);
    n->out_ndim = out.ndim;
    memcpy(n->out_dims, out.d, sizeof(int64_t) * (size_t)out.ndim);
    n->out_bytes = numel(&out) * (int64_t)sizeof(float);
    n->macs = macs < 0 ? numel(&out) : macs;
    return 0;
}

int mb_graph_infer(mb_graph *g, char *err, size_t errlen)
{
    if (g->n_nodes == 0) {
        snprintf(err, errlen, "model '%s' has no nodes", g->name);
        return -1;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (infer_node(g, i, err, errlen))
            return -1;
    if (g->n_outputs <= 0 || g->n_outputs > MB_MAX_OUTPUTS) {
        snprintf(err, errlen, "model '%s' declares %d outputs", g->name, g->n_outputs);
        return -1;
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] < 0 || g->outputs[k] >= g->n_nodes) {
            snprintf(err, errlen, "model '%s': output %d refers to node %d, which does not exist", g->name, k,
                     g->outputs[k]);
            return -1;
        }
    return 0;
}

int64_t mb_graph_params(const mb_graph *g)
{
    int64_t s = 0;
    for (int i = 0; i < g->n_nodes; i++)
        s += g->nodes[i].n_weights;
    return s;
}

int64_t mb_graph_macs(const mb_graph *g)
{
    int64_t s = 0;
    for (int i = 0; i < g->n_nodes; i++)
        s += g->nodes[i].macs;
    return s;
}

int mb_graph_consumers(const mb_graph *g, int i, int *out, int max)
{
    int c = 0;
    for (int j = i + 1; j < g->n_nodes; j++) {
        const mb_node *n = &g->nodes[j];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == i) {
                if (out && c < max)
                    out[c] = j;
                c++;
                break;
            }
    }
    return c;
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t mb_graph_hash(const mb_graph *g)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        int t = n->type;
        h = fnv(h, &t, sizeof t);
        h = fnv(h, &n->a, sizeof n->a);
        h = fnv(h, n->inputs, sizeof(int) * (size_t)n->n_inputs);
        for (int k = 0; k < n->n_params; k++) {
            const mb_tensor *p = n->params[k];
            h = fnv(h, p->dims, sizeof(int64_t) * (size_t)p->ndim);
            h = fnv(h, p->data, mb_tensor_bytes(p));
        }
    }
    h = fnv(h, g->outputs, sizeof(int) * (size_t)g->n_outputs);
    return h;
}
