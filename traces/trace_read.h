/* Private to traces/: the state of one trace file being read, shared by the
 * line-format readers (trace_io.c) and the CSV importer (trace_csv.c). */
#ifndef MECBED_TRACES_TRACE_READ_H
#define MECBED_TRACES_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/trace.h"

#define TRACE_MAX_LINE 4096
#define TRACE_MAX_SAMPLES 50000000
/* Bounds on what a trace may say: 10 Tbit/s and ~31 years. Beyond them a
 * value is a typo or an attack, and sums over a trace (its mean, the bits
 * sent by a time) would overflow to inf. */
#define TRACE_MAX_RATE_BPS 1e13
#define TRACE_MAX_SECONDS 1000000000LL

/* Growable arrays of samples: time (ns) and rate (bit/s), with the line each came from. */
typedef struct trace_samples {
    int64_t *t;
    double *r;
    int *line;
    size_t n, cap;
} trace_samples;

/* The CSV importer's view of the header. */
typedef struct trace_csv {
    int header_seen, ncols, time_col, rate_col;
    char sep;
    int numeric_time; /* 1: numbers in time_unit, 0: date-times; -1 not known yet */
    double unit_bps;
    char rate_name[256];
} trace_csv;

typedef struct trace_reader {
    const char *path;
    int line;
    mb_trace_format fmt;
    int auto_detected;
    mb_trace_src src;
    trace_samples s;
    long n_missing;
    int have_end, header_seen;
    int64_t end_ns; /* native: the 'end' line's length */
    trace_csv csv;
    char *err;
    size_t errlen;
} trace_reader;

int trace_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int trace_push(trace_samples *s, int64_t t, double r, int line);
/* A non-negative decimal number in units of unit_ns nanoseconds ("12",
 * "0.549999952316", "1.5e3") to ns: exact for plain decimals (rounded at
 * the ns), through a double for exponents. -1 if not a number, negative or
 * beyond TRACE_MAX_SECONDS. */
int trace_parse_ns(const char *s, int64_t unit_ns, int64_t *out);
/* The same with another bound (CSV logs: absolute Unix timestamps, up to 4e9 s). */
int trace_parse_ns_max(const char *s, int64_t unit_ns, int64_t max_ns, int64_t *out);
#define TRACE_MAX_ABS_NS 4000000000000000000LL
/* Write ns as exact decimal seconds ("12", "0.55", "1.000000001"). */
void trace_fmt_seconds(char *buf, size_t len, int64_t ns);
char *trace_trim(char *s);

/* CSV (trace_csv.c): one trimmed, non-empty line; then the trace. */
int trace_csv_line(trace_reader *rd, char *p);
mb_trace *trace_csv_build(trace_reader *rd);
/* Does this first line look like a CSV header (comma, ';' or tab separated
 * names, not all numbers)? */
int trace_csv_looks_like_header(const char *line);

#endif
