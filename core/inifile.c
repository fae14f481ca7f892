/* INI files through inih with line numbers, bounded regular files, and
 * duplicate sections and keys refused (include/mecbed/inifile.h).
 *
 * inih (Debian's build) hands the handler neither line numbers nor section
 * headers, and reads into a 200-byte buffer. So lines reach it through our
 * own reader: it counts them, refuses what inih would misread (a line too
 * long for its buffer, a NUL byte, a line that is no INI syntax), reports
 * section headers, and remembers whether the line is an indented
 * continuation. When the handler runs, the line it is looking at is the last
 * one read. */
#include "mecbed/inifile.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "mecbed/readfile.h"

/* inih's own limits on a section and a key name (MAX_SECTION, MAX_NAME in
 * ini.c: 50 bytes with the NUL); a longer one would be cut silently. */
#define INIH_MAX_NAME 49

/* Seen sections and keys: "\x1e" SECTION, or SECTION "\x1f" KEY -> line. */
typedef struct seen_entry {
    char *k;
    int line;
} seen_entry;

typedef struct mb_inirdr {
    const char *path;
    const mb_ini_opts *o;
    FILE *f;
    char *buf;
    size_t cap;
    int line;
    int continuation; /* the last line read continues a key's value */
    int have_key;     /* a key was read in the current section (inih's prev_name) */
    char section[INIH_MAX_NAME + 1];
    seen_entry *seen;
    size_t n_seen, cap_seen; /* cap_seen: a power of two */
    int oom;
    char err[1024];
} mb_inirdr;

static void rfail(mb_inirdr *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rfail(mb_inirdr *r, const char *fmt, ...)
{
    if (r->err[0])
        return;
    int n = snprintf(r->err, sizeof r->err, "%s:%d: ", r->path, r->line);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->err)
        vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
}

static uint64_t fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static seen_entry *seen_slot(mb_inirdr *r, const char *k)
{
    size_t mask = r->cap_seen - 1;
    for (size_t i = fnv(k) & mask;; i = (i + 1) & mask)
        if (!r->seen[i].k || !strcmp(r->seen[i].k, k))
            return &r->seen[i];
}

/* The line where k was first seen (0: never); records it at `line` when new. */
static int seen_add(mb_inirdr *r, const char *k, int line)
{
    if (2 * (r->n_seen + 1) > r->cap_seen) {
        size_t cap = r->cap_seen ? 2 * r->cap_seen : 64;
        seen_entry *old = r->seen;
        size_t old_cap = r->cap_seen;
        r->seen = calloc(cap, sizeof *r->seen);
        if (!r->seen) {
            r->seen = old;
            r->oom = 1;
            return 0;
        }
        r->cap_seen = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].k)
                *seen_slot(r, old[i].k) = old[i];
        free(old);
    }
    seen_entry *e = seen_slot(r, k);
    if (e->k)
        return e->line;
    e->k = strdup(k);
    if (!e->k) {
        r->oom = 1;
        return 0;
    }
    e->line = line;
    r->n_seen++;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* A [section] line: checks the name and reports it. 0 or -1. */
static int section_line(mb_inirdr *r, const char *start)
{
    const char *close = strchr(start, ']');
    if (!close) {
        rfail(r, "'[' without a closing ']'");
        return -1;
    }
    char name[256];
    size_t len = (size_t)(close - start - 1);
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, start + 1, len);
    name[len] = 0;
    char *t = trim(name);
    if (strlen(t) > INIH_MAX_NAME) {
        rfail(r, "section name longer than %d characters", INIH_MAX_NAME);
        return -1;
    }
    if (!*t) {
        rfail(r, "empty section name []");
        return -1;
    }
    char key[INIH_MAX_NAME + 2];
    snprintf(key, sizeof key, "\x1e%s", t);
    int first = seen_add(r, key, r->line);
    if (first) {
        rfail(r, "section [%s] appears twice (first at line %d)", t, first);
        return -1;
    }
    snprintf(r->section, sizeof r->section, "%s", t);
    r->have_key = 0;
    if (r->o->on_section) {
        char e[512] = "";
        if (r->o->on_section(r->o->user, r->section, r->line, e, sizeof e)) {
            rfail(r, "%s", e[0] ? e : "section refused");
            return -1;
        }
    }
    return 0;
}

/* Classifies the line just read (*len bytes; a CR LF or CR ending becomes
 * LF, so that a 198-character line fits inih's buffer either way); 0, or
 * -1 with r->err. */
static int check_line(mb_inirdr *r, size_t *len)
{
    char *s = r->buf;
    if (memchr(s, 0, *len)) {
        rfail(r, "a NUL byte at column %d (not a text file?)", (int)((char *)memchr(s, 0, *len) - s) + 1);
        return -1;
    }
    size_t content = *len;
    while (content && (s[content - 1] == '\n' || s[content - 1] == '\r'))
        content--;
    if (content < *len) {
        s[content] = '\n';
        s[content + 1] = 0;
        *len = content + 1;
    }
    if (content > MB_INI_MAX_LINE) {
        rfail(r, "line of %zu characters: at most %d fit (continue a long value on indented lines)", content,
              MB_INI_MAX_LINE);
        return -1;
    }
    if (r->line == 1 && !strncmp(s, "\xEF\xBB\xBF", 3)) /* a UTF-8 byte order mark, as inih skips it */
        s += 3;
    char *start = s;
    while (isspace((unsigned char)*start))
        start++;
    r->continuation = 0;
    if (!*start || *start == ';' || *start == '#')
        return 0;
    if (*start == '[')
        return section_line(r, start);
    if (start > s && r->have_key) {
        r->continuation = 1;
        return 0;
    }
    size_t kl = strcspn(start, "=:");
    if (!start[kl]) {
        rfail(r, "not an INI line (expected [section] or key = value)");
        return -1;
    }
    while (kl && isspace((unsigned char)start[kl - 1]))
        kl--;
    if (kl > INIH_MAX_NAME) {
        rfail(r, "key name longer than %d characters", INIH_MAX_NAME);
        return -1;
    }
    if (!kl) {
        rfail(r, "a value without a key name");
        return -1;
    }
    r->have_key = 1;
    return 0;
}

static char *reader_gets(char *str, int num, void *stream)
{
    mb_inirdr *r = stream;
    if (r->err[0])
        return NULL;
    ssize_t got = getline(&r->buf, &r->cap, r->f);
    if (got < 0)
        return NULL;
    r->line++;
    size_t len = (size_t)got;
    if (check_line(r, &len))
        return NULL;
    if (len + 1 > (size_t)num) { /* cannot happen after check_line: never overflow inih's buffer */
        rfail(r, "line too long");
        return NULL;
    }
    memcpy(str, r->buf, len + 1);
    return str;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
    mb_inirdr *r = user;
    if (r->err[0])
        return 0;
    mb_ini_pos pos = {.line = r->line, .continuation = r->continuation};
    if (!pos.continuation) {
        char k[2 * INIH_MAX_NAME + 8];
        snprintf(k, sizeof k, "%s\x1f%s", section, key);
        int first = seen_add(r, k, r->line);
        if (first) {
            if (section[0])
                rfail(r, "'%s' given twice in [%s] (first at line %d)", key, section, first);
            else
                rfail(r, "'%s' given twice (first at line %d)", key, first);
            return 0;
        }
    }
    char e[512] = "";
    if (r->o->on_kv(r->o->user, section, key, value, &pos, e, sizeof e)) {
        rfail(r, "%s", e[0] ? e : "refused");
        return 0;
    }
    return 1;
}

int mb_ini_read(const char *path, const mb_ini_opts *o, char *err, size_t errlen)
{
    mb_inirdr *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    r->path = path;
    r->o = o;
    int rc = -1;
    r->f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!r->f)
        goto out;
    int ret = ini_parse_stream(reader_gets, r, handler, r);
    if (r->oom)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (r->err[0])
        snprintf(err, errlen, "%s", r->err);
    else if (ret > 0)
        snprintf(err, errlen, "%s:%d: not an INI line (expected [section] or key = value)", path, ret);
    else if (ret < 0 || ferror(r->f))
        snprintf(err, errlen, "%s: read error", path);
    else
        rc = 0;
out:
    if (r->f)
        fclose(r->f);
    for (size_t i = 0; i < r->cap_seen; i++)
        free(r->seen[i].k);
    free(r->seen);
    free(r->buf);
    free(r);
    return rc;
}
