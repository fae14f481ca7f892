/* Private to models/onnx: the importer's state, shared by the graph assembly
 * (onnx_import.c) and the per-operator converters (onnx_ops.c). */
#ifndef MB_ONNX_IMPORT_H
#define MB_ONNX_IMPORT_H

#include "onnx_internal.h"

/* What an ONNX tensor name refers to while importing. */
typedef struct ox_val {
    const char *name;    /* borrowed from the proto */
    int node;            /* graph node producing it, or -1 */
    mb_onnx_tensor *c;   /* value known at import time (initializer, Constant, bound input), or NULL */
    int const_node;      /* MB_OP_CONSTANT node made for c when used as data, or -1 */
    int input_pos;       /* position among the graph inputs that are not initializers, or -1 */
    const Onnx__ValueInfoProto *vi; /* graph input declaration, or NULL */
    int uses;            /* node inputs and graph outputs naming it */
} ox_val;

typedef struct ox_imp {
    const mb_onnx_model *m;
    const Onnx__GraphProto *gp;
    const mb_onnx_opts *opts;
    int64_t opset;
    mb_graph *g;
    ox_val *vals;
    int n_vals, cap_vals;
    int *table; /* open addressing: val index + 1, 0 empty */
    size_t table_cap;
    const Onnx__NodeProto *cur; /* node being converted (for messages) */
    int cur_index;
    int why;
    char *err;
    size_t errlen;
} ox_imp;

/* Errors. ox_fail: the file is wrong; ox_unsupported: mecbed cannot
 * represent it. Both prefix the current node ("node 'x' (Conv, opset 13,
 * #4): ") when converting one. Return -1. */
int ox_fail(ox_imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ox_unsupported(ox_imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Values by name. */
ox_val *ox_lookup(ox_imp *im, const char *name);
/* Bind name to a graph node / a constant (ownership of c moves in). */
int ox_bind_node(ox_imp *im, const char *name, int node);
int ox_bind_const(ox_imp *im, const char *name, mb_onnx_tensor *c);

/* Node inputs. ox_has: input k given (present and not ""). ox_data: the graph
 * node that carries input k as data (a Constant or Input node is made on
 * first use). ox_const: the value of input k, which must be known at import
 * time (role names it in the error), NULL with error otherwise. */
int ox_has(const Onnx__NodeProto *np, int k);
int ox_data(ox_imp *im, const Onnx__NodeProto *np, int k, int *node);
const mb_onnx_tensor *ox_const(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role);
/* The fp32 value of constant input k as a new tensor for a node's params:
 * an initializer's own buffer when this is its last use (no copy). NULL
 * with error (role names it). */
mb_tensor *ox_take_param(ox_imp *im, const Onnx__NodeProto *np, int k, const char *role);
/* 1 if input k is a constant best kept as one (not a bound graph input). */
int ox_is_const(ox_imp *im, const Onnx__NodeProto *np, int k);
/* 1 if ox_const would accept input k (bound graph inputs included). */
int ox_const_ok(ox_imp *im, const Onnx__NodeProto *np, int k);

/* Attributes. */
const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *np, const char *name);
int64_t ox_attr_i(const Onnx__NodeProto *np, const char *name, int64_t def);
float ox_attr_f(const Onnx__NodeProto *np, const char *name, float def);
/* String attribute into buf (def if absent). */
const char *ox_attr_s(const Onnx__NodeProto *np, const char *name, const char *def, char *buf, size_t len);
/* Integer list: count (0..max), -1 absent; more than max is an error. */
int ox_attr_ints(ox_imp *im, const Onnx__NodeProto *np, const char *name, int64_t *out, int max);

/* Add a node (name made unique); returns its index or -1 with error. */
int ox_add(ox_imp *im, mb_node *n, const char *name);
/* Output dims of node idx as inferred so far; 0 or -1 with error. */
int ox_shape(ox_imp *im, int idx, int *ndim, int64_t *dims);

/* Convert one ONNX node: adds graph nodes and binds the node's output. */
int ox_convert_node(ox_imp *im, const Onnx__NodeProto *np);
/* Fold node np at import time if it is shape arithmetic on known values
 * (onnx_fold.c): 1 folded (output bound), 0 not foldable, -1 error. */
int ox_try_fold(ox_imp *im, const Onnx__NodeProto *np);
/* The transformer operators' converters (onnx_ops_tf.c): 1 and the
 * converter and its attribute list when op_type is one of them. */
int ox_tf_find(const char *name, int (**fn)(ox_imp *, const Onnx__NodeProto *, mb_node *), const char **attrs);
/* Any ReduceX over any axes (onnx_ops_tf.c); resets n first. */
int ox_cv_reduce(ox_imp *im, const Onnx__NodeProto *np, mb_node *n);
/* mb_dtype of an ONNX element type, -1 when mecbed has none. */
int ox_dtype_of(int onnx_type);
/* Fuse the decomposed LayerNormalization and Gelu patterns older exporters
 * write into single nodes (onnx_fuse.c); before dead-node removal. */
int ox_fuse_patterns(ox_imp *im);

/* 1 if op_type (default domain) is one the importer converts. */
int ox_op_known(const char *op_type);

#endif
