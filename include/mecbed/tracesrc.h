/* mecbed: how a trace file is to be read (docs/traces.md). One grammar for
 * the importer options wherever a trace is read: `mecbed trace --format
 * csv --column DL_bitrate --unit kbit/s ...` and link specs
 * (`trace=F,format=csv,column=DL_bitrate,unit=kbit/s`, per direction with
 * up./down.). Core owns the grammar so that the link-spec parser can refuse
 * a bad value at once; traces/ (trace.h) reads files with it. */
#ifndef MECBED_TRACESRC_H
#define MECBED_TRACESRC_H

#include <stddef.h>
#include <stdint.h>

typedef enum mb_trace_format {
    MB_TRACE_FMT_AUTO = 0, /* reading: detect from the content (and say what was chosen) */
    MB_TRACE_FMT_NATIVE,   /* "# mecbed-trace 1", "start_s rate_mbit" lines, "end period_s" */
    MB_TRACE_FMT_MAHIMAHI, /* one integer ms timestamp per line, one 1500-byte opportunity each */
    MB_TRACE_FMT_TWOCOL,   /* "seconds Mbit/s" per line */
    MB_TRACE_FMT_METS,     /* "value,unit" per second (unit Mbits/sec, Kbits/sec, ...) */
    MB_TRACE_FMT_CSV,      /* per-second throughput log: header row, timestamp column, rate column */
    MB_TRACE_FMT_COUNT
} mb_trace_format;

/* Rows (CSV) or samples (twocol) that fall in the same second / at the same time. */
typedef enum mb_trace_dup {
    MB_TRACE_DUP_MEAN = 0, /* their mean (default) */
    MB_TRACE_DUP_LAST,     /* the last one wins */
    MB_TRACE_DUP_FIRST,    /* the first one wins */
    MB_TRACE_DUP_ERROR,    /* refuse the file */
} mb_trace_dup;

/* Seconds of a CSV log that no row covers. */
typedef enum mb_trace_gap {
    MB_TRACE_GAP_HOLD = 0, /* the previous second's rate continues (default) */
    MB_TRACE_GAP_NEXT,     /* the next row's rate covers them */
    MB_TRACE_GAP_ZERO,     /* no capacity (an outage) */
    MB_TRACE_GAP_ERROR,    /* refuse the file */
} mb_trace_gap;

#define MB_TRACE_NAME_LEN 64

typedef struct mb_trace_src {
    int format;                          /* mb_trace_format */
    char column[MB_TRACE_NAME_LEN];      /* csv: the rate column ("" = the second of two columns) */
    char time_column[MB_TRACE_NAME_LEN]; /* csv: the timestamp column ("" = the first column) */
    char unit[24];                       /* csv: the rate column's unit as written ("" = not given) */
    double unit_bps;                     /* bit/s per unit of the rate column (0 = not given) */
    char time_unit[8];                   /* csv: numeric timestamps in s (default), ms, us or ns */
    int64_t time_unit_ns;                /* ns per unit of a numeric timestamp (0 = 1e9) */
    int dup;                             /* mb_trace_dup */
    int gap;                             /* mb_trace_gap */
    unsigned given;                      /* bit i: key i of mb_trace_src_keys() was given */
} mb_trace_src;

/* The option keys, in order: format, column, unit, time_column, time_unit,
 * duplicates, gaps. */
#define MB_TRACE_SRC_NKEYS 7
const char *mb_trace_src_key(int i);
/* Index of key in the list above; -1 if it is not one. */
int mb_trace_src_find(const char *key);
/* Set a key from its text: 0, or -1 with err naming the key and the valid values. */
int mb_trace_src_set(mb_trace_src *s, const char *key, const char *val, char *err, size_t errlen);
/* The text of key i when given ("" when it has its default): round-trips through _set. */
void mb_trace_src_value(const mb_trace_src *s, int i, char *buf, size_t len);
/* Options that only a CSV log takes, given with another format: -1 with err. */
int mb_trace_src_check(const mb_trace_src *s, char *err, size_t errlen);

/* Format names ("auto", "native", "mahimahi", "twocol", "mets", "csv"); -1 if unknown. */
int mb_trace_format_parse(const char *name);
const char *mb_trace_format_name(mb_trace_format f);
/* "native, mahimahi, twocol, mets, csv": for messages. */
const char *mb_trace_format_list(void);

/* A throughput unit: bit/s, kbit/s, Mbit/s, Gbit/s (also kbit, Mbit, k, M
 * as in link specs; case-insensitive), or bytes spelled out: byte/s,
 * kbyte/s, Mbyte/s, Gbyte/s, B/s, kB/s, MB/s, GB/s. "bps", "kbps", "Mbps", "Gbps" are
 * accepted as bits (a dataset's kbps is kilobits); "kBps", "MBps" are
 * refused as ambiguous. 0, or -1 with err. */
int mb_throughput_unit(const char *u, double *bps_per_unit, char *err, size_t errlen);

#endif
