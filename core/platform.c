#define _GNU_SOURCE
#include "mecbed/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* OpenBLAS exports these; declared here so we need not depend on its header layout. */
char *openblas_get_corename(void);
void openblas_set_num_threads(int n);

static int cpu_has_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[8192];
    int found = 0;
    size_t fl = strlen(flag);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        for (char *p = strstr(line, flag); p; p = strstr(p + 1, flag))
            if ((p == line || p[-1] == ' ') && (p[fl] == ' ' || p[fl] == '\n' || p[fl] == 0)) {
                found = 1;
                break;
            }
        break;
    }
    fclose(f);
    return found;
}

void mb_platform_init(int argc, char **argv)
{
    (void)argc;
    const char *no = getenv("MECBED_NO_REEXEC");
    if (!(no && *no == '1')) {
        /* MECBED_BLAS_CORETYPE forces a core; otherwise an AVX2 core on an
         * AVX-512 CPU (detected, or forced by an inherited OPENBLAS_CORETYPE)
         * is upgraded to SkylakeX. */
        const char *want = getenv("MECBED_BLAS_CORETYPE");
        const char *core = openblas_get_corename();
        const char *target = NULL;
        if (want && *want) {
            if (!core || strcasecmp(core, want))
                target = want;
        } else {
            int avx2_core = core && (!strcasecmp(core, "haswell") || !strcasecmp(core, "zen"));
            if (avx2_core && cpu_has_flag("avx512f") && cpu_has_flag("avx512bw") && cpu_has_flag("avx512vl"))
                target = "SkylakeX";
        }
        if (target) {
            setenv("OPENBLAS_CORETYPE", target, 1);
            setenv("MECBED_NO_REEXEC", "1", 1); /* never loop */
            execv("/proc/self/exe", argv);
            /* exec failed: carry on with the core OpenBLAS chose */
        }
    }
    openblas_set_num_threads(1);
}

const char *mb_platform_blas_core(void)
{
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

void mb_platform_cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ')
                    p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, len, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

void mb_platform_kernel(char *buf, size_t len)
{
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(buf, len, "%s %s", u.sysname, u.release);
    else
        snprintf(buf, len, "unknown");
}

int mb_platform_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double mb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
