/* Convolution on the fast CPU backend, for any output rectangle.
 *
 * Three paths:
 *  - 1x1, stride 1, no padding, input rows contiguous: the input region is
 *    already the GEMM's right operand, so sgemm reads it in place (no im2col).
 *  - one input channel per group (depthwise, channel multiplier allowed):
 *    3x3 with stride 1 or 2 and dilation 1 on AVX-512 runs cpu_conv_dw.c;
 *    otherwise a direct kernel whose inner loop runs along a row of outputs
 *    (vectorised); 3x3 copies the plane's input region into a zero-padded
 *    buffer first so every row is one border-free pass.
 *  - stride 1, k > 1, regions at least 28 columns wide: shifted GEMM (see
 *    conv_shifted), no im2col: one padded copy of the input, then one
 *    small-K sgemm per tap reading it in place.
 *  - everything else: per group, im2col of one tile of output pixels at a time
 *    into a per-thread buffer sized to stay in L2, then sgemm. Tiling keeps the
 *    column matrix out of DRAM (measured here: a whole-image im2col costs a third
 *    to half of a 3x3 conv's time).
 * Work is split into tasks over (batch, group, pixel tile, output-channel
 * chunk) on the backend's own threads; OpenBLAS stays single-threaded. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

/* Largest im2col tile (K x tile floats). Tiles far smaller than this lose:
 * every sgemm call repacks the weights, so an L2-sized tile (512 KiB) ran
 * 10-25 % slower on 3x3 layers with many channels than 4 MiB tiles, measured
 * on Zen 5 with OpenBLAS's SkylakeX kernels (bench/, CONV_COL_BYTES sweep). */
#ifndef CONV_COL_BYTES
#define CONV_COL_BYTES (4 * 1024 * 1024)
#endif
#define CONV_MAX_KW 64 /* kernels wider than this take the slow path for valid columns */
/* Shifted GEMM (stride 1): output pixels per tile, and the narrowest region
 * it is used for. It computes (kw-1)*dw throw-away columns per row, 7 % at
 * 28 columns; on 14- and 7-wide maps that and the small N lost to im2col,
 * on 28..224-wide ones it won by 10-25 % (bench, thread CPU time). */
#define SHIFT_TILE 2048
#define SHIFT_MIN_COLS 28
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
    /* per kx tap: region columns [col_lo, col_hi) that read inside the image */
    int64_t col_lo[CONV_MAX_KW], col_hi[CONV_MAX_KW];
    int n_ptiles, n_mchunks;
    int64_t mchunk;
    int direct;
    const cpu_post *post; /* fused residual add and activation, or NULL */
    volatile int failed;
} conv_job;

/* y[i] += res[i] (res_first: res[i] + y[i]), the unfused Add's expression. */
CPU_SIMD_CLONES
static void add_span(float *restrict y, const float *restrict res, int64_t n, int res_first)
{
    if (res_first)
        for (int64_t i = 0; i < n; i++)
            y[i] = res[i] + y[i];
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = y[i] + res[i];
}

void cpu_conv_post(const cpu_post *post, mb_region r, int64_t n, int64_t m, int64_t p0, float *y, int64_t len)
{
    if (!post)
        return;
    const mb_view *res = post->res;
    if (res) {
        const int64_t cols = r.w1 - r.w0;
        /* residual rows follow each other as the region's do */
        int contiguous = res->w_off == r.w0 && res->t->dims[3] == cols;
        for (int64_t p = p0; p < p0 + len;) {
            int64_t yy = r.h0 + p / cols, xx = r.w0 + p % cols;
            int64_t run = contiguous ? p0 + len - p : cols - p % cols;
            if (run > p0 + len - p)
                run = p0 + len - p;
            add_span(y + (p - p0), cpu_view_row(res, n, m, yy) + xx, run, post->res_first);
            p += run;
        }
    }
    if (post->act)
        cpu_unary_span(post->act->type, post->act->a.alpha, post->act->a.beta, y, y, len);
}

/* The fused operations on n outputs of plane (batch, m) from region pixel
 * p0, just written (still in cache). */
static inline void conv_epilogue(const conv_job *j, int64_t batch, int64_t m, int64_t p0, float *y, int64_t n)
{
    cpu_conv_post(j->post, j->r, batch, m, p0, y, n);
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

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Output columns [lo, hi) within [ox0, ox1) whose tap kx reads inside the
 * image: 0 <= ox*sw - pl + kx*dw < full_w. Divisions are done once per tap
 * (conv_prepare); this runs once per row segment. */
static void valid_cols(const conv_job *j, int kx, int64_t ox0, int64_t ox1, int64_t *lo, int64_t *hi)
{
    int64_t a, b;
    if (kx < CONV_MAX_KW) {
        a = j->col_lo[kx];
        b = j->col_hi[kx];
    } else {
        int64_t shift = (int64_t)kx * j->dw - j->pl;
        a = ceil_div(-shift, j->sw);
        b = ceil_div(j->full_w - shift, j->sw);
    }
    *lo = clamp64(a, ox0, ox1);
    *hi = clamp64(b, *lo, ox1);
}

static void conv_prepare(conv_job *j)
{
    for (int kx = 0; kx < j->kw && kx < CONV_MAX_KW; kx++) {
        int64_t shift = (int64_t)kx * j->dw - j->pl;
        j->col_lo[kx] = ceil_div(-shift, j->sw);
        j->col_hi[kx] = ceil_div(j->full_w - shift, j->sw);
    }
}

/* glibc's memcpy/memset beat an inline vector loop for these row-long runs
 * (measured: 0.32 vs 0.58 ms of im2col for a 3x3 64-channel 56x56 conv). */
static inline void copy_floats(float *d, const float *s, int64_t n)
{
    if (n > 0)
        memcpy(d, s, sizeof(float) * (size_t)n);
}

static inline void zero_floats(float *d, int64_t n)
{
    if (n > 0)
        memset(d, 0, sizeof(float) * (size_t)n);
}

/* Column matrix [K][p1 - p0] for pixels [p0, p1) of the region (row-major
 * over the region), batch n, group g. Each of the K rows is written
 * sequentially, one output-row segment at a time. */
CPU_SIMD_CLONES
static void im2col_tile(const conv_job *j, int64_t n, int64_t g, int64_t p0, int64_t p1, float *col)
{
    const int64_t T = p1 - p0, cols = j->cols;
    const mb_view *v = j->v;
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    const int sw = j->sw;
    for (int64_t c = 0; c < j->Cg; c++) {
        const float *plane = v->t->data + (n * j->C + g * j->Cg + c) * vh * vw;
        for (int ky = 0; ky < j->kh; ky++)
            for (int kx = 0; kx < j->kw; kx++) {
                float *row = col + ((c * j->kh + ky) * j->kw + kx) * T - p0; /* row[p] */
                int64_t xshift = (int64_t)kx * j->dw - j->pl - v->w_off;
                for (int64_t p = p0; p < p1;) {
                    int64_t oy = j->r.h0 + p / cols, oxi = p % cols, ox0 = j->r.w0 + oxi;
                    int64_t run = cols - oxi < p1 - p ? cols - oxi : p1 - p;
                    float *dst = row + p - ox0; /* dst[ox] */
                    int64_t iy = oy * j->sh - j->pt + (int64_t)ky * j->dh;
                    p += run;
                    if (iy < 0 || iy >= j->full_h) {
                        zero_floats(dst + ox0, run);
                        continue;
                    }
                    const float *src = plane + (iy - v->h_off) * vw;
                    int64_t lo, hi;
                    valid_cols(j, kx, ox0, ox0 + run, &lo, &hi);
                    zero_floats(dst + ox0, lo - ox0);
                    if (sw == 1) {
                        copy_floats(dst + lo, src + lo + xshift, hi - lo);
                    } else if (sw == 2) {
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[2 * ox + xshift];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox * sw + xshift];
                    }
                    zero_floats(dst + hi, ox0 + run - hi);
                }
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
    /* With a bias, start C at the bias and accumulate (beta = 1): OpenBLAS
     * then skips its own pass that zeroes C for beta = 0, and no pass adds
     * the bias afterwards. */
    float beta = 0.0f;
    if (j->bias) {
        for (int64_t m = 0; m < mlen; m++) {
            float b = j->bias[m0 + m];
            float *row = C + m * j->P;
            for (int64_t p = 0; p < p1 - p0; p++)
                row[p] = b;
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mlen, (int)(p1 - p0), (int)j->K, 1.0f,
                j->w + m0 * j->K, (int)j->K, B, (int)ldb, beta, C, (int)j->P);
    for (int64_t m = 0; j->post && m < mlen; m++)
        conv_epilogue(j, n, m0 + m, p0, C + m * j->P, p1 - p0);
}

/* Depthwise-style: one input channel per group. Each output element is
 * bias + sum over (ky, kx) in that order, skipping taps in the padding, and
 * which code path computes it depends only on its position in the image, so
 * tiles match the whole op bit for bit. */

/* One 3x3 output row from three (padded) input rows: nine multiply-adds per
 * element in one pass (per-tap row passes cost more in loop overhead than in
 * arithmetic for 7..56-wide rows). */
CPU_SIMD_CLONES
static void dw3x3_row(float *restrict orow, const float *restrict r0, const float *restrict r1,
                      const float *restrict r2, const float *restrict w, float b, int64_t lo, int64_t hi, int sw,
                      int dw, int64_t shift)
{
    const float w00 = w[0], w01 = w[1], w02 = w[2], w10 = w[3], w11 = w[4], w12 = w[5], w20 = w[6], w21 = w[7],
                w22 = w[8];
    if (sw == 1 && dw == 1) {
        for (int64_t ox = lo; ox < hi; ox++) {
            int64_t x = ox + shift;
            float acc = b;
            acc += w00 * r0[x];
            acc += w01 * r0[x + 1];
            acc += w02 * r0[x + 2];
            acc += w10 * r1[x];
            acc += w11 * r1[x + 1];
            acc += w12 * r1[x + 2];
            acc += w20 * r2[x];
            acc += w21 * r2[x + 1];
            acc += w22 * r2[x + 2];
            orow[ox] = acc;
        }
    } else if (sw == 2 && dw == 1) { /* constant stride: GCC vectorises with permutes */
        for (int64_t ox = lo; ox < hi; ox++) {
            int64_t x = 2 * ox + shift;
            float acc = b;
            acc += w00 * r0[x];
            acc += w01 * r0[x + 1];
            acc += w02 * r0[x + 2];
            acc += w10 * r1[x];
            acc += w11 * r1[x + 1];
            acc += w12 * r1[x + 2];
            acc += w20 * r2[x];
            acc += w21 * r2[x + 1];
            acc += w22 * r2[x + 2];
            orow[ox] = acc;
        }
    } else {
        for (int64_t ox = lo; ox < hi; ox++) {
            int64_t x = ox * sw + shift;
            float acc = b;
            acc += w00 * r0[x];
            acc += w01 * r0[x + dw];
            acc += w02 * r0[x + 2 * dw];
            acc += w10 * r1[x];
            acc += w11 * r1[x + dw];
            acc += w12 * r1[x + 2 * dw];
            acc += w20 * r2[x];
            acc += w21 * r2[x + dw];
            acc += w22 * r2[x + 2 * dw];
            orow[ox] = acc;
        }
    }
}

/* General rows: bias, then one pass per (ky, kx) tap over the columns where
 * it reads inside the image. */
CPU_SIMD_CLONES
static void dw_row_general(const conv_job *j, const float *plane, const float *wm, float b, int64_t oy,
                           float *restrict orow, int64_t ox0, int64_t ox1)
{
    const mb_view *v = j->v;
    for (int64_t ox = ox0; ox < ox1; ox++)
        orow[ox] = b;
    for (int ky = 0; ky < j->kh; ky++) {
        int64_t iy = oy * j->sh - j->pt + (int64_t)ky * j->dh;
        if (iy < 0 || iy >= j->full_h)
            continue;
        const float *restrict src = plane + (iy - v->h_off) * v->t->dims[3];
        for (int kx = 0; kx < j->kw; kx++) {
            float wv = wm[ky * j->kw + kx];
            int64_t lo, hi;
            valid_cols(j, kx, ox0, ox1, &lo, &hi);
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

/* 3x3: copy the plane's input region into a zero-padded buffer (rows and
 * columns outside the image become zeros), then every output row is one pass
 * of nine multiply-adds with no border cases. A tap on padding adds w * 0, so
 * every element goes through the same operations wherever the tile is. */
static int dw3x3_plane(conv_job *j, int64_t n, int64_t m, int thread)
{
    const mb_view *v = j->v;
    const int64_t rows = j->r.h1 - j->r.h0, cols = j->cols, vw = v->t->dims[3];
    const int64_t PH = (rows - 1) * j->sh + 2 * (int64_t)j->dh + 1, PW = (cols - 1) * j->sw + 2 * (int64_t)j->dw + 1;
    const int64_t iy0 = j->r.h0 * j->sh - j->pt, ix0 = j->r.w0 * j->sw - j->pl;
    float *buf = cpu_scratch(j->c, thread, (size_t)(PH * PW));
    if (!buf)
        return -1;
    const float *plane = v->t->data + (n * j->C + m / j->Mg) * v->t->dims[2] * vw;
    int64_t xlo = clamp64(-ix0, 0, PW), xhi = clamp64(j->full_w - ix0, xlo, PW);
    for (int64_t y = 0; y < PH; y++) {
        float *row = buf + y * PW;
        int64_t iy = iy0 + y;
        if (iy < 0 || iy >= j->full_h) {
            memset(row, 0, sizeof(float) * (size_t)PW);
            continue;
        }
        memset(row, 0, sizeof(float) * (size_t)xlo);
        memcpy(row + xlo, plane + (iy - v->h_off) * vw + (ix0 + xlo - v->w_off), sizeof(float) * (size_t)(xhi - xlo));
        memset(row + xhi, 0, sizeof(float) * (size_t)(PW - xhi));
    }
    const float *wm = j->w + m * 9;
    float b = j->bias ? j->bias[m] : 0.0f;
    float *o = j->out + (n * j->M + m) * j->P;
    for (int64_t yi = 0; yi < rows; yi++) {
        const float *r0 = buf + yi * j->sh * PW;
        const float *r1 = r0 + j->dh * PW, *r2 = r1 + j->dh * PW;
        dw3x3_row(o + yi * cols, r0, r1, r2, wm, b, 0, cols, j->sw, j->dw, 0);
    }
    return 0;
}

static void dw_plane(const conv_job *j, int64_t n, int64_t m)
{
    const mb_view *v = j->v;
    const int64_t cin = m / j->Mg, rows = j->r.h1 - j->r.h0, cols = j->cols;
    const float *wm = j->w + m * j->kh * j->kw;
    const float *plane = v->t->data + (n * j->C + cin) * v->t->dims[2] * v->t->dims[3];
    float *o = j->out + (n * j->M + m) * j->P;
    float b = j->bias ? j->bias[m] : 0.0f;
    for (int64_t yi = 0; yi < rows; yi++)
        dw_row_general(j, plane, wm, b, j->r.h0 + yi, o + yi * cols - j->r.w0, j->r.w0, j->r.w1);
}

static void conv_dw_task(void *arg, int t, int thread)
{
    conv_job *j = arg;
    int64_t n = t / j->M, m = t % j->M;
    if (j->kh == 3 && j->kw == 3) {
        if (dw3x3_plane(j, n, m, thread))
            j->failed = 1;
    } else {
        dw_plane(j, n, m);
    }
    conv_epilogue(j, n, m, 0, j->out + (n * j->M + m) * j->P, j->P);
}

/* Shifted-GEMM for stride-1 convolutions: no im2col. The input region is
 * copied once into a zero-padded buffer whose rows are PW = cols + (kw-1)*dw
 * wide; output pixels are computed in that padded-width frame (PW - cols
 * throw-away columns per row), where tap (ky, kx) is the padded buffer itself
 * shifted by ky*dh*PW + kx*dw: a strided matrix sgemm reads in place. Nine
 * small-K GEMMs accumulate into an L2-sized output tile, then the valid
 * columns are copied out. */
typedef struct shift_job {
    conv_job *j;
    const float *wt; /* weights by tap: [G][kh*kw][Mg][Cg] */
    int64_t PW, rows_per_tile, n_rtiles;
} shift_job;

static void conv_shift_task(void *arg, int t, int thread)
{
    shift_job *sj = arg;
    conv_job *j = sj->j;
    int rt = t % (int)sj->n_rtiles;
    t /= (int)sj->n_rtiles;
    int64_t n = t / j->G, g = t % j->G;
    const int64_t rows = j->r.h1 - j->r.h0, cols = j->cols, PW = sj->PW;
    int64_t y0 = rt * sj->rows_per_tile, y1 = y0 + sj->rows_per_tile < rows ? y0 + sj->rows_per_tile : rows;
    int64_t PH = (y1 - y0) + (int64_t)(j->kh - 1) * j->dh;
    int64_t plane = PH * PW, Tn = (y1 - y0) * PW;
    size_t need = (size_t)(j->Cg * plane + PW + (int64_t)(j->kw - 1) * j->dw) + (size_t)(j->Mg * Tn);
    float *buf = cpu_scratch(j->c, thread, need);
    if (!buf) {
        j->failed = 1;
        return;
    }
    float *xp = buf, *ct = buf + j->Cg * plane + PW + (int64_t)(j->kw - 1) * j->dw;
    const mb_view *v = j->v;
    const int64_t vw = v->t->dims[3];
    const int64_t iy0 = j->r.h0 + y0 - j->pt, ix0 = j->r.w0 - j->pl;
    int64_t xlo = clamp64(-ix0, 0, PW), xhi = clamp64(j->full_w - ix0, xlo, PW);
    for (int64_t c = 0; c < j->Cg; c++) {
        const float *src = v->t->data + (n * j->C + g * j->Cg + c) * v->t->dims[2] * vw;
        for (int64_t y = 0; y < PH; y++) {
            float *row = xp + c * plane + y * PW;
            int64_t iy = iy0 + y;
            if (iy < 0 || iy >= j->full_h) {
                memset(row, 0, sizeof(float) * (size_t)PW);
                continue;
            }
            memset(row, 0, sizeof(float) * (size_t)xlo);
            memcpy(row + xlo, src + (iy - v->h_off) * vw + (ix0 + xlo - v->w_off), sizeof(float) * (size_t)(xhi - xlo));
            memset(row + xhi, 0, sizeof(float) * (size_t)(PW - xhi));
        }
    }
    memset(xp + j->Cg * plane, 0, sizeof(float) * (size_t)(PW + (int64_t)(j->kw - 1) * j->dw));
    for (int64_t m = 0; m < j->Mg; m++) {
        float b = j->bias ? j->bias[g * j->Mg + m] : 0.0f;
        for (int64_t q = 0; q < Tn; q++)
            ct[m * Tn + q] = b;
    }
    int taps = j->kh * j->kw;
    for (int tap = 0; tap < taps; tap++) {
        int ky = tap / j->kw, kx = tap % j->kw;
        const float *B = xp + (int64_t)ky * j->dh * PW + (int64_t)kx * j->dw;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->Mg, (int)Tn, (int)j->Cg, 1.0f,
                    sj->wt + ((g * taps + tap) * j->Mg) * j->Cg, (int)j->Cg, B, (int)plane, 1.0f, ct, (int)Tn);
    }
    for (int64_t m = 0; m < j->Mg; m++) {
        float *o = j->out + (n * j->M + g * j->Mg + m) * j->P + y0 * cols;
        for (int64_t y = 0; y < y1 - y0; y++)
            memcpy(o + y * cols, ct + m * Tn + y * PW, sizeof(float) * (size_t)cols);
        conv_epilogue(j, n, g * j->Mg + m, y0 * cols, o, (y1 - y0) * cols);
    }
}

static int conv_shifted(cpu_ctx *c, conv_job *j)
{
    int taps = j->kh * j->kw;
    float *wt = malloc(sizeof(float) * (size_t)(j->M * j->Cg * taps));
    if (!wt)
        return -1;
    for (int64_t g = 0; g < j->G; g++)
        for (int tap = 0; tap < taps; tap++)
            for (int64_t m = 0; m < j->Mg; m++)
                for (int64_t ch = 0; ch < j->Cg; ch++)
                    wt[((g * taps + tap) * j->Mg + m) * j->Cg + ch] = j->w[(g * j->Mg + m) * j->K + ch * taps + tap];
    shift_job sj = {j, wt, j->cols + (int64_t)(j->kw - 1) * j->dw, 0, 0};
    int64_t rows = j->r.h1 - j->r.h0;
    sj.rows_per_tile = SHIFT_TILE / sj.PW;
    if (sj.rows_per_tile < 1)
        sj.rows_per_tile = 1;
    if (sj.rows_per_tile > rows)
        sj.rows_per_tile = rows;
    if (c->n_threads > 1) { /* enough row tiles to keep every thread busy */
        int64_t per = (rows + 2 * c->n_threads - 1) / (2 * c->n_threads);
        if (per < sj.rows_per_tile)
            sj.rows_per_tile = per;
    }
    sj.n_rtiles = (rows + sj.rows_per_tile - 1) / sj.rows_per_tile;
    cpu_run(c, (int)(j->n_batch * j->G * sj.n_rtiles), conv_shift_task, &sj,
            (double)j->n_batch * j->M * j->P * j->K / 75.0);
    free(wt);
    return j->failed ? -1 : 0;
}

/* Input channels from which a 1x1 stride-1 layer runs sgemm in place
 * instead of the direct kernel: on 1024+ pixels from cpu_1x1_gemm_k()
 * (MECBED_CPU_1X1_GEMM_K), on 128+ pixels from cpu_1x1_gemm_big()
 * (MECBED_CPU_1X1_GEMM_BIG); both A/B switches, read once. */
static int64_t cpu_env_k(const char *name, int64_t *cache, int64_t dflt)
{
    int64_t v = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv(name);
        char *end = NULL;
        long long x = e ? strtoll(e, &end, 10) : 0;
        v = e && end != e && *end == 0 && x > 0 ? (int64_t)x : dflt;
        __atomic_store_n(cache, v, __ATOMIC_RELAXED);
    }
    return v;
}
/* With the direct kernel's K split (cpu_conv_1x1_kblock(), on unless
 * MECBED_CPU_1X1_KBLOCK=off) no 1x1 layer goes to sgemm by default. */
#define CPU_1X1_GEMM_NEVER ((int64_t)1 << 40)
static int64_t cpu_1x1_gemm_k(void)
{
    static int64_t k = -1;
    return cpu_env_k("MECBED_CPU_1X1_GEMM_K", &k, cpu_conv_1x1_kblock() > 0 ? CPU_1X1_GEMM_NEVER : 256);
}
static int64_t cpu_1x1_gemm_big(void)
{
    static int64_t k = -1;
    return cpu_env_k("MECBED_CPU_1X1_GEMM_BIG", &k, 512);
}

static int64_t cpu_1x1_gemm_maxpx(void)
{
    static int64_t k = -1;
    return cpu_env_k("MECBED_CPU_1X1_GEMM_MAXPX", &k, CPU_1X1_GEMM_NEVER);
}

static int64_t cpu_1x1_gemm_minm(void)
{
    static int64_t k = -1;
    return cpu_env_k("MECBED_CPU_1X1_GEMM_MINM", &k, 1);
}

int cpu_conv(cpu_ctx *c, const mb_graph *g, int node, const cpu_post *post, const mb_view *in, mb_region r,
             mb_tensor *out, char *err, size_t errlen)
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
    j.post = post && (post->act || post->res) ? post : NULL;
    /* the direct kernels apply an activation alone in registers; after a
     * residual add it runs in their per-task pass (cpu_conv_post) */
    const mb_node *act = post && !post->res ? post->act : NULL;
    const cpu_post *dpost = post && post->res ? post : NULL;
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
    conv_prepare(&j);
    int nt = c->n_threads;

    if (j.Cg == 1) {
        cpu_dconv d = {&in[0], j.w, j.bias, j.out, j.n_batch, j.C, j.M, j.G, j.kh, j.kw, j.sh, j.sw, j.pt, j.pl,
                       j.full_h, j.full_w, r, act, dpost};
        if (cpu_conv_dw3x3_handles(&d, j.dh, j.dw)) {
            if (cpu_conv_dw3x3(c, &d)) {
                snprintf(err, errlen, "conv '%s': out of memory for the padded input rows", nd->name);
                return -1;
            }
            return 0;
        }
        cpu_run(c, (int)(j.n_batch * j.M), conv_dw_task, &j, (double)j.n_batch * j.M * j.P * j.K / 16.0);
        if (j.failed) {
            snprintf(err, errlen, "conv '%s': out of memory for the padded input rows", nd->name);
            return -1;
        }
        return 0;
    }

    /* The direct kernels (cpu_conv_direct.c) where AVX-512 is present, but
     * for 1x1 stride-1 layers with K >= 512 on maps of 128+ pixels (and
     * K >= 256 on 1024+ pixels: ResNet-50's 256->64 and 256->128 at 56x56
     * ran 1.2 vs 1.5 and 1.8 vs 2.1 ms, per-op medians, two rounds), where
     * sgemm reading the input in place kept up or stayed ahead (ResNet-50's
     * 512->128 at 28x28: 145 vs 130 GFLOP/s; 1024->256 at 14x14: 141 both;
     * `make bench` rows, thread CPU time, best of 2 interleaved rounds). */
    if (j.Cg > 1 && j.dh == 1 && j.dw == 1) { /* small maps: vectors over output channels */
        cpu_dconv d = {&in[0], j.w, j.bias, j.out, j.n_batch, j.C, j.M, j.G, j.kh, j.kw, j.sh, j.sw, j.pt, j.pl,
                       j.full_h, j.full_w, r, act, dpost};
        if (cpu_conv_oc_wanted(&d)) {
            if (cpu_conv_oc(c, &d)) {
                snprintf(err, errlen, "conv '%s': out of memory for the padded input", nd->name);
                return -1;
            }
            return 0;
        }
    }
    int big_1x1 = j.kh == 1 && j.kw == 1 && j.sh == 1 && j.sw == 1 &&
                  ((j.Cg >= cpu_1x1_gemm_big() && j.P >= 128 && (j.P < cpu_1x1_gemm_maxpx() || j.Mg >= cpu_1x1_gemm_minm())) ||
                   (j.Cg >= cpu_1x1_gemm_k() && j.P >= 1024));
    if (j.Cg > 1 && j.dh == 1 && j.dw == 1 && j.kh * j.kw <= 4096 && !big_1x1 && cpu_conv_direct_available()) {
        cpu_dconv d = {&in[0], j.w, j.bias, j.out, j.n_batch, j.C, j.M, j.G, j.kh, j.kw, j.sh, j.sw, j.pt, j.pl,
                       j.full_h, j.full_w, r, act, dpost};
        if (cpu_conv_direct(c, &d)) {
            snprintf(err, errlen, "conv '%s': out of memory for the padded input", nd->name);
            return -1;
        }
        return 0;
    }
    if (j.sh == 1 && j.sw == 1 && j.kh * j.kw > 1 && j.cols >= SHIFT_MIN_COLS) {
        if (conv_shifted(c, &j)) {
            snprintf(err, errlen, "conv '%s': out of memory for the padded input", nd->name);
            return -1;
        }
        return 0;
    }
    j.direct = j.kh == 1 && j.kw == 1 && j.sh == 1 && j.sw == 1 && !a->pads[0] && !a->pads[1] && !a->pads[2] &&
               !a->pads[3] && in[0].w_off == r.w0 && in[0].t->dims[3] == j.cols;
    if (j.direct) {
        /* no buffer: tiles only for parallelism; on maps under 1024 pixels
         * output channels are split instead (below), so each sgemm keeps
         * every pixel (N = 98 on ResNet's 14x14 layers scaled 1.5x on 2
         * threads) */
        j.tile = nt > 1 && j.P >= 1024 ? (j.P + nt - 1) / nt : j.P;
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
    cpu_run(c, n_tasks, conv_gemm_task, &j, (double)j.n_batch * j.M * j.P * j.K / 75.0);
    if (j.failed) {
        snprintf(err, errlen, "conv '%s': out of memory for the column buffer", nd->name);
        return -1;
    }
    return 0;
}
