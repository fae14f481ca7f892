/* The planning commands (plan, compare, run) and the set-up they share. Private. */
#ifndef MB_POLICIES_CMD_H
#define MB_POLICIES_CMD_H

#include <stdio.h>

#include "mecbed/cost.h"
#include "mecbed/jsontext.h"
#include "mecbed/plan.h"
#include "mecbed/policy_host.h"
#include "options.h" /* the options that fill in an mb_plan_setup */


/* Everything plan mode needs, built from command-line options. */
typedef struct mb_plan_setup {
    const char *model, *link, *topology, *profile, *node_types, *policy_opts, *verify_backend;
    const char *type_override[3]; /* --device-type, --edge-type, --cloud-type */
    const char *plugins[8];
    int n_plugins;
    int radio;                    /* -1: node type decides */
    double frame_interval_s;
    double msg_overhead_ms;
    mb_objective objective;
    int json, verify, verbose;
    int devices;                  /* run --devices N: with --link, a star of N devices (0: one) */
    /* built by mb_plan_setup_build */
    mb_graph *g;
    mb_topology topo;
    mb_nodetype_set types;
    mb_profile *prof;
    const char *prof_source;
    mb_cost_model *cost;
    int device;
} mb_plan_setup;

void mb_plan_setup_init(mb_plan_setup *s);
int mb_plan_setup_build(mb_plan_setup *s, char *err, size_t errlen);
void mb_plan_setup_free(mb_plan_setup *s);
/* Run the plan in-process and compare with the unsplit model on the same
 * backend: fills *max_abs_err and *scale (largest |output|); returns 0
 * (compared), -1 with err (could not run). */
int mb_plan_verify(const mb_plan_setup *s, const mb_plan *p, double *max_abs_err, double *scale,
                   char *err, size_t errlen);
/* The verdict line for a comparison; returns 1 when within tolerance
 * (bit-exact, or max abs error <= 1e-5 x the output's scale). */
int mb_plan_verify_verdict(double max_abs_err, double scale, char *buf, size_t len);


#endif
