/* Registers the built-in policies (builtin.h's table) through the same call
 * plugins use. The references are strong, so any binary that registers the
 * built-ins links all of them, whole archive or not. */
#include <stdio.h>

#include "builtin.h"

void mb_policy_register_builtins(void)
{
#define MB_BUILTIN_REF(n) &mb_policy_##n##_ops,
    static const mb_policy_ops *const all[] = {MB_BUILTIN_POLICIES(MB_BUILTIN_REF)};
#undef MB_BUILTIN_REF
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char err[256];
        if (mb_policy_find(all[i]->name))
            continue;
        if (mb_policy_register(all[i], err, sizeof(err)))
            fprintf(stderr, "mecbed: built-in %s\n", err); /* a bug in a built-in, not user input */
    }
}
