/* Helpers shared by the built-in policies and the host table. Private to
 * policies/. */
#ifndef MB_POLICIES_UTIL_H
#define MB_POLICIES_UTIL_H

#include <stddef.h>

#include "mecbed/cost.h"
#include "mecbed/policy_host.h"

/* --verbose: show MB_LOG_INFO/DEBUG messages of policies. */
extern int mb_policy_verbose;

/* mb_host.mincut: DADS cut between device and server on c. */
int mb_policy_mincut_sites(const mb_cost_model *c, int device, int server, int *site_of_op,
                           mb_cut *cut, char *err, size_t errlen);
double mb_policy_opt_double(const char *opts, const char *key, double dflt);
const char *mb_policy_opt_string(const char *opts, const char *key, const char *dflt, char *buf,
                                 size_t len);
/* The server a two-site policy offloads to: option server=NAME, else the
 * first edge site, else the first cloud site. -1 with err when none. */
int mb_policy_pick_server(const mb_policy_input *in, char *err, size_t errlen);

#endif
