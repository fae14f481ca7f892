/* mecbed: the model as a DAG of operators. Every node produces exactly one
 * tensor; node.inputs[] name the producing nodes, and nodes are stored in
 * topological order (a node's inputs have smaller indices). Weights live on
 * the node (params[]), never cross a link, and are resident on every site. */
#ifndef MECBED_GRAPH_H
#define MECBED_GRAPH_H

#include "mecbed/tensor.h"

#define MB_MAX_INPUTS 128
#define MB_MAX_PARAMS 6
#define MB_MAX_OUTPUTS 128
#define MB_NAME_LEN 96

typedef enum mb_op_type {
    MB_OP_INPUT = 0,   /* graph input, produced on the device; its dims are a.shape[0..a.shape_ndim) */
    MB_OP_CONSTANT,    /* constant tensor in params[0]; free and available on every site */
    MB_OP_CONV,        /* params: W [M, C/group, kh, kw], optional B [M] */
    MB_OP_CONV_TRANSPOSE, /* params: W [C, M/group, kh, kw], optional B [M] */
    MB_OP_GEMM,        /* Y = alpha*op(A)*op(B) + beta*C; params: B, optional C (B may be input 1, then params: optional C);
                          alpha = beta = 0 means unset (ONNX's 1, 1) */
    MB_OP_MATMUL,      /* two data inputs, or one input and params[0] as the right operand */
    MB_OP_MAXPOOL,
    MB_OP_AVGPOOL,
    MB_OP_GLOBALAVGPOOL,
    MB_OP_RELU,
    MB_OP_CLIP,        /* min = a.alpha, max = a.beta (Relu6: 0, 6) */
    MB_OP_SIGMOID,
    MB_OP_HARDSIGMOID, /* max(0, min(1, alpha*x + beta)) */
    MB_OP_HARDSWISH,
    MB_OP_LEAKYRELU,   /* alpha */
    MB_OP_ADD,         /* binary ops broadcast (numpy rules); second operand may be params[0] */
    MB_OP_SUB,
    MB_OP_MUL,
    MB_OP_DIV,
    MB_OP_CONCAT,      /* axis */
    MB_OP_BATCHNORM,   /* params: scale, bias, mean, var; epsilon */
    MB_OP_SOFTMAX,     /* axis */
    MB_OP_FLATTEN,     /* axis */
    MB_OP_RESHAPE,     /* a.shape / a.shape_ndim (0 copies, -1 infers, as ONNX) */
    MB_OP_PAD,         /* a.pad_amounts (begin..., end...), a.pad_mode, a.pad_value */
    MB_OP_RESIZE,      /* a.scales, a.resize_mode, a.coord_mode, a.nearest_mode */
    MB_OP_IDENTITY,    /* also Dropout at inference */
    /* ---- transformer operators (core/graph_ops.c infers their shapes) ---- */
    MB_OP_TRANSPOSE,   /* a.perm[0..rank) */
    MB_OP_LAYERNORM,   /* over axes a.axis..rank-1; params: scale, optional bias; epsilon */
    MB_OP_GELU,        /* a.gelu_tanh: 0 erf form, 1 tanh approximation */
    MB_OP_ERF,         /* unary elementwise ops from here to MB_OP_SIGN */
    MB_OP_TANH,
    MB_OP_EXP,
    MB_OP_LOG,
    MB_OP_SQRT,
    MB_OP_RECIPROCAL,
    MB_OP_ABS,
    MB_OP_NEG,
    MB_OP_FLOOR,
    MB_OP_CEIL,
    MB_OP_NOT,         /* bool: x == 0 */
    MB_OP_ELU,         /* alpha */
    MB_OP_SELU,        /* alpha, gamma in beta */
    MB_OP_SOFTPLUS,
    MB_OP_SOFTSIGN,
    MB_OP_SIN,
    MB_OP_COS,
    MB_OP_SIGN,
    MB_OP_POW,         /* binary ops from here to MB_OP_XOR, broadcasting like Add */
    MB_OP_MIN,
    MB_OP_MAX,
    MB_OP_EQUAL,       /* comparisons and logic produce bool (0/1) */
    MB_OP_LESS,
    MB_OP_GREATER,
    MB_OP_LESS_EQUAL,
    MB_OP_GREATER_EQUAL,
    MB_OP_AND,
    MB_OP_OR,
    MB_OP_XOR,
    MB_OP_WHERE,       /* inputs: condition, x, y (broadcasting) */
    MB_OP_LOGSOFTMAX,  /* axis */
    MB_OP_REDUCEMEAN,  /* reductions over a.axes_mask (bit i: axis i), a.keepdims */
    MB_OP_REDUCESUM,
    MB_OP_REDUCEMAX,
    MB_OP_REDUCEMIN,
    MB_OP_REDUCEPROD,
    MB_OP_REDUCESUMSQUARE,
    MB_OP_REDUCEL1,
    MB_OP_REDUCEL2,
    MB_OP_REDUCELOGSUM,
    MB_OP_REDUCELOGSUMEXP,
    MB_OP_SLICE,       /* per input axis: a.starts, a.ends, a.steps (resolved, steps 0 = whole axis) */
    MB_OP_GATHER,      /* axis; data, indices: inputs 0, 1, or one of them params[0] (a.gather_table) */
    MB_OP_EXPAND,      /* target a.shape (numpy broadcast) */
    MB_OP_TILE,        /* repeats in a.shape */
    MB_OP_CAST,        /* to a.dtype (mb_dtype) */
    MB_OP_INSTANCENORM, /* params: scale [C], bias [C]; epsilon */
    MB_OP_ARGMAX,      /* axis, keepdims, a.select_last; int64 output */
    MB_OP_ARGMIN,
    MB_OP_TRILU,       /* a.upper, diagonal offset a.diag_k; over the last two axes */
    MB_OP_GATHER_ELEMENTS, /* axis; data input 0, indices input 1 or params[0] */
    MB_OP_MOD,         /* binary; a.fmod: C fmod, else the divisor's sign (Python %) */
    MB_OP_CUMSUM,      /* axis, a.exclusive, a.reverse */
    MB_OP_HARDMAX,     /* axis */
    MB_OP_THRESHOLDED_RELU, /* alpha */
    MB_OP_ISINF,       /* alpha: detect +inf, beta: detect -inf (0/1) */
    MB_OP_TAN,
    MB_OP_ROUND,       /* half to even */
    MB_OP_NLLLOSS,     /* inputs: log-probabilities [N, C, ...], targets [N, ...], optional weights [C];
                          a.reduction, a.ignore_index when a.has_ignore */
    MB_OP_COUNT
} mb_op_type;

enum { MB_AUTO_PAD_NOTSET = 0, MB_AUTO_PAD_SAME_UPPER, MB_AUTO_PAD_SAME_LOWER, MB_AUTO_PAD_VALID };
enum { MB_PAD_CONSTANT = 0, MB_PAD_REFLECT, MB_PAD_EDGE };
enum { MB_RESIZE_NEAREST = 0, MB_RESIZE_LINEAR };
enum { MB_COORD_HALF_PIXEL = 0, MB_COORD_ASYMMETRIC, MB_COORD_ALIGN_CORNERS,
       MB_COORD_PYTORCH_HALF_PIXEL, MB_COORD_TF_HALF_PIXEL_FOR_NN };
enum { MB_NEAREST_ROUND_PREFER_FLOOR = 0, MB_NEAREST_ROUND_PREFER_CEIL, MB_NEAREST_FLOOR,
       MB_NEAREST_CEIL };

/* Operator attributes. One flat struct for all ops: fields an op does not use
 * stay zero. New fields are only ever appended. */
typedef struct mb_op_attrs {
    int kernel[2];   /* kh, kw */
    int stride[2];   /* sh, sw (0 means 1) */
    int pads[4];     /* top, left, bottom, right; auto_pad is resolved into these by mb_graph_infer */
    int dilation[2]; /* 0 means 1 */
    int group;       /* 0 means 1 */
    int auto_pad;
    int ceil_mode;
    int count_include_pad;
    int output_padding[2];
    float alpha, beta;
    float epsilon;
    int trans_a, trans_b;
    int axis;
    int shape_ndim;
    int64_t shape[MB_MAX_DIMS];
    int64_t pad_amounts[2 * MB_MAX_DIMS];
    int pad_mode;
    float pad_value;
    float scales[MB_MAX_DIMS];
    int resize_mode, coord_mode, nearest_mode;
    float cubic_coeff_a;
    int bn_folded; /* set when a BatchNormalization was folded into this conv */
    int perm[MB_MAX_DIMS];   /* Transpose */
    int axes_mask;           /* reductions: bit i reduces axis i */
    int keepdims;            /* reductions: 1 keeps reduced axes as size 1 */
    int64_t starts[MB_MAX_DIMS], ends[MB_MAX_DIMS], steps[MB_MAX_DIMS]; /* Slice */
    int dtype;               /* Cast target; Input element type (mb_dtype) */
    int gelu_tanh;           /* Gelu: tanh approximation */
    int select_last;         /* ArgMax/ArgMin: the last index of ties */
    int upper;               /* Trilu: 1 keeps the upper triangle */
    int64_t diag_k;          /* Trilu: diagonal offset */
    int fmod;                /* Mod: C's fmod */
    int exclusive, reverse;  /* CumSum */
    int reduction;           /* NegativeLogLikelihoodLoss: 0 none, 1 mean, 2 sum */
    int has_ignore;
    int64_t ignore_index;
    int gather_table;        /* Gather with one input: 1 params[0] is the data (an embedding table) and
                                input 0 the indices; 0 input 0 is the data and params[0] the indices */
} mb_op_attrs;

/* Element types of run-time tensors. Every tensor is stored as fp32; integer
 * and bool tensors hold exact integer values (|v| <= 2^24, checked where
 * they enter: import, Cast, Gather), so kernels, tiles and the wire protocol
 * carry them unchanged. The type decides what an importer and exporter
 * write, how Cast rounds, and which ops accept a tensor as indices. */
typedef enum mb_dtype {
    MB_DT_FLOAT = 0,
    MB_DT_INT64,
    MB_DT_INT32,
    MB_DT_BOOL,
    MB_DT_INT8,
    MB_DT_UINT8,
    MB_DT_COUNT
} mb_dtype;
const char *mb_dtype_name(int dt); /* "float", "int64", ... */
/* Largest integer magnitude an integer-typed fp32 tensor holds exactly. */
#define MB_DT_EXACT_INT 16777216.0

typedef struct mb_node {
    char name[MB_NAME_LEN];
    mb_op_type type;
    mb_op_attrs a;
    int n_inputs;
    int inputs[MB_MAX_INPUTS]; /* producer node indices */
    int n_params;
    mb_tensor *params[MB_MAX_PARAMS]; /* owned by the graph */

    /* Filled by mb_graph_infer(). */
    int out_ndim;
    int64_t out_dims[MB_MAX_DIMS];
    int64_t out_bytes;  /* fp32 bytes of the output tensor */
    int64_t macs;       /* multiply-accumulates (elementwise ops: one per output element) */
    int64_t n_weights;  /* parameter count */
    int local;          /* 1: any output region is computable from input regions (4-D: spatially local;
                           2-D/3-D: along tokens, features or heads, see mb_node_compute_region) */
    int out_dtype;      /* mb_dtype of the output (values stored as fp32, see mb_dtype) */
} mb_node;

typedef struct mb_graph {
    char name[MB_NAME_LEN];
    int n_nodes, cap_nodes;
    mb_node *nodes;
    int n_outputs;
    int outputs[MB_MAX_OUTPUTS];
} mb_graph;

const char *mb_op_name(mb_op_type t);          /* "Conv", "MaxPool", ... (ONNX names) */
int mb_op_from_name(const char *name);         /* -1 if unknown */

mb_graph *mb_graph_new(const char *name);
void mb_graph_free(mb_graph *g);
/* Append a node; returns its index. The node is copied; params ownership moves to the graph. */
int mb_graph_add(mb_graph *g, const mb_node *n);
int mb_graph_find(const mb_graph *g, const char *name); /* -1 if absent */

/* Validate structure (topological order, arity, params), infer every output
 * shape, bytes, MACs, params and locality. On error returns -1 and writes a
 * message naming the node into err. */
int mb_graph_infer(mb_graph *g, char *err, size_t errlen);

int64_t mb_graph_params(const mb_graph *g);
int64_t mb_graph_macs(const mb_graph *g);
/* Operators: nodes that compute (not graph inputs, not constants). The one
 * definition of a model's "ops" that every command prints. */
int mb_graph_n_ops(const mb_graph *g);
/* Number of consumers of node i. */
int mb_graph_consumers(const mb_graph *g, int i, int *out, int max);
/* A stable 64-bit hash of structure and weights (nodes verify they hold the same model). */
uint64_t mb_graph_hash(const mb_graph *g);

/* Region of input k of node i needed to compute the output region r, clipped
 * to the input's extent (kernel, stride, padding, dilation, pooling, resize).
 * For non-local nodes the whole input. */
mb_region mb_node_input_region(const mb_graph *g, int i, int k, mb_region r);
/* The whole output region of node i. */
mb_region mb_node_full_region(const mb_graph *g, int i);
/* What computing region r of node i actually computes: r itself, except for
 * ops with 2-D/3-D outputs that need whole axes (LayerNormalization and
 * Softmax over the column axis: whole columns; a Reshape merging heads:
 * whole heads). Input regions are those of this region. */
mb_region mb_node_compute_region(const mb_graph *g, int i, mb_region r);
/* Boxes (per-axis [lo, hi)) for ops with 2-D/3-D outputs: the box of input
 * k needed for the output box lo/hi (already a compute region's box);
 * returns the input's rank. Whole input for ops that are not local. */
int mb_node_input_box(const mb_graph *g, int i, int k, const int64_t *lo, const int64_t *hi, int64_t *in_lo,
                      int64_t *in_hi);
/* The same for parameter j (Gemm's B and C, MatMul's right operand, a
 * broadcast operand); other parameters are whole. */
int mb_node_param_box(const mb_graph *g, int i, int j, const int64_t *lo, const int64_t *hi, int64_t *plo,
                      int64_t *phi);
/* The box of region r of a rank-q tensor of dims, and the region covering a box. */
void mb_region_to_box(int q, const int64_t *dims, mb_region r, int64_t *lo, int64_t *hi);
mb_region mb_box_to_region(int p, const int64_t *lo, const int64_t *hi);
/* The box of a rank-p broadcast operand (dims) for an output box of rank q. */
void mb_broadcast_box(int q, const int64_t *lo, const int64_t *hi, int p, const int64_t *dims, int64_t *blo,
                      int64_t *bhi);

/* Resize: the source coordinate of output index o along one axis (ONNX's
 * coordinate_transformation_mode). Kernels and region mapping share it. */
double mb_resize_coord(int coord_mode, int64_t o, float scale, int64_t in_len, int64_t out_len);
/* Resize nearest: the source index for source coordinate x (nearest_mode), clamped to [0,in_len). */
int64_t mb_resize_nearest(int nearest_mode, double x, int64_t in_len);

#endif
