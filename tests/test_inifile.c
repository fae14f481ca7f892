/* The INI reader under sweep configs and node types (core/inifile.c): line
 * numbers and continuations reach the handler, sections are reported even
 * without keys, and what inih would misread or silently accept is an error
 * naming the file and line: a key or section given twice, a line too long
 * for inih's buffer (with LF or CR LF endings), a NUL byte, a line that is
 * no INI syntax; only regular files are read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/inifile.h"

static char path[64];

static void put(const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

typedef struct seen {
    char log[2048];
    int refuse_line; /* the handler refuses the key on this line (0: none) */
} seen;

static int on_kv(void *user, const char *section, const char *key, const char *value, const mb_ini_pos *pos,
                 char *err, size_t errlen)
{
    seen *s = user;
    if (pos->line == s->refuse_line) {
        snprintf(err, errlen, "%s: refused", key);
        return -1;
    }
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%d%s [%s] %s=%s\n", pos->line, pos->continuation ? "+" : "", section,
             key, value);
    return 0;
}

static int on_section(void *user, const char *section, int line, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    seen *s = user;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof s->log - n, "%d [%s]\n", line, section);
    return 0;
}

/* Reads text; returns the handler's log, or NULL with *err. */
static const char *read_text(seen *s, const char *text, size_t len, char *err, size_t errlen)
{
    memset(s->log, 0, sizeof s->log);
    put(text, len);
    mb_ini_opts o = {.on_kv = on_kv, .on_section = on_section, .user = s};
    return mb_ini_read(path, &o, err, errlen) ? NULL : s->log;
}

static void expect_error(const char *text, size_t len, const char *want)
{
    seen s = {0};
    char err[1024] = "";
    assert_null(read_text(&s, text, len, err, sizeof err));
    if (strncmp(err, path, strlen(path)) || !strstr(err, want))
        fail_msg("error '%s' lacks '%s' (or the file name)", err, want);
}

static void test_lines_and_continuations(void **state)
{
    (void)state;
    seen s = {0};
    char err[512];
    const char *text = "; comment\n[a]\nx = 1\nlist = p q\n  r s\n# comment between\n\tt\n[empty]\n[b]\nx=2\n";
    const char *log = read_text(&s, text, strlen(text), err, sizeof err);
    if (!log)
        fail_msg("%s", err);
    assert_string_equal(log, "2 [a]\n3 [a] x=1\n4 [a] list=p q\n5+ [a] list=r s\n7+ [a] list=t\n8 [empty]\n"
                             "9 [b]\n10 [b] x=2\n");
    /* CR LF endings and a UTF-8 byte order mark read the same */
    const char *crlf = "\xEF\xBB\xBF[a]\r\nx = 1\r\n";
    log = read_text(&s, crlf, strlen(crlf), err, sizeof err);
    if (!log)
        fail_msg("%s", err);
    assert_string_equal(log, "1 [a]\n2 [a] x=1\n");
}

static void test_line_length(void **state)
{
    (void)state;
    char text[600], err[512];
    seen s = {0};
    for (int crlf = 0; crlf < 2; crlf++) {
        /* "k = " and 194 more: 198 characters fit, with either ending */
        int n = snprintf(text, sizeof text, "[a]\nk = %0194d%s", 7, crlf ? "\r\n" : "\n");
        const char *log = read_text(&s, text, (size_t)n, err, sizeof err);
        if (!log)
            fail_msg("198 characters (%s): %s", crlf ? "CR LF" : "LF", err);
        assert_int_equal(strlen(log), strlen("1 [a]\n2 [a] k=") + 194 + 1);
        n = snprintf(text, sizeof text, "[a]\nk = %0195d%s", 7, crlf ? "\r\n" : "\n");
        expect_error(text, (size_t)n, ":2: line of 199 characters: at most 198 fit");
    }
    /* a long line is not cut and its tail read as a line of its own */
    int n = snprintf(text, sizeof text, "[a]\nk = %0300d\nj = 1\n", 1);
    expect_error(text, (size_t)n, ":2: line of 304 characters");
}

static void test_errors(void **state)
{
    (void)state;
    const char dup_key[] = "[a]\nx = 1\ny = 2\nx = 3\n";
    expect_error(dup_key, sizeof dup_key - 1, ":4: 'x' given twice in [a] (first at line 2)");
    const char dup_sec[] = "[a]\nx = 1\n[b]\n[a]\ny = 1\n";
    expect_error(dup_sec, sizeof dup_sec - 1, ":4: section [a] appears twice (first at line 1)");
    const char nul[] = "[a]\nx = 1\0 2\n";
    expect_error(nul, sizeof nul - 1, ":2: a NUL byte at column 6");
    const char junk[] = "[a]\nthis is not ini\n";
    expect_error(junk, sizeof junk - 1, ":2: not an INI line");
    const char open[] = "[a\nx = 1\n";
    expect_error(open, sizeof open - 1, ":1: '[' without a closing ']'");
    const char empty[] = "[ ]\n";
    expect_error(empty, sizeof empty - 1, ":1: empty section name");
    /* the same key in two sections is fine; a continuation is no repeat */
    seen s = {0};
    char err[512];
    const char ok[] = "[a]\nx = 1\n  2\n[b]\nx = 3\n";
    assert_non_null(read_text(&s, ok, sizeof ok - 1, err, sizeof err));
    /* the handler's refusal names the line */
    s.refuse_line = 5;
    assert_null(read_text(&s, ok, sizeof ok - 1, err, sizeof err));
    assert_non_null(strstr(err, ":5: x: refused"));
    /* only regular files */
    mb_ini_opts o = {.on_kv = on_kv, .user = &s};
    assert_int_equal(mb_ini_read("/dev/zero", &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "/dev/zero: is a character device, not a regular file"));
    assert_int_equal(mb_ini_read("/nonexistent/x.ini", &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.ini: No such file or directory"));
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/mb-inifile-%d.ini", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_and_continuations),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
