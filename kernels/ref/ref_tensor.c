/* Reference kernels of the transformer operators: layout (Transpose, Slice,
 * Gather, Expand, Tile), normalisation (LayerNormalization,
 * InstanceNormalization), reductions, LogSoftmax, Where and Cast. All run on
 * whole tensors (none of them is spatially local, see core/graph_ops.c),
 * with direct loops in a fixed order. */
#include <math.h>
#include <string.h>

#include "ref_impl.h"

/* Row-major strides of dims[0..nd). */
static void strides_of(int nd, const int64_t *dims, int64_t *st)
{
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i];
    }
}

/* Advance the multi-index o over dims; 0 when it wrapped around. */
static int next_idx(int nd, int64_t *o, const int64_t *dims)
{
    for (int i = nd - 1; i >= 0; i--) {
        if (++o[i] < dims[i])
            return 1;
        o[i] = 0;
    }
    return 0;
}

static const mb_tensor *in_t(const ref_req *q, int k) { return q->v[k].t; }

int ref_transpose(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = n->out_ndim;
    int64_t ist[MB_MAX_DIMS], o[MB_MAX_DIMS] = {0}, st[MB_MAX_DIMS];
    strides_of(x->ndim, x->dims, ist);
    for (int i = 0; i < R; i++)
        st[i] = ist[n->a.perm[i]];
    float *y = q->out->data;
    if (mb_tensor_numel(q->out) == 0)
        return 0;
    do {
        int64_t off = 0;
        for (int i = 0; i < R; i++)
            off += o[i] * st[i];
        *y++ = x->data[off];
    } while (next_idx(R, o, n->out_dims));
    return 0;
}

/* Element of param p (broadcast to the trailing dims norm[0..nn)) at flat
 * index j of those dims. */
static float bcast_param(const mb_tensor *p, int nn, const int64_t *norm, int64_t j)
{
    int64_t off = 0, s = 1;
    for (int i = nn - 1, pi = p->ndim - 1; i >= 0; i--, pi--) {
        int64_t c = j % norm[i];
        j /= norm[i];
        if (pi >= 0) {
            if (p->dims[pi] != 1)
                off += c * s;
            s *= p->dims[pi];
        }
    }
    return p->data[off];
}

/* ONNX LayerNormalization-17: mean, D = x - mean, var = mean(D*D),
 * y = D * (1 / sqrt(var + eps)) * scale + bias, accumulated in double. */
int ref_layernorm(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int ax = n->a.axis, R = n->out_ndim;
    int64_t outer = 1, len = 1;
    for (int i = 0; i < ax; i++)
        outer *= n->out_dims[i];
    for (int i = ax; i < R; i++)
        len *= n->out_dims[i];
    const mb_tensor *sc = n->params[0], *bi = n->n_params > 1 ? n->params[1] : NULL;
    for (int64_t r = 0; r < outer; r++) {
        const float *s = x->data + r * len;
        float *y = q->out->data + r * len;
        double sum = 0, sq = 0;
        for (int64_t j = 0; j < len; j++)
            sum += s[j];
        float mean = (float)(sum / (double)len);
        for (int64_t j = 0; j < len; j++) {
            double d = (double)(s[j] - mean);
            sq += d * d;
        }
        float inv = 1.0f / sqrtf((float)(sq / (double)len) + n->a.epsilon);
        for (int64_t j = 0; j < len; j++) {
            float v = (s[j] - mean) * inv * bcast_param(sc, R - ax, n->out_dims + ax, j);
            y[j] = bi ? v + bcast_param(bi, R - ax, n->out_dims + ax, j) : v;
        }
    }
    return 0;
}

int ref_instancenorm(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int64_t N = n->out_dims[0], C = n->out_dims[1], len = 1;
    for (int i = 2; i < n->out_ndim; i++)
        len *= n->out_dims[i];
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *s = x->data + (b * C + c) * len;
            float *y = q->out->data + (b * C + c) * len;
            double sum = 0, sq = 0;
            for (int64_t j = 0; j < len; j++)
                sum += s[j];
            float mean = (float)(sum / (double)len);
            for (int64_t j = 0; j < len; j++) {
                double d = (double)(s[j] - mean);
                sq += d * d;
            }
            float inv = 1.0f / sqrtf((float)(sq / (double)len) + n->a.epsilon);
            float g = n->params[0]->data[c], be = n->params[1]->data[c];
            for (int64_t j = 0; j < len; j++)
                y[j] = (s[j] - mean) * inv * g + be;
        }
    return 0;
}

int ref_logsoftmax(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int ax = n->a.axis, R = n->out_ndim;
    int64_t outer = 1, len = n->out_dims[ax], inner = 1;
    for (int d = 0; d < ax; d++)
        outer *= n->out_dims[d];
    for (int d = ax + 1; d < R; d++)
        inner *= n->out_dims[d];
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            const float *s = x->data + a * len * inner + b;
            float *y = q->out->data + a * len * inner + b;
            float m = -INFINITY;
            double sum = 0;
            for (int64_t i = 0; i < len; i++)
                m = fmaxf(m, s[i * inner]);
            for (int64_t i = 0; i < len; i++)
                sum += exp((double)(s[i * inner] - m));
            float ls = (float)log(sum);
            for (int64_t i = 0; i < len; i++)
                y[i * inner] = s[i * inner] - m - ls;
        }
    return 0;
}

/* Offsets of a broadcast operand of dims d (rank nd) addressed by an output
 * multi-index of rank R: strides, 0 on broadcast axes. */
static void bcast_strides(int nd, const int64_t *d, int R, int64_t *st)
{
    int64_t s = 1;
    for (int i = R - 1; i >= 0; i--) {
        int j = i - (R - nd);
        int64_t len = j >= 0 ? d[j] : 1;
        st[i] = len == 1 ? 0 : s;
        s *= len;
    }
}

int ref_where(const ref_req *q)
{
    const mb_node *n = q->n;
    int R = n->out_ndim;
    int64_t st[3][MB_MAX_DIMS], o[MB_MAX_DIMS] = {0};
    for (int k = 0; k < 3; k++)
        bcast_strides(in_t(q, k)->ndim, in_t(q, k)->dims, R, st[k]);
    float *y = q->out->data;
    do {
        int64_t off[3] = {0, 0, 0};
        for (int i = 0; i < R; i++)
            for (int k = 0; k < 3; k++)
                off[k] += o[i] * st[k][i];
        *y++ = in_t(q, 0)->data[off[0]] != 0.0f ? in_t(q, 1)->data[off[1]] : in_t(q, 2)->data[off[2]];
    } while (next_idx(R, o, n->out_dims));
    return 0;
}

int ref_expand(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = n->out_ndim;
    int64_t st[MB_MAX_DIMS], o[MB_MAX_DIMS] = {0};
    bcast_strides(x->ndim, x->dims, R, st);
    float *y = q->out->data;
    do {
        int64_t off = 0;
        for (int i = 0; i < R; i++)
            off += o[i] * st[i];
        *y++ = x->data[off];
    } while (next_idx(R, o, n->out_dims));
    return 0;
}

int ref_tile(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = n->out_ndim;
    int64_t st[MB_MAX_DIMS], o[MB_MAX_DIMS] = {0};
    strides_of(R, x->dims, st);
    float *y = q->out->data;
    do {
        int64_t off = 0;
        for (int i = 0; i < R; i++)
            off += (o[i] % x->dims[i]) * st[i];
        *y++ = x->data[off];
    } while (next_idx(R, o, n->out_dims));
    return 0;
}

int ref_slice(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = n->out_ndim;
    int64_t st[MB_MAX_DIMS], o[MB_MAX_DIMS] = {0}, s0[MB_MAX_DIMS], sp[MB_MAX_DIMS];
    strides_of(R, x->dims, st);
    for (int i = 0; i < R; i++) {
        s0[i] = n->a.steps[i] ? n->a.starts[i] : 0;
        sp[i] = n->a.steps[i] ? n->a.steps[i] : 1;
    }
    float *y = q->out->data;
    do {
        int64_t off = 0;
        for (int i = 0; i < R; i++)
            off += (s0[i] + o[i] * sp[i]) * st[i];
        *y++ = x->data[off];
    } while (next_idx(R, o, n->out_dims));
    return 0;
}

int ref_gather(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *data, *idx;
    if (n->n_inputs == 2) {
        data = in_t(q, 0);
        idx = in_t(q, 1);
    } else {
        data = n->a.gather_table ? n->params[0] : in_t(q, 0);
        idx = n->a.gather_table ? in_t(q, 0) : n->params[0];
    }
    int ax = n->a.axis;
    int64_t outer = 1, inner = 1, len = data->dims[ax], ni = mb_tensor_numel(idx);
    for (int i = 0; i < ax; i++)
        outer *= data->dims[i];
    for (int i = ax + 1; i < data->ndim; i++)
        inner *= data->dims[i];
    for (int64_t j = 0; j < ni; j++) {
        float f = idx->data[j];
        if (f != floorf(f) || f < -(float)len || f >= (float)len)
            return ref_fail(q, "index %g at position %lld is not an integer in [%lld, %lld)", (double)f, (long long)j,
                            (long long)-len, (long long)len);
    }
    for (int64_t a = 0; a < outer; a++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = (int64_t)idx->data[j];
            if (k < 0)
                k += len;
            memcpy(q->out->data + (a * ni + j) * inner, data->data + (a * len + k) * inner,
                   sizeof(float) * (size_t)inner);
        }
    return 0;
}

static double reduce_init(mb_op_type t)
{
    switch (t) {
    case MB_OP_REDUCEMAX: return -INFINITY;
    case MB_OP_REDUCEMIN: return INFINITY;
    case MB_OP_REDUCEPROD: return 1.0;
    default: return 0.0;
    }
}

static double reduce_step(mb_op_type t, double acc, double v)
{
    switch (t) {
    case MB_OP_REDUCEMAX: return v > acc || isnan(v) ? v : acc;
    case MB_OP_REDUCEMIN: return v < acc || isnan(v) ? v : acc;
    case MB_OP_REDUCEPROD: return acc * v;
    case MB_OP_REDUCESUMSQUARE: case MB_OP_REDUCEL2: return acc + v * v;
    case MB_OP_REDUCEL1: return acc + fabs(v);
    case MB_OP_REDUCELOGSUMEXP: return acc + exp(v);
    default: return acc + v;
    }
}

static float reduce_final(mb_op_type t, double acc, int64_t cnt)
{
    switch (t) {
    case MB_OP_REDUCEMEAN: return (float)(acc / (double)cnt);
    case MB_OP_REDUCEL2: return (float)sqrt(acc);
    case MB_OP_REDUCELOGSUM: case MB_OP_REDUCELOGSUMEXP: return (float)log(acc);
    default: return (float)acc;
    }
}

/* Reductions accumulate in double over the reduced axes in row-major order. */
int ref_reduce(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = x->ndim, mask = n->a.axes_mask;
    int64_t st[MB_MAX_DIMS], kd[MB_MAX_DIMS], rd[MB_MAX_DIMS], kst[MB_MAX_DIMS], rst[MB_MAX_DIMS];
    strides_of(R, x->dims, st);
    int nk = 0, nr = 0;
    int64_t cnt = 1;
    for (int i = 0; i < R; i++) {
        if (mask & (1 << i)) {
            rd[nr] = x->dims[i];
            rst[nr++] = st[i];
            cnt *= x->dims[i];
        } else {
            kd[nk] = x->dims[i];
            kst[nk++] = st[i];
        }
    }
    int64_t ko[MB_MAX_DIMS] = {0};
    float *y = q->out->data;
    do {
        int64_t base = 0;
        for (int i = 0; i < nk; i++)
            base += ko[i] * kst[i];
        double acc = reduce_init(n->type);
        int64_t ro[MB_MAX_DIMS] = {0};
        if (cnt > 0)
            do {
                int64_t off = base;
                for (int i = 0; i < nr; i++)
                    off += ro[i] * rst[i];
                acc = reduce_step(n->type, acc, x->data[off]);
            } while (next_idx(nr, ro, rd));
        *y++ = reduce_final(n->type, acc, cnt);
    } while (next_idx(nk, ko, kd));
    return 0;
}

/* Cast: to an integer type truncates toward zero (C's conversion, as ONNX);
 * to bool is x != 0; values outside the exactly representable range are an
 * error rather than silently rounded. */
int ref_cast(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int64_t cnt = mb_tensor_numel(q->out);
    for (int64_t i = 0; i < cnt; i++) {
        float v = x->data[i];
        switch (n->a.dtype) {
        case MB_DT_FLOAT:
            break;
        case MB_DT_BOOL:
            v = v != 0.0f;
            break;
        default:
            if (isnan(v) || fabsf(v) > (float)MB_DT_EXACT_INT)
                return ref_fail(q, "value %g at %lld does not fit mecbed's exact integer range", (double)v,
                                (long long)i);
            v = truncf(v);
            if (n->a.dtype == MB_DT_UINT8)
                v = (float)((uint8_t)(int64_t)v);
            else if (n->a.dtype == MB_DT_INT8)
                v = (float)((int8_t)(int64_t)v);
            break;
        }
        q->out->data[i] = v;
    }
    return 0;
}

/* outer x len x inner split of a tensor around axis ax. */
static void split_axis(int nd, const int64_t *d, int ax, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < ax; i++)
        *outer *= d[i];
    for (int i = ax + 1; i < nd; i++)
        *inner *= d[i];
    *len = d[ax];
}

int ref_argmax(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int64_t outer, len, inner;
    split_axis(x->ndim, x->dims, n->a.axis, &outer, &len, &inner);
    int mx = n->type == MB_OP_ARGMAX;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            const float *s = x->data + a * len * inner + b;
            int64_t best = 0;
            for (int64_t i = 1; i < len; i++) {
                float v = s[i * inner], w = s[best * inner];
                int better = mx ? v > w : v < w;
                if (better || (n->a.select_last && v == w))
                    best = i;
            }
            q->out->data[a * inner + b] = (float)best;
        }
    return 0;
}

int ref_hardmax(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int64_t outer, len, inner;
    split_axis(x->ndim, x->dims, n->a.axis, &outer, &len, &inner);
    memset(q->out->data, 0, mb_tensor_bytes(q->out));
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            const float *s = x->data + a * len * inner + b;
            int64_t best = 0;
            for (int64_t i = 1; i < len; i++)
                if (s[i * inner] > s[best * inner])
                    best = i;
            q->out->data[a * len * inner + best * inner + b] = 1.0f;
        }
    return 0;
}

int ref_cumsum(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int64_t outer, len, inner;
    split_axis(x->ndim, x->dims, n->a.axis, &outer, &len, &inner);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            const float *s = x->data + a * len * inner + b;
            float *y = q->out->data + a * len * inner + b;
            double acc = 0;
            for (int64_t k = 0; k < len; k++) {
                int64_t i = n->a.reverse ? len - 1 - k : k;
                if (n->a.exclusive) {
                    y[i * inner] = (float)acc;
                    acc += s[i * inner];
                } else {
                    acc += s[i * inner];
                    y[i * inner] = (float)acc;
                }
            }
        }
    return 0;
}

int ref_trilu(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0);
    int R = x->ndim;
    int64_t rows = x->dims[R - 2], cols = x->dims[R - 1], mats = mb_tensor_numel(x) / (rows * cols > 0 ? rows * cols : 1);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                int64_t o = (m * rows + i) * cols + j;
                int keep = n->a.upper ? j - i >= n->a.diag_k : j - i <= n->a.diag_k;
                q->out->data[o] = keep ? x->data[o] : 0.0f;
            }
    return 0;
}

int ref_gather_elements(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0), *ix = n->n_inputs == 2 ? in_t(q, 1) : n->params[0];
    int R = x->ndim, ax = n->a.axis;
    int64_t st[MB_MAX_DIMS], o[MB_MAX_DIMS] = {0}, len = x->dims[ax];
    strides_of(R, x->dims, st);
    int64_t k = 0;
    do {
        float f = ix->data[k];
        if (f != floorf(f) || f < -(float)len || f >= (float)len)
            return ref_fail(q, "index %g at %lld is not an integer in [%lld, %lld)", (double)f, (long long)k,
                            (long long)-len, (long long)len);
        int64_t j = (int64_t)f < 0 ? (int64_t)f + len : (int64_t)f, off = 0;
        for (int i = 0; i < R; i++)
            off += (i == ax ? j : o[i]) * st[i];
        q->out->data[k++] = x->data[off];
    } while (next_idx(R, o, ix->dims));
    return 0;
}

/* NegativeLogLikelihoodLoss: loss = -x[n, t, ...] * w[t] (0 for ignored
 * targets); mean divides the sum by the sum of the weights used. */
int ref_nllloss(const ref_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *x = in_t(q, 0), *t = in_t(q, 1), *w = n->n_inputs == 3 ? in_t(q, 2) : NULL;
    int64_t N = x->dims[0], C = x->dims[1], D = mb_tensor_numel(x) / (N * C > 0 ? N * C : 1);
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) {
            float tf = t->data[i * D + d];
            int64_t c = (int64_t)tf;
            float loss = 0.0f;
            if (!(n->a.has_ignore && c == n->a.ignore_index)) {
                if (tf != floorf(tf) || c < 0 || c >= C)
                    return ref_fail(q, "target %g at %lld is not a class in [0, %lld)", (double)tf,
                                    (long long)(i * D + d), (long long)C);
                float wc = w ? w->data[c] : 1.0f;
                loss = -x->data[(i * C + c) * D + d] * wc;
                wsum += wc;
            }
            sum += loss;
            if (n->a.reduction == 0)
                q->out->data[i * D + d] = loss;
        }
    if (n->a.reduction == 2)
        q->out->data[0] = (float)sum;
    else if (n->a.reduction == 1)
        q->out->data[0] = (float)(sum / wsum);
    return 0;
}
