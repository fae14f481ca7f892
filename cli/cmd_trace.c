/* mecbed trace gen|stats|convert: make, inspect and convert link traces. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "commands.h"
#include "mecbed/linkspec.h"
#include "mecbed/trace.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed trace gen KIND [options] -o FILE [--format FMT]\n"
            "       mecbed trace stats FILE... [IMPORT OPTIONS] [--window TIME] [--json]\n"
            "       mecbed trace convert IN -o OUT --to FMT [IMPORT OPTIONS] [--bin TIME]\n"
            "\n"
            "Formats (FMT): native, mahimahi, twocol (seconds Mbit/s), mets (value,unit per second),\n"
            "csv (per-second throughput log with a header row; read only). See docs/traces.md.\n"
            "Import options (also link-spec keys: trace=F,format=csv,column=DL_bitrate,unit=kbit/s):\n"
            "  --format FMT (--from)   auto (default: detected from the content, and said so), or a format\n"
            "  --column NAME           csv: the rate column (name or 1-based number; default: the second\n"
            "                          of two columns)\n"
            "  --unit U                csv: its unit: bit/s, kbit/s, Mbit/s, Gbit/s, kbps, Mbps, B/s, kB/s,\n"
            "                          MB/s (default: from the column name, e.g. 'rate (Mbit/s)')\n"
            "  --time-column NAME      csv: the timestamp column (default: the first)\n"
            "  --time-unit s|ms|us|ns  csv: unit of numeric timestamps (default s; date-times such as\n"
            "                          2019.12.16_11.34.13 or 2019-12-16T11:34:13Z are read as such)\n"
            "  --duplicates mean|last|first|error   csv rows in one second, twocol samples at one time\n"
            "                          (default mean)\n"
            "  --gaps hold|next|zero|error   csv seconds without a row: the previous second's rate\n"
            "                          (default), the next row's, no capacity, or refuse the file\n"
            "\n"
            "gen KIND (rates as in link specs: 10mbit, 500kbit; times: 100ms, 2s):\n"
            "  constant --rate R\n"
            "  steps    --rates R1,R2,... --step T        each rate for T, in turn\n"
            "  onoff    --rate R --on T --off T           outages of length T\n"
            "  markov   --good R --bad R --good-dwell T --bad-dwell T [--dt T]\n"
            "  walk     --min R --max R --sigma R [--rate START] [--dt T]   bounded random walk\n"
            "  5g       [--min R --max R --sigma R --bad R --good-dwell T --bad-dwell T --off T]\n"
            "           5G NR (a walk within min..max, default 50..900 Mbit/s, sigma (max-min)/15 per dt)\n"
            "           with LTE fallback (--bad, default 30 Mbit/s +-50 %%), mean dwell times on NR and LTE\n"
            "           (default 10 s, 2 s), --off without capacity at each switch (default 0)\n"
            "  common:  --duration T (required) --seed N (default 1) --dt T (segment, default 100ms)\n"
            "\n"
            "stats: length, mean (time-weighted) and the plain mean of the samples, percentiles of the\n"
            "rate in --window windows (default 1s), outage time (zero capacity for >= 100 ms).\n");
}

/* Rates and times use the link-spec grammar, so the CLI and specs agree. */
static int get_rate(const char *v, double *out)
{
    char text[128], err[256];
    mb_link_spec s;
    snprintf(text, sizeof text, "rate=%s", v);
    if (mb_linkspec_parse(text, &s, err, sizeof err)) {
        fprintf(stderr, "mecbed trace: %s\n", err);
        return -1;
    }
    *out = s.up.rate_bps;
    return 0;
}

/* Like get_rate, but 0 (with any rate unit) is allowed: an outage state. */
static int get_rate0(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end != v && x == 0) {
        char one[64];
        snprintf(one, sizeof one, "1%s", end);
        if (get_rate(one, out))
            return -1;
        *out = 0;
        return 0;
    }
    return get_rate(v, out);
}

static int get_time(const char *v, double *out)
{
    char text[128], err[256];
    mb_link_spec s;
    snprintf(text, sizeof text, "delay=%s", v);
    if (mb_linkspec_parse(text, &s, err, sizeof err)) {
        fprintf(stderr, "mecbed trace: %s\n", err);
        return -1;
    }
    *out = s.up.delay_s;
    return 0;
}

static int get_format(const char *v, mb_trace_format *f)
{
    int x = mb_trace_format_parse(v);
    if (x < 0) {
        fprintf(stderr, "mecbed trace: unknown format '%s' (%s)\n", v, mb_trace_format_list());
        return -1;
    }
    *f = (mb_trace_format)x;
    return 0;
}

/* An import option into src, under its link-spec key. */
static int get_src(mb_trace_src *src, const char *key, const char *v)
{
    char err[300];
    if (mb_trace_src_set(src, key, v, err, sizeof err)) {
        fprintf(stderr, "mecbed trace: --%s\n", err);
        return -1;
    }
    return 0;
}

enum {
    O_FORMAT = 1000, O_WINDOW, O_JSON, O_TO, O_FROM, O_BIN, O_DURATION, O_SEED, O_RATE, O_RATES, O_STEP, O_ON,
    O_OFF, O_GOOD, O_BAD, O_GOOD_DWELL, O_BAD_DWELL, O_MIN, O_MAX, O_SIGMA, O_DT, O_COLUMN, O_UNIT, O_TIME_COLUMN,
    O_TIME_UNIT, O_DUPLICATES, O_GAPS
};

static const struct option opts[] = {
    {"help", no_argument, 0, 'h'},      {"output", required_argument, 0, 'o'},
    {"format", required_argument, 0, O_FORMAT}, {"window", required_argument, 0, O_WINDOW},
    {"json", no_argument, 0, O_JSON},   {"to", required_argument, 0, O_TO},
    {"from", required_argument, 0, O_FROM}, {"bin", required_argument, 0, O_BIN},
    {"duration", required_argument, 0, O_DURATION}, {"seed", required_argument, 0, O_SEED},
    {"rate", required_argument, 0, O_RATE}, {"rates", required_argument, 0, O_RATES},
    {"step", required_argument, 0, O_STEP}, {"on", required_argument, 0, O_ON},
    {"off", required_argument, 0, O_OFF}, {"good", required_argument, 0, O_GOOD},
    {"bad", required_argument, 0, O_BAD}, {"good-dwell", required_argument, 0, O_GOOD_DWELL},
    {"bad-dwell", required_argument, 0, O_BAD_DWELL}, {"min", required_argument, 0, O_MIN},
    {"max", required_argument, 0, O_MAX}, {"sigma", required_argument, 0, O_SIGMA},
    {"dt", required_argument, 0, O_DT},  {"column", required_argument, 0, O_COLUMN},
    {"unit", required_argument, 0, O_UNIT}, {"time-column", required_argument, 0, O_TIME_COLUMN},
    {"time-unit", required_argument, 0, O_TIME_UNIT}, {"duplicates", required_argument, 0, O_DUPLICATES},
    {"gaps", required_argument, 0, O_GAPS}, {0, 0, 0, 0},
};

static void print_stats(const char *path, const mb_trace *tr, const mb_trace_stats *s, int json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddStringToObject(o, "format", mb_trace_format_name(tr->format));
        cJSON_AddBoolToObject(o, "format_auto_detected", tr->auto_detected);
        cJSON_AddStringToObject(o, "kind", tr->kind == MB_TRACE_RATES ? "rates" : "opportunities");
        cJSON_AddNumberToObject(o, "samples", (double)s->n_samples);
        cJSON_AddNumberToObject(o, "duration_s", s->duration_s);
        cJSON_AddNumberToObject(o, "mean_mbps", s->mean_bps / 1e6);
        cJSON_AddNumberToObject(o, "sample_mean_mbps", s->sample_mean_bps / 1e6);
        cJSON_AddNumberToObject(o, "window_s", s->window_s);
        cJSON_AddNumberToObject(o, "min_mbps", s->min_bps / 1e6);
        cJSON_AddNumberToObject(o, "p5_mbps", s->p5_bps / 1e6);
        cJSON_AddNumberToObject(o, "p25_mbps", s->p25_bps / 1e6);
        cJSON_AddNumberToObject(o, "p50_mbps", s->p50_bps / 1e6);
        cJSON_AddNumberToObject(o, "p75_mbps", s->p75_bps / 1e6);
        cJSON_AddNumberToObject(o, "p95_mbps", s->p95_bps / 1e6);
        cJSON_AddNumberToObject(o, "max_mbps", s->max_bps / 1e6);
        cJSON_AddNumberToObject(o, "outage_s", s->outage_s);
        cJSON_AddNumberToObject(o, "outages", s->n_outages);
        if (tr->format == MB_TRACE_FMT_CSV || tr->format == MB_TRACE_FMT_TWOCOL) {
            cJSON_AddNumberToObject(o, "rows", (double)tr->n_rows);
            cJSON_AddNumberToObject(o, "duplicate_rows", (double)tr->n_duplicates);
            cJSON_AddNumberToObject(o, "gap_seconds", (double)tr->n_gap_seconds);
            cJSON_AddNumberToObject(o, "missing_values", (double)tr->n_missing);
        }
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
        return;
    }
    printf("%s: %s trace%s, %zu %s, %.3f s\n", path, mb_trace_format_name(tr->format),
           tr->auto_detected ? " (auto-detected)" : "", s->n_samples,
           tr->kind == MB_TRACE_RATES ? "samples" : "delivery opportunities", s->duration_s);
    if (tr->format == MB_TRACE_FMT_CSV || tr->format == MB_TRACE_FMT_TWOCOL)
        printf("  %ld rows: %ld merged into a second/time already taken, %ld seconds without a row, %ld without a "
               "value\n",
               tr->n_rows, tr->n_duplicates, tr->n_gap_seconds, tr->n_missing);
    printf("  mean %.3f Mbit/s (time-weighted), %.3f Mbit/s (plain mean of samples)\n", s->mean_bps / 1e6,
           s->sample_mean_bps / 1e6);
    printf("  rate over %g s windows: min %.3f  p5 %.3f  p25 %.3f  p50 %.3f  p75 %.3f  p95 %.3f  max %.3f Mbit/s\n",
           s->window_s, s->min_bps / 1e6, s->p5_bps / 1e6, s->p25_bps / 1e6, s->p50_bps / 1e6, s->p75_bps / 1e6,
           s->p95_bps / 1e6, s->max_bps / 1e6);
    printf("  outages (no capacity for >= 100 ms): %d, %.3f s in all\n", s->n_outages, s->outage_s);
}

/* What the command line said. */
typedef struct trace_args {
    mb_trace_gen g;
    mb_trace_src src;
    const char *out;
    mb_trace_format fmt, to;
    double window, bin;
    int json, have_to;
} trace_args;

/* Rates for --rates: up to 32, 0 allowed. */
static int get_rates(const char *v, mb_trace_gen *g)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", v);
    g->n_rates = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (g->n_rates == 32) {
            fprintf(stderr, "mecbed trace: --rates: at most 32 values\n");
            return -1;
        }
        if (get_rate0(tok, &g->rates_bps[g->n_rates++]))
            return -1;
    }
    return 0;
}

/* One option; 0, 1 (--help printed) or -1. */
static int set_opt(trace_args *a, int c)
{
    mb_trace_gen *g = &a->g;
    switch (c) {
    case 'h': usage(stdout); return 1;
    case 'o': a->out = optarg; return 0;
    case O_FORMAT:
    case O_FROM: return get_format(optarg, &a->fmt) || get_src(&a->src, "format", optarg) ? -1 : 0;
    case O_COLUMN: return get_src(&a->src, "column", optarg);
    case O_UNIT: return get_src(&a->src, "unit", optarg);
    case O_TIME_COLUMN: return get_src(&a->src, "time_column", optarg);
    case O_TIME_UNIT: return get_src(&a->src, "time_unit", optarg);
    case O_DUPLICATES: return get_src(&a->src, "duplicates", optarg);
    case O_GAPS: return get_src(&a->src, "gaps", optarg);
    case O_TO: a->have_to = 1; return get_format(optarg, &a->to);
    case O_WINDOW: return get_time(optarg, &a->window);
    case O_BIN: return get_time(optarg, &a->bin);
    case O_JSON: a->json = 1; return 0;
    case O_DURATION: return get_time(optarg, &g->duration_s);
    case O_SEED: {
        char *end;
        g->seed = strtoull(optarg, &end, 0);
        if (*end || end == optarg) {
            fprintf(stderr, "mecbed trace: --seed %s: not an integer\n", optarg);
            return -1;
        }
        return 0;
    }
    case O_RATE: return get_rate(optarg, &g->rate_bps);
    case O_RATES: return get_rates(optarg, g);
    case O_STEP: return get_time(optarg, &g->step_s);
    case O_ON: return get_time(optarg, &g->on_s);
    case O_OFF: return get_time(optarg, &g->off_s);
    case O_GOOD: return get_rate0(optarg, &g->good_bps);
    case O_BAD: return get_rate0(optarg, &g->bad_bps);
    case O_GOOD_DWELL: return get_time(optarg, &g->good_dwell_s);
    case O_BAD_DWELL: return get_time(optarg, &g->bad_dwell_s);
    case O_MIN: return get_rate0(optarg, &g->min_bps);
    case O_MAX: return get_rate(optarg, &g->max_bps);
    case O_SIGMA: return get_rate(optarg, &g->sigma_bps);
    case O_DT: return get_time(optarg, &g->dt_s);
    default: usage(stderr); return -1;
    }
}

#define GEN_KINDS "constant, steps, onoff, markov, walk, 5g"

static int do_gen(trace_args *a, int nargs, char **args)
{
    char err[512];
    if (nargs != 1) {
        fprintf(stderr, "mecbed trace gen: give one KIND (" GEN_KINDS ")\n");
        return 2;
    }
    int kind = mb_trace_gen_kind_parse(args[0]);
    if (kind < 0) {
        fprintf(stderr, "mecbed trace gen: unknown kind '%s' (" GEN_KINDS ")\n", args[0]);
        return 2;
    }
    if (!a->out) {
        fprintf(stderr, "mecbed trace gen: -o FILE is required ('-' for standard output)\n");
        return 2;
    }
    a->g.kind = (mb_trace_gen_kind)kind;
    mb_trace *tr = mb_trace_generate(&a->g, err, sizeof err);
    if (!tr) {
        fprintf(stderr, "mecbed %s\n", err);
        return 1;
    }
    int rc = mb_trace_write(tr, a->out, a->fmt, a->bin, err, sizeof err);
    mb_trace_free(tr);
    if (rc) {
        fprintf(stderr, "mecbed trace gen: %s\n", err);
        return 1;
    }
    return 0;
}

static int do_stats(trace_args *a, int nargs, char **args)
{
    char err[512];
    if (nargs < 1) {
        fprintf(stderr, "mecbed trace stats: give a trace FILE\n");
        return 2;
    }
    int rc = 0;
    for (int i = 0; i < nargs; i++) {
        mb_trace *tr = mb_trace_read_src(args[i], &a->src, err, sizeof err);
        if (!tr) {
            fprintf(stderr, "mecbed trace stats: %s\n", err);
            rc = 1;
            continue;
        }
        mb_trace_stats s;
        if (mb_trace_stats_compute(tr, a->window, &s)) {
            fprintf(stderr, "mecbed trace stats: %s: cannot compute statistics\n", args[i]);
            rc = 1;
        } else {
            print_stats(args[i], tr, &s, a->json);
        }
        mb_trace_free(tr);
    }
    return rc;
}

static int do_convert(trace_args *a, int nargs, char **args)
{
    char err[512];
    if (nargs != 1 || !a->out || !a->have_to) {
        fprintf(stderr, "mecbed trace convert: usage: mecbed trace convert IN -o OUT --to FMT\n");
        return 2;
    }
    mb_trace *tr = mb_trace_read_src(args[0], &a->src, err, sizeof err);
    if (!tr) {
        fprintf(stderr, "mecbed trace convert: %s\n", err);
        return 1;
    }
    int rc = mb_trace_write(tr, a->out, a->to, a->bin, err, sizeof err);
    mb_trace_free(tr);
    if (rc) {
        fprintf(stderr, "mecbed trace convert: %s\n", err);
        return 1;
    }
    return 0;
}

int cmd_trace(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "gen") && strcmp(sub, "stats") && strcmp(sub, "convert")) {
        fprintf(stderr, "mecbed trace: unknown sub-command '%s' (gen, stats, convert)\n", sub);
        return 2;
    }
    trace_args a;
    memset(&a, 0, sizeof a);
    a.g.seed = 1;
    a.window = 1;
    a.bin = 0.1;
    int c;
    optind = 1;
    argc--, argv++; /* getopt sees "gen ..." as the program name and its arguments */
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        int rc = set_opt(&a, c);
        if (rc)
            return rc > 0 ? 0 : 2;
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (!strcmp(sub, "gen"))
        return do_gen(&a, nargs, args);
    if (!strcmp(sub, "stats"))
        return do_stats(&a, nargs, args);
    return do_convert(&a, nargs, args);
}
