#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"

#ifndef MB_PREFIX
#define MB_PREFIX "/usr/local"
#endif

void mb_datadir_exe_dir(char *out, size_t len)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    out[0] = 0;
    if (n <= 0)
        return;
    buf[n] = 0;
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = 0;
    snprintf(out, len, "%s", buf);
}

static int exists(const char *p)
{
    return access(p, R_OK) == 0;
}

int mb_datadir_find(const char *rel, char *out, size_t len)
{
    char cand[6][PATH_MAX + 64];
    int n = 0;
    const char *env = getenv("MECBED_DATA");
    char exe[PATH_MAX];
    mb_datadir_exe_dir(exe, sizeof(exe));
    if (env && *env)
        snprintf(cand[n++], sizeof(cand[0]), "%s/%s", env, rel);
    if (exe[0]) {
        snprintf(cand[n++], sizeof(cand[0]), "%s/../%s", exe, rel);    /* build/mecbed */
        snprintf(cand[n++], sizeof(cand[0]), "%s/../../%s", exe, rel); /* build/tests/x */
        snprintf(cand[n++], sizeof(cand[0]), "%s/../share/mecbed/%s", exe, rel); /* installed */
    }
    snprintf(cand[n++], sizeof(cand[0]), "%s", rel); /* the working directory */
    snprintf(cand[n++], sizeof(cand[0]), "%s/share/mecbed/%s", MB_PREFIX, rel);
    for (int i = 0; i < n; i++)
        if (exists(cand[i])) {
            snprintf(out, len, "%s", cand[i]);
            return 0;
        }
    snprintf(out, len, "%s", cand[0]);
    return -1;
}
