/* Small helpers shared by the command-line front ends. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int mb_cli_int(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

void mb_cli_dims(int ndim, const int64_t *dims, char *buf, size_t len)
{
    size_t o = 0;
    if (!len)
        return;
    buf[0] = 0;
    if (ndim == 0)
        snprintf(buf, len, "scalar");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? "x" : "", dims[i]);
}

void mb_cli_deprecated(const char *old_name, const char *new_name)
{
    fprintf(stderr, "mecbed: --%s is deprecated here; use --%s\n", old_name, new_name);
}
