/* Convolution for small output maps on AVX-512, vectorised over output
 * channels ("oc").
 *
 * The direct kernel (cpu_conv_direct.c) puts 16 frame pixels in a vector,
 * and a frame row carries (kw-1)/sw throw-away columns: on a 13x13 3x3 map
 * 169 of its 224 lanes are useful, on 7x7 49 of 64. Here a vector holds 16
 * output channels of one output pixel instead, so no lane is wasted on
 * pixels. Register tile: NV (1 or 2) vectors of 16 channels x NP (up to 14)
 * output pixels, 28 accumulators. Per k = (c, ky, kx): NV loads from the
 * packed weights ([k][16*NV] per block of 32 channels), NP broadcasts of the
 * input, NP*NV FMAs.
 *
 * Input: the same zero-padded frame split by stride phase as the direct
 * kernel's (or the input view in place for 1x1 stride-1 layers without
 * padding), so tap (ky, kx) of the pixels of one output row is a
 * contiguous run: a pixel tile is a run of up to 14 pixels of one output
 * row, two whole rows of a map at most 7 wide, or (where frame rows are as
 * wide as output rows: 1x1 layers) any 14 consecutive pixels. The pixel
 * offsets within a tile are then compile-time constants (one more base
 * pointer for a tile's second row), and there is no im2col.
 *
 * Weights: per block of 32 output channels and chunk of K, transposed from
 * OIHW rows into [k][32] in the thread's scratch (16x16 in-register
 * transposes), then used by every pixel tile of the task. K is split into
 * chunks (OC_WCHUNK_BYTES of packed weights, so they stay in L1/L2 across
 * the tiles); partial sums go to a small per-task buffer as raw
 * accumulators and come back unchanged.
 *
 * Exactness: every output element is bias + sum over k = (c, ky, kx) in
 * that order, one float FMA per term (taps on padding add w * 0), as in the
 * direct kernel: any output rectangle, task split or thread count gives the
 * same bits, and so does the direct kernel (tests/test_kernels_cpu.c
 * compares them). Stores: a tile's accumulators are transposed (16x16) so
 * that each output channel's pixels are one masked store into the NCHW
 * output; bias, residual add and Relu / Clip / LeakyRelu are applied as in
 * the direct kernel's epilogue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OC_X86 1
#define OC_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma,bmi2")))
#else
#define OC_X86 0
#endif

#define OC_NP 14           /* output pixels per register tile, at most */
#define OC_MAX_TAPS 64     /* kh * kw handled (the zoo's small maps: 1x1, 3x3) */
#define OC_MIN_K 160  /* default dispatch: K = Cg * kh * kw from which, */
#define OC_MAX_PX 3136 /* and output pixels up to which (56x56) */
#ifndef OC_WCHUNK_BYTES
#define OC_WCHUNK_BYTES (64 * 1024) /* packed weights of one 32-channel block per K chunk */
#endif

/* MECBED_CPU_CONV_OC: 0 = never (the direct kernel), 1 = every eligible
 * conv, unset = where it measured faster (cpu_conv_oc_wanted). Read on every
 * call (a getenv per conv), so a test can compare both paths in one
 * process. */
static int oc_mode(void)
{
    const char *e = getenv("MECBED_CPU_CONV_OC");
    return e && *e ? atoi(e) : -1;
}

static int oc_env_int(const char *name, int dflt)
{
    const char *e = getenv(name);
    return e && *e ? atoi(e) : dflt;
}

int cpu_conv_oc_wanted(const cpu_dconv *d)
{
    if (!OC_X86 || !cpu_conv_direct_available())
        return 0;
    int mode = oc_mode();
    int64_t Cg = d->C / d->G, Mg = d->M / d->G;
    if (mode == 0 || Cg < 2 || d->kh * d->kw > OC_MAX_TAPS)
        return 0;
    if (mode == 1)
        return 1;
    /* Measured (one thread, interleaved per-node minima against the direct
     * kernel; kernels/cpu/README.md, "Small maps: vectors over output
     * channels"): faster on maps up to 56x56 from K = 144 (GoogLeNet's
     * 28x28 1x1 layers 0.63-0.9x, DenseNet's 1x1 0.8-0.9x, 3x3 0.91-0.99x,
     * tiny YOLOv2's 13x13 0.54-0.8x); slower on the stems (K = 27, 147:
     * 1.05-2x) and K <= 128 at 28x28 and 56x56 (1.05-1.4x: few FMAs per
     * output stored, where the direct kernel's contiguous stores win), and
     * on maps over 56x56 (tiny YOLOv2's 104x104 K = 288: 1.05x). */
    int64_t P = (d->r.h1 - d->r.h0) * (d->r.w1 - d->r.w0);
    return Mg >= 16 && Cg * d->kh * d->kw >= oc_env_int("MECBED_CPU_CONV_OC_MINK", OC_MIN_K) &&
           P <= oc_env_int("MECBED_CPU_CONV_OC_MAXPX", OC_MAX_PX);
}

#if OC_X86

typedef struct oc_job {
    const cpu_dconv *d;
    cpu_ctx *c;
    int64_t Cg, Mg, K, OH, OW, P;
    int taps;
    int64_t PW, PHr, pstride, cstride, nstride; /* frame geometry (floats) */
    int phy, phx;
    const float *xbase; /* frame, or the view (in place): output pixel (0, 0) of channel 0, batch 0 */
    int linear;         /* frame rows are output rows (PW == OW): tiles may span rows */
    int64_t toff[OC_MAX_TAPS];
    int act;
    float alpha, beta;
    const float *res; /* in-register residual (see cpu_conv_direct.c) */
    int res_first;
    const mb_node *late_act;
    int64_t kc;                       /* input channels per K chunk */
    int wpf;                          /* prefetch the next chunk's weight rows (oc_pf) */
    int64_t mchunk, n_mtasks, rows_per_task, n_rtasks;
    volatile int failed;
} oc_job;

enum { OC_ACT_NONE, OC_ACT_RELU, OC_ACT_CLIP, OC_ACT_LEAKY };

/* The direct kernel's dc_act: same comparisons and operand order as
 * cpu_unary_span, so fused and unfused runs agree bit for bit. */
OC_TARGET static inline __attribute__((always_inline)) __m512 oc_act(const oc_job *j, __m512 x)
{
    switch (j->act) {
    case OC_ACT_RELU:
        return _mm512_max_ps(x, _mm512_setzero_ps());
    case OC_ACT_CLIP:
        return _mm512_min_ps(_mm512_set1_ps(j->beta), _mm512_max_ps(_mm512_set1_ps(j->alpha), x));
    case OC_ACT_LEAKY: {
        __mmask16 neg = ~_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
        return _mm512_mask_mul_ps(x, neg, _mm512_set1_ps(j->alpha), x);
    }
    default:
        return x;
    }
}

/* 16x16 transpose: col[k] lane i = r[i] lane k (dc_pack14's sequence). */
OC_TARGET static inline __attribute__((always_inline)) void oc_tr16(const __m512 r[16], __m512 col[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        col[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        col[4 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        col[8 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        col[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
}

/* Weights of nch (<= 16*nv) output channels (OIHW rows from w, row stride
 * K), k in [k0, k0 + nk), into p as [k][16*nv]; lanes of missing channels
 * are zero (their results are never stored). Values are only moved. */
OC_TARGET static void oc_pack(const float *w, int64_t K, int nch, int nv, int64_t k0, int64_t nk, float *p)
{
    const int ld = 16 * nv;
    for (int v = 0; v < nv; v++) {
        int rows = nch - 16 * v < 16 ? nch - 16 * v : 16;
        const float *wv = w + (int64_t)16 * v * K + k0;
        for (int64_t k = 0; k < nk; k += 16) {
            int n = nk - k < 16 ? (int)(nk - k) : 16;
            __mmask16 m = (__mmask16)((1u << n) - 1u);
            __m512 r[16], col[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(m, wv + i * K + k) : _mm512_setzero_ps();
            oc_tr16(r, col);
            for (int q = 0; q < n; q++)
                _mm512_storeu_ps(p + (k + q) * ld + 16 * v, col[q]);
        }
    }
}

/* Software prefetch (T1) of the OIHW rows the next (channel block, K
 * chunk) packs: 32 row segments of a few KiB, a row apart, read once per
 * layer from memory. Issued from inside the kernels, a few lines per input
 * channel, spread over the whole chunk: without it oc_pack waited on the
 * rows, and a burst of them per tile call stalled on the outstanding
 * misses. Lines go row by row within a column of lines (pointer += row
 * stride), then the next column. */
typedef struct oc_pf {
    const char *p;    /* next line */
    int64_t rs, back; /* row stride; from past the last row to the next column's first */
    int rows, r;      /* rows, row of p */
    int per;          /* lines per call of oc_pf_step */
    int64_t left;     /* lines left */
} oc_pf;
static inline __attribute__((always_inline)) void oc_pf_step(oc_pf *pf)
{
    for (int n = 0; n < pf->per && pf->left > 0; n++, pf->left--) {
        _mm_prefetch(pf->p, _MM_HINT_T1);
        pf->p += pf->rs;
        if (++pf->r == pf->rows) {
            pf->r = 0;
            pf->p -= pf->back;
        }
    }
}

/* The micro-kernel: NV vectors of 16 output channels x NP pixels. Pixel i
 * reads x + i for i < S, x + rs + (i - S) after (a tile's second row);
 * channel c of the chunk at x + c * cstride, tap t at + toff[t]. w: the
 * chunk's packed weights [k][16*NV]. Accumulators start at bias (32 floats)
 * or, bias NULL, at acc; they are stored raw to acc ([pixel][32]). */
OC_TARGET static inline __attribute__((always_inline)) void oc_kernel(const oc_job *j, int NP, int S, int NV,
                                                                      const float *x, int64_t rs, const float *w,
                                                                      int64_t nc, float *acc, const float *bias,
                                                                      oc_pf *pf)
{
    __m512 a[OC_NP][2];
#pragma GCC unroll 14
    for (int i = 0; i < NP; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            a[i][v] = _mm512_loadu_ps(bias ? bias + 16 * v : acc + i * 32 + 16 * v);
    const int64_t cs = j->cstride;
    const float *x2 = x + rs;
    if (j->taps == 1) {
        for (int64_t k = 0; k < nc; k++, x += cs, x2 += cs, w += 16 * NV) {
            if (pf && (k & 7) == 0)
                oc_pf_step(pf);
            __m512 w0 = _mm512_loadu_ps(w), w1 = NV > 1 ? _mm512_loadu_ps(w + 16) : w0;
#pragma GCC unroll 14
            for (int i = 0; i < NP; i++) {
                __m512 b = _mm512_set1_ps(i < S ? x[i] : x2[i - S]);
                a[i][0] = _mm512_fmadd_ps(w0, b, a[i][0]);
                if (NV > 1)
                    a[i][1] = _mm512_fmadd_ps(w1, b, a[i][1]);
            }
        }
    } else {
        const int taps = j->taps;
        for (int64_t c = 0; c < nc; c++, x += cs, x2 += cs) {
            if (pf)
                oc_pf_step(pf);
            for (int t = 0; t < taps; t++, w += 16 * NV) {
                const float *xt = x + j->toff[t], *xt2 = x2 + j->toff[t];
                __m512 w0 = _mm512_loadu_ps(w), w1 = NV > 1 ? _mm512_loadu_ps(w + 16) : w0;
#pragma GCC unroll 14
                for (int i = 0; i < NP; i++) {
                    __m512 b = _mm512_set1_ps(i < S ? xt[i] : xt2[i - S]);
                    a[i][0] = _mm512_fmadd_ps(w0, b, a[i][0]);
                    if (NV > 1)
                        a[i][1] = _mm512_fmadd_ps(w1, b, a[i][1]);
                }
            }
        }
    }
#pragma GCC unroll 14
    for (int i = 0; i < NP; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(acc + i * 32 + 16 * v, a[i][v]);
}

typedef void (*oc_kfn)(const oc_job *, const float *, int64_t, const float *, int64_t, float *, const float *,
                       oc_pf *);
#define OC_K(NP, S, NV)                                                                                         \
    OC_TARGET static void oc_k_##NP##_##S##_##NV(const oc_job *j, const float *x, int64_t rs, const float *w,  \
                                                 int64_t nc, float *acc, const float *bias, oc_pf *pf)         \
    {                                                                                                          \
        oc_kernel(j, NP, S, NV, x, rs, w, nc, acc, bias, pf);                                                  \
    }
#define OC_K1(NP) OC_K(NP, NP, 1) OC_K(NP, NP, 2)
#define OC_K2(NP, W) OC_K(NP, W, 1) OC_K(NP, W, 2)
OC_K1(1) OC_K1(2) OC_K1(3) OC_K1(4) OC_K1(5) OC_K1(6) OC_K1(7) OC_K1(8) OC_K1(9) OC_K1(10) OC_K1(11) OC_K1(12)
OC_K1(13) OC_K1(14)
OC_K2(2, 1) OC_K2(4, 2) OC_K2(6, 3) OC_K2(8, 4) OC_K2(10, 5) OC_K2(12, 6) OC_K2(14, 7)
/* [NV - 1][variant]: variant NP - 1 for one run of NP pixels (0..13),
 * 14 + W - 1 for two rows of W pixels (14..20) */
#define OC_ROW(NV)                                                                                              \
    {oc_k_1_1_##NV,  oc_k_2_2_##NV,  oc_k_3_3_##NV,  oc_k_4_4_##NV,   oc_k_5_5_##NV,   oc_k_6_6_##NV,        \
     oc_k_7_7_##NV,  oc_k_8_8_##NV,  oc_k_9_9_##NV,  oc_k_10_10_##NV, oc_k_11_11_##NV, oc_k_12_12_##NV,      \
     oc_k_13_13_##NV, oc_k_14_14_##NV, oc_k_2_1_##NV, oc_k_4_2_##NV,  oc_k_6_3_##NV,   oc_k_8_4_##NV,        \
     oc_k_10_5_##NV, oc_k_12_6_##NV, oc_k_14_7_##NV}
static const oc_kfn oc_kernels[2][21] = {OC_ROW(1), OC_ROW(2)};

/* A pixel tile: np pixels from output pixel p (row-major over the region);
 * s < np: the first s in one row, the rest at the start of the next. */
typedef struct oc_tile {
    int64_t p;
    int np, s;
} oc_tile;

/* The tiles of output rows [y0, y1): runs of up to 14 pixels split evenly
 * (13 x 13 -> 13 tiles of 13; 1x1 on 7x7: 13 + 3 x 12); maps up to 7 wide
 * two rows at a time. Returns how many (at most oc_max_tiles). */
static int64_t oc_tiles(const oc_job *j, int64_t y0, int64_t y1, oc_tile *t)
{
    int64_t n = 0;
    if (j->linear) {
        int64_t p0 = y0 * j->OW, len = (y1 - y0) * j->OW, nt = (len + OC_NP - 1) / OC_NP;
        for (int64_t i = 0, p = p0; i < nt; i++) {
            int np = (int)(len / nt + (i < len % nt));
            if (t)
                t[n] = (oc_tile){p, np, np};
            n++;
            p += np;
        }
        return n;
    }
    if (2 * j->OW <= OC_NP) {
        for (int64_t y = y0; y < y1; y += 2) {
            int two = y + 1 < y1;
            if (t)
                t[n] = (oc_tile){y * j->OW, (int)(two ? 2 * j->OW : j->OW), (int)j->OW};
            n++;
        }
        return n;
    }
    int64_t nt = (j->OW + OC_NP - 1) / OC_NP;
    for (int64_t y = y0; y < y1; y++)
        for (int64_t i = 0, x = 0; i < nt; i++) {
            int np = (int)(j->OW / nt + (i < j->OW % nt));
            if (t)
                t[n] = (oc_tile){y * j->OW + x, np, np};
            n++;
            x += np;
        }
    return n;
}

/* The tile's accumulators (acc: [pixel][32], nch channels) into the
 * output: transposed so each channel's np pixels are one masked store at
 * out + ch * P (pixel p of the region at out + p); residual, activation. */
OC_TARGET static void oc_store(const oc_job *j, const float *acc, int np, int nch, float *out)
{
    const __mmask16 m = (__mmask16)((1u << np) - 1u);
    for (int v = 0; v * 16 < nch; v++) {
        __m512 r[16], col[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < np ? _mm512_loadu_ps(acc + i * 32 + 16 * v) : _mm512_setzero_ps();
        oc_tr16(r, col);
        int nl = nch - 16 * v < 16 ? nch - 16 * v : 16;
        for (int l = 0; l < nl; l++) {
            float *o = out + (16 * v + l) * j->P;
            __m512 y = col[l];
            if (j->res) { /* the unfused Add's expression, then the activation */
                __m512 rr = _mm512_maskz_loadu_ps(m, j->res + (o - j->d->out));
                y = j->res_first ? _mm512_add_ps(rr, y) : _mm512_add_ps(y, rr);
            }
            _mm512_mask_storeu_ps(o, m, oc_act(j, y));
        }
    }
}

static int64_t oc_max_tiles(const oc_job *j)
{
    return oc_tiles(j, 0, j->rows_per_task, NULL) + 1;
}

OC_TARGET static void oc_task(void *arg, int t, int thread)
{
    const oc_job *j = arg;
    const cpu_dconv *d = j->d;
    int rt = (int)(t % j->n_rtasks);
    t /= (int)j->n_rtasks;
    int mt = (int)(t % j->n_mtasks);
    t /= (int)j->n_mtasks;
    int64_t g = t % d->G, n = t / d->G;
    int64_t y0 = rt * j->rows_per_task, y1 = y0 + j->rows_per_task < j->OH ? y0 + j->rows_per_task : j->OH;
    int64_t m0 = mt * j->mchunk, m1 = m0 + j->mchunk < j->Mg ? m0 + j->mchunk : j->Mg;
    const int64_t taps = j->taps, K = j->K;
    /* scratch: packed weights of one chunk, the tiles, their accumulators, the bias */
    int64_t maxt = oc_max_tiles(j);
    size_t wn = (size_t)(j->kc * taps * 32), tn = (size_t)(maxt * sizeof(oc_tile) + 3) / 4;
    size_t an = (size_t)(maxt * OC_NP * 32);
    float *buf = cpu_scratch(j->c, thread, wn + tn + an + 32 + 16);
    if (!buf) {
        ((oc_job *)j)->failed = 1;
        return;
    }
    float *wp = buf, *accb = buf + wn + tn, *bias = accb + an;
    oc_tile *tl = (oc_tile *)(void *)(buf + wn);
    int64_t nt = oc_tiles(j, y0, y1, tl);
    const float *x = j->xbase + n * j->nstride + g * j->Cg * j->cstride;
    int64_t mg0 = g * j->Mg;
    for (int64_t m = m0; m < m1; m += 32) {
        int nch = m1 - m < 32 ? (int)(m1 - m) : 32, nv = (nch + 15) / 16;
        for (int l = 0; l < 32; l++)
            bias[l] = d->bias && l < nch ? d->bias[mg0 + m + l] : 0.0f;
        const float *w = d->w + (mg0 + m) * K;
        float *out = d->out + (n * d->M + mg0 + m) * j->P;
        for (int64_t c0 = 0; c0 < j->Cg; c0 += j->kc) {
            int64_t cc = j->Cg - c0 < j->kc ? j->Cg - c0 : j->kc;
            int last = c0 + cc == j->Cg;
            oc_pack(w, K, nch, nv, c0 * taps, cc * taps, wp);
            oc_pf pf = {0};
            if (j->wpf) { /* the next chunk: this block's next part of K, or the next block's first */
                int64_t nm = c0 + cc < j->Cg ? m : m + 32, nc0 = c0 + cc < j->Cg ? c0 + cc : 0;
                if (nm < m1) {
                    int64_t ncc = j->Cg - nc0 < j->kc ? j->Cg - nc0 : j->kc;
                    /* a segment's first byte need not start a line: one line more */
                    int64_t lines = (ncc * taps * (int64_t)sizeof(float) + 63) / 64 + 1;
                    pf.p = (const char *)(d->w + (mg0 + nm) * K + nc0 * taps);
                    pf.rows = m1 - nm < 32 ? (int)(m1 - nm) : 32;
                    pf.rs = K * (int64_t)sizeof(float);
                    pf.back = pf.rows * pf.rs - 64;
                    pf.left = pf.rows * lines;
                    /* calls: one per input channel per tile (1x1: per 8) */
                    int64_t calls = (taps == 1 ? (cc + 7) / 8 : cc) * nt;
                    pf.per = (int)((pf.left + calls - 1) / calls);
                }
            }
            for (int64_t i = 0; i < nt; i++) {
                const oc_tile *ti = &tl[i];
                int64_t oy = ti->p / j->OW, ox = ti->p % j->OW;
                const float *xt = x + c0 * j->cstride + oy * j->PW + ox;
                int var = ti->s == ti->np ? ti->np - 1 : 14 + ti->s - 1;
                float *acc = accb + i * OC_NP * 32;
                oc_kernels[nv - 1][var](j, xt, j->PW, wp, cc, acc, c0 == 0 ? bias : NULL, pf.left > 0 ? &pf : NULL);
                if (last)
                    oc_store(j, acc, ti->np, nch, out + ti->p);
            }
        }
    }
    if (j->late_act)
        for (int64_t m = m0; m < m1; m++) {
            float *o = d->out + (n * d->M + mg0 + m) * j->P + y0 * j->OW;
            cpu_unary_span(j->late_act->type, j->late_act->a.alpha, j->late_act->a.beta, o, o, (y1 - y0) * j->OW);
        }
    else if (d->post && !j->res)
        for (int64_t m = m0; m < m1; m++)
            cpu_conv_post(d->post, d->r, n, mg0 + m, y0 * j->OW, d->out + (n * d->M + mg0 + m) * j->P + y0 * j->OW,
                          (y1 - y0) * j->OW);
    else if (d->act && j->act == OC_ACT_NONE)
        for (int64_t m = m0; m < m1; m++) {
            float *o = d->out + (n * d->M + mg0 + m) * j->P + y0 * j->OW;
            cpu_unary_span(d->act->type, d->act->a.alpha, d->act->a.beta, o, o, (y1 - y0) * j->OW);
        }
}

/* Tasks: (batch, group, chunk of output channels in blocks of 32, chunk of
 * output rows). One thread: one task per (batch, group), every weight
 * packed once (capping a task's input share at 1 MiB with row chunks was
 * 3-4 % slower on ResNet-50's 256->64 and 256->128 1x1 layers at 56x56).
 * More threads: where the weights outweigh the input (small maps), output
 * channels are split first (each task reads the small input but only its
 * share of the weights); else rows first (ResNet-50's 256->128 at 56x56:
 * 0.71 -> 0.60 ms on 2 threads; with channels split first each task read
 * the whole 3 MB input). MECBED_CPU_CONV_OC_ROWS=0: channels first always
 * (the first version, A/B). */
static void oc_split(const cpu_ctx *c, oc_job *j)
{
    int64_t base = j->d->n_batch * j->d->G, want = c->n_threads > 1 ? 2 * c->n_threads : 1;
    int64_t input = j->Cg * j->phy * j->phx * j->PW * j->OH * (int64_t)sizeof(float);
    int old = oc_env_int("MECBED_CPU_CONV_OC_ROWS", 1) == 0;
    int64_t blocks = (j->Mg + 31) / 32, mt = 1, rt = 1;
    if (old || j->Mg * j->K * (int64_t)sizeof(float) > input)
        while (base * mt * rt < want && mt < blocks)
            mt++;
    while (base * mt * rt < want && rt < j->OH)
        rt++;
    while (base * mt * rt < want && mt < blocks)
        mt++;
    int64_t per = (blocks + mt - 1) / mt;
    j->mchunk = per * 32;
    j->n_mtasks = (j->Mg + j->mchunk - 1) / j->mchunk;
    j->rows_per_task = (j->OH + rt - 1) / rt;
    if (!j->linear && 2 * j->OW <= OC_NP && j->rows_per_task < j->OH)
        j->rows_per_task += j->rows_per_task & 1; /* whole two-row tiles */
    j->n_rtasks = (j->OH + j->rows_per_task - 1) / j->rows_per_task;
}

/* A split's time on n_threads, as the pool runs it (cpu_pool.c): with
 * affine claims each thread first works through its own contiguous share of
 * the tasks in order, then takes the next task of the others' shares
 * (thread + 1, + 2, ...); without, the first free thread takes the next
 * task. A task costs its MACs plus the bytes it reads (its weight rows, its
 * input rows with the window's halo; about one byte per MAC of time from L2
 * on AVX-512 at 2 FMAs a cycle). cost: scratch for the tasks' costs. */
static double oc_makespan(const oc_job *j, int n_threads, int affine, int64_t mchunk, int64_t rows, double *cost)
{
    int64_t base = j->d->n_batch * j->d->G, halo = j->PHr > j->OH ? j->PHr - j->OH : 0, n = 0;
    for (int64_t b = 0; b < base; b++)
        for (int64_t m0 = 0; m0 < j->Mg; m0 += mchunk) {
            int64_t ml = j->Mg - m0 < mchunk ? j->Mg - m0 : mchunk;
            double mv = (double)((ml + 15) / 16 * 16); /* half-blocks of 16 lanes */
            for (int64_t y0 = 0; y0 < j->OH; y0 += rows) {
                int64_t yl = j->OH - y0 < rows ? j->OH - y0 : rows;
                cost[n++] = mv * (double)(yl * j->OW) * (double)j->K + (double)ml * (double)j->K * 4.0 +
                            (double)(j->Cg * j->phy * j->phx * j->PW * (yl + halo)) * 4.0;
            }
        }
    double busy[CPU_MAX_THREADS] = {0};
    int64_t next[CPU_MAX_THREADS], end[CPU_MAX_THREADS];
    for (int k = 0; k < n_threads; k++) {
        next[k] = affine ? n * k / n_threads : 0;
        end[k] = affine ? n * (k + 1) / n_threads : n;
    }
    for (int64_t done = 0; done < n; done++) {
        int k = 0; /* the thread free first claims */
        for (int i = 1; i < n_threads; i++)
            if (busy[i] < busy[k])
                k = i;
        int r = k;
        if (affine)
            for (int i = 0; i < n_threads && next[r] >= end[r]; i++)
                r = (k + i + 1) % n_threads;
        else
            r = 0;
        busy[k] += cost[next[r]++];
    }
    double m = 0;
    for (int i = 0; i < n_threads; i++)
        m = busy[i] > m ? busy[i] : m;
    return m;
}

/* Threads: oc_split's chunk counts came out uneven for 2 threads (192 or
 * 160 output channels: 3 chunks of 64/64/32, rows unsplit: one thread did
 * 2 tasks, the other 1, at most 1.5x), so each (channel chunks, row chunks)
 * pair up to 4 per thread each way is scored by oc_makespan and the
 * shortest kept, ties to the fewer tasks. MECBED_CPU_CONV_OC_BALANCE=0:
 * oc_split's counts as they are (A/B). */
static void oc_balance(const cpu_ctx *c, oc_job *j)
{
    int nt = c->n_threads < CPU_MAX_THREADS ? c->n_threads : CPU_MAX_THREADS;
    if (nt < 2 || oc_env_int("MECBED_CPU_CONV_OC_BALANCE", 1) == 0)
        return;
    int64_t blocks = (j->Mg + 31) / 32, best_m = j->mchunk, best_r = j->rows_per_task;
    int64_t base = j->d->n_batch * j->d->G;
    int64_t most = base * (j->n_mtasks > 4 * nt ? j->n_mtasks : 4 * nt) * (j->n_rtasks > 4 * nt ? j->n_rtasks : 4 * nt);
    double *cost = malloc(sizeof(double) * (size_t)most);
    if (!cost)
        return; /* oc_split's counts */
    int affine = cpu_pool_affine(c->pool);
    double best = oc_makespan(j, nt, affine, best_m, best_r, cost);
    int64_t best_n = j->n_mtasks * j->n_rtasks;
    for (int64_t mt = 1; mt <= blocks && mt <= 4 * nt; mt++) {
        int64_t mchunk = (blocks + mt - 1) / mt * 32;
        for (int64_t rt = 1; rt <= j->OH && rt <= 4 * nt; rt++) {
            int64_t rows = (j->OH + rt - 1) / rt;
            if (!j->linear && 2 * j->OW <= OC_NP && rows < j->OH)
                rows += rows & 1; /* whole two-row tiles */
            int64_t n = ((j->Mg + mchunk - 1) / mchunk) * ((j->OH + rows - 1) / rows);
            double ms = oc_makespan(j, nt, affine, mchunk, rows, cost);
            if (ms < best * 0.995 || (ms <= best * 1.005 && n < best_n)) {
                best = ms;
                best_n = n;
                best_m = mchunk;
                best_r = rows;
            }
        }
    }
    free(cost);
    j->mchunk = best_m;
    j->n_mtasks = (j->Mg + best_m - 1) / best_m;
    j->rows_per_task = best_r;
    j->n_rtasks = (j->OH + best_r - 1) / best_r;
}

int cpu_conv_oc(cpu_ctx *c, const cpu_dconv *d)
{
    oc_job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    const mb_view *v = d->v;
    j->d = d;
    j->c = c;
    j->Cg = d->C / d->G;
    j->Mg = d->M / d->G;
    j->taps = d->kh * d->kw;
    j->K = j->Cg * j->taps;
    j->OH = d->r.h1 - d->r.h0;
    j->OW = d->r.w1 - d->r.w0;
    j->P = j->OH * j->OW;
    const mb_view *rv = d->post ? d->post->res : NULL;
    const mb_node *act = d->act;
    if (rv && d->r.h0 == 0 && d->r.w0 == 0 && !rv->h_off && !rv->w_off && rv->t->dims[0] == d->n_batch &&
        rv->t->dims[1] == d->M && rv->t->dims[2] == j->OH && rv->t->dims[3] == j->OW) {
        j->res = rv->t->data;
        j->res_first = d->post->res_first;
        act = d->post->act;
    }
    if (act) {
        j->act = act->type == MB_OP_RELU        ? OC_ACT_RELU
                 : act->type == MB_OP_CLIP      ? OC_ACT_CLIP
                 : act->type == MB_OP_LEAKYRELU ? OC_ACT_LEAKY
                                                : OC_ACT_NONE;
        j->alpha = act->a.alpha;
        j->beta = act->a.beta;
        if (j->res && j->act == OC_ACT_NONE)
            j->late_act = act;
    }
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    int inplace = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->pt == 0 && d->pl == 0;
    if (inplace) {
        j->PW = vw;
        j->phy = j->phx = 1;
        j->cstride = j->pstride = vh * vw;
        j->nstride = d->C * j->cstride;
        j->xbase = v->t->data + (d->r.h0 - v->h_off) * vw + (d->r.w0 - v->w_off);
        j->toff[0] = 0;
    } else {
        /* the direct kernel's frame, planes unpadded */
        cpu_frame f;
        cpu_frame_geometry(d, 1, &f, j->toff);
        j->phy = f.phy;
        j->phx = f.phx;
        j->PW = f.PW;
        j->PHr = f.PHr;
        j->pstride = f.pstride;
        j->cstride = f.cstride;
        j->nstride = f.nstride;
        float *xp = cpu_shared(c, (size_t)(d->n_batch * j->nstride));
        if (!xp) {
            free(j);
            return -1;
        }
        j->xbase = f.x = xp;
        cpu_run(c, (int)(d->n_batch * d->C), cpu_frame_fill_task, &f, (double)d->n_batch * d->C * j->cstride / 4.0);
    }
    j->linear = j->PW == j->OW;
    int64_t wb = oc_env_int("MECBED_CPU_CONV_OC_WKB", OC_WCHUNK_BYTES / 1024) * (int64_t)1024;
    j->kc = wb / (j->taps * 32 * (int64_t)sizeof(float));
    if (j->kc < 1)
        j->kc = 1;
    if (j->kc > j->Cg)
        j->kc = j->Cg;
    j->wpf = oc_env_int("MECBED_CPU_CONV_OC_WPF", 1);
    oc_split(c, j);
    oc_balance(c, j);
    int n_tasks = (int)(d->n_batch * d->G * j->n_mtasks * j->n_rtasks);
    cpu_run(c, n_tasks, oc_task, j, (double)d->n_batch * d->M * j->P * j->K / 100.0);
    int rc = j->failed ? -1 : 0;
    free(j);
    return rc;
}

#else

int cpu_conv_oc(cpu_ctx *c, const cpu_dconv *d)
{
    (void)c;
    (void)d;
    return -1;
}

#endif
