/* mecbed profile: measure per-op latency of a model on this machine, the
 * profile plan mode scales by node type. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_policies.h"
#include "commands.h"
#include "mecbed/model.h"
#include "mecbed/platform.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed profile --model M [--threads N] [--repeats R] [--kernels cpu|ref]\n"
               "                      [--out p.csv] [--json]\n\n"
               "Time every op of a model with the reference executor (median of R runs after a\n"
               "warm-up) and the sgemm rate of this machine; write the CSV profile that\n"
               "`mecbed plan --profile` reads (docs/node-types.md explains the scaling).\n\n"
               "  --threads N   kernel threads (default 1)\n"
               "  --repeats R   timed runs per op (default 5)\n"
               "  --kernels K   kernel backend: cpu (default) or ref (--backend: deprecated)\n"
               "  --out FILE    write the profile CSV (default: print a table)\n"
               "  --json        the profile as JSON\n");
}

int cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"threads", required_argument, 0, 't'},
        {"repeats", required_argument, 0, 'r'}, {"kernels", required_argument, 0, 'k'},
        {"backend", required_argument, 0, 'b'},
        {"out", required_argument, 0, 'o'},    {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *model = NULL, *out = NULL, *backend = "cpu";
    int threads = 1, repeats = 5, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'm': model = optarg; break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256) {
                fprintf(stderr, "mecbed profile: --threads %s: expected 1..256\n", optarg);
                return 2;
            }
            break;
        case 'r':
            repeats = (int)strtol(optarg, &end, 10);
            if (*end || repeats < 1 || repeats > 1000) {
                fprintf(stderr, "mecbed profile: --repeats %s: expected 1..1000\n", optarg);
                return 2;
            }
            break;
        case 'k': backend = optarg; break;
        case 'b': /* the old spelling, kept for a release */
            mb_cli_deprecated("backend", "kernels");
            backend = optarg;
            break;
        case 'o': out = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model || optind < argc) {
        fprintf(stderr, "mecbed profile: --model is required (mecbed profile --help)\n");
        return 2;
    }
    char err[1024];
    mb_graph *g = mb_model_load(model, err, sizeof(err));
    if (!g) {
        fprintf(stderr, "mecbed profile: %s\n", err);
        return 1;
    }
    mb_profile *p = mb_profile_measure(g, backend, threads, repeats, err, sizeof(err));
    if (!p) {
        fprintf(stderr, "mecbed profile: %s\n", err);
        mb_graph_free(g);
        return 1;
    }
    int rc = 0;
    if (out && mb_profile_write_csv(p, g, out, err, sizeof(err))) {
        fprintf(stderr, "mecbed profile: %s\n", err);
        rc = 1;
    }
    if (json) {
        printf("{\"model\":");
        mb_json_print_string(stdout, g->name);
        printf(",\"threads\":%d,\"repeats\":%d,\"backend\":\"%s\",\"blas_core\":", p->threads,
               p->repeats, p->backend);
        mb_json_print_string(stdout, p->blas_core);
        printf(",\"cpu\":");
        mb_json_print_string(stdout, p->cpu);
        printf(",\"ref_gflops\":%.3f,\"total_ms\":%.6f,\"whole_ms\":%.6f,\"ops\":[",
               p->ref_gflops, mb_profile_total_ms(p), p->whole_ms);
        for (int i = 0; i < g->n_nodes; i++) {
            printf("%s{\"op\":%d,\"name\":", i ? "," : "", i);
            mb_json_print_string(stdout, g->nodes[i].name);
            printf(",\"type\":\"%s\",\"ms\":%.6f,\"bytes_out\":%lld,\"macs\":%lld}",
                   mb_op_name(g->nodes[i].type), p->ms[i], (long long)g->nodes[i].out_bytes,
                   (long long)g->nodes[i].macs);
        }
        printf("]}\n");
    } else if (!out) {
        printf("%-5s %-32s %-18s %10s %12s %10s\n", "op", "name", "type", "ms", "bytes_out",
               "GFLOP/s");
        for (int i = 0; i < g->n_nodes; i++)
            printf("%-5d %-32s %-18s %10.4f %12lld %10.2f\n", i, g->nodes[i].name,
                   mb_op_name(g->nodes[i].type), p->ms[i], (long long)g->nodes[i].out_bytes,
                   p->ms[i] > 0 ? 2.0 * (double)g->nodes[i].macs / (p->ms[i] * 1e6) : 0.0);
    }
    if (!json && p->whole_ms > 0)
        printf("whole run %.3f ms (median, untimed) vs %.3f ms summed over ops: ratio %.2f\n",
               p->whole_ms, mb_profile_total_ms(p), mb_profile_op_scale(p));
    if (!json)
        printf("%s: %.3f ms total over %d ops (%d thread%s, %s, blas %s, sgemm %.1f GFLOP/s)%s%s\n",
               g->name, mb_profile_total_ms(p), mb_graph_n_ops(g), p->threads, p->threads == 1 ? "" : "s",
               p->backend, p->blas_core, p->ref_gflops, out ? ", written to " : "", out ? out : "");
    mb_profile_free(p);
    mb_graph_free(g);
    return rc;
}
