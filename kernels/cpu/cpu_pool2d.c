/* MaxPool, AveragePool (any output rectangle) and GlobalAveragePool on the
 * fast CPU backend.
 *
 * Strides 1 and 2 on an AVX-512 CPU take the fast path further down (no
 * copy, masked loads at the borders, the same results bit for bit).
 * Otherwise each plane's input region is first copied into a padded buffer
 * (-inf for max, 0 for average where the window leaves the image), so the
 * window loops have no border cases: one pass per output row for 3x3
 * windows, one pass per tap otherwise, both along contiguous output columns
 * (vectorised). Every
 * output visits its taps in (ky, kx) order whatever the region (a padding tap
 * changes nothing: max with -inf, + 0), so tiles match the whole op bit for
 * bit. Average divisors come from per-row and per-column counts. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

typedef struct pool_job {
    cpu_ctx *c;
    const mb_view *v;
    float *out;
    int is_max, count_pad;
    int64_t C;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int64_t full_h, full_w;
    mb_region r;
    int64_t rows, cols, PH, PW, iy0, ix0;
    const int *cnt_h, *cnt_w; /* average: taps counted per output row / column */
    int64_t xlo, xhi;         /* fast path: local columns with image data */
    const uint16_t *vmask;    /* fast path: pool_vmasks */
    int fast;                 /* pool_plane_fast, else the padded copy (pool_plane) */
    volatile int failed;
} pool_job;

/* Taps k in [0, kn) of a window starting at s (step d) that land in [lo, hi). */
static int taps_in(int64_t s, int kn, int d, int64_t lo, int64_t hi)
{
    int c = 0;
    for (int k = 0; k < kn; k++) {
        int64_t x = s + (int64_t)k * d;
        c += x >= lo && x < hi;
    }
    return c;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* 3x3 window, one output row. */
CPU_SIMD_CLONES
static void pool3x3_row(float *restrict o, const float *restrict r0, const float *restrict r1,
                        const float *restrict r2, int64_t n, int sw, int dw, int is_max)
{
    if (is_max) {
        if (sw == 2 && dw == 1) /* constant stride: vectorised with permutes */
            for (int64_t ox = 0; ox < n; ox++) {
                int64_t x = 2 * ox;
                float m = r0[x];
                m = r0[x + 1] > m ? r0[x + 1] : m;
                m = r0[x + 2] > m ? r0[x + 2] : m;
                m = r1[x] > m ? r1[x] : m;
                m = r1[x + 1] > m ? r1[x + 1] : m;
                m = r1[x + 2] > m ? r1[x + 2] : m;
                m = r2[x] > m ? r2[x] : m;
                m = r2[x + 1] > m ? r2[x + 1] : m;
                m = r2[x + 2] > m ? r2[x + 2] : m;
                o[ox] = m;
            }
        else if (sw == 1 && dw == 1)
            for (int64_t x = 0; x < n; x++) {
                float m = r0[x];
                m = r0[x + 1] > m ? r0[x + 1] : m;
                m = r0[x + 2] > m ? r0[x + 2] : m;
                m = r1[x] > m ? r1[x] : m;
                m = r1[x + 1] > m ? r1[x + 1] : m;
                m = r1[x + 2] > m ? r1[x + 2] : m;
                m = r2[x] > m ? r2[x] : m;
                m = r2[x + 1] > m ? r2[x + 1] : m;
                m = r2[x + 2] > m ? r2[x + 2] : m;
                o[x] = m;
            }
        else
            for (int64_t ox = 0; ox < n; ox++) {
                int64_t x = ox * sw;
                float m = r0[x];
                m = r0[x + dw] > m ? r0[x + dw] : m;
                m = r0[x + 2 * dw] > m ? r0[x + 2 * dw] : m;
                m = r1[x] > m ? r1[x] : m;
                m = r1[x + dw] > m ? r1[x + dw] : m;
                m = r1[x + 2 * dw] > m ? r1[x + 2 * dw] : m;
                m = r2[x] > m ? r2[x] : m;
                m = r2[x + dw] > m ? r2[x + dw] : m;
                m = r2[x + 2 * dw] > m ? r2[x + 2 * dw] : m;
                o[ox] = m;
            }
    } else if (sw == 1 && dw == 1) { /* same sums in the same order as below */
        for (int64_t x = 0; x < n; x++) {
            float acc = 0.0f;
            acc += r0[x];
            acc += r0[x + 1];
            acc += r0[x + 2];
            acc += r1[x];
            acc += r1[x + 1];
            acc += r1[x + 2];
            acc += r2[x];
            acc += r2[x + 1];
            acc += r2[x + 2];
            o[x] = acc;
        }
    } else {
        for (int64_t ox = 0; ox < n; ox++) {
            int64_t x = ox * sw;
            float acc = 0.0f;
            acc += r0[x];
            acc += r0[x + dw];
            acc += r0[x + 2 * dw];
            acc += r1[x];
            acc += r1[x + dw];
            acc += r1[x + 2 * dw];
            acc += r2[x];
            acc += r2[x + dw];
            acc += r2[x + 2 * dw];
            o[ox] = acc;
        }
    }
}

/* Any window, one output row: one pass per tap. */
CPU_SIMD_CLONES
static void pool_row_general(const pool_job *j, float *restrict o, const float *buf, int64_t yi)
{
    const int64_t n = j->cols;
    const int sw = j->sw;
    float init = j->is_max ? -INFINITY : 0.0f;
    for (int64_t x = 0; x < n; x++)
        o[x] = init;
    for (int ky = 0; ky < j->kh; ky++) {
        const float *restrict src = buf + (yi * j->sh + (int64_t)ky * j->dh) * j->PW;
        for (int kx = 0; kx < j->kw; kx++) {
            const float *restrict s = src + (int64_t)kx * j->dw;
            if (j->is_max) {
                for (int64_t x = 0; x < n; x++) {
                    float v = s[x * sw];
                    o[x] = v > o[x] ? v : o[x];
                }
            } else {
                for (int64_t x = 0; x < n; x++)
                    o[x] += s[x * sw];
            }
        }
    }
}

static void pool_plane(pool_job *j, int64_t n, int64_t ch, int thread)
{
    const mb_view *v = j->v;
    const int64_t vw = v->t->dims[3], PW = j->PW;
    float *buf = cpu_scratch(j->c, thread, (size_t)(j->PH * PW));
    if (!buf) {
        j->failed = 1;
        return;
    }
    const float fill = j->is_max ? -INFINITY : 0.0f;
    const float *plane = v->t->data + (n * j->C + ch) * v->t->dims[2] * vw;
    int64_t xlo = clamp64(-j->ix0, 0, PW), xhi = clamp64(j->full_w - j->ix0, xlo, PW);
    for (int64_t y = 0; y < j->PH; y++) {
        float *row = buf + y * PW;
        int64_t iy = j->iy0 + y;
        if (iy < 0 || iy >= j->full_h) {
            for (int64_t x = 0; x < PW; x++)
                row[x] = fill;
            continue;
        }
        for (int64_t x = 0; x < xlo; x++)
            row[x] = fill;
        memcpy(row + xlo, plane + (iy - v->h_off) * vw + (j->ix0 + xlo - v->w_off),
               sizeof(float) * (size_t)(xhi - xlo));
        for (int64_t x = xhi; x < PW; x++)
            row[x] = fill;
    }
    float *o = j->out + (n * j->C + ch) * j->rows * j->cols;
    int is3 = j->kh == 3 && j->kw == 3;
    for (int64_t yi = 0; yi < j->rows; yi++) {
        float *orow = o + yi * j->cols;
        if (is3) {
            const float *r0 = buf + yi * j->sh * PW;
            pool3x3_row(orow, r0, r0 + j->dh * PW, r0 + 2 * j->dh * PW, j->cols, j->sw, j->dw, j->is_max);
        } else {
            pool_row_general(j, orow, buf, yi);
        }
        if (!j->is_max)
            for (int64_t x = 0; x < j->cols; x++) {
                int cnt = j->cnt_h[yi] * j->cnt_w[x];
                orow[x] = cnt > 0 ? orow[x] / (float)cnt : 0.0f;
            }
    }
}

/* ---- the fast path: no padded copy --------------------------------------
 *
 * Strides 1 and 2 on an AVX-512 CPU. Each output row gets one pointer per
 * window row (pool_plane_body): into the input view, or to a row of fill
 * values above and below the image. Rows are computed 16 outputs per vector
 * (stride 1 by unaligned loads, stride 2 by two loads and an even/odd
 * permute; 2x2 and 3x3 unrolled); where windows leave the image sideways, or
 * at a row's end, loads are masked and the masked-off lanes take the fill
 * value without touching memory, so there is neither a copy nor border code.
 * Every output evaluates exactly the old path's expression: the same taps in (ky, kx) order, the same fill values, max as
 * `t > m ? t : m` (what vmaxps(t, m) computes, NaN and signed zeros
 * included), a 3x3 max starting from its first tap and any other from -inf,
 * sums starting from 0. So it is bit-identical to the padded path (the tests
 * hold it to that with NaNs and -0 in the input) and tiles match the whole
 * op. MECBED_CPU_POOL_FAST=0 selects the padded path (which also runs
 * every other case). */

enum { POOL_MAX_FIRST, POOL_MAX, POOL_AVG };
#define POOL_MAXK 16 /* window rows the fast path takes; taller windows use the padded path */

static int pool_fast_enabled(void)
{
    /* read per call (cheap next to a pooling op) so tests can switch it */
    const char *e = getenv("MECBED_CPU_POOL_FAST");
    return !(e && strcmp(e, "0") == 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define POOL_TARGET __attribute__((target("avx512f")))

static int pool_avx512(void)
{
    static int avail = -1; /* racing threads store the same value */
    int a = __atomic_load_n(&avail, __ATOMIC_RELAXED);
    if (a < 0) {
        __builtin_cpu_init();
        a = __builtin_cpu_supports("avx512f") != 0;
        __atomic_store_n(&avail, a, __ATOMIC_RELAXED);
    }
    return a;
}

/* Software prefetch distance in floats ahead of the input rows (0: none).
 * Large planes stream from L3 or memory; the hardware prefetcher alone left
 * tiny_yolov2's 416x416 MaxPool at about half the speed (README, 2026-12-05,
 * pool). MECBED_CPU_POOL_PF overrides it, for tuning. */
static int64_t pool_prefetch(void)
{
    static int64_t pf = -1; /* racing threads store the same value */
    int64_t a = __atomic_load_n(&pf, __ATOMIC_RELAXED);
    if (a < 0) {
        const char *e = getenv("MECBED_CPU_POOL_PF");
        a = e ? atoll(e) : 2048;
        a = a < 0 ? 0 : a;
        __atomic_store_n(&pf, a, __ATOMIC_RELAXED);
    }
    return a;
}

#define POOL_AI static inline __attribute__((always_inline)) POOL_TARGET

POOL_AI __m512 pool_apply(__m512 m, __m512 t, int *first, int mode)
{
    if (*first) {
        *first = 0;
        return t;
    }
    return mode == POOL_AVG ? _mm512_add_ps(m, t) : _mm512_max_ps(t, m); /* t > m ? t : m */
}

POOL_AI __mmask16 pool_mask(int64_t k) /* the lowest k of 16 lanes */
{
    return k >= 16 ? (__mmask16)0xFFFF : k <= 0 ? (__mmask16)0 : (__mmask16)((1u << k) - 1);
}

/* One output row's window rows: r[ky] at local column 0 (input column ix0,
 * possibly left of the view's row where the window starts in the padding:
 * never read there), of which columns [xlo, xhi) hold data; masked loads
 * (masks from pool_vmasks) read the rest as the fill value without touching
 * memory. Rows above or below the image point to a row of fill values. */
typedef struct pool_rows {
    const float *r[POOL_MAXK];
} pool_rows;

/* tap kx's load (half 0: the first 16 columns, 1: the next 16 for stride 2) */
POOL_AI __m512 pool_load(const pool_rows *w, int ky, int64_t col, const uint16_t *mk, int kx, int half, __m512 fillv)
{
    if (!mk)
        return _mm512_loadu_ps(w->r[ky] + col);
    return _mm512_mask_loadu_ps(fillv, (__mmask16)mk[kx * 2 + half], w->r[ky] + col);
}

/* 16 outputs from column x (whose window starts at local column x * sw);
 * mk: NULL (every load inside the data) or this vector's load masks. */
POOL_AI __m512 pool_vec(const pool_rows *w, int kh, int kw, int sw, int dw, int64_t x, const uint16_t *mk, int mode,
                        __m512 fillv)
{
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int first = mode == POOL_MAX_FIRST;
    __m512 m = mode == POOL_AVG ? _mm512_setzero_ps() : _mm512_set1_ps(-INFINITY);
    for (int ky = 0; ky < kh; ky++) {
        int64_t c0 = x * sw;
        if (sw == 1) {
            for (int kx = 0; kx < kw; kx++)
                m = pool_apply(m, pool_load(w, ky, c0 + (int64_t)kx * dw, mk, kx, 0, fillv), &first, mode);
        } else { /* sw == 2 */
            int step = dw == 1 ? 2 : 1; /* dw 1: one load pair serves taps kx and kx + 1 */
            for (int kx = 0; kx < kw; kx += step) {
                int64_t c = c0 + (int64_t)kx * dw;
                __m512 a = pool_load(w, ky, c, mk, kx, 0, fillv), b = pool_load(w, ky, c + 16, mk, kx, 1, fillv);
                m = pool_apply(m, _mm512_permutex2var_ps(a, ev, b), &first, mode);
                if (step == 2 && kx + 1 < kw)
                    m = pool_apply(m, _mm512_permutex2var_ps(a, od, b), &first, mode);
            }
        }
    }
    return m;
}

/* A plane for the fast path: out = rows x cols outputs; plane the view's
 * plane, row0 the offset of local column 0 in a view row; fillrow PW fill
 * values for the rows above and below the image. */
typedef struct pool_plane_arg {
    const pool_job *j;
    const float *plane, *fillrow;
    float *out;
    int64_t row0;
} pool_plane_arg;

POOL_AI void pool_plane_body(const pool_plane_arg *p, int kh, int kw, int sw, int dw, int mode)
{
    const pool_job *j = p->j;
    const int64_t vw = j->v->t->dims[3], n = j->cols, span = (int64_t)(kw - 1) * dw;
    const int64_t pf = pool_prefetch();
    /* bytes of input one output row moves on by (sh rows), to prefetch */
    const int64_t step_bytes = (int64_t)j->sh * vw * (int64_t)sizeof(float);
    const __m512 fillv = _mm512_set1_ps(mode == POOL_AVG ? 0.0f : -INFINITY);
    pool_rows w;
    for (int64_t yi = 0; yi < j->rows; yi++) {
        for (int ky = 0; ky < kh; ky++) {
            int64_t iy = j->iy0 + yi * j->sh + (int64_t)ky * j->dh;
            /* may point before the row (left padding): only masked loads go there */
            w.r[ky] = iy < 0 || iy >= j->full_h ? p->fillrow : p->plane + (iy - j->v->h_off) * vw + p->row0;
        }
        if (pf) {
            /* the rows an output row pf floats on will read, as many bytes as
             * one output row advances: a steady stream ahead, also across
             * planes and on narrow rows. May point past the input: a
             * prefetch never faults. */
            int64_t iy = clamp64(j->iy0 + yi * j->sh + (int64_t)(kh - 1) * j->dh, 0, j->full_h - 1);
            const char *a = (const char *)(p->plane + (iy - j->v->h_off) * vw + pf);
            for (int64_t b = 0; b < step_bytes; b += 64)
                _mm_prefetch(a + b, _MM_HINT_T0);
        }
        float *o = p->out + yi * n;
        const __m512i ch = _mm512_set1_epi32(mode == POOL_AVG ? j->cnt_h[yi] : 0);
        for (int64_t x = 0; x < n; x += 16) {
            int64_t c0 = x * sw;
            /* unmasked: all 16 outputs exist and every load (at most 16 * sw
             * + span columns from c0) lies in [xlo, xhi) */
            int full = x + 16 <= n && c0 >= j->xlo && c0 + 16 * sw + span <= j->xhi;
            __m512 v;
            if (full) {
                v = pool_vec(&w, kh, kw, sw, dw, x, NULL, mode, fillv);
            } else {
                v = pool_vec(&w, kh, kw, sw, dw, x, j->vmask + (x / 16) * kw * 2, mode, fillv);
            }
            __mmask16 k = pool_mask(n - x);
            if (mode == POOL_AVG) { /* acc / (float)(cnt_h * cnt_w), 0 where no tap counts */
                __m512i cnt = _mm512_mullo_epi32(ch, _mm512_maskz_loadu_epi32(k, j->cnt_w + x));
                __mmask16 pos = _mm512_cmpgt_epi32_mask(cnt, _mm512_setzero_si512());
                v = _mm512_maskz_div_ps(pos, v, _mm512_cvtepi32_ps(cnt));
            }
            _mm512_mask_storeu_ps(o + x, k, v);
        }
    }
}

/* One specialisation per window (2x2, 3x3 undilated, else any), stride and
 * mode, so the tap loops unroll or at least lose their branches. */
#define POOL_PLANE_FN(name, KH, KW, SW, DW, MODE)                                                                  \
    static POOL_TARGET void name(const pool_plane_arg *p)                                                          \
    {                                                                                                              \
        pool_plane_body(p, KH, KW, SW, DW, MODE);                                                                  \
    }
POOL_PLANE_FN(pool_k2s1_max, 2, 2, 1, 1, POOL_MAX)
POOL_PLANE_FN(pool_k2s1_avg, 2, 2, 1, 1, POOL_AVG)
POOL_PLANE_FN(pool_k2s2_max, 2, 2, 2, 1, POOL_MAX)
POOL_PLANE_FN(pool_k2s2_avg, 2, 2, 2, 1, POOL_AVG)
POOL_PLANE_FN(pool_k3s1_maxf, 3, 3, 1, 1, POOL_MAX_FIRST)
POOL_PLANE_FN(pool_k3s1_avg, 3, 3, 1, 1, POOL_AVG)
POOL_PLANE_FN(pool_k3s2_maxf, 3, 3, 2, 1, POOL_MAX_FIRST)
POOL_PLANE_FN(pool_k3s2_avg, 3, 3, 2, 1, POOL_AVG)
POOL_PLANE_FN(pool_any_s1_maxf, p->j->kh, p->j->kw, 1, p->j->dw, POOL_MAX_FIRST)
POOL_PLANE_FN(pool_any_s1_max, p->j->kh, p->j->kw, 1, p->j->dw, POOL_MAX)
POOL_PLANE_FN(pool_any_s1_avg, p->j->kh, p->j->kw, 1, p->j->dw, POOL_AVG)
POOL_PLANE_FN(pool_any_s2_maxf, p->j->kh, p->j->kw, 2, p->j->dw, POOL_MAX_FIRST)
POOL_PLANE_FN(pool_any_s2_max, p->j->kh, p->j->kw, 2, p->j->dw, POOL_MAX)
POOL_PLANE_FN(pool_any_s2_avg, p->j->kh, p->j->kw, 2, p->j->dw, POOL_AVG)

/* Does the fast path take this pool? Strides 1 and 2 on an AVX-512 CPU; the
 * padded path does the rest. */
static int pool_fast_handles(const pool_job *j);

/* The fast path's load masks, the same for every plane: for output vector
 * xv, tap kx and half h, the lanes of the 16 columns from xv * 16 * sw + kx *
 * dw + 16 * h that lie in [xlo, xhi). */
static void pool_vmasks(const pool_job *j, uint16_t *mk)
{
    for (int64_t xv = 0; xv * 16 < j->cols; xv++)
        for (int kx = 0; kx < j->kw; kx++)
            for (int h = 0; h < 2; h++) {
                int64_t c = xv * 16 * j->sw + (int64_t)kx * j->dw + 16 * h;
                uint32_t m = 0;
                for (int i = 0; i < 16; i++)
                    m |= (uint32_t)(c + i >= j->xlo && c + i < j->xhi) << i;
                mk[(xv * j->kw + kx) * 2 + h] = (uint16_t)m;
            }
}

/* Sets up the fast path for the op (j->fast) where it applies; returns the
 * masks for the caller to free (NULL: the padded path runs). */
static uint16_t *pool_fast_prepare(pool_job *j)
{
    j->fast = 0;
    if (!pool_fast_handles(j))
        return NULL;
    j->xlo = clamp64(-j->ix0, 0, j->PW);
    j->xhi = clamp64(j->full_w - j->ix0, j->xlo, j->PW);
    uint16_t *mk = malloc(sizeof(uint16_t) * (size_t)((j->cols + 15) / 16 * j->kw * 2));
    if (mk) {
        pool_vmasks(j, mk);
        j->vmask = mk;
        j->fast = 1;
    }
    return mk;
}

static int pool_fast_handles(const pool_job *j)
{
    return pool_fast_enabled() && pool_avx512() && j->kh <= POOL_MAXK && (j->sw == 1 || j->sw == 2);
}

static void pool_plane_fast(pool_job *j, int64_t n, int64_t ch, int thread)
{
    const mb_view *v = j->v;
    float *fillrow = cpu_scratch(j->c, thread, (size_t)j->PW);
    if (!fillrow) {
        j->failed = 1;
        return;
    }
    const float fill = j->is_max ? -INFINITY : 0.0f;
    for (int64_t x = 0; x < j->PW; x++)
        fillrow[x] = fill;
    pool_plane_arg p = {.j = j, .fillrow = fillrow};
    p.plane = v->t->data + (n * j->C + ch) * v->t->dims[2] * v->t->dims[3];
    p.out = j->out + (n * j->C + ch) * j->rows * j->cols;
    p.row0 = j->ix0 - v->w_off;
    const int mode = !j->is_max ? POOL_AVG : j->kh == 3 && j->kw == 3 ? POOL_MAX_FIRST : POOL_MAX;
    const int s2 = j->sw == 2, avg = mode == POOL_AVG;
    if (j->dw == 1 && j->kh == j->kw && (j->kh == 2 || j->kh == 3)) {
        /* [k == 3][stride 2][avg]; a 2x2 max is never POOL_MAX_FIRST, a 3x3 one always */
        static void (*const kfns[2][2][2])(const pool_plane_arg *) = {
            {{pool_k2s1_max, pool_k2s1_avg}, {pool_k2s2_max, pool_k2s2_avg}},
            {{pool_k3s1_maxf, pool_k3s1_avg}, {pool_k3s2_maxf, pool_k3s2_avg}}};
        kfns[j->kh == 3][s2][avg](&p);
    } else {
        static void (*const fns[2][3])(const pool_plane_arg *) = {
            {pool_any_s1_maxf, pool_any_s1_max, pool_any_s1_avg}, {pool_any_s2_maxf, pool_any_s2_max, pool_any_s2_avg}};
        fns[s2][mode](&p);
    }
}
#else
static uint16_t *pool_fast_prepare(pool_job *j)
{
    (void)pool_fast_enabled;
    j->fast = 0;
    return NULL;
}

static void pool_plane_fast(pool_job *j, int64_t n, int64_t ch, int thread)
{
    pool_plane(j, n, ch, thread);
}
#endif

static void pool_task(void *arg, int t, int thread)
{
    pool_job *j = arg;
    if (j->fast)
        pool_plane_fast(j, t / j->C, t % j->C, thread);
    else
        pool_plane(j, t / j->C, t % j->C, thread);
}

int cpu_pool2d(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    const mb_op_attrs *a = &nd->a;
    pool_job j = {0};
    j.c = c;
    j.v = &in[0];
    j.out = out->data;
    j.is_max = nd->type == MB_OP_MAXPOOL;
    j.count_pad = a->count_include_pad;
    j.C = in[0].t->dims[1];
    j.kh = a->kernel[0];
    j.kw = a->kernel[1];
    j.sh = a->stride[0] > 0 ? a->stride[0] : 1;
    j.sw = a->stride[1] > 0 ? a->stride[1] : 1;
    j.dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    j.dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    j.pt = a->pads[0];
    j.pl = a->pads[1];
    j.pb = a->pads[2];
    j.pr = a->pads[3];
    j.full_h = in[0].full_h;
    j.full_w = in[0].full_w;
    j.r = r;
    if (mb_region_empty(r))
        return 0;
    j.rows = r.h1 - r.h0;
    j.cols = r.w1 - r.w0;
    j.PH = (j.rows - 1) * j.sh + (int64_t)(j.kh - 1) * j.dh + 1;
    j.PW = (j.cols - 1) * j.sw + (int64_t)(j.kw - 1) * j.dw + 1;
    j.iy0 = r.h0 * j.sh - j.pt;
    j.ix0 = r.w0 * j.sw - j.pl;
    int *cnt = NULL;
    if (!j.is_max) {
        /* divisor: taps inside the image, or (count_include_pad) inside the
         * padded extent; never the ceil_mode overhang beyond it */
        cnt = malloc(sizeof(int) * (size_t)(j.rows + j.cols));
        if (!cnt) {
            snprintf(err, errlen, "pool '%s': out of memory", nd->name);
            return -1;
        }
        int64_t hlo = j.count_pad ? -j.pt : 0, hhi = j.count_pad ? j.full_h + j.pb : j.full_h;
        int64_t wlo = j.count_pad ? -j.pl : 0, whi = j.count_pad ? j.full_w + j.pr : j.full_w;
        for (int64_t y = 0; y < j.rows; y++)
            cnt[y] = taps_in((r.h0 + y) * j.sh - j.pt, j.kh, j.dh, hlo, hhi);
        for (int64_t x = 0; x < j.cols; x++)
            cnt[j.rows + x] = taps_in((r.w0 + x) * j.sw - j.pl, j.kw, j.dw, wlo, whi);
        j.cnt_h = cnt;
        j.cnt_w = cnt + j.rows;
    }
    uint16_t *vmask = pool_fast_prepare(&j);
    cpu_run(c, (int)(in[0].t->dims[0] * j.C), pool_task, &j,
            (double)in[0].t->dims[0] * j.C * j.rows * j.cols * j.kh * j.kw / 16.0);
    free(vmask);
    free(cnt);
    if (j.failed) {
        snprintf(err, errlen, "pool '%s': out of memory for the padded input rows", nd->name);
        return -1;
    }
    return 0;
}

typedef struct gap_job {
    const float *x;
    float *y;
    int64_t inner;
} gap_job;

static void gap_task(void *arg, int t, int thread)
{
    (void)thread;
    gap_job *j = arg;
    const float *p = j->x + (int64_t)t * j->inner;
    /* 8 partial sums: vectorisable without reassociating a single chain */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= j->inner; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += p[i + k];
    float s = 0;
    for (; i < j->inner; i++)
        s += p[i];
    s += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    j->y[t] = s / (float)j->inner;
}

int cpu_global_avgpool(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                       size_t errlen)
{
    (void)g;
    (void)node;
    (void)err;
    (void)errlen;
    const mb_tensor *x = in[0].t;
    gap_job j = {x->data, out->data, 1};
    for (int i = 2; i < x->ndim; i++)
        j.inner *= x->dims[i];
    int64_t planes = x->dims[0] * x->dims[1];
    cpu_run(c, (int)planes, gap_task, &j, (double)planes * j.inner / 4.0);
    return 0;
}
