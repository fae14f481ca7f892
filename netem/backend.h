/* The table of link backends (private to netem/). Modelled on iperf3's table
 * of protocols: a name and operations; mb_net (net.c) does everything common
 * (namespaces, addresses, routes, clean-up) and calls these per link. */
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

extern const net_backend net_backend_emu;
extern const net_backend net_backend_tc;
extern const net_backend net_backend_ns3;

/* The epoch (trace time 0) of a net, for backends. */
double net_epoch(const mb_net *net);

#endif
