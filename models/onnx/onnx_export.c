/* mb_graph -> ONNX ModelProto (opset 14) and mb_tensor -> TensorProto .pb.
 * Weights are written as little-endian raw_data pointing straight at the
 * graph's buffers, and the message is streamed to the file, so exporting
 * VGG16 needs no second copy of its 550 MB. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/platform.h"
#include "onnx_internal.h"

#define EXPORT_OPSET 14
#define EXPORT_IR 7 /* the IR version that goes with opset 14 */

/* Every allocation of one export, freed together. */
typedef struct ex {
    void **ptrs;
    size_t n, cap;
    int oom;
    Onnx__GraphProto *gp;
    size_t cap_nodes, cap_inits;
    const mb_graph *g;
    char *err;
    size_t errlen;
} ex;

static void *ex_alloc(ex *e, size_t n)
{
    if (e->oom)
        return NULL;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        void **np = realloc(e->ptrs, sizeof(void *) * cap);
        if (!np) {
            e->oom = 1;
            return NULL;
        }
        e->ptrs = np;
        e->cap = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        e->oom = 1;
        return NULL;
    }
    e->ptrs[e->n++] = p;
    return p;
}

static char *ex_str(ex *e, const char *s)
{
    char *p = ex_alloc(e, strlen(s) + 1);
    if (p)
        strcpy(p, s);
    return p;
}

static void ex_free(ex *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->ptrs[i]);
    free(e->ptrs);
}

static int grow(ex *e, void ***arr, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void **na = ex_alloc(e, sizeof(void *) * nc);
    if (!na)
        return -1;
    if (*arr)
        memcpy(na, *arr, sizeof(void *) * n);
    *arr = na;
    *cap = nc;
    return 0;
}

/* A float initializer whose raw_data borrows data (little-endian hosts). */
static int add_init_f(ex *e, const char *name, int ndim, const int64_t *dims, const float *data)
{
    Onnx__TensorProto *t = ex_alloc(e, sizeof *t);
    int64_t *d = ex_alloc(e, sizeof(int64_t) * (size_t)(ndim + 1));
    if (!t || !d || grow(e, (void ***)&e->gp->initializer, e->gp->n_initializer, &e->cap_inits))
        return -1;
    onnx__tensor_proto__init(t);
    t->name = ex_str(e, name);
    t->has_data_type = 1;
    t->data_type = MB_ONNX_FLOAT;
    t->n_dims = (size_t)ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= d[i] = dims[i];
    t->dims = d;
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)n * sizeof(float);
    t->raw_data.data = (uint8_t *)data;
    e->gp->initializer[e->gp->n_initializer++] = t;
    return t->name ? 0 : -1;
}

static int add_init_i64(ex *e, const char *name, int n, const int64_t *v)
{
    Onnx__TensorProto *t = ex_alloc(e, sizeof *t);
    int64_t *d = ex_alloc(e, sizeof(int64_t));
    int64_t *vals = ex_alloc(e, sizeof(int64_t) * (size_t)(n + 1));
    if (!t || !d || !vals || grow(e, (void ***)&e->gp->initializer, e->gp->n_initializer, &e->cap_inits))
        return -1;
    onnx__tensor_proto__init(t);
    t->name = ex_str(e, name);
    t->has_data_type = 1;
    t->data_type = MB_ONNX_INT64;
    t->n_dims = 1;
    d[0] = n;
    t->dims = d;
    memcpy(vals, v, sizeof(int64_t) * (size_t)n);
    t->n_int64_data = (size_t)n;
    t->int64_data = vals;
    e->gp->initializer[e->gp->n_initializer++] = t;
    return t->name ? 0 : -1;
}

static int add_scalar_f(ex *e, const char *name, float v)
{
    float *p = ex_alloc(e, sizeof(float));
    if (!p)
        return -1;
    *p = v;
    return add_init_f(e, name, 0, NULL, p);
}

static Onnx__NodeProto *add_node(ex *e, const char *op, const char *name)
{
    Onnx__NodeProto *n = ex_alloc(e, sizeof *n);
    char **ins = ex_alloc(e, sizeof(char *) * (MB_MAX_INPUTS + MB_MAX_PARAMS + 2));
    char **outs = ex_alloc(e, sizeof(char *));
    Onnx__AttributeProto **at = ex_alloc(e, sizeof(void *) * 16);
    if (!n || !ins || !outs || !at || grow(e, (void ***)&e->gp->node, e->gp->n_node, &e->cap_nodes))
        return NULL;
    onnx__node_proto__init(n);
    n->op_type = ex_str(e, op);
    n->name = ex_str(e, name);
    n->input = ins;
    n->output = outs;
    n->n_output = 1;
    outs[0] = n->name;
    n->attribute = at;
    e->gp->node[e->gp->n_node++] = n;
    return n->op_type && n->name ? n : NULL;
}

static int in_name(ex *e, Onnx__NodeProto *n, const char *name)
{
    n->input[n->n_input] = ex_str(e, name);
    return n->input[n->n_input++] ? 0 : -1;
}

static Onnx__AttributeProto *attr(ex *e, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType t)
{
    Onnx__AttributeProto *a = ex_alloc(e, sizeof *a);
    if (!a)
        return NULL;
    onnx__attribute_proto__init(a);
    a->name = ex_str(e, name);
    a->has_type = 1;
    a->type = t;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static int attr_i(ex *e, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a)
        return -1;
    a->has_i = 1;
    a->i = v;
    return 0;
}

static int attr_f(ex *e, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!a)
        return -1;
    a->has_f = 1;
    a->f = v;
    return 0;
}

static int attr_s(ex *e, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *s = ex_str(e, v);
    if (!a || !s)
        return -1;
    a->has_s = 1;
    a->s.data = (uint8_t *)s;
    a->s.len = strlen(v);
    return 0;
}

static int attr_ints(ex *e, Onnx__NodeProto *n, const char *name, int cnt, const int *v)
{
    Onnx__AttributeProto *a = attr(e, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *p = ex_alloc(e, sizeof(int64_t) * (size_t)cnt);
    if (!a || !p)
        return -1;
    for (int i = 0; i < cnt; i++)
        p[i] = v[i];
    a->n_ints = (size_t)cnt;
    a->ints = p;
    return 0;
}

static int onnx_type_of(int dtype)
{
    static const int map[MB_DT_COUNT] = {MB_ONNX_FLOAT, MB_ONNX_INT64, MB_ONNX_INT32, MB_ONNX_BOOL, MB_ONNX_INT8,
                                         MB_ONNX_UINT8};
    return dtype >= 0 && dtype < MB_DT_COUNT ? map[dtype] : MB_ONNX_FLOAT;
}

static Onnx__ValueInfoProto *value_info(ex *e, const char *name, int ndim, const int64_t *dims, int dtype)
{
    Onnx__ValueInfoProto *v = ex_alloc(e, sizeof *v);
    Onnx__TypeProto *t = ex_alloc(e, sizeof *t);
    Onnx__TypeProto__Tensor *tt = ex_alloc(e, sizeof *tt);
    Onnx__TensorShapeProto *sh = ex_alloc(e, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dv = ex_alloc(e, sizeof(void *) * (size_t)(ndim + 1));
    if (!v || !t || !tt || !sh || !dv)
        return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ex_alloc(e, sizeof *d);
        if (!d)
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d->dim_value = dims[i];
        dv[i] = d;
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = dv;
    tt->has_elem_type = 1;
    tt->elem_type = onnx_type_of(dtype);
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = ex_str(e, name);
    v->type = t;
    return v->name ? v : NULL;
}

static int efail(ex *e, const mb_node *nd, const char *what)
{
    snprintf(e->err, e->errlen, "node '%s' (%s): %s cannot be written as ONNX", nd->name, mb_op_name(nd->type), what);
    return -1;
}

/* One param as an initializer named "<node>.<role>", fed as the next input. */
static int param_input(ex *e, Onnx__NodeProto *n, const mb_node *nd, int k, const char *role)
{
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%s.%s", nd->name, role);
    const mb_tensor *t = nd->params[k];
    if (add_init_f(e, nm, t->ndim, t->dims, t->data))
        return -1;
    return in_name(e, n, nm);
}

static int spatial_attrs(ex *e, Onnx__NodeProto *n, const mb_op_attrs *a, int dil)
{
    int s[2] = {a->stride[0] ? a->stride[0] : 1, a->stride[1] ? a->stride[1] : 1};
    int d[2] = {a->dilation[0] ? a->dilation[0] : 1, a->dilation[1] ? a->dilation[1] : 1};
    return attr_ints(e, n, "kernel_shape", 2, a->kernel) || attr_ints(e, n, "strides", 2, s) ||
           attr_ints(e, n, "pads", 4, a->pads) || (dil && attr_ints(e, n, "dilations", 2, d));
}

/* Opset 14 unless the graph has an operator that needs a newer one
 * (LayerNormalization: 17). */
static int export_opset(const mb_graph *g)
{
    int v = EXPORT_OPSET;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].type == MB_OP_LAYERNORM)
            v = 17;
    }
    return v;
}

/* An int64 list initializer "<node>.<role>" fed as the next input. */
static int ints_input(ex *e, Onnx__NodeProto *n, const mb_node *nd, const char *role, int cnt, const int64_t *v)
{
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%s.%s", nd->name, role);
    return add_init_i64(e, nm, cnt, v) || in_name(e, n, nm);
}

/* A float param as an int64 initializer (indices). */
static int param_ints(ex *e, Onnx__NodeProto *n, const mb_node *nd, int k, const char *role)
{
    const mb_tensor *t = nd->params[k];
    int64_t cnt = mb_tensor_numel(t);
    int64_t *v = ex_alloc(e, sizeof(int64_t) * (size_t)(cnt + 1));
    Onnx__TensorProto *tp = ex_alloc(e, sizeof *tp);
    int64_t *d = ex_alloc(e, sizeof(int64_t) * (size_t)(t->ndim + 1));
    char nm[MB_NAME_LEN + 16];
    snprintf(nm, sizeof nm, "%s.%s", nd->name, role);
    if (!v || !tp || !d || grow(e, (void ***)&e->gp->initializer, e->gp->n_initializer, &e->cap_inits))
        return -1;
    for (int64_t i = 0; i < cnt; i++)
        v[i] = (int64_t)t->data[i];
    onnx__tensor_proto__init(tp);
    tp->name = ex_str(e, nm);
    tp->has_data_type = 1;
    tp->data_type = MB_ONNX_INT64;
    tp->n_dims = (size_t)t->ndim;
    memcpy(d, t->dims, sizeof(int64_t) * (size_t)t->ndim);
    tp->dims = d;
    tp->n_int64_data = (size_t)cnt;
    tp->int64_data = v;
    e->gp->initializer[e->gp->n_initializer++] = tp;
    return tp->name ? in_name(e, n, nm) : -1;
}

/* Gelu's tanh form (GPT-2's gelu_new) decomposed as PyTorch writes it
 * before opset 20: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
 * It imports as these elementwise ops (equal to mecbed's Gelu to rounding). */
static int export_gelu_tanh(ex *e, const mb_node *nd, const char *x)
{
    static const char *const ops[9] = {"Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"};
    static const int with_x[9] = {1, 1, 0, 1, 0, 0, 0, 1, 0};
    static const float cst[9] = {0, 0, 0.044715f, 0, 0.7978845608f, 0, 1.0f, 0, 0.5f};
    char prev[MB_NAME_LEN + 16], nm[MB_NAME_LEN + 16], cn[MB_NAME_LEN + 24];
    snprintf(prev, sizeof prev, "%s", x);
    for (int k = 0; k < 9; k++) {
        if (k < 8)
            snprintf(nm, sizeof nm, "%s/gelu%d", nd->name, k);
        else
            snprintf(nm, sizeof nm, "%s", nd->name);
        Onnx__NodeProto *n = add_node(e, ops[k], nm);
        if (!n || in_name(e, n, prev) || (with_x[k] && in_name(e, n, x)))
            return -1;
        if (cst[k] != 0) {
            snprintf(cn, sizeof cn, "%s.c", nm);
            if (add_scalar_f(e, cn, cst[k]) || in_name(e, n, cn))
                return -1;
        }
        snprintf(prev, sizeof prev, "%s", nm);
    }
    return 0;
}

/* Gelu (erf form) as PyTorch exports it before opset 20: x / sqrt 2 -> Erf
 * -> + 1 -> x * . -> * 0.5; the importer fuses it back into one node that
 * computes these operations in this order (bit-identical round trip). */
static int export_gelu(ex *e, const mb_node *nd, const char *x)
{
    if (nd->a.gelu_tanh)
        return export_gelu_tanh(e, nd, x);
    static const char *const ops[5] = {"Div", "Erf", "Add", "Mul", "Mul"};
    static const char *const tags[5] = {"/div", "/erf", "/add", "/mul", ""};
    static const float cst[5] = {1.41421354f, 0, 1.0f, 0, 0.5f};
    char prev[MB_NAME_LEN + 16], nm[MB_NAME_LEN + 16], cn[MB_NAME_LEN + 24];
    snprintf(prev, sizeof prev, "%s", x);
    for (int k = 0; k < 5; k++) {
        snprintf(nm, sizeof nm, "%s%s", nd->name, tags[k]);
        Onnx__NodeProto *n = add_node(e, ops[k], nm);
        if (!n || (k == 3 && in_name(e, n, x)) || in_name(e, n, prev))
            return -1;
        if (cst[k] != 0) {
            snprintf(cn, sizeof cn, "%s.c", nm);
            if (add_scalar_f(e, cn, cst[k]) || in_name(e, n, cn))
                return -1;
        }
        snprintf(prev, sizeof prev, "%s", nm);
    }
    return 0;
}

static int reduce_attrs(ex *e, Onnx__NodeProto *n, const mb_node *nd, int rank)
{
    int64_t axes[MB_MAX_DIMS];
    int na = 0;
    for (int i = 0; i < rank; i++)
        if (nd->a.axes_mask & (1 << i))
            axes[na++] = i;
    if (nd->type == MB_OP_REDUCESUM) { /* axes is an input since opset 13 */
        if (ints_input(e, n, nd, "axes", na, axes))
            return -1;
    } else {
        int ax[MB_MAX_DIMS];
        for (int i = 0; i < na; i++)
            ax[i] = (int)axes[i];
        if (attr_ints(e, n, "axes", na, ax))
            return -1;
    }
    return attr_i(e, n, "keepdims", nd->a.keepdims);
}

static int export_slice(ex *e, Onnx__NodeProto *n, const mb_node *nd, int rank, const int64_t *in_dims)
{
    int64_t st[MB_MAX_DIMS], en[MB_MAX_DIMS], ax[MB_MAX_DIMS], sp[MB_MAX_DIMS];
    int c = 0;
    for (int i = 0; i < rank; i++) {
        if (!nd->a.steps[i])
            continue;
        st[c] = nd->a.starts[i];
        /* a reverse slice down to index 0 ends "before 0": -len-1 (ONNX adds len, clamps to -1) */
        en[c] = nd->a.ends[i] == -1 ? -in_dims[i] - 1 : nd->a.ends[i];
        ax[c] = i;
        sp[c++] = nd->a.steps[i];
    }
    return ints_input(e, n, nd, "starts", c, st) || ints_input(e, n, nd, "ends", c, en) ||
           ints_input(e, n, nd, "axes", c, ax) || ints_input(e, n, nd, "steps", c, sp);
}

/* The transformer operators. */
static int export_tf_node(ex *e, Onnx__NodeProto *n, const mb_node *nd)
{
    const mb_graph *g = e->g;
    const mb_op_attrs *a = &nd->a;
    int in_rank = nd->n_inputs ? g->nodes[nd->inputs[0]].out_ndim : 0;
    const int64_t *in_dims = nd->n_inputs ? g->nodes[nd->inputs[0]].out_dims : NULL;
    if (nd->type >= MB_OP_REDUCEMEAN && nd->type <= MB_OP_REDUCELOGSUMEXP)
        return reduce_attrs(e, n, nd, in_rank);
    if (nd->type >= MB_OP_POW && nd->type <= MB_OP_XOR)
        return nd->n_params ? param_input(e, n, nd, 0, "B") : 0;
    switch (nd->type) {
    case MB_OP_TRANSPOSE:
        return attr_ints(e, n, "perm", in_rank, a->perm);
    case MB_OP_LAYERNORM:
        return param_input(e, n, nd, 0, "scale") || (nd->n_params > 1 && param_input(e, n, nd, 1, "bias")) ||
               attr_i(e, n, "axis", a->axis) || attr_f(e, n, "epsilon", a->epsilon);
    case MB_OP_INSTANCENORM:
        return param_input(e, n, nd, 0, "scale") || param_input(e, n, nd, 1, "B") ||
               attr_f(e, n, "epsilon", a->epsilon);
    case MB_OP_ELU:
        return attr_f(e, n, "alpha", a->alpha);
    case MB_OP_SELU:
        return attr_f(e, n, "alpha", a->alpha) || attr_f(e, n, "gamma", a->beta);
    case MB_OP_LOGSOFTMAX:
        return attr_i(e, n, "axis", a->axis);
    case MB_OP_SLICE:
        return export_slice(e, n, nd, in_rank, in_dims);
    case MB_OP_GATHER:
        if (nd->n_inputs == 1 && !a->gather_table && param_ints(e, n, nd, 0, "indices"))
            return -1;
        return attr_i(e, n, "axis", a->axis);
    case MB_OP_EXPAND:
        return ints_input(e, n, nd, "shape", a->shape_ndim, a->shape);
    case MB_OP_TILE:
        return ints_input(e, n, nd, "repeats", a->shape_ndim, a->shape);
    case MB_OP_CAST:
        return attr_i(e, n, "to", onnx_type_of(a->dtype));
    case MB_OP_WHERE:
        return 0;
    case MB_OP_ARGMAX:
    case MB_OP_ARGMIN:
        return attr_i(e, n, "axis", a->axis) || attr_i(e, n, "keepdims", a->keepdims) ||
               (a->select_last && attr_i(e, n, "select_last_index", 1));
    default:
        if (nd->type >= MB_OP_ERF && nd->type <= MB_OP_SIGN)
            return 0;
        return efail(e, nd, "this operator");
    }
}

static const char *const coord_names[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                          "tf_half_pixel_for_nn"};
static const char *const nearest_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};

static int export_node(ex *e, int idx)
{
    const mb_graph *g = e->g;
    const mb_node *nd = &g->nodes[idx];
    const mb_op_attrs *a = &nd->a;
    if (nd->type == MB_OP_CONSTANT) {
        const mb_tensor *t = nd->params[0];
        if (nd->out_dtype == MB_DT_INT64 && t->ndim == 1) { /* integer constants stay integers (indices, slots) */
            int64_t *v = ex_alloc(e, sizeof(int64_t) * (size_t)(t->dims[0] + 1));
            for (int64_t i = 0; v && i < t->dims[0]; i++)
                v[i] = (int64_t)t->data[i];
            return v ? add_init_i64(e, nd->name, (int)t->dims[0], v) : -1;
        }
        return add_init_f(e, nd->name, t->ndim, t->dims, t->data);
    }
    if (nd->type == MB_OP_GELU)
        return export_gelu(e, nd, g->nodes[nd->inputs[0]].name);
    const char *op = mb_op_name(nd->type);
    Onnx__NodeProto *n = add_node(e, op, nd->name);
    if (!n)
        return -1;
    if (nd->type == MB_OP_GATHER && nd->n_inputs == 1 && nd->a.gather_table &&
        param_input(e, n, nd, 0, "table")) /* the table is Gather's data, input 0 */
        return -1;
    for (int k = 0; k < nd->n_inputs; k++)
        if (in_name(e, n, g->nodes[nd->inputs[k]].name))
            return -1;
    char nm[MB_NAME_LEN + 16];
    switch (nd->type) {
    case MB_OP_CONV:
    case MB_OP_CONV_TRANSPOSE:
        if (a->auto_pad != MB_AUTO_PAD_NOTSET)
            return efail(e, nd, "an unresolved auto_pad");
        if (param_input(e, n, nd, 0, "W") || (nd->n_params > 1 && param_input(e, n, nd, 1, "B")) ||
            spatial_attrs(e, n, a, 1) || attr_i(e, n, "group", a->group ? a->group : 1))
            return -1;
        if (nd->type == MB_OP_CONV_TRANSPOSE && (a->output_padding[0] || a->output_padding[1]) &&
            attr_ints(e, n, "output_padding", 2, a->output_padding))
            return -1;
        return 0;
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        if (a->auto_pad != MB_AUTO_PAD_NOTSET)
            return efail(e, nd, "an unresolved auto_pad");
        if (nd->type == MB_OP_AVGPOOL && ((a->dilation[0] > 1) || (a->dilation[1] > 1)))
            return efail(e, nd, "a dilated AveragePool (opset 19)");
        if (spatial_attrs(e, n, a, nd->type == MB_OP_MAXPOOL) || attr_i(e, n, "ceil_mode", a->ceil_mode))
            return -1;
        if (nd->type == MB_OP_AVGPOOL && attr_i(e, n, "count_include_pad", a->count_include_pad))
            return -1;
        return 0;
    case MB_OP_GEMM:
        if ((nd->n_inputs == 1 && param_input(e, n, nd, 0, "B")) ||
            (nd->n_params > (nd->n_inputs == 1) && param_input(e, n, nd, nd->n_inputs == 1, "C")))
            return -1;
        return attr_f(e, n, "alpha", a->alpha == 0 && a->beta == 0 ? 1.0f : a->alpha) ||
               attr_f(e, n, "beta", a->alpha == 0 && a->beta == 0 ? 1.0f : a->beta) ||
               attr_i(e, n, "transA", a->trans_a) || attr_i(e, n, "transB", a->trans_b);
    case MB_OP_MATMUL:
        return nd->n_inputs == 1 ? param_input(e, n, nd, 0, "B") : 0;
    case MB_OP_ADD: case MB_OP_SUB: case MB_OP_MUL: case MB_OP_DIV:
        return nd->n_params ? param_input(e, n, nd, 0, "B") : 0;
    case MB_OP_CLIP:
        /* opset 13: min and max are scalar inputs; an infinite bound is omitted */
        snprintf(nm, sizeof nm, "%s.min", nd->name);
        if (isinf(a->alpha) && a->alpha < 0) {
            if (in_name(e, n, ""))
                return -1;
        } else if (add_scalar_f(e, nm, a->alpha) || in_name(e, n, nm)) {
            return -1;
        }
        snprintf(nm, sizeof nm, "%s.max", nd->name);
        if (!(isinf(a->beta) && a->beta > 0) && (add_scalar_f(e, nm, a->beta) || in_name(e, n, nm)))
            return -1;
        return 0;
    case MB_OP_LEAKYRELU:
        return attr_f(e, n, "alpha", a->alpha);
    case MB_OP_HARDSIGMOID:
        return attr_f(e, n, "alpha", a->alpha) || attr_f(e, n, "beta", a->beta);
    case MB_OP_CONCAT:
    case MB_OP_SOFTMAX:
    case MB_OP_FLATTEN:
        return attr_i(e, n, "axis", a->axis);
    case MB_OP_BATCHNORM:
        return param_input(e, n, nd, 0, "scale") || param_input(e, n, nd, 1, "bias") ||
               param_input(e, n, nd, 2, "mean") || param_input(e, n, nd, 3, "var") ||
               attr_f(e, n, "epsilon", a->epsilon);
    case MB_OP_RESHAPE:
        snprintf(nm, sizeof nm, "%s.shape", nd->name);
        return add_init_i64(e, nm, a->shape_ndim, a->shape) || in_name(e, n, nm);
    case MB_OP_PAD: {
        int nd0 = g->nodes[nd->inputs[0]].out_ndim;
        static const char *const modes[] = {"constant", "reflect", "edge"};
        if (a->pad_mode < 0 || a->pad_mode > 2)
            return efail(e, nd, "this pad mode");
        snprintf(nm, sizeof nm, "%s.pads", nd->name);
        if (add_init_i64(e, nm, 2 * nd0, a->pad_amounts) || in_name(e, n, nm) || attr_s(e, n, "mode", modes[a->pad_mode]))
            return -1;
        snprintf(nm, sizeof nm, "%s.value", nd->name);
        if (a->pad_mode == MB_PAD_CONSTANT && a->pad_value != 0 && (add_scalar_f(e, nm, a->pad_value) || in_name(e, n, nm)))
            return -1;
        return 0;
    }
    case MB_OP_RESIZE: {
        if (a->coord_mode < 0 || a->coord_mode > 4 || a->nearest_mode < 0 || a->nearest_mode > 3 ||
            (a->resize_mode != MB_RESIZE_NEAREST && a->resize_mode != MB_RESIZE_LINEAR))
            return efail(e, nd, "this resize mode");
        int rank = nd->out_ndim;
        snprintf(nm, sizeof nm, "%s.scales", nd->name);
        return in_name(e, n, "") || add_init_f(e, nm, 1, (int64_t[]){rank}, a->scales) || in_name(e, n, nm) ||
               attr_s(e, n, "mode", a->resize_mode == MB_RESIZE_LINEAR ? "linear" : "nearest") ||
               attr_s(e, n, "coordinate_transformation_mode", coord_names[a->coord_mode]) ||
               attr_s(e, n, "nearest_mode", nearest_names[a->nearest_mode]);
    }
    case MB_OP_GLOBALAVGPOOL: case MB_OP_RELU: case MB_OP_SIGMOID: case MB_OP_HARDSWISH: case MB_OP_IDENTITY:
        return 0;
    default:
        return export_tf_node(e, n, nd);
    }
}

/* protobuf-c output straight into a FILE. */
typedef struct file_buf {
    ProtobufCBuffer base;
    FILE *f;
    int failed;
} file_buf;

static void file_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buf *fb = (file_buf *)b;
    if (!fb->failed && len && fwrite(data, 1, len, fb->f) != len)
        fb->failed = 1;
}

static int write_message(const ProtobufCMessage *msg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    file_buf fb = {{file_append}, f, 0};
    protobuf_c_message_pack_to_buffer(msg, &fb.base);
    int bad = fb.failed | ferror(f);
    if (fclose(f) || bad) {
        snprintf(err, errlen, "%s: write failed (%s)", path, strerror(errno));
        remove(path);
        return -1;
    }
    return 0;
}

int mb_onnx_save(const mb_graph *g, const char *path, char *err, size_t errlen)
{
    ex e;
    memset(&e, 0, sizeof e);
    e.g = g;
    char msg[512] = "";
    e.err = msg;
    e.errlen = sizeof msg;
    Onnx__ModelProto *mp = ex_alloc(&e, sizeof *mp);
    Onnx__GraphProto *gp = ex_alloc(&e, sizeof *gp);
    Onnx__OperatorSetIdProto *os = ex_alloc(&e, sizeof *os);
    Onnx__OperatorSetIdProto **osp = ex_alloc(&e, sizeof(void *));
    Onnx__ValueInfoProto **outs = ex_alloc(&e, sizeof(void *) * MB_MAX_OUTPUTS);
    int rc = 0;
    if (!mp || !gp || !os || !osp || !outs) {
        rc = -1;
        goto done;
    }
    onnx__model_proto__init(mp);
    onnx__graph_proto__init(gp);
    onnx__operator_set_id_proto__init(os);
    e.gp = gp;
    os->domain = ex_str(&e, "");
    os->has_version = 1;
    os->version = export_opset(g);
    osp[0] = os;
    mp->n_opset_import = 1;
    mp->opset_import = osp;
    mp->has_ir_version = 1;
    mp->ir_version = EXPORT_IR;
    mp->producer_name = ex_str(&e, "mecbed");
    mp->producer_version = ex_str(&e, MB_VERSION);
    mp->graph = gp;
    gp->name = ex_str(&e, g->name);
    gp->input = ex_alloc(&e, sizeof(void *) * ((size_t)g->n_nodes + 1));
    if (!gp->input) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < g->n_nodes && !rc; i++) {
        if (g->nodes[i].out_ndim <= 0 && g->nodes[i].type != MB_OP_CONSTANT) {
            snprintf(msg, sizeof msg, "node '%s' has no inferred shape (run mb_graph_infer first)", g->nodes[i].name);
            rc = -1;
            break;
        }
        /* inputs were sized for every node: no growth needed */
        if (g->nodes[i].type == MB_OP_INPUT) {
            Onnx__ValueInfoProto *v = value_info(&e, g->nodes[i].name, g->nodes[i].out_ndim, g->nodes[i].out_dims,
                                                 g->nodes[i].out_dtype);
            if (!v)
                rc = -1;
            else
                gp->input[gp->n_input++] = v;
            continue;
        }
        rc = export_node(&e, i);
    }
    for (int k = 0; k < g->n_outputs && !rc; k++) {
        const mb_node *o = &g->nodes[g->outputs[k]];
        outs[k] = value_info(&e, o->name, o->out_ndim, o->out_dims, o->out_dtype);
        if (!outs[k])
            rc = -1;
    }
    gp->n_output = (size_t)g->n_outputs;
    gp->output = outs;
    if (!rc && e.oom)
        rc = -1;
done:
    if (rc || e.oom) {
        snprintf(err, errlen, "%s: %s", path, msg[0] ? msg : "out of memory");
        rc = -1;
    } else {
        rc = write_message(&mp->base, path, err, errlen);
    }
    ex_free(&e);
    return rc;
}

int mb_onnx_tensor_write(const mb_tensor *t, const char *name, const char *path, char *err, size_t errlen)
{
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    tp.name = (char *)(name ? name : "");
    tp.has_data_type = 1;
    tp.data_type = MB_ONNX_FLOAT;
    tp.n_dims = (size_t)t->ndim;
    tp.dims = (int64_t *)t->dims;
    tp.has_raw_data = 1;
    tp.raw_data.len = mb_tensor_bytes(t);
    tp.raw_data.data = (uint8_t *)t->data;
    return write_message(&tp.base, path, err, errlen);
}

int mb_onnx_tensor_write_as(const mb_tensor *t, int dtype, const char *name, const char *path, char *err,
                            size_t errlen)
{
    if (dtype == MB_DT_FLOAT || dtype < 0 || dtype >= MB_DT_COUNT)
        return mb_onnx_tensor_write(t, name, path, err, errlen);
    int64_t n = mb_tensor_numel(t);
    int64_t *v = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!v) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = (int64_t)t->data[i];
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    tp.name = (char *)(name ? name : "");
    tp.has_data_type = 1;
    tp.data_type = onnx_type_of(dtype);
    tp.n_dims = (size_t)t->ndim;
    tp.dims = (int64_t *)t->dims;
    int32_t *w = NULL;
    if (dtype == MB_DT_INT64) {
        tp.n_int64_data = (size_t)n;
        tp.int64_data = v;
    } else { /* int32, bool, int8, uint8 are stored in int32_data */
        w = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
        if (!w) {
            free(v);
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (int64_t i = 0; i < n; i++)
            w[i] = (int32_t)v[i];
        tp.n_int32_data = (size_t)n;
        tp.int32_data = w;
    }
    int rc = write_message(&tp.base, path, err, errlen);
    free(v);
    free(w);
    return rc;
}
