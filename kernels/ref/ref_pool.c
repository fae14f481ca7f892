/* Reference MaxPool, AveragePool and GlobalAveragePool (ONNX semantics).
 * Window taps outside the image: excluded from a max; for an average they
 * count in the divisor only with count_include_pad and only while inside the
 * padded extent [-pad_begin, len + pad_end) (a ceil_mode window may reach past
 * it; those taps never count), as ONNX and PyTorch do. */
#include <math.h>

#include "ref_impl.h"

static inline int64_t win_src(int64_t o, int j, int s, int p, int d)
{
    return o * s - p + (int64_t)j * d;
}

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

int ref_pool(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_view *v = &q->v[0];
    int64_t N = v->t->dims[0], C = v->t->dims[1], H = v->full_h, W = v->full_w;
    int kh = a->kernel[0], kw = a->kernel[1];
    int sh = a->stride[0] > 0 ? a->stride[0] : 1, sw = a->stride[1] > 0 ? a->stride[1] : 1;
    int dh = a->dilation[0] > 0 ? a->dilation[0] : 1, dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    int pt = a->pads[0], pl = a->pads[1], pb = a->pads[2], pr = a->pads[3];
    int is_max = n->type == MB_OP_MAXPOOL;
    mb_region r = q->r;
    if (kh <= 0 || kw <= 0)
        return ref_fail(q, "kernel_shape is missing");

    int64_t h_lo, h_hi, w_lo, w_hi;
    win_used(r.h0, r.h1, kh, sh, pt, dh, H, &h_lo, &h_hi);
    win_used(r.w0, r.w1, kw, sw, pl, dw, W, &w_lo, &w_hi);
    if (ref_view_covers(q, 0, h_lo, h_hi, w_lo, w_hi))
        return -1;

    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t oy = r.h0; oy < r.h1; oy++)
                for (int64_t ox = r.w0; ox < r.w1; ox++) {
                    float acc = is_max ? -INFINITY : 0.0f;
                    int64_t count = 0;
                    for (int ky = 0; ky < kh; ky++) {
                        int64_t iy = win_src(oy, ky, sh, pt, dh);
                        int in_h = iy >= 0 && iy < H, in_padded_h = iy >= -pt && iy < H + pb;
                        for (int kx = 0; kx < kw; kx++) {
                            int64_t ix = win_src(ox, kx, sw, pl, dw);
                            int in_w = ix >= 0 && ix < W, in_padded_w = ix >= -pl && ix < W + pr;
                            if (in_h && in_w) {
                                float x = *ref_at(v, b, c, iy, ix);
                                if (is_max) {
                                    if (x > acc || isnan(x))
                                        acc = x;
                                } else {
                                    acc += x;
                                }
                                count++;
                            } else if (a->count_include_pad && in_padded_h && in_padded_w) {
                                count++;
                            }
                        }
                    }
                    if (!is_max)
                        acc = count ? acc / (float)count : 0.0f;
                    *ref_out_at(q, b, c, oy, ox) = acc;
                }
    return 0;
}

int ref_global_avgpool(const ref_req *q)
{
    const mb_tensor *x = q->v[0].t;
    int64_t planes = x->dims[0] * x->dims[1], size = 1;
    for (int d = 2; d < x->ndim; d++)
        size *= x->dims[d];
    for (int64_t p = 0; p < planes; p++) {
        const float *s = x->data + p * size;
        float acc = 0.0f;
        for (int64_t i = 0; i < size; i++)
            acc += s[i];
        q->out->data[p] = size ? acc / (float)size : 0.0f;
    }
    return 0;
}
