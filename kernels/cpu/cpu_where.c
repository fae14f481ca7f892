/* Where on the fast CPU backend, row by row over the last axis: the KV-cache
 * update of a decode step (docs/generation.md) is a Where over the whole
 * cache, so it must run at memory speed, not at the reference kernel's
 * per-element index arithmetic. A row whose condition is one value along
 * the row is one memcpy (or fill) of x's or y's row. 4-D outputs (regions)
 * run the reference kernel. */
#include <string.h>

#include "cpu_impl.h"

static void strides_of(const mb_tensor *t, int R, int64_t *st)
{
    int64_t s = 1;
    for (int i = R - 1; i >= 0; i--) {
        int j = i - (R - t->ndim);
        int64_t len = j >= 0 ? t->dims[j] : 1;
        st[i] = len == 1 ? 0 : s;
        s *= len;
    }
}

static void row(float *y, int64_t n, const float *c, int64_t sc, const float *x, int64_t sx, const float *z,
                int64_t sz)
{
    if (sc == 0) {
        const float *src = *c != 0.0f ? x : z;
        int64_t ss = *c != 0.0f ? sx : sz;
        if (ss)
            memcpy(y, src, sizeof(float) * (size_t)n);
        else
            for (int64_t i = 0; i < n; i++)
                y[i] = *src;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        y[i] = c[i] != 0.0f ? x[i * sx] : z[i * sz];
}

int cpu_where(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err, size_t errlen)
{
    (void)c;
    (void)err;
    (void)errlen;
    const mb_node *n = &g->nodes[node];
    int R = n->out_ndim;
    if (R == 0)
        R = 1;
    int64_t dims[MB_MAX_DIMS] = {1}, st[3][MB_MAX_DIMS] = {{0}}, o[MB_MAX_DIMS] = {0};
    for (int i = 0; i < R; i++)
        dims[i] = n->out_ndim ? n->out_dims[i] : 1;
    for (int k = 0; k < 3; k++)
        strides_of(in[k].t, R, st[k]);
    int64_t inner = dims[R - 1], rows = 1;
    for (int i = 0; i < R - 1; i++)
        rows *= dims[i];
    float *y = out->data;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off[3] = {0, 0, 0};
        for (int i = 0; i < R - 1; i++)
            for (int k = 0; k < 3; k++)
                off[k] += o[i] * st[k][i];
        row(y + r * inner, inner, in[0].t->data + off[0], st[0][R - 1], in[1].t->data + off[1], st[1][R - 1],
            in[2].t->data + off[2], st[2][R - 1]);
        for (int i = R - 2; i >= 0; i--) { /* odometer over the leading axes */
            if (++o[i] < dims[i])
                break;
            o[i] = 0;
        }
    }
    return 0;
}
