/* `mecbed trace gen|stats|convert` (traces/cmd_trace.c). */
#ifndef MECBED_TRACES_CMD_TRACE_H
#define MECBED_TRACES_CMD_TRACE_H

int cmd_trace(int argc, char **argv);

#endif
