/* libFuzzer harness: the topology INI reader (core/topology.c). Accepted
 * topologies must be self-consistent: links join sites that exist. */
#include "fuzz_util.h"

#include "mecbed/topology.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16))
        return 0;
    const char *path = fuzz_file(data, size, ".ini");
    if (!path)
        return 0;
    char err[512] = "";
    static mb_topology t; /* large: keep it off the stack */
    if (mb_topology_read(path, &t, err, sizeof err)) {
        fuzz_check_err(err);
        return 0;
    }
    if (t.n_sites < 1 || t.n_sites > MB_MAX_SITES || t.n_links < 0 || t.n_links > MB_MAX_LINKS)
        abort();
    for (int l = 0; l < t.n_links; l++)
        if (t.links[l].a < 0 || t.links[l].a >= t.n_sites || t.links[l].b < 0 || t.links[l].b >= t.n_sites)
            abort();
    return 0;
}
