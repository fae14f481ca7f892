/* mecbed models: list the built-in zoo (or given model files) with ops,
 * params, MACs and the largest activation. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "mecbed/decoder.h"
#include "mecbed/model.h"
#include "mecbed/zoo.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed models [--json] [MODEL ...]\n"
               "\n"
               "Lists the built-in model zoo, or the models named (zoo names or model files:\n"
               "mecbed's text format, docs/model-format.md, or .onnx): operators, parameters,\n"
               "multiply-accumulates (conv/gemm: one per kernel tap; elementwise ops: one per\n"
               "output element; pooling: one per window element) and the largest single\n"
               "activation tensor. The decoders of generation (gpt2, smollm_135m,\n"
               "tinyllama_1b; docs/generation.md) are listed when named: their decode-step graph.\n"
               "\n"
               "  --json      a JSON array of objects: name, ops, params, macs,\n"
               "              largest_activation_bytes, input_shape, output_shape\n"
               "  -h, --help  this text\n");
}

typedef struct model_row {
    char name[MB_NAME_LEN];
    int ops;
    int64_t params, macs, largest;
    char input[64], output[64];
} model_row;

static int describe(const char *name, int zoo, model_row *r, char *err, size_t errlen)
{
    mb_graph *g = zoo ? mb_zoo_build_structure(name, err, errlen) : mb_model_load(name, err, errlen);
    if (!g)
        return -1;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", zoo ? name : g->name);
    r->ops = mb_graph_n_ops(g);
    r->params = mb_graph_params(g);
    r->macs = mb_graph_macs(g);
    snprintf(r->input, sizeof r->input, "-");
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        if (n->out_bytes > r->largest)
            r->largest = n->out_bytes;
        if (n->type == MB_OP_INPUT && !strcmp(r->input, "-"))
            mb_cli_dims(n->out_ndim, n->out_dims, r->input, sizeof r->input);
    }
    const mb_node *o = &g->nodes[g->outputs[0]];
    mb_cli_dims(o->out_ndim, o->out_dims, r->output, sizeof r->output);
    mb_graph_free(g);
    return 0;
}

int cmd_models(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *const *zoo = mb_zoo_names();
    int n_zoo = 0;
    while (zoo[n_zoo])
        n_zoo++;
    int from_args = optind < argc;
    int n = from_args ? argc - optind : n_zoo;
    model_row *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "mecbed models: out of memory\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        char err[512];
        const char *name = from_args ? argv[optind + i] : zoo[i];
        /* a zoo name lists fast from the structure alone */
        int is_zoo = 0;
        for (int z = 0; z < n_zoo && !is_zoo; z++)
            is_zoo = !strcmp(name, zoo[z]);
        is_zoo |= !strchr(name, '/') && !strchr(name, '.') && mb_decoder_find(name); /* gpt2, ... */
        if (describe(name, is_zoo, &rows[i], err, sizeof err)) {
            fprintf(stderr, "mecbed models: %s\n", err);
            free(rows);
            return 1;
        }
    }
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", rows[i].name);
            cJSON_AddNumberToObject(o, "ops", rows[i].ops);
            cJSON_AddNumberToObject(o, "params", (double)rows[i].params);
            cJSON_AddNumberToObject(o, "macs", (double)rows[i].macs);
            cJSON_AddNumberToObject(o, "largest_activation_bytes", (double)rows[i].largest);
            cJSON_AddStringToObject(o, "input_shape", rows[i].input);
            cJSON_AddStringToObject(o, "output_shape", rows[i].output);
            cJSON_AddItemToArray(arr, o);
        }
        char *s = cJSON_Print(arr);
        puts(s);
        free(s);
        cJSON_Delete(arr);
    } else {
        printf("%-14s %5s %10s %9s %13s  %-14s %s\n", "model", "ops", "params(M)", "GMACs", "largest act", "input",
               "output");
        for (int i = 0; i < n; i++)
            printf("%-14s %5d %10.3f %9.3f %10.2f MB  %-14s %s\n", rows[i].name, rows[i].ops, rows[i].params / 1e6,
                   rows[i].macs / 1e9, rows[i].largest / 1048576.0, rows[i].input, rows[i].output);
    }
    free(rows);
    return 0;
}
