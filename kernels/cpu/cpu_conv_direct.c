/* Direct convolution on AVX-512: no im2col, no sgemm.
 *
 * The input region a conv needs is copied once into a zero-padded buffer
 * split by stride phase ("Xp": per input channel, one plane per (y mod sh,
 * x mod sw) phase a tap reads, each PHr x PW). In that frame tap (ky, kx) of
 * output pixel q = oy*PW + ox reads Xp[c][phase(ky, kx)][q + (ky/sh)*PW +
 * kx/sw]: for every tap a contiguous run of pixels, whatever the stride, so
 * the micro-kernel loads 16 pixels with one unaligned vector load. PW is the
 * output width plus (kw-1)/sw, so (kw-1)/sw columns per frame row are
 * computed and thrown away (3.4 % at 56 wide, 22 % at 7 wide); their lanes
 * are masked off when stored. A 1x1 stride-1 conv without padding reads the
 * input view in place (frame = the view's rows).
 *
 * Micro-kernel: MR output channels x NV vectors of 16 frame pixels (14 x 2 =
 * 28 zmm accumulators), loop over k = (c, ky, kx): NV loads of the input,
 * MR weight broadcasts, MR*NV FMAs. Weights: where a task has enough pixels
 * to run over, its output channels' weights are packed into [K][mr] panels
 * in its scratch (one sequential stream); else broadcast straight from the
 * mr OIHW rows. Nothing is cached per model. Accumulators start at the
 * bias; Relu, Clip and LeakyRelu are applied in registers; other fused
 * activations run over each task's rows afterwards.
 * Each element is bias + sum over k in order, in float with FMA: independent
 * of region, tiling, packing and threads (tiles and thread counts are
 * bit-exact).
 *
 * Tasks: (batch, group, output-channel chunk, chunk of output rows), rows
 * sized so a chunk's Xp stays within L2; within a task, output channels in
 * groups whose weights fit L2; within a group, pixel tiles (up to 16 blocks
 * of 32 pixels where K is small, else single blocks) with the channel
 * blocks outer inside a tile (dc_tile_blocks).
 *
 * 1x1 layers on maps of 256+ output pixels: K split into chunks of 256
 * input channels (partial sums stored in the output and reloaded, bias in
 * the first chunk, residual and activation after the last: still bit-exact),
 * each (tile, chunk)'s input copied block-major first (dc_xpack) and the
 * next one's prefetched (dc_xpf).
 *
 * Strided convs (8+ input channels a group, or K <= 64): each tile's input
 * copied from the frame k-major first (dc_kpack), which the kernel then
 * reads as one run per block (at stride 2 a block reads 4 phase planes a
 * channel: too many streams). Output channels go in even blocks of at most
 * DC_MR (dc_block_rows: 64 = 13 x 4 + 12, not 14 x 4 + 8). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DC_X86 1
#define DC_TARGET __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma,bmi2")))
#else
#define DC_X86 0
#endif

/* Register tile: DC_MR output channels x DC_NV vectors of 16 pixels (28
 * accumulators of 32 zmm). Each input vector loaded serves DC_MR FMAs, which
 * is what bounds the 1x1 and stride-2 layers (their input streams from L2):
 * measured on the bench's conv rows (Xeon, AVX-512), 14 x 2 beat 12 x 2 and
 * 8 x 3 on 10 of 12 shapes, by up to 25 % on 7x7 and stride-2 maps. */
#define DC_MR 14
#define DC_MR_NAME 14 /* DC_MR spelled out for token pasting */
#define DC_NV 2
#define DC_L2_BYTES (1024 * 1024) /* a task's share of Xp */
#ifndef DC_W_BYTES
#define DC_W_BYTES (256 * 1024) /* weights of one group of output channels */
#endif
#ifndef DC_PACK_MIN_PX_BIGK
#define DC_PACK_MIN_PX_BIGK 512 /* the same for K >= 2048 */
#endif
#ifndef DC_PACK_MIN_PX
#define DC_PACK_MIN_PX 1024 /* frame pixels per task from which weights are packed */
#endif
#define DC_MAX_TAPS 4096
#ifndef DC_X1_MIN_K
#define DC_X1_MIN_K 64 /* 1x1 layers from which the input is packed and prefetched (dc_xpack, dc_xpf) */
#endif
#ifndef DC_X1_MIN_PX
#define DC_X1_MIN_PX 256 /* output pixels from which a 1x1 layer's K is split, its input packed and prefetched */
#endif
#ifndef DC_XPACK_PACK_PX
#define DC_XPACK_PACK_PX 256
#endif
#ifndef DC_KPACK_MIN_CG
/* Strided convs whose tiles' input is packed k-major (dc_kpack): those
 * with DC_KPACK_MIN_CG+ input channels a group, or K <= DC_KPACK_MAX_K.
 * With 32 channels (textdet's c2) a block's frame rows are 128 streams and
 * packing pays (-21 %). With 3 (the stems) they are a dozen that stay in
 * L1: the 7x7/2 stems (K = 147, each input pixel copied ~12 times) ran
 * 7-13 % slower packed, also with packed tiles of 40 KiB, while the 3x3/2
 * stem at 640x640 (K = 27) still gained 7 % (the flat k loop). */
#define DC_KPACK_MIN_CG 8
#endif
#ifndef DC_KPACK_MAX_K
#define DC_KPACK_MAX_K 64
#endif
#define DC_TILE_MAX 32     /* pixel blocks per tile, at most (dc_seg arrays on the stack) */
#define DC_TILE_DEFAULT 16 /* 512 pixels */
#define DC_TILE_BYTES (128 * 1024)
#define DC_TILE_W_BYTES (36 * 1024) /* K <= 658 */
#define DC_WPF_BYTES (32 * 1024)    /* prefetch unpacked weight blocks up to this size (K <= 585) */

/* Input channels per chunk of a 1x1 layer's K on the direct kernel
 * (dc_task); 0: K is not split. MECBED_CPU_1X1_KBLOCK=N sets it, =0 or
 * =off switches the split off (and with it the direct kernel for the 1x1
 * layers that went to sgemm before it: cpu_conv.c), for A/B. */
#ifndef DC_KCHUNK_DEFAULT
#define DC_KCHUNK_DEFAULT 256
#endif
int cpu_conv_1x1_kblock(void)
{
    static int kb = -2;
    int v = __atomic_load_n(&kb, __ATOMIC_RELAXED);
    if (v == -2) {
        const char *e = getenv("MECBED_CPU_1X1_KBLOCK");
        v = e && *e ? atoi(e) : DC_KCHUNK_DEFAULT; /* "off": 0 */
        if (v < 0)
            v = 0;
        __atomic_store_n(&kb, v, __ATOMIC_RELAXED);
    }
    return DC_X86 ? v : 0;
}

int cpu_conv_direct_available(void)
{
#if DC_X86
    /* computed once; backends on other threads may race to store the same value */
    static int avail = -1;
    int a = __atomic_load_n(&avail, __ATOMIC_RELAXED);
    if (a < 0) {
        const char *e = getenv("MECBED_CPU_CONV");
        __builtin_cpu_init();
        a = __builtin_cpu_supports("avx512f") && !(e && strcmp(e, "gemm") == 0);
        __atomic_store_n(&avail, a, __ATOMIC_RELAXED);
    }
    return a;
#else
    return 0;
#endif
}

#if DC_X86

typedef struct dc_job {
    const cpu_dconv *d;
    cpu_ctx *c;
    int64_t Cg, Mg, K, OH, OW, P;
    int64_t PW, PHr, pstride, cstride; /* frame width, rows per phase plane, floats per plane/channel */
    int64_t c0;                          /* frame column of output column 0 */
    int phy, phx;                        /* phases along y and x in Xp */
    const float *xbase;                  /* Xp, or the input view (in-place 1x1) */
    int64_t nstride;                     /* floats between batches in xbase (channels: cstride) */
    int64_t row0;                        /* frame row of output row 0 (in-place: view row offset) */
    int taps;
    int64_t toff[DC_MAX_TAPS];
    int act;     /* DC_ACT_*: applied in registers; other activations after each task */
    float alpha, beta;
    /* residual added in registers before act (res != NULL): element e of the
     * output (offset from d->out) adds res[e]; res_first: res + y */
    const float *res;
    int res_first;
    const mb_node *late_act; /* with res: an activation not done in registers, after each task */
    int64_t rows_per_task, n_rtasks, mchunk, n_mtasks;
    volatile int failed; /* a task found no scratch memory */
    int64_t pack_px, pack_px_bigk; /* frame pixels per task from which weights are packed */
    int wpf;             /* prefetch the next channel block's unpacked weights (dc_task) */
    int tile_blocks;     /* pixel blocks per tile (dc_task), 1..DC_TILE_MAX */
    int merge_segs;      /* merge store segments contiguous in the output (MECBED_CPU_DC_SEGMERGE=0: off) */
    int64_t kchunk;      /* 1x1: input channels per chunk (dc_task), K when not split */
    int xpf;             /* 1x1: prefetch the next chunk's / tile's input rows (dc_xpf) */
    int xpack;           /* 1x1: copy each (tile, chunk)'s input block-major first (dc_xpack) */
    int even;            /* output channels in even blocks (dc_block_rows) */
    int kpack;           /* taps > 1: copy each tile's input k-major first (dc_kpack) */
    int xbig_tasks;
    int64_t xpack_px;    /* with xpack: frame pixels per task from which weights are packed */      /* with xpack: rows per task not bounded by DC_L2_BYTES (dc_split) */
} dc_job;

/* Parts of a K-split (dc_task): the accumulators start from the partial
 * sums in the output instead of the bias; they are stored as they are (no
 * residual, no activation: a later chunk adds to them). */
enum { DC_PART_LOAD = 1, DC_PART_RAW = 2, DC_PART_FLAT = 4 };

/* Store the masks and plane offsets for the lanes of vector [q, q+16) that
 * fall on valid output pixels: one (mask, offset) per frame row it touches.
 * Lane l goes to out + off + l. */
typedef struct dc_seg {
    int n;
    __mmask16 mask[17];
    int64_t off[17];
} dc_seg;

static void dc_segments(const dc_job *j, int64_t q, int64_t qend, dc_seg *s)
{
    s->n = 0;
    int64_t lane = 0;
    while (lane < 16 && q + lane < qend) {
        int64_t fq = q + lane, fr = fq / j->PW, fc = fq - fr * j->PW;
        int64_t run = j->PW - fc; /* lanes left in this frame row */
        if (run > 16 - lane)
            run = 16 - lane;
        if (run > qend - fq)
            run = qend - fq;
        int64_t lo = j->c0 - fc > 0 ? j->c0 - fc : 0;           /* first valid lane in run */
        int64_t hi = j->c0 + j->OW - fc < run ? j->c0 + j->OW - fc : run; /* end of valid lanes */
        if (hi > lo) {
            unsigned m = ((1u << (hi - lo)) - 1u) << (lane + lo);
            /* output pixel of lane L: (fr - row0) * OW + (fc + L - lane) - c0 */
            int64_t off = (fr - j->row0) * j->OW + fc - lane - j->c0;
            if (s->n > 0 && s->off[s->n - 1] == off && j->merge_segs) {
                /* the frame row's next lanes land right after the previous ones in the
                 * output (no throw-away columns between): one store covers both */
                s->mask[s->n - 1] |= (__mmask16)m;
            } else {
                s->mask[s->n] = (__mmask16)m;
                s->off[s->n] = off;
                s->n++;
            }
        }
        lane += run;
    }
}

/* The micro-kernel: MR output channels (weights rows w + i*K), NV vectors
 * of frame pixels from x (channel 0 of the group, pixel q already added),
 * lm masking the last vector's loads. Accumulators start at the bias (may be
 * NULL); the activation in registers (dc_act). Stores through seg into out (channel
 * stride P). */
/* Activations applied in registers, each with the same comparisons and
 * operand order as cpu_unary_span, so fused and unfused runs agree bit for
 * bit (NaN included). */
enum { DC_ACT_NONE, DC_ACT_RELU, DC_ACT_CLIP, DC_ACT_LEAKY };

DC_TARGET static inline __attribute__((always_inline)) __m512 dc_act(const dc_job *j, __m512 x)
{
    switch (j->act) {
    case DC_ACT_RELU: /* x > 0 ? x : 0 */
        return _mm512_max_ps(x, _mm512_setzero_ps());
    case DC_ACT_CLIP: /* v = x < lo ? lo : x; v > hi ? hi : v */
        return _mm512_min_ps(_mm512_set1_ps(j->beta), _mm512_max_ps(_mm512_set1_ps(j->alpha), x));
    case DC_ACT_LEAKY: { /* x >= 0 ? x : alpha * x */
        __mmask16 neg = ~_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
        return _mm512_mask_mul_ps(x, neg, _mm512_set1_ps(j->alpha), x);
    }
    default:
        return x;
    }
}
DC_TARGET static inline __attribute__((always_inline)) void dc_kernel(const dc_job *j, int MR, int NV, int PK,
                                                                      const float *x,
                                                                      const float *w, const float *bias, __mmask16 lm,
                                                                      const dc_seg *seg, float *out, int64_t nk,
                                                                      int part, int64_t xcs)
{
    __m512 acc[DC_MR][DC_NV];
    /* 1x1: nk input channels from x and w (a chunk of K, or all of it),
     * xcs floats apart (the frame's channel stride, or a packed tile's) */
    /* flat: x holds nk k-values xcs apart, one run of pixels each (1x1, or
     * a tile's input copied k-major, dc_kpack) */
    const int flat = j->taps == 1 || (part & DC_PART_FLAT);
    const int64_t K = j->K, cs = xcs, nc = flat ? nk : j->Cg;
    (void)K;
    if (part & DC_PART_LOAD) {
        /* the previous chunks' sums, lane for lane where they were stored
         * (the lanes no segment covers are never stored: zeros) */
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) {
                const dc_seg *s = &seg[v];
                __m512 a = _mm512_setzero_ps();
                for (int e = 0; e < s->n; e++)
                    a = _mm512_mask_loadu_ps(a, s->mask[e], out + i * j->P + s->off[e]);
                acc[i][v] = a;
            }
        }
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 b = bias ? _mm512_set1_ps(bias[i]) : _mm512_setzero_ps();
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[i][v] = b;
        }
    }
    if (flat) {
        const float *xp = x + j->toff[0];
        for (int64_t k = 0; k < nc; k++, xp += cs) {
            __m512 b[DC_NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV - 1; v++)
                b[v] = _mm512_loadu_ps(xp + 16 * v);
            b[NV - 1] = _mm512_maskz_loadu_ps(lm, xp + 16 * (NV - 1));
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                __m512 a = _mm512_set1_ps(PK ? w[k * MR + i] : w[i * K + k]);
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
            }
        }
    } else {
        const int taps = j->taps;
        const float *wk = w;
        for (int64_t c = 0; c < nc; c++, x += cs) {
            for (int t = 0; t < taps; t++, wk += PK ? MR : 1) {
                const float *xp = x + j->toff[t];
                __m512 b[DC_NV];
#pragma GCC unroll 4
                for (int v = 0; v < NV - 1; v++)
                    b[v] = _mm512_loadu_ps(xp + 16 * v);
                b[NV - 1] = _mm512_maskz_loadu_ps(lm, xp + 16 * (NV - 1));
#pragma GCC unroll 16
                for (int i = 0; i < MR; i++) {
                    __m512 a = _mm512_set1_ps(PK ? wk[i] : wk[i * K]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++)
                        acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
                }
            }
        }
    }
    if (part & DC_PART_RAW) { /* a partial sum: stored as it is */
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                for (int e = 0; e < seg[v].n; e++)
                    _mm512_mask_storeu_ps(out + i * j->P + seg[v].off[e], seg[v].mask[e], acc[i][v]);
        }
        return;
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const dc_seg *s = &seg[v];
            if (j->res) { /* residual: the unfused Add's expression, then the activation */
                const float *rb = j->res + (out - j->d->out) + i * j->P;
                for (int e = 0; e < s->n; e++) {
                    __m512 r = _mm512_maskz_loadu_ps(s->mask[e], rb + s->off[e]);
                    __m512 y = j->res_first ? _mm512_add_ps(r, acc[i][v]) : _mm512_add_ps(acc[i][v], r);
                    _mm512_mask_storeu_ps(out + i * j->P + s->off[e], s->mask[e], dc_act(j, y));
                }
                continue;
            }
            __m512 y = dc_act(j, acc[i][v]);
            for (int e = 0; e < s->n; e++)
                _mm512_mask_storeu_ps(out + i * j->P + s->off[e], s->mask[e], y);
        }
    }
}

#define DC_KERNEL(MR, NV, PK)                                                                                      \
    DC_TARGET static void dc_k##MR##_##NV##_##PK(const dc_job *j, const float *x, const float *w,                  \
                                                  const float *bias, __mmask16 lm, const dc_seg *seg, float *out, \
                                                  int64_t nk, int part, int64_t xcs)                             \
    {                                                                                                              \
        dc_kernel(j, MR, NV, PK, x, w, bias, lm, seg, out, nk, part, xcs);                                         \
    }
#if DC_NV != 2
#error "the kernel tables below are written out for DC_NV == 2"
#endif
#define DC_KERNELS_MR(MR) DC_KERNEL(MR, 1, 0) DC_KERNEL(MR, 2, 0) DC_KERNEL(MR, 1, 1) DC_KERNEL(MR, 2, 1)
#define DC_ROW_(MR, PK) {dc_k##MR##_1_##PK, dc_k##MR##_2_##PK}
#define DC_ROW(MR, PK) DC_ROW_(MR, PK)
DC_KERNELS_MR(DC_MR_NAME)
DC_KERNELS_MR(13)
DC_KERNELS_MR(12)
DC_KERNELS_MR(11)
DC_KERNELS_MR(10)
DC_KERNELS_MR(9)
DC_KERNELS_MR(8)
DC_KERNELS_MR(4)
DC_KERNELS_MR(2)
DC_KERNELS_MR(1)

typedef void (*dc_kfn)(const dc_job *, const float *, const float *, const float *, __mmask16, const dc_seg *, float *,
                       int64_t, int, int64_t);
#if DC_MR != 14
#error "the kernel tables below are written out for DC_MR == 14"
#endif
/* [weights packed][output channels 14, 13, ..., 8, 4, 2, 1][vectors 1..DC_NV] */
static const dc_kfn dc_kernels[2][10][DC_NV] = {
    {DC_ROW(DC_MR_NAME, 0), DC_ROW(13, 0), DC_ROW(12, 0), DC_ROW(11, 0), DC_ROW(10, 0), DC_ROW(9, 0), DC_ROW(8, 0),
     DC_ROW(4, 0), DC_ROW(2, 0), DC_ROW(1, 0)},
    {DC_ROW(DC_MR_NAME, 1), DC_ROW(13, 1), DC_ROW(12, 1), DC_ROW(11, 1), DC_ROW(10, 1), DC_ROW(9, 1), DC_ROW(8, 1),
     DC_ROW(4, 1), DC_ROW(2, 1), DC_ROW(1, 1)},
};

/* Geometry of the stride-phase frame (cpu_impl.h): PW is the output width
 * plus (kw-1)/sw throw-away columns, PHr the output rows plus (kh-1)/sh. */
void cpu_frame_geometry(const cpu_dconv *d, int64_t align, cpu_frame *f, int64_t *toff)
{
    f->d = d;
    f->x = NULL;
    f->OH = d->r.h1 - d->r.h0;
    f->OW = d->r.w1 - d->r.w0;
    f->phy = d->sh < d->kh ? d->sh : d->kh;
    f->phx = d->sw < d->kw ? d->sw : d->kw;
    f->PW = f->OW + (d->kw - 1) / d->sw;
    f->PHr = f->OH + (d->kh - 1) / d->sh;
    f->pstride = (f->PHr * f->PW + align - 1) / align * align;
    f->cstride = f->pstride * f->phy * f->phx;
    f->nstride = d->C * f->cstride;
    for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++)
            toff[ky * d->kw + kx] = ((ky % d->sh) * f->phx + kx % d->sw) * f->pstride + (ky / d->sh) * f->PW + kx / d->sw;
}

/* Copy the input region of (batch n, input channel ch) into its phase
 * planes, zeros where the taps read padding. */
CPU_SIMD_CLONES /* the stride-2 gathers vectorise (permutes) on AVX-512 */
void cpu_frame_fill_task(void *arg, int t, int thread)
{
    (void)thread;
    const cpu_frame *f = arg;
    const cpu_dconv *d = f->d;
    const mb_view *v = d->v;
    int64_t n = t / d->C, ch = t % d->C;
    float *dst0 = f->x + n * f->nstride + ch * f->cstride;
    const int64_t vw = v->t->dims[3];
    const float *plane = v->t->data + (n * d->C + ch) * v->t->dims[2] * vw;
    for (int py = 0; py < f->phy; py++)
        for (int px = 0; px < f->phx; px++) {
            float *dst = dst0 + (py * f->phx + px) * f->pstride;
            int64_t ix0 = d->r.w0 * d->sw - d->pl + px; /* input column of frame column 0 */
            /* frame columns [xlo, xhi) read inside the image */
            int64_t xlo = ix0 >= 0 ? 0 : (-ix0 + d->sw - 1) / d->sw;
            int64_t xhi = d->full_w - ix0 <= 0 ? 0 : (d->full_w - ix0 + d->sw - 1) / d->sw;
            /* columns and rows of this phase that a valid output reads (the
             * view need not cover more); the rest of the frame is zeros */
            int64_t xneed = f->OW + (d->kw - 1 - px) / d->sw, yneed = f->OH + (d->kh - 1 - py) / d->sh;
            if (xhi > xneed)
                xhi = xneed;
            if (xlo > xhi)
                xlo = xhi;
            for (int64_t ry = 0; ry < f->PHr; ry++) {
                float *row = dst + ry * f->PW;
                int64_t iy = (d->r.h0 + ry) * d->sh - d->pt + py;
                if (iy < 0 || iy >= d->full_h || ry >= yneed) {
                    memset(row, 0, sizeof(float) * (size_t)f->PW);
                    continue;
                }
                const float *src = plane + (iy - v->h_off) * vw + (ix0 - v->w_off);
                memset(row, 0, sizeof(float) * (size_t)xlo);
                if (d->sw == 1) {
                    memcpy(row + xlo, src + xlo, sizeof(float) * (size_t)(xhi - xlo));
                } else if (d->sw == 2) { /* constant stride: vectorised */
                    for (int64_t x = xlo; x < xhi; x++)
                        row[x] = src[2 * x];
                } else {
                    for (int64_t x = xlo; x < xhi; x++)
                        row[x] = src[x * d->sw];
                }
                memset(row + xhi, 0, sizeof(float) * (size_t)(f->PW - xhi));
            }
            memset(dst + f->PHr * f->PW, 0, sizeof(float) * (size_t)(f->pstride - f->PHr * f->PW));
        }
}

/* Output channels per micro-kernel call for `left` channels still to do:
 * the fewest blocks of at most DC_MR, as even as they come (64: 13, 13, 13,
 * 13, 12; 16: 8, 8; 128: 13 x 8, 12, 12), so no block is left with the 2 or
 * 4 channels whose 4 or 8 accumulators wait on FMA latency and load a
 * vector per 2 or 4 FMAs (16 = 14 + 2 ran the 2-block about as long as the
 * 14). Under 8 left (M < 8 a group): 4, 2, 1. dc_pack and dc_task walk the
 * same sequence. MECBED_CPU_DC_EVEN=0 (read on every conv): DC_MR, 8, 4,
 * 2, 1 (the old tails). Which channels share a call does not change any
 * element's sum: the same bits either way. */
static inline int dc_block_rows(const dc_job *j, int64_t left)
{
    if (left >= 8 && j->even) {
        int64_t blocks = (left + DC_MR - 1) / DC_MR;
        return (int)((left + blocks - 1) / blocks);
    }
    return left >= DC_MR ? DC_MR : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

static inline int dc_block_index(int mr)
{
    return mr >= 8 ? DC_MR - mr : mr == 4 ? 7 : mr == 2 ? 8 : 9;
}

/* One [K][14] panel from 14 rows of K floats (w, row stride K): 16 k at a
 * time as a 16x16 in-register transpose (rows 14 and 15 zero), each
 * column stored as 14 floats; the K % 16 rest one float at a time. About a
 * third of the scalar loop's time (64 shuffles, 14 loads and 16 stores per
 * 224 weights); the values are only moved, so packed results are
 * unchanged. */
DC_TARGET static void dc_pack14(const float *w, int64_t K, float *p, int mr)
{
    int64_t k = 0;
    const __mmask16 sm = (__mmask16)((1u << mr) - 1u);
    for (; k + 16 <= K; k += 16) {
        __m512 r[16], t[16], u[16];
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_loadu_ps(w + i * K + k) : _mm512_setzero_ps();
        for (int i = 0; i < 8; i++) { /* per 128-bit lane: a0 b0 a1 b1 / a2 b2 a3 b3 */
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int i = 0; i < 4; i++) { /* u[4i + c] lane L: rows 4i..4i+3 of column 4L + c */
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
            /* column 4L + c: lanes L of u[c], u[4+c], u[8+c], u[12+c] */
            _mm512_mask_storeu_ps(p + (k + c) * mr, sm, _mm512_shuffle_f32x4(v0, v2, 0x88));
            _mm512_mask_storeu_ps(p + (k + 4 + c) * mr, sm, _mm512_shuffle_f32x4(v1, v3, 0x88));
            _mm512_mask_storeu_ps(p + (k + 8 + c) * mr, sm, _mm512_shuffle_f32x4(v0, v2, 0xdd));
            _mm512_mask_storeu_ps(p + (k + 12 + c) * mr, sm, _mm512_shuffle_f32x4(v1, v3, 0xdd));
        }
    }
    for (; k < K; k++)
        for (int i = 0; i < mr; i++)
            p[k * mr + i] = w[i * K + k];
}

static int dc_fastpack_env = -2;
static int dc_env_int(const char *name, int *cache);

/* Weights of n output channels (OIHW rows from w) into micro-kernel panels:
 * per block of mr channels (dc_block_rows), [K][mr], so the kernel
 * broadcasts from one sequential stream. Panels follow each other, the block
 * starting at channel i at offset i*K. Packed by each task for its group of
 * channels into its own scratch: cheap next to the FMAs (K*mr loads and
 * stores per 2*K*mr*pixels flops) and nothing to keep per model. */
static void dc_pack(const dc_job *j, const float *w, int64_t n, float *packed)
{
    const int64_t K = j->K;
    const int fast = dc_env_int("MECBED_CPU_DC_FASTPACK", &dc_fastpack_env) != 0; /* A/B: =0 scalar */
    for (int64_t m = 0; m < n;) {
        int mr = dc_block_rows(j, n - m);
        float *p = packed + m * K;
        if (mr >= 8 && DC_MR == 14 && fast) { /* 8..14 rows: the same transpose, mr lanes stored */
            dc_pack14(w + m * K, K, p, mr);
        } else {
            for (int i = 0; i < mr; i++) {
                const float *row = w + (m + i) * K;
                for (int64_t k = 0; k < K; k++)
                    p[k * mr + i] = row[k];
            }
        }
        m += mr;
    }
}

/* Software prefetch (T1) of the input rows the next (K chunk, pixel tile)
 * of a 1x1 layer reads: per input channel a run of a few lines, a plane
 * apart, more streams than the hardware prefetchers follow. */
typedef struct dc_xpf {
    const float *x;  /* channel ka, pixel qa */
    int64_t ka, kb, per; /* channels left to prefetch [ka, kb), per channel block */
    int64_t bytes;   /* of each channel's run */
} dc_xpf;
static void dc_xpf_next(const dc_job *j, const float *x, int64_t qt, int64_t qte, int64_t qend, int64_t k0, int64_t nk,
                        int64_t nblocks, dc_xpf *pf)
{
    int64_t qa = qt, qe = qte, ka = k0 + nk;
    if (ka >= j->K) { /* the next tile's first chunk */
        qa = qte;
        qe = qte + (qte - qt) < qend ? qte + (qte - qt) : qend;
        ka = 0;
    }
    if (qa >= qe)
        return;
    int64_t kb = ka + j->kchunk < j->K ? ka + j->kchunk : j->K;
    pf->x = x + qa;
    pf->ka = ka;
    pf->kb = kb;
    pf->per = (kb - ka + nblocks - 1) / nblocks;
    pf->bytes = (qe - qa) * (int64_t)sizeof(float);
}
static void dc_xpf_step(const dc_job *j, dc_xpf *pf)
{
    int64_t e = pf->ka + pf->per < pf->kb ? pf->ka + pf->per : pf->kb;
    for (; pf->ka < e; pf->ka++) {
        const char *r = (const char *)(pf->x + pf->ka * j->cstride);
        for (int64_t o = 0; o < pf->bytes; o += 64)
            _mm_prefetch(r + o, _MM_HINT_T1);
        _mm_prefetch(r + pf->bytes - 1, _MM_HINT_T1);
    }
}

/* A 1x1 layer's input under a pixel tile (nb blocks of 32 frame pixels
 * from qt), nk channels cs apart from x, into xb as [block][channel][32]:
 * the kernel then reads each block's channels as one sequential run
 * instead of one or two lines per plane (planes a multiple of 4 KiB apart
 * map to a few L1 sets). Values are only moved: results unchanged. */
DC_TARGET static void dc_xpack(const dc_job *j, const float *x, int64_t qt, int64_t qend, int nb, int64_t nk, float *xb)
{
    const int64_t cs = j->cstride;
    for (int b = 0; b < nb; b++) {
        int64_t q = qt + (int64_t)b * 32, npx = qend - q < 32 ? qend - q : 32;
        const float *src = x + q;
        float *dst = xb + (int64_t)b * nk * 32;
        if (npx == 32) {
            for (int64_t k = 0; k < nk; k++, src += cs, dst += 32) {
                _mm512_storeu_ps(dst, _mm512_loadu_ps(src));
                _mm512_storeu_ps(dst + 16, _mm512_loadu_ps(src + 16));
            }
        } else {
            __mmask16 m0 = (__mmask16)(npx >= 16 ? 0xffffu : (1u << npx) - 1u);
            __mmask16 m1 = (__mmask16)(npx >= 32 ? 0xffffu : npx > 16 ? (1u << (npx - 16)) - 1u : 0u);
            for (int64_t k = 0; k < nk; k++, src += cs, dst += 32) {
                _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(m0, src));
                _mm512_storeu_ps(dst + 16, _mm512_maskz_loadu_ps(m1, src + 16));
            }
        }
    }
}

/* The same for taps > 1 (j->kpack): each block's K = (c, ky, kx) runs of
 * 32 frame pixels, in the kernel's k order, as [block][k][32]. In the
 * frame a block reads, per input channel, one or two rows of every phase
 * plane (18 cache lines per channel at stride 2, twice the lines per k of
 * stride 1, from 4 planes a channel: more streams than the prefetchers
 * follow); packed, the kernel reads one sequential run per block, and each
 * channel block of the tile reuses it. Values only moved: same bits. */
DC_TARGET static void dc_kpack(const dc_job *j, const float *x, int64_t qt, int64_t qend, int nb, float *xb)
{
    const int64_t cs = j->cstride;
    const int taps = j->taps;
    for (int b = 0; b < nb; b++) {
        int64_t q = qt + (int64_t)b * 32, npx = qend - q < 32 ? qend - q : 32;
        const float *src = x + q;
        float *dst = xb + (int64_t)b * j->K * 32;
        __mmask16 m0 = (__mmask16)(npx >= 16 ? 0xffffu : (1u << npx) - 1u);
        __mmask16 m1 = (__mmask16)(npx >= 32 ? 0xffffu : npx > 16 ? (1u << (npx - 16)) - 1u : 0u);
        for (int64_t c = 0; c < j->Cg; c++, src += cs)
            for (int t = 0; t < taps; t++, dst += 32) {
                const float *s = src + j->toff[t];
                _mm512_storeu_ps(dst, _mm512_maskz_loadu_ps(m0, s));
                _mm512_storeu_ps(dst + 16, _mm512_maskz_loadu_ps(m1, s + 16));
            }
    }
}

DC_TARGET static void dc_task(void *arg, int t, int thread)
{
    const dc_job *j = arg;
    const cpu_dconv *d = j->d;
    int rt = (int)(t % j->n_rtasks);
    t /= (int)j->n_rtasks;
    int mt = (int)(t % j->n_mtasks);
    t /= (int)j->n_mtasks;
    int64_t g = t % d->G, n = t / d->G;
    int64_t y0 = rt * j->rows_per_task, y1 = y0 + j->rows_per_task < j->OH ? y0 + j->rows_per_task : j->OH;
    int64_t m0 = mt * j->mchunk, m1 = m0 + j->mchunk < j->Mg ? m0 + j->mchunk : j->Mg;
    /* frame pixels of output rows [y0, y1): whole frame rows */
    int64_t q0 = (j->row0 + y0) * j->PW, qend = (j->row0 + y1) * j->PW;
    const float *x = j->xbase + n * j->nstride + g * j->Cg * j->cstride;
    int64_t mg0 = g * j->Mg;
    float *obase = d->out + (n * d->M + mg0) * j->P;
    const int step = 16 * DC_NV;
    /* Output channels in groups whose weights stay in L2 (DC_W_BYTES);
     * within a group, pixel blocks outer: a block's input is read from L1/L2
     * once per output-channel block while the group's weight rows stream
     * from L2. (Splitting the input channels into L1-sized chunks instead,
     * partial sums stored and reloaded, measured slower on every bench
     * shape until the input was packed too: now done for 1x1 layers,
     * j->kchunk.) */
    /* (with K split, what stays in L2 across a tile is one chunk's weights) */
    int64_t mgrp = DC_W_BYTES / (j->kchunk * (int64_t)sizeof(float)) / DC_MR * DC_MR;
    if (mgrp < DC_MR)
        mgrp = DC_MR;
    int64_t ngrp = (m1 - m0 + mgrp - 1) / mgrp; /* even groups, in whole blocks */
    mgrp = ((m1 - m0 + ngrp - 1) / ngrp + DC_MR - 1) / DC_MR * DC_MR;
    /* Packing costs about a cycle per weight; it pays where the task has
     * many pixel blocks to run each panel over (not on 7x7 and 14x14 maps,
     * where packing a 512x4608 layer's weights took as long as half its
     * FMAs). Unpacked, the kernel broadcasts from the mr OIHW rows, which
     * costs most where rows are long (K >= 2048: VGG's 256-channel 3x3 at
     * 56x56 ran 15 % slower unpacked), hence the lower bar there. */
    int pk = qend - q0 >= j->pack_px || (j->K >= 2048 && qend - q0 >= j->pack_px_bigk) ||
             (j->xpack && qend - q0 >= j->xpack_px);
    /* scratch: the packed weights, then (j->xpack) a tile's input chunk */
    size_t wn = pk ? (size_t)(mgrp * j->K + 15) / 16 * 16 : 0;
    size_t xn = j->xpack || j->kpack ? (size_t)(j->tile_blocks * step * j->kchunk) : 0;
    float *buf = wn + xn ? cpu_scratch(j->c, thread, wn + xn) : NULL;
    float *packed = pk ? buf : (float *)d->w, *xb = xn && buf ? buf + wn : NULL;
    if (!packed || (xn && !xb)) {
        ((dc_job *)j)->failed = 1;
        return;
    }
    for (int64_t ma = m0; ma < m1; ma += mgrp) {
        int64_t mb = ma + mgrp < m1 ? ma + mgrp : m1;
        const float *wg = d->w + (mg0 + ma) * j->K;
        if (pk)
            dc_pack(j, wg, mb - ma, packed);
        else
            packed = (float *)wg;
        /* Pixel tiles of j->tile_blocks blocks; within a tile, output-channel
         * blocks outer: a block's 14 output (and residual) planes are written
         * as contiguous runs, a few streams the hardware prefetchers follow,
         * while the tile's input stays in L1/L2. tile_blocks = 1: pixel
         * blocks outer over all channels (each block touches every plane). */
        for (int64_t qt = q0; qt < qend; qt += step * j->tile_blocks) {
            int64_t qte = qt + step * j->tile_blocks < qend ? qt + step * j->tile_blocks : qend;
            int nb = (int)((qte - qt + step - 1) / step);
            dc_seg seg[DC_TILE_MAX][DC_NV];
            for (int b = 0; b < nb; b++) {
                int64_t q = qt + (int64_t)b * step, npx = qend - q < step ? qend - q : step;
                int nv = (int)((npx + 15) / 16);
                for (int v = 0; v < nv; v++)
                    dc_segments(j, q + 16 * v, qend, &seg[b][v]);
            }
            /* 1x1 with K split (j->kchunk < K): per chunk of input
             * channels every channel block over the tile, partial sums
             * through the output; bias first, residual and activation last.
             * Each element still gets bias + sum over k in order, one FMA a
             * term (a stored float reloads unchanged): bit-exact with the
             * unsplit kernel. */
            for (int64_t k0 = 0; k0 < j->K; k0 += j->kchunk) {
                int64_t nk = j->K - k0 < j->kchunk ? j->K - k0 : j->kchunk;
                int part = (k0 > 0 ? DC_PART_LOAD : 0) | (k0 + nk < j->K ? DC_PART_RAW : 0);
                /* the input the next (chunk, tile) reads, spread over this one's channel blocks */
                dc_xpf xq = {0};
                if (j->xpf)
                    dc_xpf_next(j, x, qt, qte, qend, k0, nk, (mb - ma + DC_MR - 1) / DC_MR, &xq);
                if (xb && j->kpack) /* the tile's input, block by block: [b][(c, ky, kx)][32] */
                    dc_kpack(j, x, qt, qend, nb, xb);
                else if (xb) /* the chunk's input under the tile, block by block: [b][k][32] */
                    dc_xpack(j, x + k0 * j->cstride, qt, qend, nb, nk, xb);
                if (j->kpack)
                    part |= DC_PART_FLAT;
            for (int64_t m = ma; m < mb;) {
                int mr = dc_block_rows(j, mb - m);
                if (xq.per > 0)
                    dc_xpf_step(j, &xq);
                const float *bias = d->bias ? d->bias + mg0 + m : NULL;
                const float *wm = packed + (m - ma) * j->K;
                if (!pk && j->wpf && m + mr < mb) {
                    /* unpacked: the next channel block's OIHW rows, one
                     * contiguous run of 14 x K floats, towards L1 while
                     * this block computes (short rows are too many short
                     * streams for the hardware prefetchers); with K split,
                     * the chunk's part of each row */
                    const char *pf = (const char *)(wm + mr * j->K + k0);
                    int rows = nk == j->K ? 1 : dc_block_rows(j, mb - m - mr);
                    int64_t len = (nk == j->K ? dc_block_rows(j, mb - m - mr) : 1) * nk * (int64_t)sizeof(float);
                    for (int r = 0; r < rows; r++, pf += j->K * (int64_t)sizeof(float))
                        for (int64_t o = 0; o < len; o += 64)
                            _mm_prefetch(pf + o, _MM_HINT_T0);
                }
                for (int b = 0; b < nb; b++) {
                    int64_t q = qt + (int64_t)b * step, npx = qend - q < step ? qend - q : step;
                    int nv = (int)((npx + 15) / 16);
                    int64_t last = npx - 16 * (nv - 1);
                    __mmask16 lm = (__mmask16)(last >= 16 ? 0xffffu : ((1u << last) - 1u));
                    const float *xk = xb ? xb + (int64_t)b * nk * step : x + q + k0 * j->cstride;
                    dc_kernels[pk][dc_block_index(mr)][nv - 1](j, xk, wm + k0 * (pk ? mr : 1), bias, lm, seg[b],
                                                               obase + m * j->P, nk, part, xb ? step : j->cstride);
                }
                m += mr;
            }
            }
        }
    }
    if (j->late_act) /* after an in-register residual add */
        for (int64_t m = m0; m < m1; m++) {
            float *o = obase + m * j->P + y0 * j->OW;
            cpu_unary_span(j->late_act->type, j->late_act->a.alpha, j->late_act->a.beta, o, o, (y1 - y0) * j->OW);
        }
    else if (d->post && !j->res) /* residual add (+ activation) on the task's rows, in cache */
        for (int64_t m = m0; m < m1; m++)
            cpu_conv_post(d->post, d->r, n, mg0 + m, y0 * j->OW, obase + m * j->P + y0 * j->OW, (y1 - y0) * j->OW);
    else if (d->act && j->act == DC_ACT_NONE)
        for (int64_t m = m0; m < m1; m++) {
            float *o = obase + m * j->P + y0 * j->OW;
            cpu_unary_span(d->act->type, d->act->a.alpha, d->act->a.beta, o, o, (y1 - y0) * j->OW);
        }
}

/* Split into tasks: rows so that one task's share of Xp fits DC_L2_BYTES,
 * and at least two tasks per thread when threads > 1 (rows, then output
 * channels in multiples of 8). */
static void dc_split(const cpu_ctx *c, dc_job *j)
{
    int64_t per_row = j->Cg * j->phy * j->phx * j->PW * (int64_t)sizeof(float);
    int64_t rows = per_row > 0 ? DC_L2_BYTES / per_row : j->OH;
    if (j->xpack && j->xbig_tasks) /* no frame to keep in L2: tasks as large as the threads allow */
        rows = j->OH;
    if (rows < 1)
        rows = 1;
    if (rows > j->OH)
        rows = j->OH;
    j->mchunk = j->Mg;
    int64_t base = j->d->n_batch * j->d->G;
    int nt = c->n_threads;
    if (nt > 1) {
        int64_t want = 2 * nt;
        /* Where the weights outweigh a task's input (small maps, many
         * channels), split output channels first: every row task streams
         * all the weights, and a row split of a 7x7 map leaves each task a
         * partly filled 32-pixel block (2 threads ran 512x4608 at 7x7 no
         * faster than 1). */
        if (j->Mg * j->K > per_row * rows)
            while (base * ((j->OH + rows - 1) / rows) * ((j->Mg + j->mchunk - 1) / j->mchunk) < want &&
                   j->mchunk >= 16)
                j->mchunk = (j->mchunk / 2 + 7) / 8 * 8;
        int64_t have = base * ((j->OH + rows - 1) / rows) * ((j->Mg + j->mchunk - 1) / j->mchunk);
        if (have < want) {
            int64_t per = (j->OH * base + want - 1) / want;
            rows = per < rows ? (per > 0 ? per : 1) : rows;
        }
        while (base * ((j->OH + rows - 1) / rows) * ((j->Mg + j->mchunk - 1) / j->mchunk) < want && j->mchunk >= 16)
            j->mchunk = (j->mchunk / 2 + 7) / 8 * 8;
    }
    j->rows_per_task = rows;
    j->n_rtasks = (j->OH + rows - 1) / rows;
    /* even row chunks */
    j->rows_per_task = (j->OH + j->n_rtasks - 1) / j->n_rtasks;
    j->n_rtasks = (j->OH + j->rows_per_task - 1) / j->rows_per_task;
    j->n_mtasks = (j->Mg + j->mchunk - 1) / j->mchunk;
}

/* A/B switch, read once (one digit; default 1): MECBED_CPU_DC_SEGMERGE=0
 * stores every frame row's lanes separately. */
static int dc_merge_env = -1;
static int dc_env_on(const char *name, int *cache)
{
    int m = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (m < 0) {
        const char *e = getenv(name);
        m = e && e[0] >= '0' && e[0] <= '9' && !e[1] ? e[0] - '0' : 1;
        __atomic_store_n(cache, m, __ATOMIC_RELAXED);
    }
    return m;
}

/* Pixel blocks per tile. Tiling pays where K is small (few FMAs per output
 * stored: 1x1 layers, the stem, 3x3 on 64 channels) and costs where a
 * channel block's weights (14 x K floats, streamed per pixel block) are
 * large: then the block's input no longer stays in L1 between channel
 * blocks (VGG16's 128-channel 3x3 at 112x112, K = 1152: 8 % slower). So:
 * no tiling when 14 x K floats exceed DC_TILE_W_BYTES; else as many blocks
 * as keep the tile's input (the frame planes of the group's input channels
 * under those pixels) within DC_TILE_BYTES (MECBED_CPU_DC_TILE_KB), at most
 * DC_TILE_DEFAULT. MECBED_CPU_DC_TILE=N fixes N blocks for every layer
 * (1 = no tiling: the order before tiling), for A/B. */
static int dc_tile_env = -2, dc_tile_kb = -2, dc_pack_env = -2, dc_packb_env = -2, dc_wpf_env = -2;
static int dc_env_int(const char *name, int *cache)
{
    int t = __atomic_load_n(cache, __ATOMIC_RELAXED);
    if (t == -2) {
        const char *e = getenv(name);
        t = e && *e ? atoi(e) : -1;
        __atomic_store_n(cache, t, __ATOMIC_RELAXED);
    }
    return t;
}
static int dc_tile_blocks(const dc_job *j)
{
    /* with K split, what a pass over the tile reads is one chunk */
    int64_t K = j->kchunk < j->K ? j->kchunk : j->K, Cg = j->kchunk < j->K ? j->kchunk : j->Cg;
    int t = dc_env_int("MECBED_CPU_DC_TILE", &dc_tile_env);
    if (t < 0 && K * DC_MR * (int64_t)sizeof(float) > DC_TILE_W_BYTES)
        t = 1;
    if (t < 0) {
        int kb = dc_env_int("MECBED_CPU_DC_TILE_KB", &dc_tile_kb);
        int64_t budget = (kb > 0 ? kb : DC_TILE_BYTES / 1024) * (int64_t)1024;
        int64_t per_block = Cg * j->phy * j->phx * 16 * DC_NV * (int64_t)sizeof(float);
        int64_t b = per_block > 0 ? budget / per_block : DC_TILE_DEFAULT;
        t = b > DC_TILE_DEFAULT ? DC_TILE_DEFAULT : (int)b;
    }
    return t < 1 ? 1 : t > DC_TILE_MAX ? DC_TILE_MAX : t;
}

int cpu_conv_direct(cpu_ctx *c, const cpu_dconv *d)
{
    dc_job *j = calloc(1, sizeof *j);
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
    j->merge_segs = dc_env_on("MECBED_CPU_DC_SEGMERGE", &dc_merge_env);
    /* A residual whose layout is the output's (the whole output, a whole
     * tensor of its shape: what the executor's fusion passes) is added in
     * registers before the store; otherwise after each task (cpu_conv_post). */
    const mb_view *rv = d->post ? d->post->res : NULL;
    const mb_node *act = d->act;
    if (rv && d->r.h0 == 0 && d->r.w0 == 0 && !rv->h_off && !rv->w_off && rv->t->dims[0] == d->n_batch &&
        rv->t->dims[1] == d->M && rv->t->dims[2] == j->OH && rv->t->dims[3] == j->OW) {
        j->res = rv->t->data;
        j->res_first = d->post->res_first;
        act = d->post->act;
    }
    if (act) {
        j->act = act->type == MB_OP_RELU        ? DC_ACT_RELU
                 : act->type == MB_OP_CLIP      ? DC_ACT_CLIP
                 : act->type == MB_OP_LEAKYRELU ? DC_ACT_LEAKY
                                                : DC_ACT_NONE;
        j->alpha = act->a.alpha;
        j->beta = act->a.beta;
        if (j->res && j->act == DC_ACT_NONE)
            j->late_act = act;
    }
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    int inplace = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->pt == 0 && d->pl == 0;
    if (inplace) {
        /* the frame is the view itself: rows vw wide, planes vh x vw */
        j->PW = vw;
        j->phy = j->phx = 1;
        j->cstride = j->pstride = vh * vw;
        j->nstride = d->C * j->cstride;
        j->c0 = d->r.w0 - v->w_off;
        j->row0 = d->r.h0 - v->h_off;
        j->xbase = v->t->data;
        j->toff[0] = 0;
    } else {
        cpu_frame f;
        cpu_frame_geometry(d, 16, &f, j->toff);
        j->phy = f.phy;
        j->phx = f.phx;
        j->PW = f.PW;
        j->PHr = f.PHr;
        j->pstride = f.pstride;
        j->cstride = f.cstride;
        j->nstride = f.nstride;
        j->c0 = 0;
        j->row0 = 0;
        /* + slack: the last plane's throw-away columns read up to (kw-1)/sw past it */
        size_t len = (size_t)(d->n_batch * j->nstride), slack = (size_t)(d->kw / d->sw + 16);
        float *xp = cpu_shared(c, len + slack);
        if (!xp) {
            free(j);
            return -1;
        }
        memset(xp + len, 0, sizeof(float) * slack);
        j->xbase = f.x = xp;
        cpu_run(c, (int)(d->n_batch * d->C), cpu_frame_fill_task, &f, (double)d->n_batch * d->C * j->pstride / 4.0);
    }
    /* 1x1 layers with more input channels than a chunk: K split into
     * chunks whose 14-channel weight panel fits L1 (dc_task), unless the
     * residual shares memory with the output (a partial sum stored there
     * would overwrite residual elements not yet read) */
    j->kchunk = j->K;
    /* only on maps of DC_X1_MIN_PX+ output pixels (MECBED_CPU_DC_X1_PX):
     * on 7x7 and 14x14 maps the layer streams its weights, and chunked
     * they are 14-row short runs instead of whole rows (ResNet's 2048->512
     * at 7x7: 1.01 -> 1.19 ms) */
    static int x1px_env = -2;
    int x1px = dc_env_int("MECBED_CPU_DC_X1_PX", &x1px_env);
    int x1big = j->P * d->n_batch >= (x1px >= 0 ? x1px : DC_X1_MIN_PX);
    if (j->taps == 1 && x1big) {
        int64_t kc = cpu_conv_1x1_kblock(), n_out = d->n_batch * d->M * j->P;
        int res_alias = j->res && j->res < d->out + n_out && d->out < j->res + n_out;
        if (kc > 0 && kc < j->K && !res_alias)
            j->kchunk = kc;
    }
    j->tile_blocks = dc_tile_blocks(j);
    {
        static int xpf_env = -2;
        int e = dc_env_int("MECBED_CPU_DC_XPF", &xpf_env);
        int on = cpu_conv_1x1_kblock() > 0 && x1big; /* MECBED_CPU_1X1_KBLOCK=off: none of the 1x1 changes */
        j->xpf = on && j->taps == 1 && j->K >= (e > 1 ? e : DC_X1_MIN_K) && e != 0;
        static int xpack_env = -2;
        int xe = dc_env_int("MECBED_CPU_DC_XPACK", &xpack_env);
        j->xpack = on && j->taps == 1 && j->K >= (xe > 1 ? xe : DC_X1_MIN_K) && xe != 0;
        static int xrows_env = -2, xpackpx_env = -2;
        j->xbig_tasks = dc_env_int("MECBED_CPU_DC_XROWS", &xrows_env) != 0;
        int xp = dc_env_int("MECBED_CPU_DC_XPACK_PX", &xpackpx_env);
        j->xpack_px = xp >= 0 ? xp : DC_XPACK_PACK_PX;
        const char *ev = getenv("MECBED_CPU_DC_EVEN"); /* read on every conv: the tests switch it */
        j->even = !(ev && !strcmp(ev, "0"));
        /* read on every conv (the tests switch it between runs) */
        const char *kpe = getenv("MECBED_CPU_DC_KPACK");
        int ke = kpe && *kpe ? atoi(kpe) : -1;
        /* default: strided convs with DC_KPACK_MIN_CG+ input channels a
         * group or K <= DC_KPACK_MAX_K (=2: every strided conv; =1: every
         * conv with taps > 1; =0: none) */
        int strided = d->sh > 1 || d->sw > 1;
        j->kpack = j->taps > 1 && !inplace &&
                   (ke == 1 || (ke == 2 && strided) ||
                    (ke < 0 && strided && (j->Cg >= DC_KPACK_MIN_CG || j->K <= DC_KPACK_MAX_K)));
        if (j->kpack) {
            static int kkb_env = -2;
            int kb = dc_env_int("MECBED_CPU_DC_KPACK_KB", &kkb_env);
            int64_t bl = (kb > 0 ? kb : 256) * (int64_t)1024 / (32 * j->K * (int64_t)sizeof(float));
            if (bl < 1)
                bl = 1;
            if (j->tile_blocks > bl)
                j->tile_blocks = (int)bl;
        }
    }
    {
        int e = dc_env_int("MECBED_CPU_DC_PACK_PX", &dc_pack_env), eb = dc_env_int("MECBED_CPU_DC_PACK_PX_BIGK", &dc_packb_env);
        j->pack_px = e >= 0 ? e : DC_PACK_MIN_PX;
        j->pack_px_bigk = eb >= 0 ? eb : DC_PACK_MIN_PX_BIGK;
        int pf = dc_env_int("MECBED_CPU_DC_WPF", &dc_wpf_env);
        j->wpf = pf >= 0 ? pf && j->kchunk * DC_MR * (int64_t)sizeof(float) <= (pf > 1 ? pf : DC_WPF_BYTES)
                         : j->kchunk * DC_MR * (int64_t)sizeof(float) <= DC_WPF_BYTES;
    }
    dc_split(c, j);
    int n_tasks = (int)(d->n_batch * d->G * j->n_mtasks * j->n_rtasks);
    cpu_run(c, n_tasks, dc_task, j, (double)d->n_batch * d->M * j->P * j->K / 100.0);
    int rc = j->failed ? -1 : 0;
    free(j);
    return rc;
}

#else

int cpu_conv_direct(cpu_ctx *c, const cpu_dconv *d)
{
    (void)c;
    (void)d;
    return -1;
}

#endif
