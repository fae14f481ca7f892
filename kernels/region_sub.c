/* Regions of ops with 2-D and 3-D outputs (transformer activations: rows of
 * tokens, columns of features or heads; mb_region_axes). A backend computes
 * whole ops; a region of such an op is the same op on the slices of its
 * operands that the region needs: a one-node graph whose inputs are the
 * input boxes (mb_node_input_box), whose parameters are the parameter boxes
 * (Gemm's weight rows and bias columns for a column region, zero-copy where
 * the box is contiguous), whose output is the compute region's box
 * (mb_node_compute_region), computed by the backend's own kernel. Every
 * output element is computed by the same kernel from the same operands as
 * in the whole op; only the blocking of a GEMM over rows and columns can
 * differ. Work is proportional to the region (plus whole normalised axes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"

/* Contiguous copy (or zero-copy alias) of box lo/hi of data (dims, offsets
 * off of the data's first element in the full frame). */
static mb_tensor *slice(const float *data, int p, const int64_t *dims, const int64_t *off, const int64_t *lo,
                        const int64_t *hi)
{
    int64_t bd[MB_MAX_DIMS], st[MB_MAX_DIMS], s = 1;
    for (int d = p - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
        bd[d] = hi[d] - lo[d];
    }
    int alias = 1;
    for (int d = 1; d < p; d++)
        alias &= lo[d] == off[d] && bd[d] == dims[d];
    if (alias) {
        mb_tensor *t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        t->ndim = p;
        memcpy(t->dims, bd, sizeof(int64_t) * (size_t)p);
        t->data = (float *)data + (p ? (lo[0] - off[0]) * st[0] : 0);
        return t;
    }
    mb_tensor *t = mb_tensor_new(p, bd);
    if (!t)
        return NULL;
    int64_t last = bd[p - 1], outer = 1;
    for (int d = 0; d < p - 1; d++)
        outer *= bd[d];
    for (int64_t o = 0; o < outer; o++) {
        int64_t rem = o, src = (lo[p - 1] - off[p - 1]) * st[p - 1];
        for (int d = p - 2; d >= 0; d--) {
            src += (lo[d] - off[d] + rem % bd[d]) * st[d];
            rem /= bd[d];
        }
        memcpy(t->data + o * last, data + src, sizeof(float) * (size_t)last);
    }
    return t;
}

/* Input k's box from view v (offsets along the region axes). */
static mb_tensor *slice_view(const mb_view *v, const int64_t *lo, const int64_t *hi)
{
    const mb_tensor *t = v->t;
    int64_t off[MB_MAX_DIMS] = {0};
    int ah, aw;
    mb_region_axes(t->ndim, &ah, &aw);
    if (ah >= 0)
        off[ah] = v->h_off;
    if (aw >= 0)
        off[aw] = v->w_off;
    if (t->ndim == 0)
        return slice(t->data, 0, t->dims, off, lo, hi);
    return slice(t->data, t->ndim, t->dims, off, lo, hi);
}

static int sub_fail(char *err, size_t errlen, const mb_node *n, const char *what)
{
    snprintf(err, errlen, "node '%s' (%s): region: %s", n->name, mb_op_name(n->type), what);
    return -1;
}

/* The one-node graph of the sub-problem; its op is node n_inputs. */
static mb_graph *sub_graph(const mb_graph *g, int node, const mb_view *v, const int64_t *lo, const int64_t *hi,
                           char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    mb_graph *sg = mb_graph_new("region");
    mb_node m = *n;
    int ok = sg != NULL;
    for (int j = 0; j < MB_MAX_PARAMS; j++)
        m.params[j] = NULL;
    for (int k = 0; ok && k < n->n_inputs; k++) {
        const mb_node *src = &g->nodes[n->inputs[k]];
        mb_node in;
        memset(&in, 0, sizeof in);
        snprintf(in.name, sizeof in.name, "in%d", k);
        in.type = MB_OP_INPUT;
        int64_t ilo[MB_MAX_DIMS], ihi[MB_MAX_DIMS];
        int p = mb_node_input_box(g, node, k, lo, hi, ilo, ihi);
        in.a.shape_ndim = p;
        for (int d = 0; d < p; d++)
            in.a.shape[d] = ihi[d] - ilo[d];
        in.a.dtype = src->out_dtype;
        ok = mb_graph_add(sg, &in) == k;
        m.inputs[k] = k;
    }
    for (int j = 0; ok && j < n->n_params; j++) {
        int64_t plo[MB_MAX_DIMS], phi[MB_MAX_DIMS], off[MB_MAX_DIMS] = {0};
        const mb_tensor *w = n->params[j];
        mb_node_param_box(g, node, j, lo, hi, plo, phi);
        ok = (m.params[j] = slice(w->data, w->ndim, w->dims, off, plo, phi)) != NULL;
        m.n_params = j + 1;
    }
    if (n->type == MB_OP_RESHAPE) {
        m.a.shape_ndim = n->out_ndim;
        for (int d = 0; d < n->out_ndim; d++)
            m.a.shape[d] = hi[d] - lo[d];
    }
    if (ok)
        ok = mb_graph_add(sg, &m) == n->n_inputs;
    else
        for (int j = 0; j < n->n_params; j++)
            mb_tensor_free(m.params[j]);
    if (!ok) {
        mb_graph_free(sg);
        sub_fail(err, errlen, n, "out of memory");
        return NULL;
    }
    sg->outputs[0] = n->n_inputs;
    sg->n_outputs = 1;
    char e2[200];
    if (mb_graph_infer(sg, e2, sizeof e2)) {
        mb_graph_free(sg);
        sub_fail(err, errlen, n, e2);
        return NULL;
    }
    (void)v;
    return sg;
}

int mb__compute_subregion(mb_backend *be, const mb_graph *g, int node, const mb_view *v, mb_region r,
                          mb_tensor *out, char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    mb_region c = mb_node_compute_region(g, node, r);
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS];
    mb_region_to_box(n->out_ndim, n->out_dims, c, lo, hi);
    mb_graph *sg = sub_graph(g, node, v, lo, hi, err, errlen);
    if (!sg)
        return -1;
    const mb_node *m = &sg->nodes[n->n_inputs];
    int rc = -1;
    mb_tensor *ins[MB_MAX_INPUTS] = {0}, *res = NULL;
    mb_view sv[MB_MAX_INPUTS];
    for (int d = 0; d < n->out_ndim; d++)
        if (m->out_dims[d] != hi[d] - lo[d]) {
            sub_fail(err, errlen, n, "the sliced op's output does not match the region");
            goto out;
        }
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *in = &sg->nodes[k];
        int64_t ilo[MB_MAX_DIMS], ihi[MB_MAX_DIMS];
        mb_node_input_box(g, node, k, lo, hi, ilo, ihi);
        (void)in;
        if (!(ins[k] = slice_view(&v[k], ilo, ihi))) {
            sub_fail(err, errlen, n, "out of memory");
            goto out;
        }
        sv[k] = mb_view_whole(ins[k]);
    }
    int same = c.h0 == r.h0 && c.h1 == r.h1 && c.w0 == r.w0 && c.w1 == r.w1;
    res = same ? out : mb_tensor_new(m->out_ndim, m->out_dims);
    if (!res) {
        sub_fail(err, errlen, n, "out of memory");
        goto out;
    }
    rc = mb_backend_compute(be, sg, n->n_inputs, sv, mb_node_full_region(sg, n->n_inputs), res, err, errlen);
    if (!rc && !same) {
        mb_view rv = {res, c.h0, c.w0, 0, 0};
        if (mb_tensor_copy_region(&rv, r, out))
            rc = sub_fail(err, errlen, n, "cannot extract the region");
    }
out:
    for (int k = 0; k < n->n_inputs; k++)
        mb_tensor_free(ins[k]);
    if (res != out)
        mb_tensor_free(res);
    mb_graph_free(sg);
    return rc;
}
