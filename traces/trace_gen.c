/* Seeded trace generators: constant, steps, on/off outages, Markov-modulated
 * good/bad states, bounded random walk. Our own PRNG (splitmix64 seeding
 * xoshiro256**) so a seed gives the same trace on every machine and libc. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/trace.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static double rng_uniform(rng *r) /* [0, 1) */
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_normal(rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

int mb_trace_gen_kind_parse(const char *name)
{
    static const char *const names[] = {"constant", "steps", "onoff", "markov", "walk", "5g"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* Reflect x into [lo, hi]. */
static double reflect(double x, double lo, double hi)
{
    for (int k = 0; k < 4 && (x < lo || x > hi); k++)
        x = x < lo ? 2 * lo - x : 2 * hi - x;
    return x < lo ? lo : x > hi ? hi : x;
}

/* 5G NR with LTE fallback (see trace.h): per dt step, a reflected walk on
 * NR, a noisy LTE rate, Markov switches with geometric dwell times, and an
 * optional zero-capacity handover stretch at each switch. */
static mb_trace *gen_5g(const mb_trace_gen *g, double dur, double dt, rng *r, char *err, size_t errlen)
{
    double lo = g->min_bps > 0 ? g->min_bps : 50e6, hi = g->max_bps > 0 ? g->max_bps : 900e6;
    double sigma = g->sigma_bps > 0 ? g->sigma_bps : (hi - lo) / 15, lte = g->bad_bps > 0 ? g->bad_bps : 30e6;
    double nr_dwell = g->good_dwell_s > 0 ? g->good_dwell_s : 10, lte_dwell = g->bad_dwell_s > 0 ? g->bad_dwell_s : 2;
    if (!(hi > lo) || !(g->off_s >= 0) || g->off_s > 60) {
        fail(err, errlen, "trace gen 5g: needs --min < --max and --off within 0..60 s");
        return NULL;
    }
    size_t steps = (size_t)ceil(dur / dt - 1e-9), cap = 2 * steps + 4;
    if (steps > 20000000) {
        fail(err, errlen, "trace gen: more than 2e7 segments (raise dt or shorten the trace)");
        return NULL;
    }
    double *t = malloc(cap * sizeof *t), *rate = malloc(cap * sizeof *rate);
    mb_trace *tr = NULL;
    if (!t || !rate)
        goto out;
    double x = g->rate_bps > 0 ? reflect(g->rate_bps, lo, hi) : (lo + hi) / 2;
    double p_nl = 1 - exp(-dt / nr_dwell), p_ln = 1 - exp(-dt / lte_dwell), off_until = -1;
    int nr = 1;
    size_t n = 0;
    for (size_t k = 0; k < steps; k++) {
        double now = (double)k * dt;
        t[n] = now;
        rate[n++] = nr ? x : lte * (0.5 + rng_uniform(r));
        /* compared in ns, as the trace will hold them */
        if (mb_trace_ns(off_until) > mb_trace_ns(now)) { /* the handover's outage covers this step's start */
            rate[n - 1] = 0;
            if (mb_trace_ns(off_until) < mb_trace_ns((double)(k + 1) * dt)) { /* and ends inside it */
                t[n] = off_until;
                rate[n] = nr ? x : lte * (0.5 + rng_uniform(r));
                n++;
            }
        }
        x = reflect(x + sigma * rng_normal(r), lo, hi);
        if (rng_uniform(r) < (nr ? p_nl : p_ln)) {
            nr = !nr;
            if (g->off_s > 0)
                off_until = (double)(k + 1) * dt + g->off_s;
        }
    }
    tr = mb_trace_new_rates_s(n, t, rate, dur);
out:
    if (!tr)
        fail(err, errlen, "trace gen: out of memory");
    free(t);
    free(rate);
    return tr;
}

mb_trace *mb_trace_generate(const mb_trace_gen *g, char *err, size_t errlen)
{
    double dur = g->duration_s, dt = g->dt_s > 0 ? g->dt_s : 0.1;
    if (!(dur > 0) || dur > 86400 * 7) {
        fail(err, errlen, "trace gen: duration must be within (0, 1 week]");
        return NULL;
    }
    size_t cap = (size_t)ceil(dur / dt) + 64;
    if (g->kind == MB_TRACE_GEN_STEPS || g->kind == MB_TRACE_GEN_ONOFF || g->kind == MB_TRACE_GEN_CONSTANT)
        cap = 0;
    rng r;
    rng_seed(&r, g->seed);
    if (g->kind == MB_TRACE_GEN_5G)
        return gen_5g(g, dur, dt, &r, err, errlen);
    double *t = NULL, *rate = NULL;
    size_t n = 0;
#define ALLOC(count)                                                                                                   \
    do {                                                                                                               \
        if ((count) > 20000000) {                                                                                      \
            fail(err, errlen, "trace gen: more than 2e7 segments (raise dt or shorten the trace)");                   \
            return NULL;                                                                                               \
        }                                                                                                              \
        t = malloc(((count) + 1) * sizeof *t);                                                                         \
        rate = malloc(((count) + 1) * sizeof *rate);                                                                   \
        if (!t || !rate)                                                                                               \
            goto oom;                                                                                                  \
    } while (0)

    switch (g->kind) {
    case MB_TRACE_GEN_CONSTANT:
        if (!(g->rate_bps >= 0)) {
            fail(err, errlen, "trace gen constant: --rate must be >= 0");
            return NULL;
        }
        ALLOC(1);
        t[0] = 0;
        rate[0] = g->rate_bps;
        n = 1;
        break;
    case MB_TRACE_GEN_STEPS: {
        if (g->n_rates < 1 || !(g->step_s > 0)) {
            fail(err, errlen, "trace gen steps: needs --rates R1,R2,... and --step S > 0");
            return NULL;
        }
        size_t count = (size_t)ceil(dur / g->step_s - 1e-9);
        ALLOC(count);
        for (size_t i = 0; i < count; i++) {
            t[i] = (double)i * g->step_s;
            rate[i] = g->rates_bps[i % (size_t)g->n_rates];
            if (rate[i] < 0) {
                fail(err, errlen, "trace gen steps: negative rate");
                goto fail_out;
            }
        }
        n = count;
        break;
    }
    case MB_TRACE_GEN_ONOFF: {
        if (!(g->on_s > 0) || !(g->off_s > 0) || !(g->rate_bps > 0)) {
            fail(err, errlen, "trace gen onoff: needs --rate > 0, --on S > 0 and --off S > 0");
            return NULL;
        }
        size_t count = 2 * (size_t)ceil(dur / (g->on_s + g->off_s)) + 2;
        ALLOC(count);
        double now = 0;
        for (int on = 1; now < dur - 1e-12; on = !on) {
            t[n] = now;
            rate[n] = on ? g->rate_bps : 0;
            n++;
            now += on ? g->on_s : g->off_s;
        }
        break;
    }
    case MB_TRACE_GEN_MARKOV: {
        if (!(g->good_bps >= 0) || !(g->bad_bps >= 0) || !(g->good_dwell_s > 0) || !(g->bad_dwell_s > 0)) {
            fail(err, errlen, "trace gen markov: needs --good R, --bad R (>= 0) and --good-dwell, --bad-dwell > 0");
            return NULL;
        }
        ALLOC(cap);
        /* per-step switch probabilities give geometric dwell times with the given means */
        double p_gb = 1 - exp(-dt / g->good_dwell_s), p_bg = 1 - exp(-dt / g->bad_dwell_s);
        int good = 1;
        size_t steps = (size_t)ceil(dur / dt - 1e-9);
        for (size_t k = 0; k < steps; k++) {
            t[n] = (double)k * dt; /* by index: summing dt drifts past the end */
            rate[n] = good ? g->good_bps : g->bad_bps;
            n++;
            if (rng_uniform(&r) < (good ? p_gb : p_bg))
                good = !good;
        }
        break;
    }
    case MB_TRACE_GEN_WALK: {
        if (!(g->min_bps >= 0) || !(g->max_bps > g->min_bps) || !(g->sigma_bps > 0)) {
            fail(err, errlen, "trace gen walk: needs 0 <= --min < --max and --sigma > 0");
            return NULL;
        }
        ALLOC(cap);
        double x = g->rate_bps > 0 ? g->rate_bps : (g->min_bps + g->max_bps) / 2;
        if (x < g->min_bps || x > g->max_bps) {
            fail(err, errlen, "trace gen walk: --rate (start) outside [min, max]");
            goto fail_out;
        }
        size_t steps = (size_t)ceil(dur / dt - 1e-9);
        for (size_t k = 0; k < steps; k++) {
            t[n] = (double)k * dt;
            rate[n] = x;
            n++;
            x += g->sigma_bps * rng_normal(&r);
            /* reflect at the bounds */
            for (int r4 = 0; r4 < 4 && (x < g->min_bps || x > g->max_bps); r4++)
                x = x < g->min_bps ? 2 * g->min_bps - x : 2 * g->max_bps - x;
            if (x < g->min_bps)
                x = g->min_bps;
            if (x > g->max_bps)
                x = g->max_bps;
        }
        break;
    }
    default:
        fail(err, errlen, "trace gen: unknown kind");
        return NULL;
    }
    mb_trace *tr = mb_trace_new_rates_s(n, t, rate, dur);
    free(t);
    free(rate);
    if (!tr)
        fail(err, errlen, "trace gen: out of memory");
    return tr;
oom:
    fail(err, errlen, "trace gen: out of memory");
fail_out:
    free(t);
    free(rate);
    return NULL;
#undef ALLOC
}
