/* ONNX operators -> mb_node for the transformer operators: Transpose,
 * LayerNormalization, InstanceNormalization, the elementwise families (Erf,
 * Gelu, Tanh, Exp, Log, Sqrt, Pow, comparisons, logic, ...), Min/Max, Where,
 * LogSoftmax, reductions over any axes, Slice/Split/Gather on run-time data,
 * Expand, Tile and Cast. The constant-only cases of Gather, Slice and Cast
 * are folded before they get here (onnx_fold.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

static const char *out0(const Onnx__NodeProto *np) { return np->output[0]; }

static int din(ox_imp *im, const Onnx__NodeProto *np, int k, mb_node *n)
{
    if (n->n_inputs >= MB_MAX_INPUTS)
        return ox_unsupported(im, "more than %d inputs", MB_MAX_INPUTS);
    int idx;
    if (ox_data(im, np, k, &idx))
        return -1;
    n->inputs[n->n_inputs++] = idx;
    return 0;
}

static int pin(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role, mb_node *n)
{
    if (!ox_const_ok(im, np, k))
        return ox_unsupported(im, "input %d (%s) must be a constant", k, role);
    mb_tensor *p = ox_take_param(im, np, k, role);
    if (!p)
        return -1;
    n->params[n->n_params++] = p;
    return 0;
}

int ox_dtype_of(int onnx_type)
{
    switch (onnx_type) {
    case MB_ONNX_FLOAT: return MB_DT_FLOAT;
    case MB_ONNX_INT64: return MB_DT_INT64;
    case MB_ONNX_INT32: return MB_DT_INT32;
    case MB_ONNX_BOOL: return MB_DT_BOOL;
    case MB_ONNX_INT8: return MB_DT_INT8;
    case MB_ONNX_UINT8: return MB_DT_UINT8;
    default: return -1;
    }
}

/* An integer list from constant input k (opset's newer form) or attribute attr. */
static int ilist(ox_imp *im, const Onnx__NodeProto *np, int k, const char *attr, int64_t *out, int max)
{
    if (k >= 0 && ox_has(np, k)) {
        const mb_onnx_tensor *t = ox_const(im, np, k, attr);
        if (!t)
            return -2;
        if (t->numel > max)
            return ox_unsupported(im, "%s has %lld values (at most %d)", attr, (long long)t->numel, max), -2;
        for (int64_t i = 0; i < t->numel; i++)
            out[i] = mb_onnx_tensor_geti(t, i);
        return (int)t->numel;
    }
    return ox_attr_ints(im, np, attr, out, max);
}

static int cv_transpose(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_TRANSPOSE;
    int64_t p[MB_MAX_DIMS];
    int c = ox_attr_ints(im, np, "perm", p, MB_MAX_DIMS);
    if (c == -2)
        return -1;
    for (int i = 0; i < c; i++) {
        if (p[i] < 0 || p[i] >= MB_MAX_DIMS)
            return ox_fail(im, "perm[%d] = %lld is out of range", i, (long long)p[i]);
        n->a.perm[i] = (int)p[i];
    }
    if (din(im, np, 0, n))
        return -1;
    if (c > 0) {
        int nd;
        int64_t dims[MB_MAX_DIMS];
        if (ox_shape(im, n->inputs[0], &nd, dims))
            return -1;
        if (c != nd)
            return ox_fail(im, "perm has %d entries for rank %d", c, nd);
    }
    return 0;
}

static int ln_extra_outputs(ox_imp *im, const Onnx__NodeProto *np, const mb_node *ln);

static int cv_layernorm(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_LAYERNORM;
    n->a.axis = (int)ox_attr_i(np, "axis", -1);
    n->a.epsilon = ox_attr_f(np, "epsilon", 1e-5f);
    if (ox_attr_i(np, "stash_type", 1) != 1)
        return ox_unsupported(im, "stash_type other than float");
    if (din(im, np, 0, n) || pin(im, np, 1, "Scale", n))
        return -1;
    if (ox_has(np, 2) && pin(im, np, 2, "B", n))
        return -1;
    return ln_extra_outputs(im, np, n);
}

static int cv_instancenorm(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_INSTANCENORM;
    n->a.epsilon = ox_attr_f(np, "epsilon", 1e-5f);
    return din(im, np, 0, n) || pin(im, np, 1, "scale", n) || pin(im, np, 2, "B", n) ? -1 : 0;
}

static const struct { const char *name; mb_op_type t; } unary_ops[] = {
    {"Erf", MB_OP_ERF}, {"Tanh", MB_OP_TANH}, {"Exp", MB_OP_EXP}, {"Log", MB_OP_LOG}, {"Sqrt", MB_OP_SQRT},
    {"Reciprocal", MB_OP_RECIPROCAL}, {"Abs", MB_OP_ABS}, {"Floor", MB_OP_FLOOR}, {"Ceil", MB_OP_CEIL},
    {"Not", MB_OP_NOT}, {"Elu", MB_OP_ELU}, {"Selu", MB_OP_SELU}, {"Softplus", MB_OP_SOFTPLUS},
    {"Softsign", MB_OP_SOFTSIGN}, {"Sin", MB_OP_SIN}, {"Cos", MB_OP_COS}, {"Sign", MB_OP_SIGN}, {"Gelu", MB_OP_GELU},
    {"Pow", MB_OP_POW}, {"Equal", MB_OP_EQUAL}, {"Less", MB_OP_LESS}, {"Greater", MB_OP_GREATER},
    {"LessOrEqual", MB_OP_LESS_EQUAL}, {"GreaterOrEqual", MB_OP_GREATER_EQUAL}, {"And", MB_OP_AND},
    {"Or", MB_OP_OR}, {"Xor", MB_OP_XOR}, {"Min", MB_OP_MIN}, {"Max", MB_OP_MAX},
    {"ReduceMean", MB_OP_REDUCEMEAN}, {"ReduceSum", MB_OP_REDUCESUM}, {"ReduceMax", MB_OP_REDUCEMAX},
    {"ReduceMin", MB_OP_REDUCEMIN}, {"ReduceProd", MB_OP_REDUCEPROD}, {"ReduceSumSquare", MB_OP_REDUCESUMSQUARE},
    {"ReduceL1", MB_OP_REDUCEL1}, {"ReduceL2", MB_OP_REDUCEL2}, {"ReduceLogSum", MB_OP_REDUCELOGSUM},
    {"ReduceLogSumExp", MB_OP_REDUCELOGSUMEXP}, {"ThresholdedRelu", MB_OP_THRESHOLDED_RELU},
    {"IsInf", MB_OP_ISINF}, {"Tan", MB_OP_TAN}, {"Mod", MB_OP_MOD}, {"ArgMax", MB_OP_ARGMAX},
    {"ArgMin", MB_OP_ARGMIN}, {"Hardmax", MB_OP_HARDMAX}, {"Round", MB_OP_ROUND},
};

static mb_op_type op_of(const char *name)
{
    for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++)
        if (!strcmp(unary_ops[i].name, name))
            return unary_ops[i].t;
    return MB_OP_COUNT;
}

static int cv_unary2(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = op_of(np->op_type);
    if (n->type == MB_OP_ELU) {
        n->a.alpha = ox_attr_f(np, "alpha", 1.0f);
    } else if (n->type == MB_OP_SELU) {
        n->a.alpha = ox_attr_f(np, "alpha", 1.67326319217681884765625f);
        n->a.beta = ox_attr_f(np, "gamma", 1.05070102214813232421875f);
    } else if (n->type == MB_OP_THRESHOLDED_RELU) {
        n->a.alpha = ox_attr_f(np, "alpha", 1.0f);
    } else if (n->type == MB_OP_ISINF) {
        n->a.alpha = (float)(ox_attr_i(np, "detect_positive", 1) != 0);
        n->a.beta = (float)(ox_attr_i(np, "detect_negative", 1) != 0);
    } else if (n->type == MB_OP_GELU) {
        char buf[16];
        const char *s = ox_attr_s(np, "approximate", "none", buf, sizeof buf);
        if (strcmp(s, "none") && strcmp(s, "tanh"))
            return ox_fail(im, "approximate is '%s', must be none or tanh", s);
        n->a.gelu_tanh = !strcmp(s, "tanh");
    }
    return din(im, np, 0, n);
}

static int cv_binary2(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = op_of(np->op_type);
    if (n->type == MB_OP_MOD && ox_attr_i(np, "fmod", 0))
        return ox_unsupported(im, "Mod with fmod = 1");
    if (din(im, np, 0, n))
        return -1;
    if (ox_is_const(im, np, 1)) {
        const mb_onnx_tensor *t = ox_const(im, np, 1, "operand B");
        if (!t)
            return -1;
        if (t->f)
            return pin(im, np, 1, "operand B", n);
    }
    return din(im, np, 1, n);
}

/* Min, Max: variadic, folded left to right. */
static int cv_minmax(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    mb_op_type t = op_of(np->op_type);
    if (np->n_input < 1)
        return ox_fail(im, "has no inputs");
    if (np->n_input == 1) {
        n->type = MB_OP_IDENTITY;
        return din(im, np, 0, n);
    }
    n->type = t;
    if (din(im, np, 0, n) || din(im, np, 1, n))
        return -1;
    for (size_t k = 2; k < np->n_input; k++) {
        char nm[MB_NAME_LEN + 16];
        snprintf(nm, sizeof nm, "%.*s/%zu", MB_NAME_LEN - 16, out0(np), k - 1);
        int prev = ox_add(im, n, nm);
        if (prev < 0)
            return -1;
        memset(n, 0, sizeof *n);
        n->type = t;
        n->n_inputs = 1;
        n->inputs[0] = prev;
        if (din(im, np, (int)k, n))
            return -1;
    }
    return 0;
}

static int cv_where(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_WHERE;
    return din(im, np, 0, n) || din(im, np, 1, n) || din(im, np, 2, n) ? -1 : 0;
}

static int cv_logsoftmax(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_LOGSOFTMAX;
    if (din(im, np, 0, n))
        return -1;
    int64_t axis = ox_attr_i(np, "axis", im->opset >= 13 ? -1 : 1);
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    if (axis < 0)
        axis += nd;
    if (axis < 0 || axis >= nd)
        return ox_fail(im, "axis %lld out of range for rank %d", (long long)ox_attr_i(np, "axis", 1), nd);
    if (im->opset >= 13 || axis == nd - 1) {
        n->a.axis = (int)axis;
        return 0;
    }
    /* before opset 13: over everything from axis on (Flatten, LogSoftmax, Reshape) */
    char nm[MB_NAME_LEN + 16];
    mb_node f = *n;
    f.type = MB_OP_FLATTEN;
    f.a.axis = (int)axis;
    snprintf(nm, sizeof nm, "%.*s/flatten", MB_NAME_LEN - 16, out0(np));
    int fi = ox_add(im, &f, nm);
    if (fi < 0)
        return -1;
    mb_node s;
    memset(&s, 0, sizeof s);
    s.type = MB_OP_LOGSOFTMAX;
    s.a.axis = 1;
    s.n_inputs = 1;
    s.inputs[0] = fi;
    snprintf(nm, sizeof nm, "%.*s/logsoftmax", MB_NAME_LEN - 16, out0(np));
    int si = ox_add(im, &s, nm);
    if (si < 0)
        return -1;
    memset(n, 0, sizeof *n);
    n->type = MB_OP_RESHAPE;
    n->n_inputs = 1;
    n->inputs[0] = si;
    n->a.shape_ndim = nd;
    memcpy(n->a.shape, dims, sizeof(int64_t) * (size_t)nd);
    return 0;
}

/* Reductions: axes from the attribute (or input 1 where the opset moved it
 * there), keepdims, noop_with_empty_axes. */
int ox_cv_reduce(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    memset(n, 0, sizeof *n);
    n->type = op_of(np->op_type);
    if (din(im, np, 0, n))
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS], axes[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    int na = ilist(im, np, 1, "axes", axes, MB_MAX_DIMS);
    if (na == -2)
        return -1;
    n->a.keepdims = (int)ox_attr_i(np, "keepdims", 1) != 0;
    if (na <= 0) {
        if (ox_attr_i(np, "noop_with_empty_axes", 0)) {
            n->type = MB_OP_IDENTITY;
            return 0;
        }
        n->a.axes_mask = (1 << nd) - 1;
        return 0;
    }
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (a < 0 || a >= nd)
            return ox_fail(im, "axis %lld is out of range for rank %d", (long long)axes[i], nd);
        n->a.axes_mask |= 1 << a;
    }
    return 0;
}

/* Clamp one Slice axis the ONNX way; fills start, end, step of a. */
static int slice_axis(ox_imp *im, mb_op_attrs *a, int ax, int64_t len, int64_t st, int64_t en, int64_t sp)
{
    if (sp == 0)
        return ox_fail(im, "step 0 on axis %d", ax);
    if (st < 0)
        st += len;
    if (en < 0)
        en += len;
    if (sp > 0) {
        st = st < 0 ? 0 : st > len ? len : st;
        en = en < 0 ? 0 : en > len ? len : en;
        if (en < st)
            en = st;
    } else {
        st = st < 0 ? -1 : st > len - 1 ? len - 1 : st;
        en = en < -1 ? -1 : en > len - 1 ? len - 1 : en;
        if (en > st)
            en = st;
    }
    if (st == en)
        return ox_unsupported(im, "a Slice that leaves axis %d empty", ax);
    a->starts[ax] = st;
    a->ends[ax] = en;
    a->steps[ax] = sp;
    return 0;
}

static int cv_slice(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_SLICE;
    if (din(im, np, 0, n))
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS], st[MB_MAX_DIMS], en[MB_MAX_DIMS], ax[MB_MAX_DIMS], sp[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    int v10 = im->opset >= 10;
    int ns = ilist(im, np, v10 ? 1 : -1, "starts", st, MB_MAX_DIMS);
    int ne = ilist(im, np, v10 ? 2 : -1, "ends", en, MB_MAX_DIMS);
    int na = ilist(im, np, v10 ? 3 : -1, "axes", ax, MB_MAX_DIMS);
    int nsp = v10 ? ilist(im, np, 4, "steps", sp, MB_MAX_DIMS) : -1;
    if (ns == -2 || ne == -2 || na == -2 || nsp == -2)
        return -1;
    if (ns < 0 || ns != ne)
        return ox_fail(im, "starts and ends must be given with the same length");
    if (na >= 0 && na != ns)
        return ox_fail(im, "axes has %d values, starts %d", na, ns);
    if (nsp >= 0 && nsp != ns)
        return ox_fail(im, "steps has %d values, starts %d", nsp, ns);
    for (int i = 0; i < ns; i++) {
        int64_t a = na >= 0 ? ax[i] : i;
        if (a < 0)
            a += nd;
        if (a < 0 || a >= nd)
            return ox_fail(im, "axis %lld out of range for rank %d", (long long)(na >= 0 ? ax[i] : i), nd);
        if (n->a.steps[a])
            return ox_fail(im, "axis %lld is sliced twice", (long long)a);
        if (slice_axis(im, &n->a, (int)a, dims[a], st[i], en[i], nsp >= 0 ? sp[i] : 1))
            return -1;
    }
    return 0;
}

/* Split: one Slice node per output along axis. */
static int cv_split(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    int src;
    if (ox_data(im, np, 0, &src))
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS], parts[MB_MAX_OUTPUTS * 4];
    if (ox_shape(im, src, &nd, dims))
        return -1;
    int64_t axis = ox_attr_i(np, "axis", 0);
    if (axis < 0)
        axis += nd;
    if (axis < 0 || axis >= nd)
        return ox_fail(im, "axis %lld out of range for rank %d", (long long)ox_attr_i(np, "axis", 0), nd);
    int no = (int)np->n_output;
    if (no < 1 || no > MB_MAX_OUTPUTS * 4)
        return ox_unsupported(im, "Split into %d outputs", no);
    int c = ilist(im, np, im->opset >= 13 ? 1 : -1, "split", parts, MB_MAX_OUTPUTS * 4);
    if (c == -2)
        return -1;
    int64_t len = dims[axis];
    if (c < 0) {
        int64_t each = (len + no - 1) / no; /* equal parts; opset 18: the last one smaller */
        for (int i = 0; i < no; i++)
            parts[i] = i < no - 1 ? each : len - each * (no - 1);
        c = no;
    }
    if (c != no)
        return ox_fail(im, "split has %d sizes for %d outputs", c, no);
    int64_t at = 0;
    for (int i = 0; i < no; i++) {
        if (parts[i] <= 0 || at + parts[i] > len)
            return ox_unsupported(im, "split sizes that leave an output empty or exceed %lld", (long long)len);
        memset(n, 0, sizeof *n);
        n->type = MB_OP_SLICE;
        n->n_inputs = 1;
        n->inputs[0] = src;
        n->a.starts[axis] = at;
        n->a.ends[axis] = at + parts[i];
        n->a.steps[axis] = 1;
        at += parts[i];
        if (!np->output[i] || !*np->output[i])
            continue;
        int idx = ox_add(im, n, np->output[i]);
        if (idx < 0 || ox_bind_node(im, np->output[i], idx))
            return -1;
    }
    if (at != len)
        return ox_fail(im, "split sizes add up to %lld, the axis has %lld", (long long)at, (long long)len);
    memset(n, 0, sizeof *n);
    return 1;
}

/* Integer indices as an fp32 param: every value exact and in range. */
static mb_tensor *index_param(ox_imp *im, const mb_onnx_tensor *t, int64_t len)
{
    if (!t->i) {
        ox_fail(im, "indices must be integers, they are %s", mb_onnx_type_name(t->data_type));
        return NULL;
    }
    for (int64_t k = 0; k < t->numel; k++)
        if (t->i[k] < -len || t->i[k] >= len) {
            ox_fail(im, "index %lld is out of range for a dimension of %lld", (long long)t->i[k], (long long)len);
            return NULL;
        }
    mb_tensor *p = mb_onnx_tensor_to_mb(t);
    if (!p)
        ox_fail(im, "out of memory");
    if (p && p->ndim == 0) {
        p->ndim = 1; /* mecbed has no rank 0: a scalar index keeps a 1-element axis, removed below */
        p->dims[0] = 1;
    }
    return p;
}

static int cv_gather(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_GATHER;
    n->a.axis = (int)ox_attr_i(np, "axis", 0);
    int scalar_idx = 0;
    if (ox_is_const(im, np, 1)) {
        const mb_onnx_tensor *ix = ox_const(im, np, 1, "indices");
        if (!ix || din(im, np, 0, n))
            return -1;
        int nd;
        int64_t dims[MB_MAX_DIMS];
        if (ox_shape(im, n->inputs[0], &nd, dims))
            return -1;
        int ax = n->a.axis < 0 ? n->a.axis + nd : n->a.axis;
        if (ax < 0 || ax >= nd)
            return ox_fail(im, "axis %d out of range for rank %d", n->a.axis, nd);
        scalar_idx = ix->ndim == 0;
        if (!(n->params[0] = index_param(im, ix, dims[ax])))
            return -1;
        n->n_params = 1;
    } else if (ox_is_const(im, np, 0)) {
        const mb_onnx_tensor *d = ox_const(im, np, 0, "data");
        if (!d || !d->f)
            return d ? ox_unsupported(im, "a Gather table of type %s", mb_onnx_type_name(d->data_type)) : -1;
        n->a.gather_table = 1;
        if (din(im, np, 1, n) || pin(im, np, 0, "data", n))
            return -1;
    } else if (din(im, np, 0, n) || din(im, np, 1, n)) {
        return -1;
    }
    if (!scalar_idx)
        return 0;
    /* a scalar index removes the axis: Gather keeps it as 1, a Reshape drops it */
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/gather", MB_NAME_LEN - 16, out0(np));
    int gi = ox_add(im, n, nm);
    if (gi < 0)
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, gi, &nd, dims))
        return -1;
    int ax = im->g->nodes[gi].a.axis;
    memset(n, 0, sizeof *n);
    n->type = MB_OP_RESHAPE;
    n->n_inputs = 1;
    n->inputs[0] = gi;
    if (nd == 1)
        return ox_unsupported(im, "a Gather whose result is a scalar");
    for (int i = 0, o = 0; i < nd; i++)
        if (i != ax)
            n->a.shape[o++] = dims[i];
    n->a.shape_ndim = nd - 1;
    return 0;
}

static int shape_input(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role, mb_node *n)
{
    int64_t v[MB_MAX_DIMS];
    int c = ilist(im, np, k, role, v, MB_MAX_DIMS);
    if (c == -2)
        return -1;
    if (c < 1)
        return ox_unsupported(im, "%s is empty", role);
    n->a.shape_ndim = c;
    memcpy(n->a.shape, v, sizeof(int64_t) * (size_t)c);
    return 0;
}

static int cv_expand(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_EXPAND;
    if (din(im, np, 0, n) || shape_input(im, np, 1, "shape", n))
        return -1;
    /* ONNX Expand broadcasts both ways: a 1 in the target keeps the input's dim */
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    int R = nd > n->a.shape_ndim ? nd : n->a.shape_ndim;
    int64_t t[MB_MAX_DIMS];
    for (int i = 0; i < R; i++) {
        int ia = i - (R - nd), ib = i - (R - n->a.shape_ndim);
        int64_t da = ia >= 0 ? dims[ia] : 1, db = ib >= 0 ? n->a.shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ox_fail(im, "input dim %lld does not broadcast to %lld", (long long)da, (long long)db);
        t[i] = da > db ? da : db;
    }
    n->a.shape_ndim = R;
    memcpy(n->a.shape, t, sizeof(int64_t) * (size_t)R);
    return 0;
}

static int cv_tile(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_TILE;
    return din(im, np, 0, n) || shape_input(im, np, 1, "repeats", n) ? -1 : 0;
}

static int cv_cast(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_CAST;
    int64_t to = ox_attr_i(np, "to", 0);
    int dt = ox_dtype_of((int)to);
    if (dt < 0)
        return ox_unsupported(im, "Cast of run-time data to %s", mb_onnx_type_name((int)to));
    n->a.dtype = dt;
    return din(im, np, 0, n);
}

static int cv_argmax(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = op_of(np->op_type);
    n->a.axis = (int)ox_attr_i(np, "axis", 0);
    n->a.keepdims = ox_attr_i(np, "keepdims", 1) != 0;
    n->a.select_last = ox_attr_i(np, "select_last_index", 0) != 0;
    return din(im, np, 0, n);
}

static int cv_hardmax(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_HARDMAX;
    if (din(im, np, 0, n))
        return -1;
    int64_t axis = ox_attr_i(np, "axis", im->opset >= 13 ? -1 : 1);
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    if (axis < 0)
        axis += nd;
    if (im->opset < 13 && axis != nd - 1)
        return ox_unsupported(im, "Hardmax before opset 13 over axes %lld..%d (flattened)", (long long)axis, nd - 1);
    n->a.axis = (int)axis;
    return 0;
}

static int cv_cumsum(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_CUMSUM;
    n->a.exclusive = ox_attr_i(np, "exclusive", 0) != 0;
    n->a.reverse = ox_attr_i(np, "reverse", 0) != 0;
    const mb_onnx_tensor *ax = ox_const(im, np, 1, "axis");
    if (!ax)
        return -1;
    if (ax->numel != 1)
        return ox_fail(im, "axis must be a scalar");
    n->a.axis = (int)mb_onnx_tensor_geti(ax, 0);
    return din(im, np, 0, n);
}

static int cv_trilu(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_TRILU;
    n->a.upper = ox_attr_i(np, "upper", 1) != 0;
    if (ox_has(np, 1)) {
        const mb_onnx_tensor *k = ox_const(im, np, 1, "k");
        if (!k)
            return -1;
        if (k->numel != 1)
            return ox_fail(im, "k must be a scalar");
        n->a.diag_k = mb_onnx_tensor_geti(k, 0);
    }
    return din(im, np, 0, n);
}

static int cv_gather_elements(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_GATHER_ELEMENTS;
    n->a.axis = (int)ox_attr_i(np, "axis", 0);
    return din(im, np, 0, n) || din(im, np, 1, n) ? -1 : 0;
}

/* Mean(a, b, ...) = (a + b + ...) * (1/n). */
static int cv_mean(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    if (np->n_input < 1)
        return ox_fail(im, "has no inputs");
    mb_node s;
    memset(&s, 0, sizeof s);
    s.type = MB_OP_IDENTITY;
    if (din(im, np, 0, &s))
        return -1;
    int acc = -1;
    for (size_t k = 1; k < np->n_input; k++) {
        char nm[MB_NAME_LEN + 16];
        snprintf(nm, sizeof nm, "%.*s/sum%zu", MB_NAME_LEN - 16, out0(np), k);
        mb_node a;
        memset(&a, 0, sizeof a);
        a.type = MB_OP_ADD;
        a.n_inputs = 1;
        a.inputs[0] = acc < 0 ? s.inputs[0] : acc;
        if (din(im, np, (int)k, &a) || (acc = ox_add(im, &a, nm)) < 0)
            return -1;
    }
    n->type = MB_OP_MUL;
    n->n_inputs = 1;
    n->inputs[0] = acc < 0 ? s.inputs[0] : acc;
    int64_t one = 1;
    n->params[0] = mb_tensor_new(1, &one);
    if (!n->params[0])
        return ox_fail(im, "out of memory");
    n->params[0]->data[0] = 1.0f / (float)np->n_input;
    n->n_params = 1;
    return 0;
}

/* CastLike: Cast to input 1's element type. */
static int cv_castlike(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_CAST;
    ox_val *v = ox_has(np, 1) ? ox_lookup(im, np->input[1]) : NULL;
    if (!v)
        return ox_fail(im, "input 1 (target_type) is missing");
    int t = -1;
    if (v->c)
        t = v->c->data_type;
    else if (v->vi && v->vi->type && v->vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        t = v->vi->type->tensor_type->elem_type;
    int dt = ox_dtype_of(t);
    if (dt < 0)
        return ox_unsupported(im, "CastLike to %s", t < 0 ? "an unknown type" : mb_onnx_type_name(t));
    n->a.dtype = dt;
    return din(im, np, 0, n);
}

/* DepthToSpace / SpaceToDepth: Reshape, Transpose, Reshape (ONNX's own
 * definition of both, DCR and CRD modes). */
static int cv_space_depth(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    int x;
    if (ox_data(im, np, 0, &x))
        return -1;
    int nd;
    int64_t d[MB_MAX_DIMS];
    if (ox_shape(im, x, &nd, d))
        return -1;
    int64_t bs = ox_attr_i(np, "blocksize", 0);
    if (nd != 4 || bs < 1)
        return ox_fail(im, "needs a 4-D input and blocksize >= 1");
    int d2s = np->op_type[0] == 'D';
    char mbuf[8];
    int crd = d2s && !strcmp(ox_attr_s(np, "mode", "DCR", mbuf, sizeof mbuf), "CRD");
    int64_t N = d[0], C = d[1], H = d[2], W = d[3];
    mb_node r;
    memset(&r, 0, sizeof r);
    r.type = MB_OP_RESHAPE;
    r.n_inputs = 1;
    r.inputs[0] = x;
    int perm[6];
    int64_t fin[4];
    if (d2s) {
        if (C % (bs * bs))
            return ox_fail(im, "channels %lld not divisible by blocksize^2", (long long)C);
        int64_t c2 = C / (bs * bs);
        int64_t a[6] = {N, bs, bs, c2, H, W}, b[6] = {N, c2, bs, bs, H, W};
        memcpy(r.a.shape, crd ? b : a, sizeof a);
        int pa[6] = {0, 3, 4, 1, 5, 2}, pb[6] = {0, 1, 4, 2, 5, 3};
        memcpy(perm, crd ? pb : pa, sizeof perm);
        int64_t f[4] = {N, c2, H * bs, W * bs};
        memcpy(fin, f, sizeof f);
    } else {
        if (H % bs || W % bs)
            return ox_fail(im, "height and width must be divisible by blocksize");
        int64_t a[6] = {N, C, H / bs, bs, W / bs, bs};
        memcpy(r.a.shape, a, sizeof a);
        int pa[6] = {0, 3, 5, 1, 2, 4};
        memcpy(perm, pa, sizeof perm);
        int64_t f[4] = {N, C * bs * bs, H / bs, W / bs};
        memcpy(fin, f, sizeof f);
    }
    r.a.shape_ndim = 6;
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/split", MB_NAME_LEN - 16, out0(np));
    int ri = ox_add(im, &r, nm);
    if (ri < 0)
        return -1;
    mb_node t;
    memset(&t, 0, sizeof t);
    t.type = MB_OP_TRANSPOSE;
    t.n_inputs = 1;
    t.inputs[0] = ri;
    memcpy(t.a.perm, perm, sizeof perm);
    snprintf(nm, sizeof nm, "%.*s/permute", MB_NAME_LEN - 16, out0(np));
    int ti = ox_add(im, &t, nm);
    if (ti < 0)
        return -1;
    n->type = MB_OP_RESHAPE;
    n->n_inputs = 1;
    n->inputs[0] = ti;
    n->a.shape_ndim = 4;
    memcpy(n->a.shape, fin, sizeof fin);
    return 0;
}

static int reduction_attr(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    char buf[16];
    const char *r = ox_attr_s(np, "reduction", "mean", buf, sizeof buf);
    n->a.reduction = !strcmp(r, "none") ? 0 : !strcmp(r, "mean") ? 1 : !strcmp(r, "sum") ? 2 : -1;
    if (n->a.reduction < 0)
        return ox_fail(im, "reduction '%s' (none, mean or sum)", r);
    n->a.has_ignore = ox_attr(np, "ignore_index") != NULL;
    n->a.ignore_index = ox_attr_i(np, "ignore_index", 0);
    return 0;
}

static int cv_nllloss(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_NLLLOSS;
    if (reduction_attr(im, np, n) || din(im, np, 0, n) || din(im, np, 1, n))
        return -1;
    return ox_has(np, 2) ? din(im, np, 2, n) : 0;
}

/* SoftmaxCrossEntropyLoss = NegativeLogLikelihoodLoss(LogSoftmax(scores, axis 1));
 * output 1 (log_prob), when used, is the LogSoftmax. */
static int cv_sce(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    mb_node ls;
    memset(&ls, 0, sizeof ls);
    ls.type = MB_OP_LOGSOFTMAX;
    ls.a.axis = 1;
    if (din(im, np, 0, &ls))
        return -1;
    char nm[MB_NAME_LEN + 16];
    int has_lp = np->n_output > 1 && np->output[1] && *np->output[1];
    snprintf(nm, sizeof nm, "%.*s", MB_NAME_LEN - 16, has_lp ? np->output[1] : out0(np));
    if (!has_lp)
        snprintf(nm + strlen(nm), sizeof nm - strlen(nm), "/log_prob");
    int li = ox_add(im, &ls, nm);
    if (li < 0 || (has_lp && ox_bind_node(im, np->output[1], li)))
        return -1;
    n->type = MB_OP_NLLLOSS;
    n->n_inputs = 1;
    n->inputs[0] = li;
    if (reduction_attr(im, np, n) || din(im, np, 1, n))
        return -1;
    return ox_has(np, 2) ? din(im, np, 2, n) : 0;
}

/* LayerNormalization's optional outputs Mean and InvStdDev, as the nodes
 * that compute them (ReduceMean; 1 / sqrt(mean((x - mean)^2) + eps)). */
static int ln_extra_outputs(ox_imp *im, const Onnx__NodeProto *np, const mb_node *ln)
{
    int want_mean = np->n_output > 1 && np->output[1] && *np->output[1];
    int want_inv = np->n_output > 2 && np->output[2] && *np->output[2];
    if (!want_mean && !want_inv)
        return 0;
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, ln->inputs[0], &nd, dims))
        return -1;
    int ax = ln->a.axis < 0 ? ln->a.axis + nd : ln->a.axis;
    if (ax < 0 || ax >= nd)
        return ox_fail(im, "axis %d out of range", ln->a.axis);
    char nm[MB_NAME_LEN + 16];
    mb_node m;
    memset(&m, 0, sizeof m);
    m.type = MB_OP_REDUCEMEAN;
    m.a.keepdims = 1;
    m.a.axes_mask = ((1 << nd) - 1) & ~((1 << ax) - 1);
    m.n_inputs = 1;
    m.inputs[0] = ln->inputs[0];
    snprintf(nm, sizeof nm, "%.*s", MB_NAME_LEN - 16, want_mean ? np->output[1] : "ln_mean");
    int mi = ox_add(im, &m, nm);
    if (mi < 0 || (want_mean && ox_bind_node(im, np->output[1], mi)))
        return -1;
    if (!want_inv)
        return 0;
    mb_node d = {.type = MB_OP_SUB, .n_inputs = 2, .inputs = {ln->inputs[0], mi}};
    snprintf(nm, sizeof nm, "%.*s/dev", MB_NAME_LEN - 16, np->output[2]);
    int di = ox_add(im, &d, nm);
    mb_node sq = {.type = MB_OP_MUL, .n_inputs = 2, .inputs = {di, di}};
    snprintf(nm, sizeof nm, "%.*s/sq", MB_NAME_LEN - 16, np->output[2]);
    int si = di < 0 ? -1 : ox_add(im, &sq, nm);
    mb_node v = m;
    v.inputs[0] = si;
    snprintf(nm, sizeof nm, "%.*s/var", MB_NAME_LEN - 16, np->output[2]);
    int vi = si < 0 ? -1 : ox_add(im, &v, nm);
    mb_node e = {.type = MB_OP_ADD, .n_inputs = 1, .inputs = {vi}, .n_params = 1};
    int64_t one = 1;
    e.params[0] = mb_tensor_new(1, &one);
    if (!e.params[0] || vi < 0)
        return e.params[0] ? -1 : ox_fail(im, "out of memory");
    e.params[0]->data[0] = ln->a.epsilon;
    snprintf(nm, sizeof nm, "%.*s/eps", MB_NAME_LEN - 16, np->output[2]);
    int ei = ox_add(im, &e, nm);
    mb_node r = {.type = MB_OP_SQRT, .n_inputs = 1, .inputs = {ei}};
    snprintf(nm, sizeof nm, "%.*s/std", MB_NAME_LEN - 16, np->output[2]);
    int ri = ei < 0 ? -1 : ox_add(im, &r, nm);
    mb_node inv = {.type = MB_OP_RECIPROCAL, .n_inputs = 1, .inputs = {ri}};
    int ii = ri < 0 ? -1 : ox_add(im, &inv, np->output[2]);
    return ii < 0 || ox_bind_node(im, np->output[2], ii) ? -1 : 0;
}

static int cv_einsum(ox_imp *im, const Onnx__NodeProto *np, mb_node *n); /* below */

typedef struct tf_op {
    const char *name;
    int (*fn)(ox_imp *, const Onnx__NodeProto *, mb_node *);
    const char *attrs;
} tf_op;

static const tf_op tf_ops[] = {
    {"Transpose", cv_transpose, "perm"},
    {"LayerNormalization", cv_layernorm, "axis epsilon stash_type"},
    {"InstanceNormalization", cv_instancenorm, "epsilon"},
    {"Erf", cv_unary2, ""}, {"Tanh", cv_unary2, ""}, {"Exp", cv_unary2, ""}, {"Log", cv_unary2, ""},
    {"Sqrt", cv_unary2, ""}, {"Reciprocal", cv_unary2, ""}, {"Abs", cv_unary2, ""}, {"Floor", cv_unary2, ""},
    {"Ceil", cv_unary2, ""}, {"Not", cv_unary2, ""}, {"Elu", cv_unary2, "alpha"}, {"Selu", cv_unary2, "alpha gamma"},
    {"Softplus", cv_unary2, ""}, {"Softsign", cv_unary2, ""}, {"Sin", cv_unary2, ""}, {"Cos", cv_unary2, ""},
    {"Sign", cv_unary2, ""}, {"Gelu", cv_unary2, "approximate"},
    {"Pow", cv_binary2, ""}, {"Equal", cv_binary2, ""}, {"Less", cv_binary2, ""}, {"Greater", cv_binary2, ""},
    {"LessOrEqual", cv_binary2, ""}, {"GreaterOrEqual", cv_binary2, ""}, {"And", cv_binary2, ""},
    {"Or", cv_binary2, ""}, {"Xor", cv_binary2, ""},
    {"Min", cv_minmax, ""}, {"Max", cv_minmax, ""},
    {"Where", cv_where, ""},
    {"LogSoftmax", cv_logsoftmax, "axis"},
    {"ReduceSum", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceMax", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceMin", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceProd", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceSumSquare", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceL1", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceL2", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceLogSum", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"ReduceLogSumExp", ox_cv_reduce, "axes keepdims noop_with_empty_axes"},
    {"Slice", cv_slice, "starts ends axes"},
    {"Split", cv_split, "axis split num_outputs"},
    {"Gather", cv_gather, "axis"},
    {"Expand", cv_expand, ""},
    {"Tile", cv_tile, ""},
    {"Cast", cv_cast, "to saturate"},
    {"ThresholdedRelu", cv_unary2, "alpha"}, {"IsInf", cv_unary2, "detect_positive detect_negative"},
    {"Tan", cv_unary2, ""}, {"Mod", cv_binary2, "fmod"},
    {"ArgMax", cv_argmax, "axis keepdims select_last_index"},
    {"ArgMin", cv_argmax, "axis keepdims select_last_index"},
    {"Hardmax", cv_hardmax, "axis"},
    {"CumSum", cv_cumsum, "exclusive reverse"},
    {"Trilu", cv_trilu, "upper"},
    {"GatherElements", cv_gather_elements, "axis"},
    {"Mean", cv_mean, ""},
    {"CastLike", cv_castlike, "saturate"},
    {"DepthToSpace", cv_space_depth, "blocksize mode"},
    {"SpaceToDepth", cv_space_depth, "blocksize"},
    {"Round", cv_unary2, ""},
    {"NegativeLogLikelihoodLoss", cv_nllloss, "reduction ignore_index"},
    {"SoftmaxCrossEntropyLoss", cv_sce, "reduction ignore_index"},
    {"Einsum", cv_einsum, "equation"},
};

int ox_tf_find(const char *name, int (**fn)(ox_imp *, const Onnx__NodeProto *, mb_node *), const char **attrs)
{
    for (size_t i = 0; i < sizeof tf_ops / sizeof tf_ops[0]; i++)
        if (!strcmp(tf_ops[i].name, name)) {
            *fn = tf_ops[i].fn;
            *attrs = tf_ops[i].attrs;
            return 1;
        }
    return 0;
}

/* ---- Einsum --------------------------------------------------------------- */

/* One operand's labels after parsing: letters, at most MB_MAX_DIMS. */
typedef struct es_term {
    int n;
    char l[MB_MAX_DIMS];
} es_term;

static int es_parse(ox_imp *im, const char *eq, es_term *in, int *n_in, es_term *out)
{
    *n_in = 0;
    memset(in, 0, sizeof(es_term) * 2);
    memset(out, 0, sizeof *out);
    const char *arrow = strstr(eq, "->");
    if (!arrow)
        return ox_unsupported(im, "an Einsum equation without '->' (implicit output)");
    es_term *t = &in[0];
    for (const char *p = eq; p < arrow; p++) {
        if (*p == ' ')
            continue;
        if (*p == ',') {
            if (++*n_in >= 2)
                return ox_unsupported(im, "Einsum with more than two operands");
            t = &in[*n_in];
            continue;
        }
        if (*p == '.' || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) || t->n >= MB_MAX_DIMS)
            return ox_unsupported(im, "Einsum equation '%s' (ellipsis or more than %d labels)", eq, MB_MAX_DIMS);
        for (int i = 0; i < t->n; i++)
            if (t->l[i] == *p)
                return ox_unsupported(im, "Einsum with a repeated label in one operand (a diagonal)");
        t->l[t->n++] = *p;
    }
    (*n_in)++;
    for (const char *p = arrow + 2; *p; p++) {
        if (*p == ' ')
            continue;
        if (out->n >= MB_MAX_DIMS || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return ox_unsupported(im, "Einsum output '%s'", arrow + 2);
        out->l[out->n++] = *p;
    }
    return 0;
}

static int es_find(const es_term *t, char c)
{
    for (int i = 0; i < t->n; i++)
        if (t->l[i] == c)
            return i;
    return -1;
}

/* Sum out of operand x (labels t, updated) every label in neither `keep1` nor `keep2`. */
static int es_reduce(ox_imp *im, const char *base, int x, es_term *t, const es_term *keep1, const es_term *keep2)
{
    mb_node r;
    memset(&r, 0, sizeof r);
    r.type = MB_OP_REDUCESUM;
    r.n_inputs = 1;
    r.inputs[0] = x;
    es_term kept = {0, {0}};
    for (int i = 0; i < t->n; i++) {
        if (es_find(keep1, t->l[i]) < 0 && (!keep2 || es_find(keep2, t->l[i]) < 0))
            r.a.axes_mask |= 1 << i;
        else
            kept.l[kept.n++] = t->l[i];
    }
    if (!r.a.axes_mask)
        return x;
    if (kept.n == 0)
        return ox_unsupported(im, "an Einsum that sums an operand to a scalar"), -1;
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/sum", MB_NAME_LEN - 16, base);
    *t = kept;
    return ox_add(im, &r, nm);
}

/* Transpose x (labels t) into the label order `to` (a permutation of t). */
static int es_permute(ox_imp *im, const char *name, int x, const es_term *t, const es_term *to)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    n.type = MB_OP_TRANSPOSE;
    n.n_inputs = 1;
    n.inputs[0] = x;
    int same = 1;
    for (int i = 0; i < to->n; i++) {
        n.a.perm[i] = es_find(t, to->l[i]);
        same &= n.a.perm[i] == i;
    }
    return same ? x : ox_add(im, &n, name);
}

static int es_reshape(ox_imp *im, const char *name, int x, int nd, const int64_t *shape)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    n.type = MB_OP_RESHAPE;
    n.n_inputs = 1;
    n.inputs[0] = x;
    n.a.shape_ndim = nd;
    memcpy(n.a.shape, shape, sizeof(int64_t) * (size_t)nd);
    return ox_add(im, &n, name);
}

/* Einsum with one or two operands, explicit output, no ellipsis or
 * diagonals, as exporters write attention ("bhid,bhjd->bhij"): operands
 * summed over labels used nowhere else, transposed to [batch, free,
 * contracted] and [batch, contracted, free], one batched MatMul, the
 * result reshaped and transposed to the output's order. */
static int cv_einsum(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    char eq[128];
    ox_attr_s(np, "equation", "", eq, sizeof eq);
    es_term t[2], o;
    int n_in, x[2], nd;
    int64_t dims[2][MB_MAX_DIMS], size_of[128] = {0};
    if (es_parse(im, eq, t, &n_in, &o))
        return -1;
    if ((int)np->n_input != n_in)
        return ox_fail(im, "equation '%s' has %d operands, the node %zu inputs", eq, n_in, np->n_input);
    for (int k = 0; k < n_in; k++) {
        if (ox_data(im, np, k, &x[k]) || ox_shape(im, x[k], &nd, dims[k]))
            return -1;
        if (nd != t[k].n)
            return ox_fail(im, "operand %d has rank %d, the equation %d labels", k, nd, t[k].n);
        for (int i = 0; i < nd; i++) {
            int64_t *s = &size_of[(unsigned char)t[k].l[i]];
            if (*s && *s != dims[k][i])
                return ox_unsupported(im, "Einsum label '%c' with sizes %lld and %lld (broadcasting)", t[k].l[i],
                                      (long long)*s, (long long)dims[k][i]);
            *s = dims[k][i];
        }
    }
    for (int i = 0; i < o.n; i++)
        if (!size_of[(unsigned char)o.l[i]])
            return ox_fail(im, "output label '%c' is in no operand", o.l[i]);
    char nm[MB_NAME_LEN + 16];
    for (int k = 0; k < n_in; k++)
        if ((x[k] = es_reduce(im, out0(np), x[k], &t[k], &o, n_in == 2 ? &t[1 - k] : NULL)) < 0)
            return -1;
    if (n_in == 1) {
        snprintf(nm, sizeof nm, "%.*s/permute", MB_NAME_LEN - 16, out0(np));
        int y = es_permute(im, nm, x[0], &t[0], &o);
        if (y < 0)
            return -1;
        n->type = MB_OP_IDENTITY;
        n->n_inputs = 1;
        n->inputs[0] = y;
        return 0;
    }
    es_term bat = {0, {0}}, fa = {0, {0}}, fb = {0, {0}}, con = {0, {0}}, ta, tb, mid;
    int64_t B = 1, M = 1, N = 1, K = 1;
    for (int i = 0; i < t[0].n; i++) {
        char c = t[0].l[i];
        int64_t s = size_of[(unsigned char)c];
        if (es_find(&t[1], c) >= 0 && es_find(&o, c) >= 0)
            bat.l[bat.n++] = c, B *= s;
        else if (es_find(&t[1], c) >= 0)
            con.l[con.n++] = c, K *= s;
        else
            fa.l[fa.n++] = c, M *= s;
    }
    for (int i = 0; i < t[1].n; i++)
        if (es_find(&t[0], t[1].l[i]) < 0)
            fb.l[fb.n++] = t[1].l[i], N *= size_of[(unsigned char)t[1].l[i]];
    ta = bat, tb = bat, mid = bat;
    for (int i = 0; i < fa.n; i++)
        ta.l[ta.n++] = fa.l[i], mid.l[mid.n++] = fa.l[i];
    for (int i = 0; i < con.n; i++)
        ta.l[ta.n++] = con.l[i], tb.l[tb.n++] = con.l[i];
    for (int i = 0; i < fb.n; i++)
        tb.l[tb.n++] = fb.l[i], mid.l[mid.n++] = fb.l[i];
    if (mid.n != o.n)
        return ox_fail(im, "equation '%s': output labels do not match the operands", eq);
    int64_t sa[3] = {B, M, K}, sb[3] = {B, K, N}, smid[MB_MAX_DIMS];
    for (int i = 0; i < mid.n; i++)
        smid[i] = size_of[(unsigned char)mid.l[i]];
    snprintf(nm, sizeof nm, "%.*s/a", MB_NAME_LEN - 16, out0(np));
    int a = es_permute(im, nm, x[0], &t[0], &ta);
    snprintf(nm, sizeof nm, "%.*s/a3", MB_NAME_LEN - 16, out0(np));
    a = a < 0 ? -1 : es_reshape(im, nm, a, 3, sa);
    snprintf(nm, sizeof nm, "%.*s/b", MB_NAME_LEN - 16, out0(np));
    int b = a < 0 ? -1 : es_permute(im, nm, x[1], &t[1], &tb);
    snprintf(nm, sizeof nm, "%.*s/b3", MB_NAME_LEN - 16, out0(np));
    b = b < 0 ? -1 : es_reshape(im, nm, b, 3, sb);
    if (b < 0)
        return -1;
    mb_node mm;
    memset(&mm, 0, sizeof mm);
    mm.type = MB_OP_MATMUL;
    mm.n_inputs = 2;
    mm.inputs[0] = a;
    mm.inputs[1] = b;
    snprintf(nm, sizeof nm, "%.*s/matmul", MB_NAME_LEN - 16, out0(np));
    int y = ox_add(im, &mm, nm);
    snprintf(nm, sizeof nm, "%.*s/unflatten", MB_NAME_LEN - 16, out0(np));
    y = y < 0 ? -1 : es_reshape(im, nm, y, mid.n ? mid.n : 1, mid.n ? smid : (int64_t[]){1});
    snprintf(nm, sizeof nm, "%.*s/permute", MB_NAME_LEN - 16, out0(np));
    y = y < 0 ? -1 : es_permute(im, nm, y, &mid, &o);
    if (y < 0)
        return -1;
    n->type = MB_OP_IDENTITY;
    n->n_inputs = 1;
    n->inputs[0] = y;
    return 0;
}
