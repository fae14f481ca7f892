/* libFuzzer harness: the trace readers (traces/trace_io.c), every format.
 * The first byte picks the format (auto-detect, native, Mahimahi, two-column,
 * NYU-METS, CSV log read with unit=kbit/s); the rest is the file. What is accepted must give finite stats
 * and capacities, and a cursor that serves bytes without looping forever. */
#include <math.h>

#include "fuzz_util.h"

#include "mecbed/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16))
        return 0;
    mb_trace_format fmt = (mb_trace_format)(data[0] % MB_TRACE_FMT_COUNT);
    const char *path = fuzz_file(data + 1, size - 1, ".trace");
    if (!path)
        return 0;
    char err[512] = "";
    mb_trace_src src = {.format = fmt};
    if (fmt == MB_TRACE_FMT_CSV && mb_trace_src_set(&src, "unit", "kbit/s", err, sizeof err))
        abort();
    mb_trace *tr = mb_trace_read_src(path, &src, err, sizeof err);
    if (!tr) {
        fuzz_check_err(err);
        return 0;
    }
    mb_trace_stats st;
    if (mb_trace_stats_compute(tr, 1.0, &st) == 0 && !isfinite(st.mean_bps))
        abort(); /* an accepted trace has a finite mean */
    double cap = mb_trace_capacity(tr, 0, 10, 1);
    if (!(cap >= 0) || isinf(cap))
        abort();
    mb_trace_cursor c;
    mb_trace_cursor_init(&c, tr, 1);
    (void)mb_trace_serve(&c, 0, 1e6);
    mb_trace_free(tr);
    return 0;
}
