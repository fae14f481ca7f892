/* Per-second throughput CSV logs (docs/traces.md, "csv"): a header row, a
 * timestamp column (the first unless time_column= names one) and a rate
 * column (column=, in unit=), as in public 5G/LTE drive-test logs, e.g.
 *   Timestamp,Longitude,Latitude,...,DL_bitrate,UL_bitrate,...
 *   2019.12.16_11.34.13,...,52340,1203,...
 * Rows are put in the second their timestamp falls in. Rows sharing a
 * second are merged by the duplicate rule (mean by default), seconds no row
 * covers are filled by the gap rule (the previous second's rate by
 * default), rows without a value (empty, "-", NA, NaN, null) are skipped and
 * counted. The trace is one segment a second. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trace_read.h"

#define fail trace_fail
#define MAX_COLS 512

/* Split a line in place at sep, honouring "double quoted" fields (with ""
 * for a quote). Returns the number of fields (at most max), -1 on an
 * unterminated quote. */
static int split_fields(char *line, char sep, char **out, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return n;
        while ((*p == ' ' || *p == '\t') && *p != sep) /* leading blanks (unless they separate) */
            p++;
        char *w = p;
        out[n++] = w;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (*p && *p != sep)
                p++;
        } else {
            while (*p && *p != sep)
                w = ++p;
        }
        int more = *p == sep;
        *w = 0;
        trace_trim(out[n - 1]);
        if (!more)
            return n;
        p++;
    }
}

static char pick_sep(const char *line)
{
    int commas = 0, semis = 0, tabs = 0;
    for (const char *p = line; *p; p++)
        commas += *p == ',', semis += *p == ';', tabs += *p == '\t';
    if (commas)
        return ',';
    return semis ? ';' : tabs ? '\t' : 0;
}

static int is_number(const char *s)
{
    char *end;
    if (!*s)
        return 0;
    strtod(s, &end);
    return *end == 0;
}

int trace_csv_looks_like_header(const char *line)
{
    char sep = pick_sep(line);
    if (!sep)
        return 0;
    char buf[TRACE_MAX_LINE], *f[MAX_COLS];
    snprintf(buf, sizeof buf, "%s", line);
    int n = split_fields(buf, sep, f, MAX_COLS);
    if (n < 2)
        return 0;
    for (int i = 0; i < n; i++)
        if (*f[i] && !is_number(f[i]) && (isalpha((unsigned char)*f[i]) || *f[i] == '_'))
            return 1;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* One group of n digits (n_min..n_max of them). */
static int digits(const char **p, int n_min, int n_max, int *out)
{
    int v = 0, n = 0;
    while (isdigit((unsigned char)**p) && n < n_max) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n < n_min || isdigit((unsigned char)**p))
        return -1;
    *out = v;
    return 0;
}

/* A date-time: YYYY?MM?DD?hh?mm?ss with any one separator between the
 * groups ("2019.12.16_11.34.13", "2019-12-16 11:34:13",
 * "2019-12-16T11:34:13.250Z", "2019/12/16 11:34:13"), an optional fraction
 * of a second and an optional zone (Z, +hh:mm, -hhmm). Local times are
 * taken as they are written: only differences matter. */
static int parse_datetime(const char *s, int64_t *ns)
{
    int v[6];
    const char *p = s;
    static const int lo[6] = {4, 1, 1, 1, 1, 1}, hi[6] = {4, 2, 2, 2, 2, 2};
    for (int i = 0; i < 6; i++) {
        if (i && (!*p || isdigit((unsigned char)*p)))
            return -1;
        if (i)
            p++;
        if (digits(&p, lo[i], hi[i], &v[i]))
            return -1;
    }
    if (v[0] < 1970 || v[0] > 2099 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 ||
        v[5] > 60)
        return -1;
    int64_t frac = 0;
    if ((*p == '.' || *p == ',') && isdigit((unsigned char)p[1])) {
        int64_t scale = 1000000000LL;
        for (p++; isdigit((unsigned char)*p); p++)
            if (scale >= 10) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
    }
    int64_t off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, h, m = 0;
        if (digits(&p, 2, 2, &h))
            return -1;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, 2, &m))
            return -1;
        off = sign * (h * 3600 + m * 60);
    }
    if (*p)
        return -1;
    int64_t sec = days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5] - off;
    if (sec < 0)
        return -1;
    *ns = sec * 1000000000LL + frac;
    return 0;
}

/* A unit in the column's name: "rate (kbit/s)", "rate [Mbit/s]". */
static int unit_from_name(const char *name, double *mult)
{
    const char *o = strpbrk(name, "([");
    if (!o)
        return -1;
    char u[32];
    const char *c = strchr(o, *o == '(' ? ')' : ']');
    size_t n = c ? (size_t)(c - o - 1) : 0;
    if (!c || n == 0 || n >= sizeof u)
        return -1;
    memcpy(u, o + 1, n);
    u[n] = 0;
    return mb_throughput_unit(trace_trim(u), mult, NULL, 0);
}

/* Column index of name: exact, then case-insensitive, then a 1-based number. */
static int find_col(char **f, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i], name))
            return i;
    for (int i = 0; i < n; i++)
        if (!strcasecmp(f[i], name))
            return i;
    char *end;
    long k = strtol(name, &end, 10);
    if (!*end && end != name && k >= 1 && k <= n)
        return (int)k - 1;
    return -1;
}

static void list_cols(char *buf, size_t len, char **f, int n)
{
    buf[0] = 0;
    for (int i = 0; i < n && strlen(buf) + 8 < len; i++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "", f[i]);
}

static int csv_header(trace_reader *rd, char *p)
{
    trace_csv *c = &rd->csv;
    char *f[MAX_COLS], cols[1024];
    c->sep = pick_sep(p);
    int n = c->sep ? split_fields(p, c->sep, f, MAX_COLS) : 0;
    if (n < 2)
        return fail(rd->err, rd->errlen, "%s:%d: a CSV log starts with a header row of at least two column names",
                    rd->path, rd->line);
    c->ncols = n;
    list_cols(cols, sizeof cols, f, n);
    c->time_col = rd->src.time_column[0] ? find_col(f, n, rd->src.time_column) : 0;
    if (c->time_col < 0)
        return fail(rd->err, rd->errlen, "%s:%d: no timestamp column '%s' (columns: %s)", rd->path, rd->line,
                    rd->src.time_column, cols);
    if (rd->src.column[0])
        c->rate_col = find_col(f, n, rd->src.column);
    else if (n == 2)
        c->rate_col = 1 - c->time_col;
    else
        return fail(rd->err, rd->errlen, "%s:%d: which column holds the rate? give --column (column=) NAME; columns: %s",
                    rd->path, rd->line, cols);
    if (c->rate_col < 0)
        return fail(rd->err, rd->errlen, "%s:%d: no column '%s' (columns: %s)", rd->path, rd->line, rd->src.column,
                    cols);
    if (c->rate_col == c->time_col)
        return fail(rd->err, rd->errlen, "%s:%d: column '%s' is the timestamp column", rd->path, rd->line,
                    f[c->rate_col]);
    snprintf(c->rate_name, sizeof c->rate_name, "%s", f[c->rate_col]);
    c->unit_bps = rd->src.unit_bps;
    if (c->unit_bps <= 0 && unit_from_name(f[c->rate_col], &c->unit_bps))
        return fail(rd->err, rd->errlen,
                    "%s:%d: in what unit is column '%s'? give --unit (unit=), e.g. kbit/s or Mbit/s", rd->path,
                    rd->line, f[c->rate_col]);
    c->header_seen = 1;
    return 0;
}

static int missing(const char *v)
{
    return !*v || !strcmp(v, "-") || !strcasecmp(v, "na") || !strcasecmp(v, "n/a") || !strcasecmp(v, "nan") ||
           !strcasecmp(v, "null") || !strcasecmp(v, "none");
}

/* A row's timestamp: a number in time_unit (default seconds) or a date-time. */
static int row_time(trace_reader *rd, const char *v, int64_t *t)
{
    trace_csv *c = &rd->csv;
    int64_t unit = rd->src.time_unit_ns > 0 ? rd->src.time_unit_ns : 1000000000LL;
    if (c->numeric_time != 0 && !trace_parse_ns_max(v, unit, TRACE_MAX_ABS_NS, t)) {
        c->numeric_time = 1;
        return 0;
    }
    if (c->numeric_time != 1 && !parse_datetime(v, t)) {
        c->numeric_time = 0;
        return 0;
    }
    return fail(rd->err, rd->errlen,
                "%s:%d: timestamp '%.40s' is not %s (seconds or --time-unit ms|us|ns, or a date-time such as "
                "2019.12.16_11.34.13 or 2019-12-16T11:34:13Z)",
                rd->path, rd->line, v,
                c->numeric_time == 1 ? "a non-negative number like the rows above"
                : c->numeric_time == 0 ? "a date-time like the rows above"
                                       : "a timestamp");
}

int trace_csv_line(trace_reader *rd, char *p)
{
    trace_csv *c = &rd->csv;
    if (!c->header_seen)
        return csv_header(rd, p);
    char *f[MAX_COLS];
    int n = split_fields(p, c->sep, f, MAX_COLS);
    if (n < 0)
        return fail(rd->err, rd->errlen, "%s:%d: unterminated quote", rd->path, rd->line);
    if (n <= c->time_col || n <= c->rate_col)
        return fail(rd->err, rd->errlen, "%s:%d: %d fields, the header has %d", rd->path, rd->line, n, c->ncols);
    int64_t t;
    if (row_time(rd, f[c->time_col], &t))
        return -1;
    if (rd->s.n && t < rd->s.t[rd->s.n - 1])
        return fail(rd->err, rd->errlen, "%s:%d: timestamp '%s' is before the previous row's", rd->path, rd->line,
                    f[c->time_col]);
    if (rd->s.n && rd->src.dup == MB_TRACE_DUP_ERROR &&
        t / 1000000000LL == rd->s.t[rd->s.n - 1] / 1000000000LL)
        return fail(rd->err, rd->errlen, "%s:%d: a second row in the same second (line %d) and duplicates=error",
                    rd->path, rd->line, rd->s.line[rd->s.n - 1]);
    const char *v = f[c->rate_col];
    double r;
    char *end;
    if (missing(v)) {
        rd->n_missing++;
        return 0;
    }
    r = strtod(v, &end);
    if (*end || !isfinite(r) || r < 0)
        return fail(rd->err, rd->errlen, "%s:%d: %s '%.40s' is not a non-negative number", rd->path, rd->line,
                    c->rate_name, v);
    if (r > TRACE_MAX_RATE_BPS / c->unit_bps)
        return fail(rd->err, rd->errlen, "%s:%d: %s %g exceeds the limit of %g Mbit/s", rd->path, rd->line,
                    c->rate_name, r, TRACE_MAX_RATE_BPS / 1e6);
    if (trace_push(&rd->s, t, r * c->unit_bps, rd->line))
        return fail(rd->err, rd->errlen, "%s:%d: too many rows or out of memory", rd->path, rd->line);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Numeric timestamps more than a minute apart in a per-second log are
 * almost surely milliseconds read as seconds. */
static int check_spacing(trace_reader *rd)
{
    trace_samples *s = &rd->s;
    if (rd->csv.numeric_time != 1 || rd->src.time_unit_ns > 0 || s->n < 3)
        return 0;
    int64_t *d = malloc((s->n - 1) * sizeof *d);
    if (!d)
        return fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
    for (size_t i = 1; i < s->n; i++)
        d[i - 1] = s->t[i] - s->t[i - 1];
    qsort(d, s->n - 1, sizeof *d, cmp_i64);
    int64_t med = d[(s->n - 1) / 2];
    free(d);
    if (med > 60 * 1000000000LL)
        return fail(rd->err, rd->errlen,
                    "%s: rows are a median %lld s apart: are the timestamps milliseconds? (give --time-unit ms, or "
                    "time_unit=ms in a link spec)",
                    rd->path, (long long)(med / 1000000000LL));
    return 0;
}

/* One value per second from first to last (gaps filled by the rule). */
typedef struct per_second {
    double *r;
    size_t n;
    long dups, gaps;
} per_second;

static double merge(const trace_samples *s, size_t i, size_t j, int rule)
{
    if (rule == MB_TRACE_DUP_LAST)
        return s->r[j - 1];
    if (rule == MB_TRACE_DUP_FIRST)
        return s->r[i];
    double sum = 0;
    for (size_t k = i; k < j; k++)
        sum += s->r[k];
    return sum / (double)(j - i);
}

static int fill_seconds(trace_reader *rd, per_second *ps)
{
    trace_samples *s = &rd->s;
    int64_t first = s->t[0] / 1000000000LL, last = s->t[s->n - 1] / 1000000000LL;
    if (last - first >= TRACE_MAX_SECONDS)
        return fail(rd->err, rd->errlen, "%s: the log spans more than %lld s", rd->path, (long long)TRACE_MAX_SECONDS);
    ps->n = (size_t)(last - first + 1);
    if (ps->n > (size_t)TRACE_MAX_SAMPLES)
        return fail(rd->err, rd->errlen, "%s: the log spans %zu s: more than %d one-second segments", rd->path, ps->n,
                    TRACE_MAX_SAMPLES);
    ps->r = malloc(ps->n * sizeof *ps->r);
    if (!ps->r)
        return fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
    int64_t prev_sec = first - 1;
    for (size_t i = 0; i < s->n;) {
        int64_t sec = s->t[i] / 1000000000LL;
        size_t j = i;
        while (j < s->n && s->t[j] / 1000000000LL == sec)
            j++;
        double v = merge(s, i, j, rd->src.dup);
        ps->dups += (long)(j - i - 1);
        int64_t gap = sec - prev_sec - 1;
        if (gap > 0 && rd->src.gap == MB_TRACE_GAP_ERROR)
            return fail(rd->err, rd->errlen, "%s:%d: %lld second%s without a row before this one, and gaps=error",
                        rd->path, s->line[i], (long long)gap, gap > 1 ? "s" : "");
        for (int64_t k = prev_sec + 1; k < sec; k++)
            ps->r[k - first] = rd->src.gap == MB_TRACE_GAP_ZERO   ? 0
                               : rd->src.gap == MB_TRACE_GAP_NEXT ? v
                                                                  : ps->r[prev_sec - first];
        ps->gaps += gap > 0 ? (long)gap : 0;
        ps->r[sec - first] = v;
        prev_sec = sec;
        i = j;
    }
    return 0;
}

mb_trace *trace_csv_build(trace_reader *rd)
{
    trace_samples *s = &rd->s;
    per_second ps = {0};
    if (check_spacing(rd) || fill_seconds(rd, &ps)) {
        free(ps.r);
        return NULL;
    }
    int64_t *t = malloc(ps.n * sizeof *t);
    mb_trace *tr = NULL;
    if (t) {
        for (size_t i = 0; i < ps.n; i++)
            t[i] = (int64_t)i * 1000000000LL;
        tr = mb_trace_new_rates(ps.n, t, ps.r, (int64_t)ps.n * 1000000000LL);
    }
    free(t);
    free(ps.r);
    if (!tr) {
        fail(rd->err, rd->errlen, "%s: out of memory", rd->path);
        return NULL;
    }
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += s->r[i];
    tr->sample_mean_bps = sum / (double)s->n; /* the plain mean of the rows with a value */
    tr->n_rows = (long)s->n;
    tr->n_duplicates = ps.dups;
    tr->n_gap_seconds = ps.gaps;
    return tr;
}
