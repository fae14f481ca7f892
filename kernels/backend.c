/* Backends by name. The CUDA backend lives in kernels/cuda/ and is only
 * linked into builds that found nvcc; it is referenced weakly so a build
 * without it still links, and asking for it says why it is missing. */
#include <stdio.h>
#include <string.h>

#include "mecbed/backend.h"

mb_backend *mb_backend_cuda_new(int n_threads) __attribute__((weak));
const char *mb_backend_cuda_why(void) __attribute__((weak)); /* kernels/cuda: why no backend */

mb_backend *mb_backend_new(const char *name, int n_threads, char *err, size_t errlen)
{
    mb_backend *be = NULL;
    if (!name || !*name)
        name = "cpu";
    if (!strcmp(name, "cpu")) {
        be = mb_backend_cpu_new(n_threads);
    } else if (!strcmp(name, "ref")) {
        be = mb_backend_ref_new();
    } else if (!strcmp(name, "cuda")) {
        if (!mb_backend_cuda_new) {
            snprintf(err, errlen,
                     "backend 'cuda': not built (this build found no nvcc; kernels/cuda is compiled only when "
                     "the CUDA toolkit is present)");
            return NULL;
        }
        be = mb_backend_cuda_new(n_threads);
        if (!be) {
            snprintf(err, errlen, "backend 'cuda': no usable GPU: %s",
                     mb_backend_cuda_why ? mb_backend_cuda_why() : "no CUDA device, or the driver is missing");
            return NULL;
        }
        return be;
    } else {
        snprintf(err, errlen, "unknown backend '%s' (expected ref, cpu or cuda)", name);
        return NULL;
    }
    if (!be)
        snprintf(err, errlen, "backend '%s': out of memory or threads could not be started", name);
    return be;
}

void mb_backend_free(mb_backend *be)
{
    if (be && be->free)
        be->free(be);
}
