/* mecbed: node types. What kind of machine a site is: how fast it runs the
 * model relative to the machine the per-op profile was measured on, and how
 * much power it draws. Read from INI files (policies/nodetypes/default.ini,
 * docs/node-types.md documents every key and the source of every number):
 *
 *   [jetson-nano]
 *   summary   = NVIDIA Jetson Nano, 128-core Maxwell GPU, MAXN (10 W)
 *   gflops    = 100        ; effective fp32 GFLOP/s on CNN layers
 *   compute_w = 7.25       ; power while computing
 *   idle_w    = 1.25       ; power while waiting
 *   radio     = wifi       ; lte | wifi | 3g | none (wired)
 *   source    = ...        ; where the numbers come from
 *
 * A site's op time is profile_ms * factor, where factor is `speed` when given
 * and otherwise profile->ref_gflops / gflops (the profile records the sgemm
 * rate it measured on its own machine, so the same node-type file gives the
 * same predictions whichever machine profiled). */
#ifndef MECBED_NODETYPE_H
#define MECBED_NODETYPE_H

#include <stddef.h>

#include "mecbed/topology.h"

#define MB_NODETYPE_MAX 64

typedef struct mb_nodetype {
    char name[32];
    char summary[128];
    double gflops;     /* effective fp32 GFLOP/s on CNN layers (0: use speed) */
    double speed;      /* time factor vs the profiled machine (0: derive from gflops) */
    double compute_w;  /* W while computing */
    double idle_w;     /* W while idle (waiting for data) */
    char radio[16];    /* "lte", "wifi", "3g", or "none" for wired servers */
    char kernels[16];  /* "cpu" or "cuda": backend the runtime uses on this node */
    int threads;       /* threads the runtime gives this node (0: 1) */
    char source[512];  /* citation for the numbers */
} mb_nodetype;

typedef struct mb_nodetype_set {
    int n;
    mb_nodetype types[MB_NODETYPE_MAX];
} mb_nodetype_set;

/* Add the types of an INI file to set; a section whose name is already in the
 * set replaces it. Errors read "file:line: what is wrong" (unknown key, bad
 * number, negative power, no gflops and no speed). Returns 0 or -1. */
int mb_nodetypes_read(mb_nodetype_set *set, const char *path, char *err, size_t errlen);
/* The shipped file (policies/nodetypes/default.ini, found beside the binary,
 * under $MECBED_DATA, or in the install prefix). Returns 0 or -1 with err. */
int mb_nodetypes_load_default(mb_nodetype_set *set, char *err, size_t errlen);
const mb_nodetype *mb_nodetypes_find(const mb_nodetype_set *set, const char *name);
/* Every site of t has a type in set (its type= or its role's default): 0, or
 * -1 with err naming the site, the type and the known ones, as
 * "TOPO_PATH:LINE: ..." when topo_path is given and the site came from it. */
int mb_nodetypes_check_sites(const mb_nodetype_set *set, const mb_topology *t, const char *topo_path, char *err,
                             size_t errlen);
/* The type a site of this role gets when the topology names none:
 * device "phone", edge "edge-cpu", cloud "cloud-gpu". */
const char *mb_nodetype_role_default(int role);

#endif
