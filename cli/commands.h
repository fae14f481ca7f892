/* mecbed's sub-commands, one table (cli/main.c). Each command lives in
 * cli/cmd_<name>.c, prints its own --help, and returns the process exit
 * status (0 ok, 1 failure, 2 usage). Adding a command: its file, a
 * declaration here and a row in main.c's table. */
#ifndef MECBED_CLI_COMMANDS_H
#define MECBED_CLI_COMMANDS_H

typedef int (*mb_command_fn)(int argc, char **argv);

typedef struct mb_command {
    const char *name;
    mb_command_fn fn;
    const char *summary;
} mb_command;

int cmd_models(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_link(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_clean(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_sweep_merge(int argc, char **argv); /* `sweep merge`, dispatched by cmd_sweep */
int cmd_policies(int argc, char **argv);
int cmd_generate(int argc, char **argv);

#endif
