/* Convolution on the fast CPU backend, for any output rectangle.
 *
 * Three paths:
 *  - 1x1, stride 1, no padding, input rows contiguous: the input region is
 *    already the GEMM's right operand, so sgemm reads it in place (no im2col).
 *  - one input channel per group (depthwise, channel multiplier allowed): a
 *    direct kernel whose inner loop runs along a row of outputs (vectorised).
 *  - everything else: per group, im2col of one tile of output pixels at a time
 *    into a per-thread buffer sized to stay in L2, then sgemm. Tiling keeps the
 *    column matrix out of DRAM (NOTES.md 1: a whole-image im2col costs a third
 *    to half of a 3x3 conv's time).
 * Work is split into tasks over (batch, group, pixel tile, output-channel
 * chunk) on the backend's own threads; OpenBLAS stays single-threaded. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

/* Target size of one im2col tile (K x tile floats). Zen 5 has 1 MiB of L2 per
 * core; half of it leaves room for OpenBLAS's packed panels. */
#define CONV_COL_BYTES (512 * 1024)
#define CONV_MIN_TILE 64

typedef struct conv_job {
    cpu_ctx *c;
    const mb_view *v;
    const float *w, *bias;
    float *out;
    int64_t n_batch, C, M, G, Cg, Mg, K;
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t full_h, full_w;
    mb_region r;
    int64_t cols, P;
    int64_t tile;
    int n_ptiles, n_mchunks;
    int64_t mchunk;
    int direct;
    volatile int failed;
} conv_job;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Output columns [lo, hi) whose tap kx reads inside the image: 0 <= ox*sw - pl + kx*dw < full_w. */
static void valid_cols(const conv_job *j, int kx, int64_t ox0, int64_t ox1, int64_t *lo, int64_t *hi)
{
    int64_t shift = (int64_t)kx * j->dw - j->pl;
    *lo = clamp64(ceil_div(-shift, j->sw), ox0, ox1);
    *hi = clamp64(ceil_div(j->full_w - shift, j->sw), *lo, ox1);
}

/* Column matrix [K][p1 - p0] for pixels [p0, p1) of the region (row-major
 * over the region), batch n, group g. */
static void im2col_tile(const conv_job *j, int64_t n, int64_t g, int64_t p0, int64_t p1, float *col)
{
    const int64_t T = p1 - p0, cols = j->cols;
    const mb_view *v = j->v;
    const int64_t vw = v->t->dims[3];
    for (int64_t c = 0; c < j->Cg; c++)
        for (int ky = 0; ky < j->kh; ky++)
            for (int kx = 0; kx < j->kw; kx++) {
                float *row = col + ((c * j->kh + ky) * j->kw + kx) * T;
                int64_t xshift = (int64_t)kx * j->dw - j->pl - v->w_off;
                for (int64_t p = p0; p < p1;) {
                    int64_t oy = j->r.h0 + p / cols, oxi = p % cols, ox0 = j->r.w0 + oxi;
                    int64_t run = cols - oxi < p1 - p ? cols - oxi : p1 - p;
                    float *dst = row + (p - p0) - ox0; /* dst[ox] */
                    int64_t iy = oy * j->sh - j->pt + (int64_t)ky * j->dh;
                    if (iy < 0 || iy >= j->full_h) {
                        memset(dst + ox0, 0, sizeof(float) * (size_t)run);
                    } else {
                        const float *src = v->t->data + ((n * j->C + g * j->Cg + c) * v->t->dims[2] + iy - v->h_off) * vw;
                        int64_t lo, hi;
                        valid_cols(j, kx, ox0, ox0 + run, &lo, &hi);
                        if (lo > ox0)
                            memset(dst + ox0, 0, sizeof(float) * (size_t)(lo - ox0));
                        if (j->sw == 1) {
                            if (hi > lo)
                                memcpy(dst + lo, src + lo + xshift, sizeof(float) * (size_t)(hi - lo));
                        } else {
                            for (int64_t ox = lo; ox < hi; ox++)
                                dst[ox] = src[ox * j->sw + xshift];
                        }
                        if (ox0 + run > hi)
                            memset(dst + hi, 0, sizeof(float) * (size_t)(ox0 + run - hi));
                    }
                    p += run;
                }
            }
}

static void conv_gemm_task(void *arg, int t, int thread)
{
    conv_job *j = arg;
    int mc = t % j->n_mchunks;
    t /= j->n_mchunks;
    int pt = t % j->n_ptiles;
    t /= j->n_ptiles;
    int64_t n = t / j->G, g = t % j->G;
    int64_t p0 = pt * j->tile, p1 = p0 + j->tile < j->P ? p0 + j->tile : j->P;
    int64_t m0 = g * j->Mg + mc * j->mchunk;
    int64_t mlen = j->Mg - mc * j->mchunk < j->mchunk ? j->Mg - mc * j->mchunk : j->mchunk;
    const float *B;
    int64_t ldb;
    if (j->direct) {
        const mb_view *v = j->v;
        int64_t vh = v->t->dims[2], vw = v->t->dims[3];
        B = v->t->data + ((n * j->C + g * j->Cg) * vh + (j->r.h0 - v->h_off)) * vw + p0;
        ldb = vh * vw;
    } else {
        float *col = cpu_scratch(j->c, thread, (size_t)(j->K * (p1 - p0)));
        if (!col) {
            j->failed = 1;
            return;
        }
        im2col_tile(j, n, g, p0, p1, col);
        B = col;
        ldb = p1 - p0;
    }
    float *C = j->out + (n * j->M + m0) * j->P + p0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mlen, (int)(p1 - p0), (int)j->K, 1.0f,
                j->w + m0 * j->K, (int)j->K, B, (int)ldb, 0.0f, C, (int)j->P);
    if (j->bias)
        for (int64_t m = 0; m < mlen; m++) {
            float b = j->bias[m0 + m];
            float *row = C + m * j->P;
            for (int64_t p = 0; p < p1 - p0; p++)
                row[p] += b;
        }
}

/* Depthwise-style: one input channel per group. Each output element is
 * bias + sum over (ky, kx) in that order, whatever the region, so tiles match
 * the whole op bit for bit. */
CPU_SIMD_CLONES
static void dw_plane(const conv_job *j, int64_t n, int64_t m)
{
    const mb_view *v = j->v;
    const int64_t cin = m / j->Mg, rows = j->r.h1 - j->r.h0, cols = j->cols;
    const float *wm = j->w + m * j->kh * j->kw;
    float *o = j->out + (n * j->M + m) * j->P;
    float b = j->bias ? j->bias[m] : 0.0f;
    for (int64_t i = 0; i < j->P; i++)
        o[i] = b;
    for (int64_t yi = 0; yi < rows; yi++) {
        float *restrict orow = o + yi * cols - j->r.w0; /* orow[ox] */
        int64_t oy = j->r.h0 + yi;
        for (int ky = 0; ky < j->kh; ky++) {
            int64_t iy = oy * j->sh - j->pt + (int64_t)ky * j->dh;
            if (iy < 0 || iy >= j->full_h)
                continue;
            const float *restrict src = v->t->data + ((n * j->C + cin) * v->t->dims[2] + iy - v->h_off) * v->t->dims[3];
            for (int kx = 0; kx < j->kw; kx++) {
                float wv = wm[ky * j->kw + kx];
                int64_t lo, hi;
                valid_cols(j, kx, j->r.w0, j->r.w1, &lo, &hi);
                int64_t shift = (int64_t)kx * j->dw - j->pl - v->w_off;
                if (j->sw == 1) {
                    for (int64_t ox = lo; ox < hi; ox++)
                        orow[ox] += wv * src[ox + shift];
                } else if (j->sw == 2) {
                    for (int64_t ox = lo; ox < hi; ox++)
                        orow[ox] += wv * src[2 * ox + shift];
                } else {
                    int sw = j->sw;
                    for (int64_t ox = lo; ox < hi; ox++)
                        orow[ox] += wv * src[ox * sw + shift];
                }
            }
        }
    }
}

static void conv_dw_task(void *arg, int t, int thread)
{
    (void)thread;
    conv_job *j = arg;
    dw_plane(j, t / j->M, t % j->M);
}

int cpu_conv(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
             size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    const mb_op_attrs *a = &nd->a;
    const mb_tensor *w = nd->params[0];
    conv_job j = {0};
    j.c = c;
    j.v = &in[0];
    j.w = w->data;
    j.bias = nd->n_params > 1 ? nd->params[1]->data : NULL;
    j.out = out->data;
    j.n_batch = in[0].t->dims[0];
    j.C = in[0].t->dims[1];
    j.M = nd->out_dims[1];
    j.G = a->group > 0 ? a->group : 1;
    j.Cg = j.C / j.G;
    j.Mg = j.M / j.G;
    j.kh = a->kernel[0];
    j.kw = a->kernel[1];
    j.K = j.Cg * j.kh * j.kw;
    j.sh = a->stride[0] > 0 ? a->stride[0] : 1;
    j.sw = a->stride[1] > 0 ? a->stride[1] : 1;
    j.dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    j.dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    j.pt = a->pads[0];
    j.pl = a->pads[1];
    j.full_h = in[0].full_h;
    j.full_w = in[0].full_w;
    j.r = r;
    j.cols = r.w1 - r.w0;
    j.P = (r.h1 - r.h0) * j.cols;
    if (j.P == 0 || j.n_batch == 0)
        return 0;
    int nt = c->n_threads;

    if (j.Cg == 1) {
        cpu_pool_run(c->pool, (int)(j.n_batch * j.M), conv_dw_task, &j);
        return 0;
    }

    j.direct = j.kh == 1 && j.kw == 1 && j.sh == 1 && j.sw == 1 && !a->pads[0] && !a->pads[1] && !a->pads[2] &&
               !a->pads[3] && in[0].w_off == r.w0 && in[0].t->dims[3] == j.cols;
    if (j.direct) {
        /* no buffer: tiles only for parallelism */
        j.tile = nt > 1 ? (j.P + nt - 1) / nt : j.P;
    } else {
        j.tile = CONV_COL_BYTES / (int64_t)sizeof(float) / j.K;
        if (j.tile < CONV_MIN_TILE)
            j.tile = CONV_MIN_TILE;
        if (j.tile > j.P)
            j.tile = j.P;
        /* even tiles: no sliver at the end */
        int64_t nt0 = (j.P + j.tile - 1) / j.tile;
        j.tile = (j.P + nt0 - 1) / nt0;
    }
    j.n_ptiles = (int)((j.P + j.tile - 1) / j.tile);
    j.n_mchunks = 1;
    j.mchunk = j.Mg;
    /* too few tasks for the threads: split output channels as well */
    while (nt > 1 && j.n_batch * j.G * j.n_ptiles * j.n_mchunks < 2 * nt && j.mchunk >= 32) {
        j.n_mchunks *= 2;
        j.mchunk = (j.Mg + j.n_mchunks - 1) / j.n_mchunks;
        j.mchunk = (j.mchunk + 15) / 16 * 16;
        j.n_mchunks = (int)((j.Mg + j.mchunk - 1) / j.mchunk);
    }
    int n_tasks = (int)(j.n_batch * j.G * j.n_ptiles * j.n_mchunks);
    cpu_pool_run(c->pool, n_tasks, conv_gemm_task, &j);
    if (j.failed) {
        snprintf(err, errlen, "conv '%s': out of memory for the column buffer", nd->name);
        return -1;
    }
    return 0;
}
