/* mecbed sweep merge: the output folders of one experiment's shards
 * (`sweep --shard I/N`, e.g. Slurm array tasks on several machines) into one
 * folder, as if the sweep had run in one piece: results.csv and results.json
 * in sweep order, frames.csv and trace.csv, meta.json naming the shards, and
 * the experiment's plots. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/readfile.h"
#include "mecbed/sweep.h"
#include "commands.h"
#include "sweep_files.h"

#define MAX_SHARDS 1024

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed sweep merge --out DIR [options] SHARD_DIR...\n\n"
            "Merge the output folders of one experiment's shards (mecbed sweep EXP.conf --shard I/N\n"
            "--out SHARD_DIR) into DIR: results.csv and results.json with the rows in sweep order (the\n"
            "same file an unsplit sweep writes, up to measured times), frames.csv, trace.csv, meta.json\n"
            "(listing the shards) and the experiment's plots. The experiment file named in the shards'\n"
            "meta.json must still be readable. Every shard 1..N must be there and complete, and no\n"
            "point may appear twice; --partial merges what there is (results.json then says\n"
            "\"complete\": false). Run logs stay in the shard folders.\n\n"
            "  --out DIR     where the merged files go (created; may be a parent of the shards)\n"
            "  --partial     allow missing or unfinished shards\n"
            "  --no-plots    skip gnuplot\n"
            "  --json        print a JSON summary (dir, shards, rows, complete) on stdout\n"
            "  -h, --help    this text\n");
}

/* One shard folder: what its meta.json says and its rows. */
typedef struct shard {
    const char *dir;
    char config[SW_STR];
    int quick, index, count, complete;
    cJSON *meta;
    sweep_table t;
} shard;

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int json_int(const cJSON *o, const char *k, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

/* A text file into a string (size-limited, regular files only), or NULL with err. */
static char *slurp(const char *path, char *err, size_t errlen)
{
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[65536];
    size_t k;
    while (m && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, k, m);
    fclose(f);
    if (!m || fclose(m)) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(buf);
        return NULL;
    }
    return buf;
}

static int shard_load(shard *s, char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", s->dir);
    char *text = slurp(path, err, errlen);
    if (!text)
        return -1;
    s->meta = cJSON_Parse(text);
    free(text);
    const char *cfg = s->meta ? json_str(s->meta, "config") : NULL;
    if (!cfg) {
        snprintf(err, errlen, "%s: not a sweep's meta.json (no \"config\")", path);
        return -1;
    }
    snprintf(s->config, sizeof s->config, "%s", cfg);
    s->quick = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->meta, "quick"));
    s->complete = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s->meta, "complete"));
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(s->meta, "shard");
    s->index = sh ? json_int(sh, "index", 0) : 1;
    s->count = sh ? json_int(sh, "count", 0) : 1;
    if (s->index < 1 || s->count < 1 || s->index > s->count) {
        snprintf(err, errlen, "%s: shard %d/%d is not a valid shard", path, s->index, s->count);
        return -1;
    }
    snprintf(path, sizeof path, "%s/results.csv", s->dir);
    int r = sweep_table_read(path, &s->t, err, errlen);
    if (r > 0)
        snprintf(err, errlen, "%s: missing (did the shard start?)", path);
    return r ? -1 : 0;
}

/* The shards belong together: one experiment file and size, the same count
 * and columns, each index once; all there and complete unless partial. */
static int shards_check(shard *s, int n, int partial, char *err, size_t errlen)
{
    char seen[MAX_SHARDS + 1] = {0};
    for (int i = 0; i < n; i++) {
        if (strcmp(s[i].config, s[0].config) || s[i].quick != s[0].quick || s[i].count != s[0].count) {
            snprintf(err, errlen, "%s and %s are not shards of one sweep (experiment %s%s, %d shards vs "
                     "%s%s, %d shards)", s[0].dir, s[i].dir, s[0].config, s[0].quick ? " --quick" : "",
                     s[0].count, s[i].config, s[i].quick ? " --quick" : "", s[i].count);
            return -1;
        }
        int same = s[i].t.n_cols == s[0].t.n_cols;
        for (int k = 0; same && k < s[0].t.n_cols; k++)
            same = !strcmp(s[i].t.cols[k], s[0].t.cols[k]);
        if (!same) {
            snprintf(err, errlen, "%s/results.csv has other columns than %s/results.csv", s[i].dir, s[0].dir);
            return -1;
        }
        if (s[i].count > MAX_SHARDS || seen[s[i].index]) {
            snprintf(err, errlen, "%s: shard %d/%d given twice", s[i].dir, s[i].index, s[i].count);
            return -1;
        }
        seen[s[i].index] = 1;
        if (!s[i].complete && !partial) {
            snprintf(err, errlen, "%s: shard %d/%d did not finish (resume it with the same --shard and "
                     "--out and --resume, or merge with --partial)", s[i].dir, s[i].index, s[i].count);
            return -1;
        }
    }
    if (partial)
        return 0;
    char missing[512] = "";
    for (int k = 1; k <= s[0].count && k <= MAX_SHARDS; k++)
        if (!seen[k] && strlen(missing) < sizeof missing - 16)
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%d", missing[0] ? ", " : "", k);
    if (missing[0]) {
        snprintf(err, errlen, "shard(s) %s of %d missing (give every shard folder, or --partial)", missing,
                 s[0].count);
        return -1;
    }
    return 0;
}

static long row_num(const sw_row *r, const char *col)
{
    return strtol(sw_row_get(r, col), NULL, 10);
}

static int by_point(const void *a, const void *b)
{
    const sw_row *x = a, *y = b;
    long d = row_num(x, "point") - row_num(y, "point");
    if (!d)
        d = row_num(x, "rep") - row_num(y, "rep");
    return d < 0 ? -1 : d > 0;
}

/* Every shard's rows in sweep order (point, then repetition); a key that
 * appears twice is an error. */
static int merge_rows(shard *s, int n, sweep_table *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < s[0].t.n_cols; k++)
        out->cols[out->n_cols++] = strdup(s[0].t.cols[k]);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < s[i].t.n_rows; r++)
            if (sweep_table_add(out, &s[i].t.rows[r])) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
    if (out->n_rows)
        qsort(out->rows, (size_t)out->n_rows, sizeof *out->rows, by_point);
    for (int r = 1; r < out->n_rows; r++)
        if (!strcmp(sw_row_get(&out->rows[r], "key"), sw_row_get(&out->rows[r - 1], "key"))) {
            snprintf(err, errlen, "point %s appears in two shards", sw_row_get(&out->rows[r], "key"));
            return -1;
        }
    return 0;
}

/* A line of frames.csv or trace.csv: its point and its place in the input,
 * so that sorting by point keeps each point's frames in order. */
typedef struct line {
    long point;
    size_t seq;
    char *text;
} line;

static int by_point_then_seq(const void *a, const void *b)
{
    const line *x = a, *y = b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* frames.csv or trace.csv: the shards' lines (first field: the point) in
 * point order, under one header. Absent in every shard: nothing written. */
static int merge_lines(shard *s, int n, const char *name, const char *out_dir, char *err, size_t errlen)
{
    line *lines = NULL;
    char *header = NULL;
    size_t n_lines = 0, cap = 0;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        char path[4200], e2[512];
        snprintf(path, sizeof path, "%s/%s", s[i].dir, name);
        if (access(path, F_OK))
            continue;
        char *text = slurp(path, e2, sizeof e2);
        if (!text) {
            snprintf(err, errlen, "%s", e2);
            rc = -1;
            break;
        }
        char *save = NULL;
        for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            if (!strncmp(l, "point,", 6)) {
                if (!header)
                    header = strdup(l);
                continue;
            }
            if (n_lines == cap) {
                cap = cap ? 2 * cap : 1024;
                line *nl = realloc(lines, cap * sizeof *nl);
                if (!nl) {
                    rc = -1;
                    break;
                }
                lines = nl;
            }
            lines[n_lines] = (line){strtol(l, NULL, 10), n_lines, strdup(l)};
            n_lines++;
        }
        free(text);
    }
    if (!rc && header) {
        qsort(lines, n_lines, sizeof *lines, by_point_then_seq);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", out_dir, name);
        FILE *f = fopen(path, "w");
        if (!f) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = -1;
        } else {
            fprintf(f, "%s\n", header);
            for (size_t k = 0; k < n_lines; k++)
                fprintf(f, "%s\n", lines[k].text);
            if (fclose(f)) {
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                rc = -1;
            }
        }
    }
    for (size_t k = 0; k < n_lines; k++)
        free(lines[k].text);
    free(lines);
    free(header);
    return rc;
}

/* meta.json of the merge: the first shard's facts, the list of shards. */
static cJSON *merged_meta(shard *s, int n, int argc, char **argv)
{
    cJSON *m = cJSON_Duplicate(s[0].meta, 1);
    cJSON_DeleteItemFromObject(m, "shard");
    cJSON_DeleteItemFromObject(m, "command");
    char cmd[4096] = "";
    for (int i = 0; i < argc; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "mecbed sweep ", argv[i]);
    cJSON_AddStringToObject(m, "command", cmd);
    cJSON *arr = cJSON_AddArrayToObject(m, "merged_shards");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dir", s[i].dir);
        cJSON_AddNumberToObject(o, "index", s[i].index);
        cJSON_AddNumberToObject(o, "count", s[i].count);
        cJSON_AddBoolToObject(o, "complete", s[i].complete);
        const char *host = json_str(s[i].meta, "host");
        cJSON_AddStringToObject(o, "host", host ? host : "");
        cJSON_AddItemToArray(arr, o);
    }
    return m;
}

typedef struct merge_opts {
    const char *out;
    int partial, no_plots, json;
} merge_opts;

static int parse(merge_opts *o, int argc, char **argv)
{
    enum { O_OUT = 256, O_PARTIAL, O_NOPLOTS, O_JSON };
    static const struct option opts[] = {{"out", required_argument, 0, O_OUT},
                                         {"partial", no_argument, 0, O_PARTIAL},
                                         {"no-plots", no_argument, 0, O_NOPLOTS},
                                         {"json", no_argument, 0, O_JSON},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_OUT: o->out = optarg; break;
        case O_PARTIAL: o->partial = 1; break;
        case O_NOPLOTS: o->no_plots = 1; break;
        case O_JSON: o->json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o->out || optind >= argc) {
        fprintf(stderr, "mecbed sweep merge: give --out DIR and at least one shard folder "
                        "(mecbed sweep merge --help)\n");
        return 2;
    }
    if (argc - optind > MAX_SHARDS) {
        fprintf(stderr, "mecbed sweep merge: at most %d shard folders\n", MAX_SHARDS);
        return 2;
    }
    return -1;
}

/* Everything after the shards are loaded and checked: rows, side files,
 * meta/results JSON and plots into o->out. */
static int write_merged(const merge_opts *o, shard *s, int n, int argc, char **argv, char *err, size_t errlen)
{
    sw_config cfg;
    if (sw_config_read(s[0].config, s[0].quick, &cfg, err, errlen))
        return -1;
    sweep_table t;
    int rc = merge_rows(s, n, &t, err, errlen);
    char csv[4200];
    snprintf(csv, sizeof csv, "%s/results.csv", o->out);
    if (!rc && sweep_mkdir_p(o->out)) {
        snprintf(err, errlen, "cannot create %s: %s", o->out, strerror(errno));
        rc = -1;
    }
    if (!rc)
        rc = sweep_table_write(&t, csv, err, errlen);
    if (!rc)
        rc = merge_lines(s, n, "frames.csv", o->out, err, errlen);
    if (!rc)
        rc = merge_lines(s, n, "trace.csv", o->out, err, errlen);
    int complete = 1, failed = 0;
    for (int i = 0; i < n; i++)
        complete &= s[i].complete;
    complete &= n == s[0].count;
    for (int r = 0; r < t.n_rows; r++)
        failed += strcmp(sw_row_get(&t.rows[r], "ok"), "1") != 0;
    if (!rc) {
        cJSON *meta = merged_meta(s, n, argc, argv);
        cJSON_AddNumberToObject(meta, "points_failed", failed);
        rc = sweep_write_json(&cfg, &t, meta, o->out, complete, err, errlen);
        cJSON_Delete(meta);
    }
    int plot_fail = !rc && !o->no_plots && cfg.n_plots ? sweep_run_plots(&cfg, o->out, s[0].quick) : 0;
    if (!rc) {
        fprintf(stderr, "mecbed sweep merge: %s: %d shards of %d, %d rows (%d failed)%s -> %s\n", cfg.name, n,
                s[0].count, t.n_rows, failed, complete ? "" : ", incomplete", o->out);
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "experiment", cfg.name);
            cJSON_AddStringToObject(j, "dir", o->out);
            cJSON_AddNumberToObject(j, "shards", n);
            cJSON_AddNumberToObject(j, "count", s[0].count);
            cJSON_AddNumberToObject(j, "rows", t.n_rows);
            cJSON_AddNumberToObject(j, "failed", failed);
            cJSON_AddBoolToObject(j, "complete", complete);
            cJSON_AddNumberToObject(j, "plots_failed", plot_fail);
            char *js = cJSON_PrintUnformatted(j);
            if (js)
                printf("%s\n", js);
            free(js);
            cJSON_Delete(j);
        }
    }
    sweep_table_free(&t);
    sw_config_free(&cfg);
    return rc;
}

int cmd_sweep_merge(int argc, char **argv)
{
    merge_opts o;
    int rc = parse(&o, argc, argv);
    if (rc >= 0)
        return rc;
    int n = argc - optind;
    shard *s = calloc((size_t)n, sizeof *s);
    if (!s)
        return 1;
    char err[16384] = "";
    rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        s[i].dir = argv[optind + i];
        rc = shard_load(&s[i], err, sizeof err);
    }
    if (!rc)
        rc = shards_check(s, n, o.partial, err, sizeof err);
    if (!rc)
        rc = write_merged(&o, s, n, argc, argv, err, sizeof err);
    if (rc)
        fprintf(stderr, "mecbed sweep merge: %s\n", err);
    for (int i = 0; i < n; i++) {
        cJSON_Delete(s[i].meta);
        sweep_table_free(&s[i].t);
    }
    free(s);
    return rc ? 1 : 0;
}
