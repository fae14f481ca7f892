/* The zoo's graph builder (see zoo_build.h). */
#include "zoo_build.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zoo_begin(zoo_b *b, const char *model, uint64_t seed)
{
    memset(b, 0, sizeof *b);
    b->seed = seed;
    b->g = mb_graph_new(model);
    if (!b->g) {
        b->failed = 1;
        snprintf(b->err, sizeof b->err, "%s: out of memory", model);
        return -1;
    }
    return 0;
}

const char *zoo_nm(zoo_b *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->name, sizeof b->name, fmt, ap);
    va_end(ap);
    return b->name;
}

static void fail(zoo_b *b, const char *what, const char *name)
{
    if (!b->failed)
        snprintf(b->err, sizeof b->err, "%s: %s at node '%s'", b->g ? b->g->name : "zoo", what, name);
    b->failed = 1;
}

/* Set while mb_zoo_build_structure runs: weights keep their shape, no values. */
static __thread int structure_only;

void zoo_set_structure_only(int on)
{
    structure_only = on;
}

int zoo_structure_only(void)
{
    return structure_only;
}

/* A tensor of the given dims, uniform in [lo,hi), from its own seeded stream. */
static mb_tensor *draw(zoo_b *b, int ndim, const int64_t *dims, float lo, float hi)
{
    mb_tensor *t = mb_tensor_new(ndim, dims);
    ++b->n_drawn;
    if (t && !structure_only)
        mb_tensor_fill_uniform(t, b->seed * 0x100000001B3ull + b->n_drawn, lo, hi);
    return t;
}

static int add(zoo_b *b, mb_node *n, int ch)
{
    if (b->failed) {
        for (int i = 0; i < n->n_params; i++)
            mb_tensor_free(n->params[i]);
        return -1;
    }
    for (int i = 0; i < n->n_params; i++)
        if (!n->params[i]) {
            for (int j = 0; j < n->n_params; j++)
                mb_tensor_free(n->params[j]);
            fail(b, "out of memory for weights", n->name);
            return -1;
        }
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] < 0) {
            for (int j = 0; j < n->n_params; j++)
                mb_tensor_free(n->params[j]);
            fail(b, "bad input", n->name);
            return -1;
        }
    int id = mb_graph_add(b->g, n);
    if (id < 0) {
        fail(b, "cannot add node", n->name);
        return -1;
    }
    if (id >= b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        while (cap <= id)
            cap *= 2;
        int *c = realloc(b->ch, sizeof(int) * (size_t)cap);
        if (!c) {
            fail(b, "out of memory", n->name);
            return -1;
        }
        b->ch = c;
        b->cap = cap;
    }
    b->ch[id] = ch;
    return id;
}

static void node_init(mb_node *n, const char *name, mb_op_type t)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->type = t;
}

static int unary(zoo_b *b, const char *name, mb_op_type t, int x)
{
    if (b->failed || x < 0)
        return -1;
    mb_node n;
    node_init(&n, name, t);
    n.n_inputs = 1;
    n.inputs[0] = x;
    return add(b, &n, b->ch[x]);
}

int zoo_input(zoo_b *b, const char *name, int c, int h, int w)
{
    mb_node n;
    node_init(&n, name, MB_OP_INPUT);
    n.a.shape_ndim = 4;
    n.a.shape[0] = 1;
    n.a.shape[1] = c;
    n.a.shape[2] = h;
    n.a.shape[3] = w;
    return add(b, &n, c);
}

int zoo_conv(zoo_b *b, const char *name, int x, int out_ch, int k, int s, int p, int group, int bias, float gain)
{
    if (b->failed || x < 0)
        return -1;
    mb_node n;
    node_init(&n, name, MB_OP_CONV);
    int in_ch = b->ch[x];
    if (group < 1 || in_ch % group || out_ch % group) {
        fail(b, "channels not divisible by group", name);
        return -1;
    }
    n.a.kernel[0] = n.a.kernel[1] = k;
    n.a.stride[0] = n.a.stride[1] = s;
    n.a.pads[0] = n.a.pads[1] = n.a.pads[2] = n.a.pads[3] = p;
    n.a.dilation[0] = n.a.dilation[1] = 1;
    n.a.group = group;
    n.n_inputs = 1;
    n.inputs[0] = x;
    int64_t fan_in = (int64_t)(in_ch / group) * k * k;
    float bound = gain * sqrtf(3.0f / (float)fan_in);
    int64_t wd[4] = {out_ch, in_ch / group, k, k};
    n.params[n.n_params++] = draw(b, 4, wd, -bound, bound);
    if (bias) {
        int64_t bd[1] = {out_ch};
        float bb = 1.0f / sqrtf((float)fan_in);
        n.params[n.n_params++] = draw(b, 1, bd, -bb, bb);
    }
    return add(b, &n, out_ch);
}

int zoo_bn(zoo_b *b, const char *name, int x, float eps, float g_lo, float g_hi)
{
    if (b->failed || x < 0)
        return -1;
    mb_node n;
    node_init(&n, name, MB_OP_BATCHNORM);
    n.a.epsilon = eps;
    n.n_inputs = 1;
    n.inputs[0] = x;
    int64_t d[1] = {b->ch[x]};
    /* Trained statistics are not available; these keep activations of unit
     * order, which is all latency measurement and backend comparison need. */
    n.params[n.n_params++] = draw(b, 1, d, g_lo, g_hi);     /* scale */
    n.params[n.n_params++] = draw(b, 1, d, -0.1f, 0.1f);    /* bias */
    n.params[n.n_params++] = draw(b, 1, d, -0.1f, 0.1f);    /* mean */
    n.params[n.n_params++] = draw(b, 1, d, 0.75f, 1.25f);   /* var */
    return add(b, &n, b->ch[x]);
}

int zoo_relu(zoo_b *b, const char *name, int x)
{
    return unary(b, name, MB_OP_RELU, x);
}

int zoo_relu6(zoo_b *b, const char *name, int x)
{
    int id = unary(b, name, MB_OP_CLIP, x);
    if (id >= 0) {
        b->g->nodes[id].a.alpha = 0.0f;
        b->g->nodes[id].a.beta = 6.0f;
    }
    return id;
}

int zoo_leaky(zoo_b *b, const char *name, int x, float alpha)
{
    int id = unary(b, name, MB_OP_LEAKYRELU, x);
    if (id >= 0)
        b->g->nodes[id].a.alpha = alpha;
    return id;
}

static int pool(zoo_b *b, const char *name, mb_op_type t, int x, int k, int s, const int pads[4], int ceil_mode)
{
    int id = unary(b, name, t, x);
    if (id >= 0) {
        mb_op_attrs *a = &b->g->nodes[id].a;
        a->kernel[0] = a->kernel[1] = k;
        a->stride[0] = a->stride[1] = s;
        for (int i = 0; i < 4; i++)
            a->pads[i] = pads ? pads[i] : 0;
        a->ceil_mode = ceil_mode;
    }
    return id;
}

int zoo_maxpool(zoo_b *b, const char *name, int x, int k, int s, const int pads[4], int ceil_mode)
{
    return pool(b, name, MB_OP_MAXPOOL, x, k, s, pads, ceil_mode);
}

int zoo_avgpool(zoo_b *b, const char *name, int x, int k, int s, const int pads[4], int ceil_mode)
{
    return pool(b, name, MB_OP_AVGPOOL, x, k, s, pads, ceil_mode);
}

int zoo_gap(zoo_b *b, const char *name, int x)
{
    return unary(b, name, MB_OP_GLOBALAVGPOOL, x);
}

int zoo_flatten(zoo_b *b, const char *name, int x, int features)
{
    int id = unary(b, name, MB_OP_FLATTEN, x);
    if (id >= 0) {
        b->g->nodes[id].a.axis = 1;
        b->ch[id] = features;
    }
    return id;
}

int zoo_fc(zoo_b *b, const char *name, int x, int in_f, int out_f, float gain)
{
    if (b->failed || x < 0)
        return -1;
    if (b->ch[x] != in_f) {
        fail(b, "fully connected input size does not match", name);
        return -1;
    }
    mb_node n;
    node_init(&n, name, MB_OP_GEMM);
    n.a.alpha = 1.0f;
    n.a.beta = 1.0f;
    n.a.trans_b = 1;
    n.n_inputs = 1;
    n.inputs[0] = x;
    float bound = gain * sqrtf(3.0f / (float)in_f);
    int64_t wd[2] = {out_f, in_f};
    int64_t bd[1] = {out_f};
    float bb = 1.0f / sqrtf((float)in_f);
    n.params[n.n_params++] = draw(b, 2, wd, -bound, bound);
    n.params[n.n_params++] = draw(b, 1, bd, -bb, bb);
    return add(b, &n, out_f);
}

int zoo_add(zoo_b *b, const char *name, int x, int y)
{
    if (b->failed || x < 0 || y < 0)
        return -1;
    mb_node n;
    node_init(&n, name, MB_OP_ADD);
    n.n_inputs = 2;
    n.inputs[0] = x;
    n.inputs[1] = y;
    return add(b, &n, b->ch[x]);
}

int zoo_concat(zoo_b *b, const char *name, const int *xs, int count)
{
    if (b->failed)
        return -1;
    if (count < 1 || count > MB_MAX_INPUTS) {
        fail(b, "bad concat arity", name);
        return -1;
    }
    mb_node n;
    node_init(&n, name, MB_OP_CONCAT);
    n.a.axis = 1;
    n.n_inputs = count;
    int ch = 0;
    for (int i = 0; i < count; i++) {
        if (xs[i] < 0)
            return -1;
        n.inputs[i] = xs[i];
        ch += b->ch[xs[i]];
    }
    return add(b, &n, ch);
}

mb_graph *zoo_finish(zoo_b *b, const int *outputs, int n_outputs, char *err, size_t errlen)
{
    mb_graph *g = b->g;
    free(b->ch);
    b->ch = NULL;
    if (!b->failed) {
        for (int i = 0; i < n_outputs; i++)
            if (outputs[i] < 0 || i >= MB_MAX_OUTPUTS)
                b->failed = 1, snprintf(b->err, sizeof b->err, "%s: bad output", g->name);
    }
    if (!b->failed) {
        g->n_outputs = n_outputs;
        memcpy(g->outputs, outputs, sizeof(int) * (size_t)n_outputs);
        char e[256];
        if (mb_graph_infer(g, e, sizeof e)) {
            snprintf(b->err, sizeof b->err, "%s: %s", g->name, e);
            b->failed = 1;
        }
    }
    if (b->failed) {
        snprintf(err, errlen, "%s", b->err);
        mb_graph_free(g);
        return NULL;
    }
    return g;
}

/* ---- token models' builder (zoo_tb) ---- */

mb_tensor *zoo_tb_draw(zoo_tb *b, int ndim, const int64_t *dims, float lo, float hi)
{
    mb_tensor *t = mb_tensor_new(ndim, dims);
    ++b->n_drawn;
    if (t && !b->structure_only)
        mb_tensor_fill_uniform(t, b->seed * 0x100000001B3ull + b->salt + b->n_drawn, lo, hi);
    return t;
}

mb_tensor *zoo_filled(int ndim, const int64_t *dims, float v)
{
    mb_tensor *t = mb_tensor_new(ndim, dims);
    for (int64_t i = 0; t && i < mb_tensor_numel(t); i++)
        t->data[i] = v;
    return t;
}

int zoo_tb_add(zoo_tb *b, mb_node *n)
{
    int ok = !b->failed;
    for (int i = 0; i < n->n_params; i++)
        ok &= n->params[i] != NULL;
    for (int i = 0; i < n->n_inputs; i++)
        ok &= n->inputs[i] >= 0;
    int id = ok ? mb_graph_add(b->g, n) : -1;
    if (id < 0) {
        for (int i = 0; i < n->n_params; i++)
            mb_tensor_free(n->params[i]);
        if (!b->failed)
            snprintf(b->err, sizeof b->err, "%s: cannot add node '%s' (out of memory)", b->g->name, n->name);
        b->failed = 1;
    }
    return id;
}

mb_node zoo_node(const char *name, mb_op_type t, int x)
{
    mb_node n;
    memset(&n, 0, sizeof n);
    snprintf(n.name, sizeof n.name, "%s", name);
    n.type = t;
    n.n_inputs = x >= 0 ? 1 : 0;
    n.inputs[0] = x; /* callers with an input set n_inputs: a failed producer (-1) then stops zoo_tb_add() */
    return n;
}
