/* Import-time fusion of the decomposed forms older exporters write:
 *  - LayerNormalization before opset 17: ReduceMean -> Sub -> Pow(2) ->
 *    ReduceMean -> Add(eps) -> Sqrt -> Div, then optionally Mul(scale) and
 *    Add(bias), becomes one LayerNormalization node;
 *  - Gelu before opset 20 (PyTorch's erf form): Div(x, sqrt 2) -> Erf ->
 *    Add(1) -> Mul(x, .) -> Mul(0.5) becomes one Gelu node, which computes
 *    the same float operations in the same order (bit-identical).
 * Only chains whose intermediate tensors have no other consumer are fused;
 * the orphaned nodes are dropped by the importer's dead-node removal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

/* Number of consumers of node i (graph outputs count as consumers). */
static int uses(const mb_graph *g, int i)
{
    int c = mb_graph_consumers(g, i, NULL, 0);
    for (int k = 0; k < g->n_outputs; k++)
        c += g->outputs[k] == i;
    return c;
}

/* The one consumer of node i, of type t, or -1. */
static int only_consumer(const mb_graph *g, int i, mb_op_type t)
{
    int c;
    if (uses(g, i) != 1 || mb_graph_consumers(g, i, &c, 1) != 1)
        return -1;
    return g->nodes[c].type == t ? c : -1;
}

static int scalar_param(const mb_node *n, float *v)
{
    if (n->n_params != 1 || n->n_inputs != 1 || mb_tensor_numel(n->params[0]) != 1)
        return 0;
    *v = n->params[0]->data[0];
    return 1;
}

/* Trailing axes from `from` to rank-1 as a mask: the reduction's axes. */
static int trailing_from(int mask, int rank)
{
    for (int a = 0; a < rank; a++)
        if (mask == (((1 << rank) - 1) & ~((1 << a) - 1)))
            return a;
    return -1;
}

static int fuse_layernorm(mb_graph *g, int m1, int *rank_of)
{
    mb_node *mean = &g->nodes[m1];
    if (mean->type != MB_OP_REDUCEMEAN || !mean->a.keepdims || mean->n_inputs != 1)
        return 0;
    int x = mean->inputs[0], R = rank_of[x];
    int axis = trailing_from(mean->a.axes_mask, R);
    if (axis < 0)
        return 0;
    /* x's consumers include the mean and the Sub */
    int cons[8], nc = mb_graph_consumers(g, m1, cons, 8);
    if (nc != 1 || uses(g, m1) != 1)
        return 0;
    int sub = cons[0];
    if (g->nodes[sub].type != MB_OP_SUB || g->nodes[sub].n_inputs != 2 || g->nodes[sub].inputs[0] != x ||
        g->nodes[sub].inputs[1] != m1)
        return 0;
    /* d = sub feeds Pow and Div */
    int dc[4], nd = mb_graph_consumers(g, sub, dc, 4);
    if (nd != 2 || uses(g, sub) != 2)
        return 0;
    int pw = g->nodes[dc[0]].type == MB_OP_POW ? dc[0] : dc[1], dv = pw == dc[0] ? dc[1] : dc[0];
    float v;
    if (g->nodes[pw].type != MB_OP_POW || !scalar_param(&g->nodes[pw], &v) || v != 2.0f)
        return 0;
    if (g->nodes[dv].type != MB_OP_DIV || g->nodes[dv].n_inputs != 2 || g->nodes[dv].inputs[0] != sub)
        return 0;
    int m2 = only_consumer(g, pw, MB_OP_REDUCEMEAN);
    if (m2 < 0 || g->nodes[m2].a.axes_mask != mean->a.axes_mask || !g->nodes[m2].a.keepdims)
        return 0;
    int ad = only_consumer(g, m2, MB_OP_ADD);
    float eps;
    if (ad < 0 || !scalar_param(&g->nodes[ad], &eps) || !(eps >= 0))
        return 0;
    int sq = only_consumer(g, ad, MB_OP_SQRT);
    if (sq < 0 || only_consumer(g, sq, MB_OP_DIV) != dv || g->nodes[dv].inputs[1] != sq)
        return 0;
    /* optional scale and bias, params broadcasting to the normalised dims */
    int last = dv, mul = only_consumer(g, dv, MB_OP_MUL), add = -1;
    if (mul >= 0 && g->nodes[mul].n_params == 1 && g->nodes[mul].n_inputs == 1) {
        last = mul;
        add = only_consumer(g, mul, MB_OP_ADD);
        if (add >= 0 && g->nodes[add].n_params == 1 && g->nodes[add].n_inputs == 1)
            last = add;
        else
            add = -1;
    } else {
        mul = -1;
    }
    mb_node *L = &g->nodes[last];
    mb_tensor *scale = mul >= 0 ? g->nodes[mul].params[0] : NULL, *bias = add >= 0 ? g->nodes[add].params[0] : NULL;
    int64_t len = 1;
    for (int a = axis; a < R; a++)
        len *= g->nodes[x].out_dims[a];
    if (!scale) {
        int64_t d = len;
        scale = mb_tensor_new(1, &d);
        if (!scale)
            return -1;
        for (int64_t i = 0; i < len; i++)
            scale->data[i] = 1.0f;
    }
    if (mul >= 0)
        g->nodes[mul].n_params = 0;
    if (add >= 0)
        g->nodes[add].n_params = 0;
    char name[MB_NAME_LEN];
    memcpy(name, L->name, sizeof name);
    memset(L, 0, sizeof *L);
    memcpy(L->name, name, sizeof name);
    L->type = MB_OP_LAYERNORM;
    L->a.axis = axis;
    L->a.epsilon = eps;
    L->n_inputs = 1;
    L->inputs[0] = x;
    L->params[L->n_params++] = scale;
    if (bias)
        L->params[L->n_params++] = bias;
    return 1;
}

static int fuse_gelu(mb_graph *g, int dv)
{
    mb_node *d = &g->nodes[dv];
    float v;
    if (d->type != MB_OP_DIV || !scalar_param(d, &v) || v != 1.41421354f)
        return 0;
    int x = d->inputs[0];
    int er = only_consumer(g, dv, MB_OP_ERF);
    if (er < 0)
        return 0;
    int ad = only_consumer(g, er, MB_OP_ADD);
    if (ad < 0 || !scalar_param(&g->nodes[ad], &v) || v != 1.0f)
        return 0;
    int mu = only_consumer(g, ad, MB_OP_MUL);
    if (mu < 0 || g->nodes[mu].n_inputs != 2 || g->nodes[mu].inputs[0] != x || g->nodes[mu].inputs[1] != ad)
        return 0;
    int half = only_consumer(g, mu, MB_OP_MUL);
    if (half < 0 || !scalar_param(&g->nodes[half], &v) || v != 0.5f)
        return 0;
    mb_node *L = &g->nodes[half];
    mb_tensor_free(L->params[0]);
    char name[MB_NAME_LEN];
    memcpy(name, L->name, sizeof name);
    memset(L, 0, sizeof *L);
    memcpy(L->name, name, sizeof name);
    L->type = MB_OP_GELU;
    L->n_inputs = 1;
    L->inputs[0] = x;
    return 1;
}

int ox_fuse_patterns(ox_imp *im)
{
    mb_graph *g = im->g;
    char e[512];
    if (mb_graph_infer(g, e, sizeof e))
        return ox_fail(im, "%s", e);
    int *rank_of = calloc((size_t)g->n_nodes + 1, sizeof(int));
    if (!rank_of)
        return ox_fail(im, "out of memory");
    for (int i = 0; i < g->n_nodes; i++)
        rank_of[i] = g->nodes[i].out_ndim;
    int rc = 0;
    for (int i = 0; i < g->n_nodes && rc >= 0; i++) {
        rc = fuse_layernorm(g, i, rank_of);
        if (rc == 0)
            rc = fuse_gelu(g, i);
    }
    free(rank_of);
    return rc < 0 ? ox_fail(im, "out of memory") : 0;
}
