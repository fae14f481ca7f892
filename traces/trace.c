/* Trace core: capacity integrals, the emulator's serving cursor, statistics,
 * re-binning. Readers and writers are in trace_io.c, generators in trace_gen.c. */
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "mecbed/trace.h"

int64_t mb_trace_ns(double seconds)
{
    if (!(seconds == seconds))
        return 0;
    if (seconds > 9e9)
        return (int64_t)9e18;
    if (seconds < -9e9)
        return (int64_t)-9e18;
    return llround(seconds * 1e9);
}

mb_trace *mb_trace_new_rates(size_t n, const int64_t *t, const double *rate_bps, int64_t period_ns)
{
    mb_trace *tr = calloc(1, sizeof *tr);
    if (!tr)
        return NULL;
    tr->kind = MB_TRACE_RATES;
    tr->format = MB_TRACE_FMT_NATIVE;
    tr->n = n;
    tr->period_ns = period_ns;
    tr->t_ns = malloc((n ? n : 1) * sizeof *tr->t_ns);
    tr->rate_bps = malloc((n ? n : 1) * sizeof *tr->rate_bps);
    if (!tr->t_ns || !tr->rate_bps) {
        mb_trace_free(tr);
        return NULL;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        tr->t_ns[i] = t[i];
        tr->rate_bps[i] = rate_bps[i];
        sum += rate_bps[i];
    }
    tr->sample_mean_bps = n ? sum / (double)n : 0;
    return tr;
}

mb_trace *mb_trace_new_rates_s(size_t n, const double *t_s, const double *rate_bps, double period_s)
{
    int64_t *t = malloc((n ? n : 1) * sizeof *t);
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++)
        t[i] = mb_trace_ns(t_s[i]);
    mb_trace *tr = mb_trace_new_rates(n, t, rate_bps, mb_trace_ns(period_s));
    free(t);
    return tr;
}

void mb_trace_free(mb_trace *tr)
{
    if (!tr)
        return;
    free(tr->t_ns);
    free(tr->rate_bps);
    free(tr);
}

static int64_t seg_end(const mb_trace *tr, size_t i)
{
    return i + 1 < tr->n ? tr->t_ns[i + 1] : tr->period_ns;
}

/* First index i with t[i] >= x (t sorted). */
static size_t lower_bound(const int64_t *t, size_t n, int64_t x)
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

/* Bytes a rate carries over ns nanoseconds. */
static double rate_bytes(double rate_bps, int64_t ns)
{
    return rate_bps * (double)ns / 8e9;
}

/* Capacity (bytes) within one period, over [a, b) with 0 <= a <= b <= period.
 * O(log n + segments overlapped), so re-binning long traces stays fast. */
static double capacity_in_period(const mb_trace *tr, int64_t a, int64_t b)
{
    double bytes = 0;
    if (b <= a || tr->n == 0)
        return 0;
    if (tr->kind == MB_TRACE_RATES) {
        size_t i = lower_bound(tr->t_ns, tr->n, a);
        if (i > 0 && (i == tr->n || tr->t_ns[i] > a))
            i--; /* the segment that contains a */
        for (; i < tr->n && tr->t_ns[i] < b; i++) {
            int64_t s0 = tr->t_ns[i], e = seg_end(tr, i);
            if (e <= a)
                continue;
            int64_t lo = s0 > a ? s0 : a, hi = e < b ? e : b;
            if (hi > lo)
                bytes += rate_bytes(tr->rate_bps[i], hi - lo);
        }
        return bytes;
    }
    /* Opportunities at times in [a, b). The stamps at exactly `period` (a
     * Mahimahi file's last ones) are the next repetition's time 0, so a
     * period is [0, period) with n opportunities. */
    size_t at_end = tr->n - lower_bound(tr->t_ns, tr->n, tr->period_ns);
    size_t cnt = lower_bound(tr->t_ns, tr->n, b) - lower_bound(tr->t_ns, tr->n, a);
    if (a <= 0 && b > 0)
        cnt += at_end;
    return (double)cnt * tr->opp_bytes;
}

double mb_trace_capacity_ns(const mb_trace *tr, int64_t t0, int64_t t1, int loop)
{
    if (t1 <= t0 || tr->period_ns <= 0)
        return 0;
    if (t0 < 0)
        t0 = 0;
    int64_t P = tr->period_ns;
    if (!loop) {
        if (t0 >= P)
            return 0;
        if (tr->kind == MB_TRACE_OPPORTUNITIES) {
            /* played once: stamps at their own times, the last one included */
            size_t cnt = lower_bound(tr->t_ns, tr->n, t1) - lower_bound(tr->t_ns, tr->n, t0);
            if (t1 > P) /* the stamps at the period itself are the trace's last */
                cnt = tr->n - lower_bound(tr->t_ns, tr->n, t0);
            return (double)cnt * tr->opp_bytes;
        }
        return capacity_in_period(tr, t0, t1 < P ? t1 : P);
    }
    int64_t k0 = t0 / P, k1 = t1 / P;
    int64_t a = t0 - k0 * P, b = t1 - k1 * P;
    if (k0 == k1)
        return capacity_in_period(tr, a, b);
    double full = capacity_in_period(tr, 0, P);
    return capacity_in_period(tr, a, P) + (double)(k1 - k0 - 1) * full + capacity_in_period(tr, 0, b);
}

double mb_trace_capacity(const mb_trace *tr, double t0, double t1, int loop)
{
    return mb_trace_capacity_ns(tr, mb_trace_ns(t0), mb_trace_ns(t1), loop);
}

/* ---- the emulator's cursor ---- */

#define NEVER INT64_MAX
/* Beyond ~127 years a departure is "never": times stay far from int64's end. */
#define HORIZON_NS 4000000000000000000LL

/* Would cycle c of period P start beyond the horizon? */
static int past_horizon(long long cycle, int64_t P)
{
    return (double)cycle * (double)P > (double)HORIZON_NS;
}

void mb_trace_cursor_init(mb_trace_cursor *c, const mb_trace *tr, int loop)
{
    memset(c, 0, sizeof *c);
    c->tr = tr;
    c->loop = loop;
    c->credit_ns = -1;
    c->period_bytes = capacity_in_period(tr, 0, tr->period_ns);
}

/* Opportunity time of index i in the current cycle. */
static int64_t opp_time(const mb_trace_cursor *c, size_t i)
{
    return (int64_t)c->cycle * c->tr->period_ns + c->tr->t_ns[i];
}

/* Move to the next opportunity, wrapping into the next cycle; 0 when a
 * trace played once has none left. */
static int opp_wrap(mb_trace_cursor *c)
{
    if (c->i < c->tr->n)
        return 1;
    if (!c->loop)
        return 0;
    c->cycle++;
    c->i = 0;
    return 1;
}

static int64_t serve_opportunities(mb_trace_cursor *c, int64_t start, double bytes)
{
    const mb_trace *tr = c->tr;
    double have = 0;
    /* leftover of the opportunity that ended the previous packet */
    if (c->credit_bytes > 0 && c->credit_ns >= start) {
        have = c->credit_bytes;
        c->credit_bytes = 0;
        if (have >= bytes) {
            c->credit_bytes = have - bytes;
            return c->credit_ns;
        }
    }
    c->credit_bytes = 0;
    if (tr->n == 0 || tr->opp_bytes <= 0 || tr->period_ns <= 0)
        return NEVER;
    /* skip opportunities before start (wasted: nothing was queued) */
    for (;;) {
        if (!opp_wrap(c))
            return NEVER;
        int64_t t = opp_time(c, c->i);
        if (t >= start)
            break;
        /* jump whole cycles when far behind */
        if (c->loop && c->i == 0 && start - t > tr->period_ns) {
            c->cycle += (start - t) / tr->period_ns;
            if (past_horizon(c->cycle + 1, tr->period_ns))
                return NEVER;
            continue;
        }
        c->i++;
    }
    /* take opportunities until the packet fits */
    double need = bytes - have;
    if (c->loop && c->period_bytes > 0 && need > 2 * c->period_bytes) {
        double kd = floor(need / c->period_bytes) - 1;
        if (past_horizon((long long)fmin(kd, 1e18) + c->cycle + 1, tr->period_ns))
            return NEVER;
        long long k = (long long)kd;
        c->cycle += k;
        need -= (double)k * c->period_bytes;
    }
    for (;;) {
        if (!opp_wrap(c) || past_horizon(c->cycle + 1, tr->period_ns))
            return NEVER;
        int64_t t = opp_time(c, c->i);
        c->i++;
        need -= tr->opp_bytes;
        if (need <= 0) {
            c->credit_ns = t;
            c->credit_bytes = -need;
            return t;
        }
    }
}

static int64_t serve_rates(mb_trace_cursor *c, int64_t start, double bytes)
{
    const mb_trace *tr = c->tr;
    int64_t P = tr->period_ns;
    if (tr->n == 0 || P <= 0)
        return NEVER;
    if (!c->loop && start >= P)
        return NEVER;
    /* position the cursor on the segment holding start */
    if (c->loop) {
        long long cyc = start / P;
        if (cyc != c->cycle) {
            c->cycle = cyc;
            c->i = 0;
        }
    }
    int64_t base = (int64_t)c->cycle * P;
    while (c->i + 1 < tr->n && base + tr->t_ns[c->i + 1] <= start)
        c->i++;
    double bits = bytes * 8;
    int64_t now = start;
    if (c->loop && c->period_bytes > 0 && bytes > 2 * c->period_bytes) {
        double kd = floor(bytes / c->period_bytes) - 1;
        if (past_horizon((long long)fmin(kd, 1e18) + c->cycle + 1, P))
            return NEVER;
        long long k = (long long)kd;
        c->cycle += k;
        base += (int64_t)k * P;
        now += (int64_t)k * P;
        bits -= (double)k * c->period_bytes * 8;
    }
    for (long guard = 0;; guard++) {
        int64_t end = base + seg_end(tr, c->i);
        double r = tr->rate_bps[c->i];
        if (r > 0 && end > now) {
            double need_ns = bits * 1e9 / r;
            if (need_ns <= (double)(end - now))
                return (double)now + need_ns > (double)HORIZON_NS ? NEVER : now + llround(need_ns);
            bits -= (double)(end - now) * r / 1e9;
        }
        if (end > now)
            now = end;
        if (c->i + 1 < tr->n) {
            c->i++;
            continue;
        }
        if (!c->loop || c->period_bytes <= 0 || guard > 1000000000L)
            return NEVER;
        c->cycle++;
        c->i = 0;
        if (past_horizon(c->cycle + 1, P))
            return NEVER;
        base = (int64_t)c->cycle * P;
        if (now < base)
            now = base;
    }
}

int64_t mb_trace_serve_ns(mb_trace_cursor *c, int64_t start_ns, double bytes)
{
    if (start_ns > HORIZON_NS || !(bytes >= 0) || bytes > 1e18)
        return NEVER;
    if (c->tr->kind == MB_TRACE_OPPORTUNITIES)
        return serve_opportunities(c, start_ns, bytes);
    return serve_rates(c, start_ns, bytes);
}

double mb_trace_serve(mb_trace_cursor *c, double start, double bytes)
{
    int64_t t = mb_trace_serve_ns(c, mb_trace_ns(start), bytes);
    return t == NEVER ? INFINITY : (double)t / 1e9;
}

/* ---- statistics ---- */

mb_trace *mb_trace_binned(const mb_trace *tr, double bin_s)
{
    int64_t bin = mb_trace_ns(bin_s), P = tr->period_ns;
    if (!(bin_s > 0) || bin < 1 || P <= 0)
        return NULL;
    int64_t n64 = (P + bin - 1) / bin;
    if (n64 > 100000000)
        return NULL;
    size_t n = (size_t)n64;
    int64_t *t = malloc(n * sizeof *t);
    double *r = malloc(n * sizeof *r);
    mb_trace *out = NULL;
    if (t && r) {
        for (size_t i = 0; i < n; i++) {
            int64_t a = (int64_t)i * bin, b = a + bin > P ? P : a + bin;
            t[i] = a;
            r[i] = capacity_in_period(tr, a, b) * 8e9 / (double)(b - a);
        }
        out = mb_trace_new_rates(n, t, r, P);
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

#define OUTAGE_MIN_NS 100000000LL /* 100 ms */

/* Stretches of zero capacity of at least OUTAGE_MIN_NS, in integer ns, so
 * that a stretch of exactly 100 ms always counts. Within one period. */
static void count_outages(const mb_trace *tr, mb_trace_stats *s)
{
    int64_t total = 0;
    if (tr->kind == MB_TRACE_RATES) {
        int64_t run = 0;
        for (size_t i = 0; i <= tr->n; i++) {
            if (i < tr->n && tr->rate_bps[i] <= 0) {
                run += seg_end(tr, i) - tr->t_ns[i];
                continue;
            }
            if (run >= OUTAGE_MIN_NS) {
                total += run;
                s->n_outages++;
            }
            run = 0;
        }
    } else {
        int64_t prev = 0;
        for (size_t i = 0; i <= tr->n; i++) {
            int64_t t = i < tr->n ? tr->t_ns[i] : tr->period_ns;
            /* a gap between opportunities: no capacity strictly between them */
            if (t - prev >= OUTAGE_MIN_NS) {
                total += t - prev;
                s->n_outages++;
            }
            prev = t;
        }
    }
    s->outage_s = (double)total / 1e9;
}

int mb_trace_stats_compute(const mb_trace *tr, double window_s, mb_trace_stats *s)
{
    memset(s, 0, sizeof *s);
    int64_t P = tr->period_ns;
    if (P <= 0)
        return -1;
    if (!(window_s > 0))
        window_s = 1;
    int64_t win = mb_trace_ns(window_s);
    if (win < 1)
        win = 1;
    if (P / win > 1000000) /* at most a million windows */
        win = (P + 999999) / 1000000;
    s->window_s = (double)win / 1e9;
    s->duration_s = (double)P / 1e9;
    s->mean_bps = capacity_in_period(tr, 0, P) * 8e9 / (double)P;
    s->sample_mean_bps = tr->kind == MB_TRACE_RATES ? tr->sample_mean_bps : s->mean_bps;
    s->n_samples = tr->n;

    mb_trace *b = mb_trace_binned(tr, s->window_s);
    if (!b)
        return -1;
    /* the last, partial window would skew percentiles: leave it out unless it is the only one */
    size_t n = b->n;
    if (n > 1 && seg_end(b, n - 1) - b->t_ns[n - 1] < win)
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
    count_outages(tr, s);
    return 0;
}
