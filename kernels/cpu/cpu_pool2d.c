/* MaxPool, AveragePool (any output rectangle) and GlobalAveragePool on the
 * fast CPU backend. Windows are walked row by row of outputs so the inner
 * loop runs along contiguous output columns and vectorises; each output's
 * taps are visited in (ky, kx) order whatever the region, so tiles match the
 * whole op bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "cpu_impl.h"
#include "cpu_simd.h"

typedef struct pool_job {
    const mb_view *v;
    float *out;
    int is_max, count_pad;
    int64_t C;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int64_t full_h, full_w;
    mb_region r;
} pool_job;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return -floor_div(-a, b);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Taps k in [0, kn) of a window starting at s (step d) that land in [lo, hi). */
static int taps_in(int64_t s, int kn, int d, int64_t lo, int64_t hi)
{
    int c = 0;
    for (int k = 0; k < kn; k++) {
        int64_t x = s + (int64_t)k * d;
        c += x >= lo && x < hi;
    }
    return c;
}

CPU_SIMD_CLONES
static void pool_plane(const pool_job *j, int64_t n, int64_t ch)
{
    const mb_view *v = j->v;
    const int64_t rows = j->r.h1 - j->r.h0, cols = j->r.w1 - j->r.w0;
    const int64_t vh = v->t->dims[2], vw = v->t->dims[3];
    float *o = j->out + (n * j->C + ch) * rows * cols;
    for (int64_t yi = 0; yi < rows; yi++) {
        float *restrict orow = o + yi * cols - j->r.w0; /* orow[ox] */
        int64_t oy = j->r.h0 + yi, hs = oy * j->sh - j->pt;
        float init = j->is_max ? -INFINITY : 0.0f;
        for (int64_t ox = j->r.w0; ox < j->r.w1; ox++)
            orow[ox] = init;
        for (int ky = 0; ky < j->kh; ky++) {
            int64_t iy = hs + (int64_t)ky * j->dh;
            if (iy < 0 || iy >= j->full_h)
                continue;
            const float *restrict src = v->t->data + ((n * j->C + ch) * vh + iy - v->h_off) * vw;
            for (int kx = 0; kx < j->kw; kx++) {
                int64_t shift = (int64_t)kx * j->dw - j->pl;
                int64_t lo = clamp64(ceil_div(-shift, j->sw), j->r.w0, j->r.w1);
                int64_t hi = clamp64(ceil_div(j->full_w - shift, j->sw), lo, j->r.w1);
                shift -= v->w_off;
                int sw = j->sw;
                if (j->is_max) {
                    if (sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++) {
                            float x = src[ox + shift];
                            orow[ox] = x > orow[ox] ? x : orow[ox];
                        }
                    else
                        for (int64_t ox = lo; ox < hi; ox++) {
                            float x = src[ox * sw + shift];
                            orow[ox] = x > orow[ox] ? x : orow[ox];
                        }
                } else {
                    if (sw == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            orow[ox] += src[ox + shift];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            orow[ox] += src[ox * sw + shift];
                }
            }
        }
        if (!j->is_max) {
            /* divisor: taps inside the image, or (count_include_pad) inside
             * the padded extent; never the ceil_mode overhang beyond it */
            int64_t hlo = j->count_pad ? -j->pt : 0, hhi = j->count_pad ? j->full_h + j->pb : j->full_h;
            int64_t wlo = j->count_pad ? -j->pl : 0, whi = j->count_pad ? j->full_w + j->pr : j->full_w;
            int ch_ = taps_in(hs, j->kh, j->dh, hlo, hhi);
            for (int64_t ox = j->r.w0; ox < j->r.w1; ox++) {
                int cw = taps_in(ox * j->sw - j->pl, j->kw, j->dw, wlo, whi);
                int cnt = ch_ * cw;
                orow[ox] = cnt > 0 ? orow[ox] / (float)cnt : 0.0f;
            }
        }
    }
}

static void pool_task(void *arg, int t, int thread)
{
    (void)thread;
    pool_job *j = arg;
    pool_plane(j, t / j->C, t % j->C);
}

int cpu_pool2d(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_region r, mb_tensor *out, char *err,
               size_t errlen)
{
    (void)err;
    (void)errlen;
    const mb_node *nd = &g->nodes[node];
    const mb_op_attrs *a = &nd->a;
    pool_job j = {0};
    j.v = &in[0];
    j.out = out->data;
    j.is_max = nd->type == MB_OP_MAXPOOL;
    j.count_pad = a->count_include_pad;
    j.C = in[0].t->dims[1];
    j.kh = a->kernel[0];
    j.kw = a->kernel[1];
    j.sh = a->stride[0] > 0 ? a->stride[0] : 1;
    j.sw = a->stride[1] > 0 ? a->stride[1] : 1;
    j.dh = a->dilation[0] > 0 ? a->dilation[0] : 1;
    j.dw = a->dilation[1] > 0 ? a->dilation[1] : 1;
    j.pt = a->pads[0];
    j.pl = a->pads[1];
    j.pb = a->pads[2];
    j.pr = a->pads[3];
    j.full_h = in[0].full_h;
    j.full_w = in[0].full_w;
    j.r = r;
    if (mb_region_empty(r))
        return 0;
    cpu_pool_run(c->pool, (int)(in[0].t->dims[0] * j.C), pool_task, &j);
    return 0;
}

typedef struct gap_job {
    const float *x;
    float *y;
    int64_t inner;
} gap_job;

static void gap_task(void *arg, int t, int thread)
{
    (void)thread;
    gap_job *j = arg;
    const float *p = j->x + (int64_t)t * j->inner;
    /* 8 partial sums: vectorisable without reassociating a single chain */
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= j->inner; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += p[i + k];
    float s = 0;
    for (; i < j->inner; i++)
        s += p[i];
    s += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    j->y[t] = s / (float)j->inner;
}

int cpu_global_avgpool(cpu_ctx *c, const mb_graph *g, int node, const mb_view *in, mb_tensor *out, char *err,
                       size_t errlen)
{
    (void)g;
    (void)node;
    (void)err;
    (void)errlen;
    const mb_tensor *x = in[0].t;
    gap_job j = {x->data, out->data, 1};
    for (int i = 2; i < x->ndim; i++)
        j.inner *= x->dims[i];
    int64_t planes = x->dims[0] * x->dims[1];
    cpu_pool_run(c->pool, (int)planes, gap_task, &j);
    return 0;
}
