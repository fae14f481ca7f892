/* mecbed export: a zoo model (or a model file) as an ONNX file with its
 * seeded weights, optionally with an ONNX backend-test data set (input and
 * expected output as TensorProto .pb files) so other runtimes, ONNX's own
 * test runner and `mecbed conformance --data` can check it. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mecbed/backend.h"
#include "mecbed/exec.h"
#include "mecbed/model.h"
#include "mecbed/onnx.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed export --model NAME|FILE -o MODEL.onnx [options]\n"
            "\n"
            "Writes a model (a zoo name with its seeded weights, or a model file) as an\n"
            "ONNX model (opset 14), weights inside.\n"
            "\n"
            "  -m, --model NAME|FILE  the model (see `mecbed models`)\n"
            "  -o, --output FILE      the .onnx file to write\n"
            "      --test-data        also write test_data_set_0/input_K.pb and output_K.pb\n"
            "                         beside it: a seeded input and the output this mecbed\n"
            "                         computes (ONNX's backend-test layout)\n"
            "  -k, --kernels NAME     kernels for --test-data outputs: cpu (default) or ref\n"
            "                         (-b/--backend: deprecated spelling)\n"
            "      --seed N           seed of the --test-data input (default 1)\n"
            "      --fold-bn          fold BatchNormalization into the preceding Conv first\n"
            "  -h, --help             this text\n");
}

/* dir/test_data_set_0/{input,output}_K.pb, with dir the .onnx file's folder. */
static int write_test_data(const mb_graph *g, const char *onnx_path, const char *backend, long seed)
{
    char dir[4096], p[4200], err[1024];
    snprintf(dir, sizeof dir, "%s", onnx_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;
    size_t l = strlen(dir);
    snprintf(dir + l, sizeof dir - l, "test_data_set_0");
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "mecbed export: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    mb_backend *be = mb_backend_new(backend, 1, err, sizeof err);
    if (!be) {
        fprintf(stderr, "mecbed export: %s\n", err);
        return -1;
    }
    mb_tensor **ins = mb_exec_make_inputs(g, (uint64_t)seed);
    mb_tensor **outs = NULL;
    int rc = -1, n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    if (!ins) {
        mb_exec_memory_error(g, "inputs", err, sizeof err);
        fprintf(stderr, "mecbed export: %s\n", err);
        goto done;
    }
    if (mb_exec_run(g, be, ins, &outs, NULL, NULL, err, sizeof err)) {
        fprintf(stderr, "mecbed export: running %s: %s\n", g->name, err);
        goto done;
    }
    for (int i = 0, k = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].type != MB_OP_INPUT)
            continue;
        snprintf(p, sizeof p, "%s/input_%d.pb", dir, k);
        if (mb_onnx_tensor_write_as(ins[k], g->nodes[i].out_dtype, g->nodes[i].name, p, err, sizeof err)) {
            fprintf(stderr, "mecbed export: %s\n", err);
            goto done;
        }
        k++;
    }
    for (int k = 0; k < g->n_outputs; k++) {
        snprintf(p, sizeof p, "%s/output_%d.pb", dir, k);
        if (mb_onnx_tensor_write_as(outs[k], g->nodes[g->outputs[k]].out_dtype, g->nodes[g->outputs[k]].name, p, err,
                                    sizeof err)) {
            fprintf(stderr, "mecbed export: %s\n", err);
            goto done;
        }
    }
    printf("wrote %s/ (%d input%s, %d output%s, computed on the %s backend)\n", dir, n_in, n_in == 1 ? "" : "s",
           g->n_outputs, g->n_outputs == 1 ? "" : "s", mb_backend_name(be));
    rc = 0;
done:
    if (ins) {
        for (int k = 0; k < n_in; k++)
            mb_tensor_free(ins[k]);
        free(ins);
    }
    if (outs) {
        for (int k = 0; k < g->n_outputs; k++)
            mb_tensor_free(outs[k]);
        free(outs);
    }
    mb_backend_free(be);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    enum { O_TEST = 256, O_SEED, O_FOLD };
    static const struct option lopts[] = {
        {"model", required_argument, NULL, 'm'}, {"output", required_argument, NULL, 'o'},
        {"test-data", no_argument, NULL, O_TEST}, {"kernels", required_argument, NULL, 'k'},
        {"backend", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, O_SEED}, {"fold-bn", no_argument, NULL, O_FOLD},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *out = NULL, *backend = "cpu";
    long seed = 1;
    int test_data = 0, fold = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:k:b:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'k': backend = optarg; break;
        case 'b': /* the old spelling (and -b), kept for a release */
            mb_cli_deprecated("backend", "kernels");
            backend = optarg;
            break;
        case O_TEST: test_data = 1; break;
        case O_FOLD: fold = 1; break;
        case O_SEED:
            if (mb_cli_int(optarg, 0, 1L << 62, &seed)) {
                fprintf(stderr, "mecbed export: --seed wants a non-negative integer, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed export: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !out) {
        fprintf(stderr, "mecbed export: --model and -o are required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    mb_graph *g = mb_model_load(model, err, sizeof err);
    if (!g) {
        fprintf(stderr, "mecbed export: %s\n", err);
        return 1;
    }
    if (fold && mb_graph_fold_batchnorm(g) && mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed export: after folding BatchNormalization: %s\n", err);
        mb_graph_free(g);
        return 1;
    }
    int rc = 0;
    if (mb_onnx_save(g, out, err, sizeof err)) {
        fprintf(stderr, "mecbed export: %s\n", err);
        rc = 1;
    } else {
        /* ops as every command counts them (mb_graph_n_ops: no inputs or constants) */
        printf("wrote %s: model %s, %d ops, %.3f M params\n", out, g->name, mb_graph_n_ops(g),
               (double)mb_graph_params(g) / 1e6);
        if (test_data && write_test_data(g, out, backend, seed))
            rc = 1;
    }
    mb_graph_free(g);
    return rc;
}
