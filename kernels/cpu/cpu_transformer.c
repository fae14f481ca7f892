/* Fast CPU kernels of the transformer operators: LayerNormalization, Softmax
 * over the last axis, Gelu and Transpose, split over the backend's threads
 * by rows (every row computed by one thread with the same arithmetic, so the
 * result does not depend on the thread count). The other new operators
 * (reductions, Slice, Gather, Where, ...) are rarely hot and run the
 * reference kernels (cpu_backend.c delegates them). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

#define ROWS_PER_TASK_MIN 1

/* Vectorisable erf and exp (the C library's are scalar calls): the loops
 * below compile to AVX-512/AVX2 with them. erf: a rational approximation on
 * [-4, 4] (the coefficients of Eigen's fast erf; |error| < 5e-7 over the
 * float range, measured against erf()); exp: Cephes' expf (range reduction
 * by ln 2 in two parts, degree-6 polynomial, 2^n from the exponent bits),
 * relative error about 2e-7 (0 below e^-60). Both stay within the reference kernels'
 * agreement tolerance; tests/test_kernels_cpu.c checks them. */
static inline float fast_erf(float x)
{
    x = x < -4.0f ? -4.0f : x; /* ternaries, not fminf: they vectorise */
    x = x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

static inline float fast_exp(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest with 1.5 * 2^23: no branch, no call */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    /* e^-60 (9e-27) and below become 0: a normalised softmax row would carry
     * them as subnormals (masked attention: x - max = -10000 in BERT), and
     * subnormal operands make the next GEMM over 20x slower */
    return x < -60.0f ? 0.0f : y * scale;
}

float cpu_fast_erf(float x) { return fast_erf(x); }
float cpu_fast_exp(float x) { return fast_exp(x); }

/* Sum and max of a row with 16 independent lanes (vectorises without
 * -ffast-math; the order is fixed, so results do not depend on threads). */
static inline float row_sum(const float *x, int64_t n)
{
    float part[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            part[l] += x[i + l];
    float s = 0.0f;
    for (int l = 0; l < 16; l++)
        s += part[l];
    for (; i < n; i++)
        s += x[i];
    return s;
}

static inline float row_sq_dev(const float *x, int64_t n, float mean)
{
    float part[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            float d = x[i + l] - mean;
            part[l] += d * d;
        }
    float s = 0.0f;
    for (int l = 0; l < 16; l++)
        s += part[l];
    for (; i < n; i++)
        s += (x[i] - mean) * (x[i] - mean);
    return s;
}

static inline float row_max(const float *x, int64_t n)
{
    float part[16];
    for (int l = 0; l < 16; l++)
        part[l] = -INFINITY;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            part[l] = x[i + l] > part[l] ? x[i + l] : part[l];
    float m = -INFINITY;
    for (int l = 0; l < 16; l++)
        m = part[l] > m ? part[l] : m;
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

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
        float mean = row_sum(s, len) / (float)len;
        float inv = 1.0f / sqrtf(row_sq_dev(s, len, mean) / (float)len + eps);
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
 * the reference kernel. */
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
        float m = row_max(s, len);
        if (!(m > -INFINITY) || m == INFINITY) { /* all -inf, a +inf or NaN: the reference's arithmetic */
            float sum = 0.0f;
            for (int64_t i = 0; i < len; i++)
                sum += y[i] = expf(s[i] - m);
            for (int64_t i = 0; i < len; i++)
                y[i] /= sum;
            continue;
        }
        for (int64_t i = 0; i < len; i++)
            y[i] = fast_exp(s[i] - m);
        float inv = 1.0f / row_sum(y, len);
        for (int64_t k = 0; k < len; k++)
            y[k] *= inv;
    }
}

/* Softmax over the last axis (attention's): rows split over the threads,
 * vectorised exp, 16 partial sums. Other axes: the reference kernel. */
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
            y[i] = (x[i] * (fast_erf(x[i] * 0.707106781f) + 1.0f)) * 0.5f;
    }
}

/* Gelu on the whole tensor with the vectorised erf (a 4-D region request
 * runs the reference kernel). */
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
