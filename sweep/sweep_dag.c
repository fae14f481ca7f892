/* mecbed sweep: seeded random DAGs shaped like CNNs, for decision-time
 * experiments on graphs larger than the zoo's (50 to thousands of ops).
 *
 * The graph is a sequence of blocks, each drawn at random: a chain of 1-4
 * ops (p 0.5), a residual block (a 2-3 op branch joined to its input by an
 * add, p 0.3), or an inception block (3-4 parallel branches of 1-2 ops joined
 * by a concat, p 0.2). Activations start at a 224x224x64 fp32 map and shrink:
 * each block keeps 85-100 % of its input's bytes, with a 2x downsample every
 * n/5 ops, floored at 4 KiB; the last op is a 1000-float classifier output.
 * Only structure and sizes are generated (no shapes, no weights), which is
 * all the cost model and the whole-op policies (mincut, cic, layerwise,
 * local, offload) read. The profile gives every op 0.1-2.1 ms on the
 * profiled machine, drawn from the same seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/graph.h"
#include "mecbed/profile.h"
#include "mecbed/tensor.h"
#include "mecbed/sweep.h"

typedef struct dag_gen {
    mb_graph *g;
    uint64_t rng;
    int n_target;
    double bytes;
} dag_gen;

static double uni(dag_gen *d)
{
    return mb_rng_uniform(&d->rng);
}

static int add(dag_gen *d, const int *in, int n_in, double bytes)
{
    mb_node nd;
    memset(&nd, 0, sizeof nd);
    snprintf(nd.name, sizeof nd.name, "op%d", d->g->n_nodes);
    nd.type = n_in > 1 ? MB_OP_CONCAT : MB_OP_RELU;
    for (int i = 0; i < n_in && i < MB_MAX_INPUTS; i++)
        nd.inputs[nd.n_inputs++] = in[i];
    nd.out_bytes = bytes < 4096 ? 4096 : (int64_t)bytes;
    return mb_graph_add(d->g, &nd);
}

static int room(const dag_gen *d)
{
    return d->n_target - 1 - d->g->n_nodes; /* keep one op for the classifier */
}

mb_graph *sw_dag_generate(int n, uint64_t seed)
{
    char name[32];
    snprintf(name, sizeof name, "dag%d", n);
    /* n ops (mb_graph_n_ops) and the input: n + 1 nodes */
    dag_gen d = {.g = mb_graph_new(name), .rng = seed * 0x9e3779b97f4a7c15ull + 12345, .n_target = n + 1};
    if (!d.g)
        return NULL;
    mb_node in;
    memset(&in, 0, sizeof in);
    snprintf(in.name, sizeof in.name, "input");
    in.type = MB_OP_INPUT;
    in.out_bytes = 3 * 224 * 224 * 4;
    int last = mb_graph_add(d.g, &in);
    d.bytes = 64.0 * 224 * 224 * 4;
    int stage = n / 5 > 4 ? n / 5 : 4, next_down = stage;
    while (room(&d) > 0) {
        double r = uni(&d);
        if (d.g->n_nodes >= next_down) {
            d.bytes *= 0.5;
            next_down += stage;
        }
        d.bytes *= 0.85 + 0.15 * uni(&d);
        if (r < 0.5 || room(&d) < 4) { /* chain */
            int len = 1 + (int)(uni(&d) * 4);
            for (int i = 0; i < len && room(&d) > 0; i++)
                last = add(&d, &last, 1, d.bytes * (0.9 + 0.2 * uni(&d)));
        } else if (r < 0.8) { /* residual: branch of 2-3 ops, add with the input */
            int len = 2 + (int)(uni(&d) * 2);
            if (len + 1 > room(&d))
                len = room(&d) - 1;
            int b = last;
            for (int i = 0; i < len; i++)
                b = add(&d, &b, 1, d.bytes * (i == len - 1 ? 1 : 0.25 + 0.75 * uni(&d)));
            int ins[2] = {last, b};
            last = add(&d, ins, 2, d.bytes);
        } else { /* inception: 3-4 branches of 1-2 ops, concat */
            int nb = 3 + (int)(uni(&d) * 2), ends[4], used = 0;
            for (int bi = 0; bi < nb; bi++) {
                int len = 1 + (int)(uni(&d) * 2);
                if (used + len + 1 > room(&d))
                    len = room(&d) - used - 1;
                if (len <= 0) {
                    nb = bi;
                    break;
                }
                int b = last;
                for (int i = 0; i < len; i++)
                    b = add(&d, &b, 1, d.bytes / nb * (0.5 + uni(&d)));
                ends[bi] = b;
                used += len;
            }
            if (nb > 0)
                last = add(&d, ends, nb, d.bytes);
        }
    }
    last = add(&d, &last, 1, 4000);
    d.g->n_outputs = 1;
    d.g->outputs[0] = last;
    return d.g;
}

mb_profile *sw_dag_profile(const mb_graph *g, uint64_t seed)
{
    mb_profile *p = mb_profile_new(g);
    if (!p)
        return NULL;
    uint64_t rng = seed * 0xd1342543de82ef95ull + 777;
    p->ref_gflops = 100;
    snprintf(p->backend, sizeof p->backend, "synthetic");
    snprintf(p->blas_core, sizeof p->blas_core, "-");
    for (int i = 0; i < g->n_nodes; i++)
        p->ms[i] = g->nodes[i].type == MB_OP_INPUT ? 0 : 0.1 + 2.0 * mb_rng_uniform(&rng);
    return p;
}
