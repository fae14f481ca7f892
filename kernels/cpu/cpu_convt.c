/* ConvTranspose on the fast CPU backend: GEMM + col2im, for any output
 * rectangle.
 *
 * Per (batch, group, tile of output rows): the input rows and columns the
 * tile reads are packed into X [Cg][pixels]; one sgemm forms the column
 * matrix  col [Mg*kh*kw][pixels] = W_g^T X  (the weights [C][Mg][kh][kw] are
 * read in place as the transposed operand: no packing of our own); then
 * col2im adds each tap's plane into the output rows it lands on, which start
 * at the bias. The reference loop ran at 0.2 GFLOP/s; this runs at sgemm
 * speed less the col2im pass (a strided add per tap, memory-bound).
 *
 * Exactness: each output element is bias + the tap terms in (ky, kx) order,
 * whatever the tile; a tap term is one sgemm dot product over Cg input
 * channels, whose summation order OpenBLAS may vary with the matrix width,
 * so tiles agree with the whole op to rounding (as the GEMM-path Conv). */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu_impl.h"

#define CONVT_COL_FLOATS (1 << 20) /* col buffer per task: 4 MiB, as Conv's im2col tile */

typedef struct convt_job {
    cpu_ctx *c;
    const mb_view *v;
    const float *w, *bias;
    float *out;
    int64_t N, C, M, G, Cg, Mg, KK, H, W;
    int kh, kw, sh, sw, dh, dw, pt, pl;
    mb_region r;
    int64_t rows, cols, rows_per_tile, n_rtiles;
    int disjoint; /* kernel = stride, no dilation: each output gets at most one tap */
    volatile int failed;
} convt_job;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Inputs i in [0, len) that reach outputs [o0, o1) through some tap:
 * o = i*s - p + j*d for j in [0, k). */
static void in_range(int64_t o0, int64_t o1, int k, int s, int p, int d, int64_t len, int64_t *lo, int64_t *hi)
{
    *lo = clamp64(-floor_div(-(o0 + p - (int64_t)(k - 1) * d), s), 0, len);
    *hi = clamp64(floor_div(o1 - 1 + p, s) + 1, *lo, len);
}

/* Inputs i in [i0, i1) whose tap j lands in outputs [o0, o1). */
static void tap_range(int64_t o0, int64_t o1, int j, int s, int p, int d, int64_t i0, int64_t i1, int64_t *lo,
                      int64_t *hi)
{
    int64_t off = (int64_t)j * d - p; /* o = i*s + off */
    *lo = clamp64(-floor_div(-(o0 - off), s), i0, i1);
    *hi = clamp64(floor_div(o1 - 1 - off, s) + 1, *lo, i1);
}

/* Add tap plane `src` ([ni][nj], input rows ia.., columns ja..) into the
 * output plane `o` (the region's rows, row-major, cols wide) for tap (ky, kx),
 * output rows [oy0, oy1). */
static void col2im_tap(const convt_job *j, const float *src, float *o, float b, int ky, int kx, int64_t oy0,
                       int64_t oy1, int64_t ia, int64_t ib, int64_t ja, int64_t jb)
{
    int64_t nj = jb - ja, ylo, yhi, xlo, xhi;
    tap_range(oy0, oy1, ky, j->sh, j->pt, j->dh, ia, ib, &ylo, &yhi);
    tap_range(j->r.w0, j->r.w1, kx, j->sw, j->pl, j->dw, ja, jb, &xlo, &xhi);
    int64_t xoff = (int64_t)kx * j->dw - j->pl - j->r.w0;
    for (int64_t iy = ylo; iy < yhi; iy++) {
        int64_t oy = iy * j->sh - j->pt + (int64_t)ky * j->dh;
        float *orow = o + (oy - j->r.h0) * j->cols + xoff; /* orow[ix * sw] */
        const float *s = src + (iy - ia) * nj - ja;      /* s[ix] */
        if (j->disjoint && j->sw == 2) { /* the only term: bias + it, as bias then += it */
            for (int64_t ix = xlo; ix < xhi; ix++)
                orow[2 * ix] = b + s[ix];
        } else if (j->disjoint) {
            for (int64_t ix = xlo; ix < xhi; ix++)
                orow[ix * j->sw] = b + s[ix];
        } else if (j->sw == 1) {
            for (int64_t ix = xlo; ix < xhi; ix++)
                orow[ix] += s[ix];
        } else if (j->sw == 2) {
            for (int64_t ix = xlo; ix < xhi; ix++)
                orow[2 * ix] += s[ix];
        } else {
            for (int64_t ix = xlo; ix < xhi; ix++)
                orow[ix * j->sw] += s[ix];
        }
    }
}

/* Output rows [oy0, oy1) of plane o start at the bias. With disjoint taps
 * only the outputs no tap reaches are written here (col2im writes the
 * others once: bias + term), which saves a pass over the output. */
static void bias_fill(const convt_job *j, float *o, float b, int64_t oy0, int64_t oy1)
{
    int64_t c0 = 0, c1 = j->cols;
    if (j->disjoint) { /* columns reached: 0 <= ox + pl < W*sw */
        c0 = clamp64(-(int64_t)j->pl - j->r.w0, 0, j->cols);
        c1 = clamp64(j->W * j->sw - j->pl - j->r.w0, c0, j->cols);
    }
    for (int64_t oy = oy0; oy < oy1; oy++) {
        float *row = o + (oy - j->r.h0) * j->cols;
        int reached = j->disjoint && oy + j->pt >= 0 && oy + j->pt < j->H * j->sh;
        int64_t a = reached ? c0 : j->cols, e = reached ? c1 : j->cols;
        for (int64_t x = 0; x < a; x++)
            row[x] = b;
        for (int64_t x = e; x < j->cols; x++)
            row[x] = b;
    }
}

static void convt_task(void *arg, int t, int thread)
{
    convt_job *j = arg;
    int rt = t % (int)j->n_rtiles;
    t /= (int)j->n_rtiles;
    int64_t n = t / j->G, g = t % j->G;
    int64_t oy0 = j->r.h0 + rt * j->rows_per_tile;
    int64_t oy1 = oy0 + j->rows_per_tile < j->r.h1 ? oy0 + j->rows_per_tile : j->r.h1;
    int64_t ia, ib, ja, jb;
    in_range(oy0, oy1, j->kh, j->sh, j->pt, j->dh, j->H, &ia, &ib);
    in_range(j->r.w0, j->r.w1, j->kw, j->sw, j->pl, j->dw, j->W, &ja, &jb);
    int64_t ni = ib - ia, nj = jb - ja, P = ni * nj;

    for (int64_t m = 0; m < j->Mg; m++)
        bias_fill(j, j->out + (n * j->M + g * j->Mg + m) * j->rows * j->cols, j->bias ? j->bias[g * j->Mg + m] : 0.0f,
                  oy0, oy1);
    if (P == 0)
        return;
    float *x = cpu_scratch(j->c, thread, (size_t)(P * (j->Cg + j->KK)));
    if (!x) {
        j->failed = 1;
        return;
    }
    float *col = x + P * j->Cg;
    const mb_view *v = j->v;
    int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    for (int64_t ch = 0; ch < j->Cg; ch++) {
        const float *plane = v->t->data + (n * j->C + g * j->Cg + ch) * vh * vw;
        for (int64_t iy = ia; iy < ib; iy++)
            memcpy(x + ch * P + (iy - ia) * nj, plane + (iy - v->h_off) * vw + (ja - v->w_off),
                   sizeof(float) * (size_t)nj);
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)j->KK, (int)P, (int)j->Cg, 1.0f,
                j->w + g * j->Cg * j->KK, (int)j->KK, x, (int)P, 0.0f, col, (int)P);
    for (int64_t m = 0; m < j->Mg; m++) {
        float *o = j->out + (n * j->M + g * j->Mg + m) * j->rows * j->cols;
        float b = j->bias ? j->bias[g * j->Mg + m] : 0.0f;
        for (int ky = 0; ky < j->kh; ky++)
            for (int kx = 0; kx < j->kw; kx++)
                col2im_tap(j, col + ((m * j->kh + ky) * j->kw + kx) * P, o, b, ky, kx, oy0, oy1, ia, ib, ja, jb);
    }
}

int cpu_conv_transpose(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    const mb_op_attrs *a = &nd->a;
    const mb_tensor *w = nd->params[0];
    convt_job j = {0};
    j.c = c;
    j.v = &in[0];
    j.w = w->data;
    j.bias = nd->n_params > 1 ? nd->params[1]->data : NULL;
    j.out = out->data;
    j.N = in[0].t->dims[0];
    j.C = in[0].t->dims[1];
    j.M = nd->out_dims[1];
    j.G = a->group > 0 ? a->group : 1;
    j.Cg = j.C / j.G;
    j.Mg = j.M / j.G;
    j.kh = a->kernel[0];
    j.kw = a->kernel[1];
    j.KK = j.Mg * j.kh * j.kw;
    j.sh = a->stride[0] > 0 ? a->stride[0] : 1;
    j.sw = a->stride[1] > 0 ? a->stride[1] : 1;
    j.dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    j.dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    j.pt = a->pads[0];
    j.pl = a->pads[1];
    j.H = in[0].full_h;
    j.W = in[0].full_w;
    j.r = r;
    j.rows = r.h1 - r.h0;
    j.cols = r.w1 - r.w0;
    j.disjoint = j.kh == j.sh && j.kw == j.sw && j.dh == 1 && j.dw == 1;
    if (w->ndim != 4 || w->dims[0] != j.C || w->dims[1] != j.Mg || w->dims[2] != j.kh || w->dims[3] != j.kw) {
        snprintf(err, errlen, "ConvTranspose '%s': weights do not have the shape [%lld,%lld,%d,%d]", nd->name,
                 (long long)j.C, (long long)j.Mg, j.kh, j.kw);
        return -1;
    }
    if (j.rows == 0 || j.cols == 0 || j.N == 0)
        return 0;
    /* Output rows per tile: the input rows they read (about rows / sh, plus
     * the kernel's reach) times the input columns times Mg*kh*kw stay within
     * the col buffer; a multiple of sh, so tiles start on the same phase. */
    int64_t in_cols = j.cols / j.sw + j.kw + 1;
    int64_t in_rows = CONVT_COL_FLOATS / (j.KK * in_cols);
    int64_t per = in_rows * j.sh;
    if (c->n_threads > 1) { /* at least two tiles per thread */
        int64_t even = (j.rows + 2 * c->n_threads - 1) / (2 * c->n_threads);
        if (j.N * j.G < 2 * c->n_threads && even < per)
            per = even;
    }
    per = per / j.sh * j.sh;
    if (per < j.sh)
        per = j.sh;
    if (per > j.rows)
        per = j.rows;
    j.rows_per_tile = per;
    j.n_rtiles = (j.rows + per - 1) / per;
    double macs = (double)j.N * j.C * j.KK * (double)(j.rows * j.cols) / ((double)j.sh * j.sw);
    cpu_run(c, (int)(j.N * j.G * j.n_rtiles), convt_task, &j, macs / 75.0);
    if (j.failed) {
        snprintf(err, errlen, "ConvTranspose '%s': out of memory for the column buffer", nd->name);
        return -1;
    }
    return 0;
}
