/* Opening files written by others: only regular files, with a size limit, so
 * that a FIFO, /dev/zero or a directory named as a model, trace, profile or
 * topology gets a clear error at once instead of a hang or unbounded growth. */
#ifndef MECBED_READFILE_H
#define MECBED_READFILE_H

#include <stdint.h>
#include <stdio.h>

/* Limits by kind: text formats (model files, traces, profiles, topologies,
 * plans) and binary data (weights, .npy, ONNX). Generous for real inputs,
 * far below what would exhaust a node. */
#define MB_READ_LIMIT_TEXT ((int64_t)256 << 20)
#define MB_READ_LIMIT_DATA ((int64_t)8 << 30)

/* Opens path read-only without blocking on a FIFO, refuses anything but a
 * regular file and files larger than max_bytes, and returns a blocking file
 * descriptor (and the size in *size when not NULL), or -1 with err set to
 * "PATH: why" (errno kept from a failed open). */
int mb_open_regular(const char *path, int64_t max_bytes, int64_t *size, char *err, size_t errlen);

/* The same as a stdio stream opened for reading ("r"/"rb"), or NULL. */
FILE *mb_fopen_regular(const char *path, int64_t max_bytes, char *err, size_t errlen);

#endif
