/* Fold inference-time BatchNormalization into the convolution before it:
 *   y = gamma * (conv(x) + b - mean) / sqrt(var + eps) + beta
 *     = conv'(x) + b'   with  W'[m] = W[m] * s[m],  b'[m] = (b[m] - mean[m]) * s[m] + beta[m],
 *   s[m] = gamma[m] / sqrt(var[m] + eps).
 * Only when the BN reads the conv and is the conv's only consumer (and the
 * conv's output is not a graph output), so no one else sees the unfolded
 * tensor. The folded conv keeps its name and sets a.bn_folded. */
#include "mecbed/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int foldable(const mb_graph *g, const int *uses, const char *is_out, int b)
{
    const mb_node *bn = &g->nodes[b];
    if (bn->type != MB_OP_BATCHNORM || bn->n_inputs != 1 || bn->n_params != 4)
        return 0;
    int c = bn->inputs[0];
    const mb_node *cv = &g->nodes[c];
    if (cv->type != MB_OP_CONV || uses[c] != 1 || is_out[c] || cv->n_params < 1 || cv->n_params > 2)
        return 0;
    const mb_tensor *w = cv->params[0];
    if (w->ndim != 4)
        return 0;
    int64_t m = w->dims[0];
    for (int k = 0; k < 4; k++)
        if (mb_tensor_numel(bn->params[k]) != m)
            return 0;
    if (cv->n_params == 2 && mb_tensor_numel(cv->params[1]) != m)
        return 0;
    return 1;
}

/* Rewrite conv c's weights and bias with BN node b's statistics. */
static int fold_one(mb_node *cv, const mb_node *bn)
{
    mb_tensor *w = cv->params[0];
    int64_t m = w->dims[0], per = mb_tensor_numel(w) / (m ? m : 1);
    if (cv->n_params == 1) {
        mb_tensor *bias = mb_tensor_new(1, &m);
        if (!bias)
            return -1;
        cv->params[1] = bias;
        cv->n_params = 2;
    }
    float *bias = cv->params[1]->data;
    const float *gamma = bn->params[0]->data, *beta = bn->params[1]->data;
    const float *mean = bn->params[2]->data, *var = bn->params[3]->data;
    for (int64_t j = 0; j < m; j++) {
        double s = (double)gamma[j] / sqrt((double)var[j] + (double)bn->a.epsilon);
        float *row = w->data + j * per;
        for (int64_t k = 0; k < per; k++)
            row[k] = (float)(row[k] * s);
        bias[j] = (float)(((double)bias[j] - mean[j]) * s + beta[j]);
    }
    cv->a.bn_folded = 1;
    return 0;
}

int mb_graph_fold_batchnorm(mb_graph *g)
{
    int n = g->n_nodes;
    if (n == 0)
        return 0;
    int *uses = calloc((size_t)n, sizeof(int));
    char *is_out = calloc((size_t)n, 1);
    int *target = malloc(sizeof(int) * (size_t)n); /* node i's value now comes from node target[i] */
    if (!uses || !is_out || !target) {
        free(uses);
        free(is_out);
        free(target);
        return 0;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            uses[g->nodes[i].inputs[k]]++;
    for (int o = 0; o < g->n_outputs; o++)
        if (g->outputs[o] >= 0 && g->outputs[o] < n)
            is_out[g->outputs[o]] = 1;

    int folded = 0;
    for (int i = 0; i < n; i++) {
        target[i] = i;
        if (foldable(g, uses, is_out, i) && fold_one(&g->nodes[g->nodes[i].inputs[0]], &g->nodes[i]) == 0) {
            target[i] = g->nodes[i].inputs[0];
            folded++;
        }
    }
    if (!folded)
        goto done;

    /* Compact: drop folded BN nodes, renumber every reference. */
    int *new_idx = malloc(sizeof(int) * (size_t)n);
    if (!new_idx)
        goto done; /* weights are already folded but the BN nodes stay: cannot happen short of OOM */
    int k = 0;
    for (int i = 0; i < n; i++)
        new_idx[i] = target[i] == i ? k++ : -1;
    for (int i = 0; i < n; i++)
        if (target[i] != i)
            new_idx[i] = new_idx[target[i]];
    k = 0;
    for (int i = 0; i < n; i++) {
        mb_node *nd = &g->nodes[i];
        if (target[i] != i) {
            for (int p = 0; p < nd->n_params; p++)
                mb_tensor_free(nd->params[p]);
            continue;
        }
        for (int q = 0; q < nd->n_inputs; q++)
            nd->inputs[q] = new_idx[nd->inputs[q]];
        if (k != i)
            g->nodes[k] = *nd;
        k++;
    }
    g->n_nodes = k;
    for (int o = 0; o < g->n_outputs; o++)
        if (g->outputs[o] >= 0 && g->outputs[o] < n)
            g->outputs[o] = new_idx[g->outputs[o]];
    free(new_idx);
    /* Refresh per-node figures (the conv gained a bias). The structure was
     * valid before and folding keeps it so; a graph never inferred stays as
     * the caller left it apart from the counts. */
    char err[256];
    (void)mb_graph_infer(g, err, sizeof err);
done:
    free(uses);
    free(is_out);
    free(target);
    return folded;
}
