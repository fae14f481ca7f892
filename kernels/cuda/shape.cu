/* Data movement and Softmax on the GPU: Concat, Pad, Resize (any rank;
 * 4-D local ops on a region tile), Softmax, and the device copies that are
 * Flatten, Reshape and Constant. Index arithmetic that does not depend on
 * the element (which input a Concat box comes from, each axis's Pad source
 * index, each axis's Resize neighbours and weights) is worked out on the
 * host with the same helpers as kernels/ref (mb_resize_coord,
 * mb_resize_nearest), checked against the views, and handed to the kernel
 * as small per-axis tables; the kernel gathers one output element per thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

typedef struct copy_box {
    int R;
    int64_t ext[MB_MAX_DIMS];     /* extent per axis */
    int64_t dst_st[MB_MAX_DIMS];  /* output tile strides */
    int64_t src_st[MB_MAX_DIMS];  /* source strides */
    int64_t dst0, src0;           /* element offsets of the box's first element */
} copy_box;

typedef struct k_copy_box {
    copy_box b;
    const float *src;
    float *dst;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t t = i, so = b.src0, dof = b.dst0;
        for (int d = b.R - 1; d >= 0; d--) {
            int64_t o = t % b.ext[d];
            t /= b.ext[d];
            so += o * b.src_st[d];
            dof += o * b.dst_st[d];
        }
        dst[dof] = src[so];
    }
} k_copy_box;

/* Output index range: the region for 4-D outputs, everything otherwise. */
static void out_range(const mbc_req *q, int64_t *lo, int64_t *hi)
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

/* Offset of a view's held part along axis d (4-D views only have them). */
static int64_t view_off(const mb_view *v, int d)
{
    if (v->t->ndim != 4)
        return 0;
    return d == 2 ? v->h_off : d == 3 ? v->w_off : 0;
}

static void strides_of(const mb_tensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= t->dims[d];
    }
}

int mbc_concat(const mbc_req *q)
{
    const mb_node *n = q->n;
    int R = n->out_ndim, ax = n->a.axis < 0 ? n->a.axis + R : n->a.axis;
    if (ax < 0 || ax >= R)
        return mbc_fail(q, "axis %d out of range", n->a.axis);
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], tst[MB_MAX_DIMS];
    out_range(q, lo, hi);
    int64_t s = 1;
    for (int d = R - 1; d >= 0; d--) {
        tst[d] = s;
        s *= hi[d] - lo[d];
    }
    int64_t base = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const mb_node *src = &q->g->nodes[n->inputs[k]];
        int64_t len = src->out_dims[ax];
        int64_t a0 = lo[ax] > base ? lo[ax] : base, a1 = hi[ax] < base + len ? hi[ax] : base + len;
        if (a0 < a1) {
            copy_box b;
            memset(&b, 0, sizeof b);
            b.R = R;
            const mb_view *v = &q->v[k];
            int64_t sst[MB_MAX_DIMS], cnt = 1;
            strides_of(v->t, sst);
            for (int d = 0; d < R; d++) {
                int64_t b0 = d == ax ? a0 : lo[d], b1 = d == ax ? a1 : hi[d];
                int64_t i0 = (d == ax ? b0 - base : b0) - view_off(v, d), i1 = i0 + (b1 - b0);
                if (i0 < 0 || i1 > v->t->dims[d])
                    return mbc_fail(q, "input %d: indices [%lld,%lld) of dimension %d are needed but the view holds "
                                       "[%lld,%lld)",
                                    k, (long long)(i0 + view_off(v, d)), (long long)(i1 + view_off(v, d)), d,
                                    (long long)view_off(v, d), (long long)(view_off(v, d) + v->t->dims[d]));
                b.ext[d] = b1 - b0;
                b.dst_st[d] = tst[d];
                b.src_st[d] = sst[d];
                b.dst0 += (b0 - lo[d]) * tst[d];
                b.src0 += i0 * sst[d];
                cnt *= b.ext[d];
            }
            k_copy_box f = {b, q->din[k], q->dout};
            if (mbc_launch(q, f, cnt))
                return -1;
        }
        base += len;
    }
    if (base != n->out_dims[ax])
        return mbc_fail(q, "inputs add up to %lld along axis %d, the output has %lld", (long long)base, ax,
                        (long long)n->out_dims[ax]);
    return 0;
}

int mbc_copy(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *src = n->type == MB_OP_CONSTANT ? n->params[0] : q->v[0].t;
    if (!src)
        return mbc_fail(q, "has no value");
    if (mb_tensor_numel(src) != mb_tensor_numel(q->out))
        return mbc_fail(q, "%lld elements in, %lld out", (long long)mb_tensor_numel(src),
                        (long long)mb_tensor_numel(q->out));
    const float *d = n->type == MB_OP_CONSTANT ? mbc_param(q, src) : q->din[0];
    if (!d)
        return -1;
    return mbc_copy_d2d(q, q->dout, d, mb_tensor_bytes(src));
}

/* ---- Pad ---------------------------------------------------------------- */

/* Per axis d, for each output index of the tile: the source element offset
 * (view-local index * stride), or -1 for the constant. */
typedef struct gather {
    int R;
    int64_t ext[MB_MAX_DIMS];
    int64_t at[MB_MAX_DIMS]; /* where axis d's table starts in the table array */
} gather;

typedef struct k_pad {
    gather g;
    const int64_t *tab;
    float value;
    const float *x;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t t = i, so = 0;
        int inside = 1;
        for (int d = g.R - 1; d >= 0; d--) {
            int64_t e = tab[g.at[d] + t % g.ext[d]];
            t /= g.ext[d];
            if (e < 0)
                inside = 0;
            so += e;
        }
        y[i] = inside ? x[so] : value;
    }
} k_pad;

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
    default:
        return 0;
    }
}

int mbc_pad(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_view *v = &q->v[0];
    const mb_node *src = &q->g->nodes[n->inputs[0]];
    int R = n->out_ndim;
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], sst[MB_MAX_DIMS], total = 0;
    out_range(q, lo, hi);
    strides_of(v->t, sst);
    gather g;
    memset(&g, 0, sizeof g);
    g.R = R;
    for (int d = 0; d < R; d++) {
        g.ext[d] = hi[d] - lo[d];
        g.at[d] = total;
        total += g.ext[d];
    }
    int64_t *tab = (int64_t *)malloc(sizeof(int64_t) * (size_t)(total ? total : 1));
    if (!tab)
        return mbc_fail(q, "out of memory");
    /* An input index along one axis is read only if every other axis has an
     * index inside the input too; when some axis has none, the tile is all
     * pad value and reads nothing (its view may then hold anything). */
    int reads = 1;
    for (int d = 0; d < R; d++) {
        int any = 0;
        for (int64_t o = lo[d]; o < hi[d] && !any; o++) {
            int64_t i;
            any = pad_src(n->a.pad_mode, o, n->a.pad_amounts[d], src->out_dims[d], &i);
        }
        reads = reads && any;
    }
    for (int d = 0; d < R; d++)
        for (int64_t o = lo[d]; o < hi[d]; o++) {
            int64_t i;
            int64_t *e = &tab[g.at[d] + o - lo[d]];
            if (!reads || !pad_src(n->a.pad_mode, o, n->a.pad_amounts[d], src->out_dims[d], &i)) {
                *e = -1;
                continue;
            }
            int64_t off = view_off(v, d);
            if (i < off || i >= off + v->t->dims[d]) {
                free(tab);
                return mbc_fail(q, "input index %lld of dimension %d is needed but the view holds [%lld,%lld)",
                                (long long)i, d, (long long)off, (long long)(off + v->t->dims[d]));
            }
            *e = (i - off) * sst[d];
        }
    const int64_t *dtab = (const int64_t *)mbc_table(q, tab, sizeof(int64_t) * (size_t)total);
    free(tab);
    if (!dtab)
        return -1;
    k_pad f = {g, dtab, n->a.pad_value, q->din[0], q->dout};
    return mbc_launch(q, f, mb_tensor_numel(q->out));
}

/* ---- Resize ------------------------------------------------------------- */

/* Per axis and output index: source offsets of the two neighbours and the
 * weight of the second (0: the first alone), as kernels/ref/ref_shape.c. */
typedef struct rz_entry {
    int64_t e0, e1;
    double w1;
} rz_entry;

typedef struct k_resize {
    gather g;
    const rz_entry *tab;
    const float *x;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        const rz_entry *e[MB_MAX_DIMS];
        int active[MB_MAX_DIMS], A = 0;
        int64_t t = i, base = 0;
        for (int d = g.R - 1; d >= 0; d--) {
            e[d] = &tab[g.at[d] + t % g.ext[d]];
            t /= g.ext[d];
            base += e[d]->e0;
        }
        for (int d = 0; d < g.R; d++)
            if (e[d]->w1 != 0.0)
                active[A++] = d;
        double acc = 0.0;
        for (int corner = 0; corner < (1 << A); corner++) {
            double wgt = 1.0;
            int64_t at = base;
            for (int k = 0; k < A; k++) {
                const rz_entry *ek = e[active[k]];
                if (corner & (1 << k)) {
                    at += ek->e1 - ek->e0;
                    wgt *= ek->w1;
                } else {
                    wgt *= 1.0 - ek->w1;
                }
            }
            acc += wgt * (double)x[at];
        }
        y[i] = (float)acc;
    }
} k_resize;

int mbc_resize(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_view *v = &q->v[0];
    const mb_node *src = &q->g->nodes[n->inputs[0]];
    int R = n->out_ndim;
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], sst[MB_MAX_DIMS], total = 0;
    out_range(q, lo, hi);
    strides_of(v->t, sst);
    gather g;
    memset(&g, 0, sizeof g);
    g.R = R;
    for (int d = 0; d < R; d++) {
        g.ext[d] = hi[d] - lo[d];
        g.at[d] = total;
        total += g.ext[d];
    }
    rz_entry *tab = (rz_entry *)malloc(sizeof(rz_entry) * (size_t)(total ? total : 1));
    if (!tab)
        return mbc_fail(q, "out of memory");
    for (int d = 0; d < R; d++) {
        int64_t in_len = src->out_dims[d], off = view_off(v, d);
        float scale = n->a.scales[d] > 0 ? n->a.scales[d] : 1.0f;
        for (int64_t o = lo[d]; o < hi[d]; o++) {
            double x = mb_resize_coord(n->a.coord_mode, o, scale, in_len, n->out_dims[d]);
            int64_t i0, i1;
            double w1;
            if (n->a.resize_mode == MB_RESIZE_NEAREST) {
                i0 = i1 = mb_resize_nearest(n->a.nearest_mode, x, in_len);
                w1 = 0.0;
            } else {
                double f = floor(x);
                int64_t a = (int64_t)f, b = a + 1;
                w1 = x - f;
                i0 = a < 0 ? 0 : a >= in_len ? in_len - 1 : a;
                i1 = b < 0 ? 0 : b >= in_len ? in_len - 1 : b;
            }
            int64_t last = w1 != 0.0 ? i1 : i0;
            int64_t mn = i0 < last ? i0 : last, mx = i0 > last ? i0 : last;
            if (mn < off || mx >= off + v->t->dims[d]) {
                free(tab);
                return mbc_fail(q, "input %s [%lld,%lld] are needed but the view holds [%lld,%lld)",
                                d == 2 ? "rows" : d == 3 ? "columns" : "indices", (long long)mn, (long long)mx,
                                (long long)off, (long long)(off + v->t->dims[d]));
            }
            rz_entry *e = &tab[g.at[d] + o - lo[d]];
            e->e0 = (i0 - off) * sst[d];
            e->e1 = (i1 - off) * sst[d];
            e->w1 = w1;
        }
    }
    const rz_entry *dtab = (const rz_entry *)mbc_table(q, tab, sizeof(rz_entry) * (size_t)total);
    free(tab);
    if (!dtab)
        return -1;
    k_resize f = {g, dtab, q->din[0], q->dout};
    return mbc_launch(q, f, mb_tensor_numel(q->out));
}

/* ---- Softmax ------------------------------------------------------------ */

/* One thread per (outer, inner) line along the axis: max, exp and sum, divide. */
typedef struct k_softmax {
    const float *x;
    float *y;
    int64_t len, inner;
    __host__ __device__ void operator()(int64_t l) const
    {
        int64_t a = l / inner, b = l % inner;
        const float *s = x + a * len * inner + b;
        float *o = y + a * len * inner + b;
        float m = -INFINITY, sum = 0.0f;
        for (int64_t i = 0; i < len; i++)
            if (s[i * inner] > m)
                m = s[i * inner];
        for (int64_t i = 0; i < len; i++) {
            o[i * inner] = expf(s[i * inner] - m);
            sum += o[i * inner];
        }
        for (int64_t i = 0; i < len; i++)
            o[i * inner] /= sum;
    }
} k_softmax;

int mbc_softmax(const mbc_req *q)
{
    const mb_node *n = q->n;
    int R = n->out_ndim, ax = n->a.axis < 0 ? n->a.axis + R : n->a.axis;
    if (ax < 0 || ax >= R)
        return mbc_fail(q, "axis %d out of range", n->a.axis);
    int64_t outer = 1, len = n->out_dims[ax], inner = 1;
    for (int d = 0; d < ax; d++)
        outer *= n->out_dims[d];
    for (int d = ax + 1; d < R; d++)
        inner *= n->out_dims[d];
    k_softmax f = {q->din[0], q->dout, len, inner};
    return mbc_launch(q, f, outer * inner);
}
