/* mecbed: writing JSON text by hand where a command streams it (plan,
 * compare, run reports). Values that are built as trees use cJSON. */
#ifndef MECBED_JSONTEXT_H
#define MECBED_JSONTEXT_H

#include <stdio.h>

/* s as a JSON string literal (quoted, escaped); NULL as "". */
void mb_json_print_string(FILE *f, const char *s);

#endif
