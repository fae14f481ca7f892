/* mecbed conformance: ONNX's own backend tests (Debian libonnx-testdata)
 * run through a kernel backend. A test is in scope when every operator of
 * its model is one the foundation issue lists (Constant nodes aside); each of
 * its test_data_set_N is imported with the data set's inputs bound (so
 * weights fed as graph inputs become constants), run, and compared with the
 * expected outputs as ONNX does: |got - want| <= atol + rtol * |want|. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/onnx.h"
#include "commands.h"

#define DEFAULT_DATA "/usr/share/libonnx-testdata/data"
#define RTOL 1e-3
#define ATOL 1e-5
#define MAX_IO 16

static const char *const suites[] = {"node", "pytorch-converted", "pytorch-operator"};

/* The foundation issue's operators: the conformance scope. */
static const char *const foundation_ops[] = {
    "Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool", "Relu", "Clip",
    "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Add", "Sub", "Mul", "Div", "Concat",
    "BatchNormalization", "Softmax", "Flatten", "Reshape", "Pad", "Resize", "Identity", "Dropout",
};

enum { ST_PASS, ST_FAIL, ST_SKIP, ST_SCOPE };

typedef struct result {
    int status;
    int datasets;
    double max_err;
    char reason[1024];
} result;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed conformance [options]\n"
            "\n"
            "Runs ONNX's backend conformance tests (node/, pytorch-converted/,\n"
            "pytorch-operator/ of Debian's libonnx-testdata) whose operators are all in\n"
            "mecbed's foundation list, on one kernel backend, and compares every output\n"
            "with ONNX's expected one (rtol %g, atol %g). Prints failures and skipped\n"
            "tests with the reason, then 'N passed, N failed, N skipped'. Exit status 1\n"
            "if any test failed.\n"
            "\n"
            "  -k, --kernels NAME   kernel backend: ref (default), cpu or cuda\n"
            "                       (-b/--backend: deprecated spelling)\n"
            "  -t, --threads N      backend threads (default 1)\n"
            "  -f, --filter SUBSTR  only tests whose name contains SUBSTR\n"
            "  -d, --data DIR       test data folder (default %s); either the\n"
            "                       folder holding node/ etc., or one folder of test_* dirs\n"
            "  -v, --verbose        also print a line for every passing test\n"
            "      --all            every test, whatever its operators (not the conformance\n"
            "                       count: shows what else imports; a model that only runs\n"
            "                       with its inputs folded as constants is run that way)\n"
            "      --json           one JSON object (counts and every test) instead of text\n"
            "  -h, --help           this text\n",
            RTOL, ATOL, DEFAULT_DATA);
}

static int in_scope(const mb_onnx_model *m, char *why, size_t len)
{
    int n = mb_onnx_n_nodes(m), found = 0;
    for (int i = 0; i < n; i++) {
        const char *op = mb_onnx_node_op(m, i), *dom = mb_onnx_node_domain(m, i);
        if (*dom && strcmp(dom, "ai.onnx")) {
            snprintf(why, len, "operator %s of domain %s", op, dom);
            return 0;
        }
        if (!strcmp(op, "Constant"))
            continue;
        int ok = 0;
        for (size_t k = 0; k < sizeof foundation_ops / sizeof foundation_ops[0]; k++)
            ok |= !strcmp(op, foundation_ops[k]);
        if (!ok) {
            snprintf(why, len, "operator %s", op);
            return 0;
        }
        found = 1;
    }
    return found;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Read dir/prefix_K.pb for K = 0, 1, ... while present. */
static int read_tensors(const char *dir, const char *prefix, mb_onnx_tensor **out, int *n, char *err, size_t errlen)
{
    *n = 0;
    for (int k = 0;; k++) {
        char p[4096];
        snprintf(p, sizeof p, "%.4000s/%.20s_%d.pb", dir, prefix, k);
        if (!is_file(p))
            return 0;
        if (k >= MAX_IO) {
            snprintf(err, errlen, "%.400s: more than %d %s files", dir, MAX_IO, prefix);
            return -1;
        }
        out[k] = mb_onnx_tensor_read(p, err, errlen);
        if (!out[k])
            return -1;
        *n = k + 1;
    }
}

static void free_tensors(mb_onnx_tensor **t, int n)
{
    for (int k = 0; k < n; k++)
        mb_onnx_tensor_free(t[k]);
}

static void dims_str(const int64_t *d, int nd, char *buf, size_t len)
{
    mb_cli_dims(nd, d, buf, len);
}

/* Compare got with want as numpy's assert_allclose does. 0 if close;
 * otherwise 1 with the first offending element described in reason. */
static int compare(const mb_tensor *got, const mb_onnx_tensor *want, int k, double *max_err, char *reason, size_t len)
{
    char a[128], b[128];
    int same = got->ndim == want->ndim;
    for (int d = 0; same && d < got->ndim; d++)
        same = got->dims[d] == want->dims[d];
    /* mecbed has no rank 0: a scalar is a 1-element 1-D tensor */
    if (want->ndim == 0 && got->ndim == 1 && got->dims[0] == 1)
        same = 1;
    if (!same) {
        dims_str(got->dims, got->ndim, a, sizeof a);
        dims_str(want->dims, want->ndim, b, sizeof b);
        snprintf(reason, len, "output %d has shape %s, expected %s", k, a, b);
        return 1;
    }
    int bad = 0;
    for (int64_t i = 0; i < want->numel; i++) {
        double g = got->data[i], w = want->f->data[i];
        if (isnan(g) && isnan(w))
            continue;
        double e = fabs(g - w);
        if (isinf(w) && g == w)
            e = 0;
        if (!(e <= *max_err) && !isnan(e))
            *max_err = e;
        if (!(e <= ATOL + RTOL * fabs(w))) {
            if (!bad)
                snprintf(reason, len, "output %d element %lld is %.9g, expected %.9g (|diff| %.3g)", k, (long long)i,
                         g, w, e);
            bad++;
        }
    }
    if (bad) {
        size_t l = strlen(reason);
        snprintf(reason + l, len - l, "; %d of %lld elements differ", bad, (long long)want->numel);
    }
    return bad != 0;
}

static int all_ops; /* --all */

static int run_dataset(const mb_onnx_model *m, const char *ds, mb_backend *be, result *r)
{
    mb_onnx_tensor *ins[MAX_IO] = {0}, *outs[MAX_IO] = {0};
    int n_in = 0, n_out = 0, status = ST_FAIL;
    mb_graph *g = NULL;
    mb_tensor *feeds[MAX_IO] = {0};
    mb_tensor **got = NULL;
    char err[1024];
    if (read_tensors(ds, "input", ins, &n_in, err, sizeof err) ||
        read_tensors(ds, "output", outs, &n_out, err, sizeof err)) {
        snprintf(r->reason, sizeof r->reason, "%.1000s", err);
        goto done;
    }
    if (n_in > mb_onnx_n_inputs(m)) {
        snprintf(r->reason, sizeof r->reason, "%.900s: %d input files for %d graph inputs", ds, n_in, mb_onnx_n_inputs(m));
        goto done;
    }
    mb_onnx_binding bind[MAX_IO];
    memset(bind, 0, sizeof bind);
    for (int k = 0; k < n_in; k++) {
        bind[k].name = mb_onnx_input_name(m, k);
        bind[k].value = ins[k];
    }
    mb_onnx_opts o = {bind, n_in, 0};
    int why = 0;
    g = mb_onnx_import(m, &o, &why, err, sizeof err);
    if (!g && why == MB_ONNX_UNSUPPORTED && all_ops) {
        /* --all: what only folding could run, run folded (checks the folding) */
        o.fold_bound = 1;
        g = mb_onnx_import(m, &o, &why, err, sizeof err);
    }
    if (!g) {
        status = why == MB_ONNX_UNSUPPORTED ? ST_SKIP : ST_FAIL;
        snprintf(r->reason, sizeof r->reason, "%.1000s", err);
        goto done;
    }
    int fed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *nd = &g->nodes[i];
        if (nd->type == MB_OP_CONSTANT)
            continue;
        if (nd->type != MB_OP_INPUT) {
            if (!mb_backend_supports(be, g, i)) {
                status = ST_SKIP;
                snprintf(r->reason, sizeof r->reason, "backend %s cannot run node '%s' (%s)", mb_backend_name(be),
                         nd->name,
                         mb_op_name(nd->type));
                goto done;
            }
            continue;
        }
        const mb_onnx_tensor *v = NULL;
        for (int k = 0; k < n_in; k++)
            if (!strncmp(bind[k].name, nd->name, MB_NAME_LEN - 1))
                v = ins[k];
        if (!v) {
            snprintf(r->reason, sizeof r->reason, "%.800s: no input file for graph input '%s'", ds, nd->name);
            goto done;
        }
        if (!v->f && mb_onnx_tensor_floatify((mb_onnx_tensor *)v)) {
            status = ST_SKIP;
            snprintf(r->reason, sizeof r->reason, "input '%s' has type %s (values beyond 2^24 or a type mecbed lacks)",
                     nd->name, mb_onnx_type_name(v->data_type));
            goto done;
        }
        feeds[fed] = v->f;
        if (++fed >= MAX_IO) {
            status = ST_SKIP;
            snprintf(r->reason, sizeof r->reason, "more than %d graph inputs", MAX_IO);
            goto done;
        }
    }
    if (n_out != g->n_outputs) {
        snprintf(r->reason, sizeof r->reason, "%.900s: %d output files for %d graph outputs", ds, n_out, g->n_outputs);
        goto done;
    }
    for (int k = 0; k < n_out; k++)
        if (!outs[k]->f && mb_onnx_tensor_floatify(outs[k])) {
            status = ST_SKIP;
            snprintf(r->reason, sizeof r->reason, "output %d has type %s", k, mb_onnx_type_name(outs[k]->data_type));
            goto done;
        }
    if (mb_exec_run(g, be, feeds, &got, NULL, NULL, err, sizeof err)) {
        snprintf(r->reason, sizeof r->reason, "execution failed: %.980s", err);
        goto done;
    }
    status = ST_PASS;
    for (int k = 0; k < n_out; k++)
        if (compare(got[k], outs[k], k, &r->max_err, r->reason, sizeof r->reason)) {
            status = ST_FAIL;
            break;
        }
done:
    if (got) {
        for (int k = 0; g && k < g->n_outputs; k++)
            mb_tensor_free(got[k]);
        free(got);
    }
    mb_graph_free(g);
    free_tensors(ins, n_in);
    free_tensors(outs, n_out);
    return status;
}

static void run_test(const char *dir, mb_backend *be, result *r)
{
    memset(r, 0, sizeof *r);
    char p[4200], err[1024];
    snprintf(p, sizeof p, "%.4000s/model.onnx", dir);
    mb_onnx_model *m = mb_onnx_open(p, err, sizeof err);
    if (!m) {
        r->status = ST_FAIL;
        snprintf(r->reason, sizeof r->reason, "%.1000s", err);
        return;
    }
    if (!all_ops && !in_scope(m, r->reason, sizeof r->reason)) {
        r->status = ST_SCOPE;
        mb_onnx_close(m);
        return;
    }
    r->status = ST_PASS;
    char why[512];
    if (!mb_onnx_io_supported(m, why, sizeof why)) {
        r->status = ST_SKIP;
        snprintf(r->reason, sizeof r->reason, "%s", why);
        mb_onnx_close(m);
        return;
    }
    for (int d = 0;; d++) {
        snprintf(p, sizeof p, "%.4000s/test_data_set_%d", dir, d);
        if (!is_dir(p))
            break;
        int st = run_dataset(m, p, be, r);
        r->datasets++;
        if (st != ST_PASS) {
            r->status = st;
            break;
        }
    }
    if (r->status == ST_PASS && r->datasets == 0) {
        r->status = ST_SKIP;
        snprintf(r->reason, sizeof r->reason, "no test_data_set_N folder");
    }
    mb_onnx_close(m);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* test_* folders under dir, sorted. */
static char **list_tests(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    int cap = 64;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5))
            continue;
        if (*n == cap) {
            char **nv = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
            if (!nv)
                break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v)
        qsort(v, (size_t)*n, sizeof(char *), name_cmp);
    return v;
}

static const char *status_name(int st)
{
    return st == ST_PASS ? "pass" : st == ST_FAIL ? "fail" : "skip";
}

int cmd_conformance(int argc, char **argv)
{
    enum { O_JSON = 256, O_ALL };
    static const struct option lopts[] = {
        {"kernels", required_argument, NULL, 'k'}, {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"filter", required_argument, NULL, 'f'},  {"data", required_argument, NULL, 'd'},
        {"verbose", no_argument, NULL, 'v'},       {"json", no_argument, NULL, O_JSON},
        {"all", no_argument, NULL, O_ALL},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *backend = "ref", *filter = NULL, *data = DEFAULT_DATA;
    long threads = 1;
    int verbose = 0, json = 0, c;
    optind = 1;
    all_ops = 0;
    while ((c = getopt_long(argc, argv, "k:b:t:f:d:vh", lopts, NULL)) != -1) {
        switch (c) {
        case 'k': backend = optarg; break;
        case 'b': /* the old spelling (and -b), kept for a release */
            mb_cli_deprecated("backend", "kernels");
            backend = optarg;
            break;
        case 't':
            if (mb_cli_int(optarg, 1, 256, &threads)) {
                fprintf(stderr, "mecbed conformance: --threads wants a number in 1..256, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'f': filter = optarg; break;
        case 'd': data = optarg; break;
        case 'v': verbose = 1; break;
        case O_JSON: json = 1; break;
        case O_ALL: all_ops = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed conformance: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!is_dir(data)) {
        fprintf(stderr, "mecbed conformance: test data folder %s not found (Debian package libonnx-testdata)\n",
                data);
        return 1;
    }
    char err[512];
    mb_backend *be = mb_backend_new(backend, (int)threads, err, sizeof err);
    if (!be) {
        fprintf(stderr, "mecbed conformance: %s\n", err);
        return 2;
    }

    /* The suites under data, or data itself when it holds test_* folders. */
    const char *dirs[4];
    const char *labels[4];
    int n_dirs = 0;
    char paths[3][4096];
    for (int s = 0; s < 3; s++) {
        snprintf(paths[s], sizeof paths[s], "%.4000s/%s", data, suites[s]);
        if (is_dir(paths[s])) {
            dirs[n_dirs] = paths[s];
            labels[n_dirs++] = suites[s];
        }
    }
    if (!n_dirs) {
        const char *base = strrchr(data, '/');
        dirs[0] = data;
        labels[0] = base && base[1] ? base + 1 : data;
        n_dirs = 1;
    }

    int passed = 0, failed = 0, skipped = 0, scope = 0;
    cJSON *jtests = json ? cJSON_CreateArray() : NULL;
    for (int s = 0; s < n_dirs; s++) {
        int n;
        char **names = list_tests(dirs[s], &n);
        for (int i = 0; i < n; i++) {
            if (filter && !strstr(names[i], filter))
                continue;
            char p[8192];
            snprintf(p, sizeof p, "%.4000s/%.4000s", dirs[s], names[i]);
            result r;
            run_test(p, be, &r);
            if (r.status == ST_SCOPE) {
                scope++;
                continue;
            }
            passed += r.status == ST_PASS;
            failed += r.status == ST_FAIL;
            skipped += r.status == ST_SKIP;
            if (json) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddStringToObject(t, "name", names[i]);
                cJSON_AddStringToObject(t, "suite", labels[s]);
                cJSON_AddStringToObject(t, "status", status_name(r.status));
                cJSON_AddNumberToObject(t, "data_sets", r.datasets);
                cJSON_AddNumberToObject(t, "max_abs_err", r.max_err);
                if (r.status != ST_PASS)
                    cJSON_AddStringToObject(t, "reason", r.reason);
                cJSON_AddItemToArray(jtests, t);
            } else if (r.status == ST_PASS) {
                if (verbose)
                    printf("PASS  %s/%s (%d data set%s, max |err| %.3g)\n", labels[s], names[i], r.datasets,
                           r.datasets == 1 ? "" : "s", r.max_err);
            } else {
                /* the reason names the model file; the test name already says which */
                const char *why = r.reason;
                size_t pl = strlen(p);
                if (!strncmp(why, p, pl) && !strncmp(why + pl, "/model.onnx: ", 13))
                    why += pl + 13;
                printf("%s  %s/%s: %s\n", r.status == ST_FAIL ? "FAIL" : "SKIP", labels[s], names[i], why);
            }
            fflush(stdout);
        }
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "backend", mb_backend_name(be));
        cJSON_AddNumberToObject(o, "passed", passed);
        cJSON_AddNumberToObject(o, "failed", failed);
        cJSON_AddNumberToObject(o, "skipped", skipped);
        cJSON_AddNumberToObject(o, "out_of_scope", scope);
        cJSON_AddNumberToObject(o, "rtol", RTOL);
        cJSON_AddNumberToObject(o, "atol", ATOL);
        cJSON_AddItemToObject(o, "tests", jtests);
        char *s = cJSON_Print(o);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("backend %s: %d tests out of scope (operators outside the foundation list) not counted\n",
               mb_backend_name(be), scope);
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    }
    mb_backend_free(be);
    return failed ? 1 : 0;
}
