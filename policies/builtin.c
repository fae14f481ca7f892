/* Registers the built-in policies through the same call plugins use. The
 * references are strong, so any binary that registers the built-ins links
 * all eight, whole archive or not. */
#include <stdio.h>

#include "builtin.h"

void mb_policy_register_builtins(void)
{
    const mb_policy_ops *all[] = {&mb_policy_local_ops,   &mb_policy_offload_ops,
                                  &mb_policy_layerwise_ops, &mb_policy_mincut_ops,
                                  &mb_policy_cic_ops,     &mb_policy_tile_ops,
                                  &mb_policy_oplevel_ops, &mb_policy_dds_ops};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char err[256];
        if (mb_policy_find(all[i]->name))
            continue;
        if (mb_policy_register(all[i], err, sizeof(err)))
            fprintf(stderr, "mecbed: built-in %s\n", err); /* a bug in a built-in, not user input */
    }
}
