/* Nested `mecbed shell`s: a shell inside another shell's COMMAND runs its
 * link from a new namespace to the outer shell's (cli/shell_nest.c). */
#ifndef MECBED_CLI_SHELL_NEST_H
#define MECBED_CLI_SHELL_NEST_H

#include <stddef.h>

#include "mecbed/link.h"

typedef struct shell_nest {
    int nested;             /* 1: inside another shell's COMMAND */
    char host_ns[64];       /* the outer shell's namespace (where this process runs) */
    int octet;              /* this shell's subnets: 10.<octet>.<link>.0/30 */
    char upstream[4096];    /* the outer namespaces and their gateways ("ns=gw;...") */
    char outer_peer[64];    /* the outer shell's $MECBED_PEER */
    int routes_added;
} shell_nest;

/* Inside another shell? 0 (n->nested says), or -1 after printing why this
 * shell cannot run here (not in the outer's namespace; a topology). */
int shell_nest_detect(shell_nest *n, int has_topology, int has_placement);
/* Routes once the links are up: COMMAND's namespace out through the host,
 * the outer namespaces back to this shell's subnets. 0 or -1 with err. */
int shell_nest_connect(shell_nest *n, const mb_net *net, int at, int host, char *err, size_t errlen);
/* Remove the routes added in the outer namespaces. */
void shell_nest_disconnect(shell_nest *n);
/* What shells nested in COMMAND need (MECBED_NETNS, MECBED_NET_OCTET,
 * MECBED_UPSTREAM), and, nested without --peer, $MECBED_PEER the outer
 * shell's peer. */
void shell_nest_export(const shell_nest *n, const mb_net *net, const mb_topology *t, int at, int has_peer_cmd);

#endif
