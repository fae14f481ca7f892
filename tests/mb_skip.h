/* Skips that show as SKIP, not PASS. cmocka counts a skip() as a success,
 * so a binary whose only meaningful test was skipped would exit 0 and
 * tests/run.sh would print PASS. MB_SKIP prints the reason (run.sh shows
 * the last line containing "skip") and counts it; MB_TESTS_EXIT turns a
 * clean run with at least one skip into exit status 77. Include after
 * <cmocka.h>, in one translation unit per test binary. */
#ifndef MB_SKIP_H
#define MB_SKIP_H

#include <stdio.h>

static int mb_skipped;

#define MB_SKIP(...)                                                                                                   \
    do {                                                                                                               \
        printf("skip: " __VA_ARGS__);                                                                                  \
        printf("\n");                                                                                                  \
        fflush(stdout);                                                                                                \
        mb_skipped++;                                                                                                  \
        skip();                                                                                                        \
    } while (0)

/* rc: what cmocka_run_group_tests returned (the number of failures). */
#define MB_TESTS_EXIT(rc) ((rc) == 0 && mb_skipped ? 77 : (rc))

#endif
