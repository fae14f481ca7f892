/* mecbed node: serve plans as an edge or cloud site (docs/runtime.md). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/auth.h"
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
            "usage: mecbed node --role edge|cloud --key-file F [--listen [ADDR:]PORT] [options]\n\n"
            "Run one edge or cloud node. A runner (`mecbed run`) connects, proves it holds the\n"
            "key (HMAC challenge-response; the node proves it back), names the model by its\n"
            "graph hash (the node serves the zoo's models and its own --model/--models files,\n"
            "never a path a peer names), sends the plan, and streams frames; the node computes\n"
            "its steps as soon as their inputs arrive and sends regions to peers as soon as\n"
            "they are computed. Wire protocol and threat model: docs/protocol.md.\n\n"
            "  --role R              edge or cloud (required)\n"
            "  --listen [ADDR:]PORT  where runners and peers connect (default 127.0.0.1:7400;\n"
            "                        a bare port listens on 127.0.0.1 only: name an address,\n"
            "                        e.g. 0.0.0.0:7400, to be reachable from other hosts)\n"
            "  --key-file F          the run's secret key (mecbed keygen -o F; mode 0600).\n"
            "                        Runners and peers must prove it; `mecbed run --key-file F`\n"
            "  --new-key F           make a new key in F (must not exist, mode 0600) and use it\n"
            "  --insecure-no-auth    serve anyone who reaches the port, unauthenticated (only on\n"
            "                        a network you trust completely; without a key the node\n"
            "                        refuses to start unless told this)\n"
            "  --model FILE          a model file this node serves (repeatable)\n"
            "  --models DIR          serve every *.mbm, *.model, *.onnx file in DIR\n"
            "  --topology FILE       the run's topology: a PLAN may then name only its sites,\n"
            "                        and those with address= only at that address\n"
            "  --idle-timeout S      drop a session that sends nothing for S seconds, or stops\n"
            "                        in the middle of a frame (default 10; emulated time)\n"
            "  --threads N           kernel threads (default: the node type's, else 1)\n"
            "  --node-type T         node type (policies/nodetypes/default.ini); sets the\n"
            "                        default kernels and threads\n"
            "  --kernels K           cpu (default), ref or cuda (a GPU; builds with nvcc)\n"
            "                        (--backend-kernels K: the old spelling, deprecated)\n"
            "  --sessions N          exit after N runner sessions (default: serve forever)\n"
            "  --max-sessions M      serve up to M runners at once (one per device), sharing\n"
            "                        the compute first come, first served, or at the share of\n"
            "                        it each runner's plan holds (dds) (default 1)\n"
            "  --slowdown F          emulate a node F times slower than this machine: each op\n"
            "                        lasts F x the CPU time it took (time dilation; needs 1 thread)\n"
            "  --modelled            each op lasts the plan's predicted time for it x --tdf\n"
            "                        (`mecbed run --emulate model`, the default there)\n"
            "  --tdf K               the run's time dilation factor (`mecbed run --tdf`): the\n"
            "                        node's own timeouts are K times longer (default 1)\n"
            "  --verbose             log sessions and plans to stderr\n"
            "  --help\n");
}

/* --node-type: its threads and kernels where not given (cuda only where a
 * GPU backend loads). 0 or -1 (said). */
static int apply_node_type(const char *type, int *threads, const char **kernels)
{
    char err[512];
    static mb_nodetype_set set;
    if (mb_nodetypes_load_default(&set, err, sizeof err)) {
        fprintf(stderr, "mecbed node: %s\n", err);
        return -1;
    }
    const mb_nodetype *nt = mb_nodetypes_find(&set, type);
    if (!nt) {
        fprintf(stderr, "mecbed node: unknown node type '%s'\n", type);
        return -1;
    }
    if (!*threads)
        *threads = nt->threads > 0 ? nt->threads : 1;
    if (!*kernels) {
        /* A type's GPU kernels only where that backend exists. */
        mb_backend *probe = mb_backend_new(nt->kernels, 1, err, sizeof err);
        *kernels = probe ? nt->kernels : "cpu";
        if (!probe)
            fprintf(stderr, "mecbed node: node type %s asks for %s kernels (%s); using cpu\n",
                    type, nt->kernels, err);
        mb_backend_free(probe);
    }
    return 0;
}

/* The node's key: exactly one of --key-file, --new-key, --insecure-no-auth.
 * 0, or the exit status. */
static int node_key(const char *key_file, const char *new_key, int insecure, const char *laddr,
                    uint8_t key[MB_KEY_LEN])
{
    char err[512];
    if (!!key_file + !!new_key + insecure != 1) {
        fprintf(stderr, "mecbed node: give exactly one of --key-file F (the run's key; mecbed keygen -o F makes "
                        "one), --new-key F, or --insecure-no-auth\n");
        return 2;
    }
    if (new_key && (mb_key_generate(key, err, sizeof err) || mb_key_write(new_key, key, err, sizeof err))) {
        fprintf(stderr, "mecbed node: --new-key %s\n", err);
        return 1;
    }
    if (key_file && mb_key_read(key_file, key, err, sizeof err)) {
        fprintf(stderr, "mecbed node: %s\n", err);
        return 1;
    }
    if (insecure)
        fprintf(stderr, "mecbed node: WARNING: --insecure-no-auth: anyone who reaches %s can make this node "
                        "compute and send data\n", laddr);
    return 0;
}

int cmd_node(int argc, char **argv)
{
    static const struct option opts[] = {
        {"role", required_argument, 0, 'r'},    {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"node-type", required_argument, 0, 'n'},
        {"kernels", required_argument, 0, 'k'}, {"backend-kernels", required_argument, 0, 'K'},
        {"sessions", required_argument, 0, 's'}, {"verbose", no_argument, 0, 'v'},
        {"max-sessions", required_argument, 0, 'x'},
        {"slowdown", required_argument, 0, 'S'}, {"tdf", required_argument, 0, 'D'},
        {"modelled", no_argument, 0, 'M'},      {"key-file", required_argument, 0, 'f'},
        {"new-key", required_argument, 0, 'N'}, {"insecure-no-auth", no_argument, 0, 'I'},
        {"model", required_argument, 0, 'm'},   {"models", required_argument, 0, 'd'},
        {"idle-timeout", required_argument, 0, 'i'}, {"topology", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *role = NULL, *listen = "127.0.0.1:7400", *type = NULL, *kernels = NULL;
    const char *key_file = NULL, *new_key = NULL, *models_dir = NULL, *topo_path = NULL;
    const char *model_files[64];
    int n_models = 0, insecure = 0;
    double idle = 0;
    int threads = 0, sessions = 0, max_sessions = 1, verbose = 0, c;
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
        case 'f': key_file = optarg; break;
        case 'N': new_key = optarg; break;
        case 'I': insecure = 1; break;
        case 'd': models_dir = optarg; break;
        case 'T': topo_path = optarg; break;
        case 'm':
            if (n_models >= 64) {
                fprintf(stderr, "mecbed node: at most 64 --model files (use --models DIR)\n");
                return 2;
            }
            model_files[n_models++] = optarg;
            break;
        case 'i':
            idle = strtod(optarg, &end);
            if (*end || !(idle >= 0.1) || idle > 86400) {
                fprintf(stderr, "mecbed node: --idle-timeout %s: expected seconds from 0.1 to 86400\n", optarg);
                return 2;
            }
            break;
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
        case 'x':
            max_sessions = (int)strtol(optarg, &end, 10);
            if (*end || max_sessions < 1 || max_sessions > 64) {
                fprintf(stderr, "mecbed node: --max-sessions %s: expected 1..64\n", optarg);
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
    char err[512], laddr[160];
    if (mb_listen_spec(listen, laddr, sizeof laddr, err, sizeof err)) {
        fprintf(stderr, "mecbed node: --listen %s\n", err);
        return 2;
    }
    static mb_topology topo;
    if (topo_path && mb_topology_read(topo_path, &topo, err, sizeof err)) {
        fprintf(stderr, "mecbed node: %s\n", err);
        return 1;
    }
    uint8_t key[MB_KEY_LEN];
    int krc = node_key(key_file, new_key, insecure, laddr, key);
    if (krc)
        return krc;
    if (kernels && strcmp(kernels, "cpu") && strcmp(kernels, "ref") && strcmp(kernels, "cuda")) {
        fprintf(stderr, "mecbed node: --kernels %s: expected cpu, ref or cuda\n", kernels);
        return 2;
    }
    if (type && apply_node_type(type, &threads, &kernels))
        return 1;
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
    mb_node_opts o = {.listen = laddr, .listen_fd = -1, .key = insecure ? NULL : key,
                      .insecure_no_auth = insecure, .model_files = model_files, .n_model_files = n_models,
                      .models_dir = models_dir, .idle_timeout_s = idle, .topo = topo_path ? &topo : NULL, .threads = threads ? threads : 1,
                      .kernels = kernels ? kernels : "cpu", .role = role, .node_type = type,
                      .sessions = sessions, .max_sessions = max_sessions, .verbose = verbose, .tdf = tdf};
    int rc = mb_node_serve(&o, &stop_flag, err, sizeof err);
    mb_key_wipe(key, sizeof key);
    if (rc) {
        fprintf(stderr, "mecbed node: %s\n", err);
        return 1;
    }
    return 0;
}
