/* Pad on the fast CPU backend, for 4-D tensors padded along H and W only
 * (any mode; negative amounts and pads on N or C run the reference kernel).
 * Per output row of the region: the source row (or none: the constant),
 * then the columns as three runs: the left border (constant, or the
 * reflected / edge columns through a per-column map), the interior (one
 * memcpy) and the right border. A copy per element, so the result is the
 * reference's bit for bit, and tiles are exact. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"

/* Source index of output o along an axis of length len with `begin`
 * padding before it, in the reference's terms; -1 for the constant. */
static int64_t pad_index(int mode, int64_t o, int64_t begin, int64_t len)
{
    int64_t s = o - begin;
    if (s >= 0 && s < len)
        return s;
    if (mode == MB_PAD_EDGE)
        return s < 0 ? 0 : len - 1;
    if (mode != MB_PAD_REFLECT)
        return -1;
    if (len == 1)
        return 0;
    int64_t p = 2 * (len - 1); /* period: fold any distance back into [0, len) */
    s %= p;
    if (s < 0)
        s += p;
    return s < len ? s : p - s;
}

int cpu_pad_fast(const mb_graph *g, int node)
{
    const mb_node *n = &g->nodes[node];
    const int64_t *p = n->a.pad_amounts;
    if (n->out_ndim != 4 || g->nodes[n->inputs[0]].out_ndim != 4)
        return 0;
    if (p[0] || p[1] || p[4] || p[5])
        return 0;
    if (p[2] < 0 || p[3] < 0 || p[6] < 0 || p[7] < 0)
        return 0;
    return n->a.pad_mode == MB_PAD_CONSTANT || n->a.pad_mode == MB_PAD_REFLECT || n->a.pad_mode == MB_PAD_EDGE;
}

typedef struct pad_job {
    const mb_view *v;
    float *out;
    float value;
    int64_t rows, cols, in_w;
    int64_t *ymap, *xmap; /* per region row / column: source index or -1 */
    int64_t mid0, mid1;   /* region columns [mid0, mid1) map to consecutive source columns */
} pad_job;

static void pad_task(void *arg, int t, int thread)
{
    (void)thread;
    pad_job *j = arg;
    const mb_view *v = j->v;
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    const float *plane = v->t->data + (int64_t)t * vh * vw;
    float *o = j->out + (int64_t)t * j->rows * j->cols;
    for (int64_t y = 0; y < j->rows; y++, o += j->cols) {
        if (j->ymap[y] < 0) {
            for (int64_t x = 0; x < j->cols; x++)
                o[x] = j->value;
            continue;
        }
        const float *s = plane + (j->ymap[y] - v->h_off) * vw - v->w_off; /* s[ix] */
        for (int64_t x = 0; x < j->mid0; x++)
            o[x] = j->xmap[x] < 0 ? j->value : s[j->xmap[x]];
        if (j->mid1 > j->mid0)
            memcpy(o + j->mid0, s + j->xmap[j->mid0], sizeof(float) * (size_t)(j->mid1 - j->mid0));
        for (int64_t x = j->mid1; x < j->cols; x++)
            o[x] = j->xmap[x] < 0 ? j->value : s[j->xmap[x]];
    }
}

int cpu_pad(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
            size_t errlen)
{
    const mb_node *n = &g->nodes[node];
    const mb_node *src = &g->nodes[n->inputs[0]];
    const int64_t *p = n->a.pad_amounts;
    pad_job j = {.v = &in[0], .out = out->data, .value = n->a.pad_value};
    j.rows = r.h1 - r.h0;
    j.cols = r.w1 - r.w0;
    int64_t planes = n->out_dims[0] * n->out_dims[1], H = src->out_dims[2], W = src->out_dims[3];
    if (j.rows == 0 || j.cols == 0 || planes == 0)
        return 0;
    j.ymap = malloc(sizeof(int64_t) * (size_t)(j.rows + j.cols));
    if (!j.ymap) {
        snprintf(err, errlen, "Pad '%s': out of memory", n->name);
        return -1;
    }
    j.xmap = j.ymap + j.rows;
    for (int64_t y = 0; y < j.rows; y++)
        j.ymap[y] = pad_index(n->a.pad_mode, r.h0 + y, p[2], H);
    for (int64_t x = 0; x < j.cols; x++)
        j.xmap[x] = pad_index(n->a.pad_mode, r.w0 + x, p[3], W);
    /* the interior: region columns whose output column o has o - begin in [0, W) */
    j.mid0 = p[3] - r.w0;
    j.mid1 = p[3] + W - r.w0;
    j.mid0 = j.mid0 < 0 ? 0 : j.mid0 > j.cols ? j.cols : j.mid0;
    j.mid1 = j.mid1 < j.mid0 ? j.mid0 : j.mid1 > j.cols ? j.cols : j.mid1;
    cpu_run(c, (int)planes, pad_task, &j, (double)planes * j.rows * j.cols * 0.25);
    free(j.ymap);
    return 0;
}
