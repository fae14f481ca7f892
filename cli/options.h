/* Command-line options defined once: the planning options that plan,
 * compare and run share (model, link or topology, node types, profile, cost
 * model, policy options and plugins). Private to cli/.
 *
 * A command that takes the shared options:
 *
 *     static const struct option own[] = {
 *         {"policy", required_argument, 0, 'p'}, ..., {0, 0, 0, 0},
 *     };
 *     struct option opts[MB_CLI_MAX_OPTIONS];
 *     if (mb_plan_options_build(opts, MB_CLI_MAX_OPTIONS, own)) ... (too many)
 *     while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1)
 *         switch (c) {
 *         case 0: if (mb_plan_setup_option(&s, opts[idx].name, optarg)) return 2; break;
 *         ... the command's own options (their val must not be 0) ...
 *         }
 *
 * and its --help prints its own lines, then mb_plan_setup_help(). */
#ifndef MECBED_CLI_OPTIONS_H
#define MECBED_CLI_OPTIONS_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

struct mb_plan_setup;

/* Room for the shared options, any command's own and the terminator. */
#define MB_CLI_MAX_OPTIONS 64

/* out[0..cap) := the shared options (val 0, so getopt_long returns 0 for
 * them), then `own` up to its zero entry, then a zero entry. Returns 0, or
 * -1 when cap is too small. */
int mb_plan_options_build(struct option *out, size_t cap, const struct option *own);

/* Handles one shared option by its long name (opts[idx].name after
 * getopt_long returned 0); returns 0, or -1 with a message printed (usage
 * error: exit 2). */
int mb_plan_setup_option(struct mb_plan_setup *s, const char *name, const char *arg);

/* The help lines of the shared options. */
void mb_plan_setup_help(FILE *f);

#endif
