/* Layer-range pipeline split of a decoder for generation (EdgeShard;
 * include/mecbed/genplan.h, docs/generation.md). */
#include "mecbed/genplan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/decoder.h"

int mb_gen_predict_step(const mb_graph *g, const mb_cost_model *c, int n_layers, const int *layer_site,
                        mb_gen_step_pred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const mb_topology *t = mb_cost_topology(c);
    int n = g->n_nodes, S = t->n_sites, device = 0;
    int *site = malloc(sizeof(int) * (size_t)n);
    unsigned char *sent = calloc((size_t)n * (size_t)S, 1); /* tensor u already bound for site s */
    int64_t *pair = calloc((size_t)S * (size_t)S, sizeof(int64_t));
    int rc = -1;
    if (!site || !sent || !pair) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* the device is where the tokens come in: the pre-layer ops' site */
    for (int i = 0; i < n_layers; i++)
        if (layer_site[i] < 0 || layer_site[i] >= S) {
            snprintf(err, errlen, "layer %d: site %d is not in the topology", i, layer_site[i]);
            goto out;
        }
    for (int i = 0; i < S; i++)
        if (t->sites[i].role == MB_ROLE_DEVICE) {
            device = i;
            break;
        }
    if (mb_decoder_assign(g, n_layers, layer_site, device, site) != n_layers) {
        snprintf(err, errlen, "%s: not a decoder of %d layers", g->name, n_layers);
        goto out;
    }
    for (int v = 0; v < n; v++) {
        const mb_node *nd = &g->nodes[v];
        if (nd->type == MB_OP_INPUT || nd->type == MB_OP_CONSTANT)
            continue;
        double ms = mb_cost_op_ms(c, site[v], v);
        out->compute_ms += ms;
        if (site[v] == device)
            out->device_ms += ms;
        for (int k = 0; k < nd->n_inputs; k++) {
            int u = nd->inputs[k];
            if (g->nodes[u].type == MB_OP_CONSTANT || site[u] == site[v] || sent[(size_t)u * S + site[v]])
                continue; /* constants (weights, tables) are on every site */
            sent[(size_t)u * S + site[v]] = 1;
            pair[site[u] * S + site[v]] += g->nodes[u].out_bytes;
        }
    }
    int tok = g->outputs[0]; /* the token returns; the caches stay where their layers run */
    if (site[tok] != device)
        pair[site[tok] * S + device] += g->nodes[tok].out_bytes;
    out->ms = out->compute_ms;
    for (int a = 0; a < S; a++)
        for (int b = 0; b < S; b++) {
            int64_t bytes = pair[a * S + b];
            if (!bytes)
                continue;
            double x = mb_cost_xfer_ms(c, a, b, bytes);
            if (!isfinite(x)) {
                snprintf(err, errlen, "no route from site %d to site %d", a, b);
                goto out;
            }
            out->ms += x;
            if (a == device)
                out->up_ms += x;
            else if (b == device)
                out->down_ms += x;
            else
                out->backbone_bytes += bytes;
            if (a == device || (b != device && a < b))
                out->up_bytes += bytes;
            else
                out->down_bytes += bytes;
        }
    rc = 0;
out:
    free(site);
    free(sent);
    free(pair);
    return rc;
}

/* Weights a split keeps on the device: every parameter of a device node. */
static double device_weights(const mb_graph *g, int n_layers, const int *layer_site, int device)
{
    int *site = malloc(sizeof(int) * (size_t)g->n_nodes);
    double bytes = 0;
    if (!site || mb_decoder_assign(g, n_layers, layer_site, device, site) != n_layers) {
        free(site);
        return INFINITY;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (site[i] == device)
            for (int k = 0; k < g->nodes[i].n_params; k++)
                bytes += (double)mb_tensor_bytes(g->nodes[i].params[k]);
    free(site);
    return bytes;
}

int mb_gen_pipeline_plan(const mb_graph *prefill, const mb_cost_model *c_prefill, const mb_graph *decode,
                         const mb_cost_model *c_decode, int n_layers, int device, int server, int n_gen,
                         double device_mem_bytes, mb_gen_split_pred *out, char *err, size_t errlen)
{
    int *ls = malloc(sizeof(int) * (size_t)(n_layers > 0 ? n_layers : 1));
    if (!ls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int best = -1;
    for (int k = 0; k <= n_layers; k++) {
        for (int l = 0; l < n_layers; l++)
            ls[l] = l < k ? device : server;
        mb_gen_split_pred *p = &out[k];
        memset(p, 0, sizeof *p);
        p->k = k;
        if (mb_gen_predict_step(prefill, c_prefill, n_layers, ls, &p->prefill, err, errlen) ||
            mb_gen_predict_step(decode, c_decode, n_layers, ls, &p->decode, err, errlen)) {
            free(ls);
            return -1;
        }
        p->total_ms = p->prefill.ms + (n_gen > 1 ? (n_gen - 1) * p->decode.ms : 0);
        p->device_weight_bytes = device_weights(decode, n_layers, ls, device);
        int fits = device_mem_bytes <= 0 || p->device_weight_bytes <= device_mem_bytes;
        if (fits && (best < 0 || p->total_ms < out[best].total_ms))
            best = k;
    }
    free(ls);
    if (best < 0)
        snprintf(err, errlen, "no split fits the device's memory of %.0f MB (the embedding alone needs %.0f MB)",
                 device_mem_bytes / 1e6, out[0].device_weight_bytes / 1e6);
    return best;
}
