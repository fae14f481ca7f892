/* Reference data-movement ops: Concat, Flatten, Reshape, Constant, Pad and
 * Resize, plus Softmax (ONNX semantics, any rank). For 4-D local nodes the
 * output range is the region and input coordinates are in the full frame:
 * a coordinate the view does not hold is an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_impl.h"

/* Output index range: the region for 4-D outputs, everything otherwise. */
static void out_range(const ref_req *q, int64_t *lo, int64_t *hi)
{
    const mb_node *n = q->n;
    for (int d = 0; d < n->out_ndim; d++) {
        lo[d] = 0;
        hi[d] = n->out_dims[d];
    }
    if (n->out_ndim == 4) {
        lo[2] = q->r.h0;
        hi[2] = q->r.h1;
        lo[3] = q->r.w0;
        hi[3] = q->r.w1;
    }
}

static int range_empty(int R, const int64_t *lo, const int64_t *hi)
{
    for (int d = 0; d < R; d++)
        if (lo[d] >= hi[d])
            return 1;
    return 0;
}

static int next_index(int R, int64_t *o, const int64_t *lo, const int64_t *hi)
{
    for (int d = R - 1; d >= 0; d--) {
        if (++o[d] < hi[d])
            return 1;
        o[d] = lo[d];
    }
    return 0;
}

/* Where full-frame index i (per axis) of input view v sits in its data;
 * coordinates must be inside the view. */
static int64_t view_index(const mb_view *v, const int64_t *i)
{
    const mb_tensor *t = v->t;
    int64_t at = 0;
    for (int d = 0; d < t->ndim; d++) {
        int64_t c = i[d];
        if (t->ndim == 4 && d == 2)
            c -= v->h_off;
        if (t->ndim == 4 && d == 3)
            c -= v->w_off;
        at = at * t->dims[d] + c;
    }
    return at;
}

/* Does view v hold full-frame index i? */
static int view_holds(const mb_view *v, const int64_t *i)
{
    const mb_tensor *t = v->t;
    for (int d = 0; d < t->ndim; d++) {
        int64_t off = t->ndim == 4 && d == 2 ? v->h_off : t->ndim == 4 && d == 3 ? v->w_off : 0;
        if (i[d] < off || i[d] >= off + t->dims[d])
            return 0;
    }
    return 1;
}

int ref_copy_whole(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *src = n->type == MB_OP_CONSTANT ? n->params[0] : q->v[0].t;
    if (!src)
        return ref_fail(q, "has no value");
    if (mb_tensor_numel(src) != mb_tensor_numel(q->out))
        return ref_fail(q, "%lld elements in, %lld out", (long long)mb_tensor_numel(src),
                        (long long)mb_tensor_numel(q->out));
    if (mb_tensor_numel(src) > 0)
        memcpy(q->out->data, src->data, mb_tensor_bytes(src));
    return 0;
}

int ref_concat(const ref_req *q)
{
    const mb_node *n = q->n;
    int R = n->out_ndim, ax = n->a.axis < 0 ? n->a.axis + R : n->a.axis;
    if (ax < 0 || ax >= R)
        return ref_fail(q, "axis %d out of range", n->a.axis);
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], o[MB_MAX_DIMS], i[MB_MAX_DIMS];
    out_range(q, lo, hi);
    if (range_empty(R, lo, hi))
        return 0;
    /* Input k holds output indices [base_k, base_k + dims_k) along the axis. */
    int64_t *base = calloc((size_t)n->n_inputs + 1, sizeof *base);
    if (!base)
        return ref_fail(q, "out of memory");
    for (int k = 0; k < n->n_inputs; k++)
        base[k + 1] = base[k] + q->g->nodes[n->inputs[k]].out_dims[ax];
    if (base[n->n_inputs] != n->out_dims[ax]) {
        int64_t total = base[n->n_inputs];
        free(base);
        return ref_fail(q, "inputs add up to %lld along axis %d, the output has %lld", (long long)total, ax,
                        (long long)n->out_dims[ax]);
    }
    memcpy(o, lo, sizeof(int64_t) * (size_t)R);
    float *y = q->out->data;
    int k = 0, rc = 0;
    do {
        while (o[ax] >= base[k + 1])
            k++;
        while (o[ax] < base[k])
            k--;
        memcpy(i, o, sizeof(int64_t) * (size_t)R);
        i[ax] -= base[k];
        if (!view_holds(&q->v[k], i)) {
            rc = ref_fail(q, "input %d: the view does not hold index [%lld,%lld,...] (rows/columns %lld,%lld)", k,
                          (long long)i[0], (long long)(R > 1 ? i[1] : 0), (long long)(R > 2 ? i[R - 2] : 0),
                          (long long)i[R - 1]);
            break;
        }
        *y++ = q->v[k].t->data[view_index(&q->v[k], i)];
    } while (next_index(R, o, lo, hi));
    free(base);
    return rc;
}

int ref_softmax(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = q->v[0].t;
    int R = n->out_ndim, ax = n->a.axis < 0 ? n->a.axis + R : n->a.axis;
    if (ax < 0 || ax >= R)
        return ref_fail(q, "axis %d out of range", n->a.axis);
    int64_t outer = 1, len = n->out_dims[ax], inner = 1;
    for (int d = 0; d < ax; d++)
        outer *= n->out_dims[d];
    for (int d = ax + 1; d < R; d++)
        inner *= n->out_dims[d];
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            const float *s = x->data + a * len * inner + b;
            float *y = q->out->data + a * len * inner + b;
            float m = -INFINITY, sum = 0.0f;
            for (int64_t i = 0; i < len; i++)
                if (s[i * inner] > m)
                    m = s[i * inner];
            for (int64_t i = 0; i < len; i++) {
                y[i * inner] = expf(s[i * inner] - m);
                sum += y[i * inner];
            }
            for (int64_t i = 0; i < len; i++)
                y[i * inner] /= sum;
        }
    return 0;
}

/* Pad: output index o maps to input index o - begin along each axis; outside
 * the input, constant mode gives the value, reflect mirrors about the edge
 * (without repeating it), edge repeats the border. */
static int pad_src(int mode, int64_t o, int64_t begin, int64_t len, int64_t *i)
{
    int64_t s = o - begin;
    if (s >= 0 && s < len) {
        *i = s;
        return 1;
    }
    switch (mode) {
    case MB_PAD_REFLECT:
        if (len == 1) {
            *i = 0;
            return 1;
        }
        /* period 2(len-1): fold any distance back into [0, len) */
        {
            int64_t p = 2 * (len - 1);
            s %= p;
            if (s < 0)
                s += p;
            *i = s < len ? s : p - s;
        }
        return 1;
    case MB_PAD_EDGE:
        *i = s < 0 ? 0 : len - 1;
        return 1;
    case MB_PAD_CONSTANT:
    default:
        return 0;
    }
}

int ref_pad(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_graph *g = q->g;
    const mb_view *v = &q->v[0];
    const mb_node *src = &g->nodes[n->inputs[0]];
    int R = n->out_ndim;
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], o[MB_MAX_DIMS], i[MB_MAX_DIMS];
    out_range(q, lo, hi);
    if (range_empty(R, lo, hi))
        return 0;
    memcpy(o, lo, sizeof(int64_t) * (size_t)R);
    float *y = q->out->data;
    do {
        int inside = 1;
        for (int d = 0; d < R && inside; d++)
            inside = pad_src(n->a.pad_mode, o[d], n->a.pad_amounts[d], src->out_dims[d], &i[d]);
        if (!inside) {
            *y++ = n->a.pad_value;
            continue;
        }
        if (!view_holds(v, i))
            return ref_fail(q, "input rows/columns (%lld,%lld) are needed but the view holds rows [%lld,%lld) and "
                               "columns [%lld,%lld)",
                            (long long)(R >= 2 ? i[R - 2] : 0), (long long)i[R - 1], (long long)v->h_off,
                            (long long)(v->h_off + (R == 4 ? v->t->dims[2] : 0)), (long long)v->w_off,
                            (long long)(v->w_off + (R == 4 ? v->t->dims[3] : 0)));
        *y++ = v->t->data[view_index(v, i)];
    } while (next_index(R, o, lo, hi));
    return 0;
}

/* Resize along one axis: for output index o, the source index (nearest) or
 * the two neighbours and the weight of the second (linear; neighbours
 * clamped to the input, as ONNX's edge padding does). Coordinates come from
 * mb_resize_coord / mb_resize_nearest, which the region mapping shares. */
typedef struct axis_map {
    int64_t *i0, *i1; /* per output index in [lo,hi) */
    double *w1;       /* weight of i1 (0: i0 alone) */
} axis_map;

static int axis_map_build(const mb_node *n, int d, int64_t lo, int64_t hi, int64_t in_len, int64_t out_len,
                          axis_map *m)
{
    int64_t cnt = hi - lo;
    m->i0 = malloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    m->i1 = malloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    m->w1 = malloc(sizeof(double) * (size_t)(cnt ? cnt : 1));
    if (!m->i0 || !m->i1 || !m->w1)
        return -1;
    float scale = n->a.scales[d] > 0 ? n->a.scales[d] : 1.0f;
    for (int64_t o = lo; o < hi; o++) {
        int64_t j = o - lo;
        /* every axis goes through the transform, scale 1 included: ONNX
         * does, and e.g. tf_half_pixel_for_nn with round_prefer_ceil shifts
         * an unscaled axis by one */
        double x = mb_resize_coord(n->a.coord_mode, o, scale, in_len, out_len);
        if (n->a.resize_mode == MB_RESIZE_NEAREST) {
            m->i0[j] = m->i1[j] = mb_resize_nearest(n->a.nearest_mode, x, in_len);
            m->w1[j] = 0.0;
        } else {
            double f = floor(x);
            int64_t a = (int64_t)f, b = a + 1;
            m->w1[j] = x - f;
            m->i0[j] = a < 0 ? 0 : a >= in_len ? in_len - 1 : a;
            m->i1[j] = b < 0 ? 0 : b >= in_len ? in_len - 1 : b;
        }
    }
    return 0;
}

static void axis_map_free(axis_map *m)
{
    free(m->i0);
    free(m->i1);
    free(m->w1);
}

int ref_resize(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_view *v = &q->v[0];
    const mb_node *src = &q->g->nodes[n->inputs[0]];
    int R = n->out_ndim, rc = 0;
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], o[MB_MAX_DIMS], i[MB_MAX_DIMS];
    out_range(q, lo, hi);
    axis_map map[MB_MAX_DIMS];
    memset(map, 0, sizeof map);
    for (int d = 0; d < R; d++)
        if (axis_map_build(n, d, lo[d], hi[d], src->out_dims[d], n->out_dims[d], &map[d])) {
            rc = ref_fail(q, "out of memory");
            goto done;
        }
    /* every source index the tile reads must be in the view */
    for (int d = 0; d < R && v->t->ndim == 4; d++) {
        if (d < 2)
            continue;
        int64_t used_lo = INT64_MAX, used_hi = INT64_MIN;
        for (int64_t j = 0; j < hi[d] - lo[d]; j++) {
            int64_t a = map[d].i0[j], b = map[d].w1[j] != 0.0 ? map[d].i1[j] : a;
            int64_t mn = a < b ? a : b, mx = a > b ? a : b;
            if (mn < used_lo)
                used_lo = mn;
            if (mx + 1 > used_hi)
                used_hi = mx + 1;
        }
        if (used_lo >= used_hi)
            continue;
        int64_t off = d == 2 ? v->h_off : v->w_off;
        if (used_lo < off || used_hi > off + v->t->dims[d]) {
            rc = ref_fail(q, "input %s [%lld,%lld) are needed but the view holds [%lld,%lld)",
                          d == 2 ? "rows" : "columns", (long long)used_lo, (long long)used_hi, (long long)off,
                          (long long)(off + v->t->dims[d]));
            goto done;
        }
    }
    if (range_empty(R, lo, hi))
        goto done;
    memcpy(o, lo, sizeof(int64_t) * (size_t)R);
    float *y = q->out->data;
    int active[MB_MAX_DIMS];
    do {
        /* axes with a non-zero second weight; sum over their 2^A corners */
        int A = 0;
        for (int d = 0; d < R; d++) {
            int64_t j = o[d] - lo[d];
            i[d] = map[d].i0[j];
            if (map[d].w1[j] != 0.0)
                active[A++] = d;
        }
        double acc = 0.0;
        for (int corner = 0; corner < (1 << A); corner++) {
            double wgt = 1.0;
            int64_t c[MB_MAX_DIMS];
            memcpy(c, i, sizeof(int64_t) * (size_t)R);
            for (int t = 0; t < A; t++) {
                int d = active[t];
                int64_t j = o[d] - lo[d];
                if (corner & (1 << t)) {
                    c[d] = map[d].i1[j];
                    wgt *= map[d].w1[j];
                } else {
                    wgt *= 1.0 - map[d].w1[j];
                }
            }
            acc += wgt * (double)v->t->data[view_index(v, c)];
        }
        *y++ = (float)acc;
    } while (next_index(R, o, lo, hi));
done:
    for (int d = 0; d < R; d++)
        axis_map_free(&map[d]);
    return rc;
}
