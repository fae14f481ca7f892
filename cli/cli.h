/* Private: the `models` and `infer` commands, and small helpers any
 * command may share. */
#ifndef MECBED_CLI_H
#define MECBED_CLI_H

#include <stddef.h>
#include <stdint.h>


/* Parse a whole decimal integer in [lo, hi]; 0 or -1. */
int mb_cli_int(const char *s, long lo, long hi, long *out);
/* "1x3x224x224" ("scalar" for rank 0). */
void mb_cli_dims(int ndim, const int64_t *dims, char *buf, size_t len);

#endif
