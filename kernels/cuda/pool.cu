/* Pooling on the GPU: MaxPool and AveragePool (one thread per output
 * element, taps in the reference's order, so each element is computed the
 * same way whatever the tile) and GlobalAveragePool (one block per plane,
 * a tree reduction: a different summation order from the reference, so it
 * agrees within tolerance, not bit for bit). ONNX semantics as in
 * kernels/ref/ref_pool.c: taps outside the image are left out of a max; for
 * an average they count only with count_include_pad and only inside the
 * padded extent. */
#include <math.h>

#include "common.cuh"

typedef struct pool_geom {
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, is_max, count_pad;
} pool_geom;

typedef struct k_pool {
    pool_geom p;
    mbc_v4 v;
    float *y;
    int64_t C, rows, cols, h0, w0;
    __host__ __device__ void operator()(int64_t i) const
    {
        int64_t ox = i % cols + w0, t = i / cols;
        int64_t oy = t % rows + h0;
        t /= rows;
        int64_t c = t % C, b = t / C;
        float acc = p.is_max ? -INFINITY : 0.0f;
        int64_t count = 0;
        for (int ky = 0; ky < p.kh; ky++) {
            int64_t iy = oy * p.sh - p.pt + (int64_t)ky * p.dh;
            int in_h = iy >= 0 && iy < v.H, in_padded_h = iy >= -p.pt && iy < v.H + p.pb;
            for (int kx = 0; kx < p.kw; kx++) {
                int64_t ix = ox * p.sw - p.pl + (int64_t)kx * p.dw;
                int in_w = ix >= 0 && ix < v.W, in_padded_w = ix >= -p.pl && ix < v.W + p.pr;
                if (in_h && in_w) {
                    float x = *mbc_at(v, b, c, iy, ix);
                    if (p.is_max) {
                        if (x > acc || isnan(x))
                            acc = x;
                    } else {
                        acc += x;
                    }
                    count++;
                } else if (p.count_pad && in_padded_h && in_padded_w) {
                    count++;
                }
            }
        }
        if (!p.is_max)
            acc = count ? acc / (float)count : 0.0f;
        y[i] = acc;
    }
} k_pool;

int mbc_pool(const mbc_req *q)
{
    const mb_op_attrs *a = &q->n->a;
    pool_geom p;
    p.kh = a->kernel[0];
    p.kw = a->kernel[1];
    if (p.kh <= 0 || p.kw <= 0)
        return mbc_fail(q, "kernel_shape is missing");
    p.sh = a->stride[0] > 0 ? a->stride[0] : 1;
    p.sw = a->stride[1] > 0 ? a->stride[1] : 1;
    p.dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    p.dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    p.pt = a->pads[0];
    p.pl = a->pads[1];
    p.pb = a->pads[2];
    p.pr = a->pads[3];
    p.is_max = q->n->type == MB_OP_MAXPOOL;
    p.count_pad = a->count_include_pad;
    k_pool f = {p, mbc_view4(q, 0), q->dout, q->n->out_dims[1], mb_region_rows(q->r), mb_region_cols(q->r), q->r.h0,
                q->r.w0};
    return mbc_launch(q, f, mb_tensor_numel(q->out));
}

/* One block per (batch, channel) plane. */
__global__ static void k_global_avg(const float *x, float *y, int64_t size)
{
    __shared__ float part[MBC_THREADS];
    const float *s = x + (int64_t)blockIdx.x * size;
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < size; i += blockDim.x)
        acc += s[i];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w)
            part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        y[blockIdx.x] = size ? part[0] / (float)size : 0.0f;
}

int mbc_global_avgpool(const mbc_req *q)
{
    const mb_tensor *x = q->v[0].t;
    int64_t planes = x->dims[0] * x->dims[1], size = 1;
    for (int d = 2; d < x->ndim; d++)
        size *= x->dims[d];
    if (planes > 0x7fffffff)
        return mbc_fail(q, "%lld planes exceed one grid", (long long)planes);
    if (q->c->emu) { /* the harness: a plain sum per plane (the GPU reduces as a tree) */
        for (int64_t p = 0; p < planes; p++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < size; i++)
                acc += q->din[0][p * size + i];
            q->dout[p] = size ? acc / (float)size : 0.0f;
        }
        return 0;
    }
    k_global_avg<<<(unsigned)planes, MBC_THREADS, 0, q->c->comp>>>(q->din[0], q->dout, size);
    MBC_LAUNCHED();
    return 0;
}
