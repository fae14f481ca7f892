/* Private: small helpers any command may share. */
#ifndef MECBED_CLI_H
#define MECBED_CLI_H

#include <stddef.h>
#include <stdint.h>


/* Parse a whole decimal integer in [lo, hi]; 0 or -1. */
int mb_cli_int(const char *s, long lo, long hi, long *out);
/* "1x3x224x224" ("scalar" for rank 0). */
void mb_cli_dims(int ndim, const int64_t *dims, char *buf, size_t len);
/* The one stderr line for a renamed flag still accepted under its old
 * spelling, for a release: "mecbed: --OLD is deprecated here; use --NEW". */
void mb_cli_deprecated(const char *old_name, const char *new_name);

#endif
