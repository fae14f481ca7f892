/* Trace readers and writers: Mahimahi, two-column "seconds Mbit/s", NYU-METS
 * "value,unit", and mecbed's native format (docs/traces.md). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/trace.h"
#include "mecbed/readfile.h"

#define MAHIMAHI_PACKET_BYTES 1500.0
#define MAX_LINE 256
#define MAX_SAMPLES 50000000

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

static const char *const fmt_names[] = {"auto", "native", "mahimahi", "twocol", "mets"};

int mb_trace_format_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, fmt_names[i]))
            return i;
    return -1;
}

const char *mb_trace_format_name(mb_trace_format f)
{
    return (unsigned)f < 5 ? fmt_names[f] : "?";
}

/* Growable arrays of samples. */
typedef struct samples {
    double *t, *r;
    size_t n, cap;
} samples;

static int push(samples *s, double t, double r)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        if (cap > MAX_SAMPLES)
            return -1;
        double *nt = realloc(s->t, cap * sizeof *nt);
        if (!nt)
            return -1;
        s->t = nt;
        double *nr = realloc(s->r, cap * sizeof *nr);
        if (!nr)
            return -1;
        s->r = nr;
        s->cap = cap;
    }
    s->t[s->n] = t;
    s->r[s->n] = r;
    s->n++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* Detect a format from the first meaningful line. */
static mb_trace_format detect(const char *line)
{
    if (!strncmp(line, "# mecbed-trace", 14))
        return MB_TRACE_FMT_NATIVE;
    if (strchr(line, ','))
        return MB_TRACE_FMT_METS;
    char a[MAX_LINE], b[MAX_LINE];
    int n = sscanf(line, "%255s %255s", a, b);
    if (n == 2)
        return MB_TRACE_FMT_TWOCOL;
    if (n == 1) {
        for (const char *p = a; *p; p++)
            if (!isdigit((unsigned char)*p))
                return MB_TRACE_FMT_AUTO;
        return MB_TRACE_FMT_MAHIMAHI;
    }
    return MB_TRACE_FMT_AUTO;
}

/* METS units to bit/s. */
static int mets_unit(const char *u, double *mult)
{
    static const struct { const char *name; double m; } units[] = {
        {"bits/sec", 1}, {"Kbits/sec", 1e3}, {"Mbits/sec", 1e6}, {"Gbits/sec", 1e9},
        {"bit/s", 1}, {"kbit/s", 1e3}, {"Kbit/s", 1e3}, {"Mbit/s", 1e6}, {"Gbit/s", 1e9},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(u, units[i].name)) {
            *mult = units[i].m;
            return 0;
        }
    return -1;
}

/* A trace file being read: where, in which format, and the samples so far. */
typedef struct reader {
    const char *path;
    int line;
    mb_trace_format fmt;
    samples s;
    int have_end, header_seen;
    double end_s; /* native: the 'end' line's length */
    char *err;
    size_t errlen;
} reader;

/* Bounds on what a trace may say: 10 Tbit/s and ~31 years. Beyond them a
 * value is a typo or an attack, and sums over a trace (its mean, the bits
 * sent by a time) would overflow to inf. */
#define MAX_RATE_BPS 1e13
#define MAX_SECONDS 1e9

/* t in seconds; r in the file's unit, mult bit/s per unit (checked before
 * the multiplication, which could itself overflow). */
static int check_bounds(reader *rd, double t, double r, double mult, const char *unit)
{
    if (t > MAX_SECONDS)
        return fail(rd->err, rd->errlen, "%s:%d: time %g s exceeds the limit of %g s", rd->path, rd->line, t,
                    MAX_SECONDS);
    if (r > MAX_RATE_BPS / mult)
        return fail(rd->err, rd->errlen, "%s:%d: rate %g %s exceeds the limit of %g Mbit/s", rd->path, rd->line, r,
                    unit, MAX_RATE_BPS / 1e6);
    return 0;
}

/* Mahimahi: one delivery opportunity per line, a millisecond timestamp. */
static int parse_mahimahi_line(reader *rd, const char *p, double *t)
{
    char *end;
    errno = 0;
    long long ms = strtoll(p, &end, 10);
    if (end == p || *end || errno || ms < 0)
        return fail(rd->err, rd->errlen, "%s:%d: expected a millisecond timestamp (non-negative integer), got '%.40s'",
                    rd->path, rd->line, p);
    *t = (double)ms / 1000;
    if (check_bounds(rd, *t, 0, 1, ""))
        return -1;
    if (rd->s.n && *t < rd->s.t[rd->s.n - 1])
        return fail(rd->err, rd->errlen, "%s:%d: timestamp %lld goes back in time (previous %.0f)", rd->path,
                    rd->line, ms, rd->s.t[rd->s.n - 1] * 1000);
    return 0;
}

/* Two-column and native: "seconds Mbit/s"; native also "end SECONDS".
 * Returns 0 (a sample), 1 (the end line) or -1. */
static int parse_rate_line(reader *rd, const char *p, double *t, double *r)
{
    char a[MAX_LINE], b[MAX_LINE], c[8];
    int n = sscanf(p, "%255s %255s %7s", a, b, c);
    if (rd->fmt == MB_TRACE_FMT_NATIVE && n == 2 && !strcmp(a, "end")) {
        if (parse_double(b, &rd->end_s) || rd->end_s <= 0)
            return fail(rd->err, rd->errlen, "%s:%d: 'end' needs the trace's length in seconds (> 0)", rd->path,
                        rd->line);
        if (check_bounds(rd, rd->end_s, 0, 1, ""))
            return -1;
        rd->have_end = 1;
        return 1;
    }
    if (n != 2 || parse_double(a, t) || parse_double(b, r))
        return fail(rd->err, rd->errlen, "%s:%d: expected 'seconds Mbit/s', got '%.40s'", rd->path, rd->line, p);
    if (*t < 0 || *r < 0)
        return fail(rd->err, rd->errlen, "%s:%d: negative %s", rd->path, rd->line, *t < 0 ? "time" : "rate");
    if (rd->s.n && *t <= rd->s.t[rd->s.n - 1])
        return fail(rd->err, rd->errlen, "%s:%d: time %g s is not after the previous sample (%g s)", rd->path,
                    rd->line, *t, rd->s.t[rd->s.n - 1]);
    if (rd->fmt == MB_TRACE_FMT_NATIVE && rd->s.n == 0 && *t != 0)
        return fail(rd->err, rd->errlen, "%s:%d: the first segment of a native trace starts at 0", rd->path,
                    rd->line);
    if (check_bounds(rd, *t, *r, 1e6, "Mbit/s"))
        return -1;
    *r *= 1e6;
    return 0;
}

/* NYU-METS: "value,unit", one sample a second. */
static int parse_mets_line(reader *rd, char *p, double *t, double *r)
{
    char *comma = strchr(p, ',');
    if (!comma)
        return fail(rd->err, rd->errlen, "%s:%d: expected 'value,unit' (e.g. 3.5,Mbits/sec), got '%.40s'", rd->path,
                    rd->line, p);
    *comma = 0;
    double mult;
    char *unit = trim(comma + 1);
    if (parse_double(trim(p), r) || *r < 0)
        return fail(rd->err, rd->errlen, "%s:%d: '%s' is not a non-negative number", rd->path, rd->line, p);
    if (mets_unit(unit, &mult))
        return fail(rd->err, rd->errlen, "%s:%d: unknown unit '%s' (Mbits/sec, Kbits/sec, bits/sec, Gbits/sec)",
                    rd->path, rd->line, unit);
    *t = (double)rd->s.n;
    if (check_bounds(rd, *t, *r, mult, unit))
        return -1;
    *r *= mult;
    return 0;
}

/* One trimmed line: format detection, the native header, comments, then a
 * sample in the trace's format. 0 or -1. */
static int read_line(reader *rd, char *p)
{
    if (rd->fmt == MB_TRACE_FMT_AUTO && *p) {
        rd->fmt = detect(p);
        if (rd->fmt == MB_TRACE_FMT_AUTO)
            /* not echoed: the file may be anything (a peer or a typo can name
             * /etc/shadow), and its first line is no one's business */
            return fail(rd->err, rd->errlen,
                        "%s:%d: not a bandwidth trace: the first line matches no known format (mecbed-trace, "
                        "mahimahi, two-column, NYU-METS; give --format)",
                        rd->path, rd->line);
    }
    if (rd->fmt == MB_TRACE_FMT_NATIVE && !rd->header_seen && *p) {
        int version = 0;
        if (sscanf(p, "# mecbed-trace %d", &version) != 1 || version != 1)
            return fail(rd->err, rd->errlen, "%s:%d: a native trace starts with '# mecbed-trace 1'", rd->path,
                        rd->line);
        rd->header_seen = 1;
        return 0;
    }
    if (!*p || (*p == '#' && rd->fmt != MB_TRACE_FMT_MAHIMAHI))
        return 0;
    if (rd->have_end)
        return fail(rd->err, rd->errlen, "%s:%d: nothing may follow the 'end' line", rd->path, rd->line);
    double t = 0, r = 0;
    int rc;
    switch (rd->fmt) {
    case MB_TRACE_FMT_MAHIMAHI: rc = parse_mahimahi_line(rd, p, &t); break;
    case MB_TRACE_FMT_TWOCOL:
    case MB_TRACE_FMT_NATIVE: rc = parse_rate_line(rd, p, &t, &r); break;
    case MB_TRACE_FMT_METS: rc = parse_mets_line(rd, p, &t, &r); break;
    default: return fail(rd->err, rd->errlen, "%s: unknown trace format", rd->path);
    }
    if (rc)
        return rc < 0 ? -1 : 0;
    if (push(&rd->s, t, r))
        return fail(rd->err, rd->errlen, "%s:%d: too many samples (at most %d) or out of memory", rd->path, rd->line,
                    MAX_SAMPLES);
    return 0;
}

/* Mahimahi: delivery opportunities repeating with the last timestamp. */
static mb_trace *build_opportunities(reader *rd)
{
    samples *s = &rd->s;
    double last = s->t[s->n - 1];
    if (last <= 0) {
        fail(rd->err, rd->errlen, "%s: the last timestamp must be > 0 (it is the trace's period)", rd->path);
        return NULL;
    }
    mb_trace *tr = calloc(1, sizeof *tr);
    if (!tr) {
        fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
        return NULL;
    }
    tr->kind = MB_TRACE_OPPORTUNITIES;
    tr->n = s->n;
    tr->t = s->t;
    s->t = NULL;
    tr->period_s = last;
    tr->opp_bytes = MAHIMAHI_PACKET_BYTES;
    tr->sample_mean_bps = (double)s->n * MAHIMAHI_PACKET_BYTES * 8 / last;
    tr->format = rd->fmt;
    return tr;
}

/* Rate formats: piecewise-constant segments over a period. */
static mb_trace *build_rates(reader *rd)
{
    samples *s = &rd->s;
    mb_trace_format fmt = rd->fmt;
    double period;
    double t0 = s->t[0], first_rate = s->r[0];
    for (size_t i = 0; i < s->n; i++)
        s->t[i] -= t0; /* a two-column file may start late: time is relative to its first sample */
    if (fmt == MB_TRACE_FMT_NATIVE) {
        period = rd->end_s;
        if (period <= s->t[s->n - 1]) {
            fail(rd->err, rd->errlen, "%s: 'end %g' must be after the last segment's start (%g)", rd->path,
                 rd->end_s, s->t[s->n - 1]);
            return NULL;
        }
    } else if (fmt == MB_TRACE_FMT_METS) {
        period = (double)s->n;
    } else if (s->n == 1) {
        period = 1; /* a single sample lasts one second */
    } else {
        /* Pensieve's reading of these files: sample i is the throughput
         * measured over (t[i-1], t[i]], so it is the rate of that interval
         * and the span is t[n-1]. */
        period = s->t[s->n - 1];
        for (size_t i = 0; i + 1 < s->n; i++)
            s->r[i] = s->r[i + 1];
        s->r[s->n - 1] = 0; /* not a segment any more; kept for the plain mean below */
    }
    mb_trace *tr;
    if (fmt == MB_TRACE_FMT_TWOCOL && s->n > 1) {
        double sum = 0;
        for (size_t i = 0; i < s->n; i++)
            sum += i + 1 < s->n ? s->r[i] : 0;
        tr = mb_trace_new_rates(s->n - 1, s->t, s->r, period);
        if (tr) /* the plain mean covers every sample, the first one too */
            tr->sample_mean_bps = (sum + first_rate) / (double)s->n;
    } else {
        tr = mb_trace_new_rates(s->n, s->t, s->r, period);
    }
    if (!tr) {
        fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
        return NULL;
    }
    tr->format = fmt;
    return tr;
}

/* Read every line of f; 0 or -1. */
static int read_lines(reader *rd, FILE *f)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&buf, &cap, f)) > 0) {
        rd->line++;
        size_t n = (size_t)len;
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n > MAX_LINE)
            rc = fail(rd->err, rd->errlen, "%s:%d: line longer than %d characters", rd->path, rd->line, MAX_LINE);
        else if (memchr(buf, 0, (size_t)len))
            rc = fail(rd->err, rd->errlen, "%s:%d: a NUL byte (not a text file?)", rd->path, rd->line);
        else
            rc = read_line(rd, trim(buf));
    }
    free(buf);
    if (rc)
        return -1;
    if (ferror(f))
        return fail(rd->err, rd->errlen, "%s: read error", rd->path);
    if (rd->s.n == 0)
        return fail(rd->err, rd->errlen, "%s: no samples", rd->path);
    if (rd->fmt == MB_TRACE_FMT_NATIVE && !rd->have_end)
        return fail(rd->err, rd->errlen, "%s:%d: a native trace ends with 'end SECONDS'", rd->path, rd->line);
    return 0;
}

mb_trace *mb_trace_read(const char *path, mb_trace_format fmt, char *err, size_t errlen)
{
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!f)
        return NULL;
    reader rd = {.path = path, .fmt = fmt, .err = err, .errlen = errlen};
    mb_trace *tr = NULL;
    if (!read_lines(&rd, f))
        tr = rd.fmt == MB_TRACE_FMT_MAHIMAHI ? build_opportunities(&rd) : build_rates(&rd);
    free(rd.s.t);
    free(rd.s.r);
    fclose(f);
    return tr;
}

/* ---- writers ---- */

static int write_rates(const mb_trace *tr, FILE *f, mb_trace_format fmt)
{
    if (fmt == MB_TRACE_FMT_NATIVE) {
        fprintf(f, "# mecbed-trace 1\n# start_s rate_mbit (piecewise constant), then the length\n");
        for (size_t i = 0; i < tr->n; i++)
            fprintf(f, "%.12g %.12g\n", tr->t[i], tr->rate_bps[i] / 1e6);
        fprintf(f, "end %.12g\n", tr->period_s);
    } else if (fmt == MB_TRACE_FMT_TWOCOL) {
        /* sample i is the rate over (t[i-1], t[i]] (the reader's reading):
         * write each segment at its end, after a first sample at 0 */
        fprintf(f, "0\t%.12g\n", tr->n ? tr->rate_bps[0] / 1e6 : 0);
        for (size_t i = 0; i < tr->n; i++)
            fprintf(f, "%.12g\t%.12g\n", i + 1 < tr->n ? tr->t[i + 1] : tr->period_s, tr->rate_bps[i] / 1e6);
    } else { /* METS: one value per second, already binned to 1 s */
        for (size_t i = 0; i < tr->n; i++)
            fprintf(f, "%.6g,Mbits/sec\n", tr->rate_bps[i] / 1e6);
    }
    return 0;
}

/* Rates to Mahimahi opportunities: one stamp each time the cumulative
 * capacity passes another 1500 bytes, at the millisecond it is reached. */
static int write_mahimahi(const mb_trace *tr, FILE *f, char *err, size_t errlen, const char *path)
{
    double total = mb_trace_capacity(tr, 0, tr->period_s, 0);
    if (total < MAHIMAHI_PACKET_BYTES)
        return fail(err, errlen, "%s: the trace carries less than one packet; Mahimahi cannot express it", path);
    long long period_ms = llround(tr->period_s * 1000);
    if (period_ms <= 0)
        return fail(err, errlen, "%s: trace shorter than 1 ms", path);
    double cum = 0, next = MAHIMAHI_PACKET_BYTES;
    long long last = -1, count = 0;
    long long total_opps = (long long)floor(total / MAHIMAHI_PACKET_BYTES);
    for (long long ms = 0; ms < period_ms && count < total_opps; ms++) {
        cum += mb_trace_capacity(tr, (double)ms / 1000, (double)(ms + 1) / 1000, 0);
        while (cum + 1e-6 >= next && count < total_opps) {
            /* the final opportunity is stamped at the period, so the file loops with the right length */
            long long stamp = count == total_opps - 1 ? period_ms : ms + 1;
            fprintf(f, "%lld\n", stamp);
            last = stamp;
            next += MAHIMAHI_PACKET_BYTES;
            count++;
        }
    }
    if (last != period_ms) {
        if (count == total_opps)
            return 0;
        fprintf(f, "%lld\n", period_ms);
    }
    return 0;
}

int mb_trace_write(const mb_trace *tr, const char *path, mb_trace_format fmt, double bin_s, char *err,
                   size_t errlen)
{
    if (fmt == MB_TRACE_FMT_AUTO)
        fmt = MB_TRACE_FMT_NATIVE;
    mb_trace *tmp = NULL;
    const mb_trace *src = tr;
    if (fmt == MB_TRACE_FMT_METS) {
        tmp = mb_trace_binned(tr, 1.0);
        src = tmp;
    } else if (fmt != MB_TRACE_FMT_MAHIMAHI && tr->kind == MB_TRACE_OPPORTUNITIES) {
        tmp = mb_trace_binned(tr, bin_s > 0 ? bin_s : 0.1);
        src = tmp;
    }
    if (!src)
        return fail(err, errlen, "%s: out of memory", path);
    FILE *f = !strcmp(path, "-") ? stdout : fopen(path, "w");
    if (!f) {
        mb_trace_free(tmp);
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    int rc = 0;
    if (fmt == MB_TRACE_FMT_MAHIMAHI) {
        if (src->kind == MB_TRACE_OPPORTUNITIES) {
            for (size_t i = 0; i < src->n; i++)
                fprintf(f, "%lld\n", llround(src->t[i] * 1000));
        } else {
            rc = write_mahimahi(src, f, err, errlen, path);
        }
    } else {
        rc = write_rates(src, f, fmt);
    }
    if (f != stdout) {
        if (fclose(f) && !rc)
            rc = fail(err, errlen, "%s: %s", path, strerror(errno));
    } else {
        fflush(f);
    }
    mb_trace_free(tmp);
    return rc;
}
