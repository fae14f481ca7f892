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

/* Rows of work handed to one task when a tensor is not split by planes. */
#define ROWS_PER_TASK 64

/* ---- unary -------------------------------------------------------------- */

CPU_SIMD_CLONES
static void unary_span(mb_op_type op, float alpha, float beta, const float *restrict x, float *restrict y, int64_t n)
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
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    default: /* Identity, Dropout */
        memcpy(y, x, sizeof(float) * (size_t)n);
        break;
    }
}

/* A 4-D region (or a whole tensor of another rank, as one row) walked as
 * rows of `cols` elements: row q is (plane q / rows, row q % rows). */
typedef struct rows_job {
    const mb_node *nd;
    const mb_view *v;
    float *out;
    mb_region r;
    int64_t rows, cols, n_rows;
    const float *scale, *shift; /* batch norm: per channel y = x*scale + shift */
    int64_t channels, inner;    /* batch norm on non-4-D tensors */
} rows_job;

static const float *region_row(const rows_job *j, int64_t q)
{
    const mb_view *v = j->v;
    int64_t plane = q / j->rows, y = j->r.h0 + q % j->rows;
    return v->t->data + (plane * v->t->dims[2] + y - v->h_off) * v->t->dims[3] + (j->r.w0 - v->w_off);
}

static void unary_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t q0 = (int64_t)t * ROWS_PER_TASK, q1 = q0 + ROWS_PER_TASK < j->n_rows ? q0 + ROWS_PER_TASK : j->n_rows;
    for (int64_t q = q0; q < q1; q++)
        unary_span(j->nd->type, j->nd->a.alpha, j->nd->a.beta, region_row(j, q), j->out + q * j->cols, j->cols);
}

/* Split a flat array into ROWS_PER_TASK-row tasks of at most this many
 * elements each when it is not 4-D. */
#define FLAT_ROW 4096

static void unary_flat_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t n = j->cols; /* total elements */
    int64_t i0 = (int64_t)t * FLAT_ROW * ROWS_PER_TASK, i1 = i0 + FLAT_ROW * ROWS_PER_TASK;
    if (i1 > n)
        i1 = n;
    unary_span(j->nd->type, j->nd->a.alpha, j->nd->a.beta, j->v->t->data + i0, j->out + i0, i1 - i0);
}

static void setup_rows(rows_job *j, const mb_view *v, mb_region r)
{
    j->v = v;
    j->r = r;
    j->rows = r.h1 - r.h0;
    j->cols = r.w1 - r.w0;
    j->n_rows = v->t->dims[0] * v->t->dims[1] * j->rows;
}

static int n_row_tasks(int64_t n_rows)
{
    return (int)((n_rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK);
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
        setup_rows(&j, &in[0], r);
        cpu_pool_run(c->pool, n_row_tasks(j.n_rows), unary_task, &j);
    } else {
        j.v = &in[0];
        j.cols = mb_tensor_numel(in[0].t);
        int64_t per = (int64_t)FLAT_ROW * ROWS_PER_TASK;
        cpu_pool_run(c->pool, (int)((j.cols + per - 1) / per), unary_flat_task, &j);
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
    int64_t q0 = (int64_t)t * ROWS_PER_TASK, q1 = q0 + ROWS_PER_TASK < j->n_rows ? q0 + ROWS_PER_TASK : j->n_rows;
    int64_t C = j->v->t->dims[1];
    for (int64_t q = q0; q < q1; q++) {
        int64_t ch = (q / j->rows) % C;
        affine_span(region_row(j, q), j->out + q * j->cols, j->cols, j->scale[ch], j->shift[ch]);
    }
}

static void bn_flat_task(void *arg, int t, int thread)
{
    (void)thread;
    rows_job *j = arg;
    int64_t ch = t % j->channels;
    affine_span(j->v->t->data + (int64_t)t * j->inner, j->out + (int64_t)t * j->inner, j->inner, j->scale[ch],
                j->shift[ch]);
}

int cpu_batchnorm(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                  char *err, size_t errlen)
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
    if (in[0].t->ndim == 4 && out->ndim == 4) {
        setup_rows(&j, &in[0], r);
        /* scratch 0 holds the coefficients: only the calling thread's buffer is used */
        cpu_pool_run(c->pool, n_row_tasks(j.n_rows), bn_task, &j);
    } else {
        j.v = &in[0];
        j.channels = C;
        j.inner = 1;
        for (int i = 2; i < in[0].t->ndim; i++)
            j.inner *= in[0].t->dims[i];
        cpu_pool_run(c->pool, (int)(in[0].t->dims[0] * C), bn_flat_task, &j);
    }
    return 0;
}

/* ---- binary with broadcasting ------------------------------------------- */

typedef struct operand {
    const float *data;
    int64_t stride[MB_MAX_DIMS]; /* per output dim; 0 where broadcast */
    int64_t off[MB_MAX_DIMS];    /* subtracted from the output coordinate */
} operand;

typedef struct binary_job {
    mb_op_type op;
    operand o[2];
    float *out;
    int nd;
    int64_t lo[MB_MAX_DIMS], len[MB_MAX_DIMS]; /* output coordinates covered */
    int64_t n_rows;                            /* product of len[0..nd-1) */
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
    int64_t q0 = (int64_t)t * ROWS_PER_TASK, q1 = q0 + ROWS_PER_TASK < j->n_rows ? q0 + ROWS_PER_TASK : j->n_rows;
    for (int64_t q = q0; q < q1; q++) {
        /* output coordinate of row q */
        int64_t rem = q, idx[2] = {0, 0};
        for (int d = last - 1; d >= 0; d--) {
            int64_t cd = j->lo[d] + rem % j->len[d];
            rem /= j->len[d];
            for (int k = 0; k < 2; k++)
                idx[k] += (cd - j->o[k].off[d]) * j->o[k].stride[d];
        }
        for (int k = 0; k < 2; k++)
            idx[k] += (j->lo[last] - j->o[k].off[last]) * j->o[k].stride[last];
        binary_span(j->op, j->o[0].data + idx[0], j->o[0].stride[last], j->o[1].data + idx[1],
                    j->o[1].stride[last], j->out + q * cols, cols);
    }
}

/* Describe operand t (a 4-D view with offsets when v is non-NULL) against an
 * output of rank nd with full dims od. */
static void make_operand(operand *o, const mb_tensor *t, const mb_view *v, int nd, const int64_t *od)
{
    o->data = t->data;
    int64_t st = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int td = d - (nd - t->ndim);
        o->stride[d] = 0;
        o->off[d] = 0;
        if (td < 0)
            continue;
        int64_t full = t->dims[td];
        if (v && t->ndim == 4 && td >= 2)
            full = td == 2 ? v->full_h : v->full_w;
        if (full != 1 || od[d] == 1) {
            o->stride[d] = st;
            if (v && t->ndim == 4 && td >= 2)
                o->off[d] = td == 2 ? v->h_off : v->w_off;
        }
        st *= t->dims[td];
    }
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
    make_operand(&j.o[0], in[0].t, &in[0], j.nd, od);
    if (nd->n_params)
        make_operand(&j.o[1], nd->params[0], NULL, j.nd, od);
    else
        make_operand(&j.o[1], in[1].t, &in[1], j.nd, od);
    for (int d = 0; d < j.nd; d++) {
        j.lo[d] = 0;
        j.len[d] = od[d];
    }
    if (j.nd == 4) {
        j.lo[2] = r.h0;
        j.len[2] = r.h1 - r.h0;
        j.lo[3] = r.w0;
        j.len[3] = r.w1 - r.w0;
    }
    if (j.nd == 0) { /* scalars */
        j.nd = 1;
        j.len[0] = 1;
        j.o[0].stride[0] = j.o[1].stride[0] = 0;
    }
    j.n_rows = 1;
    for (int d = 0; d < j.nd - 1; d++)
        j.n_rows *= j.len[d];
    if (j.len[j.nd - 1] == 0 || j.n_rows == 0)
        return 0;
    cpu_pool_run(c->pool, n_row_tasks(j.n_rows), binary_task, &j);
    return 0;
}

/* ---- concat ------------------------------------------------------------- */

int cpu_concat(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    (void)c;
    const mb_node *nd = &g->nodes[node];
    int ax = nd->a.axis;
    float *dst = out->data;
    if (out->ndim == 4 && ax == 1) {
        int64_t N = out->dims[0], rows = r.h1 - r.h0, cols = r.w1 - r.w0;
        for (int64_t n = 0; n < N; n++)
            for (int k = 0; k < nd->n_inputs; k++) {
                const mb_view *v = &in[k];
                int64_t Ck = v->t->dims[1], vh = v->t->dims[2], vw = v->t->dims[3];
                for (int64_t ch = 0; ch < Ck; ch++)
                    for (int64_t y = r.h0; y < r.h1; y++) {
                        memcpy(dst, v->t->data + ((n * Ck + ch) * vh + y - v->h_off) * vw + (r.w0 - v->w_off),
                               sizeof(float) * (size_t)cols);
                        dst += cols;
                    }
                (void)rows;
            }
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
