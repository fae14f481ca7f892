/* mecbed sub-commands. Each is implemented in its own module (emu/cmd_*.c,
 * netem/, policies/, traces/ ...) with the signature below, prints its own
 * --help, and returns the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef MECBED_COMMANDS_H
#define MECBED_COMMANDS_H

typedef int (*mb_command_fn)(int argc, char **argv);

typedef struct mb_command {
    const char *name;
    mb_command_fn fn;
    const char *summary;
} mb_command;

#endif
