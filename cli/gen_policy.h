/* Private: `mecbed generate --gen-policy` (cli/gen_policy.c): predict a
 * generation policy (or all of them) over a link and verify it in process. */
#ifndef MECBED_CLI_GEN_POLICY_H
#define MECBED_CLI_GEN_POLICY_H

#include "mecbed/backend.h"
#include "mecbed/decoder.h"

typedef struct gen_policy_args {
    const char *policy;  /* NAME[:key=value,...] or "all" */
    const char *link, *lan, *draft;
    int edges, P, N, json, verify;
    long capacity, seed;
} gen_policy_args;

/* Exit status: 0, 1 (failed, or verification found different tokens). */
int mb_cli_gen_policy(const gen_policy_args *a, const mb_decoder_cfg *cfg, mb_backend *be, const char *kernels,
                      int threads);

#endif
