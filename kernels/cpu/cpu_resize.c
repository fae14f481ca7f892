/* Resize (nearest and linear) on the fast CPU backend, for 4-D tensors
 * scaled along H and W only; anything else (a 2-D Resize, a scale on N or C,
 * a coordinate mode that moves an unscaled N or C axis) runs the reference
 * kernel. Source coordinates come from mb_resize_coord / mb_resize_nearest,
 * as in the reference backend and the region mapping, computed once per
 * output row and column, not per element.
 *
 *  - nearest: one gather per output row; a row whose source row equals the
 *    previous row's is a memcpy of that output row (every other row at 2x).
 *  - linear: the two source rows are interpolated along W into row buffers
 *    (kept while the next output row uses the same source rows), then one
 *    blend per element along H. Each element is computed from its position
 *    alone, so tiles are bit-exact; against the reference (which sums the
 *    corners in double) the difference is float rounding.
 * Both run near memory speed: the output is written once, the input read
 * about once. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

typedef struct resize_job {
    const mb_view *v;
    float *out;
    int64_t C, rows, cols;
    int linear;
    /* per output row / column of the region: source index, second index and its weight */
    int64_t *y0, *y1, *x0, *x1;
    float *wy, *wx;
    cpu_ctx *c;
    volatile int failed;
} resize_job;

/* Source index (and for linear the neighbour and weight) of output o along an axis. */
static void axis_src(const mb_node *n, int d, int64_t o, int64_t in_len, int64_t *i0, int64_t *i1, float *w1)
{
    float scale = n->a.scales[d] > 0 ? n->a.scales[d] : 1.0f;
    double x = mb_resize_coord(n->a.coord_mode, o, scale, in_len, n->out_dims[d]);
    if (n->a.resize_mode == MB_RESIZE_NEAREST) {
        *i0 = *i1 = mb_resize_nearest(n->a.nearest_mode, x, in_len);
        *w1 = 0.0f;
        return;
    }
    double f = floor(x);
    int64_t a = (int64_t)f, b = a + 1;
    *w1 = (float)(x - f);
    *i0 = a < 0 ? 0 : a >= in_len ? in_len - 1 : a;
    *i1 = b < 0 ? 0 : b >= in_len ? in_len - 1 : b;
}

/* 1 when the op maps every index of axis d to itself (N and C here). */
static int axis_identity(const mb_node *n, int d, int64_t len)
{
    for (int64_t o = 0; o < len; o++) {
        int64_t i0, i1;
        float w1;
        axis_src(n, d, o, len, &i0, &i1, &w1);
        if (i0 != o || (w1 != 0.0f && i1 != o))
            return 0;
    }
    return 1;
}

int cpu_resize_fast(const mb_graph *g, int node)
{
    const mb_node *n = &g->nodes[node];
    const mb_node *src = &g->nodes[n->inputs[0]];
    if (n->out_ndim != 4 || src->out_ndim != 4 || n->out_dims[0] != src->out_dims[0] ||
        n->out_dims[1] != src->out_dims[1])
        return 0;
    if (n->a.resize_mode != MB_RESIZE_NEAREST && n->a.resize_mode != MB_RESIZE_LINEAR)
        return 0;
    /* the channel axis is checked in full; the batch axis is short */
    return axis_identity(n, 0, n->out_dims[0]) && axis_identity(n, 1, n->out_dims[1]);
}

CPU_SIMD_CLONES
static void gather_row(float *restrict o, const float *restrict s, const int64_t *restrict ix, int64_t cols)
{
    for (int64_t x = 0; x < cols; x++)
        o[x] = s[ix[x]];
}

CPU_SIMD_CLONES
static void lerp_row(float *restrict o, const float *restrict s, const int64_t *restrict i0,
                     const int64_t *restrict i1, const float *restrict w, int64_t cols)
{
    for (int64_t x = 0; x < cols; x++)
        o[x] = (1.0f - w[x]) * s[i0[x]] + w[x] * s[i1[x]];
}

CPU_SIMD_CLONES
static void blend_rows(float *restrict o, const float *restrict a, const float *restrict b, float w, int64_t cols)
{
    for (int64_t x = 0; x < cols; x++)
        o[x] = (1.0f - w) * a[x] + w * b[x];
}

/* One task: one (batch, channel) plane of the region. */
static void resize_task(void *arg, int t, int thread)
{
    resize_job *j = arg;
    const mb_view *v = j->v;
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3], rows = j->rows, cols = j->cols;
    const float *plane = v->t->data + (int64_t)t * vh * vw - v->w_off; /* plane[(iy - h_off) * vw + ix] */
    float *o = j->out + (int64_t)t * rows * cols;
    if (!j->linear) {
        for (int64_t y = 0; y < rows; y++) {
            if (y > 0 && j->y0[y] == j->y0[y - 1])
                memcpy(o + y * cols, o + (y - 1) * cols, sizeof(float) * (size_t)cols);
            else
                gather_row(o + y * cols, plane + (j->y0[y] - v->h_off) * vw, j->x0, cols);
        }
        return;
    }
    float *h = cpu_scratch(j->c, thread, (size_t)(2 * cols));
    if (!h) {
        j->failed = 1;
        return;
    }
    int64_t have[2] = {-1, -1}; /* source row held by h[0..cols) and h[cols..2cols) */
    for (int64_t y = 0; y < rows; y++) {
        int64_t want0 = j->y0[y], want1 = j->y1[y];
        int s0 = have[0] == want0 ? 0 : have[1] == want0 ? 1 : -1;
        if (s0 < 0) { /* load into the slot that does not hold want1 */
            s0 = have[0] == want1 ? 1 : 0;
            lerp_row(h + s0 * cols, plane + (want0 - v->h_off) * vw, j->x0, j->x1, j->wx, cols);
            have[s0] = want0;
        }
        int s1 = have[0] == want1 ? 0 : have[1] == want1 ? 1 : -1;
        if (s1 < 0) {
            s1 = 1 - s0;
            lerp_row(h + s1 * cols, plane + (want1 - v->h_off) * vw, j->x0, j->x1, j->wx, cols);
            have[s1] = want1;
        }
        const float *hr[2] = {h + s0 * cols, h + s1 * cols};
        blend_rows(o + y * cols, hr[0], hr[1], j->wy[y], cols);
    }
}

int cpu_resize(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    const mb_node *src = &g->nodes[n->inputs[0]];
    resize_job j = {.v = &in[0], .out = out->data, .c = c};
    j.C = n->out_dims[0] * n->out_dims[1];
    j.rows = r.h1 - r.h0;
    j.cols = r.w1 - r.w0;
    j.linear = n->a.resize_mode == MB_RESIZE_LINEAR;
    if (j.rows == 0 || j.cols == 0 || j.C == 0)
        return 0;
    size_t nr = (size_t)j.rows, nc = (size_t)j.cols;
    j.y0 = malloc(sizeof(int64_t) * 2 * (nr + nc));
    j.wy = malloc(sizeof(float) * (nr + nc));
    if (!j.y0 || !j.wy) {
        free(j.y0);
        free(j.wy);
        snprintf(err, errlen, "Resize '%s': out of memory", n->name);
        return -1;
    }
    j.y1 = j.y0 + nr;
    j.x0 = j.y1 + nr;
    j.x1 = j.x0 + nc;
    j.wx = j.wy + nr;
    for (int64_t y = 0; y < j.rows; y++)
        axis_src(n, 2, r.h0 + y, src->out_dims[2], &j.y0[y], &j.y1[y], &j.wy[y]);
    for (int64_t x = 0; x < j.cols; x++)
        axis_src(n, 3, r.w0 + x, src->out_dims[3], &j.x0[x], &j.x1[x], &j.wx[x]);
    cpu_run(c, (int)j.C, resize_task, &j, (double)j.C * j.rows * j.cols * (j.linear ? 1.0 : 0.25));
    free(j.y0);
    free(j.wy);
    if (j.failed) {
        snprintf(err, errlen, "Resize '%s': out of memory for the row buffers", n->name);
        return -1;
    }
    return 0;
}
