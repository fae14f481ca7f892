/* ONNX operators -> mb_node: one converter per operator family. Each
 * converter reads the node's inputs (data, or constants that become params
 * and attributes) and attributes, and refuses what mecbed cannot represent
 * exactly, saying which attribute or input it is. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "onnx_import.h"

/* Converters return 0 (add n and bind the node's output to it), 1 (the
 * converter bound the output itself) or -1 (error set). */
typedef int (*ox_conv_fn)(ox_imp *im, const Onnx__NodeProto *np, mb_node *n);

static const char *out0(const Onnx__NodeProto *np) { return np->output[0]; }

/* ---- small helpers -------------------------------------------------------- */

static int data_in(ox_imp *im, const Onnx__NodeProto *np, int k, mb_node *n)
{
    if (n->n_inputs >= MB_MAX_INPUTS)
        return ox_unsupported(im, "more than %d inputs", MB_MAX_INPUTS);
    int idx;
    if (ox_data(im, np, k, &idx))
        return -1;
    n->inputs[n->n_inputs++] = idx;
    return 0;
}

/* Constant input k as a float param of n. */
static int param_in(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role, mb_node *n)
{
    mb_tensor *p = ox_take_param(im, np, k, role);
    if (!p)
        return -1;
    n->params[n->n_params++] = p;
    return 0;
}

/* A scalar constant input (one element). */
static int scalar_in(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role, double *v)
{
    const mb_onnx_tensor *t = ox_const(im, np, k, role);
    if (!t)
        return -1;
    if (t->numel != 1)
        return ox_fail(im, "input %d (%s) must be a scalar, it has %lld elements", k, role, (long long)t->numel);
    *v = mb_onnx_tensor_get(t, 0);
    return 0;
}

/* An integer list attribute with exactly want values (absent: 0 returned,
 * out untouched). */
static int ints_exact(ox_imp *im, const Onnx__NodeProto *np, const char *name, int want, int *out, int lo)
{
    int64_t v[2 * MB_MAX_DIMS];
    int c = ox_attr_ints(im, np, name, v, 2 * MB_MAX_DIMS);
    if (c == -2)
        return -1;
    if (c < 0)
        return 0;
    if (c != want)
        return ox_fail(im, "attribute '%s' has %d values, expected %d", name, c, want);
    for (int i = 0; i < c; i++) {
        if (v[i] < lo || v[i] > (1 << 24))
            return ox_fail(im, "attribute '%s' value %lld is out of range", name, (long long)v[i]);
        out[i] = (int)v[i];
    }
    return 0;
}

static int auto_pad_attr(ox_imp *im, const Onnx__NodeProto *np, int *out)
{
    char buf[32];
    const char *s = ox_attr_s(np, "auto_pad", "NOTSET", buf, sizeof buf);
    if (!*s || !strcmp(s, "NOTSET"))
        *out = MB_AUTO_PAD_NOTSET;
    else if (!strcmp(s, "SAME_UPPER"))
        *out = MB_AUTO_PAD_SAME_UPPER;
    else if (!strcmp(s, "SAME_LOWER"))
        *out = MB_AUTO_PAD_SAME_LOWER;
    else if (!strcmp(s, "VALID"))
        *out = MB_AUTO_PAD_VALID;
    else
        return ox_fail(im, "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", s);
    return 0;
}

/* The node's output is the constant c (folded at import). */
static int bind_const_copy(ox_imp *im, const Onnx__NodeProto *np, const mb_onnx_tensor *c)
{
    mb_onnx_tensor *t = calloc(1, sizeof *t);
    if (!t || mb_onnx_tensor_copy(t, c)) {
        free(t);
        return ox_fail(im, "out of memory");
    }
    return ox_bind_const(im, out0(np), t) ? -1 : 1;
}

/* ---- convolution and pooling ---------------------------------------------- */

/* 1-D convolution and pooling run as 2-D ones over an input of height 1:
 * Reshape [N,C,L] -> [N,C,1,L], the 2-D op (kernel, stride, dilation 1 and
 * no padding along H), Reshape back to [N,C',L']. */
static int sp_ints(ox_imp *im, const Onnx__NodeProto *np, const char *name, int one_d, int count2d, int *out,
                   int lo, int h_fill)
{
    if (!one_d)
        return ints_exact(im, np, name, count2d, out, lo);
    int v[2] = {0, 0};
    if (ints_exact(im, np, name, count2d / 2, v, lo))
        return -1;
    if (!ox_attr(np, name))
        return 0;
    if (count2d == 4) {
        out[0] = out[2] = 0;
        out[1] = v[0];
        out[3] = v[1];
    } else {
        out[0] = h_fill;
        out[1] = v[0];
    }
    return 0;
}

static int reshape_to_2d(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    mb_node r;
    memset(&r, 0, sizeof r);
    r.type = MB_OP_RESHAPE;
    r.n_inputs = 1;
    r.inputs[0] = n->inputs[0];
    r.a.shape_ndim = 4;
    r.a.shape[0] = r.a.shape[1] = 0;
    r.a.shape[2] = 1;
    r.a.shape[3] = -1;
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/to2d", MB_NAME_LEN - 16, out0(np));
    int idx = ox_add(im, &r, nm);
    if (idx < 0)
        return -1;
    n->inputs[0] = idx;
    return 0;
}

static int reshape_from_2d(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/2d", MB_NAME_LEN - 16, out0(np));
    int idx = ox_add(im, n, nm);
    if (idx < 0)
        return -1;
    memset(n, 0, sizeof *n);
    n->type = MB_OP_RESHAPE;
    n->n_inputs = 1;
    n->inputs[0] = idx;
    n->a.shape_ndim = 3;
    n->a.shape[0] = n->a.shape[1] = 0;
    n->a.shape[2] = -1;
    return 0;
}

static int cv_conv(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    int tr = !strcmp(np->op_type, "ConvTranspose");
    n->type = tr ? MB_OP_CONV_TRANSPOSE : MB_OP_CONV;
    if (data_in(im, np, 0, n))
        return -1;
    const mb_onnx_tensor *w = ox_const(im, np, 1, "weights W");
    if (!w)
        return -1;
    if (w->ndim != 4 && w->ndim != 3)
        return ox_unsupported(im, "only 1-D and 2-D %s are supported (weights of rank 3 or 4); W has rank %d",
                              np->op_type, w->ndim);
    int one_d = w->ndim == 3;
    if (one_d && reshape_to_2d(im, np, n))
        return -1;
    int64_t kdims[4] = {w->dims[0], w->dims[1], one_d ? 1 : w->dims[2], one_d ? w->dims[2] : w->dims[3]};
    if (param_in(im, np, 1, "weights W", n))
        return -1;
    n->params[0]->ndim = 4; /* 1-D: [M, C/g, k] -> [M, C/g, 1, k], same data */
    memcpy(n->params[0]->dims, kdims, sizeof kdims);
    if (ox_has(np, 2) && param_in(im, np, 2, "bias B", n))
        return -1;
    mb_op_attrs *a = &n->a;
    int64_t grp = ox_attr_i(np, "group", 1);
    if (grp < 1 || grp > (1 << 24))
        return ox_fail(im, "group %lld is invalid", (long long)grp);
    a->group = (int)grp;
    if (sp_ints(im, np, "kernel_shape", one_d, 2, a->kernel, 1, 1) ||
        sp_ints(im, np, "strides", one_d, 2, a->stride, 1, 1) ||
        sp_ints(im, np, "dilations", one_d, 2, a->dilation, 1, 1) || sp_ints(im, np, "pads", one_d, 4, a->pads, 0, 0) ||
        auto_pad_attr(im, np, &a->auto_pad))
        return -1;
    if (!tr)
        return one_d ? reshape_from_2d(im, np, n) : 0;
    if (sp_ints(im, np, "output_padding", one_d, 2, a->output_padding, 0, 0))
        return -1;
    int64_t os[MB_MAX_DIMS];
    int c = ox_attr_ints(im, np, "output_shape", os, MB_MAX_DIMS);
    if (c == -2)
        return -1;
    if (c >= 0 && one_d) {
        if (c != 1 && c != 3)
            return ox_fail(im, "output_shape has %d values, expected 1", c);
        os[1] = os[c - 1];
        os[0] = 1;
        c = 2;
    }
    if (c >= 0) {
        /* Pads follow from the requested output size (ONNX's formula; a
         * negative total becomes extra output at the end, as runtimes do). */
        if (c != 2 && c != 4)
            return ox_fail(im, "output_shape has %d values, expected 2", c);
        int nd;
        int64_t dims[MB_MAX_DIMS];
        if (ox_shape(im, n->inputs[0], &nd, dims))
            return -1;
        if (nd != 4)
            return ox_fail(im, "input has rank %d, expected 4", nd);
        for (int ax = 0; ax < 2; ax++) {
            int64_t s = a->stride[ax] ? a->stride[ax] : 1, d = a->dilation[ax] ? a->dilation[ax] : 1;
            int64_t k = w->dims[2 + ax], want = os[c - 2 + ax];
            int64_t total = s * (dims[2 + ax] - 1) + a->output_padding[ax] + (k - 1) * d + 1 - want;
            if (total < 0) {
                a->output_padding[ax] += (int)-total;
                total = 0;
            }
            int64_t half = total / 2;
            a->pads[ax] = (int)(a->auto_pad == MB_AUTO_PAD_SAME_UPPER ? half : total - half);
            a->pads[2 + ax] = (int)(total - a->pads[ax]);
        }
        a->auto_pad = MB_AUTO_PAD_NOTSET;
    }
    return one_d ? reshape_from_2d(im, np, n) : 0;
}

static int cv_pool(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    int maxp = !strcmp(np->op_type, "MaxPool");
    n->type = maxp ? MB_OP_MAXPOOL : MB_OP_AVGPOOL;
    if (data_in(im, np, 0, n))
        return -1;
    mb_op_attrs *a = &n->a;
    int64_t ks[MB_MAX_DIMS];
    int c = ox_attr_ints(im, np, "kernel_shape", ks, MB_MAX_DIMS);
    if (c == -2)
        return -1;
    if (c < 0)
        return ox_fail(im, "attribute 'kernel_shape' is required");
    if (c != 2 && c != 1)
        return ox_unsupported(im, "only 1-D and 2-D %s are supported; kernel_shape has %d values", np->op_type, c);
    int one_d = c == 1;
    if (one_d && reshape_to_2d(im, np, n))
        return -1;
    if (sp_ints(im, np, "kernel_shape", one_d, 2, a->kernel, 1, 1) ||
        sp_ints(im, np, "strides", one_d, 2, a->stride, 1, 1) ||
        sp_ints(im, np, "dilations", one_d, 2, a->dilation, 1, 1) || sp_ints(im, np, "pads", one_d, 4, a->pads, 0, 0) ||
        auto_pad_attr(im, np, &a->auto_pad))
        return -1;
    a->ceil_mode = (int)ox_attr_i(np, "ceil_mode", 0) != 0;
    if (!maxp)
        a->count_include_pad = (int)ox_attr_i(np, "count_include_pad", 0) != 0;
    return one_d ? reshape_from_2d(im, np, n) : 0;
}

static int cv_gap(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_GLOBALAVGPOOL;
    return data_in(im, np, 0, n);
}

/* ---- matrix products ------------------------------------------------------ */

static int cv_gemm(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_GEMM;
    if (data_in(im, np, 0, n))
        return -1;
    if (ox_is_const(im, np, 1) ? param_in(im, np, 1, "B", n) : data_in(im, np, 1, n))
        return -1;
    int c_data = ox_has(np, 2) && !ox_const_ok(im, np, 2);
    if (ox_has(np, 2) && !c_data && param_in(im, np, 2, "bias C", n))
        return -1;
    mb_op_attrs *a = &n->a;
    a->alpha = ox_attr_f(np, "alpha", 1.0f);
    float beta = ox_has(np, 2) ? ox_attr_f(np, "beta", 1.0f) : 1.0f;
    a->beta = c_data ? 1.0f : beta;
    if (a->alpha == 0 && a->beta == 0)
        return ox_unsupported(im, "alpha = beta = 0 (mecbed reads that pair as 'unset')");
    a->trans_a = ox_attr_i(np, "transA", 0) != 0;
    a->trans_b = ox_attr_i(np, "transB", 0) != 0;
    if (!c_data)
        return 0;
    /* C computed at run time: Gemm without C, then + beta * C. */
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/gemm", MB_NAME_LEN - 16, out0(np));
    int gi = ox_add(im, n, nm);
    if (gi < 0)
        return -1;
    memset(n, 0, sizeof *n);
    int ci;
    if (ox_data(im, np, 2, &ci))
        return -1;
    if (beta != 1.0f) {
        mb_node m;
        memset(&m, 0, sizeof m);
        m.type = MB_OP_MUL;
        m.n_inputs = 1;
        m.inputs[0] = ci;
        int64_t one = 1;
        m.params[0] = mb_tensor_new(1, &one);
        if (!m.params[0])
            return ox_fail(im, "out of memory");
        m.params[0]->data[0] = beta;
        m.n_params = 1;
        snprintf(nm, sizeof nm, "%.*s/beta", MB_NAME_LEN - 16, out0(np));
        ci = ox_add(im, &m, nm);
        if (ci < 0)
            return -1;
    }
    n->type = MB_OP_ADD;
    n->n_inputs = 2;
    n->inputs[0] = gi;
    n->inputs[1] = ci;
    return 0;
}

static int cv_matmul(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_MATMUL;
    if (data_in(im, np, 0, n))
        return -1;
    return ox_is_const(im, np, 1) ? param_in(im, np, 1, "B", n) : data_in(im, np, 1, n);
}

/* ---- elementwise ---------------------------------------------------------- */

static int cv_unary(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    const char *op = np->op_type;
    if (!strcmp(op, "Relu"))
        n->type = MB_OP_RELU;
    else if (!strcmp(op, "Sigmoid"))
        n->type = MB_OP_SIGMOID;
    else if (!strcmp(op, "HardSwish"))
        n->type = MB_OP_HARDSWISH;
    else if (!strcmp(op, "LeakyRelu")) {
        n->type = MB_OP_LEAKYRELU;
        n->a.alpha = ox_attr_f(np, "alpha", 0.01f);
    } else { /* HardSigmoid */
        n->type = MB_OP_HARDSIGMOID;
        n->a.alpha = ox_attr_f(np, "alpha", 0.2f);
        n->a.beta = ox_attr_f(np, "beta", 0.5f);
    }
    return data_in(im, np, 0, n);
}

static int cv_clip(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_CLIP;
    if (data_in(im, np, 0, n))
        return -1;
    if (im->opset < 11) {
        /* Clip-6: attributes, defaulting to the float range */
        n->a.alpha = ox_attr_f(np, "min", -FLT_MAX);
        n->a.beta = ox_attr_f(np, "max", FLT_MAX);
        return 0;
    }
    if (ox_attr(np, "min") || ox_attr(np, "max"))
        return ox_fail(im, "min and max are inputs since opset 11, not attributes");
    double lo = -INFINITY, hi = INFINITY;
    if (ox_has(np, 1) && scalar_in(im, np, 1, "min", &lo))
        return -1;
    if (ox_has(np, 2) && scalar_in(im, np, 2, "max", &hi))
        return -1;
    n->a.alpha = (float)lo;
    n->a.beta = (float)hi;
    return 0;
}

static int cv_binary(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    const char *op = np->op_type;
    n->type = !strcmp(op, "Add") ? MB_OP_ADD : !strcmp(op, "Sub") ? MB_OP_SUB : !strcmp(op, "Mul") ? MB_OP_MUL
                                                                                                     : MB_OP_DIV;
    int commutative = n->type == MB_OP_ADD || n->type == MB_OP_MUL;
    int legacy_axis = im->opset < 7 && ox_attr_i(np, "broadcast", 0) && ox_attr(np, "axis");
    int c0 = ox_is_const(im, np, 0), c1 = ox_is_const(im, np, 1);
    if (c1) {
        if (data_in(im, np, 0, n) || param_in(im, np, 1, "operand B", n))
            return -1;
    } else if (c0 && commutative && !legacy_axis) {
        if (data_in(im, np, 1, n) || param_in(im, np, 0, "operand A", n))
            return -1;
    } else {
        if (data_in(im, np, 0, n) || data_in(im, np, 1, n))
            return -1;
    }
    if (legacy_axis) {
        /* Opset < 7 broadcasting: B's dims line up with A's from `axis`;
         * padding B with trailing 1s gives numpy's rule the same meaning. */
        int nd, bnd;
        int64_t dims[MB_MAX_DIMS], bdims[MB_MAX_DIMS];
        if (ox_shape(im, n->inputs[0], &nd, dims))
            return -1;
        if (n->n_params) {
            bnd = n->params[0]->ndim;
            memcpy(bdims, n->params[0]->dims, sizeof(int64_t) * (size_t)bnd);
        } else if (ox_shape(im, n->inputs[1], &bnd, bdims)) {
            return -1;
        }
        int64_t ax = ox_attr_i(np, "axis", 0);
        if (ax < 0)
            ax += nd;
        if (ax < 0 || ax + bnd > nd)
            return ox_fail(im, "broadcast axis %lld does not fit B's rank %d into A's rank %d",
                           (long long)ox_attr_i(np, "axis", 0), bnd, nd);
        while (bnd < nd - ax)
            bdims[bnd++] = 1;
        if (n->n_params) {
            mb_tensor *b = n->params[0];
            b->ndim = bnd;
            memcpy(b->dims, bdims, sizeof(int64_t) * (size_t)bnd);
        } else {
            /* a data B gets a Reshape that appends the 1s */
            mb_node r;
            memset(&r, 0, sizeof r);
            r.type = MB_OP_RESHAPE;
            r.n_inputs = 1;
            r.inputs[0] = n->inputs[1];
            r.a.shape_ndim = bnd;
            memcpy(r.a.shape, bdims, sizeof(int64_t) * (size_t)bnd);
            char nm[MB_NAME_LEN + 16];
            snprintf(nm, sizeof nm, "%.*s/bcast", MB_NAME_LEN - 16, out0(np));
            int ri = ox_add(im, &r, nm);
            if (ri < 0)
                return -1;
            n->inputs[1] = ri;
        }
    }
    return 0;
}

static int cv_identity(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    if (!strcmp(np->op_type, "Dropout") && im->opset >= 12 && ox_has(np, 2)) {
        double tm;
        if (scalar_in(im, np, 2, "training_mode", &tm))
            return -1;
        if (tm != 0)
            return ox_unsupported(im, "training_mode is true; mecbed runs inference only");
    }
    if (ox_is_const(im, np, 0))
        return bind_const_copy(im, np, ox_lookup(im, np->input[0])->c);
    n->type = MB_OP_IDENTITY;
    return data_in(im, np, 0, n);
}

/* ---- shape and layout ----------------------------------------------------- */

static int cv_concat(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_CONCAT;
    const Onnx__AttributeProto *ax = ox_attr(np, "axis");
    if (!ax && im->opset >= 4)
        return ox_fail(im, "attribute 'axis' is required");
    n->a.axis = ax ? (int)ox_attr_i(np, "axis", 1) : 1;
    if (np->n_input == 0)
        return ox_fail(im, "has no inputs");
    for (size_t k = 0; k < np->n_input; k++)
        if (data_in(im, np, (int)k, n))
            return -1;
    return 0;
}

static int cv_batchnorm(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_BATCHNORM;
    if (ox_attr_i(np, "training_mode", 0))
        return ox_unsupported(im, "training_mode = 1; mecbed runs inference only");
    if (im->opset < 9 && !ox_attr_i(np, "spatial", 1))
        return ox_unsupported(im, "spatial = 0 (per-element statistics)");
    n->a.epsilon = ox_attr_f(np, "epsilon", 1e-5f);
    static const char *const roles[4] = {"scale", "bias B", "mean", "var"};
    if (data_in(im, np, 0, n))
        return -1;
    for (int k = 0; k < 4; k++)
        if (param_in(im, np, k + 1, roles[k], n))
            return -1;
    return 0;
}

static int cv_softmax(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_SOFTMAX;
    if (data_in(im, np, 0, n))
        return -1;
    int64_t axis = ox_attr_i(np, "axis", im->opset >= 13 ? -1 : 1);
    if (im->opset >= 13) {
        n->a.axis = (int)axis;
        return 0;
    }
    /* Before opset 13, Softmax flattens to 2-D at `axis` and normalises over
     * everything from axis on: Flatten -> Softmax(1) -> Reshape back. */
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    if (axis < 0)
        axis += nd;
    if (axis < 0 || axis >= nd)
        return ox_fail(im, "axis %lld is out of range for rank %d", (long long)ox_attr_i(np, "axis", 1), nd);
    if (axis == nd - 1) {
        n->a.axis = (int)axis;
        return 0;
    }
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
    s.type = MB_OP_SOFTMAX;
    s.a.axis = 1;
    s.n_inputs = 1;
    s.inputs[0] = fi;
    snprintf(nm, sizeof nm, "%.*s/softmax", MB_NAME_LEN - 16, out0(np));
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

static int cv_flatten(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_FLATTEN;
    n->a.axis = (int)ox_attr_i(np, "axis", 1);
    return data_in(im, np, 0, n);
}

static int cv_reshape(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_RESHAPE;
    if (data_in(im, np, 0, n))
        return -1;
    int64_t shp[MB_MAX_DIMS];
    int c;
    if (im->opset < 5) {
        c = ox_attr_ints(im, np, "shape", shp, MB_MAX_DIMS);
        if (c == -2)
            return -1;
        if (c < 0)
            return ox_fail(im, "attribute 'shape' is required");
    } else {
        const mb_onnx_tensor *t = ox_const(im, np, 1, "target shape");
        if (!t)
            return -1;
        if (t->ndim != 1)
            return ox_fail(im, "the target shape must be 1-D, it has rank %d", t->ndim);
        if (t->numel > MB_MAX_DIMS)
            return ox_unsupported(im, "target rank %lld exceeds mecbed's limit of %d", (long long)t->numel,
                                  MB_MAX_DIMS);
        c = (int)t->numel;
        for (int i = 0; i < c; i++)
            shp[i] = mb_onnx_tensor_geti(t, i);
    }
    if (c == 0)
        return ox_unsupported(im, "reshape to a scalar");
    for (int i = 0; i < c; i++)
        if (shp[i] == 0 && ox_attr_i(np, "allowzero", 0))
            return ox_unsupported(im, "allowzero = 1 with a 0 in the target shape (an empty tensor)");
    n->a.shape_ndim = c;
    memcpy(n->a.shape, shp, sizeof(int64_t) * (size_t)c);
    return 0;
}

static int pad_mode(ox_imp *im, const Onnx__NodeProto *np, int *mode)
{
    char buf[32];
    const char *s = ox_attr_s(np, "mode", "constant", buf, sizeof buf);
    if (!strcmp(s, "constant"))
        *mode = MB_PAD_CONSTANT;
    else if (!strcmp(s, "reflect"))
        *mode = MB_PAD_REFLECT;
    else if (!strcmp(s, "edge"))
        *mode = MB_PAD_EDGE;
    else
        return ox_unsupported(im, "pad mode '%s'", s);
    return 0;
}

static int cv_pad(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_PAD;
    mb_op_attrs *a = &n->a;
    if (data_in(im, np, 0, n) || pad_mode(im, np, &a->pad_mode))
        return -1;
    int64_t pads[2 * MB_MAX_DIMS];
    int c;
    if (im->opset < 11) {
        c = ox_attr_ints(im, np, im->opset < 2 ? "paddings" : "pads", pads, 2 * MB_MAX_DIMS);
        if (c == -2)
            return -1;
        if (c < 0)
            return ox_fail(im, "attribute 'pads' is required");
        a->pad_value = ox_attr_f(np, "value", 0.0f);
    } else {
        const mb_onnx_tensor *t = ox_const(im, np, 1, "pads");
        if (!t)
            return -1;
        if (t->numel > 2 * MB_MAX_DIMS)
            return ox_unsupported(im, "%lld pad amounts (rank above %d)", (long long)t->numel, MB_MAX_DIMS);
        c = (int)t->numel;
        for (int i = 0; i < c; i++)
            pads[i] = mb_onnx_tensor_geti(t, i);
        if (ox_has(np, 2)) {
            double v;
            if (scalar_in(im, np, 2, "constant_value", &v))
                return -1;
            a->pad_value = (float)v;
        }
    }
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    if (ox_has(np, 3)) {
        /* opset 18: pads for the listed axes only */
        const mb_onnx_tensor *ax = ox_const(im, np, 3, "axes");
        if (!ax)
            return -1;
        if (c != 2 * ax->numel)
            return ox_fail(im, "%d pad amounts for %lld axes", c, (long long)ax->numel);
        int64_t full[2 * MB_MAX_DIMS] = {0};
        for (int64_t i = 0; i < ax->numel; i++) {
            int64_t x = mb_onnx_tensor_geti(ax, i);
            if (x < 0)
                x += nd;
            if (x < 0 || x >= nd)
                return ox_fail(im, "axis %lld is out of range", (long long)mb_onnx_tensor_geti(ax, i));
            full[x] = pads[i];
            full[nd + x] = pads[ax->numel + i];
        }
        c = 2 * nd;
        memcpy(pads, full, sizeof(int64_t) * (size_t)c);
    }
    if (c != 2 * nd)
        return ox_fail(im, "%d pad amounts for an input of rank %d (expected %d)", c, nd, 2 * nd);
    memcpy(a->pad_amounts, pads, sizeof(int64_t) * (size_t)c);
    return 0;
}

/* ---- Resize and Upsample -------------------------------------------------- */

static int resize_mode(ox_imp *im, const char *s, int *mode)
{
    if (!strcmp(s, "nearest"))
        *mode = MB_RESIZE_NEAREST;
    else if (!strcmp(s, "linear") || !strcmp(s, "bilinear"))
        *mode = MB_RESIZE_LINEAR;
    else
        return ox_unsupported(im, "resize mode '%s' (mecbed has nearest and linear)", s);
    return 0;
}

/* The fp32 scale whose floor(in * scale) is exactly out (the executor
 * derives output sizes from scales). */
static float scale_for_size(int64_t in, int64_t out)
{
    float s = (float)((double)out / (double)in);
    while ((int64_t)floor((double)in * s) < out)
        s = nextafterf(s, INFINITY);
    while ((int64_t)floor((double)in * s) > out)
        s = nextafterf(s, 0.0f);
    return s;
}

static int cv_resize(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    int upsample = !strcmp(np->op_type, "Upsample");
    n->type = MB_OP_RESIZE;
    mb_op_attrs *a = &n->a;
    char buf[64];
    if (data_in(im, np, 0, n) || resize_mode(im, ox_attr_s(np, "mode", "nearest", buf, sizeof buf), &a->resize_mode))
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    const mb_onnx_tensor *scales = NULL, *sizes = NULL;
    if (upsample || im->opset < 11) {
        /* Upsample and Resize-10: asymmetric coordinates, nearest rounds down */
        a->coord_mode = MB_COORD_ASYMMETRIC;
        a->nearest_mode = MB_NEAREST_FLOOR;
        if (upsample && im->opset < 9) {
            const Onnx__AttributeProto *sa = ox_attr(np, "scales");
            if (!sa)
                return ox_fail(im, "attribute 'scales' is required");
            if ((int)sa->n_floats != nd)
                return ox_fail(im, "%zu scales for an input of rank %d", sa->n_floats, nd);
            for (int i = 0; i < nd; i++)
                a->scales[i] = sa->floats[i];
            goto check;
        }
        scales = ox_const(im, np, 1, "scales");
        if (!scales)
            return -1;
    } else {
        const char *cm = ox_attr_s(np, "coordinate_transformation_mode", "half_pixel", buf, sizeof buf);
        if (!strcmp(cm, "half_pixel"))
            a->coord_mode = MB_COORD_HALF_PIXEL;
        else if (!strcmp(cm, "asymmetric"))
            a->coord_mode = MB_COORD_ASYMMETRIC;
        else if (!strcmp(cm, "align_corners"))
            a->coord_mode = MB_COORD_ALIGN_CORNERS;
        else if (!strcmp(cm, "pytorch_half_pixel"))
            a->coord_mode = MB_COORD_PYTORCH_HALF_PIXEL;
        else if (!strcmp(cm, "tf_half_pixel_for_nn"))
            a->coord_mode = MB_COORD_TF_HALF_PIXEL_FOR_NN;
        else
            return ox_unsupported(im, "coordinate_transformation_mode '%s'", cm);
        const char *nm = ox_attr_s(np, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
        if (!strcmp(nm, "round_prefer_floor"))
            a->nearest_mode = MB_NEAREST_ROUND_PREFER_FLOOR;
        else if (!strcmp(nm, "round_prefer_ceil"))
            a->nearest_mode = MB_NEAREST_ROUND_PREFER_CEIL;
        else if (!strcmp(nm, "floor"))
            a->nearest_mode = MB_NEAREST_FLOOR;
        else if (!strcmp(nm, "ceil"))
            a->nearest_mode = MB_NEAREST_CEIL;
        else
            return ox_fail(im, "nearest_mode '%s' is not an ONNX mode", nm);
        if (ox_attr_i(np, "exclude_outside", 0))
            return ox_unsupported(im, "exclude_outside = 1");
        if (ox_attr_i(np, "antialias", 0))
            return ox_unsupported(im, "antialias = 1");
        if (strcmp(ox_attr_s(np, "keep_aspect_ratio_policy", "stretch", buf, sizeof buf), "stretch"))
            return ox_unsupported(im, "keep_aspect_ratio_policy '%s'", buf);
        if (ox_attr(np, "axes"))
            return ox_unsupported(im, "the 'axes' attribute");
        if (ox_has(np, 2)) {
            scales = ox_const(im, np, 2, "scales");
            if (!scales)
                return -1;
            if (scales->numel == 0)
                scales = NULL; /* sizes given instead */
        }
        if (!scales) {
            if (!ox_has(np, 3))
                return ox_fail(im, "neither scales nor sizes is given");
            sizes = ox_const(im, np, 3, "sizes");
            if (!sizes)
                return -1;
        }
    }
    if (scales) {
        if (scales->numel != nd)
            return ox_fail(im, "%lld scales for an input of rank %d", (long long)scales->numel, nd);
        for (int i = 0; i < nd; i++)
            a->scales[i] = (float)mb_onnx_tensor_get(scales, i);
    } else {
        if (sizes->numel != nd)
            return ox_fail(im, "%lld sizes for an input of rank %d", (long long)sizes->numel, nd);
        for (int i = 0; i < nd; i++) {
            int64_t s = mb_onnx_tensor_geti(sizes, i);
            if (s <= 0)
                return ox_fail(im, "size %lld for dimension %d", (long long)s, i);
            a->scales[i] = scale_for_size(dims[i], s);
        }
    }
check:
    for (int i = 0; i < nd; i++)
        if (!(a->scales[i] > 0) || !isfinite(a->scales[i]))
            return ox_fail(im, "scale %g for dimension %d", a->scales[i], i);
    return 0;
}

/* ---- constants ------------------------------------------------------------ */

static int cv_constant(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    (void)n;
    if (np->n_attribute != 1)
        return ox_fail(im, "needs exactly one value attribute, has %zu", np->n_attribute);
    const Onnx__AttributeProto *at = np->attribute[0];
    const char *an = at->name ? at->name : "";
    mb_onnx_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return ox_fail(im, "out of memory");
    int rc = 0;
    if (!strcmp(an, "value")) {
        if (!at->t) {
            free(t);
            return ox_fail(im, "attribute 'value' holds no tensor");
        }
        char what[256];
        snprintf(what, sizeof what, "%s: Constant '%.*s'", im->m->path, 96, out0(np));
        if (mb_onnx_decode(at->t, what, t, im->err, im->errlen)) {
            free(t);
            im->why = strstr(im->err, "not supported") ? MB_ONNX_UNSUPPORTED : MB_ONNX_ERROR;
            return -1;
        }
    } else if (!strcmp(an, "value_float") || !strcmp(an, "value_floats")) {
        int many = an[11] == 's';
        int64_t cnt = many ? (int64_t)at->n_floats : 1;
        t->data_type = MB_ONNX_FLOAT;
        t->ndim = many;
        t->dims[0] = cnt;
        t->numel = cnt;
        t->name = strdup("");
        t->f = mb_tensor_new(t->ndim, t->dims);
        if (!t->f || !t->name)
            rc = ox_fail(im, "out of memory");
        else if (many)
            memcpy(t->f->data, at->floats, sizeof(float) * (size_t)cnt);
        else
            t->f->data[0] = at->f;
    } else if (!strcmp(an, "value_int") || !strcmp(an, "value_ints")) {
        int many = an[9] == 's';
        int64_t cnt = many ? (int64_t)at->n_ints : 1;
        t->data_type = MB_ONNX_INT64;
        t->ndim = many;
        t->dims[0] = cnt;
        t->numel = cnt;
        t->name = strdup("");
        t->i = malloc(sizeof(int64_t) * (size_t)(cnt > 0 ? cnt : 1));
        if (!t->i || !t->name)
            rc = ox_fail(im, "out of memory");
        else if (many)
            memcpy(t->i, at->ints, sizeof(int64_t) * (size_t)cnt);
        else
            t->i[0] = at->i;
    } else {
        rc = ox_unsupported(im, "a constant given as '%s'", an);
    }
    if (rc) {
        mb_onnx_tensor_free(t);
        return -1;
    }
    return ox_bind_const(im, out0(np), t) ? -1 : 1;
}

/* ---- common operators written with the ones above ------------------------ */

/* Add a helper node named "<output>/<tag>"; its index, or -1. */
static int helper(ox_imp *im, const Onnx__NodeProto *np, mb_node *h, const char *tag)
{
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%.*s/%s", MB_NAME_LEN - 16, out0(np), tag);
    return ox_add(im, h, nm);
}

static mb_tensor *scalar_param(float v)
{
    int64_t one = 1;
    mb_tensor *t = mb_tensor_new(1, &one);
    if (t)
        t->data[0] = v;
    return t;
}

/* Sum(a, b, c, ...) = ((a + b) + c) ..., ONNX's left-to-right order. */
static int cv_sum(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    if (np->n_input < 1)
        return ox_fail(im, "has no inputs");
    if (np->n_input == 1) {
        n->type = MB_OP_IDENTITY;
        return data_in(im, np, 0, n);
    }
    n->type = MB_OP_ADD;
    if (data_in(im, np, 0, n) || data_in(im, np, 1, n))
        return -1;
    for (size_t k = 2; k < np->n_input; k++) {
        char tag[24];
        snprintf(tag, sizeof tag, "sum%zu", k - 1);
        int prev = helper(im, np, n, tag);
        if (prev < 0)
            return -1;
        memset(n, 0, sizeof *n);
        n->type = MB_OP_ADD;
        n->n_inputs = 1;
        n->inputs[0] = prev;
        if (data_in(im, np, (int)k, n))
            return -1;
    }
    return 0;
}

/* Neg(x) = x * -1 (exact). */
static int cv_neg(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_MUL;
    if (data_in(im, np, 0, n))
        return -1;
    n->params[0] = scalar_param(-1.0f);
    if (!n->params[0])
        return ox_fail(im, "out of memory");
    n->n_params = 1;
    return 0;
}

/* PRelu(x, s) = relu(x) + s * (x - relu(x)): exact, since one of the two
 * terms is zero for every element. */
static int cv_prelu(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    mb_node r, d;
    memset(&r, 0, sizeof r);
    memset(&d, 0, sizeof d);
    r.type = MB_OP_RELU;
    if (data_in(im, np, 0, &r))
        return -1;
    int x = r.inputs[0], ri = helper(im, np, &r, "relu");
    if (ri < 0)
        return -1;
    d.type = MB_OP_SUB;
    d.n_inputs = 2;
    d.inputs[0] = x;
    d.inputs[1] = ri;
    int di = helper(im, np, &d, "neg");
    if (di < 0)
        return -1;
    mb_node m;
    memset(&m, 0, sizeof m);
    m.type = MB_OP_MUL;
    m.n_inputs = 1;
    m.inputs[0] = di;
    if (ox_const_ok(im, np, 1) ? param_in(im, np, 1, "slope", &m) : data_in(im, np, 1, &m)) {
        for (int k = 0; k < m.n_params; k++)
            mb_tensor_free(m.params[k]);
        return -1;
    }
    if (im->opset < 7 && m.n_params && m.params[0]->ndim == 1 && m.params[0]->dims[0] > 1) {
        /* PRelu-6: a 1-D slope is per channel (axis 1): [C] -> [C,1,...] */
        int nd;
        int64_t dims[MB_MAX_DIMS];
        if (ox_shape(im, x, &nd, dims)) {
            mb_tensor_free(m.params[0]);
            return -1;
        }
        while (m.params[0]->ndim < nd - 1)
            m.params[0]->dims[m.params[0]->ndim++] = 1;
    }
    int mi = helper(im, np, &m, "scaled");
    if (mi < 0)
        return -1;
    n->type = MB_OP_ADD;
    n->n_inputs = 2;
    n->inputs[0] = ri;
    n->inputs[1] = mi;
    return 0;
}

/* ReduceMean over every spatial axis (2..rank-1) is GlobalAveragePool. */
static int cv_reducemean(ox_imp *im, const Onnx__NodeProto *np, mb_node *n)
{
    n->type = MB_OP_GLOBALAVGPOOL;
    if (data_in(im, np, 0, n))
        return -1;
    int nd;
    int64_t dims[MB_MAX_DIMS], axes[MB_MAX_DIMS];
    if (ox_shape(im, n->inputs[0], &nd, dims))
        return -1;
    int na;
    if (ox_has(np, 1)) {
        const mb_onnx_tensor *t = ox_const(im, np, 1, "axes");
        if (!t)
            return -1;
        if (t->numel > MB_MAX_DIMS)
            return ox_fail(im, "%lld axes", (long long)t->numel);
        na = (int)t->numel;
        for (int i = 0; i < na; i++)
            axes[i] = mb_onnx_tensor_geti(t, i);
    } else {
        na = ox_attr_ints(im, np, "axes", axes, MB_MAX_DIMS);
        if (na == -2)
            return -1;
    }
    char seen[MB_MAX_DIMS] = {0};
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + nd : axes[i];
        if (a < 0 || a >= nd)
            return ox_fail(im, "axis %lld is out of range", (long long)axes[i]);
        seen[a] = 1;
    }
    int spatial = nd >= 3 && na > 0;
    for (int a = 0; a < nd; a++)
        spatial &= seen[a] == (a >= 2);
    if (!spatial || nd != 4) /* other axes: the general reduction */
        return ox_cv_reduce(im, np, n);
    if (ox_attr_i(np, "keepdims", 1))
        return 0;
    int gi = helper(im, np, n, "gap");
    if (gi < 0)
        return -1;
    memset(n, 0, sizeof *n);
    n->type = MB_OP_RESHAPE;
    n->n_inputs = 1;
    n->inputs[0] = gi;
    n->a.shape_ndim = 2;
    return 0; /* shape 0,0: keep N and C */
}

/* ---- the table ------------------------------------------------------------ */

typedef struct ox_op {
    const char *name;
    ox_conv_fn fn;
    const char *attrs; /* the attributes the converter reads, space separated */
} ox_op;

static const ox_op ops[] = {
    {"Conv", cv_conv, "auto_pad dilations group kernel_shape pads strides"},
    {"ConvTranspose", cv_conv, "auto_pad dilations group kernel_shape pads strides output_padding output_shape"},
    {"Gemm", cv_gemm, "alpha beta transA transB broadcast"},
    {"MatMul", cv_matmul, ""},
    {"MaxPool", cv_pool, "auto_pad ceil_mode dilations kernel_shape pads strides storage_order"},
    {"AveragePool", cv_pool, "auto_pad ceil_mode count_include_pad dilations kernel_shape pads strides"},
    {"GlobalAveragePool", cv_gap, ""},
    {"Relu", cv_unary, "consumed_inputs"},
    {"Sigmoid", cv_unary, "consumed_inputs"},
    {"HardSwish", cv_unary, ""},
    {"LeakyRelu", cv_unary, "alpha consumed_inputs"},
    {"HardSigmoid", cv_unary, "alpha beta consumed_inputs"},
    {"Clip", cv_clip, "min max consumed_inputs"},
    {"Add", cv_binary, "broadcast axis consumed_inputs"},
    {"Sub", cv_binary, "broadcast axis consumed_inputs"},
    {"Mul", cv_binary, "broadcast axis consumed_inputs"},
    {"Div", cv_binary, "broadcast axis consumed_inputs"},
    {"Concat", cv_concat, "axis"},
    {"BatchNormalization", cv_batchnorm, "epsilon momentum spatial is_test consumed_inputs training_mode"},
    {"Softmax", cv_softmax, "axis"},
    {"Flatten", cv_flatten, "axis"},
    {"Reshape", cv_reshape, "shape allowzero consumed_inputs"},
    {"Pad", cv_pad, "mode pads paddings value"},
    {"Resize", cv_resize,
     "antialias axes coordinate_transformation_mode cubic_coeff_a exclude_outside extrapolation_value "
     "keep_aspect_ratio_policy mode nearest_mode"},
    {"Upsample", cv_resize, "mode scales"},
    {"Identity", cv_identity, ""},
    {"Dropout", cv_identity, "ratio is_test seed"},
    {"Sum", cv_sum, "consumed_inputs"},
    {"Neg", cv_neg, "consumed_inputs"},
    {"PRelu", cv_prelu, "consumed_inputs"},
    {"ReduceMean", cv_reducemean, "axes keepdims noop_with_empty_axes"},
    {"Constant", cv_constant, "value value_float value_floats value_int value_ints sparse_value value_string "
                              "value_strings"},
};

static const ox_op *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].name, name))
            return &ops[i];
    static __thread ox_op tf; /* the transformer operators' table (onnx_ops_tf.c) */
    if (ox_tf_find(name, &tf.fn, &tf.attrs)) {
        tf.name = name;
        return &tf;
    }
    return NULL;
}

int ox_op_known(const char *op_type)
{
    return op_type && find_op(op_type) != NULL;
}

static int word_in(const char *list, const char *w)
{
    size_t n = strlen(w);
    if (n == 0)
        return 0; /* strstr finds "" everywhere without advancing: an endless loop */
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
            return 1;
    return 0;
}

/* Is tensor name consumed by any node or the graph's outputs? */
static int name_used(const ox_imp *im, const char *name)
{
    const Onnx__GraphProto *gp = im->gp;
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_input; k++)
            if (gp->node[i]->input[k] && !strcmp(gp->node[i]->input[k], name))
                return 1;
    for (size_t k = 0; k < gp->n_output; k++)
        if (gp->output[k]->name && !strcmp(gp->output[k]->name, name))
            return 1;
    return 0;
}

int ox_convert_node(ox_imp *im, const Onnx__NodeProto *np)
{
    if (!np->op_type || !*np->op_type)
        return ox_fail(im, "has no op_type");
    if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx"))
        return ox_unsupported(im, "operator domain '%s' is not supported", np->domain);
    if (np->n_output >= 1 && np->output[0] && *np->output[0]) {
        int f = ox_try_fold(im, np);
        if (f)
            return f < 0 ? -1 : 0;
    }
    const ox_op *op = find_op(np->op_type);
    if (!op)
        return ox_unsupported(im, "operator %s is not supported", np->op_type);
    for (size_t i = 0; i < np->n_attribute; i++) {
        const char *an = np->attribute[i]->name ? np->attribute[i]->name : "";
        if (!word_in(op->attrs, an))
            return ox_unsupported(im, "attribute '%s' of %s is not supported", an, np->op_type);
    }
    if (np->n_output < 1 || !np->output[0] || !*np->output[0])
        return ox_fail(im, "has no output");
    /* converters that bind their further outputs themselves */
    int multi = !strcmp(np->op_type, "Split") || !strcmp(np->op_type, "LayerNormalization") ||
                !strcmp(np->op_type, "SoftmaxCrossEntropyLoss");
    for (size_t o = 1; o < np->n_output && !multi; o++)
        if (np->output[o] && *np->output[o] && name_used(im, np->output[o]))
            return ox_unsupported(im, "output %zu ('%s') is used; mecbed supports only the first output of %s", o,
                                  np->output[o], np->op_type);
    mb_node n;
    memset(&n, 0, sizeof n);
    int rc = op->fn(im, np, &n);
    if (rc < 0) {
        for (int k = 0; k < n.n_params; k++)
            mb_tensor_free(n.params[k]);
        return -1;
    }
    if (rc == 1)
        return 0;
    int idx = ox_add(im, &n, out0(np));
    if (idx < 0)
        return -1;
    return ox_bind_node(im, out0(np), idx);
}
