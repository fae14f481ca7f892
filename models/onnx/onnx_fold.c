/* Import-time folding of the shape arithmetic exporters emit (PyTorch's
 * x.view(x.size(0), -1) becomes Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape): with the input shape fixed, Shape is a constant, and Gather,
 * Unsqueeze, Squeeze, Concat, Cast, Slice, Add/Sub/Mul/Div, ConstantOfShape
 * and Reshape of constants are computed here, so what remains is the DAG of
 * compute ops. Unsqueeze/Squeeze of data become Reshape nodes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

/* A new constant: floating (MB_ONNX_FLOAT) or integer (MB_ONNX_INT64). */
static mb_onnx_tensor *new_const(ox_imp *im, int is_float, int ndim, const int64_t *dims)
{
    if (ndim > MB_MAX_DIMS) {
        ox_unsupported(im, "a folded constant of rank %d", ndim);
        return NULL;
    }
    mb_onnx_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        ox_fail(im, "out of memory");
        return NULL;
    }
    t->name = strdup("");
    t->data_type = is_float ? MB_ONNX_FLOAT : MB_ONNX_INT64;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        t->numel *= dims[i];
    }
    if (t->numel > (1 << 26)) {
        mb_onnx_tensor_free(t);
        ox_unsupported(im, "folding a constant of %lld elements", (long long)t->numel);
        return NULL;
    }
    if (is_float)
        t->f = mb_tensor_new(ndim, dims);
    else
        t->i = calloc((size_t)(t->numel > 0 ? t->numel : 1), sizeof(int64_t));
    if (!t->name || (is_float ? !t->f : !t->i)) {
        mb_onnx_tensor_free(t);
        ox_fail(im, "out of memory");
        return NULL;
    }
    return t;
}

static void set_elem(mb_onnx_tensor *t, int64_t k, double fv, int64_t iv)
{
    if (t->f)
        t->f->data[k] = (float)fv;
    else
        t->i[k] = iv;
}

static int bind_out(ox_imp *im, const Onnx__NodeProto *np, mb_onnx_tensor *t)
{
    return ox_bind_const(im, np->output[0], t) ? -1 : 1;
}

static const mb_onnx_tensor *cval(ox_imp *im, const Onnx__NodeProto *np, int k)
{
    return ox_lookup(im, np->input[k])->c;
}

/* Integer list from a constant input (opset >= 13 style) or an attribute. */
static int int_list(ox_imp *im, const Onnx__NodeProto *np, int k, const char *attr, int64_t *out, int max, int *n)
{
    if (ox_has(np, k)) {
        const mb_onnx_tensor *t = ox_const(im, np, k, attr);
        if (!t)
            return -1;
        if (t->numel > max)
            return ox_unsupported(im, "%s has %lld values", attr, (long long)t->numel);
        for (int64_t i = 0; i < t->numel; i++)
            out[i] = mb_onnx_tensor_geti(t, i);
        *n = (int)t->numel;
        return 0;
    }
    int c = ox_attr_ints(im, np, attr, out, max);
    if (c == -2)
        return -1;
    *n = c;
    return 0;
}

/* A data node's or a constant's dims. */
static int dims_of(ox_imp *im, const Onnx__NodeProto *np, int k, int *nd, int64_t *dims)
{
    if (k < 0 || (size_t)k >= np->n_input)
        return ox_fail(im, "needs input %d, has %zu inputs", k, np->n_input); /* found by fuzz_onnx */
    ox_val *v = ox_lookup(im, np->input[k]);
    if (!v)
        return ox_fail(im, "input %d ('%s') is produced by no node, initializer or graph input", k, np->input[k]);
    if (ox_is_const(im, np, k)) {
        *nd = v->c->ndim;
        memcpy(dims, v->c->dims, sizeof(int64_t) * (size_t)*nd);
        return 0;
    }
    int node;
    if (ox_data(im, np, k, &node))
        return -1;
    return ox_shape(im, node, nd, dims);
}

/* Data input k reshaped to dims: a Reshape node bound to the output. */
static int reshape_node(ox_imp *im, const Onnx__NodeProto *np, int nd, const int64_t *dims)
{
    if (nd < 1)
        return ox_unsupported(im, "a reshape to a scalar");
    mb_node n;
    memset(&n, 0, sizeof n);
    n.type = MB_OP_RESHAPE;
    if (ox_data(im, np, 0, &n.inputs[0]))
        return -1;
    n.n_inputs = 1;
    n.a.shape_ndim = nd;
    memcpy(n.a.shape, dims, sizeof(int64_t) * (size_t)nd);
    int idx = ox_add(im, &n, np->output[0]);
    if (idx < 0 || ox_bind_node(im, np->output[0], idx))
        return -1;
    return 1;
}

/* A copy of constant c with new dims (same element count). */
static int bind_reshaped(ox_imp *im, const Onnx__NodeProto *np, const mb_onnx_tensor *c, int nd, const int64_t *dims)
{
    mb_onnx_tensor *t = new_const(im, c->f != NULL, nd, dims);
    if (!t)
        return -1;
    if (t->numel != c->numel) {
        mb_onnx_tensor_free(t);
        return ox_fail(im, "%lld elements cannot take the new shape", (long long)c->numel);
    }
    for (int64_t k = 0; k < c->numel; k++)
        set_elem(t, k, mb_onnx_tensor_get(c, k), mb_onnx_tensor_geti(c, k));
    return bind_out(im, np, t);
}

static int fold_shape(ox_imp *im, const Onnx__NodeProto *np)
{
    int nd;
    int64_t dims[MB_MAX_DIMS];
    if (dims_of(im, np, 0, &nd, dims))
        return -1;
    int64_t s = ox_attr_i(np, "start", 0), e = ox_attr_i(np, "end", nd);
    s = s < 0 ? s + nd : s;
    e = e < 0 ? e + nd : e;
    s = s < 0 ? 0 : s > nd ? nd : s;
    e = e < 0 ? 0 : e > nd ? nd : e;
    int64_t len = e > s ? e - s : 0;
    mb_onnx_tensor *t = new_const(im, 0, 1, &len);
    if (!t)
        return -1;
    for (int64_t i = 0; i < len; i++)
        t->i[i] = dims[s + i];
    return bind_out(im, np, t);
}

static int fold_gather(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *d = cval(im, np, 0), *ix = cval(im, np, 1);
    if (!ix->i)
        return ox_fail(im, "indices must be integers");
    int64_t axis = ox_attr_i(np, "axis", 0);
    if (axis < 0)
        axis += d->ndim;
    if (axis < 0 || axis >= d->ndim)
        return ox_fail(im, "axis %lld is out of range", (long long)ox_attr_i(np, "axis", 0));
    int64_t odims[2 * MB_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < axis; i++)
        odims[ond++] = d->dims[i];
    for (int i = 0; i < ix->ndim; i++)
        odims[ond++] = ix->dims[i];
    for (int i = (int)axis + 1; i < d->ndim; i++)
        odims[ond++] = d->dims[i];
    mb_onnx_tensor *t = new_const(im, d->f != NULL, ond, odims);
    if (!t)
        return -1;
    int64_t outer = 1, inner = 1, len = d->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= d->dims[i];
    for (int i = (int)axis + 1; i < d->ndim; i++)
        inner *= d->dims[i];
    int64_t o = 0;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < ix->numel; j++) {
            int64_t q = ix->i[j] < 0 ? ix->i[j] + len : ix->i[j];
            if (q < 0 || q >= len) {
                mb_onnx_tensor_free(t);
                return ox_fail(im, "index %lld is out of range for a dimension of %lld", (long long)ix->i[j],
                               (long long)len);
            }
            for (int64_t b = 0; b < inner; b++, o++) {
                int64_t src = (a * len + q) * inner + b;
                set_elem(t, o, mb_onnx_tensor_get(d, src), mb_onnx_tensor_geti(d, src));
            }
        }
    return bind_out(im, np, t);
}

static int fold_unsqueeze(ox_imp *im, const Onnx__NodeProto *np, int squeeze)
{
    int nd, na = 0;
    int64_t dims[MB_MAX_DIMS], axes[MB_MAX_DIMS] = {0};
    if (dims_of(im, np, 0, &nd, dims) || int_list(im, np, 1, "axes", axes, MB_MAX_DIMS, &na))
        return -1;
    int64_t out[MB_MAX_DIMS];
    int ond = 0;
    if (squeeze) {
        char drop[MB_MAX_DIMS] = {0};
        for (int k = 0; k < na; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + nd : axes[k];
            if (a < 0 || a >= nd || dims[a] != 1)
                return ox_fail(im, "cannot squeeze axis %lld", (long long)axes[k]);
            drop[a] = 1;
        }
        for (int i = 0; i < nd; i++)
            if (!(na > 0 ? drop[i] : dims[i] == 1))
                out[ond++] = dims[i];
    } else {
        ond = nd + (na > 0 ? na : 0);
        if (na <= 0 || ond > MB_MAX_DIMS)
            return ox_fail(im, "Unsqueeze needs 1..%d axes", MB_MAX_DIMS - nd);
        char ins[MB_MAX_DIMS] = {0};
        for (int k = 0; k < na; k++) {
            int64_t a = axes[k] < 0 ? axes[k] + ond : axes[k];
            if (a < 0 || a >= ond || ins[a])
                return ox_fail(im, "bad axis %lld", (long long)axes[k]);
            ins[a] = 1;
        }
        for (int i = 0, j = 0; i < ond; i++)
            out[i] = ins[i] ? 1 : dims[j++];
    }
    if (ox_is_const(im, np, 0))
        return bind_reshaped(im, np, cval(im, np, 0), ond, out);
    return reshape_node(im, np, ond, out);
}

static int fold_concat(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *a = cval(im, np, 0);
    int64_t axis = ox_attr_i(np, "axis", 0);
    if (axis < 0)
        axis += a->ndim;
    if (axis < 0 || axis >= a->ndim)
        return ox_fail(im, "axis %lld is out of range", (long long)ox_attr_i(np, "axis", 0));
    int64_t dims[MB_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    dims[axis] = 0;
    int is_float = 0;
    for (size_t k = 0; k < np->n_input; k++) {
        const mb_onnx_tensor *c = cval(im, np, (int)k);
        if (c->ndim != a->ndim)
            return ox_fail(im, "input %zu has rank %d, expected %d", k, c->ndim, a->ndim);
        dims[axis] += c->dims[axis];
        is_float |= c->f != NULL;
    }
    mb_onnx_tensor *t = new_const(im, is_float, a->ndim, dims);
    if (!t)
        return -1;
    int64_t outer = 1, inner = 1, o = 0;
    for (int i = 0; i < axis; i++)
        outer *= a->dims[i];
    for (int i = (int)axis + 1; i < a->ndim; i++)
        inner *= a->dims[i];
    for (int64_t q = 0; q < outer; q++)
        for (size_t k = 0; k < np->n_input; k++) {
            const mb_onnx_tensor *c = cval(im, np, (int)k);
            int64_t run = c->dims[axis] * inner;
            for (int64_t j = 0; j < run; j++, o++)
                set_elem(t, o, mb_onnx_tensor_get(c, q * run + j), mb_onnx_tensor_geti(c, q * run + j));
        }
    return bind_out(im, np, t);
}

static int fold_cast(ox_imp *im, const Onnx__NodeProto *np)
{
    int64_t to = ox_attr_i(np, "to", 0);
    int to_float = to == MB_ONNX_FLOAT || to == MB_ONNX_DOUBLE || to == MB_ONNX_FLOAT16 || to == MB_ONNX_BFLOAT16;
    int to_int = to == MB_ONNX_INT64 || to == MB_ONNX_INT32 || to == MB_ONNX_INT16 || to == MB_ONNX_INT8 ||
                 to == MB_ONNX_UINT8 || to == MB_ONNX_UINT16 || to == MB_ONNX_UINT32 || to == MB_ONNX_UINT64 ||
                 to == MB_ONNX_BOOL;
    if (!to_float && !to_int)
        return ox_unsupported(im, "Cast to %s", mb_onnx_type_name((int)to));
    if (!ox_is_const(im, np, 0))
        return 0; /* run-time data: a Cast node (onnx_ops_tf.c) */
    const mb_onnx_tensor *c = cval(im, np, 0);
    mb_onnx_tensor *t = new_const(im, to_float, c->ndim, c->dims);
    if (!t)
        return -1;
    for (int64_t k = 0; k < c->numel; k++) {
        double v = mb_onnx_tensor_get(c, k);
        int64_t iv = c->i ? c->i[k] : (int64_t)trunc(v);
        if (to == MB_ONNX_BOOL)
            iv = v != 0;
        set_elem(t, k, v, iv);
    }
    t->data_type = (int)to;
    return bind_out(im, np, t);
}

static int fold_slice(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *d = cval(im, np, 0);
    int64_t st[MB_MAX_DIMS], en[MB_MAX_DIMS], ax[MB_MAX_DIMS], sp[MB_MAX_DIMS];
    int ns = 0, ne = 0, na = -1, nsp = -1;
    if (im->opset < 10) {
        ns = ox_attr_ints(im, np, "starts", st, MB_MAX_DIMS);
        ne = ox_attr_ints(im, np, "ends", en, MB_MAX_DIMS);
        na = ox_attr_ints(im, np, "axes", ax, MB_MAX_DIMS);
        if (ns == -2 || ne == -2 || na == -2)
            return -1;
    } else if (int_list(im, np, 1, "starts", st, MB_MAX_DIMS, &ns) ||
               int_list(im, np, 2, "ends", en, MB_MAX_DIMS, &ne) ||
               (ox_has(np, 3) && int_list(im, np, 3, "axes", ax, MB_MAX_DIMS, &na)) ||
               (ox_has(np, 4) && int_list(im, np, 4, "steps", sp, MB_MAX_DIMS, &nsp))) {
        return -1;
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns))
        return ox_fail(im, "starts, ends, axes and steps differ in length");
    int64_t lo[MB_MAX_DIMS], step[MB_MAX_DIMS], cnt[MB_MAX_DIMS];
    for (int i = 0; i < d->ndim; i++) {
        lo[i] = 0;
        step[i] = 1;
        cnt[i] = d->dims[i];
    }
    for (int k = 0; k < ns; k++) {
        int64_t a = na >= 0 ? ax[k] : k;
        a = a < 0 ? a + d->ndim : a;
        if (a < 0 || a >= d->ndim)
            return ox_fail(im, "axis %lld is out of range", (long long)(na >= 0 ? ax[k] : k));
        int64_t s = nsp >= 0 ? sp[k] : 1, len = d->dims[a], b = st[k], e = en[k];
        if (s == 0)
            return ox_fail(im, "a step of 0");
        b = b < 0 ? b + len : b;
        e = e < 0 ? e + len : e;
        if (s > 0) {
            b = b < 0 ? 0 : b > len ? len : b;
            e = e < 0 ? 0 : e > len ? len : e;
            cnt[a] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > len - 1 ? len - 1 : b;
            e = e < -1 ? -1 : e > len - 1 ? len - 1 : e;
            cnt[a] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        lo[a] = b;
        step[a] = s;
    }
    mb_onnx_tensor *t = new_const(im, d->f != NULL, d->ndim, cnt);
    if (!t)
        return -1;
    int64_t idx[MB_MAX_DIMS] = {0};
    for (int64_t o = 0; o < t->numel; o++) {
        int64_t src = 0;
        for (int i = 0; i < d->ndim; i++)
            src = src * d->dims[i] + lo[i] + idx[i] * step[i];
        set_elem(t, o, mb_onnx_tensor_get(d, src), mb_onnx_tensor_geti(d, src));
        for (int i = d->ndim - 1; i >= 0; i--) {
            if (++idx[i] < cnt[i])
                break;
            idx[i] = 0;
        }
    }
    return bind_out(im, np, t);
}

static int fold_binary(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *a = cval(im, np, 0), *b = cval(im, np, 1);
    char op = np->op_type[0]; /* A(dd) S(ub) M(ul) D(iv) */
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t dims[MB_MAX_DIMS], da[MB_MAX_DIMS], db[MB_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
        da[i] = ia >= 0 ? a->dims[ia] : 1;
        db[i] = ib >= 0 ? b->dims[ib] : 1;
        if (da[i] != db[i] && da[i] != 1 && db[i] != 1)
            return ox_fail(im, "operands do not broadcast");
        dims[i] = da[i] == 1 ? db[i] : da[i];
    }
    int is_float = a->f || b->f;
    mb_onnx_tensor *t = new_const(im, is_float, nd, dims);
    if (!t)
        return -1;
    int64_t idx[MB_MAX_DIMS] = {0};
    for (int64_t o = 0; o < t->numel; o++) {
        int64_t ia = 0, ib = 0;
        for (int i = 0; i < nd; i++) {
            ia = ia * da[i] + (da[i] == 1 ? 0 : idx[i]);
            ib = ib * db[i] + (db[i] == 1 ? 0 : idx[i]);
        }
        if (is_float) {
            double x = mb_onnx_tensor_get(a, ia), y = mb_onnx_tensor_get(b, ib);
            t->f->data[o] = (float)(op == 'A' ? x + y : op == 'S' ? x - y : op == 'M' ? x * y : x / y);
        } else {
            int64_t x = a->i[ia], y = b->i[ib];
            if (op == 'D' && y == 0) {
                mb_onnx_tensor_free(t);
                return ox_fail(im, "integer division by zero");
            }
            t->i[o] = op == 'A' ? x + y : op == 'S' ? x - y : op == 'M' ? x * y : x / y;
        }
        for (int i = nd - 1; i >= 0; i--) {
            if (++idx[i] < dims[i])
                break;
            idx[i] = 0;
        }
    }
    return bind_out(im, np, t);
}

static int fold_constant_of_shape(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *s = cval(im, np, 0);
    if (s->numel > MB_MAX_DIMS)
        return ox_unsupported(im, "a constant of rank %lld", (long long)s->numel);
    int64_t dims[MB_MAX_DIMS];
    for (int64_t k = 0; k < s->numel; k++)
        dims[k] = mb_onnx_tensor_geti(s, k);
    const Onnx__AttributeProto *va = ox_attr(np, "value");
    mb_onnx_tensor v;
    memset(&v, 0, sizeof v);
    double fv = 0;
    int64_t iv = 0;
    int is_float = 1;
    if (va && va->t) {
        char e[256];
        if (mb_onnx_decode(va->t, "value", &v, e, sizeof e))
            return ox_unsupported(im, "%s", e);
        if (v.numel != 1) {
            mb_onnx_tensor_clear(&v);
            return ox_fail(im, "value must hold one element");
        }
        is_float = v.f != NULL;
        fv = mb_onnx_tensor_get(&v, 0);
        iv = mb_onnx_tensor_geti(&v, 0);
        mb_onnx_tensor_clear(&v);
    }
    mb_onnx_tensor *t = new_const(im, is_float, (int)s->numel, dims);
    if (!t)
        return -1;
    for (int64_t k = 0; k < t->numel; k++)
        set_elem(t, k, fv, iv);
    return bind_out(im, np, t);
}

static int fold_reshape(ox_imp *im, const Onnx__NodeProto *np)
{
    const mb_onnx_tensor *d = cval(im, np, 0), *s = cval(im, np, 1);
    if (s->numel > MB_MAX_DIMS || s->numel < 0)
        return ox_unsupported(im, "target rank %lld", (long long)s->numel);
    int64_t dims[MB_MAX_DIMS], known = 1;
    int infer = -1;
    for (int k = 0; k < s->numel; k++) {
        dims[k] = mb_onnx_tensor_geti(s, k);
        if (dims[k] == 0 && !ox_attr_i(np, "allowzero", 0))
            dims[k] = k < d->ndim ? d->dims[k] : 0;
        if (dims[k] == -1)
            infer = k;
        else
            known *= dims[k];
    }
    if (infer >= 0)
        dims[infer] = known ? d->numel / known : 0;
    return bind_reshaped(im, np, d, (int)s->numel, dims);
}

/* The attributes each folded operator reads. */
static const char *const fold_attrs[][2] = {
    {"Shape", "start end"},     {"Gather", "axis"},          {"Unsqueeze", "axes"},
    {"Squeeze", "axes"},        {"Concat", "axis"},          {"Cast", "to"},
    {"Slice", "starts ends axes"}, {"Add", "broadcast axis"}, {"Sub", "broadcast axis"},
    {"Mul", "broadcast axis"},  {"Div", "broadcast axis"},   {"ConstantOfShape", "value"},
    {"Reshape", "allowzero"}, {"Size", ""},
};

static int attrs_known(ox_imp *im, const Onnx__NodeProto *np)
{
    for (size_t i = 0; i < sizeof fold_attrs / sizeof fold_attrs[0]; i++) {
        if (strcmp(fold_attrs[i][0], np->op_type))
            continue;
        for (size_t k = 0; k < np->n_attribute; k++) {
            const char *an = np->attribute[k]->name ? np->attribute[k]->name : "", *list = fold_attrs[i][1];
            size_t n = strlen(an);
            int ok = 0;
            for (const char *p = list; n && (p = strstr(p, an)); p += n)
                ok |= (p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]);
            if (!ok)
                return ox_unsupported(im, "attribute '%s' of %s is not supported", an, np->op_type);
        }
        return 0;
    }
    return 0;
}

int ox_try_fold(ox_imp *im, const Onnx__NodeProto *np)
{
    const char *op = np->op_type;
    if (attrs_known(im, np))
        return -1;
    /* every given input known at import time? */
    int all_const = np->n_input > 0;
    for (size_t k = 0; k < np->n_input; k++)
        if (ox_has(np, (int)k) && !ox_is_const(im, np, (int)k))
            all_const = 0;
    if (!strcmp(op, "Shape"))
        return fold_shape(im, np);
    if (!strcmp(op, "Size")) { /* the element count: known from the input's shape */
        int nd;
        int64_t dims[MB_MAX_DIMS], cnt = 1;
        if (dims_of(im, np, 0, &nd, dims))
            return -1;
        for (int i = 0; i < nd; i++)
            cnt *= dims[i];
        mb_onnx_tensor *t = new_const(im, 0, 0, dims);
        if (!t)
            return -1;
        t->i[0] = cnt;
        return bind_out(im, np, t);
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        for (size_t k = 1; k < np->n_input; k++)
            if (ox_has(np, (int)k) && !ox_const_ok(im, np, (int)k))
                return 0;
        return fold_unsqueeze(im, np, op[0] == 'S');
    }
    if (!strcmp(op, "Cast"))
        return fold_cast(im, np);
    if (!all_const)
        return 0;
    if (!strcmp(op, "Gather") && np->n_input == 2)
        return fold_gather(im, np);
    if (!strcmp(op, "Concat"))
        return fold_concat(im, np);
    if (!strcmp(op, "Slice"))
        return fold_slice(im, np);
    if ((!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) && np->n_input == 2 &&
        (im->opset >= 7 || !ox_attr(np, "axis")))
        return fold_binary(im, np);
    if (!strcmp(op, "ConstantOfShape"))
        return fold_constant_of_shape(im, np);
    if (!strcmp(op, "Reshape") && im->opset >= 5 && np->n_input == 2)
        return fold_reshape(im, np);
    return 0;
}
