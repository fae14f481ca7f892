/* Trace readers and writers: Mahimahi, two-column "seconds Mbit/s", NYU-METS
 * "value,unit", mecbed's native format (docs/traces.md); the per-second CSV
 * importer is in trace_csv.c. Times are integer ns from the first byte
 * read: decimal seconds are parsed exactly, never through a double. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/readfile.h"
#include "trace_read.h"

#define MAHIMAHI_PACKET_BYTES 1500.0

int trace_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
#define fail trace_fail

int trace_push(trace_samples *s, int64_t t, double r, int line)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        if (cap > TRACE_MAX_SAMPLES)
            return -1;
        int64_t *nt = realloc(s->t, cap * sizeof *nt);
        if (!nt)
            return -1;
        s->t = nt;
        double *nr = realloc(s->r, cap * sizeof *nr);
        if (!nr)
            return -1;
        s->r = nr;
        int *nl = realloc(s->line, cap * sizeof *nl);
        if (!nl)
            return -1;
        s->line = nl;
        s->cap = cap;
    }
    s->t[s->n] = t;
    s->r[s->n] = r;
    s->line[s->n] = line;
    s->n++;
    return 0;
}

char *trace_trim(char *s)
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

int trace_parse_ns(const char *s, int64_t unit_ns, int64_t *out)
{
    return trace_parse_ns_max(s, unit_ns, TRACE_MAX_SECONDS * 1000000000LL, out);
}

int trace_parse_ns_max(const char *s, int64_t unit_ns, int64_t max_ns, int64_t *out)
{
    const char *p = s;
    if (*p == '+')
        p++;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return -1;
    if (strpbrk(p, "eE")) { /* exponent: through a double */
        double x;
        if (parse_double(p, &x) || x < 0 || x * (double)unit_ns > (double)max_ns)
            return -1;
        *out = llround(x * (double)unit_ns);
        return 0;
    }
    int64_t ip = 0;
    for (; isdigit((unsigned char)*p); p++) {
        ip = ip * 10 + (*p - '0');
        if (ip > max_ns / unit_ns)
            return -1;
    }
    int64_t ns = ip * unit_ns;
    if (*p == '.') {
        /* the fraction to the ns; the first digit past the ns rounds */
        int64_t scale = unit_ns;
        for (p++; isdigit((unsigned char)*p); p++) {
            if (scale >= 10) {
                scale /= 10;
                ns += (*p - '0') * scale;
            } else if (scale == 1) {
                ns += *p >= '5';
                scale = 0;
            }
        }
    }
    if (*p || ns > max_ns)
        return -1;
    *out = ns;
    return 0;
}

void trace_fmt_seconds(char *buf, size_t len, int64_t ns)
{
    int64_t s = ns / 1000000000LL, f = ns % 1000000000LL;
    if (!f) {
        snprintf(buf, len, "%lld", (long long)s);
        return;
    }
    char frac[16];
    snprintf(frac, sizeof frac, "%09lld", (long long)f);
    for (int i = 8; i > 0 && frac[i] == '0'; i--)
        frac[i] = 0;
    snprintf(buf, len, "%lld.%s", (long long)s, frac);
}

/* Detect a format from the first meaningful line. */
static mb_trace_format detect(const char *line)
{
    if (!strncmp(line, "# mecbed-trace", 14))
        return MB_TRACE_FMT_NATIVE;
    char a[TRACE_MAX_LINE], b[TRACE_MAX_LINE];
    const char *comma = strchr(line, ',');
    if (comma) {
        /* METS: exactly "number,unit"; anything else with a header is a CSV log */
        double x;
        size_t n = (size_t)(comma - line);
        if (n < sizeof a && !strchr(comma + 1, ',')) {
            memcpy(a, line, n);
            a[n] = 0;
            if (!parse_double(trace_trim(a), &x))
                return MB_TRACE_FMT_METS;
        }
        return trace_csv_looks_like_header(line) ? MB_TRACE_FMT_CSV : MB_TRACE_FMT_AUTO;
    }
    if (trace_csv_looks_like_header(line))
        return MB_TRACE_FMT_CSV; /* a ';' or tab separated header */
    int n = sscanf(line, "%4095s %4095s", a, b);
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

/* r in the file's unit, mult bit/s per unit (checked before the
 * multiplication, which could itself overflow). */
static int check_rate(trace_reader *rd, double r, double mult, const char *unit)
{
    if (r > TRACE_MAX_RATE_BPS / mult)
        return fail(rd->err, rd->errlen, "%s:%d: rate %g %s exceeds the limit of %g Mbit/s", rd->path, rd->line, r,
                    unit, TRACE_MAX_RATE_BPS / 1e6);
    return 0;
}

static int bad_time(trace_reader *rd, const char *what, const char *text)
{
    return fail(rd->err, rd->errlen, "%s:%d: %s '%.40s' is not a non-negative number of at most %lld s", rd->path,
                rd->line, what, text, (long long)TRACE_MAX_SECONDS);
}

/* Mahimahi: one delivery opportunity per line, a millisecond timestamp. */
static int parse_mahimahi_line(trace_reader *rd, const char *p, int64_t *t)
{
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return fail(rd->err, rd->errlen,
                        "%s:%d: expected a millisecond timestamp (non-negative integer), got '%.40s'", rd->path,
                        rd->line, p);
    if (trace_parse_ns(p, 1000000, t))
        return bad_time(rd, "timestamp", p);
    if (rd->s.n && *t < rd->s.t[rd->s.n - 1])
        return fail(rd->err, rd->errlen, "%s:%d: timestamp %s goes back in time (previous %lld)", rd->path, rd->line,
                    p, (long long)(rd->s.t[rd->s.n - 1] / 1000000));
    return 0;
}

/* Two-column and native: "seconds Mbit/s"; native also "end SECONDS".
 * Returns 0 (a sample), 1 (the end line) or -1. Two-column files may
 * repeat a time (the duplicate rule merges them); native ones may not. */
static int parse_rate_line(trace_reader *rd, const char *p, int64_t *t, double *r)
{
    char a[TRACE_MAX_LINE], b[TRACE_MAX_LINE], c[8];
    int n = sscanf(p, "%4095s %4095s %7s", a, b, c);
    if (rd->fmt == MB_TRACE_FMT_NATIVE && n == 2 && !strcmp(a, "end")) {
        if (trace_parse_ns(b, 1000000000, &rd->end_ns) || rd->end_ns <= 0)
            return fail(rd->err, rd->errlen, "%s:%d: 'end' needs the trace's length in seconds (> 0, at most %lld)",
                        rd->path, rd->line, (long long)TRACE_MAX_SECONDS);
        rd->have_end = 1;
        return 1;
    }
    if (n != 2 || parse_double(b, r))
        return fail(rd->err, rd->errlen, "%s:%d: expected 'seconds Mbit/s', got '%.40s'", rd->path, rd->line, p);
    if (a[0] == '-' || *r < 0)
        return fail(rd->err, rd->errlen, "%s:%d: negative %s", rd->path, rd->line, a[0] == '-' ? "time" : "rate");
    if (trace_parse_ns(a, 1000000000, t))
        return bad_time(rd, "time", a);
    if (rd->s.n) {
        int64_t prev = rd->s.t[rd->s.n - 1];
        int dup_ok = rd->fmt == MB_TRACE_FMT_TWOCOL && rd->src.dup != MB_TRACE_DUP_ERROR;
        if (*t < prev || (*t == prev && !dup_ok)) {
            char ps[32];
            trace_fmt_seconds(ps, sizeof ps, prev);
            return fail(rd->err, rd->errlen, "%s:%d: time %s s is not after the previous sample (%s s)%s", rd->path,
                        rd->line, a, ps,
                        *t == prev && rd->fmt == MB_TRACE_FMT_TWOCOL ? " and duplicates=error" : "");
        }
    }
    if (rd->fmt == MB_TRACE_FMT_NATIVE && rd->s.n == 0 && *t != 0)
        return fail(rd->err, rd->errlen, "%s:%d: the first segment of a native trace starts at 0", rd->path,
                    rd->line);
    if (check_rate(rd, *r, 1e6, "Mbit/s"))
        return -1;
    *r *= 1e6;
    return 0;
}

/* NYU-METS: "value,unit", one sample a second. */
static int parse_mets_line(trace_reader *rd, char *p, int64_t *t, double *r)
{
    char *comma = strchr(p, ',');
    if (!comma)
        return fail(rd->err, rd->errlen, "%s:%d: expected 'value,unit' (e.g. 3.5,Mbits/sec), got '%.40s'", rd->path,
                    rd->line, p);
    *comma = 0;
    double mult;
    char *unit = trace_trim(comma + 1);
    if (parse_double(trace_trim(p), r) || *r < 0)
        return fail(rd->err, rd->errlen, "%s:%d: '%s' is not a non-negative number", rd->path, rd->line, p);
    if (mets_unit(unit, &mult))
        return fail(rd->err, rd->errlen, "%s:%d: unknown unit '%s' (Mbits/sec, Kbits/sec, bits/sec, Gbits/sec)",
                    rd->path, rd->line, unit);
    if ((long long)rd->s.n >= TRACE_MAX_SECONDS)
        return fail(rd->err, rd->errlen, "%s:%d: more than %lld seconds", rd->path, rd->line,
                    (long long)TRACE_MAX_SECONDS);
    *t = (int64_t)rd->s.n * 1000000000LL;
    if (check_rate(rd, *r, mult, unit))
        return -1;
    *r *= mult;
    return 0;
}

/* One trimmed line: format detection, the native header, comments, then a
 * sample in the trace's format. 0 or -1. */
static int read_line(trace_reader *rd, char *p)
{
    if (rd->fmt == MB_TRACE_FMT_AUTO && *p && *p != '#') {
        rd->fmt = detect(p);
        rd->auto_detected = 1;
        if (rd->fmt == MB_TRACE_FMT_AUTO)
            /* not echoed: the file may be anything (a peer or a typo can name
             * /etc/shadow), and its first line is no one's business */
            return fail(rd->err, rd->errlen,
                        "%s:%d: not a bandwidth trace: the first line matches no known format (give --format: %s)",
                        rd->path, rd->line, mb_trace_format_list());
        /* options only another format takes (column= for a file that is not a CSV log) */
        rd->src.format = rd->fmt;
        char e[256];
        if (mb_trace_src_check(&rd->src, e, sizeof e))
            return fail(rd->err, rd->errlen, "%s:%d: %s", rd->path, rd->line, e);
    } else if (rd->fmt == MB_TRACE_FMT_AUTO && !strncmp(p, "# mecbed-trace", 14)) {
        rd->fmt = MB_TRACE_FMT_NATIVE;
        rd->auto_detected = 1;
        rd->src.format = rd->fmt;
        char e[256];
        if (mb_trace_src_check(&rd->src, e, sizeof e))
            return fail(rd->err, rd->errlen, "%s:%d: %s", rd->path, rd->line, e);
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
    if (rd->fmt == MB_TRACE_FMT_CSV)
        return trace_csv_line(rd, p);
    int64_t t = 0;
    double r = 0;
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
    if (trace_push(&rd->s, t, r, rd->line))
        return fail(rd->err, rd->errlen, "%s:%d: too many samples (at most %d) or out of memory", rd->path, rd->line,
                    TRACE_MAX_SAMPLES);
    return 0;
}

static mb_trace *oom(trace_reader *rd)
{
    fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
    return NULL;
}

/* Mahimahi: delivery opportunities repeating with the last timestamp. */
static mb_trace *build_opportunities(trace_reader *rd)
{
    trace_samples *s = &rd->s;
    int64_t last = s->t[s->n - 1];
    if (last <= 0) {
        fail(rd->err, rd->errlen, "%s: the last timestamp must be > 0 (it is the trace's period)", rd->path);
        return NULL;
    }
    mb_trace *tr = calloc(1, sizeof *tr);
    if (!tr)
        return oom(rd);
    tr->kind = MB_TRACE_OPPORTUNITIES;
    tr->n = s->n;
    tr->t_ns = s->t;
    s->t = NULL;
    tr->period_ns = last;
    tr->opp_bytes = MAHIMAHI_PACKET_BYTES;
    tr->sample_mean_bps = (double)s->n * MAHIMAHI_PACKET_BYTES * 8e9 / (double)last;
    tr->n_rows = (long)s->n;
    return tr;
}

/* Two-column: merge samples at the same time (the duplicate rule), then
 * sample i is the rate over (t[i-1], t[i]] and the first sample the rate
 * over an interval as long as the second one's, ending at t[0]: n samples
 * at a steady spacing d span n x d (a one-row-per-second log of 384 rows
 * lasts 384 s and its time-weighted mean is the plain mean). */
static mb_trace *build_twocol(trace_reader *rd)
{
    trace_samples *s = &rd->s;
    size_t m = 0;
    double sum_all = 0;
    for (size_t i = 0; i < s->n;) {
        size_t j = i;
        double sum = 0;
        while (j < s->n && s->t[j] == s->t[i])
            sum += s->r[j++];
        sum_all += sum;
        double v = rd->src.dup == MB_TRACE_DUP_LAST ? s->r[j - 1]
                   : rd->src.dup == MB_TRACE_DUP_FIRST ? s->r[i]
                                                       : sum / (double)(j - i);
        s->t[m] = s->t[i];
        s->r[m] = v;
        m++;
        i = j;
    }
    int64_t d = m > 1 ? s->t[1] - s->t[0] : 1000000000LL; /* a lone sample lasts one second */
    int64_t *t = malloc(m * sizeof *t);
    if (!t)
        return oom(rd);
    t[0] = 0;
    for (size_t i = 1; i < m; i++)
        t[i] = s->t[i - 1] - s->t[0] + d;
    mb_trace *tr = mb_trace_new_rates(m, t, s->r, s->t[m - 1] - s->t[0] + d);
    free(t);
    if (!tr)
        return oom(rd);
    tr->sample_mean_bps = sum_all / (double)s->n; /* every row, duplicates too: what a README quotes */
    tr->n_rows = (long)s->n;
    tr->n_duplicates = (long)(s->n - m);
    return tr;
}

/* Native and METS: piecewise-constant segments as written. */
static mb_trace *build_rates(trace_reader *rd)
{
    trace_samples *s = &rd->s;
    int64_t period;
    if (rd->fmt == MB_TRACE_FMT_NATIVE) {
        period = rd->end_ns;
        if (period <= s->t[s->n - 1]) {
            char a[32], b[32];
            trace_fmt_seconds(a, sizeof a, rd->end_ns);
            trace_fmt_seconds(b, sizeof b, s->t[s->n - 1]);
            fail(rd->err, rd->errlen, "%s: 'end %s' must be after the last segment's start (%s)", rd->path, a, b);
            return NULL;
        }
    } else {
        period = (int64_t)s->n * 1000000000LL;
    }
    mb_trace *tr = mb_trace_new_rates(s->n, s->t, s->r, period);
    if (!tr)
        return oom(rd);
    tr->n_rows = (long)s->n;
    return tr;
}

/* Read every line of f; 0 or -1. */
static int read_lines(trace_reader *rd, FILE *f)
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
        if (n > TRACE_MAX_LINE)
            rc = fail(rd->err, rd->errlen, "%s:%d: line longer than %d characters", rd->path, rd->line, TRACE_MAX_LINE);
        else if (memchr(buf, 0, (size_t)len))
            rc = fail(rd->err, rd->errlen, "%s:%d: a NUL byte (not a text file?)", rd->path, rd->line);
        else
            rc = read_line(rd, trace_trim(buf));
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

static mb_trace *build(trace_reader *rd)
{
    switch (rd->fmt) {
    case MB_TRACE_FMT_MAHIMAHI: return build_opportunities(rd);
    case MB_TRACE_FMT_TWOCOL: return build_twocol(rd);
    case MB_TRACE_FMT_CSV: return trace_csv_build(rd);
    default: return build_rates(rd);
    }
}

mb_trace *mb_trace_read_src(const char *path, const mb_trace_src *src, char *err, size_t errlen)
{
    mb_trace_src defaults = {0};
    if (!src)
        src = &defaults;
    if (mb_trace_src_check(src, err, errlen))
        return NULL;
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!f)
        return NULL;
    trace_reader rd = {.path = path, .fmt = (mb_trace_format)src->format, .src = *src, .err = err,
                       .errlen = errlen};
    rd.csv.numeric_time = -1;
    mb_trace *tr = NULL;
    if (!read_lines(&rd, f))
        tr = build(&rd);
    if (tr) {
        tr->format = rd.fmt;
        tr->auto_detected = rd.auto_detected;
        tr->n_missing = rd.n_missing;
    } else if (rd.auto_detected && rd.fmt != MB_TRACE_FMT_AUTO && err && errlen) {
        /* say what the content was taken for, so a wrong guess is obvious */
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (parsed as %s, auto-detected; use --format)",
                 mb_trace_format_name(rd.fmt));
    }
    free(rd.s.t);
    free(rd.s.r);
    free(rd.s.line);
    fclose(f);
    return tr;
}

mb_trace *mb_trace_read(const char *path, mb_trace_format fmt, char *err, size_t errlen)
{
    mb_trace_src src = {.format = fmt};
    return mb_trace_read_src(path, &src, err, errlen);
}

/* ---- writers ---- */

static void write_rates(const mb_trace *tr, FILE *f, mb_trace_format fmt)
{
    char a[32];
    if (fmt == MB_TRACE_FMT_NATIVE) {
        fprintf(f, "# mecbed-trace 1\n# start_s rate_mbit (piecewise constant), then the length\n");
        for (size_t i = 0; i < tr->n; i++) {
            trace_fmt_seconds(a, sizeof a, tr->t_ns[i]);
            fprintf(f, "%s %.12g\n", a, tr->rate_bps[i] / 1e6);
        }
        trace_fmt_seconds(a, sizeof a, tr->period_ns);
        fprintf(f, "end %s\n", a);
    } else if (fmt == MB_TRACE_FMT_TWOCOL) {
        /* sample i is the rate over (t[i-1], t[i]]: each segment written at
         * its end. The reader gives the first sample an interval as long as
         * the second's, so a first segment of another length (or a lone
         * one) is written as two halves. */
        int64_t e0 = tr->n > 1 ? tr->t_ns[1] : tr->period_ns;
        int64_t len1 = tr->n > 1 ? (tr->n > 2 ? tr->t_ns[2] : tr->period_ns) - e0 : 1000000000LL;
        if (e0 != len1) {
            trace_fmt_seconds(a, sizeof a, e0 / 2);
            fprintf(f, "%s\t%.12g\n", a, tr->rate_bps[0] / 1e6);
        }
        for (size_t i = 0; i < tr->n; i++) {
            trace_fmt_seconds(a, sizeof a, i + 1 < tr->n ? tr->t_ns[i + 1] : tr->period_ns);
            fprintf(f, "%s\t%.12g\n", a, tr->rate_bps[i] / 1e6);
        }
    } else { /* METS: one value per second, already binned to 1 s */
        for (size_t i = 0; i < tr->n; i++)
            fprintf(f, "%.6g,Mbits/sec\n", tr->rate_bps[i] / 1e6);
    }
}

/* Rates to Mahimahi opportunities: one stamp each time the cumulative
 * capacity passes another 1500 bytes, at the millisecond it is reached. */
static int write_mahimahi(const mb_trace *tr, FILE *f, char *err, size_t errlen, const char *path)
{
    double total = mb_trace_capacity_ns(tr, 0, tr->period_ns, 0);
    if (total < MAHIMAHI_PACKET_BYTES)
        return fail(err, errlen, "%s: the trace carries less than one packet; Mahimahi cannot express it", path);
    long long period_ms = (tr->period_ns + 500000) / 1000000;
    if (period_ms <= 0)
        return fail(err, errlen, "%s: trace shorter than 1 ms", path);
    double cum = 0, next = MAHIMAHI_PACKET_BYTES;
    long long last = -1, count = 0;
    long long total_opps = (long long)floor(total / MAHIMAHI_PACKET_BYTES);
    for (long long ms = 0; ms < period_ms && count < total_opps; ms++) {
        cum += mb_trace_capacity_ns(tr, ms * 1000000, (ms + 1) * 1000000, 0);
        while (cum + 1e-6 >= next && count < total_opps) {
            /* the final opportunity is stamped at the period, so the file loops with the right length */
            long long stamp = count == total_opps - 1 ? period_ms : ms + 1;
            fprintf(f, "%lld\n", stamp);
            last = stamp;
            next += MAHIMAHI_PACKET_BYTES;
            count++;
        }
    }
    if (last != period_ms && count != total_opps)
        fprintf(f, "%lld\n", period_ms);
    return 0;
}

int mb_trace_write(const mb_trace *tr, const char *path, mb_trace_format fmt, double bin_s, char *err,
                   size_t errlen)
{
    if (fmt == MB_TRACE_FMT_AUTO)
        fmt = MB_TRACE_FMT_NATIVE;
    if (fmt == MB_TRACE_FMT_CSV)
        return fail(err, errlen, "%s: csv is an import format; write native, twocol, mets or mahimahi", path);
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
        return fail(err, errlen, "%s: cannot bin the trace (bin shorter than 1 ns, or too many bins)", path);
    FILE *f = !strcmp(path, "-") ? stdout : fopen(path, "w");
    if (!f) {
        mb_trace_free(tmp);
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    }
    int rc = 0;
    if (fmt == MB_TRACE_FMT_MAHIMAHI) {
        if (src->kind == MB_TRACE_OPPORTUNITIES) {
            for (size_t i = 0; i < src->n; i++)
                fprintf(f, "%lld\n", (long long)((src->t_ns[i] + 500000) / 1000000));
        } else {
            rc = write_mahimahi(src, f, err, errlen, path);
        }
    } else {
        write_rates(src, f, fmt);
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
