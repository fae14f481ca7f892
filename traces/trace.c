/* Trace core: capacity integrals, the emulator's serving cursor, statistics,
 * re-binning. Readers and writers are in trace_io.c, generators in trace_gen.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/trace.h"

mb_trace *mb_trace_new_rates(size_t n, const double *t, const double *rate_bps, double period_s)
{
    mb_trace *tr = calloc(1, sizeof *tr);
    if (!tr)
        return NULL;
    tr->kind = MB_TRACE_RATES;
    tr->format = MB_TRACE_FMT_NATIVE;
    tr->n = n;
    tr->period_s = period_s;
    tr->t = malloc((n ? n : 1) * sizeof *tr->t);
    tr->rate_bps = malloc((n ? n : 1) * sizeof *tr->rate_bps);
    if (!tr->t || !tr->rate_bps) {
        mb_trace_free(tr);
        return NULL;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        tr->t[i] = t[i];
        tr->rate_bps[i] = rate_bps[i];
        sum += rate_bps[i];
    }
    tr->sample_mean_bps = n ? sum / (double)n : 0;
    return tr;
}

void mb_trace_free(mb_trace *tr)
{
    if (!tr)
        return;
    free(tr->t);
    free(tr->rate_bps);
    free(tr);
}

static double seg_end(const mb_trace *tr, size_t i)
{
    return i + 1 < tr->n ? tr->t[i + 1] : tr->period_s;
}

/* First index i with t[i] >= x (t sorted). */
static size_t lower_bound(const double *t, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Capacity (bytes) within one period, over [a, b) with 0 <= a <= b <= period.
 * O(log n + segments overlapped), so re-binning long traces stays fast. */
static double capacity_in_period(const mb_trace *tr, double a, double b)
{
    double bytes = 0;
    if (b <= a || tr->n == 0)
        return 0;
    if (tr->kind == MB_TRACE_RATES) {
        size_t i = lower_bound(tr->t, tr->n, a);
        if (i > 0 && (i == tr->n || tr->t[i] > a))
            i--; /* the segment that contains a */
        for (; i < tr->n && tr->t[i] < b; i++) {
            double s0 = tr->t[i], e = seg_end(tr, i);
            if (e <= a)
                continue;
            double lo = s0 > a ? s0 : a, hi = e < b ? e : b;
            if (hi > lo)
                bytes += (hi - lo) * tr->rate_bps[i] / 8;
        }
        return bytes;
    }
    /* Opportunities at times in [a, b). The stamps at exactly `period` (a
     * Mahimahi file's last ones) are the next repetition's time 0, so a
     * period is [0, period) with n opportunities. */
    size_t at_end = tr->n - lower_bound(tr->t, tr->n, tr->period_s);
    size_t cnt = lower_bound(tr->t, tr->n, b) - lower_bound(tr->t, tr->n, a);
    if (a <= 0 && b > 0)
        cnt += at_end;
    return (double)cnt * tr->opp_bytes;
}

double mb_trace_capacity(const mb_trace *tr, double t0, double t1, int loop)
{
    if (t1 <= t0 || tr->period_s <= 0)
        return 0;
    if (t0 < 0)
        t0 = 0;
    double P = tr->period_s;
    if (!loop) {
        if (t0 >= P)
            return 0;
        if (tr->kind == MB_TRACE_OPPORTUNITIES) {
            /* played once: stamps at their own times, the last one included */
            size_t cnt = lower_bound(tr->t, tr->n, t1) - lower_bound(tr->t, tr->n, t0);
            if (t1 > tr->period_s) /* the stamps at the period itself are the trace's last */
                cnt = tr->n - lower_bound(tr->t, tr->n, t0);
            return (double)cnt * tr->opp_bytes;
        }
        return capacity_in_period(tr, t0, t1 < P ? t1 : P);
    }
    double full = capacity_in_period(tr, 0, P);
    double k0 = floor(t0 / P), k1 = floor(t1 / P);
    double a = t0 - k0 * P, b = t1 - k1 * P;
    if (k0 == k1)
        return capacity_in_period(tr, a, b);
    return capacity_in_period(tr, a, P) + (k1 - k0 - 1) * full + capacity_in_period(tr, 0, b);
}

/* ---- the emulator's cursor ---- */

void mb_trace_cursor_init(mb_trace_cursor *c, const mb_trace *tr, int loop)
{
    memset(c, 0, sizeof *c);
    c->tr = tr;
    c->loop = loop;
    c->credit_t = -1;
    c->period_bytes = capacity_in_period(tr, 0, tr->period_s);
}

/* Opportunity time of index i in the current cycle. */
static double opp_time(const mb_trace_cursor *c, size_t i)
{
    return (double)c->cycle * c->tr->period_s + c->tr->t[i];
}

static double serve_opportunities(mb_trace_cursor *c, double start, double bytes)
{
    const mb_trace *tr = c->tr;
    double have = 0;
    /* leftover of the opportunity that ended the previous packet */
    if (c->credit_bytes > 0 && c->credit_t >= start) {
        have = c->credit_bytes;
        c->credit_bytes = 0;
        if (have >= bytes) {
            c->credit_bytes = have - bytes;
            return c->credit_t;
        }
    }
    c->credit_bytes = 0;
    if (tr->n == 0 || tr->opp_bytes <= 0)
        return INFINITY;
    /* skip opportunities before start (wasted: nothing was queued) */
    for (;;) {
        if (c->i >= tr->n) {
            if (!c->loop)
                return INFINITY;
            c->cycle++;
            c->i = 0;
            /* the last stamp of a Mahimahi file equals the period: it is the
             * same instant as the next cycle's first stamp when that is 0 */
        }
        double t = opp_time(c, c->i);
        if (t >= start)
            break;
        /* jump whole cycles when far behind */
        if (c->loop && c->i == 0 && start - t > tr->period_s) {
            c->cycle += (long long)floor((start - t) / tr->period_s);
            continue;
        }
        c->i++;
    }
    /* take opportunities until the packet fits */
    double need = bytes - have;
    if (c->loop && c->period_bytes > 0 && need > 2 * c->period_bytes) {
        long long k = (long long)floor(need / c->period_bytes) - 1;
        c->cycle += k;
        need -= (double)k * c->period_bytes;
    }
    for (;;) {
        if (c->i >= tr->n) {
            if (!c->loop)
                return INFINITY;
            c->cycle++;
            c->i = 0;
        }
        double t = opp_time(c, c->i);
        c->i++;
        need -= tr->opp_bytes;
        if (need <= 0) {
            c->credit_t = t;
            c->credit_bytes = -need;
            return t;
        }
    }
}

static double serve_rates(mb_trace_cursor *c, double start, double bytes)
{
    const mb_trace *tr = c->tr;
    double P = tr->period_s;
    if (tr->n == 0 || P <= 0)
        return INFINITY;
    if (!c->loop && start >= P)
        return INFINITY;
    /* position the cursor on the segment holding start */
    if (c->loop) {
        long long cyc = (long long)floor(start / P);
        if (cyc != c->cycle) {
            c->cycle = cyc;
            c->i = 0;
        }
    }
    double base = (double)c->cycle * P;
    while (c->i + 1 < tr->n && base + tr->t[c->i + 1] <= start)
        c->i++;
    double bits = bytes * 8, now = start;
    if (c->loop && c->period_bytes > 0 && bytes > 2 * c->period_bytes) {
        long long k = (long long)floor(bytes / c->period_bytes) - 1;
        c->cycle += k;
        base += (double)k * P;
        now += (double)k * P;
        bits -= (double)k * c->period_bytes * 8;
    }
    for (int guard = 0;; guard++) {
        double end = base + seg_end(tr, c->i);
        double r = tr->rate_bps[c->i];
        if (r > 0 && end > now) {
            double t = now + bits / r;
            if (t <= end)
                return t;
            bits -= (end - now) * r;
        }
        if (end > now)
            now = end;
        if (c->i + 1 < tr->n) {
            c->i++;
            continue;
        }
        if (!c->loop || c->period_bytes <= 0)
            return INFINITY;
        c->cycle++;
        c->i = 0;
        base = (double)c->cycle * P;
        if (now < base)
            now = base;
        if (guard > 1000000000)
            return INFINITY;
    }
}

double mb_trace_serve(mb_trace_cursor *c, double start, double bytes)
{
    if (c->tr->kind == MB_TRACE_OPPORTUNITIES)
        return serve_opportunities(c, start, bytes);
    return serve_rates(c, start, bytes);
}

/* ---- statistics ---- */

mb_trace *mb_trace_binned(const mb_trace *tr, double bin_s)
{
    if (!(bin_s > 0) || !(tr->period_s > 0))
        return NULL;
    size_t n = (size_t)ceil(tr->period_s / bin_s - 1e-9);
    if (n == 0)
        n = 1;
    if (n > 100000000)
        return NULL;
    double *t = malloc(n * sizeof *t), *r = malloc(n * sizeof *r);
    mb_trace *out = NULL;
    if (t && r) {
        for (size_t i = 0; i < n; i++) {
            double a = (double)i * bin_s, b = a + bin_s > tr->period_s ? tr->period_s : a + bin_s;
            t[i] = a;
            r[i] = b > a ? capacity_in_period(tr, a, b) * 8 / (b - a) : 0;
        }
        out = mb_trace_new_rates(n, t, r, tr->period_s);
    }
    free(t);
    free(r);
    return out;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p-th percentile (0..100) of sorted values, linear interpolation. */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    double pos = p / 100 * (double)(n - 1);
    size_t i = (size_t)floor(pos);
    if (i + 1 >= n)
        return v[n - 1];
    double f = pos - (double)i;
    return v[i] * (1 - f) + v[i + 1] * f;
}

#define OUTAGE_MIN_S 0.1

int mb_trace_stats_compute(const mb_trace *tr, double window_s, mb_trace_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!(tr->period_s > 0))
        return -1;
    if (!(window_s > 0))
        window_s = 1;
    if (tr->period_s / window_s > 1e6) /* at most a million windows */
        window_s = tr->period_s / 1e6;
    s->window_s = window_s;
    s->duration_s = tr->period_s;
    s->mean_bps = capacity_in_period(tr, 0, tr->period_s) * 8 / tr->period_s;
    s->sample_mean_bps = tr->kind == MB_TRACE_RATES ? tr->sample_mean_bps : s->mean_bps;
    s->n_samples = tr->n;

    mb_trace *b = mb_trace_binned(tr, window_s);
    if (!b)
        return -1;
    /* the last, partial window would skew percentiles: leave it out unless it is the only one */
    size_t n = b->n;
    if (n > 1 && seg_end(b, n - 1) - b->t[n - 1] < window_s * 0.999)
        n--;
    qsort(b->rate_bps, n, sizeof(double), cmp_double);
    s->min_bps = b->rate_bps[0];
    s->max_bps = b->rate_bps[n - 1];
    s->p5_bps = percentile(b->rate_bps, n, 5);
    s->p25_bps = percentile(b->rate_bps, n, 25);
    s->p50_bps = percentile(b->rate_bps, n, 50);
    s->p75_bps = percentile(b->rate_bps, n, 75);
    s->p95_bps = percentile(b->rate_bps, n, 95);
    mb_trace_free(b);

    /* outages: stretches of zero capacity of at least OUTAGE_MIN_S */
    if (tr->kind == MB_TRACE_RATES) {
        double run = 0;
        for (size_t i = 0; i <= tr->n; i++) {
            if (i < tr->n && tr->rate_bps[i] <= 0) {
                run += seg_end(tr, i) - tr->t[i];
                continue;
            }
            if (run >= OUTAGE_MIN_S) {
                s->outage_s += run;
                s->n_outages++;
            }
            run = 0;
        }
    } else {
        double prev = 0;
        for (size_t i = 0; i <= tr->n; i++) {
            double t = i < tr->n ? tr->t[i] : tr->period_s;
            double gap = t - prev;
            /* a gap between opportunities: no capacity strictly between them */
            if (gap >= OUTAGE_MIN_S) {
                s->outage_s += gap;
                s->n_outages++;
            }
            prev = t;
        }
    }
    return 0;
}
