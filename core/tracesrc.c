/* The trace importer options (include/mecbed/tracesrc.h, docs/traces.md):
 * one grammar for `mecbed trace` options and link-spec keys. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mecbed/tracesrc.h"

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

static const char *const fmt_names[MB_TRACE_FMT_COUNT] = {"auto", "native", "mahimahi", "twocol", "mets", "csv"};

int mb_trace_format_parse(const char *name)
{
    for (int i = 0; i < MB_TRACE_FMT_COUNT; i++)
        if (!strcmp(name, fmt_names[i]))
            return i;
    return -1;
}

const char *mb_trace_format_name(mb_trace_format f)
{
    return (unsigned)f < MB_TRACE_FMT_COUNT ? fmt_names[f] : "?";
}

const char *mb_trace_format_list(void)
{
    return "auto, native, mahimahi, twocol, mets, csv";
}

enum { K_FORMAT, K_COLUMN, K_UNIT, K_TIME_COLUMN, K_TIME_UNIT, K_DUP, K_GAP };
static const char *const keys[MB_TRACE_SRC_NKEYS] = {"format",    "column",     "unit", "time_column",
                                                     "time_unit", "duplicates", "gaps"};
static const char *const dup_names[] = {"mean", "last", "first", "error"};
static const char *const gap_names[] = {"hold", "next", "zero", "error"};

const char *mb_trace_src_key(int i)
{
    return i >= 0 && i < MB_TRACE_SRC_NKEYS ? keys[i] : NULL;
}

int mb_trace_src_find(const char *key)
{
    for (int i = 0; i < MB_TRACE_SRC_NKEYS; i++)
        if (!strcmp(key, keys[i]))
            return i;
    return -1;
}

int mb_throughput_unit(const char *u, double *mult, char *err, size_t errlen)
{
    static const struct { const char *name; double m; int exact_case; } units[] = {
        {"bit/s", 1, 0},    {"bit", 1, 0},       {"bps", 1, 0},        {"b/s", 1, 1},
        {"kbit/s", 1e3, 0}, {"kbit", 1e3, 0},    {"k", 1e3, 0},        {"kbps", 1e3, 0},   {"kb/s", 1e3, 1},
        {"Mbit/s", 1e6, 0}, {"Mbit", 1e6, 0},    {"M", 1e6, 0},        {"Mbps", 1e6, 0},   {"Mb/s", 1e6, 1},
        {"Gbit/s", 1e9, 0}, {"Gbit", 1e9, 0},    {"G", 1e9, 0},        {"Gbps", 1e9, 0},   {"Gb/s", 1e9, 1},
        {"byte/s", 8, 0},   {"kbyte/s", 8e3, 0}, {"Mbyte/s", 8e6, 0},  {"Gbyte/s", 8e9, 0},
        {"B/s", 8, 1},      {"kB/s", 8e3, 1},    {"KB/s", 8e3, 1},     {"MB/s", 8e6, 1},   {"GB/s", 8e9, 1},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (units[i].exact_case ? !strcmp(u, units[i].name) : !strcasecmp(u, units[i].name)) {
            /* "Bps" spellings (kBps, MBps) mean bytes to some and bits to others */
            if (!units[i].exact_case && strstr(u, "Bps"))
                break;
            *mult = units[i].m;
            return 0;
        }
    return fail(err, errlen,
                "unknown or ambiguous throughput unit '%s' (bit/s, kbit/s, Mbit/s, Gbit/s, kbps, Mbps; bytes: "
                "byte/s, kB/s, MB/s)",
                u);
}

static int set_name(char *dst, size_t len, const char *key, const char *val, char *err, size_t errlen)
{
    if (!*val)
        return fail(err, errlen, "%s=: empty column name", key);
    if (strlen(val) >= len)
        return fail(err, errlen, "%s=%.40s...: a column name has at most %zu characters", key, val, len - 1);
    for (const char *p = val; *p; p++)
        if (*p == ',' || *p == '\n' || !isprint((unsigned char)*p))
            return fail(err, errlen, "%s=%s: a column name cannot hold commas or control characters", key, val);
    snprintf(dst, len, "%s", val);
    return 0;
}

static int pick(const char *const *names, int n, const char *key, const char *val, int *out, char *err,
                size_t errlen)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(val, names[i])) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return fail(err, errlen, "%s=%s: unknown value (%s)", key, val, list);
}

int mb_trace_src_set(mb_trace_src *s, const char *key, const char *val, char *err, size_t errlen)
{
    int k = mb_trace_src_find(key);
    switch (k) {
    case K_FORMAT: {
        int f = mb_trace_format_parse(val);
        if (f < 0)
            return fail(err, errlen, "format=%s: unknown trace format (%s)", val, mb_trace_format_list());
        s->format = f;
        break;
    }
    case K_COLUMN:
        if (set_name(s->column, sizeof s->column, key, val, err, errlen))
            return -1;
        break;
    case K_TIME_COLUMN:
        if (set_name(s->time_column, sizeof s->time_column, key, val, err, errlen))
            return -1;
        break;
    case K_UNIT: {
        char e[256];
        if (strlen(val) >= sizeof s->unit || mb_throughput_unit(val, &s->unit_bps, e, sizeof e))
            return fail(err, errlen, "unit=%s: %s", val,
                        strlen(val) >= sizeof s->unit ? "too long" : e);
        snprintf(s->unit, sizeof s->unit, "%s", val);
        break;
    }
    case K_TIME_UNIT: {
        static const struct { const char *n; int64_t ns; } tu[] = {{"s", 1000000000}, {"ms", 1000000}, {"us", 1000},
                                                                   {"ns", 1}};
        int found = 0;
        for (size_t i = 0; i < 4; i++)
            if (!strcmp(val, tu[i].n)) {
                s->time_unit_ns = tu[i].ns;
                snprintf(s->time_unit, sizeof s->time_unit, "%s", tu[i].n);
                found = 1;
            }
        if (!found)
            return fail(err, errlen, "time_unit=%s: unknown unit of numeric timestamps (s, ms, us, ns)", val);
        break;
    }
    case K_DUP:
        if (pick(dup_names, 4, key, val, &s->dup, err, errlen))
            return -1;
        break;
    case K_GAP:
        if (pick(gap_names, 4, key, val, &s->gap, err, errlen))
            return -1;
        break;
    default: return fail(err, errlen, "unknown trace option '%s'", key);
    }
    s->given |= 1u << k;
    return 0;
}

void mb_trace_src_value(const mb_trace_src *s, int i, char *buf, size_t len)
{
    if (!len)
        return;
    buf[0] = 0;
    if (i < 0 || i >= MB_TRACE_SRC_NKEYS || !(s->given & (1u << i)))
        return;
    switch (i) {
    case K_FORMAT: snprintf(buf, len, "%s", mb_trace_format_name((mb_trace_format)s->format)); break;
    case K_COLUMN: snprintf(buf, len, "%s", s->column); break;
    case K_UNIT: snprintf(buf, len, "%s", s->unit); break;
    case K_TIME_COLUMN: snprintf(buf, len, "%s", s->time_column); break;
    case K_TIME_UNIT: snprintf(buf, len, "%s", s->time_unit); break;
    case K_DUP: snprintf(buf, len, "%s", dup_names[s->dup & 3]); break;
    case K_GAP: snprintf(buf, len, "%s", gap_names[s->gap & 3]); break;
    }
}

int mb_trace_src_check(const mb_trace_src *s, char *err, size_t errlen)
{
    if (s->format == MB_TRACE_FMT_AUTO || s->format == MB_TRACE_FMT_CSV)
        return 0;
    static const int csv_only[] = {K_COLUMN, K_UNIT, K_TIME_COLUMN, K_TIME_UNIT, K_GAP};
    for (size_t i = 0; i < sizeof csv_only / sizeof csv_only[0]; i++)
        if (s->given & (1u << csv_only[i]))
            return fail(err, errlen, "%s applies to format csv only (format is %s)", keys[csv_only[i]],
                        mb_trace_format_name((mb_trace_format)s->format));
    if ((s->given & (1u << K_DUP)) && s->format != MB_TRACE_FMT_TWOCOL)
        return fail(err, errlen, "duplicates applies to formats csv and twocol only (format is %s)",
                    mb_trace_format_name((mb_trace_format)s->format));
    return 0;
}
