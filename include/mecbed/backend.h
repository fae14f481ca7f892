/* mecbed: kernel backends. A backend computes one node's output, or any
 * rectangle of it for spatially local ops, from views of its inputs. The
 * reference backend ("ref") is the oracle; "cpu" is the fast OpenBLAS one;
 * "cuda" fills the same table where a GPU exists. */
#ifndef MECBED_BACKEND_H
#define MECBED_BACKEND_H

#include "mecbed/graph.h"

typedef struct mb_backend mb_backend;

struct mb_backend {
    const char *name;
    /* 1 if this backend can run node n of g. */
    int (*supports_op)(const mb_backend *be, const mb_graph *g, const mb_node *n);
    /* Compute region r of node n's output into out.
     * in[k] views input k: for local ops it must cover at least
     * mb_node_input_region(g, n, k, r); for others it is the whole input.
     * out has dims (N, C, rows(r), cols(r)) for 4-D outputs, else the full output dims.
     * Returns 0, or -1 with a message in err. */
    int (*compute)(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r,
                   mb_tensor *out, char *err, size_t errlen);
    void (*free)(mb_backend *be);
    void *ctx;
    int n_threads;
};

mb_backend *mb_backend_ref_new(void);
mb_backend *mb_backend_cpu_new(int n_threads);
/* By name: "ref", "cpu", "cuda". NULL with a message if unknown or unavailable. */
mb_backend *mb_backend_new(const char *name, int n_threads, char *err, size_t errlen);
void mb_backend_free(mb_backend *be);

#endif
