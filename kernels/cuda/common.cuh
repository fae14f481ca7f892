/* Private to the CUDA backend (kernels/cuda): the backend context, one
 * compute request, device views, the error-check macros and the per-op-family
 * entry points the dispatcher (cuda_backend.cu) calls.
 *
 * Data path of one compute call (the mb_backend interface is host in, host
 * out): each input view is staged through pinned memory and copied to the
 * device on the copy stream; weights are uploaded once and cached on the
 * device; the op runs on the compute stream; the output comes back through
 * pinned memory. An op that produces its output in channel slices (Conv at
 * batch 1 with one group and an output of 1 MiB or more) records an event
 * per slice so the copy stream brings slice i home while slice i+1 is
 * computed. Device memory is plain
 * cudaMalloc (no managed memory), grown on demand and kept per backend. */
#ifndef MECBED_CUDA_COMMON_CUH
#define MECBED_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "../backend_impl.h"
#include "mb_cuda.h"
}

/* A compute request failing: message into q->err, return -1. */
int mbc_fail(const struct mbc_req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one error-check macro for CUDA runtime calls (and its cuBLAS twin):
 * inside a function that has a request q in scope, a failing call writes
 * "node ... : <file>:<line> <call>: <CUDA error string>" and returns -1. */
#define MBC_CHECK(call)                                                                                     \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess)                                                                              \
            return mbc_fail(q, "%s:%d %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_));         \
    } while (0)
#define MBC_BLAS(call)                                                                                      \
    do {                                                                                                    \
        cublasStatus_t s_ = (call);                                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                    \
            return mbc_fail(q, "%s:%d %s: %s", __FILE__, __LINE__, #call, cublasGetStatusString(s_));      \
    } while (0)
/* After a kernel launch: launch errors (bad configuration) surface here. */
#define MBC_LAUNCHED() MBC_CHECK(cudaGetLastError())

#define MBC_THREADS 256
/* Grid for a grid-stride loop over n elements. */
static inline unsigned mbc_blocks(int64_t n)
{
    int64_t b = (n + MBC_THREADS - 1) / MBC_THREADS;
    if (b < 1)
        b = 1;
    if (b > 65535 * 4)
        b = 65535 * 4;
    return (unsigned)b;
}

/* Kernels are functors: a struct holding the arguments with a
 * __host__ __device__ operator()(i) computing output element i. mbc_launch
 * runs one on the GPU as a grid-stride loop over n elements; in the
 * host-simulation test harness (mbc_hostsim_new, tests only) it runs the same
 * operator() in a plain loop on the CPU, so the kernels' index arithmetic is
 * tested where no GPU exists. */
template <class F> __global__ void mbc_grid(F f, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        f(i);
}

/* A growable device buffer (plain cudaMalloc). */
typedef struct mbc_dbuf {
    void *p;
    size_t len;
} mbc_dbuf;

/* One cached weight tensor on the device, keyed by the host tensor. */
typedef struct mbc_weight {
    const float *host;
    size_t bytes;
    uint64_t fp; /* sampled fingerprint of the host data (detects a reused address) */
    float *dev;
} mbc_weight;

#define MBC_SLICES 4 /* output slices for copy/compute overlap */

typedef struct mbc_ctx {
    int device;
    char device_name[320];
    cudaStream_t comp, copy;
    cudaEvent_t ev_in, ev_slice[MBC_SLICES], ev_copied[MBC_SLICES];
    cublasHandle_t blas;
    pthread_mutex_t lock; /* one compute at a time per backend instance */
    mbc_dbuf io, scratch; /* inputs + output; im2col and the like */
    void *pin;                 /* pinned host staging */
    size_t pin_len;
    mbc_weight *w;
    int n_w, cap_w;
    size_t w_bytes;
    int w_full; /* a weight did not fit: the call is retried once with an empty cache */
    int emu;        /* host-simulation test harness: no CUDA call at all (mbc_hostsim_new) */
    float *emu_scratch;
    size_t emu_scratch_len;
    mbc_nvml *nvml; /* NULL when NVML is absent */
    char nvml_why[256];
    mb_backend *host_ref; /* the transformer operators run on the host's reference kernels (no GPU kernels yet) */
} mbc_ctx;

/* A 4-D input view on the device: dims of the held sub-tensor, where it sits
 * (h_off, w_off) in the full H x W frame. */
typedef struct mbc_v4 {
    const float *p;
    int64_t n, c, h, w; /* held dims */
    int64_t h_off, w_off, H, W;
} mbc_v4;

static __host__ __device__ inline const float *mbc_at(const mbc_v4 &v, int64_t n, int64_t c, int64_t y, int64_t x)
{
    return v.p + ((n * v.c + c) * v.h + (y - v.h_off)) * v.w + (x - v.w_off);
}

/* A validated request; din[k] is input k on the device (same layout as the
 * host view), dout the output tile on the device (dims of q->out). */
typedef struct mbc_req {
    mbc_ctx *c;
    const mb_graph *g;
    int node;
    const mb_node *n;
    const mb_view *v; /* host views, full_h/full_w filled */
    mb_region r;      /* output region (the full output for non-4-D) */
    mb_tensor *out;
    const float **din;
    float *dout;
    int sliced; /* the op downloaded its output itself, slice by slice */
    char *err;
    size_t errlen;
} mbc_req;

mbc_v4 mbc_view4(const mbc_req *q, int k);
/* A parameter tensor on the device (uploaded once, cached). NULL on failure
 * (message in q->err). */
const float *mbc_param(const mbc_req *q, const mb_tensor *t);
/* Device scratch of at least bytes (grown on demand; valid until the next call). */
void *mbc_scratch(const mbc_req *q, size_t bytes);
/* Small per-op table (index maps, pointer arrays) copied to the device. */
void *mbc_table(const mbc_req *q, const void *host, size_t bytes);
/* Download output elements [off, off+count) (floats) of the tile after the
 * compute stream reached the point recorded as slice s; used by ops that
 * compute their output in slices. The caller sets q->sliced. */
int mbc_download_slice(const mbc_req *q, int s, int64_t off, int64_t count);

template <class F> static inline int mbc_launch(const mbc_req *q, const F &f, int64_t n)
{
    if (n <= 0)
        return 0;
    if (q->c->emu) {
        for (int64_t i = 0; i < n; i++)
            f(i);
        return 0;
    }
    mbc_grid<<<mbc_blocks(n), MBC_THREADS, 0, q->c->comp>>>(f, n);
    MBC_LAUNCHED();
    return 0;
}

/* cuBLAS, or in the emulation harness a naive column-major GEMM with
 * cuBLAS's documented semantics (so the argument mapping is tested too):
 * C_b = alpha * op(A_b) op(B_b) (beta is 0 everywhere here). */
int mbc_sgemm_strided(const mbc_req *q, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                      const float *A, int lda, long long sa, const float *B, int ldb, long long sb, float *C, int ldc,
                      long long sc, int batch);
int mbc_sgemm_batched(const mbc_req *q, int m, int n, int k, const float *const *A, int lda, const float *const *B,
                      int ldb, float *const *C, int ldc, int batch);
/* Device memset / device-to-device copy on the compute stream. */
int mbc_memset0(const mbc_req *q, float *p, size_t bytes);
int mbc_copy_d2d(const mbc_req *q, float *dst, const float *src, size_t bytes);

/* Per-op-family kernels (conv.cu, gemm.cu, pool.cu, eltwise.cu, shape.cu). */
int mbc_conv(const mbc_req *q);
int mbc_conv_transpose(const mbc_req *q);
int mbc_gemm(const mbc_req *q);
int mbc_matmul(const mbc_req *q);
int mbc_pool(const mbc_req *q);
int mbc_global_avgpool(const mbc_req *q);
int mbc_unary(const mbc_req *q);
int mbc_binary(const mbc_req *q);
int mbc_batchnorm(const mbc_req *q);
int mbc_concat(const mbc_req *q);
int mbc_softmax(const mbc_req *q);
int mbc_pad(const mbc_req *q);
int mbc_resize(const mbc_req *q);
int mbc_copy(const mbc_req *q); /* Flatten, Reshape, Constant: device copy */

#endif
