/* mecbed: kernel backends. A backend computes one node's output, or any
 * rectangle of it for spatially local ops, from views of its inputs. The
 * reference backend ("ref") is the oracle; "cpu" is the fast OpenBLAS one;
 * "cuda" runs the same contract on a GPU and is loaded on demand
 * (libmecbed-cuda.so, docs/cuda.md).
 *
 * The handle is opaque: the function table each backend fills is private to
 * kernels/ (kernels/backend_impl.h), and every request goes through
 * mb_backend_compute(), which checks it once for all backends. */
#ifndef MECBED_BACKEND_H
#define MECBED_BACKEND_H

#include <stddef.h>

#include "mecbed/graph.h"

typedef struct mb_backend mb_backend;

/* By name: "ref", "cpu", "cuda" (NULL or "" means "cpu"). n_threads is the
 * cpu backend's worker count (ref and cuda record it). NULL with a message if
 * the name is unknown or the backend cannot start (for "cuda": the library or
 * the CUDA runtime is missing, or there is no GPU). */
mb_backend *mb_backend_new(const char *name, int n_threads, char *err, size_t errlen);
void mb_backend_free(mb_backend *be);

/* "ref", "cpu", "cuda" (the test harness of kernels/cuda says "cuda-hostsim"). */
const char *mb_backend_name(const mb_backend *be);
int mb_backend_threads(const mb_backend *be);

/* 1 if the backend implements node `node` of g with its attributes (a
 * backend that says 1 computes it; one that says 0 refuses it in
 * mb_backend_compute with a message). 0 for graph inputs and bad indices. */
int mb_backend_supports(const mb_backend *be, const mb_graph *g, int node);

/* Compute region r of node `node`'s output into out. Checked here, once,
 * for every backend:
 *  - node is an index of g and the backend supports it;
 *  - for 4-D outputs r lies inside the output, and is the whole output for
 *    ops that are not spatially local (r is ignored for other ranks);
 *  - out has dims (N, C, rows(r), cols(r)) for 4-D outputs, else the full
 *    output dims;
 *  - in[k] views input k with the producer's shape: for local ops it covers
 *    at least mb_node_input_region(g, node, k, r); for others it is the whole
 *    input. full_h/full_w may be left 0.
 * Returns 0, or -1 with a message in err. */
int mb_backend_compute(mb_backend *be, const mb_graph *g, int node, const mb_view *in, mb_region r,
                       mb_tensor *out, char *err, size_t errlen);

/* The device's energy counter in millijoules (GPU backends, through NVML).
 * -1 with the reason in why where there is none: callers report energy as
 * unknown, never as zero. */
int mb_backend_energy_mj(const mb_backend *be, unsigned long long *mj, char *why, size_t whylen);

#endif
