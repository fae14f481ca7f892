/* Finding mecbed's data files (node types, pinned profiles, plugins) from
 * wherever the binary runs: $MECBED_DATA, the source tree the binary was
 * built in (build-x/mecbed or build-x/tests/y), the install prefix. Private. */
#ifndef MB_POLICIES_DATADIR_H
#define MB_POLICIES_DATADIR_H

#include <stddef.h>

/* Finds rel (e.g. "policies/nodetypes/default.ini") and writes its path to
 * out. Returns 0, or -1 when no candidate exists (out then holds the first
 * candidate, for the error message). */
int mb_datadir_find(const char *rel, char *out, size_t len);
/* Directory of the running binary ("" if unknown). */
void mb_datadir_exe_dir(char *out, size_t len);

#endif
