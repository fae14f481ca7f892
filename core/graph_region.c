/* Region mapping: which rectangle of an input a rectangle of the output needs.
 * Every tile and operator-level split stands on this function. */
#include "mecbed/graph.h"

#include "graph_infer.h"

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

static mb_region input_region_23(const mb_graph *g, int i, int k, mb_region r);

mb_region mb_node_input_region(const mb_graph *g, int i, int k, mb_region r)
{
    const mb_node *n = &g->nodes[i];
    const mb_node *src = &g->nodes[n->inputs[k]];
    mb_region full = mb_region_full_dims(src->out_ndim, src->out_dims);
    if (n->local && (n->out_ndim == 2 || n->out_ndim == 3))
        return input_region_23(g, i, k, r);
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

/* ---- Regions of 2-D and 3-D tensors (transformer activations) ----
 *
 * A region of a rank-2/3 tensor is a box over axes 0 and 1 with axis 2
 * whole (mb_region_axes). An op with such an output is local when every
 * output box is computable from boxes of its inputs: elementwise and
 * broadcasting ops, Gemm and MatMul (rows from the left operand, columns
 * from the right), LayerNormalization and Softmax along their inner axes
 * (the normalised axes are computed whole: mb_node_compute_region), and the
 * Transpose and Reshape that split attention heads ([T, D] <-> [T, H, d],
 * [T, H, d] <-> [H, T, d]). */

static int is_eltwise1(mb_op_type t)
{
    return (t >= MB_OP_RELU && t <= MB_OP_LEAKYRELU) || t == MB_OP_IDENTITY ||
           (t >= MB_OP_GELU && t <= MB_OP_SIGN) || t == MB_OP_CAST || t == MB_OP_THRESHOLDED_RELU ||
           t == MB_OP_ISINF || t == MB_OP_TAN || t == MB_OP_ROUND;
}

static int is_broadcast_binary(mb_op_type t)
{
    return (t >= MB_OP_ADD && t <= MB_OP_DIV) || (t >= MB_OP_POW && t <= MB_OP_WHERE) || t == MB_OP_MOD;
}

/* Reshape [T, D] <-> [T, H, d] (D = H*d), or same dims: the factor d of a
 * split (out rank 3) or merge (out rank 2), 1 for same dims; 0 otherwise. */
static int64_t reshape_factor(const mb_node *n, const mb_node *src)
{
    int p = src->out_ndim, q = n->out_ndim;
    if (p < 2 || p > 3 || q < 2 || q > 3 || src->out_dims[0] != n->out_dims[0])
        return 0;
    if (p == q) {
        for (int d = 0; d < p; d++)
            if (src->out_dims[d] != n->out_dims[d])
                return 0;
        return 1;
    }
    if (p == 2 && q == 3 && n->out_dims[1] * n->out_dims[2] == src->out_dims[1] && n->out_dims[2] > 0)
        return n->out_dims[2];
    if (p == 3 && q == 2 && src->out_dims[1] * src->out_dims[2] == n->out_dims[1] && src->out_dims[2] > 0)
        return src->out_dims[2];
    return 0;
}

/* The right operand's rank (Gemm/MatMul): data input 1 or params[0]. */
static int right_rank(const mb_node *n, const mb_graph *g)
{
    if (n->n_inputs >= 2)
        return g->nodes[n->inputs[1]].out_ndim;
    return n->n_params ? n->params[0]->ndim : 0;
}

int mb__token_local(const mb_graph *g, int i)
{
    const mb_node *n = &g->nodes[i];
    int q = n->out_ndim;
    if (q != 2 && q != 3)
        return 0;
    if (n->type != MB_OP_RESHAPE)
        for (int k = 0; k < n->n_inputs; k++)
            if (g->nodes[n->inputs[k]].out_ndim > q)
                return 0;
    if (is_eltwise1(n->type))
        return n->n_inputs == 1 && g->nodes[n->inputs[0]].out_ndim == q;
    if (is_broadcast_binary(n->type))
        return 1;
    switch (n->type) {
    case MB_OP_LAYERNORM:
    case MB_OP_SOFTMAX:
    case MB_OP_LOGSOFTMAX:
        return n->a.axis >= 1 && n->a.axis < q;
    case MB_OP_GEMM:
        return q == 2 && g->nodes[n->inputs[0]].out_ndim == 2 && right_rank(n, g) == 2;
    case MB_OP_MATMUL: {
        int pa = g->nodes[n->inputs[0]].out_ndim, pb = right_rank(n, g);
        return pa >= 2 && pb >= 2 && pa <= q && pb <= q;
    }
    case MB_OP_TRANSPOSE:
        return g->nodes[n->inputs[0]].out_ndim == q;
    case MB_OP_RESHAPE:
        return reshape_factor(n, &g->nodes[n->inputs[0]]) > 0;
    default:
        return 0;
    }
}

mb_region mb_node_compute_region(const mb_graph *g, int i, mb_region r)
{
    const mb_node *n = &g->nodes[i];
    int q = n->out_ndim;
    mb_region full = mb_region_full_dims(q, n->out_dims);
    if (!n->local)
        return full;
    if (q != 2 && q != 3)
        return r;
    switch (n->type) {
    case MB_OP_LAYERNORM:
    case MB_OP_SOFTMAX:
    case MB_OP_LOGSOFTMAX:
        /* the normalised axes (axis..q-1) are computed whole */
        if (n->a.axis <= 1) {
            r.w0 = 0;
            r.w1 = full.w1;
        }
        return r;
    case MB_OP_RESHAPE: {
        int64_t f = reshape_factor(n, &g->nodes[n->inputs[0]]);
        if (q == 2 && g->nodes[n->inputs[0]].out_ndim == 3 && f > 1) { /* merge: whole heads */
            r.w0 = floor_div(r.w0, f) * f;
            r.w1 = ceil_div(r.w1, f) * f;
            clip_range(&r.w0, &r.w1, full.w1);
        }
        return r;
    }
    default:
        return r;
    }
}

/* Broadcast operand of rank p against an output box of rank q (numpy:
 * trailing axes aligned; size-1 axes read index 0). dims: the operand's. */
void mb_broadcast_box(int q, const int64_t *lo, const int64_t *hi, int p, const int64_t *dims, int64_t *blo,
                      int64_t *bhi)
{
    for (int j = 0; j < p; j++) {
        int d = j + (q - p);
        if (dims[j] == 1 || d < 0) {
            blo[j] = 0;
            bhi[j] = dims[j];
        } else {
            blo[j] = lo[d];
            bhi[j] = hi[d];
        }
    }
}

/* Box of a rank-p right operand of Gemm/MatMul (dims) for an output box. */
static void right_box(const mb_node *n, int q, const int64_t *lo, const int64_t *hi, int p, const int64_t *dims,
                      int64_t *blo, int64_t *bhi)
{
    for (int j = 0; j < p; j++) {
        blo[j] = 0;
        bhi[j] = dims[j];
    }
    if (n->type == MB_OP_GEMM) { /* B [K,N], or [N,K] transposed: columns of the output */
        int ax = n->a.trans_b ? 0 : 1;
        blo[ax] = lo[1];
        bhi[ax] = hi[1];
        return;
    }
    if (p == 3 && q == 3 && dims[0] != 1) { /* batched: the output's batch rows */
        blo[0] = lo[0];
        bhi[0] = hi[0];
    }
    if (p == 2 && q == 2) { /* [K, N]: the output's columns */
        blo[1] = lo[1];
        bhi[1] = hi[1];
    }
}

int mb_node_input_box(const mb_graph *g, int i, int k, const int64_t *lo, const int64_t *hi, int64_t *in_lo,
                      int64_t *in_hi)
{
    const mb_node *n = &g->nodes[i];
    const mb_node *src = &g->nodes[n->inputs[k]];
    int p = src->out_ndim, q = n->out_ndim;
    for (int j = 0; j < p; j++) {
        in_lo[j] = 0;
        in_hi[j] = src->out_dims[j];
    }
    if (!n->local || (q != 2 && q != 3))
        return p;
    if (is_eltwise1(n->type) || is_broadcast_binary(n->type)) {
        mb_broadcast_box(q, lo, hi, p, src->out_dims, in_lo, in_hi);
    } else if (n->type == MB_OP_LAYERNORM || n->type == MB_OP_SOFTMAX || n->type == MB_OP_LOGSOFTMAX) {
        for (int j = 0; j < n->a.axis; j++) {
            in_lo[j] = lo[j];
            in_hi[j] = hi[j];
        }
    } else if ((n->type == MB_OP_GEMM || n->type == MB_OP_MATMUL) && k == 0) {
        if (n->type == MB_OP_GEMM) { /* A [M,K], or [K,M] transposed: rows of the output */
            int ax = n->a.trans_a ? 1 : 0;
            in_lo[ax] = lo[0];
            in_hi[ax] = hi[0];
        } else if (p == q) { /* [.., M, K]: same batch and rows */
            for (int j = 0; j < q - 1; j++)
                if (src->out_dims[j] != 1 || j == q - 2) {
                    in_lo[j] = lo[j];
                    in_hi[j] = hi[j];
                }
        } else { /* [M, K] under a batched output */
            in_lo[0] = lo[q - 2];
            in_hi[0] = hi[q - 2];
        }
    } else if (n->type == MB_OP_GEMM || n->type == MB_OP_MATMUL) {
        right_box(n, q, lo, hi, p, src->out_dims, in_lo, in_hi);
    } else if (n->type == MB_OP_TRANSPOSE) {
        for (int d = 0; d < q; d++) {
            in_lo[n->a.perm[d]] = lo[d];
            in_hi[n->a.perm[d]] = hi[d];
        }
    } else if (n->type == MB_OP_RESHAPE) {
        int64_t f = reshape_factor(n, src);
        in_lo[0] = lo[0];
        in_hi[0] = hi[0];
        if (p == q) {
            for (int j = 1; j < p; j++) {
                in_lo[j] = lo[j];
                in_hi[j] = hi[j];
            }
        } else if (q == 3) { /* [T, D] -> [T, H, d]: heads [h0,h1) are columns [h0*d, h1*d) */
            in_lo[1] = lo[1] * f;
            in_hi[1] = hi[1] * f;
        } else { /* [T, H, d] -> [T, D]: whole heads */
            in_lo[1] = floor_div(lo[1], f);
            in_hi[1] = ceil_div(hi[1], f);
        }
    }
    for (int j = 0; j < p; j++)
        clip_range(&in_lo[j], &in_hi[j], src->out_dims[j]);
    return p;
}

/* Output box (rank q) of region r (after mb_node_compute_region). */
void mb_region_to_box(int q, const int64_t *dims, mb_region r, int64_t *lo, int64_t *hi)
{
    int ah, aw;
    mb_region_axes(q, &ah, &aw);
    for (int d = 0; d < q; d++) {
        lo[d] = 0;
        hi[d] = dims[d];
    }
    if (ah >= 0) {
        lo[ah] = r.h0;
        hi[ah] = r.h1;
    }
    if (aw >= 0) {
        lo[aw] = r.w0;
        hi[aw] = r.w1;
    }
}

/* The region covering a box (axes other than the region axes are whole in
 * any region). */
mb_region mb_box_to_region(int p, const int64_t *lo, const int64_t *hi)
{
    int ah, aw;
    mb_region_axes(p, &ah, &aw);
    mb_region r = {0, 1, 0, 1};
    if (ah >= 0) {
        r.h0 = lo[ah];
        r.h1 = hi[ah];
    }
    if (aw >= 0) {
        r.w0 = lo[aw];
        r.w1 = hi[aw];
    }
    return r;
}

static mb_region input_region_23(const mb_graph *g, int i, int k, mb_region r)
{
    const mb_node *n = &g->nodes[i];
    int64_t lo[MB_MAX_DIMS], hi[MB_MAX_DIMS], ilo[MB_MAX_DIMS], ihi[MB_MAX_DIMS];
    r = mb_node_compute_region(g, i, r);
    mb_region_to_box(n->out_ndim, n->out_dims, r, lo, hi);
    int p = mb_node_input_box(g, i, k, lo, hi, ilo, ihi);
    return mb_box_to_region(p, ilo, ihi);
}

int mb_node_param_box(const mb_graph *g, int i, int j, const int64_t *lo, const int64_t *hi, int64_t *plo,
                      int64_t *phi)
{
    const mb_node *n = &g->nodes[i];
    const mb_tensor *t = n->params[j];
    int p = t->ndim, q = n->out_ndim;
    for (int d = 0; d < p; d++) {
        plo[d] = 0;
        phi[d] = t->dims[d];
    }
    if (!n->local || (q != 2 && q != 3))
        return p;
    int right = (n->type == MB_OP_GEMM || n->type == MB_OP_MATMUL) && n->n_inputs == 1 && j == 0;
    if (right)
        right_box(n, q, lo, hi, p, t->dims, plo, phi);
    else if (n->type == MB_OP_GEMM || is_broadcast_binary(n->type)) /* Gemm's C; a constant operand */
        mb_broadcast_box(q, lo, hi, p, t->dims, plo, phi);
    return p;
}
