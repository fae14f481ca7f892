/* Built-in policies: the one table that lists them. Each policy's file
 * defines `const mb_policy_ops mb_policy_<name>_ops`; builtin.c registers
 * every entry through mb_policy_register, the call external plugins use.
 * Adding a built-in is its own file plus one line here. Private to policies/
 * (and the tests that call a policy directly). */
#ifndef MB_POLICIES_BUILTIN_H
#define MB_POLICIES_BUILTIN_H

#include "mecbed/policy_host.h"

/* In the order the registry (and so help text and `compare`) lists them. */
#define MB_BUILTIN_POLICIES(X)                                                                     \
    X(local)     /* baselines.c */                                                                 \
    X(offload)   /* baselines.c */                                                                 \
    X(layerwise) /* layerwise.c (Neurosurgeon) */                                                  \
    X(mincut)    /* mincut_policy.c (DADS) */                                                      \
    X(cic)       /* cic.c */                                                                       \
    X(tile)      /* tile.c (D3) */                                                                 \
    X(oplevel)   /* oplevel.c (Intra-DP) */                                                        \
    X(dds)       /* dds.c (DDS) */                                                                 \
    X(headpar)   /* headpar.c (Galaxy: transformer heads across edge nodes) */                     \
    /* one line per built-in, above this one */

#define MB_BUILTIN_DECLARE(n) extern const mb_policy_ops mb_policy_##n##_ops;
MB_BUILTIN_POLICIES(MB_BUILTIN_DECLARE)
#undef MB_BUILTIN_DECLARE

/* The host table as a C symbol for built-ins that want it directly. */
extern const mb_host mb_policy_host_table;

#endif
