/* libFuzzer harness: the sweep configuration reader (sweep/sweep_conf.c,
 * through its public sw_config_read), with and without the [quick]
 * overrides. */
#include "fuzz_util.h"

#include "mecbed/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16))
        return 0;
    const char *path = fuzz_file(data + 1, size - 1, ".conf");
    if (!path)
        return 0;
    char err[512] = "";
    static sw_config c;
    memset(&c, 0, sizeof c);
    if (sw_config_read(path, data[0] & 1, &c, err, sizeof err)) {
        fuzz_check_err(err);
        sw_config_free(&c);
        return 0;
    }
    sw_config_free(&c);
    return 0;
}
