/* Private: the ONNX commands (conformance, import, export). */
#ifndef MECBED_ONNX_CMDS_H
#define MECBED_ONNX_CMDS_H

int cmd_conformance(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
