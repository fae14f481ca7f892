/* Depthwise 3x3 convolution on AVX-512 (one input channel per group, any
 * channel multiplier, stride 1 or 2 on each axis, dilation 1).
 *
 * Three paths (dw_pick_mode), all computing each output the same way, so any
 * of them gives the same bits:
 *  - DW_S2 (stride 2 along x): input rows read in place, split by column
 *    parity with permutes in registers (dw_sblock), prefetched 8 rows ahead;
 *  - DW_FLAT (stride 1, planes up to 256 outputs, whole rows): the plane read
 *    in place as one flat run, lane masks for the borders (dw_fblock);
 *  - DW_COPY (the rest: larger stride-1 planes, tiles of part of a row,
 *    other padding; all of them with MECBED_CPU_DW=copy), described next.
 * Small planes go two per block on the first two, and a pool task takes
 * about 2048 outputs' worth of planes.
 *
 * DW_COPY: per output plane (batch n, output channel m), the input region the plane's
 * output rectangle reads is copied into a zero-padded buffer (zeros where the
 * taps read padding), so the inner loop has no border cases. Stride 2 along
 * x splits each buffer row by column parity into the even columns (0, 2, 4,
 * ...) and, EW floats later, the odd ones: output column x then reads E[x],
 * O[x] and E[x + 1], three contiguous runs, so every tap is one unaligned
 * 16-float load whatever the stride. Stride 2 along y just picks rows 2y .. 2y + 2.
 *
 * The micro-kernel keeps a block of up to 4 output rows x 2 vectors of 16
 * output columns in registers (8 independent FMA chains; one 16-wide row
 * alone would be one chain of 9 dependent FMAs, latency-bound), starts each
 * accumulator at the bias, adds the nine taps in (ky, kx) order with one FMA
 * each, applies Relu / Clip / LeakyRelu in registers and stores with a lane
 * mask for the row's last vector. Every output element thus goes through
 * the same operations wherever it sits in the plane, the tile or the vector,
 * so tiles and thread counts are bit-exact with the whole op. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DW_X86 1
/* clang's AddressSanitizer checks every lane of a masked load or store on
 * its own, and compiling this file's fully unrolled blocks that way took
 * clang 14 minutes (the fuzz build); the kernels are left uninstrumented
 * there. GCC's sanitizer build (make test-sanitize) still covers them. */
#if defined(__clang__)
#define DW_NOASAN __attribute__((no_sanitize("address")))
#else
#define DW_NOASAN
#endif
#define DW_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma"))) DW_NOASAN
#else
#define DW_X86 0
#endif

/* MECBED_CPU_DW=generic switches this kernel off (the portable depthwise
 * loops of cpu_conv.c run instead), MECBED_CPU_DW=copy keeps it on every
 * plane through the padded copy (the path before the copy-free ones), for
 * comparisons in one binary. 0: generic, 1: copy, 2: default. */
static int dw_mode_env(void)
{
    /* read on every op (not cached), so a test can hold the paths to each
     * other in one process */
    const char *e = getenv("MECBED_CPU_DW");
    return e && strcmp(e, "generic") == 0 ? 0 : e && strcmp(e, "copy") == 0 ? 1 : 2;
}

static int dw_enabled(void)
{
    return dw_mode_env() != 0;
}

int cpu_conv_dw3x3_handles(const cpu_dconv *d, int dh, int dw)
{
    return DW_X86 && dw_enabled() && d->kh == 3 && d->kw == 3 && dh == 1 && dw == 1 && d->sh >= 1 && d->sh <= 2 && d->sw >= 1 &&
           d->sw <= 2 && cpu_conv_direct_available();
}

#if DW_X86

enum { DW_ACT_NONE, DW_ACT_RELU, DW_ACT_CLIP, DW_ACT_LEAKY };

typedef struct dw_job {
    const cpu_dconv *d;
    cpu_ctx *c;
    int64_t Mg, OH, OW, P;
    int64_t PH;       /* padded input rows a plane reads */
    int64_t PW;       /* padded input columns (stride 1) */
    int64_t EW;       /* stride 2: offset of the odd columns in a buffer row */
    int64_t rstride;  /* floats per buffer row (both parity rows for stride 2) */
    int act;          /* DW_ACT_*; other activations run after each plane */
    float alpha, beta;
    int mode;         /* DW_COPY, DW_FLAT or DW_S2 */
    int pf;           /* DW_COPY: prefetch the input 8 rows ahead */
    int64_t ylo, yhi; /* DW_FLAT: in-image input rows, as flat offsets from the base row */
    int64_t chi;      /* DW_S2: input columns read are [0, chi) */
    const uint16_t *xm; /* DW_FLAT: per output vector, its lane masks (DW_XM) */
    int64_t nplanes, gp; /* n_batch * M planes, gp per pool task */
    volatile int failed;
} dw_job;

/* DW_COPY: zero-padded copy of each plane (any shape this file takes);
 * DW_FLAT: stride 1 read in place; DW_S2: stride 2 along x read in place. */
enum { DW_COPY, DW_FLAT, DW_S2 };
enum { DW_PF_ROWS = 8 }; /* software prefetch distance, in input rows */

/* Same comparisons and operand order as cpu_unary_span (and dc_act), so a
 * fused run matches the unfused one bit for bit. */
DW_TARGET static inline __attribute__((always_inline)) __m512 dw_act(const dw_job *j, __m512 x)
{
    switch (j->act) {
    case DW_ACT_RELU:
        return _mm512_max_ps(x, _mm512_setzero_ps());
    case DW_ACT_CLIP:
        return _mm512_min_ps(_mm512_set1_ps(j->beta), _mm512_max_ps(_mm512_set1_ps(j->alpha), x));
    case DW_ACT_LEAKY: {
        __mmask16 neg = ~_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
        return _mm512_mask_mul_ps(x, neg, _mm512_set1_ps(j->alpha), x);
    }
    default:
        return x;
    }
}

/* Rows [y, y + R) and columns [x, x + 16*NV) of one output plane (the last
 * vector's lanes masked by lm). buf: the padded plane; o: output row y. */
DW_TARGET static inline __attribute__((always_inline)) void dw_block(const dw_job *j, int R, int NV, int S2,
                                                                   int SH2, const float *buf, int64_t y, int64_t x,
                                                                   const __m512 *w, __m512 b, __mmask16 lm,
                                                                   float *o)
{
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            acc[r][v] = b;
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const float *row = buf + ((y + r) * (SH2 ? 2 : 1) + ky) * j->rstride;
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) {
                __mmask16 m = v == NV - 1 ? lm : (__mmask16)0xffff;
                const float *p = row + x + 16 * v;
                __m512 a0, a1, a2;
                if (S2) { /* even row, then odd row at + EW */
                    a0 = _mm512_maskz_loadu_ps(m, p);
                    a1 = _mm512_maskz_loadu_ps(m, p + j->EW);
                    a2 = _mm512_maskz_loadu_ps(m, p + 1);
                } else {
                    a0 = _mm512_maskz_loadu_ps(m, p);
                    a1 = _mm512_maskz_loadu_ps(m, p + 1);
                    a2 = _mm512_maskz_loadu_ps(m, p + 2);
                }
                acc[r][v] = _mm512_fmadd_ps(w[3 * ky], a0, acc[r][v]);
                acc[r][v] = _mm512_fmadd_ps(w[3 * ky + 1], a1, acc[r][v]);
                acc[r][v] = _mm512_fmadd_ps(w[3 * ky + 2], a2, acc[r][v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(o + r * j->OW + x + 16 * v, v == NV - 1 ? lm : (__mmask16)0xffff,
                                  dw_act(j, acc[r][v]));
}

/* One output plane from its padded buffer, for fixed strides. */
#define DW_PLANE(S2, SH2)                                                                                       \
    DW_TARGET static void dw_plane_##S2##SH2(const dw_job *j, const float *buf, const float *wm, float bias,  \
                                             float *o)                                                         \
    {                                                                                                          \
        __m512 w[9];                                                                                           \
        for (int k = 0; k < 9; k++)                                                                            \
            w[k] = _mm512_set1_ps(wm[k]);                                                                      \
        __m512 b = _mm512_set1_ps(bias);                                                                       \
        for (int64_t y = 0; y < j->OH; y += 4) {                                                               \
            int64_t R = j->OH - y < 4 ? j->OH - y : 4;                                                         \
            float *orow = o + y * j->OW;                                                                       \
            for (int64_t x = 0; x < j->OW; x += 32) {                                                          \
                int64_t left = j->OW - x;                                                              \
                int nv = left > 16 ? 2 : 1;                                                                    \
                int64_t last = left - 16 * (nv - 1);                                                           \
                __mmask16 lm = (__mmask16)(last >= 16 ? 0xffffu : (1u << last) - 1u);                          \
                switch (R * 2 + nv - 1) { /* R = 1..4 rows, nv = 1..2 vectors */                          \
                case 8: dw_block(j, 4, 1, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 9: dw_block(j, 4, 2, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 6: dw_block(j, 3, 1, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 7: dw_block(j, 3, 2, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 4: dw_block(j, 2, 1, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 5: dw_block(j, 2, 2, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                case 2: dw_block(j, 1, 1, S2, SH2, buf, y, x, w, b, lm, orow); break;                      \
                default: dw_block(j, 1, 2, S2, SH2, buf, y, x, w, b, lm, orow); break;                     \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }
DW_PLANE(0, 0)
DW_PLANE(0, 1)
DW_PLANE(1, 0)
DW_PLANE(1, 1)

/* Lanes l of a vector starting at index p0 with lo <= p0 + l < hi. */
static inline __mmask16 dw_lanes(int64_t p0, int64_t lo, int64_t hi)
{
    int64_t a = lo - p0 > 0 ? lo - p0 : 0, b = hi - p0 < 16 ? hi - p0 : 16;
    return b > a ? (__mmask16)(((1u << (b - a)) - 1u) << a) : (__mmask16)0;
}

/* Padded input rows of plane (n, cin) into buf: row y covers input row
 * iy0 + y, padded columns p = 0 .. PW - 1 (input column ix0 + p), zeros
 * outside [xlo, xhi), the columns inside the image. Vector loops with lane
 * masks (a memset / memcpy call per row cost more than the taps on 7..56
 * wide rows). Stride 2 along x stores the even padded columns at row + 0
 * and the odd ones at row + EW (two 16-float loads split by one permute
 * each). Rows are rstride floats, a multiple of 16, written in full. */
DW_TARGET static void dw_fill(const dw_job *j, const float *plane, float *buf)
{
    const cpu_dconv *d = j->d;
    const mb_view *v = d->v;
    const int64_t vw = v->t->dims[3];
    const int64_t iy0 = d->r.h0 * d->sh - d->pt, ix0 = d->r.w0 * d->sw - d->pl;
    const int64_t PW = j->PW;
    int64_t xlo = ix0 >= 0 ? 0 : -ix0, xhi = d->full_w - ix0;
    if (xlo > PW)
        xlo = PW;
    if (xhi > PW)
        xhi = PW;
    if (xhi < xlo)
        xhi = xlo;
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t y = 0; y < j->PH; y++) {
        float *row = buf + y * j->rstride;
        int64_t iy = iy0 + y;
        if (iy < 0 || iy >= d->full_h || xhi == xlo) {
            for (int64_t p = 0; p < j->rstride; p += 16)
                _mm512_store_ps(row + p, _mm512_setzero_ps());
            continue;
        }
        /* input column ix0 + p; lanes outside [xlo, xhi) are not read */
        const float *src = plane + (iy - v->h_off) * vw + (ix0 - v->w_off);
        if (d->sw == 1) {
            if (j->pf && iy + DW_PF_ROWS < d->full_h) /* 0.84x the time on 112x112 planes */
                for (int64_t p = 0; p < j->rstride; p += 16)
                    _mm_prefetch((const char *)(src + DW_PF_ROWS * vw + p), _MM_HINT_T0);
            for (int64_t p = 0; p < j->rstride; p += 16)
                _mm512_store_ps(row + p, _mm512_maskz_loadu_ps(dw_lanes(p, xlo, xhi), src + p));
        } else {
            for (int64_t x = 0; x < j->EW; x += 16) {
                int64_t p = 2 * x;
                __m512 lo = _mm512_maskz_loadu_ps(dw_lanes(p, xlo, xhi), src + p);
                __m512 hi = _mm512_maskz_loadu_ps(dw_lanes(p + 16, xlo, xhi), src + p + 16);
                _mm512_store_ps(row + x, _mm512_permutex2var_ps(lo, ie, hi));
                _mm512_store_ps(row + j->EW + x, _mm512_permutex2var_ps(lo, io, hi));
            }
        }
    }
}

/* DW_FLAT: stride 1, one column of padding on the left, output rows the full
 * input width and the view's rows whole (the whole op, and any tile of whole
 * rows). The plane is then one flat run on both sides: output i of the
 * region reads the input at S + i + ky * W + kx - 1, S the view's row
 * h0 - pt. So 16 consecutive outputs of any rows are one vector and each tap
 * one masked load from the input itself, no copy: the lanes of column 0
 * drop kx = 0, those of column W - 1 drop kx = 2 (table j->xm), lanes whose
 * input row is padding drop the row (flat bounds ylo, yhi), and lanes past
 * the region read nothing. A dropped lane loads +0.0, what the padded copy
 * holds there, and still goes through its FMA: each output sees the bias,
 * then the nine taps in (ky, kx) order, exactly as on the copy path. 7x7
 * planes take 4 vectors (49 outputs) instead of 7 rows of 16 lanes. The
 * masks are the same for every plane of the op: dw_flat_masks tabulates
 * them once, DW_XM per output vector. */
enum { DW_XM = 10, DW_FLAT_MAXP = 256, DW_TASK_P = 2048 }; /* tap (ky, kx) at [3 ky + kx], then the lanes in the region */
DW_TARGET static inline __attribute__((always_inline)) void
dw_fblock(const dw_job *j, int NP, int NV, const float *const *S, int64_t i0, const __m512 (*w)[9],
          const __m512 *b, float *const *o)
{
    const int64_t W = j->OW;
    const uint16_t *xm = j->xm + (i0 >> 4) * DW_XM;
    __m512 acc[2][8];
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            acc[q][v] = b[q];
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ky++) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++) {
            const uint16_t *m = xm + v * DW_XM;
            const int64_t off = i0 + 16 * v + ky * W;
#pragma GCC unroll 2
            for (int q = 0; q < NP; q++) {
                const float *p = S[q] + off;
                __m512 a0 = _mm512_maskz_loadu_ps(m[3 * ky], p - 1);
                __m512 a1 = _mm512_maskz_loadu_ps(m[3 * ky + 1], p);
                __m512 a2 = _mm512_maskz_loadu_ps(m[3 * ky + 2], p + 1);
                acc[q][v] = _mm512_fmadd_ps(w[q][3 * ky], a0, acc[q][v]);
                acc[q][v] = _mm512_fmadd_ps(w[q][3 * ky + 1], a1, acc[q][v]);
                acc[q][v] = _mm512_fmadd_ps(w[q][3 * ky + 2], a2, acc[q][v]);
            }
        }
    }
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
#pragma GCC unroll 8
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(o[q] + i0 + 16 * v, xm[v * DW_XM + 9], dw_act(j, acc[q][v]));
}

/* NP (1 or 2) output planes on the DW_FLAT path: two planes go through
 * together in blocks of 4 vectors of each (8 independent FMA chains; 0.9x
 * the time of one plane in blocks of 8 on 14x14, 0.5x on 7x7, where one
 * plane is only 4 vectors); one plane (the last of a task) in blocks of 8. */
DW_TARGET static void dw_plane_flat(const dw_job *j, int NP, const float *const *S, const float *const *wm,
                                    const float *bias, float *const *o)
{
    __m512 w[2][9], b[2];
    for (int q = 0; q < NP; q++) {
        for (int k = 0; k < 9; k++)
            w[q][k] = _mm512_set1_ps(wm[q][k]);
        b[q] = _mm512_set1_ps(bias[q]);
    }
    if (NP == 2) {
        for (int64_t i = 0; i < j->P; i += 64) {
            switch ((j->P - i + 15) / 16) {
            case 1: dw_fblock(j, 2, 1, S, i, w, b, o); break;
            case 2: dw_fblock(j, 2, 2, S, i, w, b, o); break;
            case 3: dw_fblock(j, 2, 3, S, i, w, b, o); break;
            default: dw_fblock(j, 2, 4, S, i, w, b, o); break;
            }
        }
        return;
    }
    for (int64_t i = 0; i < j->P; i += 128) {
        int64_t nv = (j->P - i + 15) / 16;
        switch (nv > 8 ? 8 : nv) {
        case 1: dw_fblock(j, 1, 1, S, i, w, b, o); break;
        case 2: dw_fblock(j, 1, 2, S, i, w, b, o); break;
        case 3: dw_fblock(j, 1, 3, S, i, w, b, o); break;
        case 4: dw_fblock(j, 1, 4, S, i, w, b, o); break;
        case 5: dw_fblock(j, 1, 5, S, i, w, b, o); break;
        case 6: dw_fblock(j, 1, 6, S, i, w, b, o); break;
        case 7: dw_fblock(j, 1, 7, S, i, w, b, o); break;
        default: dw_fblock(j, 1, 8, S, i, w, b, o); break;
        }
    }
}

/* DW_S2: stride 2 along x (1 or 2 along y) read in place. 16 outputs from
 * column ox read input columns 2 ox - pl + kx: two 16-float loads from
 * c = 2 ox - pl give the kx = 0 taps (even lanes) and kx = 1 (odd lanes)
 * by one permute each, kx = 2 is the even lanes shifted by one (a third
 * permute, its last lane loaded on its own). That is what the parity-split
 * copy stored, without the copy. Input rows are taken in ascending order,
 * each permuted once for the up to 3 output rows of the block that read
 * it (ky = k - r * sh): per output the taps still go in (ky, kx) order
 * after the bias. Padding rows and columns load +0.0 as in the copy. */
DW_TARGET static inline __attribute__((always_inline)) void
dw_sblock(const dw_job *j, int R, int NV, int SH2, int PAIR, const float *const *plane, int64_t y, int64_t x,
          const __m512 (*w)[9], const __m512 *b, float *const *o)
{
    const cpu_dconv *d = j->d;
    const mb_view *v = d->v;
    const int64_t vw = v->t->dims[3];
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i i2 = _mm512_set_epi32(0, 30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2);
    __m512 acc[4][2];
    __mmask16 ma[2], mb[2], mc[2], mo[2];
    int64_t c0[2];
#pragma GCC unroll 2
    for (int u = 0; u < NV; u++) {
        int64_t c = 2 * (d->r.w0 + x + (PAIR ? 0 : 16 * u)) - d->pl;
        c0[u] = c - v->w_off;
        ma[u] = dw_lanes(c, 0, j->chi);
        mb[u] = dw_lanes(c + 16, 0, j->chi);
        mc[u] = (__mmask16)(dw_lanes(c + 17, 0, j->chi) & 0x8000);
        mo[u] = dw_lanes(x + (PAIR ? 0 : 16 * u), 0, j->OW);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int u = 0; u < NV; u++)
            acc[r][u] = b[PAIR ? u : 0];
    const int64_t iy0 = (d->r.h0 + y) * (SH2 ? 2 : 1) - d->pt;
    const int K = (R - 1) * (SH2 ? 2 : 1) + 3; /* input rows the block reads */
#pragma GCC unroll 9
    for (int k = 0; k < 9; k++) {
        if (k >= K)
            break;
        int64_t iy = iy0 + k;
        int in = iy >= 0 && iy < d->full_h;
        const int64_t row = (in ? iy - v->h_off : 0) * vw;
#pragma GCC unroll 2
        for (int u = 0; u < NV; u++) {
            const float *p = plane[PAIR ? u : 0] + row + c0[u];
            const __m512 *wu = w[PAIR ? u : 0];
            __m512 lo = _mm512_maskz_loadu_ps(in ? ma[u] : 0, p);
            __m512 hi = _mm512_maskz_loadu_ps(in ? mb[u] : 0, p + 16);
            __m512 e = _mm512_permutex2var_ps(lo, ie, hi);
            __m512 od = _mm512_permutex2var_ps(lo, io, hi);
            __m512 e2 = _mm512_mask_loadu_ps(_mm512_permutex2var_ps(lo, i2, hi), in ? mc[u] : 0, p + 17);
            if (!in)
                e2 = _mm512_setzero_ps(); /* lane 15 kept lo's lane 0 */
            /* the row 8 below: the next 4-row block's (stride 2); the
             * hardware prefetcher left this op at 2x its time */
            if (iy + DW_PF_ROWS < d->full_h && iy + DW_PF_ROWS >= 0) {
                _mm_prefetch((const char *)(p + DW_PF_ROWS * vw), _MM_HINT_T0);
                _mm_prefetch((const char *)(p + DW_PF_ROWS * vw + 16), _MM_HINT_T0);
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                int ky = k - r * (SH2 ? 2 : 1);
                if (ky >= 0 && ky <= 2) {
                    acc[r][u] = _mm512_fmadd_ps(wu[3 * ky], e, acc[r][u]);
                    acc[r][u] = _mm512_fmadd_ps(wu[3 * ky + 1], od, acc[r][u]);
                    acc[r][u] = _mm512_fmadd_ps(wu[3 * ky + 2], e2, acc[r][u]);
                }
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int u = 0; u < NV; u++)
            _mm512_mask_storeu_ps(o[PAIR ? u : 0] + (y + r) * j->OW + x + (PAIR ? 0 : 16 * u), mo[u],
                                  dw_act(j, acc[r][u]));
}

/* NP (1 or 2) output planes on the DW_S2 path, in blocks of 4 rows x 32
 * columns; planes up to 16 outputs wide go two at a time (4 rows x 16
 * columns of each, 8 FMA chains instead of 4). */
#define DW_SPLANE(SH2)                                                                                        \
    DW_TARGET static void dw_plane_s2_##SH2(const dw_job *j, int NP, const float *const *plane,              \
                                            const float *const *wm, const float *bias, float *const *o)     \
    {                                                                                                        \
        __m512 w[2][9], b[2];                                                                                \
        for (int q = 0; q < NP; q++) {                                                                       \
            for (int k = 0; k < 9; k++)                                                                      \
                w[q][k] = _mm512_set1_ps(wm[q][k]);                                                          \
            b[q] = _mm512_set1_ps(bias[q]);                                                                  \
        }                                                                                                    \
        for (int64_t y = 0; y < j->OH; y += 4) {                                                             \
            int64_t R = j->OH - y < 4 ? j->OH - y : 4;                                                       \
            if (NP == 2) {                                                                                   \
                switch (R) {                                                                                 \
                case 4: dw_sblock(j, 4, 2, SH2, 1, plane, y, 0, w, b, o); break;                             \
                case 3: dw_sblock(j, 3, 2, SH2, 1, plane, y, 0, w, b, o); break;                             \
                case 2: dw_sblock(j, 2, 2, SH2, 1, plane, y, 0, w, b, o); break;                             \
                default: dw_sblock(j, 1, 2, SH2, 1, plane, y, 0, w, b, o); break;                            \
                }                                                                                            \
                continue;                                                                                    \
            }                                                                                                \
            for (int64_t x = 0; x < j->OW; x += 32) {                                                        \
                int nv = j->OW - x > 16 ? 2 : 1;                                                             \
                switch (R * 2 + nv - 1) {                                                                    \
                case 8: dw_sblock(j, 4, 1, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 9: dw_sblock(j, 4, 2, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 6: dw_sblock(j, 3, 1, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 7: dw_sblock(j, 3, 2, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 4: dw_sblock(j, 2, 1, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 5: dw_sblock(j, 2, 2, SH2, 0, plane, y, x, w, b, o); break;                             \
                case 2: dw_sblock(j, 1, 1, SH2, 0, plane, y, x, w, b, o); break;                             \
                default: dw_sblock(j, 1, 2, SH2, 0, plane, y, x, w, b, o); break;                            \
                }                                                                                            \
            }                                                                                                \
        }                                                                                                    \
    }
DW_SPLANE(0)
DW_SPLANE(1)

/* DW_COPY: the plane through its zero-padded copy. Nonzero when out of
 * scratch memory (j->failed set). */
static int dw_copy_plane(dw_job *j, const float *plane, const float *wm, float b, float *o, int thread)
{
    const cpu_dconv *d = j->d;
    /* + 16: room to align the rows to 64 bytes */
    float *raw = cpu_scratch(j->c, thread, (size_t)(j->PH * j->rstride + 16));
    if (!raw) {
        j->failed = 1;
        return -1;
    }
    float *buf = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    dw_fill(j, plane, buf);
    if (d->sw == 2)
        (d->sh == 2 ? dw_plane_11 : dw_plane_10)(j, buf, wm, b, o);
    else
        (d->sh == 2 ? dw_plane_01 : dw_plane_00)(j, buf, wm, b, o);
    return 0;
}

/* Plane t (batch n, output channel m): its input plane, weights, bias, output. */
static void dw_plane_ptrs(const dw_job *j, int64_t t, const float **in, const float **wm, float *b, float **o)
{
    const cpu_dconv *d = j->d;
    const mb_view *v = d->v;
    int64_t n = t / d->M, m = t % d->M;
    *in = v->t->data + (n * d->C + m / j->Mg) * v->t->dims[2] * v->t->dims[3];
    if (j->mode == DW_FLAT) /* the view's row h0 - pt (S in dw_fblock) */
        *in += (d->r.h0 - d->pt - v->h_off) * v->t->dims[3];
    *wm = d->w + m * 9;
    *b = d->bias ? d->bias[m] : 0.0f;
    *o = d->out + t * j->P;
}

/* Planes [t * gp, (t + 1) * gp) of all n_batch * M: grouped so that small
 * planes are not one pool task each. */
static void dw_task(void *arg, int t, int thread)
{
    dw_job *j = arg;
    const cpu_dconv *d = j->d;
    int64_t q0 = (int64_t)t * j->gp, q1 = q0 + j->gp < j->nplanes ? q0 + j->gp : j->nplanes;
    for (int64_t q = q0; q < q1;) {
        const float *in[2], *wm[2];
        float b[2], *o[2];
        /* two planes at a time where one alone gives too few FMA chains */
        int pair = j->mode == DW_FLAT || (j->mode == DW_S2 && j->OW <= 16);
        int np = pair && q + 1 < q1 ? 2 : 1;
        for (int k = 0; k < np; k++)
            dw_plane_ptrs(j, q + k, &in[k], &wm[k], &b[k], &o[k]);
        if (j->mode == DW_FLAT)
            dw_plane_flat(j, np, in, wm, b, o);
        else if (j->mode == DW_S2)
            (d->sh == 2 ? dw_plane_s2_1 : dw_plane_s2_0)(j, np, in, wm, b, o);
        else if (dw_copy_plane(j, in[0], wm[0], b[0], o[0], thread))
            return;
        for (int k = 0; k < np; k++, q++) {
            if (d->post) /* residual add (+ activation) on the plane, in cache */
                cpu_conv_post(d->post, d->r, q / d->M, q % d->M, 0, o[k], j->P);
            else if (d->act && j->act == DW_ACT_NONE)
                cpu_unary_span(d->act->type, d->act->a.alpha, d->act->a.beta, o[k], o[k], j->P);
        }
    }
}

/* DW_FLAT's masks (see DW_XM) for the nvec output vectors into xm. */
static void dw_flat_masks(const dw_job *j, int64_t nvec, uint16_t *xm)
{
    const int64_t W = j->OW;
    for (int64_t q = 0; q < nvec; q++) {
        uint16_t *m = xm + q * DW_XM;
        memset(m, 0, DW_XM * sizeof *m);
        for (int l = 0; l < 16; l++) {
            int64_t i = 16 * q + l, x = i % W;
            if (i >= j->P)
                break;
            int okx[3] = {x != 0, 1, x != W - 1};
            m[9] |= (uint16_t)(1u << l);
            for (int ky = 0; ky < 3; ky++) {
                int64_t f = i + ky * W; /* the input row, as a flat offset */
                int oky = f >= j->ylo && f < j->yhi;
                for (int kx = 0; kx < 3; kx++)
                    m[3 * ky + kx] |= (uint16_t)((oky && okx[kx]) << l);
            }
        }
    }
}

/* The path for this op (see DW_COPY). DW_FLAT needs the region's rows whole
 * and the view's rows the image's (contiguous flat runs); its mask table,
 * read by every thread, goes into the op's shared buffer. Nonzero when out
 * of memory. */
static int dw_pick_mode(dw_job *j)
{
    const cpu_dconv *d = j->d;
    const mb_view *v = d->v;
    j->mode = DW_COPY;
    if (dw_mode_env() != 2)
        return 0;
    /* measured on MobileNetV2 (one thread, against DW_COPY): 0.64x the time
     * on 7x7 planes, 0.95x on 14x14, even on 28x28 and 56x56, 1.4x on
     * 112x112 (where the copy's single sequential read of the plane wins) */
    if (d->sh == 1 && d->sw == 1 && d->pl == 1 && d->r.w0 == 0 && j->OW == d->full_w && v->w_off == 0 &&
        v->t->dims[3] == d->full_w && j->P <= DW_FLAT_MAXP) {
        int64_t nvec = (j->P + 15) / 16;
        uint16_t *xm = (uint16_t *)cpu_shared(j->c, (size_t)(nvec * DW_XM + 1) / 2);
        if (!xm)
            return -1;
        j->ylo = (d->pt - d->r.h0) * j->OW;
        j->yhi = (d->full_h + d->pt - d->r.h0) * j->OW;
        dw_flat_masks(j, nvec, xm);
        j->xm = xm;
        j->mode = DW_FLAT;
    } else if (d->sw == 2) {
        /* columns read: up to the last output's kx = 2, inside the image */
        int64_t hi = 2 * (d->r.w1 - 1) - d->pl + 3;
        j->chi = hi < d->full_w ? hi : d->full_w;
        j->mode = DW_S2;
    }
    return 0;
}

int cpu_conv_dw3x3(cpu_ctx *c, const cpu_dconv *d)
{
    dw_job j = {0};
    j.d = d;
    j.c = c;
    j.Mg = d->M / d->C;
    j.OH = d->r.h1 - d->r.h0;
    j.OW = d->r.w1 - d->r.w0;
    j.P = j.OH * j.OW;
    j.PH = (j.OH - 1) * d->sh + 3;
    j.PW = (j.OW - 1) * d->sw + 3;
    if (d->sw == 2) { /* even columns (OW + 1 read), then odd ones (OW) */
        j.EW = (j.OW + 1 + 15) / 16 * 16;
        j.rstride = 2 * j.EW;
    } else {
        j.rstride = (j.PW + 15) / 16 * 16;
    }
    if (d->act) {
        j.act = d->act->type == MB_OP_RELU        ? DW_ACT_RELU
                : d->act->type == MB_OP_CLIP      ? DW_ACT_CLIP
                : d->act->type == MB_OP_LEAKYRELU ? DW_ACT_LEAKY
                                                  : DW_ACT_NONE;
        j.alpha = d->act->a.alpha;
        j.beta = d->act->a.beta;
    }
    if (j.P == 0 || d->n_batch == 0)
        return 0;
    j.pf = dw_mode_env() == 2;
    if (dw_pick_mode(&j))
        return -1;
    /* measured (one thread, mecbed infer on single-op models): 0.4 ns per
     * output on 56x56 and 112x112 planes (memory-bound), 1.2 ns on 7x7 */
    j.nplanes = d->n_batch * d->M;
    /* about 2048 outputs per pool task (one plane from 46x46 up): on two
     * threads one task per 7x7 or 14x14 plane took 2-3x the one-thread time.
     * One plane per task with MECBED_CPU_DW=copy, as before. */
    j.gp = dw_mode_env() == 2 ? (DW_TASK_P + j.P - 1) / j.P : 1;
    cpu_run(c, (int)((j.nplanes + j.gp - 1) / j.gp), dw_task, &j, (double)d->n_batch * d->M * j.P / 2.0);
    return j.failed ? -1 : 0;
}

#else

int cpu_conv_dw3x3(cpu_ctx *c, const cpu_dconv *d)
{
    (void)c;
    (void)d;
    return -1;
}

#endif
