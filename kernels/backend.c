/* Backends by name, and the one checked entry point every request goes
 * through. mb_backend_compute() validates a request against the graph once
 * (node, region, output dims, input views, support) so that backends hold
 * only their own code; it hands them views with the producer's full extent
 * filled in.
 *
 * The CUDA backend is a separate shared object (libmecbed-cuda.so, built
 * from kernels/cuda where nvcc exists) opened with dlopen the first time
 * "cuda" is asked for: binaries that never ask for it never load the CUDA
 * runtime, and a build or a machine without it says why. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_impl.h"

#define CUDA_LIB_NAME "libmecbed-cuda.so"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- the CUDA library, opened once -------------------------------------- */

static pthread_mutex_t cuda_mu = PTHREAD_MUTEX_INITIALIZER;
static void *cuda_lib;
static mb_cuda_new_fn cuda_new;
static mb_cuda_why_fn cuda_why;

/* Try one path; on failure append dlerror() to the reasons. */
static int cuda_try(const char *path, char *why, size_t whylen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    size_t used = strlen(why);
    if (!h) {
        const char *e = dlerror();
        snprintf(why + used, whylen - used, "%s%s", used ? "; " : "", e ? e : path);
        return -1;
    }
    mb_cuda_version_fn ver = (mb_cuda_version_fn)dlsym(h, MB_CUDA_SYM_VERSION);
    mb_cuda_new_fn nw = (mb_cuda_new_fn)dlsym(h, MB_CUDA_SYM_NEW);
    mb_cuda_why_fn wy = (mb_cuda_why_fn)dlsym(h, MB_CUDA_SYM_WHY);
    if (!ver || !nw || !wy || ver() != MB_BACKEND_IMPL_VERSION) {
        snprintf(why + used, whylen - used, "%s%s: not a mecbed CUDA backend of this version (interface %d, want %d)",
                 used ? "; " : "", path, ver ? ver() : -1, MB_BACKEND_IMPL_VERSION);
        dlclose(h);
        return -1;
    }
    cuda_lib = h;
    cuda_new = nw;
    cuda_why = wy;
    return 0;
}

/* Where the library may be, in order: $MECBED_CUDA_LIB (a file); beside
 * the executable's folder as installed (bin/../lib) or built (build/mecbed,
 * build/lib; build/tests/x, build/lib); the dynamic linker's own search. */
static int cuda_open(char *why, size_t whylen)
{
    why[0] = 0;
    const char *env = getenv("MECBED_CUDA_LIB");
    if (env && *env)
        return cuda_try(env, why, whylen);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            static const char *const rel[] = {"lib/", "../lib/"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                char p[PATH_MAX + 32];
                snprintf(p, sizeof p, "%s/%s" CUDA_LIB_NAME, exe, rel[i]);
                if (access(p, F_OK) == 0)
                    return cuda_try(p, why, whylen);
            }
            snprintf(why, whylen, "not in %.400s/lib/ or %.400s/../lib/", exe, exe);
        }
    }
    return cuda_try(CUDA_LIB_NAME, why, whylen);
}

static mb_backend *cuda_backend_new(int n_threads, char *err, size_t errlen)
{
    char why[1024];
    pthread_mutex_lock(&cuda_mu);
    int rc = cuda_lib ? 0 : cuda_open(why, sizeof why);
    pthread_mutex_unlock(&cuda_mu);
    if (rc) {
        fail(err, errlen,
             "backend 'cuda': cannot load " CUDA_LIB_NAME " (%s). It is built only where nvcc was found, and "
             "needs the CUDA runtime and cuBLAS; set MECBED_CUDA_LIB to its path if it is elsewhere",
             why);
        return NULL;
    }
    mb_backend *be = cuda_new(n_threads);
    if (!be)
        fail(err, errlen, "backend 'cuda': no usable GPU: %s", cuda_why());
    return be;
}

/* ---- by name ------------------------------------------------------------ */

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
        return cuda_backend_new(n_threads, err, errlen);
    } else {
        fail(err, errlen, "unknown backend '%s' (expected ref, cpu or cuda)", name);
        return NULL;
    }
    if (!be)
        fail(err, errlen, "backend '%s': out of memory or threads could not be started", name);
    return be;
}

void mb_backend_free(mb_backend *be)
{
    if (be && be->free)
        be->free(be);
}

const char *mb_backend_name(const mb_backend *be)
{
    return be && be->name ? be->name : "";
}

int mb_backend_threads(const mb_backend *be)
{
    return be ? be->n_threads : 0;
}

int mb_backend_supports(const mb_backend *be, const mb_graph *g, int node)
{
    if (!be || !g || node < 0 || node >= g->n_nodes || !be->supports_op)
        return 0;
    return be->supports_op(be, g, &g->nodes[node]) != 0;
}

int mb_backend_energy_mj(const mb_backend *be, unsigned long long *mj, char *why, size_t whylen)
{
    if (!be || !be->energy_mj)
        return fail(why, whylen, "not on a GPU (%s kernels)", mb_backend_name(be));
    return be->energy_mj(be, mj, why, whylen);
}
