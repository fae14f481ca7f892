/* Radio energy after Huang et al., "A Close Examination of Performance and
 * Power Characteristics of 4G LTE Networks", MobiSys 2012 (Table 3 and the
 * LTE RRC/DRX parameters of its section 3), and the 3G/Wi-Fi columns of the
 * same table. Values also in docs/energy.md.
 *
 * Model: while data moves, P = a_u * up_Mbps + a_d * down_Mbps + beta. With
 * no data the radio stays connected at tail power until the inactivity
 * timers expire (tail_s), then falls to idle (paging); the next transfer
 * first pays a promotion (promo_w for promo_s), which also delays it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/energy.h"

static const mb_radio_model radios[] = {
    {MB_RADIO_LTE, "lte", 438.39, 51.97, 1288.04,
     /* promotion 1210.7 mW for 260.1 ms; tail 1060 mW for 11.576 s (DRX
      * cycles averaged); idle: paging 594.3 mW for 43.2 ms every 1.28 s. */
     1.2107, 0.2601, 1.060, 11.576, 0, 0, 0.5943 * 0.0432 / 1.28,
     "Huang et al., MobiSys 2012, Table 3 (LTE) and Section 3 RRC/DRX parameters"},
    {MB_RADIO_WIFI, "wifi", 283.17, 137.01, 132.86,
     /* Wi-Fi has no RRC: a short power-save promotion and tail. */
     0.1244, 0.0791, 0.1193, 0.2381, 0, 0, 0.0,
     "Huang et al., MobiSys 2012, Table 3 (WiFi column)"},
    {MB_RADIO_3G, "3g", 868.98, 122.12, 817.88,
     /* promotion idle->DCH 659.4 mW for 582.1 ms; DCH tail 803.9 mW for
      * 8.088 s then FACH tail 601.3 mW for 824.2 ms. */
     0.6594, 0.5821, 0.8039, 8.0882, 0.6013, 0.8242, 0.0,
     "Huang et al., MobiSys 2012, Table 3 (3G column)"},
};

const mb_radio_model *mb_radio_get(mb_radio_kind kind)
{
    for (size_t i = 0; i < sizeof(radios) / sizeof(radios[0]); i++)
        if (radios[i].kind == kind)
            return &radios[i];
    return NULL;
}

int mb_radio_from_name(const char *name)
{
    if (!strcmp(name, "none"))
        return MB_RADIO_NONE;
    for (size_t i = 0; i < sizeof(radios) / sizeof(radios[0]); i++)
        if (!strcmp(radios[i].name, name))
            return radios[i].kind;
    return -1;
}

/* Energy of a gap of g seconds without data after a transfer. promote: the
 * gap ends in another transfer (which pays a promotion if the radio fell
 * idle). */
static void gap_energy(const mb_radio_model *m, double g, int promote, mb_radio_energy *e)
{
    if (g <= 0)
        return;
    double t1 = g < m->tail_s ? g : m->tail_s;
    e->tail_mj += 1e3 * m->tail_w * t1;
    g -= t1;
    if (g > 0 && m->tail2_s > 0) {
        double t2 = g < m->tail2_s ? g : m->tail2_s;
        e->tail_mj += 1e3 * m->tail2_w * t2;
        g -= t2;
    }
    if (g > 0) {
        e->tail_mj += 1e3 * m->idle_w * g; /* idle (paging) */
        if (promote) {
            e->promo_mj += 1e3 * m->promo_w * m->promo_s;
            e->promo_s += m->promo_s;
        }
    }
}

typedef struct edge_pt {
    double t;
    double up, down; /* rate change at t */
    int open;        /* +1 a burst starts, -1 one ends */
} edge_pt;

static int cmp_pt(const void *a, const void *b)
{
    const edge_pt *x = a, *y = b;
    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return y->open - x->open; /* starts before ends at the same instant: no zero-length gap */
}

void mb_radio_frame_energy(const mb_radio_model *m, const mb_radio_burst *b, int n, double frame_s,
                           double interval_s, mb_radio_energy *out)
{
    memset(out, 0, sizeof(*out));
    if (!m || n <= 0)
        return;
    edge_pt *pts = malloc(sizeof(*pts) * (size_t)(2 * n));
    if (!pts)
        return;
    int np = 0;
    for (int i = 0; i < n; i++) {
        if (!(b[i].t1 > b[i].t0))
            continue;
        pts[np++] = (edge_pt){b[i].t0, b[i].up_mbps, b[i].down_mbps, 1};
        pts[np++] = (edge_pt){b[i].t1, -b[i].up_mbps, -b[i].down_mbps, -1};
    }
    if (!np) {
        free(pts);
        return;
    }
    qsort(pts, (size_t)np, sizeof(*pts), cmp_pt);
    double up = 0, down = 0;
    int open = 0;
    double first = pts[0].t, last_end = pts[0].t;
    for (int i = 0; i < np; i++) {
        if (i > 0 && pts[i].t > pts[i - 1].t) {
            double dt = pts[i].t - pts[i - 1].t;
            if (open > 0)
                out->active_mj += (m->a_up_mw_per_mbps * fmax(up, 0) +
                                   m->a_down_mw_per_mbps * fmax(down, 0) + m->beta_mw) *
                                  dt; /* mW x s = mJ */
            else
                gap_energy(m, dt, 1, out);
        }
        up += pts[i].up;
        down += pts[i].down;
        open += pts[i].open;
        if (open == 0)
            last_end = pts[i].t;
    }
    free(pts);
    if (interval_s > 0) {
        /* Steady state of repeating frames: the gap after this frame's last
         * transfer runs until the next frame's first one. */
        double g = interval_s - (last_end - first);
        gap_energy(m, g, 1, out);
    } else {
        /* one frame, the radio connected when it starts: the time before
         * its first transfer is connected without data too (a run's
         * frames follow each other well within the tail) */
        gap_energy(m, first, 0, out);
        gap_energy(m, frame_s - last_end, 0, out);
    }
    out->total_mj = out->active_mj + out->tail_mj + out->promo_mj;
}

void mb_radio_bursts_to_emulated(mb_radio_burst *b, int n, double k)
{
    if (!(k > 1.0) || !isfinite(k))
        return;
    for (int i = 0; i < n; i++) {
        b[i].t0 /= k;
        b[i].t1 /= k;
        b[i].up_mbps *= k;
        b[i].down_mbps *= k;
    }
}

void mb_radio_frame_energy_dilated(const mb_radio_model *m, const mb_radio_burst *b, int n, double frame_s,
                                   double interval_s, double k, mb_radio_energy *out)
{
    if (!(k > 1.0) || !isfinite(k)) {
        mb_radio_frame_energy(m, b, n, frame_s, interval_s, out);
        return;
    }
    mb_radio_burst *e = n > 0 ? malloc(sizeof(*e) * (size_t)n) : NULL;
    if (n > 0 && !e) {
        memset(out, 0, sizeof(*out));
        return;
    }
    if (n > 0)
        memcpy(e, b, sizeof(*e) * (size_t)n);
    mb_radio_bursts_to_emulated(e, n, k);
    mb_radio_frame_energy(m, e, n, frame_s / k, interval_s / k, out);
    free(e);
}
