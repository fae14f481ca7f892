/* netem's sub-commands: `mecbed link`, `mecbed clean` (netem/cmd_*.c). */
#ifndef MECBED_NETEM_COMMANDS_H
#define MECBED_NETEM_COMMANDS_H

int cmd_link(int argc, char **argv);
int cmd_clean(int argc, char **argv);

#endif
