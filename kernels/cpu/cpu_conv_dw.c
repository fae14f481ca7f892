/* Depthwise 3x3 convolution on AVX-512 (one input channel per group, any
 * channel multiplier, stride 1 or 2 on each axis, dilation 1).
 *
 * Per output plane (batch n, output channel m), the input region the plane's
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
 * loops of cpu_conv.c run instead), for comparisons in one binary. */
static int dw_enabled(void)
{
    static int on = -1; /* computed once; racing threads store the same value */
    int a = __atomic_load_n(&on, __ATOMIC_RELAXED);
    if (a < 0) {
        const char *e = getenv("MECBED_CPU_DW");
        a = !(e && strcmp(e, "generic") == 0);
        __atomic_store_n(&on, a, __ATOMIC_RELAXED);
    }
    return a;
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
    volatile int failed;
} dw_job;

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

static void dw_task(void *arg, int t, int thread)
{
    dw_job *j = arg;
    const cpu_dconv *d = j->d;
    int64_t n = t / d->M, m = t % d->M;
    /* + 16: room to align the rows to 64 bytes */
    float *raw = cpu_scratch(j->c, thread, (size_t)(j->PH * j->rstride + 16));
    if (!raw) {
        j->failed = 1;
        return;
    }
    float *buf = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    const mb_view *v = d->v;
    const float *plane = v->t->data + (n * d->C + m / j->Mg) * v->t->dims[2] * v->t->dims[3];
    dw_fill(j, plane, buf);
    const float *wm = d->w + m * 9;
    float b = d->bias ? d->bias[m] : 0.0f;
    float *o = d->out + (n * d->M + m) * j->P;
    if (d->sw == 2)
        (d->sh == 2 ? dw_plane_11 : dw_plane_10)(j, buf, wm, b, o);
    else
        (d->sh == 2 ? dw_plane_01 : dw_plane_00)(j, buf, wm, b, o);
    if (d->post) /* residual add (+ activation) on the plane, in cache */
        cpu_conv_post(d->post, d->r, n, m, 0, o, j->P);
    else if (d->act && j->act == DW_ACT_NONE)
        cpu_unary_span(d->act->type, d->act->a.alpha, d->act->a.beta, o, o, j->P);
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
    /* measured (one thread, mecbed infer on single-op models): 0.4 ns per
     * output on 56x56 and 112x112 planes (memory-bound), 1.2 ns on 7x7 */
    cpu_run(c, (int)(d->n_batch * d->M), dw_task, &j, (double)d->n_batch * d->M * j.P / 2.0);
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
