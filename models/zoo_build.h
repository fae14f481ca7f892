/* Private: a small builder the zoo models are written with. It tracks the
 * channel count of every node (so a conv knows its weight shape), draws
 * every weight from the seeded generator, and remembers the first failure so
 * model code can chain calls without checking each one. */
#ifndef MECBED_ZOO_BUILD_H
#define MECBED_ZOO_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"

typedef struct zoo_b {
    mb_graph *g;
    uint64_t seed;
    uint64_t n_drawn; /* tensors drawn so far: each gets its own stream */
    int *ch;          /* channels (dim 1) of each node's output */
    int cap;
    int failed;
    char err[400];
    char name[MB_NAME_LEN]; /* scratch for zoo_nm() */
} zoo_b;

/* Weight scales. He-uniform bound sqrt(6/fan_in) keeps the second moment of
 * activations through conv+ReLU; convs without a ReLU after them use
 * sqrt(3/fan_in) (unit gain). */
#define ZOO_GAIN_RELU 1.41421356f
#define ZOO_GAIN_LINEAR 1.0f

/* While on, weights are allocated with their shapes but not filled. */
void zoo_set_structure_only(int on);
int zoo_structure_only(void);

int zoo_begin(zoo_b *b, const char *model, uint64_t seed);
/* Infers shapes, sets the outputs; returns the graph or NULL with err. Frees the builder. */
mb_graph *zoo_finish(zoo_b *b, const int *outputs, int n_outputs, char *err, size_t errlen);

/* Name formatting into b->name (valid until the next zoo_nm call). */
const char *zoo_nm(zoo_b *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int zoo_input(zoo_b *b, const char *name, int c, int h, int w);
/* Conv with square kernel k, stride s, symmetric padding p, groups; bias 0/1. */
int zoo_conv(zoo_b *b, const char *name, int x, int out_ch, int k, int s, int p, int group, int bias, float gain);
/* BatchNormalization; gamma drawn from [g_lo, g_hi). */
int zoo_bn(zoo_b *b, const char *name, int x, float eps, float g_lo, float g_hi);
int zoo_relu(zoo_b *b, const char *name, int x);
int zoo_relu6(zoo_b *b, const char *name, int x);
int zoo_leaky(zoo_b *b, const char *name, int x, float alpha);
/* Pooling with square kernel k, stride s, pads top,left,bottom,right. */
int zoo_maxpool(zoo_b *b, const char *name, int x, int k, int s, const int pads[4], int ceil_mode);
int zoo_avgpool(zoo_b *b, const char *name, int x, int k, int s, const int pads[4], int ceil_mode);
int zoo_gap(zoo_b *b, const char *name, int x);
int zoo_flatten(zoo_b *b, const char *name, int x, int features);
/* Fully connected: y = x W^T + b (W stored [out, in] as PyTorch exports it). */
int zoo_fc(zoo_b *b, const char *name, int x, int in_f, int out_f, float gain);
int zoo_add(zoo_b *b, const char *name, int x, int y);
int zoo_concat(zoo_b *b, const char *name, const int *xs, int n);

/* A builder for token models (transformers, decoders: zoo_transformer.c,
 * zoo_decoder.c), whose layers are written node by node: the first failure
 * is remembered (a later node with a failed input or operand is not added,
 * its operands freed), so model code chains calls and checks once. */
typedef struct zoo_tb {
    mb_graph *g;
    uint64_t seed, n_drawn;
    uint64_t salt;      /* per model family: its weights' streams differ */
    int structure_only; /* weights allocated, not filled */
    int failed;
    char err[400];
} zoo_tb;

/* A tensor of uniform [lo, hi) weights, from the next seeded stream. */
mb_tensor *zoo_tb_draw(zoo_tb *b, int ndim, const int64_t *dims, float lo, float hi);
/* A tensor of value v (NULL when out of memory). */
mb_tensor *zoo_filled(int ndim, const int64_t *dims, float v);
/* Adds n (its id), or frees its operands and returns -1 once anything failed. */
int zoo_tb_add(zoo_tb *b, mb_node *n);
/* A node named name of type t with input x (none when x < 0). */
mb_node zoo_node(const char *name, mb_op_type t, int x);

#endif
