/* mecbed: reading INI files written by others (sweep configs, node types)
 * through inih with what inih lacks: line numbers for every key, only
 * regular files of bounded size (readfile.h), clear errors for a line longer
 * than inih's buffer (Debian builds it with 200 bytes: a longer line would
 * be cut and its tail read as a line of its own), for an embedded NUL byte
 * (everything after it would be ignored), for a section given twice and for
 * a key given twice in one section (which would otherwise silently replace
 * the first). A value continued on indented lines (inih's multi-line values)
 * reaches the handler once per line, flagged as a continuation. Reading
 * stops at the first error, reported as "PATH:LINE: what is wrong". */
#ifndef MECBED_INIFILE_H
#define MECBED_INIFILE_H

#include <stddef.h>

/* The longest line inih can read whole (Debian's INI_MAX_LINE is 200,
 * counting the newline and the terminating NUL). */
#define MB_INI_MAX_LINE 198

typedef struct mb_ini_pos {
    int line;         /* 1-based line of the key (or of the continuation line) */
    int continuation; /* 1: an indented line continuing the previous key's value */
} mb_ini_pos;

/* Called for each key = value (and each continuation line). Returns 0 to
 * accept, -1 to refuse with a message in err (no file or line: the reader
 * adds them). */
typedef int (*mb_ini_kv_fn)(void *user, const char *section, const char *key, const char *value,
                            const mb_ini_pos *pos, char *err, size_t errlen);
/* Optional: called for each [section] header as it is read (also for a
 * section without keys, which inih never reports). */
typedef int (*mb_ini_section_fn)(void *user, const char *section, int line, char *err, size_t errlen);

typedef struct mb_ini_opts {
    mb_ini_kv_fn on_kv;
    mb_ini_section_fn on_section; /* NULL: none */
    void *user;
} mb_ini_opts;

/* Reads path (a regular file of at most MB_READ_LIMIT_TEXT bytes). 0, or -1
 * with err "PATH:LINE: message" (or "PATH: message" when no line applies). */
int mb_ini_read(const char *path, const mb_ini_opts *o, char *err, size_t errlen);

#endif
