/* The CUDA backend ("cuda"): takes a compute request checked against the
 * graph by mb_backend_compute (the same contract as kernels/ref and
 * kernels/cpu), stages the input views
 * to the device, dispatches to the op family's kernels (one switch) and
 * brings the output tile back. Every op of mb_op_type runs on the GPU: there
 * is no CPU fallback inside this backend. Flatten, Reshape and Constant are
 * device-to-device copies. See common.cuh for the data path and
 * docs/cuda.md for what was (not) verified. */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

static char g_why[512] = "mb_backend_cuda_new has not been called";

extern "C" const char *mb_backend_cuda_why(void)
{
    return g_why;
}

/* The loader (kernels/backend.c) refuses a library built against another
 * layout of the backend table. */
extern "C" int mb_backend_cuda_impl_version(void)
{
    return MB_BACKEND_IMPL_VERSION;
}

int mbc_fail(const mbc_req *q, const char *fmt, ...)
{
    if (q->err && q->errlen) {
        int k = snprintf(q->err, q->errlen, "node %d '%s' (%s): ", q->node, q->n->name, mb_op_name(q->n->type));
        if (k >= 0 && (size_t)k < q->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(q->err + k, q->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

mbc_v4 mbc_view4(const mbc_req *q, int k)
{
    const mb_view *v = &q->v[k];
    mbc_v4 d;
    d.p = q->din[k];
    d.n = v->t->dims[0];
    d.c = v->t->dims[1];
    d.h = v->t->dims[2];
    d.w = v->t->dims[3];
    d.h_off = v->h_off;
    d.w_off = v->w_off;
    d.H = v->full_h;
    d.W = v->full_w;
    return d;
}

/* ---- device memory ------------------------------------------------------ */

/* Grow b to at least len bytes. Callers grow only between ops (after the
 * streams are idle), never while a kernel may still read the old buffer. */
static cudaError_t dbuf_reserve(mbc_dbuf *b, size_t len)
{
    if (b->len >= len)
        return cudaSuccess;
    if (b->p)
        cudaFree(b->p);
    b->p = NULL;
    b->len = 0;
    size_t want = len + len / 4;
    cudaError_t e = cudaMalloc(&b->p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        want = len;
        e = cudaMalloc(&b->p, want);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        b->p = NULL;
        return e;
    }
    b->len = want;
    return cudaSuccess;
}

static void dbuf_free(mbc_dbuf *b)
{
    if (b->p)
        cudaFree(b->p);
    b->p = NULL;
    b->len = 0;
}

/* Per-call small device allocations (index tables), freed at the end of the call. */
#define MBC_MAX_TMP 32
typedef struct tmp_list {
    void *p[MBC_MAX_TMP];
    int n;
} tmp_list;
static __thread tmp_list *t_tmp;

static uint64_t fingerprint(const float *p, size_t bytes)
{
    size_t n = bytes / sizeof(float);
    uint64_t h = 1469598103934665603ull ^ n;
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t i = 0; i < n; i += step) {
        uint32_t u;
        memcpy(&u, p + i, sizeof u);
        h = (h ^ u) * 1099511628211ull;
    }
    if (n) {
        uint32_t u;
        memcpy(&u, p + n - 1, sizeof u);
        h = (h ^ u) * 1099511628211ull;
    }
    return h;
}

static void weights_clear(mbc_ctx *c)
{
    for (int i = 0; i < c->n_w; i++)
        cudaFree(c->w[i].dev);
    c->n_w = 0;
    c->w_bytes = 0;
}

const float *mbc_param(const mbc_req *q, const mb_tensor *t)
{
    mbc_ctx *c = q->c;
    if (c->emu)
        return t->data;
    size_t bytes = mb_tensor_bytes(t);
    if (!bytes)
        bytes = sizeof(float);
    uint64_t fp = fingerprint(t->data, mb_tensor_bytes(t));
    for (int i = 0; i < c->n_w; i++) {
        mbc_weight *w = &c->w[i];
        if (w->host == t->data && w->bytes == bytes) {
            if (w->fp != fp) { /* the address was reused for other data */
                cudaError_t e = cudaMemcpyAsync(w->dev, t->data, mb_tensor_bytes(t), cudaMemcpyHostToDevice, c->comp);
                if (e != cudaSuccess) {
                    mbc_fail(q, "uploading a parameter: %s", cudaGetErrorString(e));
                    return NULL;
                }
                w->fp = fp;
            }
            return w->dev;
        }
    }
    if (c->n_w == c->cap_w) {
        int cap = c->cap_w ? 2 * c->cap_w : 64;
        mbc_weight *nw = (mbc_weight *)realloc(c->w, sizeof *nw * (size_t)cap);
        if (!nw) {
            mbc_fail(q, "out of host memory for the weight cache");
            return NULL;
        }
        c->w = nw;
        c->cap_w = cap;
    }
    float *dev = NULL;
    cudaError_t e = cudaMalloc(&dev, bytes);
    if (e != cudaSuccess) { /* full: the caller empties the cache and retries the op once */
        (void)cudaGetLastError();
        c->w_full = 1;
        mbc_fail(q, "device memory full with %zu bytes of cached weights (%s)", c->w_bytes, cudaGetErrorString(e));
        return NULL;
    }
    if (mb_tensor_bytes(t))
        e = cudaMemcpyAsync(dev, t->data, mb_tensor_bytes(t), cudaMemcpyHostToDevice, c->comp);
    if (e != cudaSuccess) {
        cudaFree(dev);
        mbc_fail(q, "uploading a parameter: %s", cudaGetErrorString(e));
        return NULL;
    }
    mbc_weight *w = &c->w[c->n_w++];
    w->host = t->data;
    w->bytes = bytes;
    w->fp = fp;
    w->dev = dev;
    c->w_bytes += bytes;
    return dev;
}

void *mbc_scratch(const mbc_req *q, size_t bytes)
{
    mbc_ctx *c = q->c;
    if (c->emu) {
        size_t n = (bytes + sizeof(float) - 1) / sizeof(float);
        if (c->emu_scratch_len < n) {
            free(c->emu_scratch);
            c->emu_scratch = (float *)malloc(sizeof(float) * (n ? n : 1));
            c->emu_scratch_len = c->emu_scratch ? n : 0;
            if (!c->emu_scratch) {
                mbc_fail(q, "out of memory (%zu bytes of scratch)", bytes);
                return NULL;
            }
        }
        return c->emu_scratch;
    }
    cudaError_t e = cudaStreamSynchronize(q->c->comp); /* nothing may still use the old buffer */
    if (e == cudaSuccess)
        e = dbuf_reserve(&q->c->scratch, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        mbc_fail(q, "device scratch of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    return q->c->scratch.p;
}

void *mbc_table(const mbc_req *q, const void *host, size_t bytes)
{
    tmp_list *l = t_tmp;
    if (!l || l->n == MBC_MAX_TMP) {
        mbc_fail(q, "too many per-op tables");
        return NULL;
    }
    void *d = NULL;
    if (q->c->emu) {
        d = malloc(bytes ? bytes : 1);
        if (!d) {
            mbc_fail(q, "out of memory");
            return NULL;
        }
        memcpy(d, host, bytes);
        l->p[l->n++] = d;
        return d;
    }
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 1);
    if (e == cudaSuccess && bytes)
        e = cudaMemcpyAsync(d, host, bytes, cudaMemcpyHostToDevice, q->c->comp);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (d)
            cudaFree(d);
        mbc_fail(q, "device table of %zu bytes: %s", bytes, cudaGetErrorString(e));
        return NULL;
    }
    l->p[l->n++] = d;
    return d;
}

/* ---- output slices ------------------------------------------------------ */

typedef struct slice {
    int64_t off, count;
} slice;
typedef struct slice_list {
    slice s[MBC_SLICES];
    int n;
} slice_list;
static __thread slice_list *t_slices;

static float *pin_out(const mbc_ctx *c, const mbc_req *q)
{
    /* staging layout: [inputs ... | output] ; the output part starts at the end of the inputs */
    (void)q;
    return (float *)((char *)c->pin + c->pin_len - (mb_tensor_bytes(q->out) + 255) / 256 * 256);
}

int mbc_download_slice(const mbc_req *q, int s, int64_t off, int64_t count)
{
    mbc_ctx *c = q->c;
    slice_list *l = t_slices;
    if (!l || s < 0 || s >= MBC_SLICES || s != l->n)
        return mbc_fail(q, "output slice %d out of order", s);
    if (off < 0 || count < 0 || off + count > mb_tensor_numel(q->out))
        return mbc_fail(q, "output slice %d [%lld,+%lld) outside the output", s, (long long)off, (long long)count);
    if (c->emu) { /* the harness: only what the slices name reaches the caller */
        memcpy(q->out->data + off, q->dout + off, sizeof(float) * (size_t)count);
        l->s[l->n].off = off;
        l->s[l->n].count = count;
        l->n++;
        return 0;
    }
    MBC_CHECK(cudaEventRecord(c->ev_slice[s], c->comp));
    MBC_CHECK(cudaStreamWaitEvent(c->copy, c->ev_slice[s], 0));
    MBC_CHECK(cudaMemcpyAsync(pin_out(c, q) + off, q->dout + off, sizeof(float) * (size_t)count,
                              cudaMemcpyDeviceToHost, c->copy));
    MBC_CHECK(cudaEventRecord(c->ev_copied[s], c->copy));
    l->s[l->n].off = off;
    l->s[l->n].count = count;
    l->n++;
    return 0;
}

/* ---- what this backend implements -------------------------------------- */

/* Op by op and attribute by attribute (an op kind added to the IR is
 * refused until it has a kernel here). Requests reach cuda_compute only
 * after mb_backend_compute (kernels/backend_compute.c) checked them. */
static int supports(const mb_backend *be, const mb_graph *g, const mb_node *n)
{
    const mb_op_attrs *a = &n->a;
    const mbc_ctx *hc = (const mbc_ctx *)be->ctx;
    if (n->type > MB_OP_IDENTITY && n->type < MB_OP_COUNT) /* the transformer operators: host reference kernels */
        return hc && hc->host_ref && hc->host_ref->supports_op(hc->host_ref, g, n);
    switch (n->type) {
    case MB_OP_CONV:
    case MB_OP_CONV_TRANSPOSE:
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return a->auto_pad == MB_AUTO_PAD_NOTSET;
    case MB_OP_PAD:
        return a->pad_mode == MB_PAD_CONSTANT || a->pad_mode == MB_PAD_REFLECT || a->pad_mode == MB_PAD_EDGE;
    case MB_OP_RESIZE:
        return (a->resize_mode == MB_RESIZE_NEAREST || a->resize_mode == MB_RESIZE_LINEAR) &&
               a->coord_mode >= MB_COORD_HALF_PIXEL && a->coord_mode <= MB_COORD_TF_HALF_PIXEL_FOR_NN &&
               a->nearest_mode >= MB_NEAREST_ROUND_PREFER_FLOOR && a->nearest_mode <= MB_NEAREST_CEIL;
    case MB_OP_CONSTANT:
    case MB_OP_GEMM:
    case MB_OP_MATMUL:
    case MB_OP_GLOBALAVGPOOL:
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
    case MB_OP_CONCAT:
    case MB_OP_BATCHNORM:
    case MB_OP_SOFTMAX:
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
    case MB_OP_IDENTITY:
        return 1;
    case MB_OP_INPUT:
    case MB_OP_COUNT:
    default:
        return 0;
    }
}

static int dispatch(const mbc_req *q)
{
    switch (q->n->type) {
    case MB_OP_CONV:
        return mbc_conv(q);
    case MB_OP_CONV_TRANSPOSE:
        return mbc_conv_transpose(q);
    case MB_OP_GEMM:
        return mbc_gemm(q);
    case MB_OP_MATMUL:
        return mbc_matmul(q);
    case MB_OP_MAXPOOL:
    case MB_OP_AVGPOOL:
        return mbc_pool(q);
    case MB_OP_GLOBALAVGPOOL:
        return mbc_global_avgpool(q);
    case MB_OP_RELU:
    case MB_OP_CLIP:
    case MB_OP_SIGMOID:
    case MB_OP_HARDSIGMOID:
    case MB_OP_HARDSWISH:
    case MB_OP_LEAKYRELU:
    case MB_OP_IDENTITY:
        return mbc_unary(q);
    case MB_OP_ADD:
    case MB_OP_SUB:
    case MB_OP_MUL:
    case MB_OP_DIV:
        return mbc_binary(q);
    case MB_OP_CONCAT:
        return mbc_concat(q);
    case MB_OP_BATCHNORM:
        return mbc_batchnorm(q);
    case MB_OP_SOFTMAX:
        return mbc_softmax(q);
    case MB_OP_FLATTEN:
    case MB_OP_RESHAPE:
    case MB_OP_CONSTANT:
        return mbc_copy(q);
    case MB_OP_PAD:
        return mbc_pad(q);
    case MB_OP_RESIZE:
        return mbc_resize(q);
    case MB_OP_INPUT:
        return mbc_fail(q, "a graph input is given, not computed");
    case MB_OP_COUNT:
    default:
        return mbc_fail(q, "unknown op type %d", (int)q->n->type);
    }
}

/* ---- one compute call --------------------------------------------------- */

static size_t up256(size_t b)
{
    return (b + 255) / 256 * 256;
}

/* The harness: inputs are the host views themselves; the output is computed
 * into a NaN-filled buffer and reaches the caller only through the same
 * download path (whole, or the slices the op names). */
static int run_emu(mbc_req *q, const float **din)
{
    for (int k = 0; k < q->n->n_inputs; k++)
        din[k] = q->v[k].t->data;
    q->din = din;
    int64_t cnt = mb_tensor_numel(q->out);
    float *buf = (float *)malloc(sizeof(float) * (size_t)cnt);
    if (!buf)
        return mbc_fail(q, "out of memory");
    for (int64_t i = 0; i < cnt; i++)
        buf[i] = NAN;
    q->dout = buf;
    int rc = dispatch(q);
    if (!rc && !q->sliced)
        memcpy(q->out->data, buf, sizeof(float) * (size_t)cnt);
    free(buf);
    return rc;
}

static int run(mbc_req *q, const float **din)
{
    mbc_ctx *c = q->c;
    if (c->emu)
        return run_emu(q, din);
    const mb_node *n = q->n;
    size_t out_bytes = mb_tensor_bytes(q->out), in_total = 0;
    for (int k = 0; k < n->n_inputs; k++)
        in_total += up256(mb_tensor_bytes(q->v[k].t));
    size_t io_total = in_total + up256(out_bytes);
    MBC_CHECK(dbuf_reserve(&c->io, io_total ? io_total : 256));
    if (c->pin_len < io_total) {
        if (c->pin)
            cudaFreeHost(c->pin);
        c->pin = NULL;
        c->pin_len = 0;
        MBC_CHECK(cudaMallocHost(&c->pin, io_total));
        c->pin_len = io_total;
    }
    /* inputs: host view -> pinned -> device on the copy stream (the memcpy of
     * input k+1 overlaps the DMA of input k) */
    char *pin = (char *)c->pin, *dev = (char *)c->io.p;
    size_t off = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        size_t b = mb_tensor_bytes(q->v[k].t);
        if (b) {
            memcpy(pin + off, q->v[k].t->data, b);
            MBC_CHECK(cudaMemcpyAsync(dev + off, pin + off, b, cudaMemcpyHostToDevice, c->copy));
        }
        din[k] = (const float *)(dev + off);
        off += up256(b);
    }
    q->din = din;
    q->dout = (float *)(dev + in_total);
    MBC_CHECK(cudaEventRecord(c->ev_in, c->copy));
    MBC_CHECK(cudaStreamWaitEvent(c->comp, c->ev_in, 0));
    if (dispatch(q))
        return -1;
    float *pout = pin_out(c, q);
    slice_list *sl = t_slices;
    if (!q->sliced && out_bytes) {
        MBC_CHECK(cudaMemcpyAsync(pout, q->dout, out_bytes, cudaMemcpyDeviceToHost, c->comp));
        MBC_CHECK(cudaStreamSynchronize(c->comp));
        memcpy(q->out->data, pout, out_bytes);
        return 0;
    }
    /* sliced: each slice lands in the caller's tensor as soon as its copy is done */
    for (int s = 0; s < sl->n; s++) {
        MBC_CHECK(cudaEventSynchronize(c->ev_copied[s]));
        memcpy(q->out->data + sl->s[s].off, pout + sl->s[s].off, sizeof(float) * (size_t)sl->s[s].count);
    }
    MBC_CHECK(cudaStreamSynchronize(c->comp));
    return 0;
}

static int cuda_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r,
                        mb_tensor *out, char *err, size_t errlen)
{
    mbc_ctx *c = (mbc_ctx *)be->ctx;
    if (g->nodes[node].type > MB_OP_IDENTITY) /* see supports(): computed on the host */
        return c->host_ref->compute(c->host_ref, g, node, in, r, out, err, errlen);
    mbc_req q;
    memset(&q, 0, sizeof q);
    q.c = c;
    q.g = g;
    q.node = node;
    q.n = &g->nodes[node];
    q.v = in;
    q.r = r;
    q.out = out;
    q.err = err;
    q.errlen = errlen;
    int ni = q.n->n_inputs;
    const float **din = (const float **)calloc((size_t)(ni ? ni : 1), sizeof *din);
    if (!din)
        return mbc_fail(&q, "out of memory");
    int rc = 0;
    if (mb_tensor_numel(out) > 0) {
        pthread_mutex_lock(&c->lock);
        cudaError_t e = c->emu ? cudaSuccess : cudaSetDevice(c->device);
        tmp_list tl;
        slice_list sl;
        tl.n = 0;
        sl.n = 0;
        t_tmp = &tl;
        t_slices = &sl;
        c->w_full = 0;
        rc = e == cudaSuccess ? run(&q, din) : mbc_fail(&q, "cudaSetDevice(%d): %s", c->device, cudaGetErrorString(e));
        if (rc && !c->emu) { /* leave the streams idle and the error state clear for the next call */
            cudaStreamSynchronize(c->copy);
            cudaStreamSynchronize(c->comp);
            (void)cudaGetLastError();
        }
        if (rc && c->w_full && c->n_w > 0) { /* other models' weights filled the GPU: start the cache afresh */
            for (int i = 0; i < tl.n; i++)
                cudaFree(tl.p[i]);
            tl.n = 0;
            sl.n = 0;
            weights_clear(c);
            q.sliced = 0;
            if (q.err && q.errlen)
                q.err[0] = 0;
            rc = run(&q, din);
            if (rc) {
                cudaStreamSynchronize(c->copy);
                cudaStreamSynchronize(c->comp);
                (void)cudaGetLastError();
            }
        }
        for (int i = 0; i < tl.n; i++) {
            if (c->emu)
                free(tl.p[i]);
            else
                cudaFree(tl.p[i]);
        }
        t_tmp = NULL;
        t_slices = NULL;
        pthread_mutex_unlock(&c->lock);
    }
    free(din);
    return rc;
}

/* ---- lifetime ----------------------------------------------------------- */

static void cuda_free(mb_backend *be)
{
    if (!be)
        return;
    mbc_ctx *c = (mbc_ctx *)be->ctx;
    if (c && c->host_ref) {
        c->host_ref->free(c->host_ref);
        c->host_ref = NULL;
    }
    if (c && c->emu) {
        free(c->emu_scratch);
        pthread_mutex_destroy(&c->lock);
        free(c);
        c = NULL;
    }
    if (c) {
        cudaSetDevice(c->device);
        cudaDeviceSynchronize();
        weights_clear(c);
        free(c->w);
        dbuf_free(&c->io);
        dbuf_free(&c->scratch);
        if (c->pin)
            cudaFreeHost(c->pin);
        if (c->blas)
            cublasDestroy(c->blas);
        if (c->ev_in)
            cudaEventDestroy(c->ev_in);
        for (int s = 0; s < MBC_SLICES; s++) {
            if (c->ev_slice[s])
                cudaEventDestroy(c->ev_slice[s]);
            if (c->ev_copied[s])
                cudaEventDestroy(c->ev_copied[s]);
        }
        if (c->comp)
            cudaStreamDestroy(c->comp);
        if (c->copy)
            cudaStreamDestroy(c->copy);
        mbc_nvml_close(c->nvml);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
    free(be);
}

#define WHY(...) snprintf(g_why, sizeof g_why, __VA_ARGS__)

extern "C" mb_backend *mb_backend_cuda_new(int n_threads)
{
    int count = 0, dev = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        /* without any driver the runtime says "driver version is insufficient": say what is missing */
        void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!drv)
            WHY("no NVIDIA driver (libcuda.so.1 cannot be loaded), so no CUDA device; cudaGetDeviceCount: %s",
                cudaGetErrorName(e));
        else
            WHY("cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        if (drv)
            dlclose(drv);
        return NULL;
    }
    if (count < 1) {
        WHY("cudaGetDeviceCount: no CUDA device");
        return NULL;
    }
    const char *env = getenv("MECBED_CUDA_DEVICE");
    if (env && *env) {
        char *end;
        long d = strtol(env, &end, 10);
        if (*end || d < 0 || d >= count) {
            WHY("MECBED_CUDA_DEVICE=%s: expected 0..%d", env, count - 1);
            return NULL;
        }
        dev = (int)d;
    }
    mb_backend *be = (mb_backend *)calloc(1, sizeof *be);
    mbc_ctx *c = (mbc_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        WHY("out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->device = dev;
    c->host_ref = mb_backend_ref_new();
    be->name = "cuda";
    be->supports_op = supports;
    be->compute = cuda_compute;
    be->energy_mj = mb_cuda_energy_mj;
    be->free = cuda_free;
    be->ctx = c;
    be->n_threads = n_threads > 0 ? n_threads : 1;
    cudaDeviceProp prop;
    const char *step = "cudaSetDevice";
    e = cudaSetDevice(dev);
    if (e == cudaSuccess && (step = "cudaGetDeviceProperties", e = cudaGetDeviceProperties(&prop, dev)) == cudaSuccess)
        snprintf(c->device_name, sizeof c->device_name, "%s (sm_%d%d, device %d)", prop.name, prop.major, prop.minor,
                 dev);
    if (e == cudaSuccess)
        step = "cudaStreamCreate", e = cudaStreamCreateWithFlags(&c->comp, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        step = "cudaEventCreate", e = cudaEventCreateWithFlags(&c->ev_in, cudaEventDisableTiming);
    for (int s = 0; s < MBC_SLICES && e == cudaSuccess; s++) {
        e = cudaEventCreateWithFlags(&c->ev_slice[s], cudaEventDisableTiming);
        if (e == cudaSuccess)
            e = cudaEventCreateWithFlags(&c->ev_copied[s], cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        WHY("%s on device %d: %s", step, dev, cudaGetErrorString(e));
        cuda_free(be);
        return NULL;
    }
    cublasStatus_t bs = cublasCreate(&c->blas);
    if (bs == CUBLAS_STATUS_SUCCESS)
        bs = cublasSetStream(c->blas, c->comp);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        WHY("cublasCreate: %s", cublasGetStatusString(bs));
        cuda_free(be);
        return NULL;
    }
    /* fp32 throughout: no TF32 tensor-core rounding (results must match the
     * reference within 1e-5 of scale) */
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
    char bus[32] = "";
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        bus[0] = 0;
    }
    c->nvml = mbc_nvml_open(bus[0] ? bus : NULL, c->nvml_why, sizeof c->nvml_why);
    WHY("ok: %s", c->device_name);
    return be;
}

/* The host-simulation test harness: this backend's code path with every
 * kernel functor run in a host loop and GEMMs by a column-major reference
 * (common.cuh). For tests on machines without a GPU; never returned by
 * mb_backend_new, and named "cuda-hostsim" so that it cannot pass for the GPU. */
extern "C" mb_backend *mbc_hostsim_new(void)
{
    mb_backend *be = (mb_backend *)calloc(1, sizeof *be);
    mbc_ctx *c = (mbc_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->emu = 1;
    c->host_ref = mb_backend_ref_new();
    snprintf(c->device_name, sizeof c->device_name, "host simulation of the CUDA kernels (test harness, no GPU)");
    snprintf(c->nvml_why, sizeof c->nvml_why, "host simulation: no GPU");
    be->name = "cuda-hostsim";
    be->supports_op = supports;
    be->compute = cuda_compute;
    be->free = cuda_free;
    be->ctx = c;
    be->n_threads = 1;
    return be;
}

extern "C" const char *mb_cuda_device_name(const mb_backend *be)
{
    if (!be || !be->name || strncmp(be->name, "cuda", 4))
        return "";
    return ((const mbc_ctx *)be->ctx)->device_name;
}

extern "C" int mb_cuda_energy_mj(const mb_backend *be, unsigned long long *mj, char *why, size_t whylen)
{
    if (!be || !be->name || strcmp(be->name, "cuda")) {
        snprintf(why, whylen, "not a cuda backend");
        return -1;
    }
    const mbc_ctx *c = (const mbc_ctx *)be->ctx;
    if (!c->nvml) {
        snprintf(why, whylen, "%s", c->nvml_why);
        return -1;
    }
    return mbc_nvml_energy_mj(c->nvml, mj, why, whylen);
}
