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

/* A rectangle of a 4-D NCHW tensor: rows [h0,h1) and columns [w0,w1), all
 * batches and channels. Coordinates are in the full tensor's frame. Tensors of
 * other ranks only have their full region (h = dims[ndim-2], w = dims[ndim-1]
 * for ndim >= 2; see mb_region_full). */
#ifndef MB_REGION_DEFINED /* policy.h gives plugins the same definition */
#define MB_REGION_DEFINED
typedef struct mb_region {
    int64_t h0, h1, w0, w1;
} mb_region;
#endif

/* A sub-tensor together with where it sits in the full tensor: t holds rows
 * [h_off, h_off + t->dims[2]) and columns [w_off, w_off + t->dims[3]) of a
 * full tensor whose height and width are full_h, full_w (4-D only; for other
 * ranks offsets are 0 and t is the whole tensor). */
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
/* Copy region r of the 4-D tensor src (described as a view) into dst, whose
 * dims are (N, C, rows(r), cols(r)). Returns 0, or -1 if r is not inside the view. */
int mb_tensor_copy_region(const mb_view *src, mb_region r, mb_tensor *dst);
/* Write the 4-D tile src (dims N, C, rows(r), cols(r)) into region r of dst. */
int mb_tensor_paste_region(mb_tensor *dst, mb_region r, const mb_tensor *src);
mb_view mb_view_whole(const mb_tensor *t);

/* Seeded generator used for weights and inputs (reproducible everywhere). */
uint64_t mb_rng_next(uint64_t *state);
float mb_rng_uniform(uint64_t *state); /* [0,1) */

#endif
