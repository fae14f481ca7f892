/* In-process execution of a plan (plan.h, mb_plan_execute): the oracle that
 * proves a plan computes what the unsplit model computes. Every site has a
 * store of full-size tensors, one per op it holds part of; COMPUTE writes
 * the region the backend computed into it, SEND copies a region from the
 * sender's store into the receiver's. Tensors are freed after their last
 * use on a site. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/exec.h"

typedef struct store {
    mb_tensor **t; /* [site * n + op] */
    char *borrowed;
    int n, ns;
} store;

static mb_tensor **slot(store *s, int site, int op) { return &s->t[(size_t)site * s->n + op]; }

static mb_tensor *get_or_alloc(store *s, const mb_graph *g, int site, int op)
{
    mb_tensor **p = slot(s, site, op);
    if (!*p)
        *p = mb_tensor_new(g->nodes[op].out_ndim, g->nodes[op].out_dims);
    return *p;
}

static void drop(store *s, int site, int op)
{
    mb_tensor **p = slot(s, site, op);
    if (*p && !s->borrowed[(size_t)site * s->n + op])
        mb_tensor_free(*p);
    *p = NULL;
}

/* Copy region r of src (full-size) into the full-size dst. */
static int copy_region(const mb_tensor *src, mb_tensor *dst, mb_region r, int four_d)
{
    if (!four_d) {
        memcpy(dst->data, src->data, mb_tensor_bytes(src));
        return 0;
    }
    int64_t dims[MB_MAX_DIMS];
    mb_region_box_dims(src->ndim, src->dims, r, dims);
    mb_tensor *tmp = mb_tensor_new(src->ndim, dims);
    if (!tmp)
        return -1;
    mb_view v = mb_view_whole(src);
    int rc = mb_tensor_copy_region(&v, r, tmp);
    if (!rc)
        rc = mb_tensor_paste_region(dst, r, tmp);
    mb_tensor_free(tmp);
    return rc;
}

int mb_plan_execute(const mb_plan *p, const mb_graph *g, const mb_topology *t, mb_backend *be,
                    mb_tensor *const *inputs, mb_tensor ***outputs, char *err, size_t errlen)
{
    if (mb_plan_validate(p, g, t, err, errlen))
        return -1;
    int n = g->n_nodes, ns = t ? t->n_sites : MB_MAX_SITES;
    store s = {.n = n, .ns = ns};
    s.t = calloc((size_t)ns * (size_t)n, sizeof(*s.t));
    s.borrowed = calloc((size_t)ns * (size_t)n, 1);
    int *last = malloc(sizeof(int) * (size_t)ns * (size_t)n);
    mb_tensor **outs = calloc((size_t)(g->n_outputs ? g->n_outputs : 1), sizeof(*outs));
    int rc = -1;
    if (!s.t || !s.borrowed || !last || !outs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    /* last use of each (site, op); outputs on the device are kept to the end */
    for (size_t i = 0; i < (size_t)ns * n; i++)
        last[i] = -1;
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *st = &p->steps[k];
        if (st->kind == MB_STEP_COMPUTE) {
            for (int j = 0; j < g->nodes[st->op].n_inputs; j++)
                last[(size_t)st->site * n + g->nodes[st->op].inputs[j]] = k;
            if (last[(size_t)st->site * n + st->op] < k)
                last[(size_t)st->site * n + st->op] = k;
        } else {
            last[(size_t)st->site * n + st->op] = k;
            if (last[(size_t)st->to * n + st->op] < k)
                last[(size_t)st->to * n + st->op] = k;
        }
    }
    for (int k = 0; k < g->n_outputs; k++)
        last[(size_t)p->device * n + g->outputs[k]] = p->n_steps;
    int in_k = 0;
    for (int i = 0; i < n; i++) {
        if (g->nodes[i].type == MB_OP_INPUT) {
            *slot(&s, p->device, i) = inputs[in_k++];
            s.borrowed[(size_t)p->device * n + i] = 1;
        } else if (g->nodes[i].type == MB_OP_CONSTANT) {
            for (int site = 0; site < ns; site++) {
                *slot(&s, site, i) = g->nodes[i].params[0];
                s.borrowed[(size_t)site * n + i] = 1;
            }
        }
    }
    for (int k = 0; k < p->n_steps; k++) {
        const mb_plan_step *st = &p->steps[k];
        const mb_node *nd = &g->nodes[st->op];
        int four_d = nd->out_ndim >= 2 && nd->out_ndim <= 4; /* regions (mb_region_axes) */
        if (st->kind == MB_STEP_COMPUTE) {
            mb_view in[MB_MAX_INPUTS];
            for (int j = 0; j < nd->n_inputs; j++) {
                mb_tensor *x = *slot(&s, st->site, nd->inputs[j]);
                if (!x) {
                    snprintf(err, errlen, "execute step %d: input %s missing on site %d", k,
                             g->nodes[nd->inputs[j]].name, st->site);
                    goto out;
                }
                in[j] = mb_view_whole(x);
            }
            int64_t rdims[MB_MAX_DIMS];
            if (four_d)
                mb_region_box_dims(nd->out_ndim, nd->out_dims, st->region, rdims);
            mb_tensor *res = mb_tensor_new(nd->out_ndim, four_d ? rdims : nd->out_dims);
            mb_tensor *dst = get_or_alloc(&s, g, st->site, st->op);
            if (!res || !dst) {
                mb_tensor_free(res);
                snprintf(err, errlen, "out of memory");
                goto out;
            }
            char e2[256] = "";
            if (mb_backend_compute(be, g, st->op, in, st->region, res, e2, sizeof(e2))) {
                mb_tensor_free(res);
                snprintf(err, errlen, "execute step %d (%s on site %d): %s", k, nd->name, st->site,
                         e2);
                goto out;
            }
            int prc = four_d ? mb_tensor_paste_region(dst, st->region, res)
                             : (memcpy(dst->data, res->data, mb_tensor_bytes(res)), 0);
            mb_tensor_free(res);
            if (prc) {
                snprintf(err, errlen, "execute step %d (%s): region does not fit", k, nd->name);
                goto out;
            }
        } else {
            mb_tensor *src = *slot(&s, st->site, st->op);
            mb_tensor *dst = get_or_alloc(&s, g, st->to, st->op);
            if (!src || !dst || copy_region(src, dst, st->region, four_d)) {
                snprintf(err, errlen, "execute step %d: cannot copy %s from site %d to %d", k,
                         nd->name, st->site, st->to);
                goto out;
            }
        }
        /* free what no later step on that site needs */
        for (int j = 0; j < nd->n_inputs && st->kind == MB_STEP_COMPUTE; j++)
            if (last[(size_t)st->site * n + nd->inputs[j]] == k)
                drop(&s, st->site, nd->inputs[j]);
        if (last[(size_t)st->site * n + st->op] == k)
            drop(&s, st->site, st->op);
        if (st->kind == MB_STEP_SEND && last[(size_t)st->to * n + st->op] == k)
            drop(&s, st->to, st->op);
    }
    for (int k = 0; k < g->n_outputs; k++) {
        mb_tensor *x = *slot(&s, p->device, g->outputs[k]);
        outs[k] = x ? mb_tensor_clone(x) : NULL;
        if (!outs[k]) {
            snprintf(err, errlen, "execute: output %s not on the device", g->nodes[g->outputs[k]].name);
            goto out;
        }
    }
    *outputs = outs;
    outs = NULL;
    rc = 0;
out:
    if (outs) {
        for (int k = 0; k < g->n_outputs; k++)
            mb_tensor_free(outs[k]);
        free(outs);
    }
    if (s.t)
        for (int site = 0; site < ns; site++)
            for (int i = 0; i < n; i++)
                drop(&s, site, i);
    free(s.t);
    free(s.borrowed);
    free(last);
    return rc;
}
