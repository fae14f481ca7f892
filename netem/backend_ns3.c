/* The ns3 slot of the backend table. The ns-3 backend is a separate piece of
 * work (FdNetDevice bridging into libns3); until it is built in, asking for
 * it is a clear error rather than a silent fallback. When it lands it
 * replaces this file's check/link_up with the real ones. */
#include <stdio.h>

#include "backend.h"

static int ns3_check(const mb_link_spec *spec, char *err, size_t errlen)
{
    (void)spec;
    snprintf(err, errlen, "link backend 'ns3' is not built in this mecbed (it needs the ns-3 backend, see "
                          "docs/link-emulation.md); use --backend emu or tc");
    return -1;
}

static int ns3_link_up(mb_net *net, net_link *l, const mb_net_opts *o, char *err, size_t errlen)
{
    (void)net, (void)l, (void)o;
    return ns3_check(NULL, err, errlen);
}

static void ns3_link_down(mb_net *net, net_link *l)
{
    (void)net, (void)l;
}

const net_backend net_backend_ns3 = {
    .name = "ns3",
    .check = ns3_check,
    .link_up = ns3_link_up,
    .link_down = ns3_link_down,
};
