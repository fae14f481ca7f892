/* mecbed runtime sub-commands (emu/cmd_run.c, emu/cmd_node.c). Private. */
#ifndef MECBED_RT_CMDS_H
#define MECBED_RT_CMDS_H

int cmd_run(int argc, char **argv);
int cmd_node(int argc, char **argv);

#endif
