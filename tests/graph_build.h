/* Small graph and tensor builders shared by the kernel tests
 * (kernel_cases.h, test_kernels_support.c). Functions are static inline so
 * a test that uses only some of them compiles without warnings. Include
 * after mecbed/backend.h. */
#ifndef MECBED_TESTS_GRAPH_BUILD_H
#define MECBED_TESTS_GRAPH_BUILD_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/graph.h"
#include "mecbed/platform.h"
#include "mecbed/tensor.h"

#define TOL 1e-5

static uint64_t rng_state = 12345;

static inline int64_t rnd(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(mb_rng_next(&rng_state) % (uint64_t)(hi - lo + 1));
}

static inline int add_input(mb_graph *g, int ndim, const int64_t *dims)
{
    mb_node in = {.type = MB_OP_INPUT};
    snprintf(in.name, sizeof in.name, "in%d", g->n_nodes);
    in.a.shape_ndim = ndim;
    for (int i = 0; i < ndim; i++)
        in.a.shape[i] = dims[i];
    return mb_graph_add(g, &in);
}

static inline int add_input4(mb_graph *g, int64_t n, int64_t c, int64_t h, int64_t w)
{
    int64_t d[4] = {n, c, h, w};
    return add_input(g, 4, d);
}

static inline mb_tensor *rand_tensor(int ndim, const int64_t *dims, uint64_t seed, float lo, float hi)
{
    mb_tensor *t = mb_tensor_new(ndim, dims);
    mb_tensor_fill_uniform(t, seed, lo, hi);
    return t;
}

static inline mb_tensor *rand4(int64_t n, int64_t c, int64_t h, int64_t w, uint64_t seed)
{
    int64_t d[4] = {n, c, h, w};
    return rand_tensor(4, d, seed, -1, 1);
}

static inline mb_tensor *rand1(int64_t n, uint64_t seed, float lo, float hi)
{
    return rand_tensor(1, &n, seed, lo, hi);
}

static inline double scale_of(const mb_tensor *t)
{
    double s = 0;
    int64_t n = mb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (fabs(t->data[i]) > s)
            s = fabs(t->data[i]);
    return s > 1e-30 ? s : 1.0;
}

#endif
