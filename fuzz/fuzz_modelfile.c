/* libFuzzer harness: the text model file reader (models/modelfile.c), then
 * shape inference on what it accepts, and a write/read round trip of every
 * accepted model (an export must read back). */
#include "fuzz_util.h"

#include "mecbed/graph.h"
#include "mecbed/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16))
        return 0; /* the reader's limit is far above; large inputs only slow the search */
    const char *path = fuzz_file(data, size, ".mbm");
    if (!path)
        return 0;
    char err[512] = "";
    mb_graph *g = mb_modelfile_read(path, err, sizeof err);
    if (!g) {
        fuzz_check_err(err);
        return 0;
    }
    /* only small models are written back: the weights are generated */
    if (mb_graph_params(g) < (1 << 16)) {
        static char out[300];
        snprintf(out, sizeof out, "%s.out.mbm", path);
        if (mb_modelfile_write(g, out, err, sizeof err) == 0) {
            mb_graph *h = mb_modelfile_read(out, err, sizeof err);
            if (!h)
                abort(); /* what we write, we must read */
            if (h->n_nodes != g->n_nodes)
                abort();
            mb_graph_free(h);
        }
        unlink(out);
    }
    mb_graph_free(g);
    return 0;
}
