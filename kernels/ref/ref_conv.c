/* Reference Conv and ConvTranspose (ONNX semantics, NCHW, groups, stride,
 * asymmetric pads, dilation, output_padding). Input coordinates outside the
 * image are padding (they contribute nothing); in-image coordinates must lie
 * inside the view. Each output element is a float sum over its taps in the
 * order (input channel, ky, kx), then + bias: the order depends only on the
 * element's place in the full output, so tiles are bit-exact. */
#include <stdlib.h>

#include "ref_impl.h"

/* Input coordinate of output o, kernel tap j (Conv and the pools). */
static inline int64_t win_src(int64_t o, int j, int s, int p, int d)
{
    return o * s - p + (int64_t)j * d;
}

/* Smallest and largest in-image input coordinate that outputs [o0,o1) read
 * along one axis ([lo,hi), empty when none). Enumerates exactly what the
 * kernel reads, so the check cannot disagree with the loops. */
static void win_used(int64_t o0, int64_t o1, int k, int s, int p, int d, int64_t len, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (int64_t o = o0; o < o1; o++)
        for (int j = 0; j < k; j++) {
            int64_t i = win_src(o, j, s, p, d);
            if (i < 0 || i >= len)
                continue;
            if (i < *lo)
                *lo = i;
            if (i + 1 > *hi)
                *hi = i + 1;
        }
    if (*lo > *hi)
        *lo = *hi = 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Outputs o in [o0,o1) whose tap j reads inside the image [0,len):
 * 0 <= o*s - p + j*d < len. Returns them as [*lo,*hi) (possibly empty). */
static void tap_outputs(int64_t o0, int64_t o1, int j, int s, int p, int d, int64_t len, int64_t *lo, int64_t *hi)
{
    int64_t off = (int64_t)j * d - p; /* input = o*s + off */
    int64_t a = -floor_div(off, s);   /* ceil(-off / s) */
    int64_t b = floor_div(len - 1 - off, s) + 1;
    *lo = a > o0 ? a : o0;
    *hi = b < o1 ? b : o1;
    if (*hi < *lo)
        *hi = *lo;
}

/* Conv, one output plane (batch b, output channel m) at a time: the plane's
 * accumulators start at 0 and receive tap after tap in the order (input
 * channel, ky, kx), each tap only at the outputs where it reads inside the
 * image (padding contributes nothing); then + bias. So every output element
 * sees the same float additions in the same order as the textbook loop
 *   for c, ky, kx: if in image: acc += x * w
 * whatever the region, which is what makes tiles bit-exact. */
int ref_conv(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_view *v = &q->v[0];
    const mb_tensor *x = v->t, *w = n->params[0];
    const float *bias = n->n_params > 1 ? n->params[1]->data : NULL;
    int64_t N = x->dims[0], C = x->dims[1], H = v->full_h, W = v->full_w;
    int64_t M = n->out_dims[1];
    int grp = a->group > 0 ? a->group : 1;
    int64_t Cg = C / grp, Mg = M / grp;
    int kh = a->kernel[0], kw = a->kernel[1];
    int sh = a->stride[0] > 0 ? a->stride[0] : 1, sw = a->stride[1] > 0 ? a->stride[1] : 1;
    int dh = a->dilation[0] > 0 ? a->dilation[0] : 1, dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    int pt = a->pads[0], pl = a->pads[1];
    mb_region r = q->r;
    if (w->ndim != 4 || w->dims[0] != M || w->dims[1] != Cg || w->dims[2] != kh || w->dims[3] != kw)
        return ref_fail(q, "weights do not have the shape [%lld,%lld,%d,%d]", (long long)M, (long long)Cg, kh, kw);

    int64_t h_lo, h_hi, w_lo, w_hi;
    win_used(r.h0, r.h1, kh, sh, pt, dh, H, &h_lo, &h_hi);
    win_used(r.w0, r.w1, kw, sw, pl, dw, W, &w_lo, &w_hi);
    if (ref_view_covers(q, 0, h_lo, h_hi, w_lo, w_hi))
        return -1;

    int64_t rows = mb_region_rows(r), cols = mb_region_cols(r);
    if (rows == 0 || cols == 0)
        return 0;
    float *acc = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!acc)
        return ref_fail(q, "out of memory (%lld accumulators)", (long long)(rows * cols));
    for (int64_t b = 0; b < N; b++)
        for (int64_t m = 0; m < M; m++) {
            int64_t g0 = (m / Mg) * Cg;
            for (int64_t i = 0; i < rows * cols; i++)
                acc[i] = 0.0f;
            for (int64_t c = 0; c < Cg; c++)
                for (int ky = 0; ky < kh; ky++) {
                    int64_t oy0, oy1;
                    tap_outputs(r.h0, r.h1, ky, sh, pt, dh, H, &oy0, &oy1);
                    for (int kx = 0; kx < kw; kx++) {
                        int64_t ox0, ox1;
                        tap_outputs(r.w0, r.w1, kx, sw, pl, dw, W, &ox0, &ox1);
                        float wv = w->data[((m * Cg + c) * kh + ky) * kw + kx];
                        if (sh == 1 && sw == 1 && ox0 == r.w0 && ox1 == r.w1 && x->dims[3] == cols && oy0 < oy1) {
                            /* every row of the tap is whole and rows follow each other in the
                             * view: one run over the rows [oy0,oy1) (1x1 convs, centre taps) */
                            const float *xs =
                                ref_at(v, b, g0 + c, win_src(oy0, ky, 1, pt, dh), win_src(r.w0, kx, 1, pl, dw));
                            float *as = acc + (oy0 - r.h0) * cols;
                            for (int64_t i = 0; i < (oy1 - oy0) * cols; i++)
                                as[i] += xs[i] * wv;
                            continue;
                        }
                        for (int64_t oy = oy0; oy < oy1; oy++) {
                            int64_t iy = win_src(oy, ky, sh, pt, dh);
                            /* the view's row iy, indexed by ix - w_off */
                            const float *xrow = ref_at(v, b, g0 + c, iy, v->w_off);
                            float *arow = acc + (oy - r.h0) * cols;
                            if (sw == 1) { /* the common case, in a form the compiler vectorises */
                                const float *xs = xrow + win_src(0, kx, 1, pl, dw) - v->w_off;
                                for (int64_t ox = ox0; ox < ox1; ox++)
                                    arow[ox - r.w0] += xs[ox] * wv;
                            } else {
                                for (int64_t ox = ox0; ox < ox1; ox++)
                                    arow[ox - r.w0] += xrow[win_src(ox, kx, sw, pl, dw) - v->w_off] * wv;
                            }
                        }
                    }
                }
            for (int64_t oy = r.h0; oy < r.h1; oy++)
                for (int64_t ox = r.w0; ox < r.w1; ox++) {
                    float y = acc[(oy - r.h0) * cols + (ox - r.w0)];
                    if (bias)
                        y += bias[m];
                    *ref_out_at(q, b, m, oy, ox) = y;
                }
        }
    free(acc);
    return 0;
}

/* ConvTranspose: output o receives input i through tap j when
 * o = i*s - p + j*d, so for a given o and j the input is i = (o + p - j*d)/s
 * when that divides exactly. */
static inline int tr_src(int64_t o, int j, int s, int p, int d, int64_t len, int64_t *i)
{
    int64_t t = o + p - (int64_t)j * d;
    if (t < 0 || t % s)
        return 0;
    *i = t / s;
    return *i < len;
}

static void tr_used(int64_t o0, int64_t o1, int k, int s, int p, int d, int64_t len, int64_t *lo, int64_t *hi)
{
    *lo = INT64_MAX;
    *hi = INT64_MIN;
    for (int64_t o = o0; o < o1; o++)
        for (int j = 0; j < k; j++) {
            int64_t i;
            if (!tr_src(o, j, s, p, d, len, &i))
                continue;
            if (i < *lo)
                *lo = i;
            if (i + 1 > *hi)
                *hi = i + 1;
        }
    if (*lo > *hi)
        *lo = *hi = 0;
}

int ref_conv_transpose(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_view *v = &q->v[0];
    const mb_tensor *x = v->t, *w = n->params[0];
    const float *bias = n->n_params > 1 ? n->params[1]->data : NULL;
    int64_t N = x->dims[0], C = x->dims[1], H = v->full_h, W = v->full_w;
    int64_t M = n->out_dims[1];
    int grp = a->group > 0 ? a->group : 1;
    int64_t Cg = C / grp, Mg = M / grp;
    int kh = a->kernel[0], kw = a->kernel[1];
    int sh = a->stride[0] > 0 ? a->stride[0] : 1, sw = a->stride[1] > 0 ? a->stride[1] : 1;
    int dh = a->dilation[0] > 0 ? a->dilation[0] : 1, dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    int pt = a->pads[0], pl = a->pads[1];
    mb_region r = q->r;
    if (w->ndim != 4 || w->dims[0] != C || w->dims[1] != Mg || w->dims[2] != kh || w->dims[3] != kw)
        return ref_fail(q, "weights do not have the shape [%lld,%lld,%d,%d]", (long long)C, (long long)Mg, kh, kw);

    int64_t h_lo, h_hi, w_lo, w_hi;
    tr_used(r.h0, r.h1, kh, sh, pt, dh, H, &h_lo, &h_hi);
    tr_used(r.w0, r.w1, kw, sw, pl, dw, W, &w_lo, &w_hi);
    if (ref_view_covers(q, 0, h_lo, h_hi, w_lo, w_hi))
        return -1;

    for (int64_t b = 0; b < N; b++)
        for (int64_t m = 0; m < M; m++) {
            int64_t gi = m / Mg, mm = m - gi * Mg;
            for (int64_t oy = r.h0; oy < r.h1; oy++)
                for (int64_t ox = r.w0; ox < r.w1; ox++) {
                    float acc = 0.0f;
                    for (int64_t c = gi * Cg; c < (gi + 1) * Cg; c++)
                        for (int ky = 0; ky < kh; ky++) {
                            int64_t iy;
                            if (!tr_src(oy, ky, sh, pt, dh, H, &iy))
                                continue;
                            const float *wrow = w->data + ((c * Mg + mm) * kh + ky) * kw;
                            for (int kx = 0; kx < kw; kx++) {
                                int64_t ix;
                                if (!tr_src(ox, kx, sw, pl, dw, W, &ix))
                                    continue;
                                acc += *ref_at(v, b, c, iy, ix) * wrow[kx];
                            }
                        }
                    if (bias)
                        acc += bias[m];
                    *ref_out_at(q, b, m, oy, ox) = acc;
                }
        }
    return 0;
}
