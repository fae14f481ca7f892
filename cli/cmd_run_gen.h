/* mecbed run --prompt-tokens P --gen-tokens N: a measured split generation
 * (runtime/gen_session.c, docs/generation.md "Measured split runs"). */
#ifndef MB_CLI_CMD_RUN_GEN_H
#define MB_CLI_CMD_RUN_GEN_H

#include "cmd_policies.h"
#include "mecbed/session.h"

/* s built (its model a decoder's decode graph), cfg filled as for a run
 * session. split: layers on the device, -1 for EdgeShard's cut. Prints the
 * report; returns the exit status (1 when the tokens differ or it failed). */
/* Before building anything: model, lengths and split make sense. 0, or
 * the exit status (said why). */
int mb_run_generate_check(const char *model, long P, long N, long split);
int mb_run_generate(mb_plan_setup *s, const mb_session_config *cfg, long P, long N, int split, int json);

#endif
