/* mecbed sweep: run an experiment file (experiments/NAME.conf) over its
 * models x policies x links x node types x repetitions, in plan mode (cost
 * model, in-process) or run mode (`mecbed run` per point), and write
 * results/NAME/<timestamp>/{results.csv,results.json,meta.json,frames.csv,
 * plots}. docs/experiments.md documents the file, the outputs and
 * `make regress`. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/link.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"
#include "mecbed/genplan.h"
#include "mecbed/sweep.h"
#include "commands.h"
#include "sweep_files.h"
#include "sweep_slurm.h"

static volatile int stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static const char *const base_cols[] = {
    "experiment", "point", "rep", "mode", "model", "ops", "policy", "variant", "link", "topology",
    "x", "x_unit", "node_types", "profile", "latency_ms", "energy_mj", "energy_system_mj", "radio_mj",
    "device_compute_ms", "bytes_up", "bytes_down", "bytes_backbone", "decision_us",
    "decision_us_min", "cut_value_ms", "device_ops", "server_ops", "split_ops", "cut_index",
    "cut_after", "plan_sig", "note", "measured_ms", "measured_mean_ms", "measured_p95_ms",
    "measured_energy_mj", "critical_path_ms", "rel_err", "energy_rel_err", "tdf", "host_scale",
    "calib_cpu_share", "calib_gflops_now", "calib_total_ms_now", "ok_frames", "failed_frames", "replans",
    "deadline_misses", "loadavg", "output_match", "ok", "error", "key", NULL};

/* Columns the regression compares (prefix m_ metrics too): predictions and
 * the chosen plan, never times measured on this machine. */
static const char *const check_num[] = {"latency_ms", "energy_mj", "energy_system_mj", "radio_mj",
                                        "bytes_up", "bytes_down", "bytes_backbone", "cut_value_ms",
                                        NULL};
static const char *const check_str[] = {"plan_sig", "cut_after", "ok", NULL};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed sweep EXPERIMENT.conf [options]\n"
            "       mecbed sweep merge --out DIR SHARD_DIR...   (see mecbed sweep merge --help)\n\n"
            "Run an experiment: every combination of its models, policies, links or topologies,\n"
            "node types, x values, variants and repetitions, in plan mode (the cost model) or run\n"
            "mode (`mecbed run` per point: emulated links, measured; needs root). Writes\n"
            "results/NAME/<UTC timestamp>/: results.csv (one row per point and repetition, rewritten\n"
            "atomically after each), results.json, meta.json, frames.csv (run mode, per frame) and\n"
            "the experiment's plots (gnuplot PNG and SVG). docs/experiments.md has the file format.\n\n"
            "  --quick              the experiment's [quick] size (a few minutes on 2 cores)\n"
            "  --out DIR            write into DIR instead of results/NAME/<timestamp>\n"
            "  --resume             continue the latest results/NAME/* (or --out DIR): points whose\n"
            "                       key is already in results.csv are skipped\n"
            "  --json               print a JSON summary (output dir, counts) on stdout\n"
            "  --node-types FILE    extra node types (replace shipped ones of the same name)\n"
            "                       (also $MECBED_SWEEP_NODE_TYPES)\n"
            "  --check BASE.csv     compare predictions, bytes and chosen plans with a baseline;\n"
            "                       exit 1 with a table of what moved beyond --tolerance\n"
            "  --tolerance R        relative tolerance of --check (default 1e-4)\n"
            "  --no-plots           skip gnuplot\n"
            "  --no-times           leave decision times empty (files that must be reproducible,\n"
            "                       such as the regression baseline)\n"
            "  --policy-plugin P    load a policy plugin (.so path, or a name on the plugin path)\n"
            "                       before the experiment's policy_plugins; a policy the\n"
            "                       experiment names that is not registered is loaded from\n"
            "                       NAME.so on the plugin path (mecbed policies)\n"
            "  --dry-run            list the points and exit\n"
            "  --shard I/N          run only shard I of N (every N-th point, from the I-th): for\n"
            "                       several machines; `mecbed sweep merge --out DIR SHARD_DIR...`\n"
            "                       puts the shards' folders together (mecbed sweep merge --help)\n"
            "  --slurm N            write a Slurm job array (N shards, one task each) and a merge job\n"
            "                       into the output folder's slurm/; --submit submits them with sbatch\n"
            "  -h, --help           this text\n");
}

/* ---------- regression check ---------- */

static int close_enough(const char *a, const char *b, double tol)
{
    if (!*a || !*b)
        return !*a == !*b;
    double x = strtod(a, NULL), y = strtod(b, NULL);
    if (x == y)
        return 1;
    return fabs(x - y) <= tol * fmax(fabs(x), fabs(y)) + 1e-9;
}

static int check_baseline(const sweep_table *t, const char *base_path, double tol, FILE *out)
{
    sweep_table b;
    char err[1024];
    int r = sweep_table_read(base_path, &b, err, sizeof err);
    if (r) {
        fprintf(out, "mecbed sweep: --check: %s\n", r > 0 ? "baseline not found" : err);
        if (r > 0)
            fprintf(out, "  (%s; make regress-update writes it)\n", base_path);
        return -1;
    }
    int moved = 0, shown = 0;
    const int max_shown = 60;
/* the table's header, before its first line */
#define CHECK_HEADER()                                                                             \
    do {                                                                                           \
        if (!shown)                                                                                \
            fprintf(out, "  %-60s %-16s %14s -> %s\n", "point (key)", "column", "baseline",        \
                    "now (change)");                                                               \
    } while (0)
    char cols[SW_MAX_COLS][64];
    int n_cols = 0;
    for (int i = 0; check_num[i]; i++)
        snprintf(cols[n_cols++], 64, "%s", check_num[i]);
    for (int i = 0; i < b.n_cols && n_cols < SW_MAX_COLS; i++)
        if (!strncmp(b.cols[i], "m_", 2) && !strstr(b.cols[i], "_us"))
            snprintf(cols[n_cols++], 64, "%s", b.cols[i]);
    for (int i = 0; i < b.n_rows; i++) {
        const char *key = sw_row_get(&b.rows[i], "key");
        const sw_row *now = NULL;
        for (int k = 0; k < t->n_rows && !now; k++)
            if (!strcmp(sw_row_get(&t->rows[k], "key"), key))
                now = &t->rows[k];
        if (!now) {
            CHECK_HEADER();
            if (shown++ < max_shown)
                fprintf(out, "  %-60s %-16s missing from this run\n", key, "");
            moved++;
            continue;
        }
        for (int k = 0; k < n_cols; k++) {
            const char *x = sw_row_get(&b.rows[i], cols[k]), *y = sw_row_get(now, cols[k]);
            if (close_enough(x, y, tol))
                continue;
            moved++;
            CHECK_HEADER();
            if (shown++ < max_shown) {
                double bx = strtod(x, NULL), by = strtod(y, NULL);
                fprintf(out, "  %-60s %-16s %14s -> %-14s", key, cols[k], x[0] ? x : "-", y[0] ? y : "-");
                if (bx != 0 && *x && *y)
                    fprintf(out, " (%+.3f%%)", (by - bx) / fabs(bx) * 100);
                fputc('\n', out);
            }
        }
        for (int k = 0; check_str[k]; k++) {
            const char *x = sw_row_get(&b.rows[i], check_str[k]), *y = sw_row_get(now, check_str[k]);
            if (!strcmp(x, y))
                continue;
            moved++;
            CHECK_HEADER();
            if (shown++ < max_shown)
                fprintf(out, "  %-60s %-16s %14s -> %s\n", key, check_str[k], x, y);
        }
    }
    for (int k = 0; k < t->n_rows; k++) {
        const char *key = sw_row_get(&t->rows[k], "key");
        int found = 0;
        for (int i = 0; i < b.n_rows && !found; i++)
            found = !strcmp(sw_row_get(&b.rows[i], "key"), key);
        if (!found) {
            moved++;
            CHECK_HEADER();
            if (shown++ < max_shown)
                fprintf(out, "  %-60s %-16s not in the baseline\n", key, "");
        }
    }
#undef CHECK_HEADER
    if (shown > max_shown)
        fprintf(out, "  ... and %d more\n", shown - max_shown);
    sweep_table_free(&b);
    return moved;
}

/* ---------- the command ---------- */

static void fmt_dur(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, len, "?");
    else if (s < 60)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* The newest run under parent of the same size (quick runs end in -quick). */
static int latest_dir(const char *parent, int quick, char *out, size_t len)
{
    DIR *d = opendir(parent);
    if (!d)
        return -1;
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, best) > 0 &&
            !quick == !(strlen(e->d_name) > 6 && !strcmp(e->d_name + strlen(e->d_name) - 6, "-quick")))
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    if (!best[0])
        return -1;
    snprintf(out, len, "%s/%s", parent, best);
    return 0;
}

/* What the command line asked for. */
typedef struct sweep_opts {
    int quick, resume, json, no_plots, dry, no_times;
    const char *out_dir, *check, *extra_types, *conf;
    double tol;
    int shard_i, shard_n; /* --shard I/N: 1 <= I <= N; 0/0 when not sharded */
    int slurm_n, submit;  /* --slurm N [--submit] */
    const char *plugins[SW_MAX_ITEMS]; /* --policy-plugin */
    int n_plugins;
} sweep_opts;

/* A sweep in progress: its configuration, points, table and counters. */
typedef struct sweep_state {
    sweep_opts o;
    sw_config *cfg;
    char dir[4096], topo_dir[4200], csv[4200], frames_path[4200], logs[4200];
    sw_point *pts;
    int n_pts;
    sweep_table t;
    char *frames_text;
    size_t frames_len;
    int n_done_before, n_todo, n_ok, n_fail, n_run;
    int n_shard_pts; /* points of this shard (all points when not sharded) */
    double t_start;
    int rc;
} sweep_state;

/* A policy_plugins item: a name on the plugin path, a path from the current
 * folder, or one relative to the experiment file's folder. */
static void plugin_item_path(const sw_config *cfg, const char *item, char *out, size_t len)
{
    snprintf(out, len, "%s", item);
    if (!strchr(item, '/') || item[0] == '/' || access(item, R_OK) == 0)
        return;
    const char *slash = strrchr(cfg->path, '/');
    if (slash)
        snprintf(out, len, "%.*s/%s", (int)(slash - cfg->path), cfg->path, item);
}

/* Load --policy-plugin and policy_plugins, then resolve every policy the
 * experiment names (auto-loading NAME.so from the plugin path), so a typo
 * fails here rather than as one failed row per point. 0, or -1 (printed). */
static int load_policies(const sw_config *cfg, const sweep_opts *o)
{
    char err[2048], path[1024];
    mb_policy_register_builtins();
    for (int i = 0; i < o->n_plugins + cfg->policy_plugins.n; i++) {
        const char *item = i < o->n_plugins ? o->plugins[i] : cfg->policy_plugins.v[i - o->n_plugins];
        plugin_item_path(cfg, item, path, sizeof path);
        if (mb_policy_load(path, NULL, err, sizeof err)) {
            fprintf(stderr, "mecbed sweep: %s%s\n", i < o->n_plugins ? "--policy-plugin: " : "policy_plugins: ",
                    err);
            return -1;
        }
    }
    for (int i = 0; i < cfg->policies.n; i++) {
        const char *p = cfg->policies.v[i] ? cfg->policies.v[i] : "";
        char name[64];
        size_t len = strcspn(p, ":");
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, p, len); /* (a %.*s snprintf here trips GCC's null check under ASan) */
        name[len] = 0;
        if (strchr(name, '{'))
            continue; /* the name itself varies with x: resolved per point */
        if (cfg->measure == SW_MEASURE_GENERATION) { /* generation policies (genplan.h) */
            mb_gen_policy_spec gs;
            if (!strchr(p, '{') && mb_gen_policy_parse(p, &gs, err, sizeof err)) {
                fprintf(stderr, "mecbed sweep: %s: policies: %s\n", cfg->path, err);
                return -1;
            }
            continue;
        }
        const mb_policy_ops *ops = mb_policy_find_or_load(name, err, sizeof err);
        const char *opts = strchr(p, ':');
        if (!ops || (opts && !strchr(opts, '{') && mb_policy_check_options(ops, opts + 1, err, sizeof err))) {
            fprintf(stderr, "mecbed sweep: %s: policies: %s\n", cfg->path, err);
            return -1;
        }
    }
    return 0;
}

/* getopt over sweep's options. -1 to go on, else the exit status. */
static int parse_options(sweep_opts *o, int argc, char **argv)
{
    enum { O_QUICK = 256, O_OUT, O_RESUME, O_JSON, O_TYPES, O_CHECK, O_TOL, O_NOPLOTS, O_DRY, O_NOTIMES,
           O_SHARD, O_SLURM, O_SUBMIT, O_PLUGIN };
    static const struct option opts[] = {
        {"quick", no_argument, 0, O_QUICK},        {"out", required_argument, 0, O_OUT},
        {"resume", no_argument, 0, O_RESUME},      {"json", no_argument, 0, O_JSON},
        {"node-types", required_argument, 0, O_TYPES}, {"check", required_argument, 0, O_CHECK},
        {"tolerance", required_argument, 0, O_TOL}, {"no-plots", no_argument, 0, O_NOPLOTS},
        {"dry-run", no_argument, 0, O_DRY},        {"no-times", no_argument, 0, O_NOTIMES},
        {"shard", required_argument, 0, O_SHARD},  {"slurm", required_argument, 0, O_SLURM},
        {"submit", no_argument, 0, O_SUBMIT},      {"policy-plugin", required_argument, 0, O_PLUGIN},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->extra_types = getenv("MECBED_SWEEP_NODE_TYPES");
    if (o->extra_types && !*o->extra_types)
        o->extra_types = NULL;
    o->tol = 1e-4;
    int c, idx;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        switch (c) {
        case O_QUICK: o->quick = 1; break;
        case O_OUT: o->out_dir = optarg; break;
        case O_RESUME: o->resume = 1; break;
        case O_JSON: o->json = 1; break;
        case O_TYPES: o->extra_types = optarg; break;
        case O_CHECK: o->check = optarg; break;
        case O_NOPLOTS: o->no_plots = 1; break;
        case O_DRY: o->dry = 1; break;
        case O_NOTIMES: o->no_times = 1; break;
        case O_SUBMIT: o->submit = 1; break;
        case O_SHARD: {
            char tail;
            if (sscanf(optarg, "%d/%d%c", &o->shard_i, &o->shard_n, &tail) != 2 || o->shard_n < 1 ||
                o->shard_i < 1 || o->shard_i > o->shard_n) {
                fprintf(stderr, "mecbed sweep: --shard %s: expected I/N with 1 <= I <= N (e.g. 2/4)\n", optarg);
                return 2;
            }
            break;
        }
        case O_SLURM: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (end == optarg || *end || n < 1 || n > 10000) {
                fprintf(stderr, "mecbed sweep: --slurm %s: expected a number of shards, 1..10000\n", optarg);
                return 2;
            }
            o->slurm_n = (int)n;
            break;
        }
        case O_PLUGIN:
            if (o->n_plugins == SW_MAX_ITEMS) {
                fprintf(stderr, "mecbed sweep: at most %d --policy-plugin options\n", SW_MAX_ITEMS);
                return 2;
            }
            o->plugins[o->n_plugins++] = optarg;
            break;
        case O_TOL: {
            char *end;
            o->tol = strtod(optarg, &end);
            if (end == optarg || *end || !(o->tol >= 0)) {
                fprintf(stderr, "mecbed sweep: --tolerance %s: expected a number >= 0\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mecbed sweep: give one experiment file (mecbed sweep --help)\n");
        return 2;
    }
    if (o->slurm_n && (o->shard_n || o->resume || o->check || o->dry)) {
        fprintf(stderr, "mecbed sweep: --slurm writes the job scripts; it does not combine with --shard, "
                        "--resume, --check or --dry-run (the array tasks use --shard and --resume)\n");
        return 2;
    }
    if (o->submit && !o->slurm_n) {
        fprintf(stderr, "mecbed sweep: --submit goes with --slurm N\n");
        return 2;
    }
    o->conf = argv[optind];
    return -1;
}

/* Is point i (in sweep order) this run's? Shards take every N-th point, so
 * each gets a share of every model, policy and x value. */
static int in_shard(const sweep_opts *o, int i)
{
    return !o->shard_n || i % o->shard_n == o->shard_i - 1;
}

/* Where the results go: --out, the newest run (--resume) or a new
 * timestamped directory. 0, or -1 with a message printed. */
static int pick_dir(sweep_state *st)
{
    const sweep_opts *o = &st->o;
    if (o->out_dir) {
        snprintf(st->dir, sizeof st->dir, "%s", o->out_dir);
        return 0;
    }
    char parent[512];
    snprintf(parent, sizeof parent, "results/%s", st->cfg->name);
    if (o->resume) {
        if (latest_dir(parent, o->quick, st->dir, sizeof st->dir)) {
            fprintf(stderr, "mecbed sweep: --resume: no %srun to resume under %s/\n",
                    o->quick ? "--quick " : "", parent);
            return -1;
        }
        return 0;
    }
    char ts[32];
    time_t now = time(NULL);
    strftime(ts, sizeof ts, "%Y%m%d-%H%M%S", gmtime(&now));
    snprintf(st->dir, sizeof st->dir, "%s/%s%s", parent, ts, o->quick ? "-quick" : "");
    return 0;
}

/* Read the experiment, check it can run here, make the directories and
 * list the points. -1 to go on, else the exit status (a message printed). */
static int prepare(sweep_state *st)
{
    const sweep_opts *o = &st->o;
    char err[16384];
    st->cfg = calloc(1, sizeof *st->cfg);
    if (!st->cfg)
        return 1;
    if (sw_config_read(o->conf, o->quick, st->cfg, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: %s\n", err);
        return 1;
    }
    if (load_policies(st->cfg, o))
        return 1;
    if (o->extra_types && access(o->extra_types, R_OK)) {
        fprintf(stderr, "mecbed sweep: node types %s: %s\n", o->extra_types, strerror(errno));
        return 1;
    }
    if (st->cfg->run_mode && geteuid() != 0 && !o->dry && !o->slurm_n) {
        fprintf(stderr, "mecbed sweep: %s is a run-mode experiment: measured runs need root "
                        "(namespaces, TUN, cgroups)\n", st->cfg->path);
        return 1;
    }
    if (pick_dir(st))
        return 1;
    snprintf(st->topo_dir, sizeof st->topo_dir, "%s/topologies", st->dir);
    if (!o->dry && (sweep_mkdir_p(st->dir) || sweep_mkdir_p(st->topo_dir))) {
        fprintf(stderr, "mecbed sweep: cannot create %s: %s\n", st->dir, strerror(errno));
        return 1;
    }
    if (sw_points(st->cfg, o->dry ? "/tmp" : st->topo_dir, &st->pts, &st->n_pts, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: %s\n", err);
        return 1;
    }
    for (int i = 0; i < st->n_pts; i++)
        st->n_shard_pts += in_shard(o, i);
    if (o->dry) {
        for (int i = 0; i < st->n_pts; i++)
            if (in_shard(o, i))
                printf("%s\n", st->pts[i].key);
        if (o->shard_n)
            printf("%d of %d points (shard %d/%d)\n", st->n_shard_pts, st->n_pts, o->shard_i, o->shard_n);
        else
            printf("%d points\n", st->n_pts);
        return 0;
    }
    /* columns: the fixed set, then the configured metrics */
    for (int i = 0; base_cols[i]; i++)
        st->t.cols[st->t.n_cols++] = strdup(base_cols[i]);
    for (int i = 0; i < st->cfg->metrics.n && st->t.n_cols < SW_MAX_COLS; i++) {
        char col[64];
        snprintf(col, sizeof col, "m_%s", st->cfg->metrics.v[i]);
        st->t.cols[st->t.n_cols++] = strdup(col);
    }
    snprintf(st->csv, sizeof st->csv, "%s/results.csv", st->dir);
    snprintf(st->frames_path, sizeof st->frames_path, "%s/frames.csv", st->dir);
    snprintf(st->logs, sizeof st->logs, "%s/logs", st->dir);
    return -1;
}

/* --resume: the finished rows of results.csv (failed ones are retried)
 * and the frames.csv so far. 0, or -1 with a message printed. */
static int load_previous(sweep_state *st)
{
    sweep_table old;
    char err[16384];
    int r = sweep_table_read(st->csv, &old, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "mecbed sweep: --resume: %s\n", err);
        return -1;
    }
    if (r == 0) {
        int same = old.n_cols == st->t.n_cols;
        for (int i = 0; same && i < st->t.n_cols; i++)
            same = !strcmp(old.cols[i], st->t.cols[i]);
        if (!same) {
            fprintf(stderr, "mecbed sweep: --resume: %s has other columns than this experiment "
                            "(changed metrics=?): start a new run\n", st->csv);
            sweep_table_free(&old);
            return -1;
        }
        for (int i = 0; i < old.n_rows; i++)
            if (!strcmp(sw_row_get(&old.rows[i], "ok"), "1"))
                sweep_table_add(&st->t, &old.rows[i]);
        sweep_table_free(&old);
        st->n_done_before = st->t.n_rows;
    }
    FILE *ff = fopen(st->frames_path, "r");
    if (!ff)
        return 0;
    char *line = NULL;
    size_t cap = 0, fc = 0;
    ssize_t k;
    while ((k = getline(&line, &cap, ff)) > 0) {
        if (!strncmp(line, "point,", 6))
            continue;
        if (st->frames_len + (size_t)k + 1 > fc) {
            fc = (st->frames_len + (size_t)k + 1) * 2;
            char *nf = realloc(st->frames_text, fc);
            if (!nf)
                break;
            st->frames_text = nf;
        }
        memcpy(st->frames_text + st->frames_len, line, (size_t)k);
        st->frames_len += (size_t)k;
        st->frames_text[st->frames_len] = 0;
    }
    free(line);
    fclose(ff);
    return 0;
}

/* A run-mode point's per-frame rows (frames.csv, rewritten) and uplink
 * trace (trace.csv, appended one block per point). Both are freed. */
static void save_point_extras(sweep_state *st, char *fr, char *trc)
{
    if (fr) {
        size_t k = strlen(fr);
        char *nf = realloc(st->frames_text, st->frames_len + k + 1);
        if (nf) {
            st->frames_text = nf;
            memcpy(st->frames_text + st->frames_len, fr, k + 1);
            st->frames_len += k;
        }
        free(fr);
        FILE *ff = fopen(st->frames_path, "w");
        if (ff) {
            fprintf(ff, "point,variant,x,frame,t_s,latency_ms,predicted_ms,plan,ok\n%s",
                    st->frames_text ? st->frames_text : "");
            fclose(ff);
        }
    }
    if (trc) {
        char tp[4300];
        snprintf(tp, sizeof tp, "%s/trace.csv", st->dir);
        struct stat sb;
        int fresh = stat(tp, &sb) != 0;
        FILE *tf = fopen(tp, "a");
        if (tf) {
            if (fresh)
                fputs("point,x,t_s,rate_mbps\n", tf);
            fputs(trc, tf);
            fclose(tf);
        }
        free(trc);
    }
}

/* The progress line before a point (terminal only). */
static void show_progress(const sweep_state *st, const sw_point *p, double t0)
{
    char eta[32], el[32];
    double spent = t0 - st->t_start;
    fmt_dur(st->n_run ? spent / st->n_run * (st->n_todo - st->n_run) : NAN, eta, sizeof eta);
    fmt_dur(spent, el, sizeof el);
    /* everything that tells one point from another: node types and variant too */
    fprintf(stderr, "\r\033[K[%d/%d] %3.0f%% %s %s %s x=%s%s%s%s%s%s%s rep %d  elapsed %s, ETA %s", st->n_run + 1,
            st->n_todo, 100.0 * st->n_run / (st->n_todo ? st->n_todo : 1), st->cfg->name,
            p->dag_ops ? "dag" : p->model, p->policy, p->x, st->cfg->x_unit[0] ? " " : "", st->cfg->x_unit,
            strcmp(p->node_types, "-") ? " types=" : "",
            strcmp(p->node_types, "-") ? p->node_types : "", p->variant ? " variant=" : "",
            p->variant ? p->variant->name : "", p->rep, el, eta);
}

/* One point: its row, evaluated (plan mode) or run (run mode), recorded.
 * Returns 1 when the sweep should stop (interrupted, results.csv not
 * written), else 0. */
static int sweep_point(sweep_state *st, sw_point *p, int tty)
{
    const sw_config *cfg = st->cfg;
    double t0 = mb_now();
    if (tty)
        show_progress(st, p, t0);
    sw_row row = {0};
    sw_row_set(&row, "experiment", "%s", cfg->name);
    sw_row_set(&row, "point", "%d", p->index);
    sw_row_set(&row, "rep", "%d", p->rep);
    sw_row_set(&row, "mode", "%s", cfg->run_mode ? "run" : "plan");
    if (p->dag_ops)
        sw_row_set(&row, "model", "dag%d", p->dag_ops);
    else
        sw_row_set(&row, "model", "%s", p->model);
    sw_row_set(&row, "policy", "%s", p->policy);
    sw_row_set(&row, "variant", "%s", p->variant ? p->variant->name : "-");
    sw_row_set(&row, "link", "%s", p->link);
    sw_row_set(&row, "topology", "%s", p->topology);
    sw_row_set(&row, "x", "%s", p->x);
    sw_row_set(&row, "x_unit", "%s", cfg->x_unit);
    sw_row_set(&row, "node_types", "%s", p->node_types);
    sw_row_set(&row, "key", "%s", p->key);
    char perr[1024] = "";
    char *fr = NULL, *trc = NULL;
    int prc;
    if (cfg->run_mode) {
        char logp[4300];
        snprintf(logp, sizeof logp, "%s/point-%d.log", st->logs, p->index);
        prc = sw_run_point(cfg, p, st->o.extra_types, cmd_run, logp, &row, cfg->per_frame ? &fr : NULL,
                           cfg->per_frame ? &trc : NULL, &stop_flag, perr, sizeof perr);
    } else
        prc = sw_plan_point(cfg, p, st->o.extra_types, &row, perr, sizeof perr);
    if (stop_flag && cfg->run_mode) { /* the interrupted point is not a result */
        sw_row_free(&row);
        free(fr);
        free(trc);
        return 1;
    }
    if (st->o.no_times) {
        sw_row_set(&row, "decision_us", "%s", "");
        sw_row_set(&row, "decision_us_min", "%s", "");
    }
    sw_row_set(&row, "ok", "%d", prc ? 0 : 1);
    sw_row_set(&row, "error", "%s", prc ? perr : "");
    st->n_run++;
    if (prc)
        st->n_fail++;
    else
        st->n_ok++;
    save_point_extras(st, fr, trc);
    double dt = mb_now() - t0;
    if (!tty || prc) {
        fprintf(stderr, "%ssweep %s: %d/%d %s %s %s x=%s%s%s%s%s%s%s rep %d: %s (%.2f s)\n", tty ? "\r\033[K" : "",
                cfg->name, st->n_run, st->n_todo, sw_row_get(&row, "model"), p->policy,
                p->link[0] ? p->link : p->topology, p->x, cfg->x_unit[0] ? " " : "", cfg->x_unit,
                strcmp(p->node_types, "-") ? " types=" : "",
                strcmp(p->node_types, "-") ? p->node_types : "", p->variant ? " variant=" : "",
                p->variant ? p->variant->name : "", p->rep, prc ? perr : "ok", dt);
    }
    sweep_table_add(&st->t, &row);
    char err[1024];
    if (sweep_table_write(&st->t, st->csv, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: %s\n", err);
        st->rc = 1;
        return 1;
    }
    return 0;
}

/* Every point not done before, until done or Ctrl-C. */
static void sweep_points(sweep_state *st)
{
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    stop_flag = 0;
    int tty = isatty(2);
    for (int i = 0; i < st->n_pts; i++) {
        if (!in_shard(&st->o, i)) {
            st->pts[i].index = -1 - i; /* another shard's point */
            continue;
        }
        int found = 0;
        for (int k = 0; k < st->n_done_before && !found; k++)
            found = !strcmp(sw_row_get(&st->t.rows[k], "key"), st->pts[i].key);
        st->pts[i].index = found ? -1 - i : i; /* negative: done already */
        st->n_todo += !found;
    }
    if (st->n_done_before)
        fprintf(stderr, "mecbed sweep: resuming %s: %d of %d points done, %d to go\n", st->dir,
                st->n_done_before, st->n_shard_pts, st->n_todo);
    st->t_start = mb_now();
    for (int i = 0; i < st->n_pts && !stop_flag; i++)
        if (st->pts[i].index >= 0 && sweep_point(st, &st->pts[i], tty))
            break;
    if (tty)
        fprintf(stderr, "\r\033[K");
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sw_plan_cache_free();
}

/* --check against a baseline: the moved values (or -1). */
static int run_check(sweep_state *st)
{
    const sweep_opts *o = &st->o;
    int moved = check_baseline(&st->t, o->check, o->tol, stdout);
    if (moved < 0)
        st->rc = 1;
    else if (moved > 0) {
        printf("regress %s: %d values moved beyond %.2g relative from %s (table above: key, "
               "column, baseline -> now)\n", st->cfg->name, moved, o->tol, o->check);
        st->rc = 1;
    } else if (!o->json)
        printf("regress %s: %d rows match %s (tolerance %.2g)\n", st->cfg->name, st->t.n_rows, o->check, o->tol);
    return moved;
}

static void print_summary_json(const sweep_state *st, int complete, int plot_fail, int moved)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "experiment", st->cfg->name);
    cJSON_AddStringToObject(o, "dir", st->dir);
    cJSON_AddNumberToObject(o, "points", st->n_shard_pts);
    cJSON_AddNumberToObject(o, "ok", st->n_ok);
    cJSON_AddNumberToObject(o, "failed", st->n_fail);
    cJSON_AddNumberToObject(o, "done_before", st->n_done_before);
    cJSON_AddBoolToObject(o, "complete", complete);
    cJSON_AddNumberToObject(o, "plots_failed", plot_fail);
    cJSON_AddNumberToObject(o, "moved", moved);
    char *js = cJSON_PrintUnformatted(o);
    if (js)
        printf("%s\n", js);
    free(js);
    cJSON_Delete(o);
}

/* --slurm N: the job array's scripts in the output folder, submitted with
 * --submit. The exit status. */
static int slurm_jobs(const sweep_state *st)
{
    const sweep_opts *o = &st->o;
    if (o->slurm_n > st->n_pts) {
        fprintf(stderr, "mecbed sweep: --slurm %d: the experiment has only %d points\n", o->slurm_n, st->n_pts);
        return 2;
    }
    sweep_slurm_job j = {st->cfg->name, o->conf, o->quick, o->no_plots, o->no_times, o->extra_types,
                         o->plugins, o->n_plugins, st->dir, o->slurm_n, st->cfg->run_mode};
    char array_id[64] = "", merge_id[64] = "", err[4096];
    if (sweep_slurm_write(&j, o->submit, array_id, merge_id, sizeof array_id, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: --slurm: %s\n", err);
        return 1;
    }
    if (o->submit)
        fprintf(stderr, "mecbed sweep: submitted %s as array job %s (%d shards of %d points) and merge job %s "
                        "-> %s\n", st->cfg->name, array_id, o->slurm_n, st->n_pts, merge_id, st->dir);
    else
        fprintf(stderr, "mecbed sweep: wrote %s/slurm/shards.sbatch (%d shards of %d points) and merge.sbatch; "
                        "submit with --submit or sbatch\n", st->dir, o->slurm_n, st->n_pts);
    if (o->json) {
        cJSON *js = cJSON_CreateObject();
        cJSON_AddStringToObject(js, "experiment", st->cfg->name);
        cJSON_AddStringToObject(js, "dir", st->dir);
        cJSON_AddNumberToObject(js, "shards", o->slurm_n);
        cJSON_AddNumberToObject(js, "points", st->n_pts);
        cJSON_AddStringToObject(js, "array_job", array_id);
        cJSON_AddStringToObject(js, "merge_job", merge_id);
        char *text = cJSON_PrintUnformatted(js);
        if (text)
            printf("%s\n", text);
        free(text);
        cJSON_Delete(js);
    }
    return 0;
}

/* results.json, the plots, the summary line, --check and --json. */
static void finish(sweep_state *st, cJSON *meta)
{
    char err[16384];
    int complete = !stop_flag && st->rc == 0;
    cJSON_AddNumberToObject(meta, "points_failed", st->n_fail);
    if (sweep_write_json(st->cfg, &st->t, meta, st->dir, complete, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: %s\n", err);
        st->rc = 1;
    }
    double took = mb_now() - st->t_start;
    int plot_fail = 0;
    if (stop_flag) {
        fprintf(stderr, "mecbed sweep: interrupted: %d of %d points in %s (consistent; --resume continues)\n",
                st->t.n_rows, st->n_shard_pts, st->csv);
        st->rc = 130;
    } else {
        if (!st->o.no_plots && st->cfg->n_plots)
            plot_fail = sweep_run_plots(st->cfg, st->dir, st->o.quick);
        fprintf(stderr, "mecbed sweep: %s: %d points (%d ok, %d failed, %d done before) in %.1f s -> %s\n",
                st->cfg->name, st->n_shard_pts, st->n_ok, st->n_fail, st->n_done_before, took, st->dir);
        if (st->n_fail)
            st->rc = 1;
    }
    int moved = st->o.check && st->rc == 0 ? run_check(st) : 0;
    if (st->o.json)
        print_summary_json(st, complete, plot_fail, moved);
}

int cmd_sweep(int argc, char **argv)
{
    static sweep_state state;
    sweep_state *st = &state;
    memset(st, 0, sizeof *st);
    if (argc >= 2 && !strcmp(argv[1], "merge"))
        return cmd_sweep_merge(argc - 1, argv + 1);
    int rc = parse_options(&st->o, argc, argv);
    if (rc < 0)
        rc = prepare(st);
    if (rc < 0 && st->o.slurm_n)
        rc = slurm_jobs(st);
    if (rc >= 0)
        goto done;
    if (st->o.resume && load_previous(st)) {
        rc = 1;
        goto done;
    }
    cJSON *meta = sweep_meta_json(st->cfg, st->o.quick, argc, argv);
    if (st->o.extra_types)
        cJSON_AddStringToObject(meta, "extra_node_types", st->o.extra_types);
    cJSON_AddNumberToObject(meta, "points", st->n_pts);
    if (st->o.shard_n) {
        cJSON *sh = cJSON_AddObjectToObject(meta, "shard");
        cJSON_AddNumberToObject(sh, "index", st->o.shard_i);
        cJSON_AddNumberToObject(sh, "count", st->o.shard_n);
        cJSON_AddNumberToObject(sh, "points", st->n_shard_pts);
    }
    if (st->cfg->run_mode)
        sweep_mkdir_p(st->logs);
    char err[1024];
    if (sweep_table_write(&st->t, st->csv, err, sizeof err)) {
        fprintf(stderr, "mecbed sweep: %s\n", err);
        cJSON_Delete(meta);
        rc = 1;
        goto done;
    }
    sweep_points(st);
    finish(st, meta);
    cJSON_Delete(meta);
    rc = st->rc;
done:
    free(st->frames_text);
    sweep_table_free(&st->t);
    free(st->pts);
    if (st->cfg)
        sw_config_free(st->cfg);
    free(st->cfg);
    return rc;
}
