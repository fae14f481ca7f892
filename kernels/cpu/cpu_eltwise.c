/* Elementwise operators on the fast CPU backend: activations, binary ops
 * with numpy broadcasting, batch normalisation and concatenation, each for
 * any output rectangle of a 4-D tensor (whole tensor for other ranks). Loops
 * run along rows of the region so they vectorise; tasks are planes or runs of
 * rows. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"


/* ---- unary -------------------------------------------------------------- */

/* expf in a form GCC vectorises (glibc's expf is a call per element):
 * x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-6 minimax
 * polynomial (S. Moshier's published coefficients, about 1 ulp), 2^n built
 * in the exponent bits. x is clamped to [-87.3, 88.3] (results stay normal
 * floats; below, the sigmoid it serves is within 1e-38 of 0 anyway); NaN
 * stays NaN. */
static inline float exp_poly(float x)
{
    float xc = x > 88.3f ? 88.3f : x < -87.3f ? -87.3f : x;
    /* n = round(x / ln2): adding 1.5 * 2^23 leaves n in the low mantissa bits */
    union {
        float f;
        int32_t i;
    } t = {.f = xc * 1.44269504088896341f + 12582912.0f}, scale;
    float n = t.f - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    scale.i = (t.i - 0x4B400000 + 127) << 23;
    float y = p * scale.f;
    return x != x ? x : y;
}

/* x and y may be the same array (in place: a conv's fused activation). */
CPU_SIMD_CLONES
void cpu_unary_span(mb_op_type op, float alpha, float beta, const float *x, float *y, int64_t n)
{
    switch (op) {
    case MB_OP_RELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case MB_OP_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < alpha ? alpha : x[i];
            y[i] = v > beta ? beta : v;
        }
        break;
    case MB_OP_LEAKYRELU:
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
        break;
    case MB_OP_HARDSIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = alpha * x[i] + beta;
            v = v < 0.0f ? 0.0f : v;
            y[i] = v > 1.0f ? 1.0f : v;
        }
        break;
    case MB_OP_HARDSWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] * (1.0f / 6.0f) + 0.5f;
            v = v < 0.0f ? 0.0f : v;
            v = v > 1.0f ? 1.0f : v;
            y[i] = x[i] * v;
        }
        break;
    case MB_OP_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + exp_poly(-x[i]));
        break;
    default: /* Identity, Dropout */
        memcpy(y, x, sizeof(float) * (size_t)n);
        break;
    }
}

/* A 4-D region walked as "units" of contiguous elements: a whole plane's
 * region when the view's rows are exactly the region's columns (one long
 * span: short rows cost more in call overhead than in work), else one row. */
typedef struct rows_job {
    const mb_node *nd;
    const mb_view *v;
    float *out;
    mb_region r;
    int64_t rows, cols;
    int64_t unit_len, units_per_plane, n_units, units_per_task;
    const float *scale, *shift; /* batch norm: per channel y = x*scale + shift */
    int64_t channels, inner;    /* batch norm on non-4-D tensors */
    const mb_node *act;         /* batch norm: a fused activation after it, or NULL */
} rows_job;

/* Elements handed to one task. */
#define TASK_ELEMS 16384

static const float *unit_src(const rows_job *j, int64_t u, int64_t *channel)
{
    const mb_view *v = j->v;
    int64_t plane = u / j->units_per_plane, y = j->r.h0 + u % j->units_per_plane;
    *channel = plane % v->t->dims[1];
    return v->t->data + (plane * v->t->dims[2] + y - v->h_off) * v->t->dims[3] + (j->r.w0 - v->w_off);
}

static void setup_units(rows_job *j, const mb_view *v, mb_region r)
{
    j->v = v;
    j->r = r;
    j->rows = r.h1 - r.h0;
    j->cols = r.w1 - r.w0;
    int64_t planes = v->t->dims[0] * v->t->dims[1];
    if (v->t->dims[3] == j->cols && v->w_off == r.w0) {
        j->unit_len = j->rows * j->cols;
        j->units_per_plane = 1;
    } else {
        j->unit_len = j->cols;
        j->units_per_plane = j->rows;
    }
    j->n_units = planes * j->units_per_plane;
    j->units_per_task = j->unit_len >= TASK_ELEMS ? 1 : TASK_ELEMS / (j->unit_len ? j->unit_len : 1);
}

static int n_unit_tasks(const rows_job *j)
{
    return (int)((j->n_units + j->units_per_task - 1) / j->units_per_task);
}

static void unary_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t u0 = (int64_t)t * j->units_per_task, u1 = u0 + j->units_per_task < j->n_units ? u0 + j->units_per_task : j->n_units;
    for (int64_t u = u0; u < u1; u++) {
        int64_t ch;
        const float *src = unit_src(j, u, &ch);
        cpu_unary_span(j->nd->type, j->nd->a.alpha, j->nd->a.beta, src, j->out + u * j->unit_len, j->unit_len);
    }
}

static void unary_flat_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t n = j->cols; /* total elements */
    int64_t i0 = (int64_t)t * TASK_ELEMS, i1 = i0 + TASK_ELEMS < n ? i0 + TASK_ELEMS : n;
    cpu_unary_span(j->nd->type, j->nd->a.alpha, j->nd->a.beta, j->v->t->data + i0, j->out + i0, i1 - i0);
}

int cpu_unary(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
              size_t errlen)
{
    (void)err;
    (void)errlen;
    rows_job j = {0};
    j.nd = &g->nodes[node];
    j.out = out->data;
    if (in[0].t->ndim == 4 && out->ndim == 4) {
        setup_units(&j, &in[0], r);
        cpu_run(c, n_unit_tasks(&j), unary_task, &j, (double)j.n_units * j.unit_len / 4.0);
    } else {
        j.v = &in[0];
        j.cols = mb_tensor_numel(in[0].t);
        cpu_run(c, (int)((j.cols + TASK_ELEMS - 1) / TASK_ELEMS), unary_flat_task, &j, (double)j.cols / 4.0);
    }
    return 0;
}

/* ---- batch normalisation ------------------------------------------------ */

CPU_SIMD_CLONES
static void affine_span(const float *restrict x, float *restrict y, int64_t n, float a, float b)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * a + b;
}

static void bn_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t u0 = (int64_t)t * j->units_per_task, u1 = u0 + j->units_per_task < j->n_units ? u0 + j->units_per_task : j->n_units;
    for (int64_t u = u0; u < u1; u++) {
        int64_t ch;
        const float *src = unit_src(j, u, &ch);
        float *dst = j->out + u * j->unit_len;
        affine_span(src, dst, j->unit_len, j->scale[ch], j->shift[ch]);
        if (j->act) /* while the row is in L1: the unfused activation's code on the same values */
            cpu_unary_span(j->act->type, j->act->a.alpha, j->act->a.beta, dst, dst, j->unit_len);
    }
}

static void bn_flat_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t ch = t % j->channels;
    float *dst = j->out + (int64_t)t * j->inner;
    affine_span(j->v->t->data + (int64_t)t * j->inner, dst, j->inner, j->scale[ch], j->shift[ch]);
    if (j->act)
        cpu_unary_span(j->act->type, j->act->a.alpha, j->act->a.beta, dst, dst, j->inner);
}

/* act: an activation node fused after the normalisation (exec.c's --fuse
 * chains), applied to each row right after it was written; NULL: none. */
int cpu_batchnorm(cpu_ctx *c, const mb_graph *g, int node, const mb_node *act, const mb_view *in, mb_region r,
                  mb_tensor *out, char *err, size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    int64_t C = in[0].t->dims[1];
    float *ss = cpu_scratch(c, 0, (size_t)(2 * C));
    if (!ss) {
        snprintf(err, errlen, "batch norm '%s': out of memory", nd->name);
        return -1;
    }
    const float *sc = nd->params[0]->data, *bi = nd->params[1]->data, *mean = nd->params[2]->data,
                *var = nd->params[3]->data;
    for (int64_t ch = 0; ch < C; ch++) {
        ss[ch] = sc[ch] / sqrtf(var[ch] + nd->a.epsilon);
        ss[C + ch] = bi[ch] - mean[ch] * ss[ch];
    }
    rows_job j = {0};
    j.nd = nd;
    j.out = out->data;
    j.scale = ss;
    j.shift = ss + C;
    j.act = act;
    if (in[0].t->ndim == 4 && out->ndim == 4) {
        setup_units(&j, &in[0], r);
        /* scratch 0 holds the coefficients: no task uses scratch */
        cpu_run(c, n_unit_tasks(&j), bn_task, &j, (double)j.n_units * j.unit_len / 4.0);
    } else {
        j.v = &in[0];
        j.channels = C;
        j.inner = 1;
        for (int i = 2; i < in[0].t->ndim; i++)
            j.inner *= in[0].t->dims[i];
        cpu_run(c, (int)(in[0].t->dims[0] * C), bn_flat_task, &j, (double)mb_tensor_numel(in[0].t) / 4.0);
    }
    return 0;
}

/* ---- binary with broadcasting ------------------------------------------- */

typedef struct operand {
    const float *data;           /* element at the region's origin */
    int64_t stride[MB_MAX_DIMS]; /* per output dim; 0 where broadcast */
} operand;

typedef struct binary_job {
    mb_op_type op;
    operand o[2];
    float *out;
    int nd;
    int64_t len[MB_MAX_DIMS]; /* extent of the region per (coalesced) dim */
    int64_t n_rows;           /* product of len[0..nd-1) */
    int64_t rows_per_task;
} binary_job;

CPU_SIMD_CLONES
static void binary_span(mb_op_type op, const float *restrict a, int64_t sa, const float *restrict b, int64_t sb,
                        float *restrict y, int64_t n)
{
#define BIN_LOOP(EXPR)                                                                                             \
    do {                                                                                                           \
        if (sa == 1 && sb == 1)                                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                float x0 = a[i], x1 = b[i];                                                                        \
                y[i] = EXPR;                                                                                       \
            }                                                                                                      \
        else if (sa == 1 && sb == 0)                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                float x0 = a[i], x1 = b[0];                                                                        \
                y[i] = EXPR;                                                                                       \
            }                                                                                                      \
        else if (sa == 0 && sb == 1)                                                                               \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                float x0 = a[0], x1 = b[i];                                                                        \
                y[i] = EXPR;                                                                                       \
            }                                                                                                      \
        else                                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                                      \
                float x0 = a[i * sa], x1 = b[i * sb];                                                              \
                y[i] = EXPR;                                                                                       \
            }                                                                                                      \
    } while (0)
    switch (op) {
    case MB_OP_ADD: BIN_LOOP(x0 + x1); break;
    case MB_OP_SUB: BIN_LOOP(x0 - x1); break;
    case MB_OP_MUL: BIN_LOOP(x0 * x1); break;
    default: BIN_LOOP(x0 / x1); break;
    }
#undef BIN_LOOP
}

static void binary_task(void *arg, int t, int thread)
{
    (void)thread;
    binary_job *j = arg;
    int last = j->nd - 1;
    int64_t cols = j->len[last];
    int64_t q0 = (int64_t)t * j->rows_per_task, q1 = q0 + j->rows_per_task < j->n_rows ? q0 + j->rows_per_task : j->n_rows;
    for (int64_t q = q0; q < q1; q++) {
        int64_t rem = q, idx[2] = {0, 0};
        for (int d = last - 1; d >= 0; d--) {
            int64_t cd = rem % j->len[d];
            rem /= j->len[d];
            idx[0] += cd * j->o[0].stride[d];
            idx[1] += cd * j->o[1].stride[d];
        }
        binary_span(j->op, j->o[0].data + idx[0], j->o[0].stride[last], j->o[1].data + idx[1],
                    j->o[1].stride[last], j->out + q * cols, cols);
    }
}

/* Describe operand t (a 4-D view with offsets when v is non-NULL) against an
 * output of rank nd with full dims od, the region starting at lo. */
static void make_operand(operand *o, const mb_tensor *t, const mb_view *v, int nd, const int64_t *od,
                         const int64_t *lo)
{
    int64_t st = 1, base = 0;
    for (int d = nd - 1; d >= 0; d--) {
        int td = d - (nd - t->ndim);
        o->stride[d] = 0;
        if (td < 0)
            continue;
        int64_t full = t->dims[td], off = 0;
        int spatial_view = v && t->ndim == 4 && td >= 2;
        if (spatial_view) {
            full = td == 2 ? v->full_h : v->full_w;
            off = td == 2 ? v->h_off : v->w_off;
        }
        if (full != 1 || od[d] == 1) {
            o->stride[d] = st;
            base += (lo[d] - off) * st;
        }
        st *= t->dims[td];
    }
    o->data = t->data + base;
}

int cpu_binary(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    (void)err;
    (void)errlen;
    const mb_node *nd = &g->nodes[node];
    binary_job j = {0};
    j.op = nd->type;
    j.out = out->data;
    j.nd = nd->out_ndim;
    const int64_t *od = nd->out_dims;
    int64_t lo[MB_MAX_DIMS] = {0};
    for (int d = 0; d < j.nd; d++)
        j.len[d] = od[d];
    if (j.nd == 4) {
        lo[2] = r.h0;
        j.len[2] = r.h1 - r.h0;
        lo[3] = r.w0;
        j.len[3] = r.w1 - r.w0;
    }
    make_operand(&j.o[0], in[0].t, &in[0], j.nd, od, lo);
    if (nd->n_params)
        make_operand(&j.o[1], nd->params[0], NULL, j.nd, od, lo);
    else
        make_operand(&j.o[1], in[1].t, &in[1], j.nd, od, lo);
    if (j.nd == 0) { /* scalars */
        j.nd = 1;
        j.len[0] = 1;
        j.o[0].stride[0] = j.o[1].stride[0] = 0;
    }
    for (int d = 0; d < j.nd; d++)
        if (j.len[d] == 0)
            return 0;
    /* Coalesce adjacent dims that both operands walk contiguously (the
     * output always does): a same-shape Add over whole planes becomes one
     * long row instead of many short ones. */
    for (int d = j.nd - 2; d >= 0; d--) {
        int ok = 1;
        for (int k = 0; k < 2; k++)
            if (j.len[d] != 1 && j.o[k].stride[d] != j.o[k].stride[d + 1] * j.len[d + 1])
                ok = 0;
        if (!ok)
            continue;
        j.len[d + 1] *= j.len[d];
        for (int e = d; e < j.nd - 1; e++) {
            j.len[e] = j.len[e + 1];
            j.o[0].stride[e] = j.o[0].stride[e + 1];
            j.o[1].stride[e] = j.o[1].stride[e + 1];
        }
        j.nd--;
    }
    j.n_rows = 1;
    for (int d = 0; d < j.nd - 1; d++)
        j.n_rows *= j.len[d];
    int64_t row = j.len[j.nd - 1];
    j.rows_per_task = row >= TASK_ELEMS ? 1 : TASK_ELEMS / row;
    cpu_run(c, (int)((j.n_rows + j.rows_per_task - 1) / j.rows_per_task), binary_task, &j,
            (double)j.n_rows * row / 4.0);
    return 0;
}

/* ---- concat ------------------------------------------------------------- */

/* Concat along channels of 4-D tensors: tasks over output planes (batch,
 * channel), each a memcpy of the region's rows (one when the view's rows
 * are the region's). */
typedef struct concat_job {
    const mb_node *nd;
    const mb_view *in;
    float *out;
    mb_region r;
    int64_t C, rows, cols, planes_per_task, n_planes;
} concat_job;

static void concat_task(void *arg, int t, int thread)
{
    (void)thread;
    const concat_job *j = arg;
    int64_t p0 = (int64_t)t * j->planes_per_task, p1 = p0 + j->planes_per_task < j->n_planes ? p0 + j->planes_per_task : j->n_planes;
    const int64_t plane = j->rows * j->cols;
    for (int64_t p = p0; p < p1;) {
        int64_t n = p / j->C, ch = p % j->C;
        int k = 0;
        while (ch >= j->in[k].t->dims[1]) /* the input holding output channel ch */
            ch -= j->in[k++].t->dims[1];
        const mb_view *v = &j->in[k];
        int64_t vc = v->t->dims[1], vh = v->t->dims[2], vw = v->t->dims[3];
        const float *src = v->t->data + ((n * vc + ch) * vh + j->r.h0 - v->h_off) * vw + (j->r.w0 - v->w_off);
        float *dst = j->out + p * plane;
        /* planes of this input up to the task's end */
        int64_t run = vc - ch < p1 - p ? vc - ch : p1 - p;
        if (vw == j->cols && vh == j->rows) { /* the view is the region: one block */
            memcpy(dst, src, sizeof(float) * (size_t)(run * plane));
        } else {
            for (int64_t q = 0; q < run; q++, src += vh * vw, dst += plane) {
                if (vw == j->cols) {
                    memcpy(dst, src, sizeof(float) * (size_t)plane);
                    continue;
                }
                for (int64_t y = 0; y < j->rows; y++)
                    memcpy(dst + y * j->cols, src + y * vw, sizeof(float) * (size_t)j->cols);
            }
        }
        p += run;
    }
}

int cpu_concat(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    const mb_node *nd = &g->nodes[node];
    int ax = nd->a.axis;
    float *dst = out->data;
    if (out->ndim == 4 && ax == 1) {
        concat_job j = {nd, in, dst, r, out->dims[1], r.h1 - r.h0, r.w1 - r.w0, 1, out->dims[0] * out->dims[1]};
        int64_t plane = j.rows * j.cols;
        if (plane == 0 || j.n_planes == 0)
            return 0;
        j.planes_per_task = TASK_ELEMS * 4 / plane > 1 ? TASK_ELEMS * 4 / plane : 1;
        cpu_run(c, (int)((j.n_planes + j.planes_per_task - 1) / j.planes_per_task), concat_task, &j,
                (double)(j.n_planes * plane) / 4.0);
        return 0;
    }
    /* any other axis: whole tensors */
    int64_t outer = 1;
    for (int d = 0; d < ax; d++)
        outer *= out->dims[d];
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < nd->n_inputs; k++) {
            const mb_tensor *t = in[k].t;
            int64_t block = 1;
            for (int d = ax; d < t->ndim; d++)
                block *= t->dims[d];
            if (block && !t->data) {
                snprintf(err, errlen, "concat '%s': input %d has no data", nd->name, k);
                return -1;
            }
            memcpy(dst, t->data + o * block, sizeof(float) * (size_t)block);
            dst += block;
        }
    return 0;
}
