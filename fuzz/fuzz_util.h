/* Shared by the libFuzzer harnesses (fuzz/fuzz_*.c): most of mecbed's
 * parsers read a named file (they check it is a regular file and bounded), so
 * a harness writes each input to one per-process temporary file and hands
 * the parser its path. Header-only: each harness is one translation unit. */
#ifndef MB_FUZZ_UTIL_H
#define MB_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The model the plan, profile and wire harnesses work on (and their seeds
 * are made for): small, so that hashing its weights per input costs nothing
 * (a zoo model's hash alone took 0.2 s). Paths are from the repository root,
 * where the harnesses run. */
#define FUZZ_MODEL "fuzz/corpus/modelfile/tiny_net.mbm"

/* The path (same for the whole process; suffix keeps extension-sensitive
 * loaders happy), rewritten with data. NULL when it cannot be written, in
 * which case the input is skipped. */
static char fuzz_path[256];

static inline void fuzz_remove_file(void)
{
    if (fuzz_path[0])
        unlink(fuzz_path);
}

static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    char *path = fuzz_path;
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/mecbed-fuzz-%d%s", dir, (int)getpid(), suffix);
        atexit(fuzz_remove_file); /* a normal end leaves no file behind */
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || put != size)
        return NULL;
    return path;
}

/* A NUL-terminated copy of data (for parsers of strings); free() it. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return NULL;
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Every error message must be a terminated string that names something;
 * abort() makes an empty one a finding. */
static inline void fuzz_check_err(const char *err)
{
    if (!memchr(err, 0, 512) || !err[0])
        abort();
}

#endif
