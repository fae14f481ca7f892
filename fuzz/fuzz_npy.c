/* libFuzzer harness: the .npy reader (core/npy.c). */
#include "fuzz_util.h"

#include "mecbed/npy.h"
#include "mecbed/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".npy");
    if (!path)
        return 0;
    char err[512] = "";
    mb_tensor *t = mb_npy_read(path, err, sizeof err);
    if (!t) {
        fuzz_check_err(err);
        return 0;
    }
    mb_tensor_free(t);
    return 0;
}
