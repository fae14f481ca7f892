/* mecbed keygen: a secret key file for `mecbed run --key-file` and
 * `mecbed node --key-file` (docs/protocol.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "mecbed/auth.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed keygen -o FILE\n\n"
            "Write a new secret key (%d random bytes from getrandom, as hex) to FILE, created\n"
            "with mode 0600; FILE must not exist. Give the same file to the nodes\n"
            "(`mecbed node --key-file FILE`) and to the runner (`mecbed run --key-file FILE`)\n"
            "when nodes run on other hosts: only a holder of the key can make a node compute.\n"
            "(`mecbed run` makes a fresh key per run for the nodes it starts itself.)\n\n"
            "  -o, --output FILE   where to write the key (required)\n"
            "  --help\n",
            MB_KEY_LEN);
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || !out) {
        usage(stderr);
        return 2;
    }
    unsigned char key[MB_KEY_LEN];
    char err[512];
    int rc = mb_key_generate(key, err, sizeof err) || mb_key_write(out, key, err, sizeof err);
    mb_key_wipe(key, sizeof key);
    if (rc) {
        fprintf(stderr, "mecbed keygen: %s\n", err);
        return 1;
    }
    return 0;
}
