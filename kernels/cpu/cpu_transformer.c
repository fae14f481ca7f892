/* Fast CPU kernels of the transformer operators: LayerNormalization, Softmax
 * over the last axis, Gelu and Transpose, split over the backend's threads
 * by rows (every row computed by one thread with the same arithmetic, so the
 * result does not depend on the thread count). The other new operators
 * (reductions, Slice, Gather, Where, ...) are rarely hot and run the
 * reference kernels (cpu_backend.c delegates them). */
#include <math.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

#define ROWS_PER_TASK_MIN 1

typedef struct row_job {
    const mb_node *n;
    const float *x;
    float *y;
    int64_t rows, len;
    int64_t per_task;
    const float *scale, *bias; /* LayerNorm: full-length rows of scale and bias (NULL bias: none) */
} row_job;

static int tasks_for(int64_t rows, int64_t *per_task, int n_threads)
{
    int64_t want = (int64_t)n_threads * 4;
    if (want > rows)
        want = rows;
    if (want < 1)
        want = 1;
    *per_task = (rows + want - 1) / want;
    if (*per_task < ROWS_PER_TASK_MIN)
        *per_task = ROWS_PER_TASK_MIN;
    return (int)((rows + *per_task - 1) / *per_task);
}

CPU_SIMD_CLONES
static void layernorm_rows(void *arg, int task, int thread)
{
    (void)thread;
    const row_job *j = arg;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    int64_t len = j->len;
    float eps = j->n->a.epsilon;
    for (int64_t r = r0; r < r1; r++) {
        const float *s = j->x + r * len;
        float *y = j->y + r * len;
        double sum = 0;
        for (int64_t i = 0; i < len; i++)
            sum += s[i];
        float mean = (float)(sum / (double)len);
        double sq = 0;
        for (int64_t i = 0; i < len; i++) {
            double d = (double)(s[i] - mean);
            sq += d * d;
        }
        float inv = 1.0f / sqrtf((float)(sq / (double)len) + eps);
        const float *g = j->scale, *b = j->bias;
        if (b)
            for (int64_t i = 0; i < len; i++)
                y[i] = (s[i] - mean) * inv * g[i] + b[i];
        else
            for (int64_t i = 0; i < len; i++)
                y[i] = (s[i] - mean) * inv * g[i];
    }
}

/* LayerNormalization whose scale and bias have exactly the normalised
 * length (the common case: the zoo, PyTorch exports); other broadcasts run
 * the reference kernel. Same arithmetic as the reference kernel, so the two
 * backends agree bit for bit. */
int cpu_layernorm(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                  size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    int64_t rows = 1, len = 1;
    for (int i = 0; i < n->a.axis; i++)
        rows *= n->out_dims[i];
    for (int i = n->a.axis; i < n->out_ndim; i++)
        len *= n->out_dims[i];
    const mb_tensor *sc = n->params[0], *bi = n->n_params > 1 ? n->params[1] : NULL;
    if (mb_tensor_numel(sc) != len || (bi && mb_tensor_numel(bi) != len))
        return c->ref->compute(c->ref, g, node, in, mb_region_full_dims(n->out_ndim, n->out_dims), out, err, errlen);
    row_job j = {n, in[0].t->data, out->data, rows, len, 0, sc->data, bi ? bi->data : NULL};
    int nt = tasks_for(rows, &j.per_task, c->n_threads);
    cpu_run(c, nt, layernorm_rows, &j, (double)(rows * len) * 2.0);
    return 0;
}

CPU_SIMD_CLONES
static void softmax_rows(void *arg, int task, int thread)
{
    (void)thread;
    const row_job *j = arg;
    int64_t r0 = task * j->per_task, r1 = r0 + j->per_task < j->rows ? r0 + j->per_task : j->rows;
    int64_t len = j->len;
    for (int64_t r = r0; r < r1; r++) {
        const float *s = j->x + r * len;
        float *y = j->y + r * len;
        float m = -INFINITY, sum = 0.0f;
        for (int64_t i = 0; i < len; i++)
            if (s[i] > m)
                m = s[i];
        for (int64_t i = 0; i < len; i++) {
            y[i] = expf(s[i] - m);
            sum += y[i];
        }
        for (int64_t i = 0; i < len; i++)
            y[i] /= sum;
    }
}

/* Softmax over the last axis (attention's): one row per task slice, the
 * reference kernel's arithmetic in the same order. Other axes: reference. */
int cpu_softmax(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    if (n->a.axis != n->out_ndim - 1)
        return c->ref->compute(c->ref, g, node, in, mb_region_full_dims(n->out_ndim, n->out_dims), out, err, errlen);
    int64_t len = n->out_dims[n->out_ndim - 1], rows = mb_tensor_numel(out) / (len ? len : 1);
    row_job j = {n, in[0].t->data, out->data, rows, len, 0, NULL, NULL};
    int nt = tasks_for(rows, &j.per_task, c->n_threads);
    cpu_run(c, nt, softmax_rows, &j, (double)(rows * len) * 8.0);
    return 0;
}

CPU_SIMD_CLONES
static void gelu_chunk(void *arg, int task, int thread)
{
    (void)thread;
    const row_job *j = arg;
    int64_t i0 = task * j->per_task, i1 = i0 + j->per_task < j->len ? i0 + j->per_task : j->len;
    const float *x = j->x;
    float *y = j->y;
    if (j->n->a.gelu_tanh) {
        for (int64_t i = i0; i < i1; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
        }
    } else {
        for (int64_t i = i0; i < i1; i++)
            y[i] = (x[i] * (erff(x[i] / 1.41421354f) + 1.0f)) * 0.5f;
    }
}

/* Gelu on the whole tensor (a 4-D region request runs the reference kernel,
 * which computes the same formula). */
int cpu_gelu(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
             size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    int64_t cnt = mb_tensor_numel(out);
    if (n->out_ndim == 4 && cnt != mb_tensor_numel(in[0].t))
        return c->ref->compute(c->ref, g, node, in, r, out, err, errlen);
    row_job j = {n, in[0].t->data, out->data, 0, cnt, 0, NULL, NULL};
    int64_t want = (int64_t)c->n_threads * 4;
    j.per_task = (cnt + want - 1) / want;
    if (j.per_task < 4096)
        j.per_task = 4096;
    int nt = (int)((cnt + j.per_task - 1) / j.per_task);
    cpu_run(c, nt, gelu_chunk, &j, (double)cnt * 10.0);
    return 0;
}

typedef struct tr_job {
    const float *x;
    float *y;
    int R;                      /* rank after merging */
    int64_t od[MB_MAX_DIMS];    /* output dims */
    int64_t st[MB_MAX_DIMS];    /* input stride of each output axis */
    int64_t outer;              /* product of od[0..R-1) */
} tr_job;

static void transpose_rows(void *arg, int task, int thread)
{
    (void)thread;
    const tr_job *j = arg;
    int R = j->R;
    int64_t last = j->od[R - 1], lst = j->st[R - 1];
    int64_t per = (j->outer + 63) / 64;
    int64_t r0 = task * per, r1 = r0 + per < j->outer ? r0 + per : j->outer;
    for (int64_t r = r0; r < r1; r++) {
        int64_t rem = r, off = 0;
        for (int d = R - 2; d >= 0; d--) {
            off += (rem % j->od[d]) * j->st[d];
            rem /= j->od[d];
        }
        const float *s = j->x + off;
        float *y = j->y + r * last;
        if (lst == 1)
            memcpy(y, s, sizeof(float) * (size_t)last);
        else
            for (int64_t i = 0; i < last; i++)
                y[i] = s[i * lst];
    }
}

/* Transpose: output rows gathered with the input strides of each output
 * axis (a contiguous memcpy when the last axis stays last, as in attention's
 * [B,N,H,D] -> [B,H,N,D]). Exact: it only moves values. */
int cpu_transpose(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                  size_t errlen)
{
    (void)err;
    (void)errlen;
    const mb_node *n = &g->nodes[node];
    const mb_tensor *x = in[0].t;
    tr_job j = {x->data, out->data, n->out_ndim, {0}, {0}, 1};
    int64_t ist[MB_MAX_DIMS], s = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        ist[i] = s;
        s *= x->dims[i];
    }
    for (int i = 0; i < j.R; i++) {
        j.od[i] = n->out_dims[i];
        j.st[i] = ist[n->a.perm[i]];
    }
    for (int i = 0; i < j.R - 1; i++)
        j.outer *= j.od[i];
    if (mb_tensor_numel(out) == 0)
        return 0;
    int nt = j.outer < 64 ? (int)j.outer : 64;
    /* transpose_rows splits outer into 64 slices; run them all */
    cpu_run(c, 64, transpose_rows, &j, (double)mb_tensor_numel(out) / 4.0);
    (void)nt;
    return 0;
}
