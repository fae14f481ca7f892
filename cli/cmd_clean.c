/* mecbed clean: remove what a killed run left behind. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "mecbed/cgroup.h"
#include "mecbed/netns.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed clean [--all] [--dry-run]\n"
               "\n"
               "Removes network namespaces named mecbed-<run>-*, interfaces named mb<run>* in this\n"
               "namespace, and the processes still inside those namespaces, for runs whose owner\n"
               "process (recorded in %s/<run>.pid) is gone, and the CPU-cap cgroups of dead runs.\n"
               "Live runs are kept unless --all.\n"
               "  --all      also remove live runs' namespaces\n"
               "  --dry-run  list what would be removed\n",
            MB_RUN_DIR);
}

int cmd_clean(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'}, {"all", no_argument, 0, 'a'}, {"dry-run", no_argument, 0, 'n'}, {0, 0, 0, 0}};
    int all = 0, dry = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'a': all = 1; break;
        case 'n': dry = 1; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed clean: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    char err[256] = "";
    int n = mb_clean_leftovers(all, dry, stdout, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "mecbed clean: %s\n", err);
        return 1;
    }
    if (!dry) {
        int g = mb_cpu_cap_clean_dead(); /* cgroups of `mecbed run --emulate cap` */
        if (g > 0)
            n += g;
    }
    printf("%s %d item%s\n", dry ? "would remove" : "removed", n, n == 1 ? "" : "s");
    return 0;
}
