/* Shape inference of the operators transformers need (Transpose,
 * LayerNormalization, the elementwise families, Where, reductions, Slice,
 * Gather, Expand, Tile, Cast, InstanceNormalization), and element types.
 * None of these is spatially local in mecbed's region sense except the
 * elementwise ones on 4-D tensors: the others declare local = 0 and run on
 * whole tensors (a split cuts between them, or around them). */
#include <stdio.h>
#include <string.h>

#include "graph_infer.h"

static const char *const dtype_names[] = {"float", "int64", "int32", "bool", "int8", "uint8"};
_Static_assert(sizeof(dtype_names) / sizeof(dtype_names[0]) == MB_DT_COUNT, "every dtype needs a name");

const char *mb_dtype_name(int dt)
{
    return dt >= 0 && dt < MB_DT_COUNT ? dtype_names[dt] : "?";
}

static int norm_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

int mb__infer_transpose(infer_ctx *c)
{
    const shape *in = &c->in[0];
    int R = in->ndim, seen = 0;
    int all_zero = 1;
    for (int i = 0; i < R; i++)
        all_zero &= c->a->perm[i] == 0;
    if (all_zero && R > 1) /* unset: reverse the axes, as ONNX */
        for (int i = 0; i < R; i++)
            c->a->perm[i] = R - 1 - i;
    c->out.ndim = R;
    for (int i = 0; i < R; i++) {
        int p = c->a->perm[i];
        if (p < 0 || p >= R || (seen & (1 << p)))
            return INFER_FAIL(c, "perm[%d] = %d is not a permutation of 0..%d", i, p, R - 1);
        seen |= 1 << p;
        c->out.d[i] = in->d[p];
    }
    for (int i = R; i < MB_MAX_DIMS; i++)
        if (c->a->perm[i])
            return INFER_FAIL(c, "perm has entries beyond rank %d", R);
    c->macs = 0;
    return 0;
}

/* Params of a normalisation over the trailing dims from `axis`: scale (and
 * bias) must broadcast to those dims. */
int mb__infer_layernorm(infer_ctx *c)
{
    const shape *in = &c->in[0];
    int ax = norm_axis(c->a->axis, in->ndim);
    if (ax < 0 || ax >= in->ndim)
        return INFER_FAIL(c, "axis %d out of range for rank %d", c->a->axis, in->ndim);
    c->a->axis = ax;
    if (c->n->n_params < 1 || c->n->n_params > 2)
        return INFER_FAIL(c, "needs scale and optional bias as params");
    shape norm = {in->ndim - ax, {0}};
    memcpy(norm.d, in->d + ax, sizeof(int64_t) * (size_t)norm.ndim);
    for (int k = 0; k < c->n->n_params; k++) {
        shape p = mb__tensor_shape(c->n->params[k]), o;
        if (p.ndim > norm.ndim || mb__broadcast(&p, &norm, &o) || memcmp(o.d, norm.d, sizeof(int64_t) * (size_t)o.ndim))
            return INFER_FAIL(c, "%s does not broadcast to the normalised dims", k ? "bias" : "scale");
    }
    if (c->a->epsilon < 0)
        return INFER_FAIL(c, "epsilon %g is negative", (double)c->a->epsilon);
    c->out = *in;
    int64_t f = mb__numel(in);
    c->macs = f < 0 ? -1 : 5 * f; /* mean, variance, normalise, scale, shift */
    return 0;
}

int mb__infer_eltwise1(infer_ctx *c)
{
    c->out = c->in[0];
    if (c->n->type == MB_OP_CAST && (c->a->dtype < 0 || c->a->dtype >= MB_DT_COUNT))
        return INFER_FAIL(c, "cast to unknown type %d", c->a->dtype);
    c->n->local = c->out.ndim == 4;
    if (c->n->type == MB_OP_GELU)
        c->macs = 8 * mb__numel(&c->out); /* erf or tanh, and four arithmetic ops */
    return 0;
}

/* H and W of this (4-D) output are aligned in op (same or broadcast from 1). */
static int aligned(const shape *op, const shape *out)
{
    for (int ax = 2; ax <= 3; ax++) {
        int i = op->ndim - (4 - ax);
        int64_t d = i >= 0 ? op->d[i] : 1;
        if (d != 1 && d != out->d[ax])
            return 0;
    }
    return 1;
}

int mb__infer_binary2(infer_ctx *c)
{
    mb_node *n = c->n;
    shape b = n->n_params ? mb__tensor_shape(n->params[0]) : c->in[1];
    if (n->n_params)
        n->n_weights = 0; /* a constant operand, not a learned weight */
    if (mb__broadcast(&c->in[0], &b, &c->out))
        return INFER_FAIL(c, "operands do not broadcast");
    n->local = c->out.ndim == 4 && aligned(&c->in[0], &c->out) && aligned(&b, &c->out);
    return 0;
}

int mb__infer_where(infer_ctx *c)
{
    shape t;
    if (mb__broadcast(&c->in[0], &c->in[1], &t) || mb__broadcast(&t, &c->in[2], &c->out))
        return INFER_FAIL(c, "condition, x and y do not broadcast");
    c->n->local = c->out.ndim == 4 && aligned(&c->in[0], &c->out) && aligned(&c->in[1], &c->out) &&
                  aligned(&c->in[2], &c->out);
    return 0;
}

int mb__infer_axis_softmax(infer_ctx *c)
{
    c->out = c->in[0];
    int ax = norm_axis(c->a->axis, c->out.ndim);
    if (ax < 0 || ax >= c->out.ndim)
        return INFER_FAIL(c, "axis %d out of range", c->a->axis);
    c->a->axis = ax;
    return 0;
}

int mb__infer_reduce(infer_ctx *c)
{
    const shape *in = &c->in[0];
    int R = in->ndim;
    if (c->a->axes_mask & ~((1 << R) - 1))
        return INFER_FAIL(c, "reduction axes 0x%x outside rank %d", (unsigned)c->a->axes_mask, R);
    if (c->a->keepdims != 0 && c->a->keepdims != 1)
        return INFER_FAIL(c, "keepdims is %d, must be 0 or 1", c->a->keepdims);
    c->out.ndim = 0;
    for (int i = 0; i < R; i++) {
        if (!(c->a->axes_mask & (1 << i)))
            c->out.d[c->out.ndim++] = in->d[i];
        else if (c->a->keepdims)
            c->out.d[c->out.ndim++] = 1;
    }
    if (c->out.ndim == 0) { /* a scalar: mecbed keeps it as a 1-element 1-D tensor */
        c->out.ndim = 1;
        c->out.d[0] = 1;
    }
    c->macs = mb__numel(in);
    return 0;
}

/* Slice: per input axis, start/end/step already clamped by the importer or
 * builder; here checked again and the output length computed. steps 0: the
 * whole axis. */
int mb__infer_slice(infer_ctx *c)
{
    const shape *in = &c->in[0];
    mb_op_attrs *a = c->a;
    c->out = *in;
    for (int i = 0; i < in->ndim; i++) {
        int64_t len = in->d[i], st = a->starts[i], en = a->ends[i], sp = a->steps[i];
        if (sp == 0)
            continue;
        int64_t cnt;
        if (sp > 0) {
            if (st < 0 || st > len || en < st || en > len)
                return INFER_FAIL(c, "axis %d: slice [%lld:%lld] outside 0..%lld", i, (long long)st,
                                  (long long)en, (long long)len);
            cnt = (en - st + sp - 1) / sp;
        } else {
            if (st < -1 || st >= len || en < -1 || en > st)
                return INFER_FAIL(c, "axis %d: reverse slice [%lld:%lld] outside -1..%lld", i, (long long)st,
                                  (long long)en, (long long)len - 1);
            cnt = (st - en + (-sp) - 1) / (-sp);
        }
        if (cnt <= 0)
            return INFER_FAIL(c, "axis %d: the slice is empty", i);
        c->out.d[i] = cnt;
    }
    for (int i = in->ndim; i < MB_MAX_DIMS; i++)
        if (a->steps[i])
            return INFER_FAIL(c, "slice given for axis %d beyond rank %d", i, in->ndim);
    c->macs = 0;
    return 0;
}

int mb__infer_gather(infer_ctx *c)
{
    mb_node *n = c->n;
    shape data, idx;
    if (n->n_inputs == 2) {
        if (n->n_params)
            return INFER_FAIL(c, "two data inputs and params");
        data = c->in[0];
        idx = c->in[1];
    } else if (n->n_params == 1) {
        data = c->a->gather_table ? mb__tensor_shape(n->params[0]) : c->in[0];
        idx = c->a->gather_table ? c->in[0] : mb__tensor_shape(n->params[0]);
        if (!c->a->gather_table)
            n->n_weights = 0; /* constant indices, not weights */
    } else {
        return INFER_FAIL(c, "needs data and indices (inputs, or one of them params[0])");
    }
    int ax = norm_axis(c->a->axis, data.ndim);
    if (ax < 0 || ax >= data.ndim)
        return INFER_FAIL(c, "axis %d out of range for rank %d", c->a->axis, data.ndim);
    c->a->axis = ax;
    if (data.ndim - 1 + idx.ndim > MB_MAX_DIMS)
        return INFER_FAIL(c, "output rank exceeds %d", MB_MAX_DIMS);
    c->out.ndim = 0;
    for (int i = 0; i < ax; i++)
        c->out.d[c->out.ndim++] = data.d[i];
    for (int i = 0; i < idx.ndim; i++)
        c->out.d[c->out.ndim++] = idx.d[i];
    for (int i = ax + 1; i < data.ndim; i++)
        c->out.d[c->out.ndim++] = data.d[i];
    if (c->out.ndim == 0) {
        c->out.ndim = 1;
        c->out.d[0] = 1;
    }
    c->macs = 0;
    return 0;
}

int mb__infer_expand(infer_ctx *c)
{
    shape t = {c->a->shape_ndim, {0}};
    if (t.ndim < 1 || t.ndim > MB_MAX_DIMS)
        return INFER_FAIL(c, "needs a target shape");
    memcpy(t.d, c->a->shape, sizeof(int64_t) * (size_t)t.ndim);
    for (int i = 0; i < t.ndim; i++)
        if (t.d[i] < 1)
            return INFER_FAIL(c, "target dimension %d is %lld", i, (long long)t.d[i]);
    if (mb__broadcast(&c->in[0], &t, &c->out))
        return INFER_FAIL(c, "input does not broadcast to the target shape");
    c->macs = 0;
    return 0;
}

int mb__infer_tile(infer_ctx *c)
{
    const shape *in = &c->in[0];
    if (c->a->shape_ndim != in->ndim)
        return INFER_FAIL(c, "%d repeats for rank %d", c->a->shape_ndim, in->ndim);
    c->out = *in;
    for (int i = 0; i < in->ndim; i++) {
        if (c->a->shape[i] < 1 || c->a->shape[i] > ((int64_t)1 << 30))
            return INFER_FAIL(c, "repeats[%d] is %lld", i, (long long)c->a->shape[i]);
        if (__builtin_mul_overflow(in->d[i], c->a->shape[i], &c->out.d[i]))
            return INFER_FAIL(c, "dimension %d overflows", i);
    }
    c->macs = 0;
    return 0;
}

int mb__infer_instancenorm(infer_ctx *c)
{
    const shape *in = &c->in[0];
    if (in->ndim < 3)
        return INFER_FAIL(c, "needs at least a 3-D input");
    if (c->n->n_params != 2)
        return INFER_FAIL(c, "needs scale and bias as params");
    for (int k = 0; k < 2; k++)
        if (mb_tensor_numel(c->n->params[k]) != in->d[1])
            return INFER_FAIL(c, "%s has %lld elements, channels are %lld", k ? "bias" : "scale",
                              (long long)mb_tensor_numel(c->n->params[k]), (long long)in->d[1]);
    if (c->a->epsilon < 0)
        return INFER_FAIL(c, "epsilon %g is negative", (double)c->a->epsilon);
    c->out = *in;
    return 0;
}

int mb__infer_argmax(infer_ctx *c)
{
    const shape *in = &c->in[0];
    int ax = norm_axis(c->a->axis, in->ndim);
    if (ax < 0 || ax >= in->ndim)
        return INFER_FAIL(c, "axis %d out of range for rank %d", c->a->axis, in->ndim);
    c->a->axis = ax;
    c->out.ndim = 0;
    for (int i = 0; i < in->ndim; i++)
        if (i != ax)
            c->out.d[c->out.ndim++] = in->d[i];
        else if (c->a->keepdims)
            c->out.d[c->out.ndim++] = 1;
    if (c->out.ndim == 0) {
        c->out.ndim = 1;
        c->out.d[0] = 1;
    }
    c->macs = mb__numel(in);
    return 0;
}

int mb__infer_trilu(infer_ctx *c)
{
    if (c->in[0].ndim < 2)
        return INFER_FAIL(c, "needs at least a 2-D input");
    c->out = c->in[0];
    c->macs = 0;
    return 0;
}

int mb__infer_gather_elements(infer_ctx *c)
{
    shape data = c->in[0];
    shape idx = c->n->n_inputs == 2 ? c->in[1] : (c->n->n_params ? mb__tensor_shape(c->n->params[0]) : data);
    if (c->n->n_inputs == 1 && c->n->n_params != 1)
        return INFER_FAIL(c, "needs indices (input 1 or params[0])");
    if (c->n->n_params)
        c->n->n_weights = 0;
    if (idx.ndim != data.ndim)
        return INFER_FAIL(c, "indices have rank %d, data %d", idx.ndim, data.ndim);
    int ax = norm_axis(c->a->axis, data.ndim);
    if (ax < 0 || ax >= data.ndim)
        return INFER_FAIL(c, "axis %d out of range", c->a->axis);
    c->a->axis = ax;
    for (int i = 0; i < data.ndim; i++)
        if (i != ax && idx.d[i] > data.d[i])
            return INFER_FAIL(c, "indices dimension %d (%lld) exceeds the data's (%lld)", i, (long long)idx.d[i],
                              (long long)data.d[i]);
    c->out = idx;
    c->macs = 0;
    return 0;
}

int mb__infer_nllloss(infer_ctx *c)
{
    const shape *x = &c->in[0], *t = &c->in[1];
    if (x->ndim < 2 || t->ndim != x->ndim - 1)
        return INFER_FAIL(c, "needs input [N, C, ...] and target [N, ...]");
    for (int i = 0; i < t->ndim; i++)
        if (t->d[i] != x->d[i ? i + 1 : 0])
            return INFER_FAIL(c, "target dimension %d (%lld) does not match the input", i, (long long)t->d[i]);
    if (c->n->n_inputs == 3 && (c->in[2].ndim != 1 || c->in[2].d[0] != x->d[1]))
        return INFER_FAIL(c, "weights must be [C]");
    if (c->a->reduction < 0 || c->a->reduction > 2)
        return INFER_FAIL(c, "reduction %d", c->a->reduction);
    if (c->a->reduction == 0) {
        c->out = *t;
    } else {
        c->out.ndim = 1;
        c->out.d[0] = 1;
    }
    c->macs = mb__numel(t);
    return 0;
}

int mb__infer_dtype(const mb_graph *g, int idx)
{
    const mb_node *n = &g->nodes[idx];
    switch (n->type) {
    case MB_OP_INPUT:
    case MB_OP_CAST:
        return n->a.dtype >= 0 && n->a.dtype < MB_DT_COUNT ? n->a.dtype : MB_DT_FLOAT;
    case MB_OP_CONSTANT:
        return n->a.dtype >= 0 && n->a.dtype < MB_DT_COUNT ? n->a.dtype : MB_DT_FLOAT;
    case MB_OP_ARGMAX: case MB_OP_ARGMIN:
        return MB_DT_INT64;
    case MB_OP_ISINF:
        return MB_DT_BOOL;
    case MB_OP_TRILU: case MB_OP_GATHER_ELEMENTS: case MB_OP_MOD: case MB_OP_CUMSUM:
        return g->nodes[n->inputs[0]].out_dtype;
    case MB_OP_EQUAL: case MB_OP_LESS: case MB_OP_GREATER: case MB_OP_LESS_EQUAL:
    case MB_OP_GREATER_EQUAL: case MB_OP_AND: case MB_OP_OR: case MB_OP_XOR: case MB_OP_NOT:
        return MB_DT_BOOL;
    case MB_OP_GATHER:
        return n->n_inputs == 1 && n->a.gather_table ? MB_DT_FLOAT : g->nodes[n->inputs[0]].out_dtype;
    case MB_OP_WHERE:
        return g->nodes[n->inputs[1]].out_dtype;
    case MB_OP_TRANSPOSE: case MB_OP_SLICE: case MB_OP_EXPAND: case MB_OP_TILE: case MB_OP_RESHAPE:
    case MB_OP_FLATTEN: case MB_OP_IDENTITY: case MB_OP_CONCAT: case MB_OP_NEG: case MB_OP_ABS:
    case MB_OP_MIN: case MB_OP_MAX: case MB_OP_ADD: case MB_OP_SUB: case MB_OP_MUL: case MB_OP_DIV:
    case MB_OP_REDUCESUM: case MB_OP_REDUCEMAX: case MB_OP_REDUCEMIN: case MB_OP_REDUCEPROD:
    case MB_OP_SIGN: case MB_OP_RELU:
        return n->n_inputs ? g->nodes[n->inputs[0]].out_dtype : MB_DT_FLOAT;
    default:
        return MB_DT_FLOAT;
    }
}
