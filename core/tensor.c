#include "mecbed/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

mb_tensor *mb_tensor_new(int ndim, const int64_t *dims)
{
    if (ndim < 0 || ndim > MB_MAX_DIMS)
        return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && n > INT64_MAX / 4 / dims[i]))
            return NULL;
        n *= dims[i];
    }
    mb_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ndim = ndim;
    memcpy(t->dims, dims, sizeof(int64_t) * ndim);
    t->data = calloc(n > 0 ? (size_t)n : 1, sizeof(float));
    if (!t->data) {
        free(t);
        return NULL;
    }
    t->owns_data = 1;
    return t;
}

mb_tensor *mb_tensor_new4(int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t d[4] = {n, c, h, w};
    return mb_tensor_new(4, d);
}

mb_tensor *mb_tensor_clone(const mb_tensor *t)
{
    mb_tensor *c = mb_tensor_new(t->ndim, t->dims);
    if (c)
        memcpy(c->data, t->data, mb_tensor_bytes(t));
    return c;
}

void mb_tensor_free(mb_tensor *t)
{
    if (!t)
        return;
    if (t->owns_data)
        free(t->data);
    free(t);
}

int64_t mb_tensor_numel(const mb_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

size_t mb_tensor_bytes(const mb_tensor *t)
{
    return (size_t)mb_tensor_numel(t) * sizeof(float);
}

int mb_tensor_same_shape(const mb_tensor *a, const mb_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

double mb_tensor_max_abs_diff(const mb_tensor *a, const mb_tensor *b)
{
    if (!mb_tensor_same_shape(a, b))
        return INFINITY;
    double m = 0;
    int64_t n = mb_tensor_numel(a);
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a->data[i] - (double)b->data[i]);
        if (d > m || isnan(d))
            m = isnan(d) ? INFINITY : d;
    }
    return m;
}

uint64_t mb_rng_next(uint64_t *s)
{
    /* xorshift64*: small, fast, identical on every platform */
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float mb_rng_uniform(uint64_t *s)
{
    return (float)((mb_rng_next(s) >> 40) * (1.0 / 16777216.0));
}

void mb_tensor_fill_uniform(mb_tensor *t, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    int64_t n = mb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        t->data[i] = lo + (hi - lo) * mb_rng_uniform(&s);
}

int64_t mb_region_rows(mb_region r) { return r.h1 - r.h0; }
int64_t mb_region_cols(mb_region r) { return r.w1 - r.w0; }
int mb_region_empty(mb_region r) { return r.h1 <= r.h0 || r.w1 <= r.w0; }

void mb_region_axes(int ndim, int *ah, int *aw)
{
    if (ndim == 4) {
        *ah = 2;
        *aw = 3;
    } else if (ndim == 2 || ndim == 3) {
        *ah = 0;
        *aw = 1;
    } else if (ndim >= 5) {
        *ah = ndim - 2;
        *aw = ndim - 1;
    } else {
        *ah = -1;
        *aw = ndim - 1; /* rank 1: columns only; rank 0: neither */
    }
}

mb_region mb_region_full_dims(int ndim, const int64_t *dims)
{
    mb_region r = {0, 1, 0, 1};
    int ah, aw;
    mb_region_axes(ndim, &ah, &aw);
    if (ah >= 0)
        r.h1 = dims[ah];
    if (aw >= 0)
        r.w1 = dims[aw];
    return r;
}

int mb_region_box_dims(int ndim, const int64_t *full, mb_region r, int64_t *out)
{
    int ah, aw;
    mb_region_axes(ndim, &ah, &aw);
    for (int d = 0; d < ndim; d++)
        out[d] = full[d];
    if (ah >= 0)
        out[ah] = mb_region_rows(r);
    if (aw >= 0)
        out[aw] = mb_region_cols(r);
    return ndim;
}

/* A tensor as [outer, rows, cols, inner] around its region axes. */
static void region_frame(const mb_tensor *t, int64_t *outer, int64_t *rows, int64_t *cols, int64_t *inner)
{
    int ah, aw;
    mb_region_axes(t->ndim, &ah, &aw);
    *outer = *inner = 1;
    *rows = ah >= 0 ? t->dims[ah] : 1;
    *cols = aw >= 0 ? t->dims[aw] : 1;
    for (int d = 0; d < (ah >= 0 ? ah : aw); d++)
        *outer *= t->dims[d];
    for (int d = aw + 1; d < t->ndim; d++)
        *inner *= t->dims[d];
}

/* dims equal except along the region axes */
static int same_but_region(const mb_tensor *a, const mb_tensor *b)
{
    int ah, aw;
    if (a->ndim != b->ndim)
        return 0;
    mb_region_axes(a->ndim, &ah, &aw);
    for (int d = 0; d < a->ndim; d++)
        if (d != ah && d != aw && a->dims[d] != b->dims[d])
            return 0;
    return 1;
}

mb_view mb_view_whole(const mb_tensor *t)
{
    mb_view v = {t, 0, 0, 0, 0};
    mb_region r = mb_region_full_dims(t->ndim, t->dims);
    v.full_h = r.h1;
    v.full_w = r.w1;
    return v;
}

int mb_tensor_copy_region(const mb_view *src, mb_region r, mb_tensor *dst)
{
    const mb_tensor *s = src->t;
    if (!same_but_region(s, dst))
        return -1;
    int64_t outer, sh, sw, inner, o2, dr, dc, i2;
    region_frame(s, &outer, &sh, &sw, &inner);
    region_frame(dst, &o2, &dr, &dc, &i2);
    if (r.h0 < src->h_off || r.w0 < src->w_off || r.h1 > src->h_off + sh || r.w1 > src->w_off + sw)
        return -1;
    int64_t rows = mb_region_rows(r), cols = mb_region_cols(r);
    if (dr != rows || dc != cols)
        return -1;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t y = 0; y < rows; y++)
            memcpy(dst->data + ((p * rows + y) * cols) * inner,
                   s->data + ((p * sh + (r.h0 - src->h_off + y)) * sw + (r.w0 - src->w_off)) * inner,
                   (size_t)(cols * inner) * sizeof(float));
    return 0;
}

int mb_tensor_paste_region(mb_tensor *dst, mb_region r, const mb_tensor *src)
{
    if (!same_but_region(dst, src))
        return -1;
    int64_t outer, dh, dw, inner, o2, sr, sc, i2;
    region_frame(dst, &outer, &dh, &dw, &inner);
    region_frame(src, &o2, &sr, &sc, &i2);
    int64_t rows = mb_region_rows(r), cols = mb_region_cols(r);
    if (r.h0 < 0 || r.w0 < 0 || r.h1 > dh || r.w1 > dw || sr != rows || sc != cols)
        return -1;
    for (int64_t p = 0; p < outer; p++)
        for (int64_t y = 0; y < rows; y++)
            memcpy(dst->data + ((p * dh + r.h0 + y) * dw + r.w0) * inner, src->data + ((p * rows + y) * cols) * inner,
                   (size_t)(cols * inner) * sizeof(float));
    return 0;
}
