/* mecbed: dense fp32 tensors, row-major (NCHW for 4-D), and the rectangle
 * ("region") vocabulary that every split policy is built on. */
#ifndef MECBED_TENSOR_H
#define MECBED_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define MB_MAX_DIMS 8

typedef struct mb_tensor {
    int ndim;
    int64_t dims[MB_MAX_DIMS];
    float *data;   /* contiguous, row-major */
    int owns_data; /* mb_tensor_free() frees data too */
} mb_tensor;

/* A rectangle of a tensor along its two region axes (mb_region_axes): rows
 * [h0,h1) and columns [w0,w1), every other axis whole. Coordinates are in the
 * full tensor's frame. 4-D NCHW: rows = H, columns = W (all batches and
 * channels). 2-D and 3-D (transformer activations): rows = axis 0, columns =
 * axis 1, axis 2 whole: [tokens, features] splits by tokens or features,
 * [heads, tokens, d] by heads or tokens, [tokens, heads, d] by tokens or
 * heads. Rank 1: columns = axis 0; ranks 0 and >= 5 only have their full
 * region in practice (rows and columns = the last two axes). */
#ifndef MB_REGION_DEFINED /* policy.h gives plugins the same definition */
#define MB_REGION_DEFINED
typedef struct mb_region {
    int64_t h0, h1, w0, w1;
} mb_region;
#endif

/* A sub-tensor together with where it sits in the full tensor: t holds rows
 * [h_off, h_off + rows) and columns [w_off, w_off + cols) along the region
 * axes (4-D: dims[2], dims[3]) of a full tensor whose extents there are
 * full_h, full_w. */
typedef struct mb_view {
    const mb_tensor *t;
    int64_t h_off, w_off;
    int64_t full_h, full_w;
} mb_view;

mb_tensor *mb_tensor_new(int ndim, const int64_t *dims);              /* zero-filled */
mb_tensor *mb_tensor_new4(int64_t n, int64_t c, int64_t h, int64_t w); /* zero-filled */
mb_tensor *mb_tensor_clone(const mb_tensor *t);
void mb_tensor_free(mb_tensor *t);
int64_t mb_tensor_numel(const mb_tensor *t);
size_t mb_tensor_bytes(const mb_tensor *t);
int mb_tensor_same_shape(const mb_tensor *a, const mb_tensor *b);
/* Largest |a-b| over all elements; INFINITY when shapes differ. */
double mb_tensor_max_abs_diff(const mb_tensor *a, const mb_tensor *b);
/* Fill with uniform values in [lo,hi) from a seeded generator (xorshift). */
void mb_tensor_fill_uniform(mb_tensor *t, uint64_t seed, float lo, float hi);

/* Region helpers. */
int64_t mb_region_rows(mb_region r);
int64_t mb_region_cols(mb_region r);
int mb_region_empty(mb_region r);
mb_region mb_region_full_dims(int ndim, const int64_t *dims);
/* The axes rows and columns index for a tensor of rank ndim (-1: none). */
void mb_region_axes(int ndim, int *ah, int *aw);
/* The dims of region r of a tensor of dims full (the full dims with the two
 * region axes replaced by rows(r) and cols(r)) into out; returns ndim. */
int mb_region_box_dims(int ndim, const int64_t *full, mb_region r, int64_t *out);
/* Copy region r of the tensor src (described as a view: h_off/w_off along
 * the region axes) into dst, whose dims are src's with the region axes
 * replaced by rows(r), cols(r) (4-D: N, C, rows, cols). Returns 0, or -1 if r
 * is not inside the view. */
int mb_tensor_copy_region(const mb_view *src, mb_region r, mb_tensor *dst);
/* Write the tile src (dst's dims with rows(r), cols(r) on the region axes) into region r of dst. */
int mb_tensor_paste_region(mb_tensor *dst, mb_region r, const mb_tensor *src);
mb_view mb_view_whole(const mb_tensor *t);

/* Seeded generator used for weights and inputs (reproducible everywhere). */
uint64_t mb_rng_next(uint64_t *state);
float mb_rng_uniform(uint64_t *state); /* [0,1) */

#endif
