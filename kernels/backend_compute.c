/* mb_backend_compute(): the one entry point to every backend's compute,
 * and the only place a request is checked. The ref, cpu and cuda backends
 * used to carry their own copies of these checks, which had started to
 * drift (one missed the input-coverage check, another the output's data);
 * now a backend sees only requests that fit the graph, with each view's
 * full extent filled in from its producer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend_impl.h"

/* "node I 'name' (Op): <message>"; returns -1. */
static int req_fail(char *err, size_t errlen, const mb_graph *g, int node, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int req_fail(char *err, size_t errlen, const mb_graph *g, int node, const char *fmt, ...)
{
    if (!err || !errlen)
        return -1;
    const mb_node *n = &g->nodes[node];
    int k = snprintf(err, errlen, "node %d '%s' (%s): ", node, n->name, mb_op_name(n->type));
    if (k >= 0 && (size_t)k < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The region (outputs of rank 2 to 4: rows and columns along the region
 * axes, mb_region_axes; *r becomes the full output for other ranks) and the
 * output tensor. */
static int check_output(const mb_graph *g, int node, mb_region *r, const mb_tensor *out, char *err, size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    mb_region full = mb_node_full_region(g, node);
    int boxed = n->out_ndim >= 2 && n->out_ndim <= 4;
    if (boxed) {
        if (r->h0 < 0 || r->w0 < 0 || r->h1 > full.h1 || r->w1 > full.w1 || r->h0 > r->h1 || r->w0 > r->w1)
            return req_fail(err, errlen, g, node,
                            "region rows [%lld,%lld) columns [%lld,%lld) is outside the %lldx%lld output",
                            (long long)r->h0, (long long)r->h1, (long long)r->w0, (long long)r->w1,
                            (long long)full.h1, (long long)full.w1);
        if (!n->local && (r->h0 || r->w0 || r->h1 != full.h1 || r->w1 != full.w1))
            return req_fail(err, errlen, g, node, "not a local op: only its whole output can be computed");
    } else {
        *r = full;
    }
    if (!out || out->ndim != n->out_ndim)
        return req_fail(err, errlen, g, node, "output tensor has rank %d, expected %d", out ? out->ndim : -1,
                        n->out_ndim);
    int64_t want[MB_MAX_DIMS];
    mb_region_box_dims(n->out_ndim, n->out_dims, boxed ? *r : full, want);
    for (int d = 0; d < n->out_ndim; d++)
        if (out->dims[d] != want[d])
            return req_fail(err, errlen, g, node, "output dimension %d is %lld, expected %lld", d,
                            (long long)out->dims[d], (long long)want[d]);
    if (mb_tensor_numel(out) > 0 && !out->data)
        return req_fail(err, errlen, g, node, "output tensor has no data");
    return 0;
}

/* Input k: present, the producer's shape (a view along the region axes for
 * ranks 2 to 4), whole for ops that are not local, and covering what region
 * r needs. Fills v[k]. */
static int check_input(const mb_graph *g, int node, int k, const mb_view *in, mb_region r, mb_view *v, char *err,
                       size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    const mb_node *src = &g->nodes[n->inputs[k]];
    const mb_tensor *t = in ? in[k].t : NULL;
    if (!t || (!t->data && mb_tensor_numel(t) > 0))
        return req_fail(err, errlen, g, node, "input %d is missing", k);
    v[k] = in[k];
    int ok = t->ndim == src->out_ndim, boxed = t->ndim >= 2 && t->ndim <= 4;
    int ah = -1, aw = -1;
    mb_region sfull = mb_region_full_dims(src->out_ndim, src->out_dims);
    if (ok && boxed) {
        mb_region_axes(t->ndim, &ah, &aw);
        for (int d = 0; d < t->ndim; d++)
            ok = ok && (d == ah || d == aw || t->dims[d] == src->out_dims[d]);
        ok = ok && v[k].h_off >= 0 && v[k].w_off >= 0 && v[k].h_off + t->dims[ah] <= sfull.h1 &&
             v[k].w_off + t->dims[aw] <= sfull.w1 && (!v[k].full_h || v[k].full_h == sfull.h1) &&
             (!v[k].full_w || v[k].full_w == sfull.w1);
        v[k].full_h = sfull.h1;
        v[k].full_w = sfull.w1;
    } else if (ok) {
        for (int d = 0; d < t->ndim; d++)
            ok = ok && t->dims[d] == src->out_dims[d];
        v[k].h_off = v[k].w_off = 0;
    }
    if (!ok)
        return req_fail(err, errlen, g, node, "input %d (a view of rank %d) does not match the output of '%s'", k,
                        t->ndim, src->name);
    if (!boxed)
        return 0;
    int whole = !v[k].h_off && !v[k].w_off && t->dims[ah] == sfull.h1 && t->dims[aw] == sfull.w1;
    if (!n->local && !whole)
        return req_fail(err, errlen, g, node, "input %d must be the whole tensor (not a local op)", k);
    mb_region need = mb_node_input_region(g, node, k, r);
    if (mb_region_empty(need))
        return 0;
    if (need.h0 < v[k].h_off || need.w0 < v[k].w_off || need.h1 > v[k].h_off + t->dims[ah] ||
        need.w1 > v[k].w_off + t->dims[aw])
        return req_fail(err, errlen, g, node,
                        "input %d: rows [%lld,%lld) and columns [%lld,%lld) are needed but the view holds rows "
                        "[%lld,%lld) and columns [%lld,%lld)",
                        k, (long long)need.h0, (long long)need.h1, (long long)need.w0, (long long)need.w1,
                        (long long)v[k].h_off, (long long)(v[k].h_off + t->dims[ah]), (long long)v[k].w_off,
                        (long long)(v[k].w_off + t->dims[aw]));
    return 0;
}

/* Every check of a compute request; v receives the checked views. */
static int check_request(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region *r,
                         const mb_tensor *out, mb_view *v, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!be || !be->compute) {
        if (err && errlen)
            snprintf(err, errlen, "no backend");
        return -1;
    }
    if (!g || node < 0 || node >= g->n_nodes) {
        if (err && errlen)
            snprintf(err, errlen, "%s backend: node %d does not exist", be->name, node);
        return -1;
    }
    const mb_node *n = &g->nodes[node];
    if (n->type == MB_OP_INPUT)
        return req_fail(err, errlen, g, node, "a graph input is given, not computed");
    if (!be->supports_op || !be->supports_op(be, g, n))
        return req_fail(err, errlen, g, node,
                        "not supported by the %s backend (mb_backend_supports says no: the op, or one of its "
                        "attributes such as an unresolved auto_pad or an unknown mode, has no kernel here)",
                        be->name);
    if (n->n_inputs < 0 || n->n_inputs > MB_MAX_INPUTS)
        return req_fail(err, errlen, g, node, "%d inputs", n->n_inputs);
    if (check_output(g, node, r, out, err, errlen))
        return -1;
    for (int k = 0; k < n->n_inputs; k++)
        if (check_input(g, node, k, in, *r, v, err, errlen))
            return -1;
    return 0;
}

int mb_backend_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    mb_view v[MB_MAX_INPUTS];
    if (check_request(be, g, node, in, &r, out, v, err, errlen))
        return -1;
    const mb_node *n = &g->nodes[node];
    if (n->out_ndim == 2 || n->out_ndim == 3) {
        mb_region full = mb_node_full_region(g, node);
        int whole = r.h0 == 0 && r.w0 == 0 && r.h1 == full.h1 && r.w1 == full.w1;
        int views = 1; /* backends read rank-2/3 inputs whole */
        for (int k = 0; k < n->n_inputs; k++) {
            const mb_tensor *t = v[k].t;
            int ah, aw;
            mb_region_axes(t->ndim, &ah, &aw);
            if (t->ndim >= 2 && t->ndim <= 4 &&
                (v[k].h_off || v[k].w_off || t->dims[ah] != v[k].full_h || t->dims[aw] != v[k].full_w))
                views = 0;
        }
        if (!whole || !views)
            return mb__compute_subregion(be, g, node, v, r, out, err, errlen);
    }
    return be->compute(be, g, node, v, r, out, err, errlen);
}

/* The node after `prev` in a fused chain: its only input is prev's output
 * (an activation) or one of its two (an Add), same rank, supported. */
static int chain_link_ok(mb_backend *be, const mb_graph *g, int prev, int node, int n_in)
{
    if (node <= prev || node >= g->n_nodes)
        return 0;
    const mb_node *a = &g->nodes[node];
    int from_prev = 0;
    for (int k = 0; k < a->n_inputs; k++)
        from_prev += a->inputs[k] == prev;
    return a->n_inputs == n_in && from_prev == 1 && a->out_ndim == g->nodes[prev].out_ndim && be->supports_op &&
           be->supports_op(be, g, a);
}

int mb_backend_compute_fused(mb_backend *be, const mb_graph *g, int node, const mb_fusion *f, const mb_view *in,
                             mb_region r, mb_tensor *out, char *err, size_t errlen)
{
    if (!be || !be->compute_fused || !g || !f || node < 0 || node >= g->n_nodes || (f->add < 0 && f->act < 0))
        return 0;
    mb_fusion fc = *f;
    int last = node;
    if (f->add >= 0) {
        const mb_node *a = &g->nodes[f->add];
        if (a->type != MB_OP_ADD || !chain_link_ok(be, g, node, f->add, 2))
            return 0;
        int rk = a->inputs[0] == node ? 1 : 0; /* the residual's input slot */
        const mb_node *rn = &g->nodes[a->inputs[rk]];
        /* no broadcasting: the residual has the conv's (and the Add's) shape */
        if (rn->out_ndim != g->nodes[node].out_ndim || a->out_ndim != g->nodes[node].out_ndim)
            return 0;
        for (int d = 0; d < rn->out_ndim; d++)
            if (rn->out_dims[d] != g->nodes[node].out_dims[d] || a->out_dims[d] != rn->out_dims[d])
                return 0;
        fc.res_first = rk == 0;
        last = f->add;
    }
    if (f->act >= 0 && !chain_link_ok(be, g, last, f->act, 1))
        return 0;
    mb_view v[MB_MAX_INPUTS];
    if (check_request(be, g, node, in, &r, out, v, err, errlen))
        return -1;
    if (f->add >= 0) {
        /* the residual must cover the region, as the Add's own input would */
        mb_view ain[MB_MAX_INPUTS] = {0}, av[MB_MAX_INPUTS];
        int rk = fc.res_first ? 0 : 1;
        ain[rk] = f->res;
        if (check_input(g, f->add, rk, ain, r, av, err, errlen))
            return -1;
        fc.res = av[rk];
    }
    return be->compute_fused(be, g, node, &fc, v, r, out, err, errlen);
}
