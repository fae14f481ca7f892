/* The files of a sweep's output folder, shared by `sweep` and `sweep merge`:
 * results.csv as a table of rows, meta.json and results.json, the folder
 * itself, and the experiment's gnuplot figures. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/link.h"
#include "mecbed/platform.h"
#include "sweep_files.h"

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

/* Split one CSV line into fields (quotes handled); returns the count. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else if (!*p)
                    break;
                else
                    *out++ = *p++;
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r')
                *out++ = *p++;
        }
        char sep = *p;
        *out = 0;
        fields[n++] = start;
        if (sep != ',')
            break;
        p++;
    }
    return n;
}


void sweep_table_free(sweep_table *t)
{
    for (int i = 0; i < t->n_cols; i++)
        free(t->cols[i]);
    for (int i = 0; i < t->n_rows; i++)
        sw_row_free(&t->rows[i]);
    free(t->rows);
    memset(t, 0, sizeof *t);
}

int sweep_table_add(sweep_table *t, sw_row *r)
{
    if (t->n_rows == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        sw_row *nr = realloc(t->rows, (size_t)cap * sizeof *nr);
        if (!nr)
            return -1;
        t->rows = nr;
        t->cap = cap;
    }
    t->rows[t->n_rows++] = *r;
    memset(r, 0, sizeof *r);
    return 0;
}

/* Read a results.csv. Returns 0 (missing file: empty table), -1 on error. */
int sweep_table_read(const char *path, sweep_table *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    char *fields[SW_MAX_COLS];
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[0] == '\n' || line[0] == '#')
            continue;
        int n = csv_split(line, fields, SW_MAX_COLS);
        if (!t->n_cols) {
            for (int i = 0; i < n; i++)
                t->cols[i] = strdup(fields[i]);
            t->n_cols = n;
            continue;
        }
        if (n != t->n_cols) {
            snprintf(err, errlen, "%s:%d: %d fields, the header has %d", path, lineno, n, t->n_cols);
            free(line);
            fclose(f);
            sweep_table_free(t);
            return -1;
        }
        sw_row r = {0};
        for (int i = 0; i < n; i++)
            sw_row_set(&r, t->cols[i], "%s", fields[i]);
        sweep_table_add(t, &r);
    }
    free(line);
    fclose(f);
    return 0;
}

int sweep_table_write(const sweep_table *t, const char *path, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.4190s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "%.900s: %s", tmp, strerror(errno));
        return -1;
    }
    for (int i = 0; i < t->n_cols; i++) {
        if (i)
            fputc(',', f);
        csv_field(f, t->cols[i]);
    }
    fputc('\n', f);
    for (int r = 0; r < t->n_rows; r++) {
        for (int i = 0; i < t->n_cols; i++) {
            if (i)
                fputc(',', f);
            csv_field(f, sw_row_get(&t->rows[r], t->cols[i]));
        }
        fputc('\n', f);
    }
    /* rename() only after the data is on disk: a crash leaves the old or the new file */
    if (fflush(f) || fsync(fileno(f)) || fclose(f)) {
        snprintf(err, errlen, "%.900s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path)) {
        snprintf(err, errlen, "rename %.900s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* ---------- files and facts ---------- */

int sweep_mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static void cmd_out(const char *cmd, char *buf, size_t len)
{
    buf[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (!fgets(buf, (int)len, p))
        buf[0] = 0;
    pclose(p);
    buf[strcspn(buf, "\n")] = 0;
}

cJSON *sweep_meta_json(const sw_config *c, int quick, int argc, char **argv)
{
    cJSON *m = cJSON_CreateObject();
    char buf[512];
    cJSON_AddStringToObject(m, "mecbed_version", MB_VERSION);
    cmd_out("git rev-parse HEAD 2>/dev/null", buf, sizeof buf);
    cJSON_AddStringToObject(m, "git_commit", buf[0] ? buf : "unknown");
    cmd_out("git status --porcelain --untracked-files=no 2>/dev/null | head -n 1", buf, sizeof buf);
    cJSON_AddBoolToObject(m, "git_dirty", buf[0] != 0);
    mb_platform_cpu_model(buf, sizeof buf);
    cJSON_AddStringToObject(m, "cpu_model", buf);
    cJSON_AddNumberToObject(m, "cores", mb_platform_cores());
    cJSON_AddStringToObject(m, "openblas_core", mb_platform_blas_core());
    mb_platform_kernel(buf, sizeof buf);
    cJSON_AddStringToObject(m, "kernel", buf);
    cJSON_AddStringToObject(m, "kernel_backend", "cpu");
    cJSON_AddStringToObject(m, "mode", c->run_mode ? "run" : "plan");
    cJSON_AddStringToObject(m, "link_backend", c->run_mode ? c->backend : "none (plan mode)");
    cJSON *lb = cJSON_AddArrayToObject(m, "link_backends_built");
    for (const char *const *b = mb_net_backends(); b && *b; b++)
        cJSON_AddItemToArray(lb, cJSON_CreateString(*b));
    /* what the kernel supports: netem is probed in a throw-away namespace (root only) */
    if (geteuid() == 0)
        cJSON_AddBoolToObject(m, "kernel_netem", mb_tc_has_netem());
    else
        cJSON_AddNullToObject(m, "kernel_netem");
    struct stat st;
    cJSON_AddBoolToObject(m, "tun", stat("/dev/net/tun", &st) == 0);
    cJSON_AddBoolToObject(m, "root", geteuid() == 0);
    gethostname(buf, sizeof buf);
    buf[sizeof buf - 1] = 0;
    cJSON_AddStringToObject(m, "host", buf);
    double la[3];
    if (getloadavg(la, 3) == 3)
        cJSON_AddNumberToObject(m, "loadavg_start", la[0]);
    cJSON_AddStringToObject(m, "config", c->path);
    cJSON_AddStringToObject(m, "x_name", c->x_name);
    cJSON_AddStringToObject(m, "x_unit", c->x_unit);
    cJSON_AddBoolToObject(m, "quick", quick);
    buf[0] = 0;
    for (int i = 0; i < argc; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "", argv[i]);
    cJSON_AddStringToObject(m, "command", buf);
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(m, "started_utc", buf);
    return m;
}

int sweep_write_text(const char *path, const char *text, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fclose(f) || rename(tmp, path)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static cJSON *value_json(const char *v)
{
    if (!*v)
        return cJSON_CreateNull();
    char *end;
    double d = strtod(v, &end);
    if (!*end && isfinite(d) && !(v[0] == '0' && v[1] && v[1] != '.') )
        return cJSON_CreateNumber(d);
    return cJSON_CreateString(v);
}

int sweep_write_json(const sw_config *c, const sweep_table *t, cJSON *meta, const char *dir, int complete,
                      char *err, size_t errlen)
{
    char path[4200];
    time_t now = time(NULL);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_DeleteItemFromObject(meta, "finished_utc");
    cJSON_AddStringToObject(meta, "finished_utc", buf);
    cJSON_DeleteItemFromObject(meta, "complete");
    cJSON_AddBoolToObject(meta, "complete", complete);
    char *s = cJSON_Print(meta);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    int rc = s ? sweep_write_text(path, s, err, errlen) : -1;
    free(s);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "experiment", c->name);
    cJSON_AddStringToObject(r, "question", c->question);
    cJSON_AddStringToObject(r, "x_name", c->x_name);
    cJSON_AddStringToObject(r, "x_unit", c->x_unit);
    cJSON_AddBoolToObject(r, "complete", complete);
    cJSON_AddItemToObject(r, "meta", cJSON_Duplicate(meta, 1));
    cJSON *rows = cJSON_AddArrayToObject(r, "rows");
    for (int i = 0; i < t->n_rows; i++) {
        cJSON *o = cJSON_CreateObject();
        for (int k = 0; k < t->n_cols; k++) {
            const char *v = sw_row_get(&t->rows[i], t->cols[k]);
            int as_str = !strcmp(t->cols[k], "plan_sig") || !strcmp(t->cols[k], "x") || !strcmp(t->cols[k], "x_unit") ||
                         !strcmp(t->cols[k], "key") || !strcmp(t->cols[k], "link") ||
                         !strcmp(t->cols[k], "model") || !strcmp(t->cols[k], "note");
            cJSON_AddItemToObject(o, t->cols[k], as_str ? cJSON_CreateString(v) : value_json(v));
        }
        cJSON_AddItemToArray(rows, o);
    }
    s = cJSON_Print(r);
    cJSON_Delete(r);
    snprintf(path, sizeof path, "%s/results.json", dir);
    if (!rc)
        rc = s ? sweep_write_text(path, s, err, errlen) : -1;
    free(s);
    return rc;
}

/* ---------- plots ---------- */

int sweep_run_plots(const sw_config *c, const char *dir, int quick)
{
    if (system("command -v gnuplot >/dev/null 2>&1")) {
        fprintf(stderr, "mecbed sweep: gnuplot is not installed: no plots (apt-get install gnuplot-nox)\n");
        return 0;
    }
    int failed = 0;
    for (int i = 0; i < c->n_plots; i++)
        for (int k = 0; k < 2; k++) {
            const char *term = k ? "svg" : "png";
            char log[4200];
            snprintf(log, sizeof log, "%s/plot-%d-%s.log", dir, i, term);
            pid_t pid = fork();
            if (pid == 0) {
                FILE *lf = freopen(log, "w", stderr);
                (void)lf;
                char e[16384];
                int o = snprintf(e, sizeof e, "dir='%s'; term='%s'; quick=%d; xname='%s'; xunit='%s'", dir,
                                 term, quick, c->x_name, c->x_unit);
                /* the experiment's axes as word lists, for `for [m in models]` */
                const sw_list *ls[] = {&c->models, &c->dags, &c->policies, &c->node_types, &c->xs};
                const char *names[] = {"models", "dags", "policies", "node_types", "xs"};
                for (int l = 0; l < 5 && o > 0 && (size_t)o < sizeof e; l++) {
                    o += snprintf(e + o, sizeof e - (size_t)o, "; %s='", names[l]);
                    for (int q = 0; q < ls[l]->n && (size_t)o < sizeof e; q++)
                        o += snprintf(e + o, sizeof e - (size_t)o, "%s%s%s", q ? " " : "",
                                      l == 1 ? "dag" : "", ls[l]->v[q]);
                    if ((size_t)o < sizeof e)
                        o += snprintf(e + o, sizeof e - (size_t)o, "'");
                }
                o += snprintf(e + o, sizeof e - (size_t)o, "; variants='");
                for (int q = 0; q < c->n_variants && (size_t)o < sizeof e; q++)
                    o += snprintf(e + o, sizeof e - (size_t)o, "%s%s", q ? " " : "", c->variants[q].name);
                if ((size_t)o < sizeof e)
                    snprintf(e + o, sizeof e - (size_t)o, "'");
                execlp("gnuplot", "gnuplot", "-e", e, c->plots[i], (char *)NULL);
                _exit(127);
            }
            int st = 0;
            if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
                fprintf(stderr, "mecbed sweep: plot %s (%s) failed: see %s\n", c->plots[i], term, log);
                failed++;
            } else
                unlink(log);
        }
    return failed;
}
