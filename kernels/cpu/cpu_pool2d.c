/* MaxPool, AveragePool (any output rectangle) and GlobalAveragePool on the
 * fast CPU backend.
 *
 * Each plane's input region is first copied into a padded buffer (-inf for
 * max, 0 for average where the window leaves the image), so the window loops
 * have no border cases: one pass per output row for 3x3 windows, one pass per
 * tap otherwise, both along contiguous output columns (vectorised). Every
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
    int fast; /* pool_plane_fast, else the padded copy (pool_plane) */
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
 * Each output row gets one pointer per window row: into the input view where
 * that input row lies in the image, else to a row of fill values. Output
 * columns whose windows lie wholly inside the image's columns (the interior)
 * then read the view directly, vectorised (AVX-512 where the CPU has it:
 * stride 1 with unaligned loads, stride 2 by two loads and an even/odd
 * permute); the few border columns take a scalar loop that substitutes the
 * fill value per tap. Every output evaluates exactly the old path's
 * expression: the same taps in (ky, kx) order, the same fill values, max as
 * `t > m ? t : m` (what vmaxps(t, m) computes, NaN and signed zeros
 * included), a 3x3 max starting from its first tap and any other from -inf,
 * sums starting from 0. So it is bit-identical to the padded path (the tests
 * hold it to that with NaNs and -0 in the input) and tiles match the whole
 * op. MECBED_CPU_POOL_FAST=0 selects the padded path. */

enum { POOL_MAX_FIRST, POOL_MAX, POOL_AVG };
#define POOL_MAXK 16 /* window rows the fast path takes; taller windows use the padded path */

static int pool_fast_enabled(void)
{
    /* read per call (cheap next to a pooling op) so tests can switch it */
    const char *e = getenv("MECBED_CPU_POOL_FAST");
    return !(e && strcmp(e, "0") == 0);
}

/* Interior of one output row, portable: n outputs, window row ky read from
 * r[ky] at x * sw + kx * dw. */
CPU_SIMD_CLONES
static void pool_row_interior_c(float *restrict o, const float *const *r, int kh, int kw, int sw, int dw, int64_t n,
                                int mode)
{
    for (int64_t x = 0; x < n; x++) {
        int first = mode == POOL_MAX_FIRST;
        float m = mode == POOL_AVG ? 0.0f : -INFINITY;
        for (int ky = 0; ky < kh; ky++) {
            const float *s = r[ky] + x * sw;
            for (int kx = 0; kx < kw; kx++) {
                float t = s[(int64_t)kx * dw];
                if (first) {
                    m = t;
                    first = 0;
                } else if (mode == POOL_AVG) {
                    m += t;
                } else {
                    m = t > m ? t : m;
                }
            }
        }
        o[x] = m;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define POOL_X86 1
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

static inline __attribute__((always_inline)) POOL_TARGET __m512 pool_apply(__m512 m, __m512 t, int *first, int mode)
{
    if (*first) {
        *first = 0;
        return t;
    }
    return mode == POOL_AVG ? _mm512_add_ps(m, t) : _mm512_max_ps(t, m); /* t > m ? t : m */
}

static inline __attribute__((always_inline)) POOL_TARGET __mmask16 pool_mask(int64_t k)
{
    return k >= 16 ? (__mmask16)0xFFFF : k <= 0 ? (__mmask16)0 : (__mmask16)((1u << k) - 1);
}

/* cnt (1..16) outputs from row pointers already advanced to the first one;
 * lim: elements of each row that may be read (only the last vector of a row
 * is short, and only it is masked). */
static inline __attribute__((always_inline)) POOL_TARGET __m512
pool_vec(const float *const *r, int kh, int kw, int sw, int dw, int64_t x, int64_t lim, int masked, int mode)
{
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int first = mode == POOL_MAX_FIRST;
    __m512 m = mode == POOL_AVG ? _mm512_setzero_ps() : _mm512_set1_ps(-INFINITY);
    for (int ky = 0; ky < kh; ky++) {
        const float *s = r[ky] + x * sw;
        if (sw == 1) {
            for (int kx = 0; kx < kw; kx++) {
                int64_t o = (int64_t)kx * dw;
                __m512 t = masked ? _mm512_maskz_loadu_ps(pool_mask(lim - o), s + o) : _mm512_loadu_ps(s + o);
                m = pool_apply(m, t, &first, mode);
            }
        } else { /* sw == 2 */
            int step = dw == 1 ? 2 : 1; /* dw 1: one load pair serves taps kx and kx + 1 */
            for (int kx = 0; kx < kw; kx += step) {
                int64_t o = (int64_t)kx * dw;
                __m512 a, b;
                if (masked) {
                    a = _mm512_maskz_loadu_ps(pool_mask(lim - o), s + o);
                    b = _mm512_maskz_loadu_ps(pool_mask(lim - o - 16), s + o + 16);
                } else {
                    a = _mm512_loadu_ps(s + o);
                    b = _mm512_loadu_ps(s + o + 16);
                }
                m = pool_apply(m, _mm512_permutex2var_ps(a, ev, b), &first, mode);
                if (step == 2 && kx + 1 < kw)
                    m = pool_apply(m, _mm512_permutex2var_ps(a, od, b), &first, mode);
            }
        }
    }
    return m;
}

static inline __attribute__((always_inline)) POOL_TARGET void
pool_row_avx512_body(float *o, const float *const *r, int kh, int kw, int sw, int dw, int64_t n, int mode)
{
    int64_t span = (int64_t)(kw - 1) * dw, x = 0;
    /* a vector that is not the row's last reads at most 32 + span past its
     * first output's window start: all inside the next output's window */
    for (; x + 16 < n; x += 16)
        _mm512_storeu_ps(o + x, pool_vec(r, kh, kw, sw, dw, x, 0, 0, mode));
    int64_t cnt = n - x; /* 1..16 */
    __m512 v = pool_vec(r, kh, kw, sw, dw, x, (cnt - 1) * sw + span + 1, 1, mode);
    _mm512_mask_storeu_ps(o + x, pool_mask(cnt), v);
}

/* One specialisation per (stride, mode) so the tap loops lose their branches. */
#define POOL_ROW_FN(name, SW, MODE)                                                                                \
    static POOL_TARGET void name(float *o, const float *const *r, int kh, int kw, int dw, int64_t n)              \
    {                                                                                                              \
        pool_row_avx512_body(o, r, kh, kw, SW, dw, n, MODE);                                                       \
    }
POOL_ROW_FN(pool_row_s1_maxf, 1, POOL_MAX_FIRST)
POOL_ROW_FN(pool_row_s1_max, 1, POOL_MAX)
POOL_ROW_FN(pool_row_s1_avg, 1, POOL_AVG)
POOL_ROW_FN(pool_row_s2_maxf, 2, POOL_MAX_FIRST)
POOL_ROW_FN(pool_row_s2_max, 2, POOL_MAX)
POOL_ROW_FN(pool_row_s2_avg, 2, POOL_AVG)

/* 1 if done here (stride 1 or 2, n > 0, an AVX-512 CPU). */
static int pool_row_interior_avx512(float *o, const float *const *r, int kh, int kw, int sw, int dw, int64_t n, int mode)
{
    if (n <= 0 || (sw != 1 && sw != 2) || !pool_avx512())
        return 0;
    typedef void (*row_fn)(float *, const float *const *, int, int, int, int64_t);
    static row_fn const fns[2][3] = {{pool_row_s1_maxf, pool_row_s1_max, pool_row_s1_avg},
                                     {pool_row_s2_maxf, pool_row_s2_max, pool_row_s2_avg}};
    fns[sw - 1][mode](o, r, kh, kw, dw, n);
    return 1;
}
#else
static int pool_row_interior_avx512(float *o, const float *const *r, int kh, int kw, int sw, int dw, int64_t n, int mode)
{
    (void)o, (void)r, (void)kh, (void)kw, (void)sw, (void)dw, (void)n, (void)mode;
    return 0;
}
#endif

/* Average: divide one row by its tap counts (0 where no tap counts). */
CPU_SIMD_CLONES
static void pool_avg_divide(float *restrict o, int cnt_h, const int *restrict cnt_w, int64_t n)
{
    for (int64_t x = 0; x < n; x++) {
        int cnt = cnt_h * cnt_w[x];
        o[x] = cnt > 0 ? o[x] / (float)cnt : 0.0f;
    }
}

/* One border output (local column x) with the fill value substituted per
 * tap, in the interior's order. rowoff[ky] < 0: a fill row; else the plane
 * offset of local column 0, so the tap at local column lx inside
 * [xlo, xhi) is plane[rowoff[ky] + lx]. */
static float pool_border_point(const pool_job *j, const float *plane, const int64_t *rowoff, const int *valid,
                               int64_t xlo, int64_t xhi, int64_t x, float fill, int mode)
{
    int first = mode == POOL_MAX_FIRST;
    float m = mode == POOL_AVG ? 0.0f : -INFINITY;
    for (int ky = 0; ky < j->kh; ky++)
        for (int kx = 0; kx < j->kw; kx++) {
            int64_t lx = x * j->sw + (int64_t)kx * j->dw;
            float t = valid[ky] && lx >= xlo && lx < xhi ? plane[rowoff[ky] + lx] : fill;
            if (first) {
                m = t;
                first = 0;
            } else if (mode == POOL_AVG) {
                m += t;
            } else {
                m = t > m ? t : m;
            }
        }
    return m;
}

static void pool_plane_fast(pool_job *j, int64_t n, int64_t ch, int thread)
{
    const mb_view *v = j->v;
    const int64_t vw = v->t->dims[3], PW = j->PW;
    float *fillrow = cpu_scratch(j->c, thread, (size_t)PW);
    if (!fillrow) {
        j->failed = 1;
        return;
    }
    const float fill = j->is_max ? -INFINITY : 0.0f;
    for (int64_t x = 0; x < PW; x++)
        fillrow[x] = fill;
    const int mode = !j->is_max ? POOL_AVG : j->kh == 3 && j->kw == 3 ? POOL_MAX_FIRST : POOL_MAX;
    const float *plane = v->t->data + (n * j->C + ch) * v->t->dims[2] * vw;
    /* local columns [xlo, xhi) hold image data; outputs [xa, xb) read only those */
    const int64_t xlo = clamp64(-j->ix0, 0, PW), xhi = clamp64(j->full_w - j->ix0, xlo, PW);
    const int64_t span = (int64_t)(j->kw - 1) * j->dw;
    int64_t xa = (xlo + j->sw - 1) / j->sw, xb = xhi - 1 - span < 0 ? 0 : (xhi - 1 - span) / j->sw + 1;
    xa = clamp64(xa, 0, j->cols);
    xb = clamp64(xb, xa, j->cols);
    float *o = j->out + (n * j->C + ch) * j->rows * j->cols;
    int64_t rowoff[POOL_MAXK];
    int valid[POOL_MAXK];
    const float *rp[POOL_MAXK];
    for (int64_t yi = 0; yi < j->rows; yi++) {
        float *orow = o + yi * j->cols;
        for (int ky = 0; ky < j->kh; ky++) {
            int64_t iy = j->iy0 + yi * j->sh + (int64_t)ky * j->dh;
            valid[ky] = iy >= 0 && iy < j->full_h;
            /* plane index of local column lx is rowoff + lx (>= 0 for lx >= xlo) */
            rowoff[ky] = valid[ky] ? (iy - v->h_off) * vw + (j->ix0 - v->w_off) : 0;
            if (xb > xa) /* xa * sw >= xlo: inside the view's row */
                rp[ky] = valid[ky] ? plane + rowoff[ky] + xa * j->sw : fillrow + xa * j->sw;
        }
        if (xb > xa && !pool_row_interior_avx512(orow + xa, rp, j->kh, j->kw, j->sw, j->dw, xb - xa, mode))
            pool_row_interior_c(orow + xa, rp, j->kh, j->kw, j->sw, j->dw, xb - xa, mode);
        for (int64_t x = 0; x < xa; x++)
            orow[x] = pool_border_point(j, plane, rowoff, valid, xlo, xhi, x, fill, mode);
        for (int64_t x = xb; x < j->cols; x++)
            orow[x] = pool_border_point(j, plane, rowoff, valid, xlo, xhi, x, fill, mode);
        if (!j->is_max)
            pool_avg_divide(orow, j->cnt_h[yi], j->cnt_w, j->cols);
    }
}

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
    j.fast = pool_fast_enabled() && j.kh <= POOL_MAXK;
    cpu_run(c, (int)(in[0].t->dims[0] * j.C), pool_task, &j,
            (double)in[0].t->dims[0] * j.C * j.rows * j.cols * j.kh * j.kw / 16.0);
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
