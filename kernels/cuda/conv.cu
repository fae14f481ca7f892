/* Conv and ConvTranspose on the GPU (ONNX semantics: groups, strides,
 * asymmetric pads, dilation, output_padding; NCHW; any output tile).
 *
 * Conv paths:
 *  - 1x1, stride 1, no padding, the view's columns exactly the tile's: the
 *    input tile already is the GEMM's right operand (ld = channel stride),
 *    no copy; cuBLAS sgemm (strided-batched over batch or groups).
 *  - one input channel per group (depthwise, any multiplier): a direct
 *    kernel, one thread per output element, taps in the reference's order.
 *  - everything else: im2col of the tile (per batch, in pixel chunks that fit
 *    the scratch cap) on the GPU, then cuBLAS sgemm strided-batched over groups.
 * For batch 1 and one group the GEMM runs in up to MBC_SLICES output-channel
 * slices; each slice is downloaded while the next one is computed.
 * ConvTranspose: a direct gather kernel (output element <- every input tap
 * that lands on it), as kernels/ref/ref_conv.c. */
#include <stdint.h>

#include "common.cuh"

/* The im2col buffer is capped; larger tiles are done in pixel chunks. */
#define IM2COL_CAP_BYTES ((size_t)256 << 20)

typedef struct conv_geom {
    int64_t N, C, M, Cg, Mg, G;
    int kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t h0, w0, rows, cols, P; /* output tile */
} conv_geom;

static void geom(const mbc_req *q, conv_geom *g)
{
    const mb_node *n = q->n;
    const mb_op_attrs *a = &n->a;
    const mb_tensor *x = q->v[0].t;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = n->out_dims[1];
    g->G = a->group > 0 ? a->group : 1;
    g->kh = a->kernel[0];
    g->kw = a->kernel[1];
    g->sh = a->stride[0] > 0 ? a->stride[0] : 1;
    g->sw = a->stride[1] > 0 ? a->stride[1] : 1;
    g->dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    g->dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    g->pt = a->pads[0];
    g->pl = a->pads[1];
    g->h0 = q->r.h0;
    g->w0 = q->r.w0;
    g->rows = mb_region_rows(q->r);
    g->cols = mb_region_cols(q->r);
    g->P = g->rows * g->cols;
}

/* ---- kernels ------------------------------------------------------------ */

/* col[(gi*K + k) * pc + (p - p0)] for p in [p0, p0+pc), k = (c, ky, kx). */
typedef struct k_im2col {
    conv_geom g;
    mbc_v4 v;
    int64_t b, p0, pc;
    float *col;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t K = g.Cg * g.kh * g.kw;
        int64_t pp = i % pc, t = i / pc;
        int64_t k = t % K, gi = t / K;
        int64_t kx = k % g.kw, r = k / g.kw;
        int64_t ky = r % g.kh, c = r / g.kh;
        int64_t p = p0 + pp;
        int64_t oy = g.h0 + p / g.cols, ox = g.w0 + p % g.cols;
        int64_t iy = oy * g.sh - g.pt + ky * g.dh, ix = ox * g.sw - g.pl + kx * g.dw;
        float val = 0.0f;
        if (iy >= 0 && iy < v.H && ix >= 0 && ix < v.W)
            val = *mbc_at(v, b, gi * g.Cg + c, iy, ix);
        col[i] = val;
    }
} k_im2col;

/* Depthwise (one input channel per group): taps in (ky, kx) order, padding
 * skipped, then + bias: the reference's order. */
typedef struct k_depthwise {
    conv_geom g;
    mbc_v4 v;
    const float *w, *bias;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t ox = i % g.cols + g.w0, t = i / g.cols;
        int64_t oy = t % g.rows + g.h0;
        t /= g.rows;
        int64_t m = t % g.M, b = t / g.M;
        int64_t c = m / g.Mg; /* Cg == 1: the group's one input channel */
        const float *wm = w + m * g.kh * g.kw;
        float acc = 0.0f;
        for (int ky = 0; ky < g.kh; ky++) {
            int64_t iy = oy * g.sh - g.pt + (int64_t)ky * g.dh;
            if (iy < 0 || iy >= v.H)
                continue;
            for (int kx = 0; kx < g.kw; kx++) {
                int64_t ix = ox * g.sw - g.pl + (int64_t)kx * g.dw;
                if (ix < 0 || ix >= v.W)
                    continue;
                acc += *mbc_at(v, b, c, iy, ix) * wm[ky * g.kw + kx];
            }
        }
        if (bias)
            acc += bias[m];
        y[i] = acc;
    }
} k_depthwise;

/* y[(b*M + m)*P + p] += bias[m] for m in [m0, m0+mc), all b and p. */
typedef struct k_bias {
    float *y;
    const float *bias;
    int64_t M, m0, mc, P;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t p = i % P, t = i / P;
        int64_t m = m0 + t % mc, b = t / mc;
        y[(b * M + m) * P + p] += bias[m];
    }
} k_bias;

/* ---- host --------------------------------------------------------------- */

static int check_int(const mbc_req *q, int64_t a, int64_t b, int64_t c)
{
    if (a > 0x7fffffff || b > 0x7fffffff || c > 0x7fffffff)
        return mbc_fail(q, "a GEMM dimension exceeds cuBLAS's 32-bit int");
    return 0;
}

/* out[b] (M x P row-major) = W (M x K) * B_b (K x P, ld ldb), group by group,
 * for the batches [b0, b1) (B_b at B + (b-b0)*bstride) and output channels
 * [m0, m1) (only with one group); then bias for those channels. */
static int gemm_rows(const mbc_req *q, const conv_geom *g, const float *w, const float *B, int64_t ldb,
                     int64_t bstride_group, int64_t bstride_batch, int64_t nbatch, float *out, int64_t ldo,
                     int64_t m0, int64_t m1, int64_t pc)
{
    int64_t K = g->Cg * g->kh * g->kw;
    if (check_int(q, pc, m1 - m0, K) || check_int(q, ldb, ldo, nbatch))
        return -1;
    /* column-major: out^T (pc x Mg) = B^T (pc x K, ld ldb) * W^T (K x Mg, ld K) */
    if (g->G == 1)
        return mbc_sgemm_strided(q, CUBLAS_OP_N, CUBLAS_OP_N, (int)pc, (int)(m1 - m0), (int)K, 1.0f, B, (int)ldb,
                                 bstride_batch, w + m0 * K, (int)K, 0, out + m0 * ldo, (int)ldo, g->M * ldo,
                                 (int)nbatch);
    for (int64_t b = 0; b < nbatch; b++)
        if (mbc_sgemm_strided(q, CUBLAS_OP_N, CUBLAS_OP_N, (int)pc, (int)g->Mg, (int)K, 1.0f, B + b * bstride_batch,
                              (int)ldb, bstride_group, w, (int)K, g->Mg * K, out + b * g->M * ldo, (int)ldo,
                              g->Mg * ldo, (int)g->G))
            return -1;
    return 0;
}

static int add_bias(const mbc_req *q, const conv_geom *g, const float *bias, int64_t m0, int64_t m1)
{
    if (!bias || m1 <= m0)
        return 0;
    k_bias f = {q->dout, bias, g->M, m0, m1 - m0, g->P};
    return mbc_launch(q, f, g->N * (m1 - m0) * g->P);
}

/* Output-channel slices for copy/compute overlap: batch 1, one group, and
 * an output worth overlapping (>= 1 MiB). */
static int n_slices(const conv_geom *g)
{
    if (g->N != 1 || g->G != 1 || g->M < 2 * MBC_SLICES || g->M * g->P * (int64_t)sizeof(float) < ((int64_t)1 << 20))
        return 1;
    return MBC_SLICES;
}

int mbc_conv(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *w = n->params[0];
    conv_geom g;
    geom(q, &g);
    if (g.G < 1 || g.C % g.G || g.M % g.G)
        return mbc_fail(q, "group %lld does not divide channels %lld / %lld", (long long)g.G, (long long)g.C,
                        (long long)g.M);
    g.Cg = g.C / g.G;
    g.Mg = g.M / g.G;
    if (w->ndim != 4 || w->dims[0] != g.M || w->dims[1] != g.Cg || w->dims[2] != g.kh || w->dims[3] != g.kw)
        return mbc_fail(q, "weights do not have the shape [%lld,%lld,%d,%d]", (long long)g.M, (long long)g.Cg, g.kh,
                        g.kw);
    const float *dw = mbc_param(q, w);
    const float *dbias = n->n_params > 1 ? mbc_param(q, n->params[1]) : NULL;
    if (!dw || (n->n_params > 1 && !dbias))
        return -1;
    mbc_v4 v = mbc_view4(q, 0);
    int64_t total = mb_tensor_numel(q->out);
    if (!total)
        return 0;

    if (g.Cg == 1) { /* depthwise */
        k_depthwise f = {g, v, dw, dbias, q->dout};
        return mbc_launch(q, f, total);
    }

    int S = n_slices(&g);
    int pointwise = g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
                    v.w_off == g.w0 && v.w == g.cols && g.h0 >= v.h_off && g.h0 + g.rows <= v.h_off + v.h;
    if (pointwise) {
        /* input rows [h0, h0+rows) of each channel are contiguous in the view */
        const float *B = v.p + (g.h0 - v.h_off) * v.w;
        int64_t cstride = v.h * v.w;
        for (int s = 0; s < S; s++) {
            int64_t m0 = g.M * s / S, m1 = g.M * (s + 1) / S;
            if (gemm_rows(q, &g, dw, B, cstride, g.Cg * cstride, g.C * cstride, g.N, q->dout, g.P,
                          g.G == 1 ? m0 : 0, g.G == 1 ? m1 : g.M, g.P) ||
                add_bias(q, &g, dbias, m0, m1))
                return -1;
            if (S > 1 && mbc_download_slice(q, s, m0 * g.P, (m1 - m0) * g.P))
                return -1;
        }
        ((mbc_req *)q)->sliced = S > 1;
        return 0;
    }

    /* im2col + GEMM, per batch, in pixel chunks */
    int64_t K = g.Cg * g.kh * g.kw;
    int64_t per_pixel = g.G * K * (int64_t)sizeof(float);
    int64_t pc = (int64_t)(IM2COL_CAP_BYTES / (size_t)per_pixel);
    if (pc < 1)
        pc = 1;
    if (pc > g.P)
        pc = g.P;
    float *col = (float *)mbc_scratch(q, (size_t)(per_pixel * pc));
    if (!col)
        return -1;
    if (pc < g.P)
        S = 1; /* chunked over pixels: slices by channel would redo im2col */
    for (int64_t b = 0; b < g.N; b++)
        for (int64_t p0 = 0; p0 < g.P; p0 += pc) {
            int64_t cnt = pc < g.P - p0 ? pc : g.P - p0;
            int64_t nel = g.G * K * cnt;
            k_im2col f = {g, v, b, p0, cnt, col};
            if (mbc_launch(q, f, nel))
                return -1;
            float *out_b = q->dout + b * g.M * g.P + p0;
            for (int s = 0; s < S; s++) {
                int64_t m0 = g.G == 1 ? g.M * s / S : 0, m1 = g.G == 1 ? g.M * (s + 1) / S : g.M;
                if (gemm_rows(q, &g, dw, col, cnt, K * cnt, 0, 1, out_b, g.P, m0, m1, cnt))
                    return -1;
                if (S > 1) { /* batch 1, whole tile in one chunk */
                    if (add_bias(q, &g, dbias, m0, m1) || mbc_download_slice(q, s, m0 * g.P, (m1 - m0) * g.P))
                        return -1;
                }
            }
        }
    if (S == 1 && add_bias(q, &g, dbias, 0, g.M))
        return -1;
    ((mbc_req *)q)->sliced = S > 1;
    return 0;
}

/* ---- ConvTranspose ------------------------------------------------------ */

__host__ __device__ static inline int tr_src(int64_t o, int j, int s, int p, int d, int64_t len, int64_t *i)
{
    int64_t t = o + p - (int64_t)j * d;
    if (t < 0 || t % s)
        return 0;
    *i = t / s;
    return *i < len;
}

typedef struct k_conv_transpose {
    conv_geom g;
    mbc_v4 v;
    const float *w, *bias;
    float *y;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t ox = i % g.cols + g.w0, t = i / g.cols;
        int64_t oy = t % g.rows + g.h0;
        t /= g.rows;
        int64_t m = t % g.M, b = t / g.M;
        int64_t gi = m / g.Mg, mm = m - gi * g.Mg;
        float acc = 0.0f;
        for (int64_t c = gi * g.Cg; c < (gi + 1) * g.Cg; c++)
            for (int ky = 0; ky < g.kh; ky++) {
                int64_t iy;
                if (!tr_src(oy, ky, g.sh, g.pt, g.dh, v.H, &iy))
                    continue;
                const float *wrow = w + ((c * g.Mg + mm) * g.kh + ky) * g.kw;
                for (int kx = 0; kx < g.kw; kx++) {
                    int64_t ix;
                    if (!tr_src(ox, kx, g.sw, g.pl, g.dw, v.W, &ix))
                        continue;
                    acc += *mbc_at(v, b, c, iy, ix) * wrow[kx];
                }
            }
        if (bias)
            acc += bias[m];
        y[i] = acc;
    }
} k_conv_transpose;

int mbc_conv_transpose(const mbc_req *q)
{
    const mb_node *n = q->n;
    const mb_tensor *w = n->params[0];
    conv_geom g;
    geom(q, &g);
    if (g.G < 1 || g.C % g.G || g.M % g.G)
        return mbc_fail(q, "group %lld does not divide channels %lld / %lld", (long long)g.G, (long long)g.C,
                        (long long)g.M);
    g.Cg = g.C / g.G;
    g.Mg = g.M / g.G;
    if (w->ndim != 4 || w->dims[0] != g.C || w->dims[1] != g.Mg || w->dims[2] != g.kh || w->dims[3] != g.kw)
        return mbc_fail(q, "weights do not have the shape [%lld,%lld,%d,%d]", (long long)g.C, (long long)g.Mg, g.kh,
                        g.kw);
    const float *dw = mbc_param(q, w);
    const float *dbias = n->n_params > 1 ? mbc_param(q, n->params[1]) : NULL;
    if (!dw || (n->n_params > 1 && !dbias))
        return -1;
    int64_t total = mb_tensor_numel(q->out);
    k_conv_transpose f = {g, mbc_view4(q, 0), dw, dbias, q->dout};
    return mbc_launch(q, f, total);
}
