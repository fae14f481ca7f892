/* Private to the fast CPU backend (kernels/cpu): the thread pool, per-thread
 * scratch memory and the per-op-family kernels the dispatcher calls.
 *
 * Every kernel computes region r of node n's output (all batches and
 * channels) from input views that cover at least the region
 * mb_node_input_region() names; coordinates outside the full input are
 * padding. Kernels return 0, or -1 with a message in err. */
#ifndef MECBED_CPU_IMPL_H
#define MECBED_CPU_IMPL_H

#include <pthread.h>
#include <stddef.h>

#include "../backend_impl.h"

#define CPU_MAX_THREADS 64

/* A fixed team of worker threads; the calling thread takes part as thread 0.
 * Tasks are handed out dynamically, but every task writes its own disjoint
 * part of the output with the same arithmetic, so results do not depend on
 * which thread ran what. */
typedef struct cpu_pool cpu_pool;
typedef void (*cpu_task_fn)(void *arg, int task, int thread);

cpu_pool *cpu_pool_new(int n_threads);
void cpu_pool_free(cpu_pool *p);
int cpu_pool_threads(const cpu_pool *p);
/* No worker is blocked asleep (all spin or work): a job reaches them in
 * about a microsecond instead of a futex wake. */
int cpu_pool_awake(const cpu_pool *p);
/* Each thread starts on its own contiguous share of a job's tasks (see
 * cpu_pool.c); 0: all claim from one counter in order. */
int cpu_pool_affine(const cpu_pool *p);
/* Run fn(arg, t, thread) for t in [0, n_tasks); returns when all are done. */
void cpu_pool_run(cpu_pool *p, int n_tasks, cpu_task_fn fn, void *arg);
/* The same, a thread claiming chunk consecutive tasks at a time (fewer
 * trips to the shared counter when tasks are short). */
void cpu_pool_run_chunked(cpu_pool *p, int n_tasks, int chunk, cpu_task_fn fn, void *arg);

typedef struct cpu_ctx {
    cpu_pool *pool;
    int n_threads;
    pthread_mutex_t lock;         /* one compute at a time per backend instance */
    double parallel_min_ns;       /* smaller jobs run on the calling thread (cpu_run) */
    double parallel_min_awake_ns; /* the same while the workers spin (cpu_pool_awake) */
    mb_backend *ref;              /* rarely hot ops are delegated to the reference backend */
    float *scratch[CPU_MAX_THREADS];
    size_t scratch_len[CPU_MAX_THREADS]; /* in floats */
    float *shared;                       /* one buffer all threads of one op read (cpu_shared) */
    size_t shared_len;                   /* in floats */
} cpu_ctx;

/* Run fn over n_tasks on the backend's threads, or on the calling thread
 * alone when the whole job is estimated to take less than about 30 us:
 * waking the workers costs tens of microseconds, which made 2 threads slower
 * than 1 on MobileNetV2's many small ops. est_ns: a rough single-thread time
 * (MACs / 75 for GEMM work, elements / 4 for memory-bound passes). The
 * threshold can be set with MECBED_CPU_PARALLEL_MIN_NS (tests use 0 so that
 * their small shapes still exercise the threads). */
void cpu_run(cpu_ctx *c, int n_tasks, cpu_task_fn fn, void *arg, double est_ns);

/* Per-thread scratch of at least n floats (grown on demand, kept between calls);
 * NULL when out of memory. */
float *cpu_scratch(cpu_ctx *c, int thread, size_t n);
/* One buffer of at least n floats for the op being computed (64-byte
 * aligned, grown on demand, kept between calls; computes on one backend are
 * serialised by its lock); NULL when out of memory. */
float *cpu_shared(cpu_ctx *c, size_t n);

/* Locate element (n, ch, y, x) of a 4-D view, (y, x) in the full tensor's
 * frame, known to lie inside the view. */
static inline const float *cpu_view_row(const mb_view *v, int64_t n, int64_t ch, int64_t y)
{
    const mb_tensor *t = v->t;
    return t->data + ((n * t->dims[1] + ch) * t->dims[2] + (y - v->h_off)) * t->dims[3] - v->w_off;
}

/* What a fused conv applies to each part of its output as it is made
 * (mb_fusion): y = y + res (res_first: res + y, the Add's operand order),
 * then the activation. */
typedef struct cpu_post {
    const mb_node *act;  /* Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid, or NULL */
    const mb_view *res;  /* residual (4-D, the conv's output shape, covering the region), or NULL */
    int res_first;
} cpu_post;
/* post: NULL or what to fuse (cpu_post). */
int cpu_conv(cpu_ctx *c, const mb_graph *g, int node, const cpu_post *post, const mb_view *in, mb_region r,
             mb_tensor *out, char *err, size_t errlen);
/* The residual add and activation of post on len outputs y of plane
 * (n, m), starting at pixel p0 of region r (row-major over the region),
 * just written by the conv. Same operations and order as the unfused Add
 * (cpu_binary) and activation (cpu_unary_span): bit-identical results. */
void cpu_conv_post(const cpu_post *post, mb_region r, int64_t n, int64_t m, int64_t p0, float *y, int64_t len);
/* Direct convolution with AVX-512 micro-kernels (cpu_conv_direct.c), for
 * dense or grouped convs with more than one input channel per group and
 * dilation 1. Every output element is bias + the sum over (c, ky, kx) in that
 * order, one float FMA each, so the result does not depend on the region,
 * the tiling or the thread count. */
typedef struct cpu_dconv {
    const mb_view *v;      /* input view (4-D NCHW) */
    const float *w, *bias; /* OIHW weights, bias or NULL */
    float *out;            /* region r of the output, all batches and channels */
    int64_t n_batch, C, M, G;
    int kh, kw, sh, sw, pt, pl;
    int64_t full_h, full_w;
    mb_region r;
    const mb_node *act; /* fused activation or NULL */
    const cpu_post *post; /* with a residual (post->res): the add, then act, after each task (act not in registers) */
} cpu_dconv;
/* The stride-phase frame ("Xp") both the direct and the output-channel
 * kernels read (cpu_conv_direct.c): per input channel, one zero-padded plane
 * per (y mod sh, x mod sw) phase a tap reads, PHr rows of PW floats, so that
 * tap (ky, kx) of output pixel q = oy*PW + ox is Xp[c][phase][q + toff]. */
typedef struct cpu_frame {
    const cpu_dconv *d;
    float *x;                                   /* batch n, channel ch at x + n*nstride + ch*cstride */
    int64_t OH, OW;                             /* output rows and columns of d's region */
    int64_t PW, PHr, pstride, cstride, nstride; /* frame width, rows per plane, floats per plane/channel/batch */
    int phy, phx;                               /* phases along y and x */
} cpu_frame;
/* The frame geometry of d (x left NULL), each plane rounded up to a
 * multiple of align floats; toff[ky*kw + kx]: the offset tap (ky, kx) reads
 * at, from channel 0, pixel q. */
void cpu_frame_geometry(const cpu_dconv *d, int64_t align, cpu_frame *f, int64_t *toff);
/* cpu_run task over n_batch*C: copy (batch t / C, channel t % C) of the
 * input region into its phase planes of f->x, zeros where the taps read
 * padding (or nothing a valid output reads). */
void cpu_frame_fill_task(void *arg, int t, int thread);
/* 1 when this CPU runs the direct kernels (AVX-512F) and they are not
 * switched off (MECBED_CPU_CONV=gemm). */
int cpu_conv_direct_available(void);
/* input channels per K chunk of a 1x1 layer on the direct kernel; 0: no split */
int cpu_conv_1x1_kblock(void);
/* 0 done, -1 out of memory. */
int cpu_conv_direct(cpu_ctx *c, const cpu_dconv *d);
/* Small output maps, vectors over output channels (cpu_conv_oc.c), for the
 * convs the direct kernels take; the same sum in the same order, so the
 * same bits. cpu_conv_oc_wanted: whether it runs d (MECBED_CPU_CONV_OC). */
int cpu_conv_oc_wanted(const cpu_dconv *d);
int cpu_conv_oc(cpu_ctx *c, const cpu_dconv *d);
/* Depthwise 3x3 (cpu_conv_dw.c): one input channel per group, stride 1 or 2,
 * dilation 1 (dh, dw), AVX-512 present and MECBED_CPU_CONV not "gemm":
 * cpu_conv_dw3x3_handles says whether it applies. Each output element is
 * bias + the nine taps in (ky, kx) order (taps on padding add w * 0), one
 * FMA each, independent of region and threads. 0 done, -1 out of memory. */
int cpu_conv_dw3x3_handles(const cpu_dconv *d, int dh, int dw);
int cpu_conv_dw3x3(cpu_ctx *c, const cpu_dconv *d);
/* y[i] = op(x[i]) for an activation op (Relu ... Sigmoid, Identity); x may be y. */
void cpu_unary_span(mb_op_type op, float alpha, float beta, const float *x, float *y, int64_t n);
int cpu_conv_transpose(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out,
                       char *err, size_t errlen);
/* 1 when cpu_resize handles node (4-D, N and C unchanged); else the reference kernel runs it. */
int cpu_resize_fast(const mb_graph *g, int node);
int cpu_resize(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen);
/* 1 when cpu_pad handles node (4-D, non-negative pads on H and W only). */
int cpu_pad_fast(const mb_graph *g, int node);
int cpu_pad(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
            size_t errlen);
int cpu_gemm(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err, size_t errlen);
int cpu_matmul(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
               size_t errlen);
int cpu_pool2d(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen);
int cpu_global_avgpool(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                       size_t errlen);
int cpu_unary(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
              size_t errlen);
int cpu_binary(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen);
int cpu_batchnorm(cpu_ctx *c, const mb_graph *g, int node, const mb_node *act, const mb_view *in, mb_region r,
                  mb_tensor *out, char *err, size_t errlen);
int cpu_concat(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen);
/* Transformer operators (cpu_transformer.c). */
int cpu_layernorm(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                  size_t errlen);
int cpu_softmax(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                size_t errlen);
int cpu_gelu(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
             size_t errlen);
/* The vectorisable erf and exp of cpu_transformer.c (exposed for tests). */
float cpu_fast_erf(float x);
float cpu_fast_exp(float x);
int cpu_where(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err, size_t errlen);
int cpu_transpose(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                  size_t errlen);

#endif
