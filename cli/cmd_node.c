/* mecbed node: serve plans as an edge or cloud site (docs/runtime.md). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/nodetype.h"
#include "mecbed/runtime.h"
#include "cli.h"
#include "commands.h"

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed node --role edge|cloud --listen ADDR:PORT [options]\n\n"
            "Run one edge or cloud node. A runner (`mecbed run`) connects, names the model\n"
            "(each node builds it from the same zoo name or model file; the graph hash must\n"
            "match), sends the plan, and streams frames; the node computes its steps as soon\n"
            "as their inputs arrive and sends regions to peers as soon as they are computed.\n"
            "Wire protocol: docs/protocol.md.\n\n"
            "  --role R              edge or cloud (required)\n"
            "  --listen ADDR:PORT    where runners and peers connect (required)\n"
            "  --threads N           kernel threads (default: the node type's, else 1)\n"
            "  --node-type T         node type (policies/nodetypes/default.ini); sets the\n"
            "                        default kernels and threads\n"
            "  --kernels K           cpu (default), ref or cuda (a GPU; builds with nvcc)\n"
            "                        (--backend-kernels K: the old spelling, deprecated)\n"
            "  --sessions N          exit after N runner sessions (default: serve forever)\n"
            "  --slowdown F          emulate a node F times slower than this machine: each op\n"
            "                        lasts F x the CPU time it took (time dilation; needs 1 thread)\n"
            "  --modelled            each op lasts the plan's predicted time for it x --tdf\n"
            "                        (`mecbed run --emulate model`, the default there)\n"
            "  --tdf K               the run's time dilation factor (`mecbed run --tdf`): the\n"
            "                        node's own timeouts are K times longer (default 1)\n"
            "  --verbose             log sessions and plans to stderr\n"
            "  --help\n");
}

int cmd_node(int argc, char **argv)
{
    static const struct option opts[] = {
        {"role", required_argument, 0, 'r'},    {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"node-type", required_argument, 0, 'n'},
        {"kernels", required_argument, 0, 'k'}, {"backend-kernels", required_argument, 0, 'K'},
        {"sessions", required_argument, 0, 's'}, {"verbose", no_argument, 0, 'v'},
        {"slowdown", required_argument, 0, 'S'}, {"tdf", required_argument, 0, 'D'},
        {"modelled", no_argument, 0, 'M'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *role = NULL, *listen = NULL, *type = NULL, *kernels = NULL;
    int threads = 0, sessions = 0, verbose = 0, c;
    double slowdown = 1, tdf = 1;
    int modelled = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'r': role = optarg; break;
        case 'l': listen = optarg; break;
        case 'n': type = optarg; break;
        case 'K': mb_cli_deprecated("backend-kernels", "kernels"); /* fall through */
        case 'k': kernels = optarg; break;
        case 'v': verbose = 1; break;
        case 'M': modelled = 1; break;
        case 'S': {
            double f = strtod(optarg, &end);
            if (*end || !(f >= 1) || f > 1000) {
                fprintf(stderr, "mecbed node: --slowdown %s: expected a factor from 1 to 1000\n", optarg);
                return 2;
            }
            slowdown = f;
            break;
        }
        case 'D':
            tdf = strtod(optarg, &end);
            if (*end || !(tdf >= 1) || tdf > 1000) {
                fprintf(stderr, "mecbed node: --tdf %s: expected a factor from 1 to 1000\n", optarg);
                return 2;
            }
            break;
        case 't':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256) {
                fprintf(stderr, "mecbed node: --threads %s: expected 1..256\n", optarg);
                return 2;
            }
            break;
        case 's':
            sessions = (int)strtol(optarg, &end, 10);
            if (*end || sessions < 0) {
                fprintf(stderr, "mecbed node: --sessions %s: expected a count\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed node: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!role || (strcmp(role, "edge") && strcmp(role, "cloud"))) {
        fprintf(stderr, "mecbed node: --role edge|cloud is required\n");
        return 2;
    }
    if (!listen) {
        fprintf(stderr, "mecbed node: --listen ADDR:PORT is required\n");
        return 2;
    }
    if (kernels && strcmp(kernels, "cpu") && strcmp(kernels, "ref") && strcmp(kernels, "cuda")) {
        fprintf(stderr, "mecbed node: --kernels %s: expected cpu, ref or cuda\n", kernels);
        return 2;
    }
    char err[512];
    if (type) {
        static mb_nodetype_set set;
        if (mb_nodetypes_load_default(&set, err, sizeof err)) {
            fprintf(stderr, "mecbed node: %s\n", err);
            return 1;
        }
        const mb_nodetype *nt = mb_nodetypes_find(&set, type);
        if (!nt) {
            fprintf(stderr, "mecbed node: unknown node type '%s'\n", type);
            return 1;
        }
        if (!threads)
            threads = nt->threads > 0 ? nt->threads : 1;
        if (!kernels) {
            /* A type's GPU kernels only where that backend exists. */
            mb_backend *probe = mb_backend_new(nt->kernels, 1, err, sizeof err);
            kernels = probe ? nt->kernels : "cpu";
            if (!probe)
                fprintf(stderr, "mecbed node: node type %s asks for %s kernels (%s); using cpu\n",
                        type, nt->kernels, err);
            mb_backend_free(probe);
        }
    }
    if (slowdown > 1 && threads > 1) {
        fprintf(stderr, "mecbed node: --slowdown needs --threads 1 (it dilates the compute thread's CPU time)\n");
        return 2;
    }
    mb_rt_set_slowdown(slowdown);
    if (modelled)
        mb_rt_set_step_timing(1, tdf);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    mb_node_opts o = {.listen = listen, .listen_fd = -1, .threads = threads ? threads : 1,
                      .kernels = kernels ? kernels : "cpu", .role = role, .node_type = type,
                      .sessions = sessions, .verbose = verbose, .tdf = tdf};
    if (mb_node_serve(&o, &stop_flag, err, sizeof err)) {
        fprintf(stderr, "mecbed node: %s\n", err);
        return 1;
    }
    return 0;
}
