/* The run's time dilation factor (timescale.h): conversions between wall
 * and emulated time, the automatic choice of the factor, and a link spec as
 * it must be emulated under dilation. */
#include "mecbed/timescale.h"

#include <math.h>
#include <stdio.h>

static double clamp_k(double k)
{
    return isfinite(k) && k > 1.0 ? k : 1.0;
}

double mb_tdf_to_wall(double k, double emulated_s)
{
    return emulated_s * clamp_k(k);
}

double mb_tdf_to_emulated(double k, double wall_s)
{
    return wall_s / clamp_k(k);
}

double mb_tdf_auto(const double *site_factor, int n)
{
    double fastest = INFINITY;
    for (int i = 0; site_factor && i < n; i++)
        if (isfinite(site_factor[i]) && site_factor[i] > 0 && site_factor[i] < fastest)
            fastest = site_factor[i];
    if (!isfinite(fastest) || fastest >= 1.0)
        return 1.0;
    /* Up to the next hundredth: a factor a hair too small would ask the
     * fastest site's compute to finish before this machine can. The
     * 1e-9 keeps an exact hundredth from being pushed to the next one. */
    return ceil(1.0 / fastest * 100.0 - 1e-9) / 100.0;
}

double mb_tdf_site_slowdown(double k, double site_factor)
{
    return site_factor * clamp_k(k);
}

int mb_tdf_warning(double k, double emulated_s, char *buf, size_t len)
{
    if (!buf || !len)
        return clamp_k(k) > MB_TDF_WARN;
    buf[0] = 0;
    k = clamp_k(k);
    if (k <= MB_TDF_WARN)
        return 0;
    double wall = emulated_s * k;
    if (emulated_s > 0)
        snprintf(buf, len,
                 "time dilation factor %.2f: the run advances %.2fx slower than wall time, so %.1f s of "
                 "emulated time take %.1f s (%.1f min)",
                 k, k, emulated_s, wall, wall / 60.0);
    else
        snprintf(buf, len, "time dilation factor %.2f: the run advances %.2fx slower than wall time", k, k);
    return 1;
}

static void dilate_dir(mb_link_dir *d, double k)
{
    d->rate_bps /= k; /* 0 (unlimited) stays 0 */
    d->delay_s *= k;
    d->jitter_s *= k;
    d->aqm_target_s *= k;
    d->time_scale = (d->time_scale > 0 ? d->time_scale : 1.0) * k;
}

int mb_linkspec_dilate(const mb_link_spec *in, double k, mb_link_spec *out, char *err, size_t errlen)
{
    if (!in || !out || !isfinite(k) || k < 1.0) {
        if (err && errlen)
            snprintf(err, errlen, "time dilation factor %g: it must be a finite number >= 1", k);
        return -1;
    }
    if (out != in)
        *out = *in;
    dilate_dir(&out->up, k);
    dilate_dir(&out->down, k);
    return 0;
}
