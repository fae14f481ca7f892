/* libFuzzer harness: link specs (core/linkspec.c). Every accepted spec must
 * format into a string that parses again to the same canonical form. */
#include "fuzz_util.h"

#include "mecbed/linkspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = fuzz_string(data, size);
    if (!text)
        return 0;
    char err[512] = "";
    static mb_link_spec s, s2;
    memset(&s, 0, sizeof s);
    if (mb_linkspec_parse(text, &s, err, sizeof err)) {
        fuzz_check_err(err);
        free(text);
        return 0;
    }
    (void)mb_linkspec_rtt(&s);
    static char buf[4096], buf2[4096];
    if (mb_linkspec_format(&s, buf, sizeof buf) >= 0 && strlen(buf) < sizeof buf - 1) {
        memset(&s2, 0, sizeof s2);
        if (mb_linkspec_parse(buf, &s2, err, sizeof err))
            abort(); /* a formatted spec must parse */
        if (mb_linkspec_format(&s2, buf2, sizeof buf2) >= 0 && strcmp(buf, buf2))
            abort(); /* and format to the same string */
    }
    free(text);
    return 0;
}
