/* mecbed infer: run a model through one kernel backend, with NumPy .npy
 * input/output and a per-op profile; optionally check it against the
 * reference backend. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/npy.h"
#include "mecbed/platform.h"
#include "mecbed/profile.h"

#define MAX_FILES 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed infer --model NAME|FILE [options]\n"
            "\n"
            "Runs a model (a zoo name, a model file in mecbed's text format, or .onnx)\n"
            "through a kernel backend and prints a per-operator profile.\n"
            "\n"
            "  -m, --model NAME|FILE  the model (see `mecbed models`)\n"
            "  -i, --input X.npy      input tensor (float32 .npy); repeat for each graph input,\n"
            "                         in order. Default: seeded uniform values in [-1, 1)\n"
            "  -o, --output Y.npy     write output tensor (repeat for further outputs)\n"
            "  -k, --kernels NAME     kernel backend: cpu (default, OpenBLAS), ref (naive reference\n"
            "                         kernels) or cuda (GPU); -b/--backend: deprecated spelling\n"
            "  -t, --threads N        threads for the backend (default 1)\n"
            "  -r, --repeats N        time N runs, report each op's median (default 1)\n"
            "      --warmup N         untimed runs first (default 1: caches, pages, BLAS set-up)\n"
            "  -p, --profile P.csv    write the per-op profile (mecbed profile CSV format)\n"
            "      --compare-ref      also run the reference backend; report max abs difference\n"
            "      --fold-bn          fold BatchNormalization into the preceding conv first\n"
            "      --fuse             run a conv with the residual Add and/or activation (Relu, Clip, ...)\n"
            "                         after it in one pass where the backend can (cpu); those then show 0 ms\n"
            "      --seed N           seed of the generated input (default 1)\n"
            "      --top N            list only the N slowest ops (default: all)\n"
            "      --json             print one JSON object instead of the table\n"
            "  -h, --help             this text\n");
}

typedef struct infer_opts {
    const char *model, *backend, *profile;
    const char *inputs[MAX_FILES], *outputs[MAX_FILES];
    int n_inputs, n_outputs;
    long threads, repeats, seed, top, warmup;
    int compare_ref, fold_bn, fuse, json;
} infer_opts;

static int parse_args(int argc, char **argv, infer_opts *o)
{
    enum { O_COMPARE = 256, O_FOLD, O_SEED, O_TOP, O_JSON, O_WARMUP, O_FUSE };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},     {"input", required_argument, NULL, 'i'},
        {"output", required_argument, NULL, 'o'},    {"kernels", required_argument, NULL, 'k'},
        {"backend", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},   {"repeats", required_argument, NULL, 'r'},
        {"profile", required_argument, NULL, 'p'},   {"compare-ref", no_argument, NULL, O_COMPARE},
        {"fuse", no_argument, NULL, O_FUSE},
        {"fold-bn", no_argument, NULL, O_FOLD},      {"seed", required_argument, NULL, O_SEED},
        {"top", required_argument, NULL, O_TOP},     {"json", no_argument, NULL, O_JSON},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->backend = "cpu";
    o->threads = 1;
    o->repeats = 1;
    o->seed = 1;
    o->warmup = 1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:i:o:k:b:t:r:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'i':
        case 'o': {
            int *n = c == 'i' ? &o->n_inputs : &o->n_outputs;
            if (*n == MAX_FILES) {
                fprintf(stderr, "mecbed infer: at most %d --%s files\n", MAX_FILES, c == 'i' ? "input" : "output");
                return 2;
            }
            (c == 'i' ? o->inputs : o->outputs)[(*n)++] = optarg;
            break;
        }
        case 'k': o->backend = optarg; break;
        case 'b': /* the old spelling (and -b), kept for a release */
            mb_cli_deprecated("backend", "kernels");
            o->backend = optarg;
            break;
        case 't':
            if (mb_cli_int(optarg, 1, 1024, &o->threads)) {
                fprintf(stderr, "mecbed infer: --threads '%s': expected an integer from 1 to 1024\n", optarg);
                return 2;
            }
            break;
        case 'r':
            if (mb_cli_int(optarg, 1, 100000, &o->repeats)) {
                fprintf(stderr, "mecbed infer: --repeats '%s': expected a positive integer\n", optarg);
                return 2;
            }
            break;
        case 'p': o->profile = optarg; break;
        case O_COMPARE: o->compare_ref = 1; break;
        case O_FOLD: o->fold_bn = 1; break;
        case O_FUSE: o->fuse = 1; break;
        case O_SEED:
            if (mb_cli_int(optarg, 0, 2147483647L, &o->seed)) {
                fprintf(stderr, "mecbed infer: --seed '%s': expected a non-negative integer\n", optarg);
                return 2;
            }
            break;
        case O_TOP:
            if (mb_cli_int(optarg, 1, 1000000, &o->top)) {
                fprintf(stderr, "mecbed infer: --top '%s': expected a positive integer\n", optarg);
                return 2;
            }
            break;
        case O_JSON: o->json = 1; break;
        case O_WARMUP:
            if (mb_cli_int(optarg, 0, 1000, &o->warmup)) {
                fprintf(stderr, "mecbed infer: --warmup '%s': expected an integer from 0 to 1000\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed infer: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!o->model) {
        fprintf(stderr, "mecbed infer: --model is required\n");
        usage(stderr);
        return 2;
    }
    return -1; /* carry on */
}

static double gflops(int64_t macs, double ms)
{
    return ms > 0 ? 2.0 * (double)macs / (ms * 1e6) : 0;
}

static double max_abs(const mb_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < mb_tensor_numel(t); i++)
        m = fmax(m, fabs(t->data[i]));
    return m;
}

static int cmp_ms_desc(const void *a, const void *b, void *ctx)
{
    const mb_op_time *t = ctx;
    double x = t[*(const int *)a].ms, y = t[*(const int *)b].ms;
    return (x < y) - (x > y);
}

static int write_profile(const char *path, const mb_graph *g, const mb_op_time *times, const infer_opts *o,
                         char *err, size_t errlen)
{
    mb_profile *p = mb_profile_new(g);
    if (!p) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < g->n_nodes; i++)
        p->ms[i] = times[i].ms;
    p->graph_hash = mb_graph_hash(g);
    p->threads = (int)o->threads;
    p->repeats = (int)o->repeats;
    snprintf(p->backend, sizeof p->backend, "%s", o->backend);
    snprintf(p->blas_core, sizeof p->blas_core, "%s", mb_platform_blas_core());
    mb_platform_cpu_model(p->cpu, sizeof p->cpu);
    p->ref_gflops = mb_profile_sgemm_gflops((int)o->threads);
    int rc = mb_profile_write_csv(p, g, path, err, errlen);
    mb_profile_free(p);
    return rc;
}

/* One infer invocation's state, from the loaded model to the timings. */
typedef struct infer_run {
    mb_graph *g;
    mb_backend *be, *ref;
    mb_tensor **inputs, **outs, **ref_outs; /* inputs: NULL-terminated */
    mb_op_time *times;
    int *order; /* ops in print order (slowest first with --top) */
    int shown;  /* how many of order[] to print */
    int folded;
    double wall_ms, total_ms, ref_diff, ref_scale;
    int64_t macs;
} infer_run;

/* The graph inputs: from --input files, else seeded. 0 or -1 (printed). */
static int load_inputs(const infer_opts *o, infer_run *r)
{
    char err[1024];
    const mb_graph *g = r->g;
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    if (o->n_inputs) {
        if (o->n_inputs != n_in) {
            fprintf(stderr, "mecbed infer: model '%s' has %d input%s, %d --input file%s given\n", g->name, n_in,
                    n_in == 1 ? "" : "s", o->n_inputs, o->n_inputs == 1 ? "" : "s");
            return -1;
        }
        r->inputs = calloc((size_t)n_in + 1, sizeof *r->inputs);
        for (int k = 0; r->inputs && k < n_in; k++)
            if (!(r->inputs[k] = mb_npy_read(o->inputs[k], err, sizeof err))) {
                fprintf(stderr, "mecbed infer: %s\n", err);
                return -1;
            }
    } else {
        r->inputs = mb_exec_make_inputs(g, (uint64_t)o->seed);
    }
    if (!r->inputs) {
        mb_exec_memory_error(g, "inputs", err, sizeof err);
        fprintf(stderr, "mecbed infer: %s: %s\n", o->model, err);
        return -1;
    }
    return 0;
}

/* Model, inputs, backends and buffers. 0 or -1 (printed). */
static int infer_prepare(const infer_opts *o, infer_run *r)
{
    char err[1024];
    if (!(r->g = mb_model_load(o->model, err, sizeof err))) {
        fprintf(stderr, "mecbed infer: %s\n", err);
        return -1;
    }
    const mb_graph *g = r->g;
    r->folded = o->fold_bn ? mb_graph_fold_batchnorm(r->g) : 0;
    if (load_inputs(o, r))
        return -1;
    if (o->n_outputs > g->n_outputs) {
        fprintf(stderr, "mecbed infer: model '%s' has %d output%s, %d --output file%s given\n", g->name,
                g->n_outputs, g->n_outputs == 1 ? "" : "s", o->n_outputs, o->n_outputs == 1 ? "" : "s");
        return -1;
    }
    if (!(r->be = mb_backend_new(o->backend, (int)o->threads, err, sizeof err))) {
        fprintf(stderr, "mecbed infer: %s\n", err);
        return -1;
    }
    if (o->compare_ref && !(r->ref = mb_backend_new("ref", 1, err, sizeof err))) {
        fprintf(stderr, "mecbed infer: --compare-ref: %s\n", err);
        return -1;
    }
    r->times = calloc((size_t)g->n_nodes, sizeof *r->times);
    r->order = malloc(sizeof(int) * (size_t)g->n_nodes);
    if (!r->times || !r->order) {
        fprintf(stderr, "mecbed infer: out of memory\n");
        return -1;
    }
    return 0;
}

/* Warm-up runs, the timed runs, and the reference run with --compare-ref.
 * 0 or -1 (printed). */
static int infer_execute(const infer_opts *o, infer_run *r)
{
    char err[1024];
    const mb_graph *g = r->g;
    for (long w = 0; w < o->warmup; w++) {
        mb_tensor **tmp = NULL;
        mb_exec_opts wo = {.repeats = 1, .fuse = o->fuse};
        if (mb_exec_run(g, r->be, r->inputs, &tmp, &wo, NULL, err, sizeof err)) {
            fprintf(stderr, "mecbed infer: %s\n", err);
            return -1;
        }
        for (int k = 0; k < g->n_outputs; k++)
            mb_tensor_free(tmp[k]);
        free(tmp);
    }
    mb_exec_opts eo = {.keep_all = 0, .times = r->times, .repeats = (int)o->repeats, .fuse = o->fuse};
    double t0 = mb_now();
    if (mb_exec_run(g, r->be, r->inputs, &r->outs, &eo, NULL, err, sizeof err)) {
        fprintf(stderr, "mecbed infer: %s\n", err);
        return -1;
    }
    r->wall_ms = (mb_now() - t0) * 1e3 / (double)o->repeats;
    if (r->ref) {
        if (mb_exec_run(g, r->ref, r->inputs, &r->ref_outs, NULL, NULL, err, sizeof err)) {
            fprintf(stderr, "mecbed infer: reference run: %s\n", err);
            return -1;
        }
        for (int k = 0; k < g->n_outputs; k++) {
            r->ref_diff = fmax(r->ref_diff, mb_tensor_max_abs_diff(r->outs[k], r->ref_outs[k]));
            r->ref_scale = fmax(r->ref_scale, max_abs(r->ref_outs[k]));
        }
    }
    return 0;
}

/* --output files and the --profile CSV. 0 or -1 (printed). */
static int infer_write_files(const infer_opts *o, infer_run *r)
{
    char err[1024];
    for (int k = 0; k < o->n_outputs; k++)
        if (mb_npy_write(r->outs[k], o->outputs[k], err, sizeof err)) {
            fprintf(stderr, "mecbed infer: %s\n", err);
            return -1;
        }
    if (o->profile && write_profile(o->profile, r->g, r->times, o, err, sizeof err)) {
        fprintf(stderr, "mecbed infer: %s\n", err);
        return -1;
    }
    return 0;
}

/* Totals, and which ops to list in what order (--top: the slowest). */
static void infer_rank_ops(const infer_opts *o, infer_run *r)
{
    const mb_graph *g = r->g;
    r->total_ms = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        r->total_ms += r->times[i].ms;
        r->order[i] = i;
    }
    r->macs = mb_graph_macs(g);
    r->shown = g->n_nodes;
    if (o->top && o->top < r->shown) {
        qsort_r(r->order, (size_t)g->n_nodes, sizeof(int), cmp_ms_desc, r->times);
        r->shown = (int)o->top;
    }
}


/* Convolutions and pools: the window, so a script can tell a 1x1 conv from
 * a 3x3 or a stride-2 one (scripts/ort-op-types.py groups by it). */
static void add_window(cJSON *e, const mb_graph *g, const mb_node *n)
{
    if (n->type != MB_OP_CONV && n->type != MB_OP_CONV_TRANSPOSE && n->type != MB_OP_MAXPOOL &&
        n->type != MB_OP_AVGPOOL)
        return;
    const mb_op_attrs *a = &n->a;
    int sh = a->stride[0] > 0 ? a->stride[0] : 1, sw = a->stride[1] > 0 ? a->stride[1] : 1;
    cJSON_AddItemToObject(e, "kernel", cJSON_CreateIntArray(a->kernel, 2));
    cJSON_AddItemToObject(e, "stride", cJSON_CreateIntArray((const int[2]){sh, sw}, 2));
    if (n->type == MB_OP_MAXPOOL || n->type == MB_OP_AVGPOOL)
        return;
    cJSON_AddNumberToObject(e, "group", a->group > 0 ? a->group : 1);
    if (n->n_inputs > 0)
        cJSON_AddNumberToObject(e, "in_channels", (double)g->nodes[n->inputs[0]].out_dims[1]);
}
static int print_json(const infer_opts *o, const infer_run *r)
{
    const mb_graph *g = r->g;
    char cpu[128], shape[64];
    mb_platform_cpu_model(cpu, sizeof cpu);
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "model", g->name);
    cJSON_AddStringToObject(js, "backend", mb_backend_name(r->be));
    cJSON_AddNumberToObject(js, "threads", (double)o->threads);
    cJSON_AddStringToObject(js, "blas_core", mb_platform_blas_core());
    cJSON_AddStringToObject(js, "cpu", cpu);
    cJSON_AddNumberToObject(js, "repeats", (double)o->repeats);
    cJSON_AddNumberToObject(js, "warmup", (double)o->warmup);
    cJSON_AddNumberToObject(js, "bn_folded", r->folded);
    cJSON_AddBoolToObject(js, "fused", o->fuse);
    cJSON_AddNumberToObject(js, "ops", mb_graph_n_ops(g));
    cJSON_AddNumberToObject(js, "params", (double)mb_graph_params(g));
    cJSON_AddNumberToObject(js, "macs", (double)r->macs);
    cJSON_AddNumberToObject(js, "total_ms", r->total_ms);
    cJSON_AddNumberToObject(js, "wall_ms", r->wall_ms);
    cJSON_AddNumberToObject(js, "gflops", gflops(r->macs, r->total_ms));
    cJSON *jo = cJSON_AddArrayToObject(js, "outputs");
    for (int k = 0; k < g->n_outputs; k++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", g->nodes[g->outputs[k]].name);
        mb_cli_dims(r->outs[k]->ndim, r->outs[k]->dims, shape, sizeof shape);
        cJSON_AddStringToObject(e, "shape", shape);
        cJSON_AddNumberToObject(e, "max_abs", max_abs(r->outs[k]));
        if (k < o->n_outputs)
            cJSON_AddStringToObject(e, "file", o->outputs[k]);
        cJSON_AddItemToArray(jo, e);
    }
    if (r->ref) {
        cJSON *c = cJSON_AddObjectToObject(js, "compare_ref");
        cJSON_AddNumberToObject(c, "max_abs_diff", r->ref_diff);
        cJSON_AddNumberToObject(c, "max_abs_ref", r->ref_scale);
    }
    cJSON *ops = cJSON_AddArrayToObject(js, "profile");
    for (int s = 0; s < r->shown; s++) {
        int i = r->order[s];
        const mb_node *n = &g->nodes[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "op", i);
        cJSON_AddStringToObject(e, "name", n->name);
        cJSON_AddStringToObject(e, "type", mb_op_name(n->type));
        cJSON_AddNumberToObject(e, "ms", r->times[i].ms);
        cJSON_AddNumberToObject(e, "bytes_out", (double)n->out_bytes);
        cJSON_AddNumberToObject(e, "macs", (double)n->macs);
        cJSON_AddNumberToObject(e, "gflops", gflops(n->macs, r->times[i].ms));
        add_window(e, g, n);
        cJSON_AddItemToArray(ops, e);
    }
    char *s = cJSON_Print(js);
    puts(s);
    free(s);
    cJSON_Delete(js);
    return 0;
}

/* The text report's per-op-type summary. */
static void print_by_type(const infer_run *r)
{
    const mb_graph *g = r->g;
    printf("\nby type:\n");
    for (int t = 0; t < MB_OP_COUNT; t++) {
        int count = 0;
        double ms = 0;
        int64_t tm = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if ((int)g->nodes[i].type == t) {
                count++;
                ms += r->times[i].ms;
                tm += g->nodes[i].macs;
            }
        if (count)
            printf("  %-20s %4d ops %10.3f ms %6.1f %% %8.1f GFLOP/s\n", mb_op_name((mb_op_type)t), count, ms,
                   r->total_ms > 0 ? 100 * ms / r->total_ms : 0, gflops(tm, ms));
    }
}

static void print_table(const infer_opts *o, const infer_run *r)
{
    const mb_graph *g = r->g;
    char cpu[128], shape[64];
    mb_platform_cpu_model(cpu, sizeof cpu);
    const mb_tensor *in0 = r->inputs[0];
    mb_cli_dims(in0 ? in0->ndim : 0, in0 ? in0->dims : NULL, shape, sizeof shape);
    printf("model %s: %d ops, %.3f M params, %.3f GMACs, input %s%s\n", g->name, mb_graph_n_ops(g),
           mb_graph_params(g) / 1e6, r->macs / 1e9, shape, r->folded ? " (BN folded)" : "");
    printf("backend %s, %ld thread%s, OpenBLAS core %s, %s, %ld timed run%s (per-op median) after %ld warm-up\n\n",
           mb_backend_name(r->be), o->threads, o->threads == 1 ? "" : "s", mb_platform_blas_core(), cpu, o->repeats,
           o->repeats == 1 ? "" : "s", o->warmup);
    printf("%5s  %-32s %-18s %9s %12s %14s %8s\n", "op", "name", "type", "ms", "bytes out", "MACs", "GFLOP/s");
    for (int s = 0; s < r->shown; s++) {
        int i = r->order[s];
        const mb_node *n = &g->nodes[i];
        printf("%5d  %-32.32s %-18s %9.3f %12" PRId64 " %14" PRId64 " %8.1f\n", i, n->name, mb_op_name(n->type),
               r->times[i].ms, n->out_bytes, n->macs, gflops(n->macs, r->times[i].ms));
    }
    if (r->shown < g->n_nodes)
        printf("  ... %d faster ops not shown (--top)\n", g->n_nodes - r->shown);
    print_by_type(r);
    printf("\ntotal %.3f ms (sum of per-op times), %.3f ms wall per run, %.1f GFLOP/s\n", r->total_ms, r->wall_ms,
           gflops(r->macs, r->total_ms));
    for (int k = 0; k < g->n_outputs; k++) {
        mb_cli_dims(r->outs[k]->ndim, r->outs[k]->dims, shape, sizeof shape);
        printf("output %d '%s': %s, max |y| %.4g%s%s\n", k, g->nodes[g->outputs[k]].name, shape,
               max_abs(r->outs[k]), k < o->n_outputs ? " -> " : "", k < o->n_outputs ? o->outputs[k] : "");
    }
    if (r->ref)
        printf("compare-ref: max |%s - ref| = %.3g (max |ref| %.4g)\n", mb_backend_name(r->be), r->ref_diff, r->ref_scale);
    if (o->profile)
        printf("profile written to %s\n", o->profile);
}

static void infer_run_free(infer_run *r)
{
    int n_out = r->g ? r->g->n_outputs : 0;
    for (int k = 0; r->outs && k < n_out; k++)
        mb_tensor_free(r->outs[k]);
    for (int k = 0; r->ref_outs && k < n_out; k++)
        mb_tensor_free(r->ref_outs[k]);
    free(r->outs);
    free(r->ref_outs);
    for (int k = 0; r->inputs && r->inputs[k]; k++)
        mb_tensor_free(r->inputs[k]);
    free(r->inputs);
    free(r->times);
    free(r->order);
    mb_backend_free(r->be);
    mb_backend_free(r->ref);
    mb_graph_free(r->g);
}

int cmd_infer(int argc, char **argv)
{
    infer_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    infer_run r = {0};
    rc = 1;
    if (!infer_prepare(&o, &r) && !infer_execute(&o, &r) && !infer_write_files(&o, &r)) {
        infer_rank_ops(&o, &r);
        if (o.json)
            print_json(&o, &r);
        else
            print_table(&o, &r);
        rc = 0;
    }
    infer_run_free(&r);
    return rc;
}
