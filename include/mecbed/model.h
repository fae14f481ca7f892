/* mecbed: where graphs come from. The built-in zoo (seeded weights), mecbed's
 * own text model format (docs/model-format.md), and ONNX files. */
#ifndef MECBED_MODEL_H
#define MECBED_MODEL_H

#include "mecbed/graph.h"

#define MB_ZOO_SEED 42

/* Names of the built-in models, NULL-terminated ("alexnet", "vgg16", "resnet18", ...). */
const char *const *mb_zoo_names(void);
/* Build a zoo model with weights from the seeded generator; NULL + err if unknown. */
mb_graph *mb_zoo_build(const char *name, uint64_t seed, char *err, size_t errlen);

/* Load a model by zoo name, or from a file: *.onnx (ONNX), anything else the
 * text format. The result is inferred (mb_graph_infer) and ready to run. */
mb_graph *mb_model_load(const char *name_or_path, char *err, size_t errlen);

/* Text format. Errors read "file:line: what is wrong". */
mb_graph *mb_modelfile_read(const char *path, char *err, size_t errlen);
int mb_modelfile_write(const mb_graph *g, const char *path, char *err, size_t errlen);

/* Fold every BatchNormalization that directly follows a Conv (and is its only
 * consumer) into the conv's weights and bias. Returns the number folded. */
int mb_graph_fold_batchnorm(mb_graph *g);

#endif
