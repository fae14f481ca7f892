/* The DAG IR: construction, validation and shape inference. */
#include "mecbed/graph.h"

#include "graph_infer.h"

#include <math.h>
#include <stddef.h>
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
    [MB_OP_TRANSPOSE] = "Transpose",
    [MB_OP_LAYERNORM] = "LayerNormalization",
    [MB_OP_GELU] = "Gelu",
    [MB_OP_ERF] = "Erf",
    [MB_OP_TANH] = "Tanh",
    [MB_OP_EXP] = "Exp",
    [MB_OP_LOG] = "Log",
    [MB_OP_SQRT] = "Sqrt",
    [MB_OP_RECIPROCAL] = "Reciprocal",
    [MB_OP_ABS] = "Abs",
    [MB_OP_NEG] = "Neg",
    [MB_OP_FLOOR] = "Floor",
    [MB_OP_CEIL] = "Ceil",
    [MB_OP_NOT] = "Not",
    [MB_OP_ELU] = "Elu",
    [MB_OP_SELU] = "Selu",
    [MB_OP_SOFTPLUS] = "Softplus",
    [MB_OP_SOFTSIGN] = "Softsign",
    [MB_OP_SIN] = "Sin",
    [MB_OP_COS] = "Cos",
    [MB_OP_SIGN] = "Sign",
    [MB_OP_POW] = "Pow",
    [MB_OP_MIN] = "Min",
    [MB_OP_MAX] = "Max",
    [MB_OP_EQUAL] = "Equal",
    [MB_OP_LESS] = "Less",
    [MB_OP_GREATER] = "Greater",
    [MB_OP_LESS_EQUAL] = "LessOrEqual",
    [MB_OP_GREATER_EQUAL] = "GreaterOrEqual",
    [MB_OP_AND] = "And",
    [MB_OP_OR] = "Or",
    [MB_OP_XOR] = "Xor",
    [MB_OP_WHERE] = "Where",
    [MB_OP_LOGSOFTMAX] = "LogSoftmax",
    [MB_OP_REDUCEMEAN] = "ReduceMean",
    [MB_OP_REDUCESUM] = "ReduceSum",
    [MB_OP_REDUCEMAX] = "ReduceMax",
    [MB_OP_REDUCEMIN] = "ReduceMin",
    [MB_OP_REDUCEPROD] = "ReduceProd",
    [MB_OP_REDUCESUMSQUARE] = "ReduceSumSquare",
    [MB_OP_REDUCEL1] = "ReduceL1",
    [MB_OP_REDUCEL2] = "ReduceL2",
    [MB_OP_REDUCELOGSUM] = "ReduceLogSum",
    [MB_OP_REDUCELOGSUMEXP] = "ReduceLogSumExp",
    [MB_OP_SLICE] = "Slice",
    [MB_OP_GATHER] = "Gather",
    [MB_OP_EXPAND] = "Expand",
    [MB_OP_TILE] = "Tile",
    [MB_OP_CAST] = "Cast",
    [MB_OP_INSTANCENORM] = "InstanceNormalization",
    [MB_OP_ARGMAX] = "ArgMax",
    [MB_OP_ARGMIN] = "ArgMin",
    [MB_OP_TRILU] = "Trilu",
    [MB_OP_GATHER_ELEMENTS] = "GatherElements",
    [MB_OP_MOD] = "Mod",
    [MB_OP_CUMSUM] = "CumSum",
    [MB_OP_HARDMAX] = "Hardmax",
    [MB_OP_THRESHOLDED_RELU] = "ThresholdedRelu",
    [MB_OP_ISINF] = "IsInf",
    [MB_OP_TAN] = "Tan",
    [MB_OP_ROUND] = "Round",
    [MB_OP_NLLLOSS] = "NegativeLogLikelihoodLoss",
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

#define fail mb__infer_fail
int mb__infer_fail(char *err, size_t errlen, const mb_node *n, int idx, const char *fmt, ...)
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

shape mb__tensor_shape(const mb_tensor *t)
{
    shape s = {t->ndim, {0}};
    memcpy(s.d, t->dims, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

/* Element and MAC counts are products of dimensions read from a model file;
 * a crafted file can make them overflow int64. Anything above this bound (far
 * beyond any real model: 2^48 elements is a petabyte of floats) is refused. */
#define MAX_COUNT ((int64_t)1 << 48)

/* The product of n non-negative factors, or -1 when it exceeds MAX_COUNT. */
static int64_t checked_product(const int64_t *f, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (f[i] < 0 || __builtin_mul_overflow(p, f[i], &p) || p > MAX_COUNT)
            return -1;
    }
    return p;
}

/* Element count of a shape; -1 when too large (see MAX_COUNT). */
int64_t mb__numel(const shape *s) { return checked_product(s->d, s->ndim); }
#define numel mb__numel
#define tensor_shape mb__tensor_shape

static int at_least1(int v) { return v > 0 ? v : 1; }

/* Stride, dilation and group: 0 means "not set" (the default 1); a negative
 * value is an error, not silently the default, so a model file, an ONNX import
 * and an export all obey one rule. */
static int check_positive(const char *what, int ax, int *v, char *msg, size_t msglen)
{
    if (*v < 0) {
        snprintf(msg, msglen, "%s[%d] is %d, must be >= 1", what, ax, *v);
        return -1;
    }
    *v = at_least1(*v);
    return 0;
}

/* Kernel, stride, dilation and explicit pads of one spatial axis of a conv or
 * pool: every range checked before any arithmetic divides by them. Pads of a
 * Conv or pool must be smaller than the kernel's extent ((k-1)*d+1): more
 * would make windows that see only padding. crop_pads: ConvTranspose, whose
 * pads only need to be >= 0. */
static int check_window_axis(mb_op_attrs *a, int ax, int crop_pads, char *msg, size_t msglen)
{
    if (a->kernel[ax] < 1) {
        snprintf(msg, msglen, "kernel[%d] is %d, must be >= 1", ax, a->kernel[ax]);
        return -1;
    }
    if (check_positive("stride", ax, &a->stride[ax], msg, msglen) ||
        check_positive("dilation", ax, &a->dilation[ax], msg, msglen))
        return -1;
    int64_t extent = (int64_t)(a->kernel[ax] - 1) * a->dilation[ax] + 1;
    if (a->auto_pad != MB_AUTO_PAD_NOTSET)
        return 0; /* pads are computed, not given */
    for (int side = 0; side < 2; side++) {
        int p = a->pads[ax + 2 * side];
        /* ConvTranspose's pads crop its output: any amount that leaves
         * an output is meaningful (checked by the caller) */
        if (p < 0 || (!crop_pads && p >= extent)) {
            snprintf(msg, msglen, "pads[%d] is %d, must be in 0..%lld (kernel extent %lld)", ax + 2 * side, p,
                     (long long)extent - 1, (long long)extent);
            return -1;
        }
    }
    return 0;
}

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

int mb__broadcast(const shape *a, const shape *b, shape *out)
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


static int infer_input(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    if (a->shape_ndim < 1 || a->shape_ndim > MB_MAX_DIMS)
        return INFER_FAIL(c, "input needs a shape");
    c->out.ndim = a->shape_ndim;
    for (int i = 0; i < c->out.ndim; i++) {
        if (a->shape[i] <= 0)
            return INFER_FAIL(c, "input dimension %d is %lld", i, (long long)a->shape[i]);
        c->out.d[i] = a->shape[i];
    }
    c->macs = 0;
    return 0;
}

static int infer_constant(infer_ctx *c)
{
    if (c->n->n_params != 1)
        return INFER_FAIL(c, "constant needs exactly one tensor");
    c->out = tensor_shape(c->n->params[0]);
    c->macs = 0;
    return 0;
}

/* Conv and ConvTranspose: check W (and B) against the input's channels and the
 * group; fill in kernel_shape from W and default strides and dilations. Sets
 * *out_channels (M). */
static int conv_check_weights(infer_ctx *c, int tr, int64_t *out_channels)
{
    mb_node *n = c->n;
    mb_op_attrs *a = c->a;
    if (n->n_params < 1 || n->n_params > 2)
        return INFER_FAIL(c, "needs weights W and optional bias B as params");
    shape w = tensor_shape(n->params[0]);
    if (c->in[0].ndim != 4 || w.ndim != 4)
        return INFER_FAIL(c, "only 2-D convolution (4-D input and weights) is supported");
    if (a->group < 0)
        return INFER_FAIL(c, "group is %d, must be >= 1", a->group);
    int grp = at_least1(a->group);
    a->group = grp;
    for (int i = 0; i < 4; i++)
        if (w.d[i] < 1)
            return INFER_FAIL(c, "weights dimension %d is %lld, must be >= 1", i, (long long)w.d[i]);
    int64_t C = c->in[0].d[1];
    int64_t M = tr ? w.d[1] * grp : w.d[0];
    if (!tr && (C % grp || w.d[1] * grp != C || M % grp))
        return INFER_FAIL(c, "channels %lld and weights [%lld,%lld,..] do not match group %d", (long long)C,
                          (long long)w.d[0], (long long)w.d[1], grp);
    if (tr && (w.d[0] != C || C % grp))
        return INFER_FAIL(c, "input channels %lld do not match weights' first dim %lld", (long long)C,
                          (long long)w.d[0]);
    if (n->n_params == 2 && mb_tensor_numel(n->params[1]) != M)
        return INFER_FAIL(c, "bias has %lld elements, expected %lld", (long long)mb_tensor_numel(n->params[1]),
                          (long long)M);
    char msg[160];
    for (int ax = 0; ax < 2; ax++) {
        if (a->kernel[ax] == 0)
            a->kernel[ax] = (int)w.d[2 + ax];
        if (a->kernel[ax] != w.d[2 + ax])
            return INFER_FAIL(c, "kernel_shape disagrees with the weights");
        if (check_window_axis(a, ax, tr, msg, sizeof msg))
            return INFER_FAIL(c, "%s", msg);
        /* PyTorch's rule (ONNX leaves it open): the extra output rows must be
         * fewer than the stride or the dilation, or they would be all bias. */
        int op = a->output_padding[ax];
        if (op < 0 || (op > 0 && !tr) || (tr && op >= a->stride[ax] && op >= a->dilation[ax]))
            return INFER_FAIL(c, "output_padding[%d] is %d, must be >= 0 and below the stride (%d) or dilation (%d)",
                              ax, op, a->stride[ax], a->dilation[ax]);
    }
    *out_channels = M;
    return 0;
}

/* ConvTranspose's output length on one spatial axis, resolving auto_pad into
 * explicit pads (SAME splits the excess over the "full" output, as ONNX). */
static int64_t conv_transpose_axis(mb_op_attrs *a, int ax, int64_t len)
{
    int k = a->kernel[ax], s = a->stride[ax], d = a->dilation[ax];
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
    return full - a->pads[ax] - a->pads[2 + ax];
}

static int infer_conv(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    const shape *in = c->in;
    int tr = c->n->type == MB_OP_CONV_TRANSPOSE;
    int64_t M = 0;
    if (conv_check_weights(c, tr, &M))
        return -1;
    int grp = a->group;
    int64_t C = in[0].d[1];
    c->out.ndim = 4;
    c->out.d[0] = in[0].d[0];
    c->out.d[1] = M;
    for (int ax = 0; ax < 2; ax++) {
        int k = a->kernel[ax], s = a->stride[ax], d = a->dilation[ax];
        int64_t len = in[0].d[2 + ax];
        if (!tr) {
            resolve_auto_pad(a->auto_pad, len, k, s, d, &a->pads[ax], &a->pads[2 + ax]);
            c->out.d[2 + ax] = pool_out(len, k, s, d, a->pads[ax], a->pads[2 + ax], 0);
        } else {
            c->out.d[2 + ax] = conv_transpose_axis(a, ax, len);
        }
        if (a->pads[ax] < 0 || a->pads[2 + ax] < 0)
            return INFER_FAIL(c, "negative padding");
        if (c->out.d[2 + ax] <= 0)
            return INFER_FAIL(c, "output would be empty (input %lld, kernel %d)", (long long)len, k);
    }
    a->auto_pad = MB_AUTO_PAD_NOTSET;
    const shape *big = tr ? &in[0] : &c->out;
    int64_t f[] = {big->d[0], tr ? C : M, big->d[2], big->d[3], (tr ? M : C) / grp, a->kernel[0], a->kernel[1]};
    if ((c->macs = checked_product(f, 7)) < 0)
        return INFER_FAIL(c, "multiply-accumulate count is too large");
    c->n->local = 1;
    return 0;
}

static int infer_pool(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    const shape *in = c->in;
    if (in[0].ndim != 4)
        return INFER_FAIL(c, "only 2-D pooling (4-D input) is supported");
    c->out = in[0];
    char msg[160];
    for (int ax = 0; ax < 2; ax++) {
        if (a->kernel[ax] == 0)
            return INFER_FAIL(c, "kernel_shape missing");
        if (check_window_axis(a, ax, 0, msg, sizeof msg))
            return INFER_FAIL(c, "%s", msg);
        int64_t len = in[0].d[2 + ax];
        resolve_auto_pad(a->auto_pad, len, a->kernel[ax], a->stride[ax], a->dilation[ax], &a->pads[ax],
                         &a->pads[2 + ax]);
        if (a->pads[ax] < 0 || a->pads[2 + ax] < 0)
            return INFER_FAIL(c, "negative padding");
        c->out.d[2 + ax] = pool_out(len, a->kernel[ax], a->stride[ax], a->dilation[ax], a->pads[ax],
                                    a->pads[2 + ax], a->ceil_mode);
        if (c->out.d[2 + ax] <= 0)
            return INFER_FAIL(c, "output would be empty");
    }
    a->auto_pad = MB_AUTO_PAD_NOTSET;
    int64_t f[] = {numel(&c->out), a->kernel[0], a->kernel[1]};
    if ((c->macs = checked_product(f, 3)) < 0)
        return INFER_FAIL(c, "output or window is too large");
    c->n->local = 1;
    return 0;
}

static int infer_global_avgpool(infer_ctx *c)
{
    if (c->in[0].ndim < 3)
        return INFER_FAIL(c, "needs at least a 3-D input");
    c->out = c->in[0];
    for (int i = 2; i < c->out.ndim; i++)
        c->out.d[i] = 1;
    c->macs = numel(&c->in[0]);
    return 0;
}

/* Element-wise unary ops: the output is the input's shape. */
static int infer_unary(infer_ctx *c)
{
    c->out = c->in[0];
    c->n->local = c->out.ndim == 4;
    return 0;
}

static int infer_batchnorm(infer_ctx *c)
{
    mb_node *n = c->n;
    if (n->n_params != 4)
        return INFER_FAIL(c, "needs scale, bias, mean, var as params");
    if (c->in[0].ndim < 2)
        return INFER_FAIL(c, "needs at least a 2-D input");
    for (int k = 0; k < 4; k++)
        if (mb_tensor_numel(n->params[k]) != c->in[0].d[1])
            return INFER_FAIL(c, "parameter %d has %lld elements, channels are %lld", k,
                              (long long)mb_tensor_numel(n->params[k]), (long long)c->in[0].d[1]);
    c->out = c->in[0];
    n->local = c->out.ndim == 4;
    return 0;
}

static int infer_binary(infer_ctx *c)
{
    mb_node *n = c->n;
    shape b = n->n_params ? tensor_shape(n->params[0]) : c->in[1];
    if (n->n_params)
        n->n_weights = 0; /* a constant operand, not a learned weight */
    if (mb__broadcast(&c->in[0], &b, &c->out))
        return INFER_FAIL(c, "operands do not broadcast");
    n->local = c->out.ndim == 4 && operand_spatially_aligned(&c->in[0], &c->out) &&
               operand_spatially_aligned(&b, &c->out);
    return 0;
}

static int infer_concat(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    const shape *in = c->in;
    c->out = in[0];
    int ax = a->axis < 0 ? a->axis + c->out.ndim : a->axis;
    if (ax < 0 || ax >= c->out.ndim)
        return INFER_FAIL(c, "axis %d out of range", a->axis);
    a->axis = ax;
    for (int k = 1; k < c->n->n_inputs; k++) {
        if (in[k].ndim != c->out.ndim)
            return INFER_FAIL(c, "input %d has rank %d, expected %d", k, in[k].ndim, c->out.ndim);
        for (int i = 0; i < c->out.ndim; i++)
            if (i != ax && in[k].d[i] != c->out.d[i])
                return INFER_FAIL(c, "input %d differs in dimension %d", k, i);
        c->out.d[ax] += in[k].d[ax];
    }
    c->n->local = c->out.ndim == 4 && ax == 1;
    c->macs = 0;
    return 0;
}

static int infer_softmax(infer_ctx *c)
{
    c->out = c->in[0];
    int ax = c->a->axis < 0 ? c->a->axis + c->out.ndim : c->a->axis;
    if (ax < 0 || ax >= c->out.ndim)
        return INFER_FAIL(c, "axis %d out of range", c->a->axis);
    c->a->axis = ax;
    return 0;
}

static int infer_flatten(infer_ctx *c)
{
    const shape *in = c->in;
    int ax = c->a->axis < 0 ? c->a->axis + in[0].ndim : c->a->axis;
    if (ax < 0 || ax > in[0].ndim)
        return INFER_FAIL(c, "axis %d out of range", c->a->axis);
    c->a->axis = ax;
    c->out.ndim = 2;
    c->out.d[0] = c->out.d[1] = 1;
    for (int i = 0; i < in[0].ndim; i++)
        c->out.d[i < ax ? 0 : 1] *= in[0].d[i];
    c->macs = 0;
    return 0;
}

static int infer_reshape(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    const shape *in = c->in;
    if (a->shape_ndim < 1 || a->shape_ndim > MB_MAX_DIMS)
        return INFER_FAIL(c, "needs a target shape");
    c->out.ndim = a->shape_ndim;
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < c->out.ndim; i++) {
        int64_t v = a->shape[i];
        if (v == 0) {
            if (i >= in[0].ndim)
                return INFER_FAIL(c, "0 in target dimension %d has no input dimension to copy", i);
            v = in[0].d[i];
        }
        if (v == -1) {
            if (infer_at >= 0)
                return INFER_FAIL(c, "more than one -1 in the target shape");
            infer_at = i;
            continue;
        }
        if (v < 0)
            return INFER_FAIL(c, "target dimension %d is %lld", i, (long long)v);
        c->out.d[i] = v;
        known *= v;
    }
    int64_t total = numel(&in[0]);
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return INFER_FAIL(c, "cannot infer -1: %lld elements into %lld", (long long)total, (long long)known);
        c->out.d[infer_at] = total / known;
    } else if (known != total) {
        return INFER_FAIL(c, "%lld elements cannot take the target shape (%lld)", (long long)total,
                          (long long)known);
    }
    c->macs = 0;
    return 0;
}

static int infer_pad(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    const shape *in = c->in;
    c->out = in[0];
    int nd = c->out.ndim;
    int spatial_only = nd == 4;
    for (int i = 0; i < nd; i++) {
        int64_t b = a->pad_amounts[i], e = a->pad_amounts[nd + i];
        if (b > MAX_COUNT || b < -MAX_COUNT || e > MAX_COUNT || e < -MAX_COUNT)
            return INFER_FAIL(c, "pad amount on dimension %d is out of range", i);
        c->out.d[i] += b + e;
        if (c->out.d[i] <= 0)
            return INFER_FAIL(c, "padding leaves dimension %d empty", i);
        if ((b < 0 || e < 0) || (i < 2 && (b || e)))
            spatial_only = 0;
        if (a->pad_mode == MB_PAD_REFLECT && (b >= in[0].d[i] || e >= in[0].d[i]))
            return INFER_FAIL(c, "reflect padding %lld/%lld exceeds dimension %d (%lld)", (long long)b,
                              (long long)e, i, (long long)in[0].d[i]);
    }
    c->n->local = spatial_only && a->pad_mode == MB_PAD_CONSTANT;
    c->macs = 0;
    return 0;
}

static int infer_resize(infer_ctx *c)
{
    const shape *in = c->in;
    c->out = in[0];
    for (int i = 0; i < c->out.ndim; i++) {
        float s = c->a->scales[i];
        if (s == 0.0f)
            s = 1.0f; /* not set */
        else if (!isfinite(s) || s < 0.0f)
            return INFER_FAIL(c, "scales[%d] is %g, must be finite and > 0", i, (double)s);
        c->a->scales[i] = s;
        double len = floor((double)in[0].d[i] * s);
        if (len > (double)MAX_COUNT)
            return INFER_FAIL(c, "scale %g makes dimension %d too large", s, i);
        c->out.d[i] = (int64_t)len;
        if (c->out.d[i] <= 0)
            return INFER_FAIL(c, "scale %g leaves dimension %d empty", s, i);
    }
    c->n->local = c->out.ndim == 4 && c->out.d[0] == in[0].d[0] && c->out.d[1] == in[0].d[1];
    return 0;
}

/* The right operand of Gemm and MatMul: data input 1, else params[0]. */
static shape right_operand(const infer_ctx *c)
{
    const mb_node *n = c->n;
    return n->n_inputs == 2 ? c->in[1] : (n->n_params ? tensor_shape(n->params[0]) : (shape){0, {0}});
}

static int infer_gemm(infer_ctx *c)
{
    mb_op_attrs *a = c->a;
    shape A = c->in[0];
    shape B = right_operand(c);
    if (A.ndim != 2 || B.ndim != 2)
        return INFER_FAIL(c, "needs 2-D A and B (B as input 1 or params[0])");
    int64_t M = a->trans_a ? A.d[1] : A.d[0], K = a->trans_a ? A.d[0] : A.d[1];
    int64_t K2 = a->trans_b ? B.d[1] : B.d[0], N = a->trans_b ? B.d[0] : B.d[1];
    if (K != K2)
        return INFER_FAIL(c, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
    c->out.ndim = 2;
    c->out.d[0] = M;
    c->out.d[1] = N;
    int cidx = c->n->n_inputs == 2 ? 0 : 1;
    if (c->n->n_params > cidx) {
        shape C = tensor_shape(c->n->params[cidx]), tmp;
        if (mb__broadcast(&C, &c->out, &tmp) || tmp.d[0] != M || tmp.d[1] != N)
            return INFER_FAIL(c, "bias C does not broadcast to [%lld,%lld]", (long long)M, (long long)N);
    }
    if (a->alpha == 0 && a->beta == 0)
        a->alpha = a->beta = 1; /* unset: ONNX defaults */
    int64_t f[] = {M, N, K};
    if ((c->macs = checked_product(f, 3)) < 0)
        return INFER_FAIL(c, "multiply-accumulate count is too large");
    return 0;
}

static int infer_matmul(infer_ctx *c)
{
    shape A = c->in[0];
    shape B = right_operand(c);
    if (A.ndim < 1 || B.ndim < 1)
        return INFER_FAIL(c, "needs two operands");
    shape a2 = A, b2 = B;
    if (a2.ndim == 1) { a2.ndim = 2; a2.d[1] = a2.d[0]; a2.d[0] = 1; }
    if (b2.ndim == 1) { b2.ndim = 2; b2.d[1] = 1; }
    int64_t M = a2.d[a2.ndim - 2], K = a2.d[a2.ndim - 1], K2 = b2.d[b2.ndim - 2], N = b2.d[b2.ndim - 1];
    if (K != K2)
        return INFER_FAIL(c, "inner dimensions differ: %lld vs %lld", (long long)K, (long long)K2);
    shape ba = a2, bb = b2, bo;
    ba.ndim -= 2;
    bb.ndim -= 2;
    if (mb__broadcast(&ba, &bb, &bo))
        return INFER_FAIL(c, "batch dimensions do not broadcast");
    c->out = bo;
    if (A.ndim > 1)
        c->out.d[c->out.ndim++] = M;
    if (B.ndim > 1)
        c->out.d[c->out.ndim++] = N;
    int64_t f[] = {numel(&bo), M, N, K};
    if ((c->macs = checked_product(f, 4)) < 0)
        return INFER_FAIL(c, "multiply-accumulate count is too large");
    return 0;
}

/* Per-op shape inference, indexed by op kind: how many data inputs the op
 * takes, and the function that checks its attributes and computes its output
 * shape. A new operator is one function and one row here. */
typedef struct op_infer {
    int min_in, max_in;
    int param_operand; /* binary op: a params[0] operand replaces data input 1 */
    int (*fn)(infer_ctx *c);
} op_infer;

static const op_infer op_infer_table[] = {
    [MB_OP_INPUT] = {0, 0, 0, infer_input},
    [MB_OP_CONSTANT] = {0, 0, 0, infer_constant},
    [MB_OP_CONV] = {1, 1, 0, infer_conv},
    [MB_OP_CONV_TRANSPOSE] = {1, 1, 0, infer_conv},
    [MB_OP_GEMM] = {1, 2, 0, infer_gemm},
    [MB_OP_MATMUL] = {1, 2, 0, infer_matmul},
    [MB_OP_MAXPOOL] = {1, 1, 0, infer_pool},
    [MB_OP_AVGPOOL] = {1, 1, 0, infer_pool},
    [MB_OP_GLOBALAVGPOOL] = {1, 1, 0, infer_global_avgpool},
    [MB_OP_RELU] = {1, 1, 0, infer_unary},
    [MB_OP_CLIP] = {1, 1, 0, infer_unary},
    [MB_OP_SIGMOID] = {1, 1, 0, infer_unary},
    [MB_OP_HARDSIGMOID] = {1, 1, 0, infer_unary},
    [MB_OP_HARDSWISH] = {1, 1, 0, infer_unary},
    [MB_OP_LEAKYRELU] = {1, 1, 0, infer_unary},
    [MB_OP_ADD] = {2, 2, 1, infer_binary},
    [MB_OP_SUB] = {2, 2, 1, infer_binary},
    [MB_OP_MUL] = {2, 2, 1, infer_binary},
    [MB_OP_DIV] = {2, 2, 1, infer_binary},
    [MB_OP_CONCAT] = {1, MB_MAX_INPUTS, 0, infer_concat},
    [MB_OP_BATCHNORM] = {1, 1, 0, infer_batchnorm},
    [MB_OP_SOFTMAX] = {1, 1, 0, infer_softmax},
    [MB_OP_FLATTEN] = {1, 1, 0, infer_flatten},
    [MB_OP_RESHAPE] = {1, 1, 0, infer_reshape},
    [MB_OP_PAD] = {1, 1, 0, infer_pad},
    [MB_OP_RESIZE] = {1, 1, 0, infer_resize},
    [MB_OP_IDENTITY] = {1, 1, 0, infer_unary},
    [MB_OP_TRANSPOSE] = {1, 1, 0, mb__infer_transpose},
    [MB_OP_LAYERNORM] = {1, 1, 0, mb__infer_layernorm},
    [MB_OP_GELU] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_ERF] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_TANH] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_EXP] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_LOG] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SQRT] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_RECIPROCAL] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_ABS] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_NEG] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_FLOOR] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_CEIL] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_NOT] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_ELU] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SELU] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SOFTPLUS] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SOFTSIGN] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SIN] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_COS] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_SIGN] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_POW] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_MIN] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_MAX] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_EQUAL] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_LESS] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_GREATER] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_LESS_EQUAL] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_GREATER_EQUAL] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_AND] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_OR] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_XOR] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_WHERE] = {3, 3, 0, mb__infer_where},
    [MB_OP_LOGSOFTMAX] = {1, 1, 0, mb__infer_axis_softmax},
    [MB_OP_REDUCEMEAN] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCESUM] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCEMAX] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCEMIN] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCEPROD] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCESUMSQUARE] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCEL1] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCEL2] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCELOGSUM] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_REDUCELOGSUMEXP] = {1, 1, 0, mb__infer_reduce},
    [MB_OP_SLICE] = {1, 1, 0, mb__infer_slice},
    [MB_OP_GATHER] = {1, 2, 0, mb__infer_gather},
    [MB_OP_EXPAND] = {1, 1, 0, mb__infer_expand},
    [MB_OP_TILE] = {1, 1, 0, mb__infer_tile},
    [MB_OP_CAST] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_INSTANCENORM] = {1, 1, 0, mb__infer_instancenorm},
    [MB_OP_ARGMAX] = {1, 1, 0, mb__infer_argmax},
    [MB_OP_ARGMIN] = {1, 1, 0, mb__infer_argmax},
    [MB_OP_TRILU] = {1, 1, 0, mb__infer_trilu},
    [MB_OP_GATHER_ELEMENTS] = {1, 2, 0, mb__infer_gather_elements},
    [MB_OP_MOD] = {2, 2, 1, mb__infer_binary2},
    [MB_OP_CUMSUM] = {1, 1, 0, mb__infer_axis_softmax},
    [MB_OP_HARDMAX] = {1, 1, 0, mb__infer_axis_softmax},
    [MB_OP_THRESHOLDED_RELU] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_ISINF] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_TAN] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_ROUND] = {1, 1, 0, mb__infer_eltwise1},
    [MB_OP_NLLLOSS] = {2, 3, 0, mb__infer_nllloss},
};
_Static_assert(sizeof(op_infer_table) / sizeof(op_infer_table[0]) == MB_OP_COUNT,
               "every op needs a shape-inference row");

/* Check a node's references to earlier nodes and its parameters; fill in[]. */
static int check_node_links(const mb_graph *g, int idx, shape *in, char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[idx];
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
    return 0;
}

static int infer_node(mb_graph *g, int idx, char *err, size_t errlen)
{
    mb_node *n = &g->nodes[idx];
    shape in[MB_MAX_INPUTS];
    if (check_node_links(g, idx, in, err, errlen))
        return -1;

    /* an op kind without a row keeps one input, then fails as unknown below */
    static const op_infer unknown = {1, 1, 0, NULL};
    const op_infer *row = (n->type >= 0 && n->type < MB_OP_COUNT) ? &op_infer_table[n->type] : &unknown;
    int min_in = row->min_in, max_in = row->max_in;
    if (row->param_operand && n->n_params)
        min_in = max_in = 1;
    if (n->n_inputs < min_in || n->n_inputs > max_in)
        return fail(err, errlen, n, idx, "has %d inputs, expects %d..%d", n->n_inputs, min_in, max_in);

    n->n_weights = 0;
    for (int k = 0; k < n->n_params; k++)
        if (n->type != MB_OP_CONSTANT)
            n->n_weights += mb_tensor_numel(n->params[k]);
    n->local = 0;

    infer_ctx c = {n, &n->a, idx, in, {0, {0}}, -1, err, errlen};
    if (!row->fn)
        return fail(err, errlen, n, idx, "unknown op type %d", (int)n->type);
    if (row->fn(&c))
        return -1;

    if (c.out.ndim > MB_MAX_DIMS)
        return fail(err, errlen, n, idx, "rank %d exceeds %d", c.out.ndim, MB_MAX_DIMS);
    if (numel(&c.out) < 0)
        return fail(err, errlen, n, idx, "output has more than 2^48 elements");
    n->out_ndim = c.out.ndim;
    memcpy(n->out_dims, c.out.d, sizeof(int64_t) * (size_t)c.out.ndim);
    n->out_bytes = numel(&c.out) * (int64_t)sizeof(float);
    n->macs = c.macs < 0 ? numel(&c.out) : c.macs;
    n->out_dtype = mb__infer_dtype(g, idx);
    if (n->out_ndim == 2 || n->out_ndim == 3)
        n->local = mb__token_local(g, idx);
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
    int64_t s = 0; /* saturates: each term is at most MAX_COUNT */
    for (int i = 0; i < g->n_nodes; i++)
        if (__builtin_add_overflow(s, g->nodes[i].macs, &s))
            return INT64_MAX;
    return s;
}

int mb_graph_n_ops(const mb_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += g->nodes[i].type != MB_OP_INPUT && g->nodes[i].type != MB_OP_CONSTANT;
    return n;
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
        /* the attributes up to the transformer operators' fields, then those
         * only when set: hashes of models without them (pinned profiles,
         * baselines) stay what they were */
        size_t head = (offsetof(mb_op_attrs, perm) + 7) & ~(size_t)7; /* the old struct's size, padding included */
        h = fnv(h, &n->a, head);
        const unsigned char *tail = (const unsigned char *)&n->a + head;
        size_t tail_len = sizeof n->a - head, nz = 0;
        for (size_t b = 0; b < tail_len; b++)
            nz |= tail[b];
        if (nz)
            h = fnv(h, tail, tail_len);
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
