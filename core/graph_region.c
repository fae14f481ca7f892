/* Region mapping: which rectangle of an input a rectangle of the output needs.
 * Every tile and operator-level split stands on this function. */
#include "mecbed/graph.h"

#include <math.h>

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

/* Clip [lo, hi) to [0, len) keeping lo <= hi (an empty range may remain). */
static void clip_range(int64_t *lo, int64_t *hi, int64_t len)
{
    *lo = clamp64(*lo, 0, len);
    *hi = clamp64(*hi, *lo, len);
}

double mb_resize_coord(int coord_mode, int64_t o, float scale, int64_t in_len, int64_t out_len)
{
    switch (coord_mode) {
    case MB_COORD_ASYMMETRIC:
        return o / (double)scale;
    case MB_COORD_ALIGN_CORNERS: {
        /* ONNX defines align_corners on length_resized = in_len * scale, not on
         * the floored output length: with a fractional scale the two differ
         * (test_resize_downsample_scales_linear_align_corners). */
        double len = (double)in_len * (double)scale;
        (void)out_len;
        return len > 1 ? o * (double)(in_len - 1) / (len - 1) : 0.0;
    }
    case MB_COORD_PYTORCH_HALF_PIXEL:
        return out_len > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
    case MB_COORD_TF_HALF_PIXEL_FOR_NN:
        return (o + 0.5) / scale;
    case MB_COORD_HALF_PIXEL:
    default:
        return (o + 0.5) / scale - 0.5;
    }
}

int64_t mb_resize_nearest(int nearest_mode, double x, int64_t in_len)
{
    int64_t i;
    switch (nearest_mode) {
    case MB_NEAREST_FLOOR:
        i = (int64_t)floor(x);
        break;
    case MB_NEAREST_CEIL:
        i = (int64_t)ceil(x);
        break;
    case MB_NEAREST_ROUND_PREFER_CEIL:
        i = (int64_t)floor(x + 0.5);
        break;
    case MB_NEAREST_ROUND_PREFER_FLOOR:
    default:
        i = (x - floor(x) == 0.5) ? (int64_t)floor(x) : (int64_t)floor(x + 0.5);
        break;
    }
    return clamp64(i, 0, in_len - 1);
}

mb_region mb_node_full_region(const mb_graph *g, int i)
{
    const mb_node *n = &g->nodes[i];
    return mb_region_full_dims(n->out_ndim, n->out_dims);
}

/* Window ops (conv, pool): output [o0,o1) along one axis needs input
 * [o0*s - p, (o1-1)*s - p + d*(k-1) + 1). */
static void window_range(int64_t o0, int64_t o1, int k, int s, int d, int p, int64_t len, int64_t *lo,
                         int64_t *hi)
{
    *lo = o0 * s - p;
    *hi = (o1 - 1) * s - p + (int64_t)d * (k - 1) + 1;
    clip_range(lo, hi, len);
}

/* Transposed conv: output o receives input i when o = i*s - p + j*d for some
 * kernel tap j in [0,k), so i in [ceil((o0 + p - d(k-1))/s), floor((o1-1+p)/s)]. */
static void transpose_range(int64_t o0, int64_t o1, int k, int s, int d, int p, int64_t len, int64_t *lo,
                            int64_t *hi)
{
    *lo = ceil_div(o0 + p - (int64_t)d * (k - 1), s);
    *hi = floor_div(o1 - 1 + p, s) + 1;
    clip_range(lo, hi, len);
}

static void resize_range(const mb_node *n, int ax, int64_t o0, int64_t o1, int64_t in_len, int64_t out_len,
                         int64_t *lo, int64_t *hi)
{
    float s = n->a.scales[2 + ax];
    double x0 = mb_resize_coord(n->a.coord_mode, o0, s, in_len, out_len);
    double x1 = mb_resize_coord(n->a.coord_mode, o1 - 1, s, in_len, out_len);
    if (n->a.resize_mode == MB_RESIZE_NEAREST) {
        *lo = mb_resize_nearest(n->a.nearest_mode, x0, in_len);
        *hi = mb_resize_nearest(n->a.nearest_mode, x1, in_len) + 1;
    } else {
        /* linear: the two neighbours floor(x) and floor(x)+1, clamped */
        *lo = (int64_t)floor(x0);
        *hi = (int64_t)floor(x1) + 2;
    }
    clip_range(lo, hi, in_len);
}

mb_region mb_node_input_region(const mb_graph *g, int i, int k, mb_region r)
{
    const mb_node *n = &g->nodes[i];
    const mb_node *src = &g->nodes[n->inputs[k]];
    mb_region full = mb_region_full_dims(src->out_ndim, src->out_dims);
    if (!n->local || src->out_ndim != 4)
        return full;
    int64_t H = src->out_dims[2], W = src->out_dims[3];
    mb_region in = r;
    const mb_op_attrs *a = &n->a;
    switch (n->type) {
    case MB_OP_CONV:
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        window_range(r.h0, r.h1, a->kernel[0], a->stride[0], a->dilation[0], a->pads[0], H, &in.h0, &in.h1);
        window_range(r.w0, r.w1, a->kernel[1], a->stride[1], a->dilation[1], a->pads[1], W, &in.w0, &in.w1);
        return in;
    case MB_OP_CONV_TRANSPOSE:
        transpose_range(r.h0, r.h1, a->kernel[0], a->stride[0], a->dilation[0], a->pads[0], H, &in.h0, &in.h1);
        transpose_range(r.w0, r.w1, a->kernel[1], a->stride[1], a->dilation[1], a->pads[1], W, &in.w0, &in.w1);
        return in;
    case MB_OP_PAD:
        in.h0 = r.h0 - a->pad_amounts[2];
        in.h1 = r.h1 - a->pad_amounts[2];
        in.w0 = r.w0 - a->pad_amounts[3];
        in.w1 = r.w1 - a->pad_amounts[3];
        clip_range(&in.h0, &in.h1, H);
        clip_range(&in.w0, &in.w1, W);
        return in;
    case MB_OP_RESIZE:
        resize_range(n, 0, r.h0, r.h1, H, n->out_dims[2], &in.h0, &in.h1);
        resize_range(n, 1, r.w0, r.w1, W, n->out_dims[3], &in.w0, &in.w1);
        return in;
    default:
        /* elementwise, batch norm, channel concat: same rows and columns,
         * except along an axis the operand broadcasts from size 1 */
        if (H == 1 && n->out_dims[2] != 1) {
            in.h0 = 0;
            in.h1 = 1;
        }
        if (W == 1 && n->out_dims[3] != 1) {
            in.w0 = 0;
            in.w1 = 1;
        }
        return in;
    }
}
