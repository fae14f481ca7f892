/* Per-op profiles: measured with the reference executor's timing, stored as
 * CSV with the facts that make a profile comparable across machines. */
#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datadir.h"
#include "mecbed/exec.h"
#include "mecbed/readfile.h"
#include "mecbed/platform.h"
#include "mecbed/profile.h"

mb_profile *mb_profile_new(const mb_graph *g)
{
    mb_profile *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n_ops = g->n_nodes;
    p->ms = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(double));
    if (!p->ms) {
        free(p);
        return NULL;
    }
    snprintf(p->model, sizeof(p->model), "%s", g->name);
    p->graph_hash = mb_graph_hash(g);
    p->threads = 1;
    p->repeats = 1;
    snprintf(p->backend, sizeof(p->backend), "cpu");
    return p;
}

void mb_profile_free(mb_profile *p)
{
    if (!p)
        return;
    free(p->ms);
    free(p);
}

double mb_profile_total_ms(const mb_profile *p)
{
    double s = 0;
    for (int i = 0; i < p->n_ops; i++)
        s += p->ms[i];
    return s;
}

double mb_profile_op_scale(const mb_profile *p)
{
    double sum = mb_profile_total_ms(p);
    return p->whole_ms > 0 && sum > 0 ? p->whole_ms / sum : 1.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mb_profile_sgemm_gflops(int threads)
{
    /* 512^3 keeps the measurement short (~1 ms per product at 200 GFLOP/s)
     * while staying in sgemm's steady state. OpenBLAS runs single-threaded
     * under mecbed (platform.h); threads > 1 scales the one-thread rate,
     * which is how mecbed's own parallelism uses it. */
    const int n = 512, runs = 7;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    double rate = 0;
    if (a && b && c) {
        uint64_t st = 1;
        for (int i = 0; i < n * n; i++) {
            a[i] = mb_rng_uniform(&st) - 0.5f;
            b[i] = mb_rng_uniform(&st) - 0.5f;
        }
        double t[7];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        for (int r = 0; r < runs; r++) {
            double t0 = mb_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                        c, n);
            t[r] = mb_now() - t0;
        }
        qsort(t, runs, sizeof(double), cmp_double);
        rate = 2.0 * n * n * (double)n / t[runs / 2] / 1e9 * (threads > 0 ? threads : 1);
    }
    free(a);
    free(b);
    free(c);
    return rate;
}

mb_profile *mb_profile_measure(const mb_graph *g, const char *backend, int threads, int repeats,
                               char *err, size_t errlen)
{
    if (repeats < 1)
        repeats = 1;
    mb_backend *be = mb_backend_new(backend, threads, err, errlen);
    if (!be)
        return NULL;
    mb_profile *p = mb_profile_new(g);
    mb_op_time *times = calloc((size_t)g->n_nodes, sizeof(*times));
    mb_tensor **in = mb_exec_make_inputs(g, 1);
    double *all = calloc((size_t)g->n_nodes * (size_t)repeats, sizeof(double));
    int ok = p && times && in && all;
    if (!in)
        mb_exec_memory_error(g, "inputs", err, errlen);
    else if (!ok)
        snprintf(err, errlen, "profile: out of memory");
    /* One warm-up run (page faults, caches), then `repeats` rounds of a timed
     * run and an untimed whole run, interleaved so both see the same load on
     * a shared machine; medians resist the odd preempted run. The whole runs
     * give whole_ms: the sum of op times can differ from a whole run (ops
     * reusing their predecessor's data in cache, the timer itself). */
    double *whole = calloc((size_t)repeats, sizeof(double));
    if (!whole)
        ok = 0;
    for (int r = -1; ok && r < repeats; r++) {
        for (int timed = 1; timed >= 0 && ok; timed--) {
            mb_exec_opts o = {.times = times, .repeats = 1};
            mb_tensor **outs = NULL;
            double t0 = mb_now();
            if (mb_exec_run(g, be, in, &outs, timed ? &o : NULL, NULL, err, errlen)) {
                ok = 0;
                break;
            }
            double wall = (mb_now() - t0) * 1e3;
            for (int k = 0; k < g->n_outputs; k++)
                mb_tensor_free(outs[k]);
            free(outs);
            if (r >= 0 && timed)
                for (int i = 0; i < g->n_nodes; i++)
                    all[(size_t)i * repeats + r] = times[i].ms;
            if (r >= 0 && !timed)
                whole[r] = wall;
            if (r < 0)
                break; /* the warm-up is one run */
        }
    }
    if (ok) {
        for (int i = 0; i < g->n_nodes; i++) {
            qsort(all + (size_t)i * repeats, (size_t)repeats, sizeof(double), cmp_double);
            p->ms[i] = all[(size_t)i * repeats + repeats / 2];
        }
        p->threads = threads;
        p->repeats = repeats;
        snprintf(p->backend, sizeof(p->backend), "%s", mb_backend_name(be));
        snprintf(p->blas_core, sizeof(p->blas_core), "%s", mb_platform_blas_core());
        mb_platform_cpu_model(p->cpu, sizeof(p->cpu));
        p->ref_gflops = mb_profile_sgemm_gflops(threads);
        qsort(whole, (size_t)repeats, sizeof(double), cmp_double);
        p->whole_ms = whole[repeats / 2];
    }
    free(whole);
    if (in) {
        int k = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].type == MB_OP_INPUT)
                mb_tensor_free(in[k++]);
        free(in);
    }
    free(all);
    free(times);
    mb_backend_free(be);
    if (!ok) {
        mb_profile_free(p);
        return NULL;
    }
    return p;
}

int mb_profile_write_csv(const mb_profile *p, const mb_graph *g, const char *path, char *err,
                         size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "# mecbed profile v1\n");
    fprintf(f, "# model=%s hash=%016" PRIx64 " threads=%d backend=%s repeats=%d\n", p->model,
            p->graph_hash, p->threads, p->backend, p->repeats);
    fprintf(f, "# blas_core=%s ref_gflops=%.3f whole_ms=%.6f cpu=%s\n",
            p->blas_core[0] ? p->blas_core : "-", p->ref_gflops, p->whole_ms,
            p->cpu[0] ? p->cpu : "-");
    fprintf(f, "op,name,type,ms,bytes_out,macs\n");
    for (int i = 0; i < g->n_nodes; i++)
        fprintf(f, "%d,%s,%s,%.6f,%" PRId64 ",%" PRId64 "\n", i, g->nodes[i].name,
                mb_op_name(g->nodes[i].type), p->ms[i], g->nodes[i].out_bytes, g->nodes[i].macs);
    if (fclose(f)) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* A header value that must be a finite number >= lo (> lo when strict). */
static int header_num(const char *key, const char *val, double lo, int strict, double *out, char *why, size_t len)
{
    char *end;
    double d = strtod(val, &end);
    if (end == val || *end || !isfinite(d) || d < lo || (strict && d == lo)) {
        snprintf(why, len, "%s=%s: not a number %s %g%s", key, val, strict ? ">" : ">=", lo,
                 !strcmp(key, "ref_gflops") ? " (the sgemm rate node types scale by)" : "");
        return -1;
    }
    *out = d;
    return 0;
}

/* "key=value" tokens of a header comment line; value ends at a space,
 * except cpu= which runs to the end of the line. 0, or -1 with why. */
static int header_kv(mb_profile *p, char *line, char *why, size_t len)
{
    char *s = line;
    while (*s) {
        while (*s == ' ' || *s == '#')
            s++;
        char *eq = strchr(s, '=');
        if (!eq)
            return 0;
        *eq = 0;
        char *key = s, *val = eq + 1;
        char *end;
        if (!strcmp(key, "cpu")) {
            end = val + strlen(val);
        } else {
            end = val;
            while (*end && *end != ' ')
                end++;
        }
        char save = *end;
        *end = 0;
        if (!strcmp(key, "model"))
            snprintf(p->model, sizeof(p->model), "%s", val);
        else if (!strcmp(key, "hash")) {
            size_t n = strlen(val);
            if (n == 0 || n > 16 || strspn(val, "0123456789abcdefABCDEF") != n) {
                snprintf(why, len, "hash=%.40s: not a model hash (up to 16 hex digits)", val);
                return -1;
            }
            p->file_hash = strtoull(val, NULL, 16);
        }
        else if (!strcmp(key, "threads"))
            p->threads = atoi(val);
        else if (!strcmp(key, "backend"))
            snprintf(p->backend, sizeof(p->backend), "%s", val);
        else if (!strcmp(key, "repeats"))
            p->repeats = atoi(val);
        else if (!strcmp(key, "blas_core"))
            snprintf(p->blas_core, sizeof(p->blas_core), "%s", val);
        else if (!strcmp(key, "ref_gflops")) {
            if (header_num(key, val, 0, 1, &p->ref_gflops, why, len))
                return -1;
        } else if (!strcmp(key, "whole_ms")) {
            if (header_num(key, val, 0, 0, &p->whole_ms, why, len))
                return -1;
        }
        else if (!strcmp(key, "cpu"))
            snprintf(p->cpu, sizeof(p->cpu), "%s", val);
        *end = save;
        s = end;
    }
    return 0;
}

mb_profile *mb_profile_read_csv(const char *path, const mb_graph *g, char *err, size_t errlen)
{
    char why[512];
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, why, sizeof why);
    if (!f) {
        /* why starts with the path already */
        snprintf(err, errlen, "cannot open %s", why);
        return NULL;
    }
    mb_profile *p = mb_profile_new(g);
    char *seen = calloc((size_t)g->n_nodes + 1, 1);
    char line[1024];
    int ln = 0, header = 0, rows = 0, ok = p && seen;
    while (ok && fgets(line, sizeof(line), f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#') {
            char bad[256];
            if (header_kv(p, line, bad, sizeof bad)) {
                snprintf(err, errlen, "%s:%d: %s", path, ln, bad);
                ok = 0;
            }
            continue;
        }
        if (!line[0])
            continue;
        if (!header) {
            if (strncmp(line, "op,name,type,ms", 15)) {
                snprintf(err, errlen, "%s:%d: expected the header 'op,name,type,ms,...'", path, ln);
                ok = 0;
                break;
            }
            header = 1;
            continue;
        }
        char *fld[6] = {0};
        int nf = 0;
        for (char *t = line, *save = NULL; nf < 6 && (t = strtok_r(nf ? NULL : t, ",", &save));)
            fld[nf++] = t;
        char *end;
        long op = nf >= 4 ? strtol(fld[0], &end, 10) : -1;
        if (nf < 4 || *end || op < 0 || op >= g->n_nodes) {
            snprintf(err, errlen, "%s:%d: expected 'op,name,type,ms' with op in 0..%d", path, ln,
                     g->n_nodes - 1);
            ok = 0;
            break;
        }
        if (strcmp(fld[1], g->nodes[op].name)) {
            snprintf(err, errlen, "%s:%d: op %ld is '%s' in the profile but '%s' in model %s", path,
                     ln, op, fld[1], g->nodes[op].name, g->name);
            ok = 0;
            break;
        }
        if (strcmp(fld[2], mb_op_name(g->nodes[op].type))) {
            snprintf(err, errlen, "%s:%d: op %ld '%s' is a %s in the profile but a %s in model %s", path, ln, op,
                     fld[1], fld[2], mb_op_name(g->nodes[op].type), g->name);
            ok = 0;
            break;
        }
        if (nf >= 5 && (strtoll(fld[4], &end, 10) != g->nodes[op].out_bytes || *end)) {
            snprintf(err, errlen, "%s:%d: op %ld '%s' outputs %s bytes in the profile but %" PRId64 " in model %s",
                     path, ln, op, fld[1], fld[4], g->nodes[op].out_bytes, g->name);
            ok = 0;
            break;
        }
        double ms = strtod(fld[3], &end);
        if (*end || !(ms >= 0) || !isfinite(ms)) {
            snprintf(err, errlen, "%s:%d: ms '%s' is not a number >= 0", path, ln, fld[3]);
            ok = 0;
            break;
        }
        if (seen[op]) {
            snprintf(err, errlen, "%s:%d: op %ld appears twice", path, ln, op);
            ok = 0;
            break;
        }
        seen[op] = 1;
        p->ms[op] = ms;
        rows++;
    }
    fclose(f);
    if (ok && !header) {
        snprintf(err, errlen, "%s: no 'op,name,type,ms' header: not a mecbed profile", path);
        ok = 0;
    }
    if (ok && rows != g->n_nodes) {
        snprintf(err, errlen, "%s: %d ops profiled but model %s has %d", path, rows, g->name,
                 g->n_nodes);
        ok = 0;
    }
    if (ok && !(p->ref_gflops > 0)) {
        snprintf(err, errlen, "%s: header lacks ref_gflops= (the sgemm rate node types scale by)",
                 path);
        ok = 0;
    }
    free(seen);
    if (!ok) {
        mb_profile_free(p);
        return NULL;
    }
    return p;
}

static void cache_path(const mb_graph *g, char *out, size_t len, int mkdirs)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char dir[2048];
    if (xdg && *xdg)
        snprintf(dir, sizeof(dir), "%s/mecbed", xdg);
    else
        snprintf(dir, sizeof(dir), "%s/.cache/mecbed", home && *home ? home : "/tmp");
    if (mkdirs) {
        char parent[2048];
        snprintf(parent, sizeof(parent), "%s", dir);
        char *sl = strrchr(parent, '/');
        if (sl) {
            *sl = 0;
            mkdir(parent, 0755);
        }
        mkdir(dir, 0755);
    }
    snprintf(out, len, "%s/%s-%016" PRIx64 ".csv", dir, g->name, mb_graph_hash(g));
}

mb_profile *mb_profile_default(const mb_graph *g, const char **source, char *err, size_t errlen)
{
    char rel[256], path[4096], e2[512];
    snprintf(rel, sizeof(rel), "policies/profiles/%s.csv", g->name);
    if (!mb_datadir_find(rel, path, sizeof(path))) {
        mb_profile *p = mb_profile_read_csv(path, g, e2, sizeof(e2));
        if (p && (!p->file_hash || p->file_hash == p->graph_hash)) { /* else stale: another version */
            if (source)
                *source = "pinned";
            return p;
        }
        mb_profile_free(p);
    }
    cache_path(g, path, sizeof(path), 0);
    mb_profile *p = mb_profile_read_csv(path, g, e2, sizeof(e2));
    if (p && (!p->file_hash || p->file_hash == p->graph_hash)) {
        if (source)
            *source = "cached";
        return p;
    }
    mb_profile_free(p);
    p = mb_profile_measure(g, "cpu", 1, 3, err, errlen);
    if (!p)
        return NULL;
    cache_path(g, path, sizeof(path), 1);
    mb_profile_write_csv(p, g, path, e2, sizeof(e2)); /* a cache: failing to write is not an error */
    if (source)
        *source = "measured";
    return p;
}
