/* Built-in policies: each file defines one `const mb_policy_ops` under the
 * name below; builtin.c registers them through mb_policy_register, the call
 * external plugins use. Private to policies/. */
#ifndef MB_POLICIES_BUILTIN_H
#define MB_POLICIES_BUILTIN_H

#include "mecbed/policy.h"

extern const mb_policy_ops mb_policy_local_ops;     /* baselines.c */
extern const mb_policy_ops mb_policy_offload_ops;   /* baselines.c */
extern const mb_policy_ops mb_policy_layerwise_ops; /* layerwise.c (Neurosurgeon) */
extern const mb_policy_ops mb_policy_mincut_ops;    /* mincut_policy.c (DADS) */
extern const mb_policy_ops mb_policy_cic_ops;       /* cic.c */
extern const mb_policy_ops mb_policy_tile_ops;      /* tile.c (D3), helper padv */
extern const mb_policy_ops mb_policy_oplevel_ops;   /* oplevel.c (Intra-DP), helper padv */
extern const mb_policy_ops mb_policy_dds_ops;       /* dds.c (DDS), helper padv */

/* The host table as a C symbol for built-ins that want it directly. */
extern const mb_host mb_policy_host_table;

#endif
