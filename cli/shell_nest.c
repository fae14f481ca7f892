/* Nested `mecbed shell`s (cli/shell_nest.h): a shell started in another
 * shell's COMMAND puts its link between a new namespace and the outer
 * shell's, so COMMAND's packets cross the inner link and then the outer one,
 * as Mahimahi's shells compose (mm-delay inside mm-link).
 *
 * What a shell tells the shells inside it, in COMMAND's environment:
 *   MECBED_NETNS     the namespace COMMAND runs in
 *   MECBED_NET_OCTET the second octet of its links' subnets (10.<octet>.*)
 *   MECBED_UPSTREAM  "ns=gw;ns=gw;..." every namespace further out and the
 *                    gateway it reaches COMMAND's namespace through: a
 *                    nested shell adds a route to its own subnets there.
 * A nested shell picks an octet unused in its host namespace (siblings
 * nested in one shell get different ones), routes its namespace's traffic
 * out through the host, and removes its routes from the outer namespaces
 * when it ends. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mecbed/link.h"
#include "mecbed/netns.h"
#include "shell_nest.h"

#define OCTET_BASE 201

static int run_ip(char *out, size_t outlen, char *err, size_t errlen, const char *a0, const char *a1,
                  const char *a2, const char *a3, const char *a4, const char *a5, const char *a6, const char *a7)
{
    char *argv[] = {"ip", (char *)a0, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6,
                    (char *)a7, NULL};
    return mb_cmd_run(argv, out, outlen, err, errlen);
}

/* Is 10.<octet>. used in this namespace (an address or a route)? */
static int octet_used(int octet)
{
    static char out[65536];
    char err[256], pat[16];
    snprintf(pat, sizeof pat, "10.%d.", octet);
    if (run_ip(out, sizeof out, err, sizeof err, "-o", "addr", "show", NULL, NULL, NULL, NULL, NULL) == 0 &&
        strstr(out, pat))
        return 1;
    if (run_ip(out, sizeof out, err, sizeof err, "route", "show", NULL, NULL, NULL, NULL, NULL, NULL) == 0 &&
        strstr(out, pat))
        return 1;
    return 0;
}

int shell_nest_detect(shell_nest *n, int has_topology, int has_placement)
{
    memset(n, 0, sizeof *n);
    const char *ns = getenv("MECBED_NETNS");
    if (!ns || !*ns)
        return 0;
    if (strlen(ns) >= sizeof n->host_ns) {
        fprintf(stderr, "mecbed shell: MECBED_NETNS is too long\n");
        return -1;
    }
    struct stat self, host;
    char path[300];
    snprintf(path, sizeof path, "/run/netns/%s", ns);
    if (stat("/proc/self/ns/net", &self) || stat(path, &host) || self.st_ino != host.st_ino ||
        self.st_dev != host.st_dev) {
        fprintf(stderr,
                "mecbed shell: MECBED_NETNS=%s says this runs inside another mecbed shell, but this process is not in "
                "that namespace (is it the outer shell's --peer?): nest a shell in the outer shell's COMMAND, or "
                "unset MECBED_NETNS for an independent shell\n",
                ns);
        return -1;
    }
    if (has_topology || has_placement) {
        fprintf(stderr, "mecbed shell: inside another mecbed shell (namespace %s) a shell takes --link only: its "
                        "link runs from a new namespace to this one (no --topology, --at, --peer-at)\n", ns);
        return -1;
    }
    snprintf(n->host_ns, sizeof n->host_ns, "%s", ns);
    const char *o = getenv("MECBED_NET_OCTET");
    int parent = o && *o ? atoi(o) : OCTET_BASE;
    if (parent < OCTET_BASE || parent > 254)
        parent = OCTET_BASE;
    for (int k = parent + 1; k <= 254 && !n->octet; k++)
        if (!octet_used(k))
            n->octet = k;
    if (!n->octet) {
        fprintf(stderr, "mecbed shell: no free subnet 10.%d-254.0.0/16 for a nested shell\n", parent + 1);
        return -1;
    }
    const char *up = getenv("MECBED_UPSTREAM");
    snprintf(n->upstream, sizeof n->upstream, "%s", up ? up : "");
    const char *peer = getenv("MECBED_PEER");
    snprintf(n->outer_peer, sizeof n->outer_peer, "%s", peer ? peer : "");
    n->nested = 1;
    return 0;
}

/* Apply fn to every "ns=gw" of the inherited upstream list. */
static int each_upstream(shell_nest *n, int (*fn)(shell_nest *, const char *ns, const char *gw, char *, size_t),
                         char *err, size_t errlen)
{
    char buf[sizeof n->upstream];
    snprintf(buf, sizeof buf, "%s", n->upstream);
    int rc = 0;
    for (char *save = NULL, *e = strtok_r(buf, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(e, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (fn(n, e, eq + 1, err, errlen))
            rc = -1;
    }
    return rc;
}

static int add_route(shell_nest *n, const char *ns, const char *gw, char *err, size_t errlen)
{
    char subnet[32];
    snprintf(subnet, sizeof subnet, "10.%d.0.0/16", n->octet);
    if (run_ip(NULL, 0, err, errlen, "-n", ns, "route", "replace", subnet, "via", gw, NULL))
        return -1;
    n->routes_added++;
    return 0;
}

static int del_route(shell_nest *n, const char *ns, const char *gw, char *err, size_t errlen)
{
    char subnet[32];
    (void)gw;
    snprintf(subnet, sizeof subnet, "10.%d.0.0/16", n->octet);
    return run_ip(NULL, 0, err, errlen, "-n", ns, "route", "del", subnet, NULL, NULL, NULL) ? -1 : 0;
}

int shell_nest_connect(shell_nest *n, const mb_net *net, int at, int host, char *err, size_t errlen)
{
    /* COMMAND's namespace: everything goes out through the host */
    if (run_ip(NULL, 0, err, errlen, "-n", mb_net_netns(net, at), "route", "add", "default", "via",
               mb_net_addr(net, host), NULL))
        return -1;
    /* the namespaces further out learn the way back */
    return each_upstream(n, add_route, err, errlen);
}

void shell_nest_disconnect(shell_nest *n)
{
    char err[256];
    if (n->nested && n->routes_added)
        each_upstream(n, del_route, err, sizeof err);
    n->routes_added = 0;
}

void shell_nest_export(const shell_nest *n, const mb_net *net, const mb_topology *t, int at, int has_peer_cmd)
{
    char up[sizeof n->upstream + 128];
    size_t used = 0;
    up[0] = 0;
    if (n->nested) {
        /* the outer namespaces, and the host itself through this shell's link */
        used = (size_t)snprintf(up, sizeof up, "%s%s%s=%s", n->upstream, n->upstream[0] ? ";" : "", n->host_ns,
                                mb_net_addr(net, at));
        if (!has_peer_cmd && n->outer_peer[0]) /* the far end is the outer shell's peer, through both links */
            setenv("MECBED_PEER", n->outer_peer, 1);
    } else {
        for (int s = 0; s < t->n_sites && used < sizeof up; s++) {
            const char *gw = s == at ? NULL : mb_net_next_hop(net, s, at);
            if (gw)
                used += (size_t)snprintf(up + used, sizeof up - used, "%s%s=%s", used ? ";" : "",
                                         mb_net_netns(net, s), gw);
        }
    }
    char octet[8];
    snprintf(octet, sizeof octet, "%d", n->nested ? n->octet : OCTET_BASE);
    setenv("MECBED_NETNS", mb_net_netns(net, at), 1);
    setenv("MECBED_NET_OCTET", octet, 1);
    setenv("MECBED_UPSTREAM", up, 1);
}
