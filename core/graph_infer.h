/* Private to core/: what core/graph.c's shape inference shares with the
 * per-operator inference of the transformer operators (core/graph_ops.c). */
#ifndef MB_CORE_GRAPH_INFER_H
#define MB_CORE_GRAPH_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/graph.h"

typedef struct shape {
    int ndim;
    int64_t d[MB_MAX_DIMS];
} shape;

/* One node's shape inference: the node, its input shapes, and what the per-op
 * function fills in (output shape and MAC count). */
typedef struct infer_ctx {
    mb_node *n;
    mb_op_attrs *a;
    int idx;
    const shape *in;
    shape out;
    int64_t macs; /* -1: one per output element */
    char *err;
    size_t errlen;
} infer_ctx;

int mb__infer_fail(char *err, size_t errlen, const mb_node *n, int idx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define INFER_FAIL(c, ...) mb__infer_fail((c)->err, (c)->errlen, (c)->n, (c)->idx, __VA_ARGS__)

/* numpy broadcasting of two shapes; -1 if they do not broadcast. */
int mb__broadcast(const shape *a, const shape *b, shape *out);
/* Element count, -1 when above 2^48. */
int64_t mb__numel(const shape *s);
shape mb__tensor_shape(const mb_tensor *t);

/* core/graph_ops.c: inference of the transformer operators. */
int mb__infer_transpose(infer_ctx *c);
int mb__infer_layernorm(infer_ctx *c);
int mb__infer_eltwise1(infer_ctx *c);  /* unary elementwise, Gelu, Cast */
int mb__infer_binary2(infer_ctx *c);   /* Pow, Min, Max, comparisons, logic */
int mb__infer_where(infer_ctx *c);
int mb__infer_reduce(infer_ctx *c);
int mb__infer_slice(infer_ctx *c);
int mb__infer_gather(infer_ctx *c);
int mb__infer_expand(infer_ctx *c);
int mb__infer_tile(infer_ctx *c);
int mb__infer_instancenorm(infer_ctx *c);
int mb__infer_axis_softmax(infer_ctx *c); /* LogSoftmax, CumSum, Hardmax: shape kept, one axis */
int mb__infer_argmax(infer_ctx *c);
int mb__infer_trilu(infer_ctx *c);
int mb__infer_gather_elements(infer_ctx *c);
int mb__infer_nllloss(infer_ctx *c);
/* core/graph_region.c: locality of an op with a 2-D/3-D output (shapes inferred). */
int mb__token_local(const mb_graph *g, int i);
/* Output element type of node idx from its inputs' types (after inference). */
int mb__infer_dtype(const mb_graph *g, int idx);

#endif
