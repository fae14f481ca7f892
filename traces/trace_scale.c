/* Traces under time dilation (timescale.h): a trace stretched by the run's
 * TDF, and the one loader every link backend uses for a spec's trace so
 * that none of them can forget the stretch. */
#include <math.h>
#include <stdio.h>

#include "mecbed/linkspec.h"
#include "mecbed/trace.h"

int mb_trace_dilate(mb_trace *tr, double k, char *err, size_t errlen)
{
    if (!tr || !isfinite(k) || k < 1.0) {
        if (err && errlen)
            snprintf(err, errlen, "trace dilation by %g: the factor must be a finite number >= 1", k);
        return -1;
    }
    if (k == 1.0)
        return 0;
    if ((double)tr->period_ns * k > 9e18) {
        if (err && errlen)
            snprintf(err, errlen, "trace dilation by %g: the trace would last more than 9e9 s", k);
        return -1;
    }
    for (size_t i = 0; i < tr->n; i++) {
        tr->t_ns[i] = llround((double)tr->t_ns[i] * k);
        if (tr->kind == MB_TRACE_RATES)
            tr->rate_bps[i] /= k;
    }
    tr->period_ns = llround((double)tr->period_ns * k);
    tr->sample_mean_bps /= k;
    return 0;
}

mb_trace *mb_trace_read_dir(const mb_link_dir *d, char *err, size_t errlen)
{
    if (!d || !d->trace[0]) {
        if (err && errlen)
            snprintf(err, errlen, "the link direction has no trace");
        return NULL;
    }
    mb_trace *tr = mb_trace_read_src(d->trace, &d->trace_src, err, errlen);
    if (tr && d->time_scale > 0 && mb_trace_dilate(tr, d->time_scale, err, errlen)) {
        mb_trace_free(tr);
        return NULL;
    }
    return tr;
}
