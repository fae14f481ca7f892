/* ONNX ModelProto -> mb_graph: parsing, the name table, graph inputs and
 * outputs, topological order, dead-node removal. The per-operator
 * conversion is in onnx_ops.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/model.h"
#include "onnx_import.h"

/* ---- the parsed model ---------------------------------------------------- */

static int name_in_initializers(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name))
            return 1;
    return 0;
}

mb_onnx_model *mb_onnx_open(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    const unsigned char *buf = mb_onnx_map_file(path, &len, err, errlen);
    if (!buf)
        return NULL;
    if (len == 0) {
        snprintf(err, errlen, "%s: empty file, not an ONNX model", path);
        return NULL;
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    mb_onnx_unmap_file(buf, len);
    if (!mp) {
        snprintf(err, errlen, "%s: not a valid ONNX model (truncated or corrupt protobuf, %zu bytes)", path, len);
        return NULL;
    }
    if (!mp->graph) {
        snprintf(err, errlen, "%s: the model has no graph (truncated, or not an ONNX model)", path);
        onnx__model_proto__free_unpacked(mp, NULL);
        return NULL;
    }
    mb_onnx_model *m = calloc(1, sizeof *m);
    const Onnx__GraphProto *gp = mp->graph;
    if (m)
        m->inputs = calloc(gp->n_input + 1, sizeof(char *));
    if (m)
        m->path = strdup(path);
    if (!m || !m->inputs || !m->path) {
        snprintf(err, errlen, "%s: out of memory", path);
        if (m) {
            free(m->inputs);
            free(m->path);
        }
        free(m);
        onnx__model_proto__free_unpacked(mp, NULL);
        return NULL;
    }
    m->proto = mp;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if ((!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
            m->opset = o->version;
    }
    /* IR version 3 and older models list initializers among the inputs too. */
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (!name_in_initializers(gp, nm))
            m->inputs[m->n_inputs++] = nm;
    }
    return m;
}

void mb_onnx_close(mb_onnx_model *m)
{
    if (!m)
        return;
    onnx__model_proto__free_unpacked(m->proto, NULL);
    free(m->inputs);
    free(m->path);
    free(m);
}

int64_t mb_onnx_opset(const mb_onnx_model *m) { return m->opset; }

/* A tensor of a numeric type (or of no declared type)? */
static int vi_is_tensor(const Onnx__ValueInfoProto *vi, char *why, size_t len)
{
    const Onnx__TypeProto *tp = vi->type;
    const char *nm = vi->name ? vi->name : "";
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET)
        return 1;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        const char *kind = tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "a sequence"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE    ? "a map"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE ? "an optional"
                                                                                      : "a sparse tensor";
        snprintf(why, len, "'%s' is %s, not a tensor", nm, kind);
        return 0;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && (tt->elem_type == MB_ONNX_STRING || tt->elem_type == 14 || tt->elem_type == 15)) {
        snprintf(why, len, "'%s' has type %s", nm, mb_onnx_type_name(tt->elem_type));
        return 0;
    }
    return 1;
}

int mb_onnx_io_supported(const mb_onnx_model *m, char *why, size_t len)
{
    const Onnx__GraphProto *gp = m->proto->graph;
    char w[256];
    for (size_t i = 0; i < gp->n_input; i++)
        if (!vi_is_tensor(gp->input[i], w, sizeof w)) {
            snprintf(why, len, "graph input %s", w);
            return 0;
        }
    for (size_t i = 0; i < gp->n_output; i++)
        if (!vi_is_tensor(gp->output[i], w, sizeof w)) {
            snprintf(why, len, "graph output %s", w);
            return 0;
        }
    return 1;
}
int mb_onnx_n_inputs(const mb_onnx_model *m) { return m->n_inputs; }
const char *mb_onnx_input_name(const mb_onnx_model *m, int k) { return m->inputs[k]; }
int mb_onnx_n_outputs(const mb_onnx_model *m) { return (int)m->proto->graph->n_output; }
int mb_onnx_n_nodes(const mb_onnx_model *m) { return (int)m->proto->graph->n_node; }

const char *mb_onnx_output_name(const mb_onnx_model *m, int k)
{
    const char *s = m->proto->graph->output[k]->name;
    return s ? s : "";
}

const char *mb_onnx_node_op(const mb_onnx_model *m, int i)
{
    const char *s = m->proto->graph->node[i]->op_type;
    return s ? s : "";
}

const char *mb_onnx_node_domain(const mb_onnx_model *m, int i)
{
    const char *s = m->proto->graph->node[i]->domain;
    return s ? s : "";
}

/* ---- errors --------------------------------------------------------------- */

static void vfail(ox_imp *im, int why, const char *fmt, va_list ap)
{
    im->why = why;
    size_t k = 0;
    int w = snprintf(im->err, im->errlen, "%s: ", im->m->path);
    if (w > 0)
        k = (size_t)w < im->errlen ? (size_t)w : im->errlen;
    if (im->cur && k < im->errlen) {
        const Onnx__NodeProto *np = im->cur;
        const char *nm = np->name && *np->name ? np->name : (np->n_output ? np->output[0] : "");
        w = snprintf(im->err + k, im->errlen - k, "node '%s' (%s, opset %lld, #%d): ", nm,
                     np->op_type ? np->op_type : "?", (long long)im->opset, im->cur_index);
        if (w > 0)
            k += (size_t)w < im->errlen - k ? (size_t)w : im->errlen - k;
    }
    if (k < im->errlen)
        vsnprintf(im->err + k, im->errlen - k, fmt, ap);
}

int ox_fail(ox_imp *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(im, MB_ONNX_ERROR, fmt, ap);
    va_end(ap);
    return -1;
}

int ox_unsupported(ox_imp *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(im, MB_ONNX_UNSUPPORTED, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- names ---------------------------------------------------------------- */

static uint64_t str_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static int table_grow(ox_imp *im)
{
    size_t cap = im->table_cap ? im->table_cap * 2 : 1024;
    int *t = calloc(cap, sizeof(int));
    if (!t)
        return -1;
    for (int v = 0; v < im->n_vals; v++) {
        size_t h = (size_t)str_hash(im->vals[v].name) & (cap - 1);
        while (t[h])
            h = (h + 1) & (cap - 1);
        t[h] = v + 1;
    }
    free(im->table);
    im->table = t;
    im->table_cap = cap;
    return 0;
}

ox_val *ox_lookup(ox_imp *im, const char *name)
{
    if (!im->table_cap || !name)
        return NULL;
    size_t h = (size_t)str_hash(name) & (im->table_cap - 1);
    while (im->table[h]) {
        ox_val *v = &im->vals[im->table[h] - 1];
        if (!strcmp(v->name, name))
            return v;
        h = (h + 1) & (im->table_cap - 1);
    }
    return NULL;
}

/* The entry for name, created empty if new. */
static ox_val *val_get(ox_imp *im, const char *name)
{
    ox_val *v = ox_lookup(im, name);
    if (v)
        return v;
    if ((size_t)(im->n_vals + 1) * 2 > im->table_cap && table_grow(im))
        return NULL;
    if (im->n_vals == im->cap_vals) {
        int cap = im->cap_vals ? im->cap_vals * 2 : 256;
        ox_val *nv = realloc(im->vals, sizeof(ox_val) * (size_t)cap);
        if (!nv)
            return NULL;
        im->vals = nv;
        im->cap_vals = cap;
    }
    v = &im->vals[im->n_vals];
    memset(v, 0, sizeof *v);
    v->name = name;
    v->node = v->const_node = v->input_pos = -1;
    size_t h = (size_t)str_hash(name) & (im->table_cap - 1);
    while (im->table[h])
        h = (h + 1) & (im->table_cap - 1);
    im->table[h] = ++im->n_vals;
    return v;
}

int ox_bind_node(ox_imp *im, const char *name, int node)
{
    ox_val *v = val_get(im, name);
    if (!v)
        return ox_fail(im, "out of memory");
    if (v->node >= 0 || v->c || v->input_pos >= 0)
        return ox_fail(im, "tensor '%s' is produced twice (ONNX graphs are single-assignment)", name);
    v->node = node;
    return 0;
}

int ox_bind_const(ox_imp *im, const char *name, mb_onnx_tensor *c)
{
    ox_val *v = val_get(im, name);
    if (!v) {
        mb_onnx_tensor_free(c);
        return ox_fail(im, "out of memory");
    }
    if (v->node >= 0 || v->c || v->input_pos >= 0) {
        mb_onnx_tensor_free(c);
        return ox_fail(im, "tensor '%s' is produced twice (ONNX graphs are single-assignment)", name);
    }
    v->c = c;
    return 0;
}

/* ---- nodes ---------------------------------------------------------------- */

int ox_add(ox_imp *im, mb_node *n, const char *name)
{
    /* Node names must be unique and fit MB_NAME_LEN; ONNX tensor names are
     * unique but may be long, and helper nodes add suffixes. */
    char base[MB_NAME_LEN];
    snprintf(base, sizeof base, "%s", name && *name ? name : mb_op_name(n->type));
    snprintf(n->name, sizeof n->name, "%s", base);
    for (int k = 1; mb_graph_find(im->g, n->name) >= 0; k++) {
        char sfx[24];
        int sl = snprintf(sfx, sizeof sfx, "~%d", k);
        int keep = (int)strlen(base);
        if (keep > MB_NAME_LEN - 1 - sl)
            keep = MB_NAME_LEN - 1 - sl;
        snprintf(n->name, sizeof n->name, "%.*s%s", keep, base, sfx);
    }
    int idx = mb_graph_add(im->g, n);
    if (idx < 0) {
        for (int k = 0; k < n->n_params; k++)
            mb_tensor_free(n->params[k]);
        return ox_fail(im, "out of memory");
    }
    return idx;
}

int ox_shape(ox_imp *im, int idx, int *ndim, int64_t *dims)
{
    /* Infer the graph built so far (idempotent) with idx as its output. */
    mb_graph *g = im->g;
    int save_n = g->n_outputs, save0 = g->outputs[0];
    g->n_outputs = 1;
    g->outputs[0] = idx;
    char e[512];
    int rc = mb_graph_infer(g, e, sizeof e);
    g->n_outputs = save_n;
    g->outputs[0] = save0;
    if (rc)
        return ox_fail(im, "shape inference of its inputs failed: %s", e);
    *ndim = g->nodes[idx].out_ndim;
    memcpy(dims, g->nodes[idx].out_dims, sizeof(int64_t) * (size_t)*ndim);
    return 0;
}

int ox_has(const Onnx__NodeProto *np, int k)
{
    return k >= 0 && (size_t)k < np->n_input && np->input[k] && np->input[k][0];
}

static const mb_onnx_binding *binding(const ox_imp *im, const char *name)
{
    if (!im->opts)
        return NULL;
    for (int b = 0; b < im->opts->n_bind; b++)
        if (im->opts->bind[b].name && !strcmp(im->opts->bind[b].name, name))
            return &im->opts->bind[b];
    return NULL;
}

/* Make the MB_OP_INPUT node of a graph input used as data. */
static int make_input(ox_imp *im, ox_val *v)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    n.type = MB_OP_INPUT;
    const mb_onnx_binding *b = binding(im, v->name);
    const Onnx__TypeProto *tp = v->vi ? v->vi->type : NULL;
    const Onnx__TypeProto__Tensor *tt =
        tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? tp->tensor_type : NULL;
    if (v->c) {
        if (!v->c->f && ox_dtype_of(v->c->data_type) < 0)
            return ox_unsupported(im, "graph input '%s' has type %s; mecbed computes in float", v->name,
                                  mb_onnx_type_name(v->c->data_type));
        n.a.dtype = v->c->f ? MB_DT_FLOAT : ox_dtype_of(v->c->data_type);
        n.a.shape_ndim = v->c->ndim;
        memcpy(n.a.shape, v->c->dims, sizeof(int64_t) * (size_t)v->c->ndim);
    } else {
        if (!tt)
            return ox_unsupported(im, "graph input '%s' is not a tensor", v->name);
        if (tt->has_elem_type && ox_dtype_of(tt->elem_type) < 0)
            return ox_unsupported(im, "graph input '%s' has type %s; mecbed computes in float", v->name,
                                  mb_onnx_type_name(tt->elem_type));
        n.a.dtype = tt->has_elem_type ? ox_dtype_of(tt->elem_type) : MB_DT_FLOAT;
        if (b && b->ndim > 0) {
            n.a.shape_ndim = b->ndim;
            memcpy(n.a.shape, b->dims, sizeof(int64_t) * (size_t)b->ndim);
        } else {
            if (!tt->shape)
                return ox_unsupported(im, "graph input '%s' declares no shape; give it with "
                                      "`mecbed import --shape %s=1,3,224,224`", v->name, v->name);
            if (tt->shape->n_dim > MB_MAX_DIMS)
                return ox_unsupported(im, "graph input '%s' has rank %zu (mecbed's limit is %d)", v->name,
                                      tt->shape->n_dim, MB_MAX_DIMS);
            n.a.shape_ndim = (int)tt->shape->n_dim;
            for (size_t d = 0; d < tt->shape->n_dim; d++) {
                const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
                if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value == 0)
                    return ox_unsupported(im, "graph input '%s' dimension %zu is 0 (empty tensors)", v->name, d);
                if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && dim->dim_value > 0) {
                    n.a.shape[d] = dim->dim_value;
                } else if (d == 0 && tt->shape->n_dim > 1) {
                    n.a.shape[d] = 1; /* dynamic batch: one frame, as an inference testbed runs */
                } else {
                    const char *p = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                        ? dim->dim_param : "?";
                    return ox_unsupported(im, "graph input '%s' dimension %zu is dynamic ('%s'); give its shape "
                                          "with `mecbed import --shape %s=1,3,224,224`", v->name, d, p, v->name);
                }
            }
        }
    }
    if (n.a.shape_ndim < 1)
        return ox_unsupported(im, "graph input '%s' is a scalar; mecbed inputs have rank >= 1", v->name);
    for (int d = 0; d < n.a.shape_ndim; d++)
        if (n.a.shape[d] == 0)
            return ox_unsupported(im, "graph input '%s' dimension %d is 0 (empty tensors)", v->name, d);
    const Onnx__NodeProto *cur = im->cur;
    im->cur = NULL;
    int idx = ox_add(im, &n, v->name);
    im->cur = cur;
    if (idx < 0)
        return -1;
    v->node = idx;
    return 0;
}

int ox_data(ox_imp *im, const Onnx__NodeProto *np, int k, int *node)
{
    if (!ox_has(np, k))
        return ox_fail(im, "input %d is missing", k);
    ox_val *v = ox_lookup(im, np->input[k]);
    if (!v)
        return ox_fail(im, "input %d ('%s') is produced by no node, initializer or graph input", k, np->input[k]);
    if (v->node >= 0) {
        *node = v->node;
        return 0;
    }
    if (v->input_pos >= 0) {
        /* A graph input used as data stays an input even when a value was bound. */
        if (make_input(im, v))
            return -1;
        *node = v->node;
        return 0;
    }
    if (v->c) {
        if (v->const_node < 0) {
            mb_node n;
            memset(&n, 0, sizeof n);
            n.type = MB_OP_CONSTANT;
            n.n_params = 1;
            n.a.dtype = v->c->f || ox_dtype_of(v->c->data_type) < 0 ? MB_DT_FLOAT : ox_dtype_of(v->c->data_type);
            n.params[0] = mb_onnx_tensor_to_mb(v->c);
            if (!n.params[0])
                return ox_fail(im, "out of memory");
            int idx = ox_add(im, &n, v->name);
            if (idx < 0)
                return -1;
            v->const_node = idx;
        }
        *node = v->const_node;
        return 0;
    }
    /* values consumed are all known by name (import_graph counts their uses):
     * say whether any node produces this one at all */
    for (size_t i = 0; i < im->gp->n_node; i++)
        for (size_t o = 0; o < im->gp->node[i]->n_output; o++)
            if (im->gp->node[i]->output[o] && !strcmp(im->gp->node[i]->output[o], np->input[k]))
                return ox_fail(im, "input %d ('%s') is used before it is produced", k, np->input[k]);
    return ox_fail(im, "input %d ('%s') is produced by no node, initializer or graph input", k, np->input[k]);
}

int ox_is_const(ox_imp *im, const Onnx__NodeProto *np, int k)
{
    /* A bound graph input is not: used as data it stays an input (ox_const
     * still accepts it where only a constant will do). */
    ox_val *v = ox_has(np, k) ? ox_lookup(im, np->input[k]) : NULL;
    return v && v->c && v->node < 0 && (v->input_pos < 0 || (im->opts && im->opts->fold_bound));
}

int ox_const_ok(ox_imp *im, const Onnx__NodeProto *np, int k)
{
    ox_val *v = ox_has(np, k) ? ox_lookup(im, np->input[k]) : NULL;
    return v && v->c && (v->node < 0 || v->input_pos >= 0);
}

const mb_onnx_tensor *ox_const(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role)
{
    if (!ox_has(np, k)) {
        ox_fail(im, "input %d (%s) is missing", k, role);
        return NULL;
    }
    ox_val *v = ox_lookup(im, np->input[k]);
    if (!v) {
        ox_fail(im, "input %d ('%s') is produced by no node, initializer or graph input", k, np->input[k]);
        return NULL;
    }
    if (v->c && (v->node < 0 || v->input_pos >= 0))
        return v->c;
    if (v->input_pos >= 0)
        ox_unsupported(im, "input %d ('%s', %s) is a graph input; mecbed needs it constant (an initializer, "
                       "or a value bound at import)", k, v->name, role);
    else
        ox_unsupported(im, "input %d ('%s', %s) is computed at run time; mecbed needs it constant (an "
                       "initializer or a Constant)", k, v->name, role);
    return NULL;
}

mb_tensor *ox_take_param(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role)
{
    const mb_onnx_tensor *t = ox_const(im, np, k, role);
    if (!t)
        return NULL;
    if (!t->f) {
        ox_unsupported(im, "input %d (%s) has type %s; expected float", k, role, mb_onnx_type_name(t->data_type));
        return NULL;
    }
    ox_val *v = ox_lookup(im, np->input[k]);
    mb_tensor *p;
    if (--v->uses <= 0 && v->input_pos < 0 && v->const_node < 0) {
        /* nothing else reads it: hand over the buffer instead of copying */
        p = v->c->f;
        v->c->f = NULL;
        v->c->numel = 0;
        mb_onnx_tensor_free(v->c);
        v->c = NULL;
    } else {
        p = mb_tensor_clone(t->f);
    }
    if (!p)
        ox_fail(im, "out of memory");
    return p;
}

/* ---- attributes ----------------------------------------------------------- */

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *np, const char *name)
{
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && !strcmp(np->attribute[i]->name, name))
            return np->attribute[i];
    return NULL;
}

int64_t ox_attr_i(const Onnx__NodeProto *np, const char *name, int64_t def)
{
    const Onnx__AttributeProto *a = ox_attr(np, name);
    return a && a->has_i ? a->i : def;
}

float ox_attr_f(const Onnx__NodeProto *np, const char *name, float def)
{
    const Onnx__AttributeProto *a = ox_attr(np, name);
    if (a && a->has_f)
        return a->f;
    if (a && a->has_i) /* some exporters write whole numbers as ints */
        return (float)a->i;
    return def;
}

const char *ox_attr_s(const Onnx__NodeProto *np, const char *name, const char *def, char *buf, size_t len)
{
    const Onnx__AttributeProto *a = ox_attr(np, name);
    if (!a || !a->has_s)
        return def;
    size_t n = a->s.len < len - 1 ? a->s.len : len - 1;
    memcpy(buf, a->s.data, n);
    buf[n] = 0;
    return buf;
}

int ox_attr_ints(ox_imp *im, const Onnx__NodeProto *np, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = ox_attr(np, name);
    if (!a)
        return -1;
    if (a->n_ints > (size_t)max)
        return ox_unsupported(im, "attribute '%s' has %zu values, mecbed handles at most %d", name, a->n_ints, max),
               -2;
    for (size_t i = 0; i < a->n_ints; i++)
        out[i] = a->ints[i];
    return (int)a->n_ints;
}

/* ---- the import ----------------------------------------------------------- */

/* Order the nodes so every input is produced first (Kahn). ONNX requires
 * topological order, but a file that breaks it costs nothing to accept. */
static int topo_order(ox_imp *im, int *order)
{
    const Onnx__GraphProto *gp = im->gp;
    int n = (int)gp->n_node;
    int *done = calloc((size_t)n + 1, sizeof(int));
    if (!done)
        return ox_fail(im, "out of memory");
    ox_imp tmp = *im; /* a scratch table: producer node per output name */
    tmp.vals = NULL;
    tmp.n_vals = tmp.cap_vals = 0;
    tmp.table = NULL;
    tmp.table_cap = 0;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        for (size_t o = 0; o < np->n_output; o++) {
            if (!np->output[o] || !*np->output[o])
                continue;
            ox_val *v = val_get(&tmp, np->output[o]);
            if (!v) {
                rc = ox_fail(im, "out of memory");
                break;
            }
            if (v->node >= 0) {
                im->cur = np;
                im->cur_index = i;
                rc = ox_fail(im, "output '%s' is also produced by node #%d (ONNX graphs are single-assignment)",
                             np->output[o], v->node);
                im->cur = NULL;
                break;
            }
            v->node = i;
        }
    }
    int tail = 0;
    /* Repeated passes in file order: stable for already-sorted files. */
    while (!rc && tail < n) {
        int progress = 0;
        for (int i = 0; i < n; i++) {
            if (done[i])
                continue;
            const Onnx__NodeProto *np = gp->node[i];
            int ready = 1;
            for (size_t k = 0; k < np->n_input && ready; k++) {
                if (!np->input[k] || !*np->input[k])
                    continue;
                ox_val *p = ox_lookup(&tmp, np->input[k]);
                if (p && p->node >= 0 && p->node != i && !done[p->node])
                    ready = 0;
                if (p && p->node == i) {
                    im->cur = np;
                    im->cur_index = i;
                    rc = ox_fail(im, "consumes its own output '%s'", np->input[k]);
                    im->cur = NULL;
                    ready = 0;
                }
            }
            if (rc)
                break;
            if (ready) {
                done[i] = 1;
                order[tail++] = i;
                progress = 1;
            }
        }
        if (!rc && !progress) {
            for (int i = 0; i < n; i++)
                if (!done[i]) {
                    im->cur = gp->node[i];
                    im->cur_index = i;
                    rc = ox_fail(im, "the graph has a cycle through this node");
                    im->cur = NULL;
                    break;
                }
        }
    }
    free(tmp.vals);
    free(tmp.table);
    free(done);
    return rc;
}

/* Keep the nodes the outputs need; graph inputs first, in graph order. */
static int finalize(ox_imp *im)
{
    mb_graph *g = im->g;
    int n = g->n_nodes;
    char *live = calloc((size_t)n + 1, 1);
    int *remap = malloc(sizeof(int) * ((size_t)n + 1));
    mb_node *nodes = malloc(sizeof(mb_node) * ((size_t)n + 1));
    if (!live || !remap || !nodes) {
        free(live);
        free(remap);
        free(nodes);
        return ox_fail(im, "out of memory");
    }
    for (int k = 0; k < g->n_outputs; k++)
        live[g->outputs[k]] = 1;
    for (int i = n - 1; i >= 0; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].n_inputs; k++)
                live[g->nodes[i].inputs[k]] = 1;
    int m = 0;
    /* graph inputs in the model's order */
    for (int p = 0; p < im->m->n_inputs; p++) {
        ox_val *v = ox_lookup(im, im->m->inputs[p]);
        if (v && v->node >= 0 && g->nodes[v->node].type == MB_OP_INPUT && live[v->node]) {
            remap[v->node] = m;
            nodes[m++] = g->nodes[v->node];
            live[v->node] = 2;
        }
    }
    for (int i = 0; i < n; i++) {
        if (live[i] == 1) {
            remap[i] = m;
            nodes[m++] = g->nodes[i];
        } else if (!live[i]) {
            for (int k = 0; k < g->nodes[i].n_params; k++)
                mb_tensor_free(g->nodes[i].params[k]);
        }
    }
    for (int i = 0; i < m; i++)
        for (int k = 0; k < nodes[i].n_inputs; k++)
            nodes[i].inputs[k] = remap[nodes[i].inputs[k]];
    for (int k = 0; k < g->n_outputs; k++)
        g->outputs[k] = remap[g->outputs[k]];
    memcpy(g->nodes, nodes, sizeof(mb_node) * (size_t)m);
    g->n_nodes = m;
    free(live);
    free(remap);
    free(nodes);
    return 0;
}

static int import_outputs(ox_imp *im)
{
    const Onnx__GraphProto *gp = im->gp;
    if (gp->n_output == 0)
        return ox_fail(im, "the graph declares no outputs");
    if (gp->n_output > MB_MAX_OUTPUTS)
        return ox_unsupported(im, "the graph has %zu outputs; mecbed handles at most %d", gp->n_output,
                              MB_MAX_OUTPUTS);
    mb_graph *g = im->g;
    for (size_t k = 0; k < gp->n_output; k++) {
        const char *nm = gp->output[k]->name ? gp->output[k]->name : "";
        ox_val *v = ox_lookup(im, nm);
        if (!v)
            return ox_fail(im, "graph output '%s' is produced by no node", nm);
        const Onnx__TypeProto *tp = gp->output[k]->type;
        if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type->has_elem_type &&
            ox_dtype_of(tp->tensor_type->elem_type) < 0)
            return ox_unsupported(im, "graph output '%s' has type %s; mecbed computes in float", nm,
                                  mb_onnx_type_name(tp->tensor_type->elem_type));
        Onnx__NodeProto fake = ONNX__NODE_PROTO__INIT;
        char *ins[1] = {(char *)nm};
        fake.n_input = 1;
        fake.input = ins;
        int src;
        if (ox_data(im, &fake, 0, &src))
            return -1;
        int dup = 0;
        for (size_t j = 0; j < k; j++)
            dup |= g->outputs[j] == src;
        int t = g->nodes[src].type;
        if (dup || t == MB_OP_INPUT || t == MB_OP_CONSTANT) {
            /* an output must be a computed node of its own */
            mb_node n;
            memset(&n, 0, sizeof n);
            n.type = MB_OP_IDENTITY;
            n.n_inputs = 1;
            n.inputs[0] = src;
            src = ox_add(im, &n, nm);
            if (src < 0)
                return -1;
        }
        g->outputs[k] = src;
        g->n_outputs = (int)k + 1;
    }
    return 0;
}

/* ONNX's test data stores FLOAT16/BFLOAT16 inputs as UINT16 bit patterns:
 * read them as the type the graph declares. */
static int reinterpret_half(ox_val *v)
{
    const Onnx__TypeProto *tp = v->vi ? v->vi->type : NULL;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !v->c->i ||
        v->c->data_type != MB_ONNX_UINT16)
        return 0;
    int et = tp->tensor_type->elem_type;
    if (et != MB_ONNX_FLOAT16 && et != MB_ONNX_BFLOAT16)
        return 0;
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    t.has_data_type = 1;
    t.data_type = et;
    t.n_dims = (size_t)v->c->ndim;
    t.dims = v->c->dims;
    int32_t *bits = malloc(sizeof(int32_t) * (size_t)(v->c->numel + 1));
    if (!bits)
        return -1;
    for (int64_t k = 0; k < v->c->numel; k++)
        bits[k] = (int32_t)v->c->i[k];
    t.n_int32_data = (size_t)v->c->numel;
    t.int32_data = bits;
    mb_onnx_tensor f;
    char e[64];
    int rc = mb_onnx_decode(&t, "input", &f, e, sizeof e);
    free(bits);
    if (rc)
        return -1;
    mb_onnx_tensor_clear(v->c);
    *v->c = f;
    return 0;
}

static int import_graph(ox_imp *im)
{
    const Onnx__GraphProto *gp = im->gp;
    if (gp->n_sparse_initializer)
        return ox_unsupported(im, "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name)
            return ox_fail(im, "initializer #%zu has no name", i);
        char what[MB_NAME_LEN + 64];
        snprintf(what, sizeof what, "%s: initializer '%.*s'", im->m->path, MB_NAME_LEN, tp->name);
        mb_onnx_tensor *c = calloc(1, sizeof *c);
        if (!c)
            return ox_fail(im, "out of memory");
        if (mb_onnx_decode(tp, what, c, im->err, im->errlen)) {
            free(c);
            im->why = strstr(im->err, "not supported") ? MB_ONNX_UNSUPPORTED : MB_ONNX_ERROR;
            return -1;
        }
        if (ox_bind_const(im, tp->name, c))
            return -1;
    }
    for (int p = 0; p < im->m->n_inputs; p++) {
        const char *nm = im->m->inputs[p];
        if (!*nm)
            return ox_fail(im, "graph input #%d has no name", p);
        ox_val *v = val_get(im, nm);
        if (!v)
            return ox_fail(im, "out of memory");
        if (v->input_pos >= 0)
            return ox_fail(im, "graph input '%s' is declared twice", nm);
        v->input_pos = p;
        for (size_t i = 0; i < gp->n_input; i++)
            if (gp->input[i]->name && !strcmp(gp->input[i]->name, nm))
                v->vi = gp->input[i];
        const mb_onnx_binding *b = binding(im, nm);
        if (b && b->value) {
            v->c = calloc(1, sizeof *v->c);
            if (!v->c || mb_onnx_tensor_copy(v->c, b->value)) {
                free(v->c);
                v->c = NULL;
                return ox_fail(im, "out of memory");
            }
            if (reinterpret_half(v))
                return ox_fail(im, "out of memory");
        }
    }
    if (im->opts)
        for (int b = 0; b < im->opts->n_bind; b++) {
            const char *bn = im->opts->bind[b].name;
            ox_val *v = bn ? ox_lookup(im, bn) : NULL;
            if (!v || v->input_pos < 0)
                return ox_fail(im, "a value was given for '%s', which is not a graph input", bn ? bn : "(null)");
        }

    /* every value consumed, produced by a node (a Constant too) or not yet:
     * ox_take_param hands over a buffer only at its last use */
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_input; k++) {
            ox_val *v = ox_has(gp->node[i], (int)k) ? val_get(im, gp->node[i]->input[k]) : NULL;
            if (v)
                v->uses++;
        }
    for (size_t k = 0; k < gp->n_output; k++) {
        ox_val *v = ox_lookup(im, gp->output[k]->name);
        if (v)
            v->uses++;
    }
    int *order = malloc(sizeof(int) * (gp->n_node + 1));
    if (!order)
        return ox_fail(im, "out of memory");
    if (topo_order(im, order)) {
        free(order);
        return -1;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        im->cur = gp->node[order[i]];
        im->cur_index = order[i];
        if (ox_convert_node(im, im->cur)) {
            free(order);
            return -1;
        }
    }
    im->cur = NULL;
    free(order);
    if (import_outputs(im) || ox_fuse_patterns(im) || finalize(im))
        return -1;
    char e[768];
    if (mb_graph_infer(im->g, e, sizeof e))
        return ox_fail(im, "%s", e);
    return 0;
}

static void graph_name(const mb_onnx_model *m, char *buf, size_t len)
{
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    const char *gn = m->proto->graph->name;
    /* "model.onnx" says nothing; the graph's own name is better then */
    if (!strcmp(base, "model.onnx") && gn && *gn)
        base = gn;
    snprintf(buf, len, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && !strcmp(dot, ".onnx"))
        *dot = 0;
}

mb_graph *mb_onnx_import(const mb_onnx_model *m, const mb_onnx_opts *opts, int *why, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    ox_imp im;
    memset(&im, 0, sizeof im);
    im.m = m;
    im.gp = m->proto->graph;
    im.opts = opts;
    im.opset = m->opset;
    im.err = err;
    im.errlen = errlen;
    char name[MB_NAME_LEN];
    graph_name(m, name, sizeof name);
    im.g = mb_graph_new(name);
    int rc;
    if (!im.g)
        rc = ox_fail(&im, "out of memory");
    else if (m->opset <= 0 && m->proto->n_opset_import)
        rc = ox_unsupported(&im, "the model imports only other operator domains (e.g. '%s')",
                            m->proto->opset_import[0]->domain ? m->proto->opset_import[0]->domain : "");
    else if (m->opset <= 0)
        rc = ox_fail(&im, "the model imports no version of the default ONNX opset");
    else if (m->opset > 18)
        rc = ox_unsupported(&im, "opset %lld is newer than the supported 1..18", (long long)m->opset);
    else
        rc = import_graph(&im);
    for (int v = 0; v < im.n_vals; v++)
        mb_onnx_tensor_free(im.vals[v].c);
    free(im.vals);
    free(im.table);
    if (why)
        *why = rc ? (im.why ? im.why : MB_ONNX_ERROR) : MB_ONNX_OK;
    if (rc) {
        mb_graph_free(im.g);
        return NULL;
    }
    return im.g;
}

mb_graph *mb_onnx_load(const char *path, char *err, size_t errlen)
{
    mb_onnx_model *m = mb_onnx_open(path, err, errlen);
    if (!m)
        return NULL;
    mb_graph *g = mb_onnx_import(m, NULL, NULL, err, errlen);
    mb_onnx_close(m);
    return g;
}
