/* mecbed import: an ONNX model -> mecbed's text model format
 * (docs/model-format.md, weights in a .bin beside it), so it can be read,
 * edited and run like any model file. Without -o it only checks the model
 * and prints what it contains. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mecbed/model.h"
#include "mecbed/onnx.h"
#include "commands.h"

#define MAX_SHAPES 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed import MODEL.onnx [-o MODEL.mbm] [options]\n"
            "\n"
            "Converts an ONNX model to mecbed's text model format (weights go to\n"
            "MODEL.mbm.bin). Initializers become weights, Constant nodes are folded,\n"
            "and operators mecbed cannot run exactly are refused with the node, its\n"
            "op type and opset. Without -o the model is only checked and summarised.\n"
            "\n"
            "  -o, --output FILE        the model file to write\n"
            "  -s, --shape NAME=D,D,..  dims of a graph input with dynamic dimensions\n"
            "                           (repeatable; a dynamic batch dimension is 1)\n"
            "      --fold-bn            fold BatchNormalization into the preceding Conv\n"
            "      --json               print the summary as JSON\n"
            "  -h, --help               this text\n");
}

static int parse_shape(const char *arg, mb_onnx_binding *b)
{
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return -1;
    char *name = strndup(arg, (size_t)(eq - arg));
    if (!name)
        return -1;
    b->name = name;
    b->value = NULL;
    b->ndim = 0;
    const char *p = eq + 1;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v <= 0 || b->ndim >= MB_MAX_DIMS || (*end && *end != ','))
            return -1;
        b->dims[b->ndim++] = v;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p)
            return -1;
    }
    return b->ndim > 0 ? 0 : -1;
}

int cmd_import(int argc, char **argv)
{
    enum { O_FOLD = 256, O_JSON };
    static const struct option lopts[] = {
        {"output", required_argument, NULL, 'o'}, {"shape", required_argument, NULL, 's'},
        {"fold-bn", no_argument, NULL, O_FOLD},   {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    mb_onnx_binding shapes[MAX_SHAPES];
    int n_shapes = 0, fold = 0, json = 0, c, rc = 1;
    memset(shapes, 0, sizeof shapes);
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:s:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 's':
            if (n_shapes == MAX_SHAPES || parse_shape(optarg, &shapes[n_shapes])) {
                fprintf(stderr, "mecbed import: --shape wants NAME=D,D,... with positive dims (at most %d), not '%s'\n",
                        MAX_SHAPES, optarg);
                free((char *)shapes[n_shapes].name);
                rc = 2;
                goto done;
            }
            n_shapes++;
            break;
        case O_FOLD: fold = 1; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); rc = 0; goto done;
        default: usage(stderr); rc = 2; goto done;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mecbed import: give exactly one ONNX model file\n");
        usage(stderr);
        rc = 2;
        goto done;
    }
    const char *path = argv[optind];
    char err[1024];
    mb_onnx_model *m = mb_onnx_open(path, err, sizeof err);
    if (!m) {
        fprintf(stderr, "mecbed import: %s\n", err);
        goto done;
    }
    mb_onnx_opts o = {shapes, n_shapes, 0};
    int why = 0;
    mb_graph *g = mb_onnx_import(m, &o, &why, err, sizeof err);
    int64_t opset = mb_onnx_opset(m);
    mb_onnx_close(m);
    if (!g) {
        fprintf(stderr, "mecbed import: %s%s\n", why == MB_ONNX_UNSUPPORTED ? "not supported: " : "", err);
        goto done;
    }
    int folded = fold ? mb_graph_fold_batchnorm(g) : 0;
    if (folded && mb_graph_infer(g, err, sizeof err)) {
        fprintf(stderr, "mecbed import: %s: after folding BatchNormalization: %s\n", path, err);
        mb_graph_free(g);
        goto done;
    }
    if (out && mb_modelfile_write(g, out, err, sizeof err)) {
        fprintf(stderr, "mecbed import: %s\n", err);
        mb_graph_free(g);
        goto done;
    }
    int n_ops = mb_graph_n_ops(g);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "model", path);
        cJSON_AddStringToObject(j, "name", g->name);
        cJSON_AddNumberToObject(j, "opset", (double)opset);
        cJSON_AddNumberToObject(j, "ops", n_ops);
        cJSON_AddNumberToObject(j, "params", (double)mb_graph_params(g));
        cJSON_AddNumberToObject(j, "macs", (double)mb_graph_macs(g));
        cJSON_AddNumberToObject(j, "bn_folded", folded);
        cJSON *io = cJSON_AddArrayToObject(j, "inputs");
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].type == MB_OP_INPUT) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "name", g->nodes[i].name);
                cJSON_AddItemToObject(x, "shape", cJSON_CreateArray());
                for (int d = 0; d < g->nodes[i].out_ndim; d++)
                    cJSON_AddItemToArray(cJSON_GetObjectItem(x, "shape"),
                                         cJSON_CreateNumber((double)g->nodes[i].out_dims[d]));
                cJSON_AddItemToArray(io, x);
            }
        if (out)
            cJSON_AddStringToObject(j, "output", out);
        char *s = cJSON_Print(j);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(j);
    } else {
        printf("%s: model %s, opset %lld, %d ops, %.3f M params, %.3f GMACs\n", path, g->name, (long long)opset, n_ops,
               (double)mb_graph_params(g) / 1e6, (double)mb_graph_macs(g) / 1e9);
        for (int i = 0; i < g->n_nodes; i++)
            if (g->nodes[i].type == MB_OP_INPUT) {
                char d[128];
                mb_cli_dims(g->nodes[i].out_ndim, g->nodes[i].out_dims, d, sizeof d);
                printf("input '%s': %s\n", g->nodes[i].name, d);
            }
        for (int k = 0; k < g->n_outputs; k++) {
            const mb_node *nd = &g->nodes[g->outputs[k]];
            char d[128];
            mb_cli_dims(nd->out_ndim, nd->out_dims, d, sizeof d);
            printf("output '%s': %s\n", nd->name, d);
        }
        if (fold)
            printf("folded %d BatchNormalization op%s into convolutions\n", folded, folded == 1 ? "" : "s");
        if (out)
            printf("wrote %s (weights in %s.bin)\n", out, out);
    }
    mb_graph_free(g);
    rc = 0;
done:
    for (int k = 0; k < n_shapes; k++)
        free((char *)shapes[k].name);
    return rc;
}
