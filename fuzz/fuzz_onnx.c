/* libFuzzer harness: the ONNX importer (models/onnx/), protobuf decoding,
 * operator mapping and shape inference, on arbitrary bytes. */
#include "fuzz_util.h"

#include "mecbed/graph.h"
#include "mecbed/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (4 << 20))
        return 0;
    const char *path = fuzz_file(data, size, ".onnx");
    if (!path)
        return 0;
    char err[512] = "";
    mb_graph *g = mb_onnx_load(path, err, sizeof err);
    if (!g) {
        fuzz_check_err(err);
        return 0;
    }
    mb_graph_free(g);
    return 0;
}
