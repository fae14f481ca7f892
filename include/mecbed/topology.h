/* mecbed: who takes part in a run and how they are connected. One device
 * (or several), edge nodes and a cloud, each of a node type (its speed and
 * power, see docs/node-types.md), joined by links with a spec per direction.
 * Read from a topology file (docs/topology.md) or made from one --link SPEC
 * (one device, one edge). Plan mode, the runtime and the link emulators all
 * read this one structure. */
#ifndef MECBED_TOPOLOGY_H
#define MECBED_TOPOLOGY_H

#include "mecbed/linkspec.h"

#define MB_MAX_SITES 80
#define MB_MAX_LINKS 160

typedef enum mb_role { MB_ROLE_DEVICE = 0, MB_ROLE_EDGE, MB_ROLE_CLOUD } mb_role;

typedef struct mb_site {
    char name[32];       /* "device", "edge0", "cloud" ... */
    mb_role role;
    char node_type[32];  /* "phone", "jetson-nano", "edge-cpu", ... ("" = role's default) */
    char address[64];    /* "host:port" of a node already running elsewhere; "" = started by mecbed */
    int line;            /* topology file: the line of its type= (else of its [node] header); 0: no file */
} mb_site;

/* A link joins sites a and b; spec.up is the direction a -> b, spec.down b -> a
 * (a is the side nearer the device). */
typedef struct mb_topo_link {
    int a, b;
    mb_link_spec spec;
} mb_topo_link;

typedef struct mb_topology {
    int n_sites;
    mb_site sites[MB_MAX_SITES];
    int n_links;
    mb_topo_link links[MB_MAX_LINKS];
} mb_topology;

/* One device ("device") and one edge ("edge0") joined by one link. */
int mb_topology_from_link(const char *spec, mb_topology *t, char *err, size_t errlen);
/* n devices ("dev0".."devN-1"), each joined to one edge ("edge0") by its
 * own link of that spec (`mecbed run --devices N --link SPEC`). n = 1 is
 * mb_topology_from_link. */
int mb_topology_star(const char *spec, int n, mb_topology *t, char *err, size_t errlen);
/* Read a topology file; errors read "file:line: what is wrong". */
int mb_topology_read(const char *path, mb_topology *t, char *err, size_t errlen);
int mb_topology_find(const mb_topology *t, const char *name); /* -1 if absent */
/* Index of the link joining a and b (either orientation), -1 if none. */
int mb_topology_link_between(const mb_topology *t, int a, int b);

#endif
