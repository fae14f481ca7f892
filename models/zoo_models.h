/* Private: the zoo's model builders, one per network (models/zoo_*.c). */
#ifndef MECBED_ZOO_MODELS_H
#define MECBED_ZOO_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"

mb_graph *zoo_alexnet(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_vgg16(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_resnet18(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_resnet50(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_resnet152(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_mobilenetv2(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_googlenet(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_densenet121(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_tiny_yolov2(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_deit_tiny(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_vit_b16(uint64_t seed, char *err, size_t errlen);
mb_graph *zoo_bert_base(uint64_t seed, char *err, size_t errlen);

#endif
