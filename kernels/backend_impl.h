/* Private to kernels/: the function table behind the opaque mb_backend
 * (include/mecbed/backend.h), as ggml-backend-impl.h is to ggml-backend.h.
 * Each backend fills one and keeps only what is its own: which ops it
 * implements and how it computes them. Request checking is not here: it
 * happens once, in mb_backend_compute() (kernels/backend.c), before any
 * compute slot is called.
 *
 * kernels/cuda is built into a separate shared object (libmecbed-cuda.so)
 * that fills this table too, so its layout is an interface between two
 * binaries of the same build: MB_BACKEND_IMPL_VERSION changes whenever the
 * struct does, and the loader refuses a library built against another one. */
#ifndef MECBED_BACKEND_IMPL_H
#define MECBED_BACKEND_IMPL_H

#include <stddef.h>

#include "mecbed/backend.h"

#define MB_BACKEND_IMPL_VERSION 4

/* What runs inside a conv (mb_exec_opts.fuse): the conv's output y, then
 * y = y + res (an Add node whose other operand res is already computed and
 * has y's shape; res_first: it is the Add's input 0, so y = res + y), then
 * an activation (Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid) on
 * the conv's or the Add's output. A BatchNormalization node may head a
 * chain too, with an activation and no Add. */
typedef struct mb_fusion {
    int add;       /* the Add node, or -1 */
    int res_first; /* with add: the residual is the Add's input 0 */
    mb_view res;   /* with add: the Add's other operand (a view covering the region) */
    int act;       /* the activation node, or -1 */
} mb_fusion;

struct mb_backend {
    const char *name;
    /* 1 if this backend implements node n of g, attributes included. */
    int (*supports_op)(const mb_backend *be, const mb_graph *g, const mb_node *n);
    /* Compute a request mb_backend_compute() has already checked: the node
     * exists and is supported, out has the right dims, r is the full output
     * for ranks other than 4, and in[k] has the producer's shape, covers
     * what region r needs, h_off/w_off 0 for tensors that are not 4-D and
     * full_h/full_w filled from the producer. */
    int (*compute)(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r,
                   mb_tensor *out, char *err, size_t errlen);
    /* Optional (NULL: no counter): the device's energy counter. */
    int (*energy_mj)(const mb_backend *be, unsigned long long *mj, char *why, size_t whylen);
    void (*free)(mb_backend *be);
    void *ctx;
    int n_threads;
    /* Optional (NULL: no fusion): compute node (a Conv) and the
     * elementwise nodes f names after it (a residual Add, an activation;
     * each the only consumer of the one before) applied to each part of the
     * output while it is still in cache, into out. Returns 1 when done, 0
     * when this backend does not fuse the chain (out untouched), -1 on
     * error. The request is checked as for compute. */
    int (*compute_fused)(mb_backend *be, const mb_graph *g, int node, const struct mb_fusion *f, const mb_view *in,
                         mb_region r, mb_tensor *out, char *err, size_t errlen);
};

/* mb_backend_compute for node with the chain f fused into it
 * (kernels/backend_compute.c): 1 done, 0 not fused (nothing written: run
 * the nodes separately), -1 error. */
int mb_backend_compute_fused(mb_backend *be, const mb_graph *g, int node, const mb_fusion *f, const mb_view *in,
                             mb_region r, mb_tensor *out, char *err, size_t errlen);

/* A region of an op with a 2-D/3-D output, or a whole one from partial
 * input views (kernels/region_sub.c): the op on its operands' slices, a
 * whole-op request to the same backend. The request is already checked. */
int mb__compute_subregion(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r,
                          mb_tensor *out, char *err, size_t errlen);

/* The built-in backends (kernels/ref, kernels/cpu). NULL when out of memory
 * or when the cpu backend's threads could not be started. */
mb_backend *mb_backend_ref_new(void);
mb_backend *mb_backend_cpu_new(int n_threads);

/* What libmecbed-cuda.so exports (kernels/cuda/cuda_backend.cu), looked up
 * with dlsym by kernels/backend.c. */
#define MB_CUDA_SYM_VERSION "mb_backend_cuda_impl_version"
#define MB_CUDA_SYM_NEW "mb_backend_cuda_new"
#define MB_CUDA_SYM_WHY "mb_backend_cuda_why"
typedef int (*mb_cuda_version_fn)(void);
typedef mb_backend *(*mb_cuda_new_fn)(int n_threads);
typedef const char *(*mb_cuda_why_fn)(void);

#endif
