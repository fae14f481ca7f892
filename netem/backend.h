/* The registry of link backends (private to netem/). Modelled on iperf3's
 * table of protocols: a name and operations; mb_net (net.c) does everything
 * common (namespaces, addresses, routes, clean-up) and calls these per link.
 * Adding a backend is its own file defining `const net_backend
 * net_backend_<name>` plus one line in NET_BACKENDS below; registry.c,
 * help text and validation enumerate the table. */
#ifndef MECBED_NETEM_BACKEND_H
#define MECBED_NETEM_BACKEND_H

#include <stddef.h>

#include "mecbed/link.h"

#define NET_IFNAME_LEN 16

/* What net.c keeps per link, shared with the backend. */
typedef struct net_link {
    int index;                       /* in the topology */
    int active;                      /* 0 for links to remote sites (not emulated) */
    char ns[2][64];                  /* namespaces of side a and b */
    char ifname[2][NET_IFNAME_LEN];  /* interface of each side */
    char addr[2][16];                /* 10.201.<i>.1 / .2 */
    const mb_link_spec *spec;
    void *priv;                      /* backend state */
} net_link;

typedef struct net_backend {
    const char *name;
    const char *summary; /* one line for help text */
    /* The link-spec keys beyond the generic grammar this backend reads
     * (linkspec.h's `extra`), NULL-terminated; NULL: none. */
    const char *const *keys;
    /* Are this backend's keys in spec consistent and valid (no probing of
     * the machine)? Called when a spec carries one of its keys, at parse
     * time. NULL: any value goes. */
    int (*validate)(const mb_link_spec *spec, char *err, size_t errlen);
    /* Can this backend emulate spec here? Creates nothing. */
    int (*check)(const mb_link_spec *spec, char *err, size_t errlen);
    /* Create the link's two interfaces (named l->ifname) in l->ns[0] and
     * l->ns[1], with the shaping of l->spec; addresses are set afterwards. */
    int (*link_up)(mb_net *net, net_link *l, const mb_net_opts *o, char *err, size_t errlen);
    /* Start moving packets (after addresses and routes are set); may be NULL. */
    int (*link_start)(mb_net *net, net_link *l, char *err, size_t errlen);
    /* Undo link_up (the namespaces' removal takes the interfaces anyway). */
    void (*link_down)(mb_net *net, net_link *l);
    /* Counters per direction; NULL when the backend keeps none. */
    int (*counters)(const net_link *l, int dir, mb_link_counters *c);
    /* Real-time status of a simulated link (ns3); NULL for the others. */
    int (*realtime)(const net_link *l, mb_link_realtime *r);
} net_backend;

/* Every backend, the first being the default. One line per backend. */
#define NET_BACKENDS(X)                                                                            \
    X(emu) /* backend_emu.c: user-space TUN emulator */                                           \
    X(tc)  /* backend_tc.c: kernel qdiscs on veth pairs */                                         \
    X(ns3) /* backend_ns3.c: ns-3 simulated links through mecbed-ns3 */                          \
    /* one line per backend, above this one */

#define NET_BACKEND_DECLARE(n) extern const net_backend net_backend_##n;
NET_BACKENDS(NET_BACKEND_DECLARE)
#undef NET_BACKEND_DECLARE

/* The backend of that name (NULL or "": the default); NULL if none. */
const net_backend *net_backend_find(const char *name);

/* The epoch (trace time 0) of a net, for backends. */
double net_epoch(const mb_net *net);

#endif
