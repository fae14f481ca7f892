/* mecbed: command-line entry point. The one command table; dispatches to
 * the sub-commands (cli/cmd_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mecbed/platform.h"

static const mb_command commands[] = {
    {"models", cmd_models, "list the built-in model zoo (params, MACs, largest activation)"},
    {"infer", cmd_infer, "run a model through a kernel backend, with a per-op profile"},
    {"generate", cmd_generate, "generate tokens with a decoder (KV cache): TTFT, TPOT, bandwidth bound"},
    {"conformance", cmd_conformance, "run ONNX's backend tests against a kernel backend"},
    {"profile", cmd_profile, "measure per-op latency of a model on this machine"},
    {"plan", cmd_plan, "partition a model with a policy; predicted latency and energy"},
    {"compare", cmd_compare, "all policies side by side for one model and link"},
    {"policies", cmd_policies, "list the policies, built-in and plugins, with their options"},
    {"link", cmd_link, "emulated links: 'link test' measures a link against its spec"},
    {"shell", cmd_shell, "run any program behind an emulated link (like Mahimahi's shells)"},
    {"trace", cmd_trace, "bandwidth traces: gen, stats, convert"},
    {"clean", cmd_clean, "remove namespaces, interfaces and processes a killed run left"},
    {"run", cmd_run, "execute a plan for real on device/edge/cloud over emulated links"},
    {"node", cmd_node, "run one edge or cloud node"},
    {"keygen", cmd_keygen, "make a secret key file for runs with nodes on other hosts"},
    {"sweep", cmd_sweep, "run an experiment: models x policies x links, results and plots"},
    {"import", cmd_import, "convert an ONNX model to mecbed's model format"},
    {"export", cmd_export, "write a zoo model as an ONNX file"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed <command> [options]   (mecbed <command> --help for its options)\n\n"
               "mecbed %s: a testbed for collaborative DNN inference in mobile edge computing.\n\n"
               "commands:\n",
            MB_VERSION);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    /* Must run before any BLAS call: may re-exec with OPENBLAS_CORETYPE set. */
    mb_platform_init(argc, argv);

    /* `mecbed help CMD` is `mecbed CMD --help`. */
    if (argc >= 3 && !strcmp(argv[1], "help")) {
        char *help_argv[] = {argv[2], "--help", NULL};
        for (size_t i = 0; i < N_COMMANDS; i++)
            if (!strcmp(argv[2], commands[i].name))
                return commands[i].fn(2, help_argv);
        fprintf(stderr, "mecbed help: unknown command '%s'\n\n", argv[2]);
        usage(stderr);
        return 2;
    }
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mecbed %s\n", MB_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "mecbed: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
