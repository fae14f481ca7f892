/* mecbed's text model format (docs/model-format.md): one statement per
 * line, one operator per line, attributes as key=value, weights generated
 * from a seeded generator or read from a sidecar .npy or raw binary file.
 * The reader reports "file:line: what is wrong"; the writer emits every
 * attribute the reader would not default to the same value, so a written
 * model reads back identical (weights go to a sidecar "<file>.bin"). */
#define _GNU_SOURCE
#include "mecbed/model.h"
#include "mecbed/readfile.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/npy.h"
#include "mecbed/platform.h"

#define MF_MAGIC "mecbed-model"
#define MF_VERSION 1
#define MF_INLINE_MAX 16 /* params with at most this many elements are written inline */

/* ---- attributes: one table drives parsing and writing ------------------- */

typedef enum { A_INT, A_FLOAT, A_I64LIST, A_FLOATLIST, A_ENUM } attr_kind;

typedef struct attr_def {
    const char *key;
    attr_kind kind;
    size_t off;
    int count;                /* fixed count (A_INT/A_FLOAT arrays); max for lists */
    size_t count_off;         /* lists with a stored length (shape_ndim); 0 if none */
    const char *const *names; /* A_ENUM */
} attr_def;

static const char *const auto_pad_names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};
static const char *const pad_mode_names[] = {"constant", "reflect", "edge", NULL};
static const char *const resize_mode_names[] = {"nearest", "linear", NULL};
static const char *const coord_names[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
                                          "tf_half_pixel_for_nn", NULL};
static const char *const nearest_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
static const char *const dtype_names[] = {"float", "int64", "int32", "bool", "int8", "uint8", NULL};
_Static_assert(sizeof dtype_names / sizeof dtype_names[0] == MB_DT_COUNT + 1, "one name per mb_dtype");

#define OFF(f) offsetof(mb_op_attrs, f)
static const attr_def attr_defs[] = {
    {"kernel", A_INT, OFF(kernel), 2, 0, NULL},
    {"stride", A_INT, OFF(stride), 2, 0, NULL},
    {"pads", A_INT, OFF(pads), 4, 0, NULL},
    {"dilation", A_INT, OFF(dilation), 2, 0, NULL},
    {"group", A_INT, OFF(group), 1, 0, NULL},
    {"auto_pad", A_ENUM, OFF(auto_pad), 1, 0, auto_pad_names},
    {"ceil_mode", A_INT, OFF(ceil_mode), 1, 0, NULL},
    {"count_include_pad", A_INT, OFF(count_include_pad), 1, 0, NULL},
    {"output_padding", A_INT, OFF(output_padding), 2, 0, NULL},
    {"alpha", A_FLOAT, OFF(alpha), 1, 0, NULL},
    {"beta", A_FLOAT, OFF(beta), 1, 0, NULL},
    {"epsilon", A_FLOAT, OFF(epsilon), 1, 0, NULL},
    {"trans_a", A_INT, OFF(trans_a), 1, 0, NULL},
    {"trans_b", A_INT, OFF(trans_b), 1, 0, NULL},
    {"axis", A_INT, OFF(axis), 1, 0, NULL},
    {"shape", A_I64LIST, OFF(shape), MB_MAX_DIMS, OFF(shape_ndim), NULL},
    {"pad_amounts", A_I64LIST, OFF(pad_amounts), 2 * MB_MAX_DIMS, 0, NULL},
    {"pad_mode", A_ENUM, OFF(pad_mode), 1, 0, pad_mode_names},
    {"pad_value", A_FLOAT, OFF(pad_value), 1, 0, NULL},
    {"scales", A_FLOATLIST, OFF(scales), MB_MAX_DIMS, 0, NULL},
    {"resize_mode", A_ENUM, OFF(resize_mode), 1, 0, resize_mode_names},
    {"coord_mode", A_ENUM, OFF(coord_mode), 1, 0, coord_names},
    {"nearest_mode", A_ENUM, OFF(nearest_mode), 1, 0, nearest_names},
    {"cubic_coeff_a", A_FLOAT, OFF(cubic_coeff_a), 1, 0, NULL},
    {"bn_folded", A_INT, OFF(bn_folded), 1, 0, NULL},
    /* the transformer operators' (graph.h) */
    {"perm", A_INT, OFF(perm), MB_MAX_DIMS, 0, NULL},
    {"axes_mask", A_INT, OFF(axes_mask), 1, 0, NULL},
    {"keepdims", A_INT, OFF(keepdims), 1, 0, NULL},
    {"starts", A_I64LIST, OFF(starts), MB_MAX_DIMS, 0, NULL},
    {"ends", A_I64LIST, OFF(ends), MB_MAX_DIMS, 0, NULL},
    {"steps", A_I64LIST, OFF(steps), MB_MAX_DIMS, 0, NULL},
    {"dtype", A_ENUM, OFF(dtype), 1, 0, dtype_names},
    {"gelu_tanh", A_INT, OFF(gelu_tanh), 1, 0, NULL},
    {"select_last", A_INT, OFF(select_last), 1, 0, NULL},
    {"upper", A_INT, OFF(upper), 1, 0, NULL},
    {"diag_k", A_I64LIST, OFF(diag_k), 1, 0, NULL},
    {"fmod", A_INT, OFF(fmod), 1, 0, NULL},
    {"exclusive", A_INT, OFF(exclusive), 1, 0, NULL},
    {"reverse", A_INT, OFF(reverse), 1, 0, NULL},
    {"reduction", A_INT, OFF(reduction), 1, 0, NULL},
    {"has_ignore", A_INT, OFF(has_ignore), 1, 0, NULL},
    {"ignore_index", A_I64LIST, OFF(ignore_index), 1, 0, NULL},
    {"gather_table", A_INT, OFF(gather_table), 1, 0, NULL},
};
#define N_ATTR (sizeof attr_defs / sizeof attr_defs[0])

/* ONNX defaults the reader applies when a key is absent, for attributes
 * whose zero would silently mean something else. The writer always writes
 * these keys for these ops. */
static void op_defaults(mb_op_type t, mb_op_attrs *a)
{
    switch (t) {
    case MB_OP_LEAKYRELU: a->alpha = 0.01f; break;
    case MB_OP_HARDSIGMOID: a->alpha = 0.2f; a->beta = 0.5f; break;
    case MB_OP_BATCHNORM: a->epsilon = 1e-5f; break;
    case MB_OP_CLIP: a->alpha = -INFINITY; a->beta = INFINITY; break;
    case MB_OP_GEMM: a->alpha = 1.0f; a->beta = 1.0f; break;
    default: break;
    }
}

/* ---- parameter names per op --------------------------------------------- */

/* Names of params[0..] for op t with n_inputs data inputs; NULL-terminated. */
static const char *const *param_names(mb_op_type t, int n_inputs)
{
    static const char *const conv[] = {"W", "B", NULL};
    static const char *const gemm1[] = {"B", "C", NULL};
    static const char *const gemm2[] = {"C", NULL};
    static const char *const bn[] = {"scale", "bias", "mean", "var", NULL};
    static const char *const binop[] = {"B", NULL};
    static const char *const constant[] = {"value", NULL};
    static const char *const none[] = {NULL};
    switch (t) {
    case MB_OP_CONV: case MB_OP_CONV_TRANSPOSE: return conv;
    case MB_OP_GEMM: return n_inputs >= 2 ? gemm2 : gemm1;
    case MB_OP_MATMUL: case MB_OP_ADD: case MB_OP_SUB: case MB_OP_MUL: case MB_OP_DIV: return binop;
    case MB_OP_BATCHNORM: return bn;
    case MB_OP_CONSTANT: return constant;
    default: return none;
    }
}

static int n_names(const char *const *pn)
{
    int k = 0;
    while (pn[k])
        k++;
    return k;
}

/* ---- reader -------------------------------------------------------------- */

typedef struct reader {
    const char *path;
    char dir[4096]; /* directory of the model file, for relative weight paths */
    int line;
    uint64_t seed;
    char *err;
    size_t errlen;
} reader;

static int rerr(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rerr(reader *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        int k = snprintf(r->err, r->errlen, "%s:%d: ", r->path, r->line);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < r->errlen)
            vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int parse_i64(const char *s, int64_t *v)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *v = x;
    return 0;
}

static int parse_float(const char *s, float *v)
{
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    float x = strtof(s, &end);
    if (*end || (errno == ERANGE && isinf(x)))
        return -1;
    *v = x;
    return 0;
}

/* Split s at commas into at most max items (s is modified). Returns count or -1 if more. */
/* The end of a quoted string starting at s (s[0] == '"'): the closing
 * quote, or NULL when there is none. A backslash escapes the next byte. */
static char *quote_end(char *s)
{
    for (char *p = s + 1; *p; p++) {
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '"')
            return p;
    }
    return NULL;
}

/* Commas inside a "quoted" file name do not separate. */
static int split_commas(char *s, char **items, int max)
{
    int n = 0;
    if (!*s)
        return 0;
    for (char *p = s;;) {
        if (n == max)
            return -1;
        items[n++] = p;
        char *c = p;
        while (*c && *c != ',') {
            char *q = *c == '"' ? quote_end(c) : NULL;
            c = q ? q + 1 : c + 1;
        }
        if (!*c)
            break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

/* A file name argument: as written, or "quoted" with \" and \\ escapes
 * (how the writer spells names holding a space, comma, quote, '#', '(',
 * ')', '=' or a backslash). Unquotes in place; 0, or -1 when malformed. */
static int unquote_file(char *s)
{
    if (s[0] != '"')
        return strchr(s, '"') ? -1 : 0;
    char *end = quote_end(s);
    if (!end || end[1] || end == s + 1)
        return -1;
    char *o = s;
    for (char *p = s + 1; p < end; p++) {
        if (*p == '\\')
            p++;
        *o++ = *p;
    }
    *o = 0;
    return 0;
}

static int parse_attr(reader *r, mb_op_attrs *a, const attr_def *d, char *val)
{
    char *items[2 * MB_MAX_DIMS + 1];
    char *base = (char *)a + d->off;
    if (d->kind == A_ENUM) {
        for (int i = 0; d->names[i]; i++)
            if (!strcasecmp(d->names[i], val)) {
                *(int *)base = i;
                return 0;
            }
        char opts[256];
        size_t o = 0;
        opts[0] = 0;
        for (int i = 0; d->names[i] && o < sizeof opts; i++)
            o += (size_t)snprintf(opts + o, sizeof opts - o, "%s%s", i ? ", " : "", d->names[i]);
        return rerr(r, "%s=%s: expected one of %s", d->key, val, opts);
    }
    int n = split_commas(val, items, d->count);
    if (n <= 0)
        return rerr(r, "%s: expected %s%d value%s", d->key, n == 0 ? "" : "at most ", d->count,
                    d->count > 1 ? "s" : "");
    if ((d->kind == A_INT || d->kind == A_FLOAT) && n != d->count && n != 1)
        return rerr(r, "%s: expected 1 or %d values, got %d", d->key, d->count, n);
    int fill = (d->kind == A_INT || d->kind == A_FLOAT) ? d->count : n;
    for (int i = 0; i < fill; i++) {
        const char *s = items[n == 1 ? 0 : i];
        if (d->kind == A_INT) {
            int64_t v;
            if (parse_i64(s, &v) || v < INT32_MIN || v > INT32_MAX)
                return rerr(r, "%s: '%s' is not an integer", d->key, s);
            ((int *)base)[i] = (int)v;
        } else if (d->kind == A_I64LIST) {
            if (parse_i64(s, &((int64_t *)base)[i]))
                return rerr(r, "%s: '%s' is not an integer", d->key, s);
        } else {
            if (parse_float(s, &((float *)base)[i]))
                return rerr(r, "%s: '%s' is not a number", d->key, s);
        }
    }
    if (d->count_off)
        *(int *)((char *)a + d->count_off) = n;
    return 0;
}

#define MAX_PARAM_ELEMS ((int64_t)1 << 27)

static int parse_dims(reader *r, const char *key, const char *s, int *ndim, int64_t *dims)
{
    *ndim = 0;
    if (!strcmp(s, "scalar"))
        return 0;
    const char *p = s;
    for (;;) {
        if (*ndim == MB_MAX_DIMS)
            return rerr(r, "%s: dims '%s': more than %d dimensions", key, s, MB_MAX_DIMS);
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > (1LL << 40))
            return rerr(r, "%s: dims '%s': expected sizes joined by 'x' (e.g. 64x3x7x7) or 'scalar'", key, s);
        dims[(*ndim)++] = v;
        if (*end == 0)
            break;
        if (*end != 'x')
            return rerr(r, "%s: dims '%s': expected sizes joined by 'x' (e.g. 64x3x7x7) or 'scalar'", key, s);
        p = end + 1;
    }
    /* One parameter tensor holds at most MAX_PARAM_ELEMS values: VGG-16's
     * largest (25088x4096, 103 M) fits with room; he(2000000000x3x3x3)
     * would ask for 216 GB (found by fuzz_modelfile). */
    int64_t n = 1;
    for (int i = 0; i < *ndim; i++) {
        if (dims[i] && n > MAX_PARAM_ELEMS / dims[i])
            return rerr(r, "%s: dims '%s': more than %lld values in one tensor", key, s, (long long)MAX_PARAM_ELEMS);
        n *= dims[i];
    }
    return 0;
}

static uint64_t name_seed(uint64_t seed, const char *node, const char *param)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (const char *p = node; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h = (h ^ '/') * 0x100000001b3ull;
    for (const char *p = param; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

static void join_path(const reader *r, const char *rel, char *out, size_t len)
{
    if (rel[0] == '/' || !r->dir[0])
        snprintf(out, len, "%s", rel);
    else
        snprintf(out, len, "%s/%s", r->dir, rel);
}

static mb_tensor *read_bin(reader *r, int ndim, const int64_t *dims, const char *rel, int64_t offset)
{
    char path[8192];
    join_path(r, rel, path, sizeof path);
    mb_tensor *t = mb_tensor_new(ndim, dims);
    if (!t) {
        rerr(r, "bin(%s): tensor too large", rel);
        return NULL;
    }
    char why[sizeof path + 128];
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_DATA, why, sizeof why);
    if (!f) {
        mb_tensor_free(t);
        rerr(r, "bin: cannot open %s", why);
        return NULL;
    }
    int64_t n = mb_tensor_numel(t);
    int ok = fseeko(f, (off_t)offset, SEEK_SET) == 0;
    size_t got = ok && n ? fread(t->data, sizeof(float), (size_t)n, f) : 0;
    fclose(f);
    if (!ok || (int64_t)got != n) {
        mb_tensor_free(t);
        rerr(r, "bin: %s holds %zu of the %" PRId64 " floats wanted at offset %" PRId64 " (file too short)", path,
             got, n, offset);
        return NULL;
    }
    return t;
}

/* A weight spec: kind(args). Returns a new tensor or NULL with err. */
static mb_tensor *parse_weight(reader *r, const char *node, const char *key, char *spec)
{
    char *open = strchr(spec, '(');
    size_t len = strlen(spec);
    if (!open || len < 3 || spec[len - 1] != ')') {
        rerr(r, "%s=%s: expected a weight spec such as he(64x3x7x7), uniform(DIMS,lo,hi), npy(file.npy), "
                "bin(DIMS,file,offset), values(DIMS,v,...)", key, spec);
        return NULL;
    }
    *open = 0;
    spec[len - 1] = 0;
    const char *kind = spec;
    char *argv[1 << 5];
    int argc;
    /* values() may carry many numbers: count them separately */
    if (!strcmp(kind, "values")) {
        char *comma = strchr(open + 1, ',');
        char *vals = comma ? comma + 1 : NULL;
        if (comma)
            *comma = 0;
        int ndim;
        int64_t dims[MB_MAX_DIMS];
        if (parse_dims(r, key, open + 1, &ndim, dims))
            return NULL;
        mb_tensor *t = mb_tensor_new(ndim, dims);
        if (!t) {
            rerr(r, "%s: tensor too large", key);
            return NULL;
        }
        int64_t n = mb_tensor_numel(t), k = 0;
        for (char *p = vals; p && *p;) {
            char *c = strchr(p, ',');
            if (c)
                *c = 0;
            if (k >= n || parse_float(p, &t->data[k])) {
                mb_tensor_free(t);
                if (k >= n)
                    rerr(r, "%s: values(): more than the %" PRId64 " values its dims hold", key, n);
                else
                    rerr(r, "%s: values(): '%s' is not a number", key, p);
                return NULL;
            }
            k++;
            p = c ? c + 1 : NULL;
        }
        if (k != n) {
            mb_tensor_free(t);
            rerr(r, "%s: values(): %" PRId64 " values given, its dims hold %" PRId64, key, k, n);
            return NULL;
        }
        return t;
    }
    argc = split_commas(open + 1, argv, 8);
    if (argc < 0) {
        rerr(r, "%s: %s(): too many arguments", key, kind);
        return NULL;
    }
    if (!strcmp(kind, "npy")) {
        if (argc != 1 || unquote_file(argv[0])) {
            rerr(r, "%s: npy() takes one file name (\"quoted\" when it holds a space, ',' or '\"')", key);
            return NULL;
        }
        char path[8192], e[512];
        join_path(r, argv[0], path, sizeof path);
        mb_tensor *t = mb_npy_read(path, e, sizeof e);
        if (!t)
            rerr(r, "%s: %s", key, e);
        return t;
    }
    int ndim;
    int64_t dims[MB_MAX_DIMS];
    if (argc < 1) {
        rerr(r, "%s: %s() needs dims", key, kind);
        return NULL;
    }
    if (parse_dims(r, key, argv[0], &ndim, dims))
        return NULL;
    if (!strcmp(kind, "bin")) {
        int64_t off;
        if (argc != 3 || parse_i64(argv[2], &off) || off < 0 || unquote_file(argv[1])) {
            rerr(r, "%s: bin() takes DIMS, a file name (\"quoted\" when it holds a space, ',' or '\"') and a "
                    "byte offset",
                 key);
            return NULL;
        }
        return read_bin(r, ndim, dims, argv[1], off);
    }
    float lo, hi, v = 0;
    int64_t seed_arg = -1;
    int nfix; /* arguments before the optional seed */
    if (!strcmp(kind, "uniform"))
        nfix = 3;
    else if (!strcmp(kind, "he") || !strcmp(kind, "lecun"))
        nfix = 1;
    else if (!strcmp(kind, "const"))
        nfix = 2;
    else {
        rerr(r, "%s: unknown weight kind '%s' (he, lecun, uniform, const, values, npy, bin)", key, kind);
        return NULL;
    }
    if (argc != nfix && !(argc == nfix + 1 && strcmp(kind, "const"))) {
        rerr(r, "%s: %s() takes %d argument%s%s, got %d", key, kind, nfix, nfix > 1 ? "s" : "",
             strcmp(kind, "const") ? " and an optional seed" : "", argc);
        return NULL;
    }
    if (argc == nfix + 1 && (parse_i64(argv[nfix], &seed_arg) || seed_arg < 0)) {
        rerr(r, "%s: seed '%s' is not a non-negative integer", key, argv[nfix]);
        return NULL;
    }
    mb_tensor *t = mb_tensor_new(ndim, dims);
    if (!t) {
        rerr(r, "%s: tensor too large", key);
        return NULL;
    }
    uint64_t seed = seed_arg >= 0 ? (uint64_t)seed_arg : name_seed(r->seed, node, key);
    if (!strcmp(kind, "const")) {
        if (parse_float(argv[1], &v)) {
            mb_tensor_free(t);
            rerr(r, "%s: const(): '%s' is not a number", key, argv[1]);
            return NULL;
        }
        for (int64_t i = 0; i < mb_tensor_numel(t); i++)
            t->data[i] = v;
        return t;
    }
    if (!strcmp(kind, "uniform")) {
        if (parse_float(argv[1], &lo) || parse_float(argv[2], &hi) || !(lo <= hi)) {
            mb_tensor_free(t);
            rerr(r, "%s: uniform(): bounds '%s','%s' must be numbers with lo <= hi", key, argv[1], argv[2]);
            return NULL;
        }
    } else {
        int64_t fan_in = 1;
        for (int i = 1; i < ndim; i++)
            fan_in *= dims[i];
        if (ndim == 1)
            fan_in = dims[0];
        if (fan_in <= 0)
            fan_in = 1;
        hi = sqrtf((!strcmp(kind, "he") ? 6.0f : 3.0f) / (float)fan_in);
        lo = -hi;
    }
    mb_tensor_fill_uniform(t, seed, lo, hi);
    return t;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) >= MB_NAME_LEN)
        return 0;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || *p == ',' || *p == '=' || *p == '#')
            return 0;
    return 1;
}

#define MAX_TOKENS 4096

/* Splits a line into tokens at spaces and ends it at '#', except inside a
 * "quoted" file name. -1: too many tokens; -2: a quote is not closed. */
static int tokenize(char *line, char **tok)
{
    int n = 0;
    for (char *p = line; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            break;
        if (n == MAX_TOKENS)
            return -1;
        tok[n++] = p;
        while (*p && !isspace((unsigned char)*p) && *p != '#') {
            if (*p == '"') {
                char *q = quote_end(p);
                if (!q)
                    return -2;
                p = q;
            }
            p++;
        }
        if (*p == '#') {
            *p = 0;
            break;
        }
        if (*p)
            *p++ = 0;
    }
    return n;
}

/* One line read (len bytes) into tokens: their count, or -1 with the error
 * (a NUL byte, which would end the line early; an unclosed quote; too many
 * tokens). */
static int split_line(reader *r, char *line, size_t len, char **tok)
{
    const char *nul = memchr(line, 0, len);
    if (nul)
        return rerr(r, "a NUL byte at column %d (not a text file?)", (int)(nul - line) + 1);
    int ntok = tokenize(line, tok);
    if (ntok == -2)
        return rerr(r, "a quoted file name without its closing '\"'");
    if (ntok < 0)
        return rerr(r, "more than %d tokens on one line", MAX_TOKENS);
    return ntok;
}

static int parse_node(reader *r, mb_graph *g, char **tok, int ntok)
{
    int type = mb_op_from_name(tok[0]);
    if (type < 0)
        return rerr(r, "unknown operator '%s'", tok[0]);
    if (ntok < 2)
        return rerr(r, "%s: missing node name", tok[0]);
    if (!valid_name(tok[1]))
        return rerr(r, "bad node name '%s' (1-%d characters, no spaces, ',', '=' or '#')", tok[1], MB_NAME_LEN - 1);
    if (mb_graph_find(g, tok[1]) >= 0)
        return rerr(r, "node '%s' is defined twice", tok[1]);

    mb_node *n = calloc(1, sizeof *n);
    if (!n)
        return rerr(r, "out of memory");
    snprintf(n->name, sizeof n->name, "%s", tok[1]);
    n->type = (mb_op_type)type;
    op_defaults(n->type, &n->a);
    /* data inputs first: every token without '=' */
    for (int i = 2; i < ntok; i++) {
        if (strchr(tok[i], '='))
            continue;
        char *items[MB_MAX_INPUTS + 1];
        int k = split_commas(tok[i], items, MB_MAX_INPUTS + 1);
        for (int j = 0; j < k; j++) {
            if (!*items[j])
                continue;
            if (n->n_inputs == MB_MAX_INPUTS) {
                free(n);
                return rerr(r, "more than %d inputs", MB_MAX_INPUTS);
            }
            int id = mb_graph_find(g, items[j]);
            if (id < 0) {
                free(n);
                return rerr(r, "input '%s' is not defined above (a node must come after its inputs)", items[j]);
            }
            n->inputs[n->n_inputs++] = id;
        }
    }
    const char *const *pn = param_names(n->type, n->n_inputs);
    int rc = 0;
    char seen[N_ATTR] = {0};
    for (int i = 2; i < ntok && !rc; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq)
            continue;
        *eq = 0;
        char *key = tok[i], *val = eq + 1;
        if (!*val) {
            rc = rerr(r, "%s: empty value", key);
            break;
        }
        int handled = 0;
        for (size_t k = 0; k < N_ATTR && !handled; k++)
            if (!strcmp(attr_defs[k].key, key)) {
                if (seen[k]++)
                    rc = rerr(r, "attribute '%s' given twice", key);
                else
                    rc = parse_attr(r, &n->a, &attr_defs[k], val);
                handled = 1;
            }
        /* parameter by its op-specific name, or p0..p5 */
        int slot = -1;
        for (int k = 0; !handled && pn[k]; k++)
            if (!strcmp(pn[k], key))
                slot = k;
        if (!handled && key[0] == 'p' && isdigit((unsigned char)key[1]) && !key[2])
            slot = key[1] - '0';
        if (!handled && slot >= 0 && slot < MB_MAX_PARAMS) {
            handled = 1;
            if (n->params[slot])
                rc = rerr(r, "parameter '%s' given twice", key);
            else if (!(n->params[slot] = parse_weight(r, n->name, key, val)))
                rc = -1;
        }
        if (!handled) {
            char known[256] = "";
            size_t o = 0;
            for (int k = 0; pn[k] && o < sizeof known; k++)
                o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", k ? ", " : "", pn[k]);
            if (known[0])
                rc = rerr(r, "unknown attribute or parameter '%s' for %s (its parameters: %s)", key, tok[0], known);
            else
                rc = rerr(r, "unknown attribute '%s' for %s", key, tok[0]);
        }
    }
    /* params must be contiguous from 0 */
    for (int k = 0; k < MB_MAX_PARAMS; k++)
        if (n->params[k])
            n->n_params = k + 1;
    for (int k = 0; !rc && k < n->n_params; k++)
        if (!n->params[k])
            rc = rerr(r, "parameter %d ('%s') is missing but a later one is given", k, k < n_names(pn) ? pn[k] : "p?");
    /* Conv kernel defaults to the weights' spatial size, as in ONNX */
    if (!rc && (n->type == MB_OP_CONV || n->type == MB_OP_CONV_TRANSPOSE) && n->params[0] &&
        n->params[0]->ndim == 4 && !seen[0]) {
        n->a.kernel[0] = (int)n->params[0]->dims[2];
        n->a.kernel[1] = (int)n->params[0]->dims[3];
    }
    if (rc) {
        for (int k = 0; k < MB_MAX_PARAMS; k++)
            mb_tensor_free(n->params[k]);
        free(n);
        return -1;
    }
    if (mb_graph_add(g, n) < 0) {
        for (int k = 0; k < n->n_params; k++)
            mb_tensor_free(n->params[k]);
        free(n);
        return rerr(r, "out of memory");
    }
    free(n);
    return 0;
}

mb_graph *mb_modelfile_read(const char *path, char *err, size_t errlen)
{
    reader r = {.path = path, .seed = 0, .err = err, .errlen = errlen};
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t len = (size_t)(slash - path);
        if (len >= sizeof r.dir)
            len = sizeof r.dir - 1;
        memcpy(r.dir, path, len);
        r.dir[len] = 0;
    }
    if (slash == path)
        snprintf(r.dir, sizeof r.dir, "/");
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!f)
        return NULL;
    const char *base = slash ? slash + 1 : path;
    char gname[MB_NAME_LEN];
    snprintf(gname, sizeof gname, "%.*s", (int)strcspn(base, "."), base);
    mb_graph *g = mb_graph_new(gname);
    char **tok = malloc(sizeof(char *) * MAX_TOKENS);
    int *node_line = NULL, cap_lines = 0;
    char *line = NULL;
    size_t cap = 0;
    int seen_magic = 0, seen_output = 0, rc = 0;
    if (!g || !tok) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -1;
    }
    ssize_t got;
    while (!rc && (got = getline(&line, &cap, f)) > 0) {
        r.line++;
        int ntok = split_line(&r, line, (size_t)got, tok);
        if (ntok < 0) {
            rc = -1;
            break;
        }
        if (ntok == 0)
            continue;
        if (!seen_magic) {
            int64_t v;
            if (strcmp(tok[0], MF_MAGIC) || ntok != 2 || parse_i64(tok[1], &v)) {
                rc = rerr(&r, "not a mecbed model file: the first statement must be '" MF_MAGIC " %d'", MF_VERSION);
                break;
            }
            if (v != MF_VERSION) {
                rc = rerr(&r, "format version %" PRId64 " is not supported (this mecbed reads version %d)", v,
                          MF_VERSION);
                break;
            }
            seen_magic = 1;
            continue;
        }
        if (!strcmp(tok[0], "name")) {
            if (ntok != 2 || !valid_name(tok[1]))
                rc = rerr(&r, "'name' takes one model name without spaces");
            else
                snprintf(g->name, sizeof g->name, "%s", tok[1]);
        } else if (!strcmp(tok[0], "seed")) {
            int64_t v;
            if (ntok != 2 || parse_i64(tok[1], &v) || v < 0)
                rc = rerr(&r, "'seed' takes one non-negative integer");
            else if (g->n_nodes)
                rc = rerr(&r, "'seed' must come before the first operator");
            else
                r.seed = (uint64_t)v;
        } else if (!strcmp(tok[0], "output")) {
            if (seen_output)
                rc = rerr(&r, "'output' given twice (list every output on one line)");
            else if (ntok < 2 || ntok - 1 > MB_MAX_OUTPUTS)
                rc = rerr(&r, "'output' takes 1 to %d node names", MB_MAX_OUTPUTS);
            for (int i = 1; !rc && i < ntok; i++) {
                int id = mb_graph_find(g, tok[i]);
                if (id < 0)
                    rc = rerr(&r, "output '%s' is not a node defined above", tok[i]);
                else
                    g->outputs[g->n_outputs++] = id;
            }
            seen_output = 1;
        } else {
            if (seen_output) {
                rc = rerr(&r, "operators must come before the 'output' line");
                break;
            }
            rc = parse_node(&r, g, tok, ntok);
            if (!rc) {
                if (g->n_nodes > cap_lines) {
                    cap_lines = cap_lines ? cap_lines * 2 : 256;
                    int *nl = realloc(node_line, sizeof(int) * (size_t)cap_lines);
                    if (!nl) {
                        rc = rerr(&r, "out of memory");
                        break;
                    }
                    node_line = nl;
                }
                node_line[g->n_nodes - 1] = r.line;
            }
        }
    }
    if (!rc && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
    if (!rc && !seen_magic) {
        snprintf(err, errlen, "%s: empty file: expected '" MF_MAGIC " %d' and operators", path, MF_VERSION);
        rc = -1;
    }
    if (!rc && g->n_nodes == 0) {
        r.line++;
        rc = rerr(&r, "no operators");
    }
    if (!rc && !seen_output) {
        g->n_outputs = 1;
        g->outputs[0] = g->n_nodes - 1;
    }
    if (!rc) {
        char e[512];
        if (mb_graph_infer(g, e, sizeof e)) {
            int idx = -1;
            r.line = 0;
            if (sscanf(e, "node %d", &idx) == 1 && idx >= 0 && idx < g->n_nodes)
                r.line = node_line[idx];
            rc = r.line ? rerr(&r, "%s", e) : (snprintf(err, errlen, "%s: %s", path, e), -1);
        }
    }
    /* Pad amounts are stored begin..., end... for the input's rank: check the count. */
    for (int i = 0; !rc && i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        if (n->type != MB_OP_PAD)
            continue;
        int nd = g->nodes[n->inputs[0]].out_ndim, last = 0;
        for (int k = 0; k < 2 * MB_MAX_DIMS; k++)
            if (n->a.pad_amounts[k])
                last = k + 1;
        if (last > 2 * nd) {
            r.line = node_line[i];
            rc = rerr(&r, "pad_amounts has values beyond the %d (begin..., end...) of a rank-%d input", 2 * nd, nd);
        }
    }
    free(line);
    free(tok);
    free(node_line);
    fclose(f);
    if (rc) {
        mb_graph_free(g);
        return NULL;
    }
    return g;
}

/* ---- writer -------------------------------------------------------------- */

static void write_float(FILE *f, float v)
{
    if (isinf(v))
        fputs(v < 0 ? "-inf" : "inf", f);
    else if (isnan(v))
        fputs("nan", f);
    else {
        /* shortest decimal that reads back as the same float */
        char buf[32];
        for (int prec = 6; prec <= 9; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtof(buf, NULL) == v)
                break;
        }
        fputs(buf, f);
    }
}

static int attr_is_default(const attr_def *d, const mb_op_attrs *a, const mb_op_attrs *def)
{
    size_t sz = d->kind == A_I64LIST ? sizeof(int64_t) : d->kind == A_FLOAT || d->kind == A_FLOATLIST ? sizeof(float)
                                                                                                     : sizeof(int);
    return !memcmp((const char *)a + d->off, (const char *)def + d->off, sz * (size_t)d->count) &&
           (!d->count_off || *(const int *)((const char *)a + d->count_off) ==
                                 *(const int *)((const char *)def + d->count_off));
}

static void write_attr(FILE *f, const attr_def *d, const mb_op_attrs *a, int list_len)
{
    const char *base = (const char *)a + d->off;
    fprintf(f, " %s=", d->key);
    if (d->kind == A_ENUM) {
        int v = *(const int *)base, k = 0;
        while (d->names[k] && k < v)
            k++;
        if (d->names[k])
            fputs(d->names[k], f);
        else
            fprintf(f, "%d", v);
        return;
    }
    int n = d->kind == A_INT || d->kind == A_FLOAT ? d->count : list_len;
    for (int i = 0; i < n; i++) {
        if (i)
            fputc(',', f);
        if (d->kind == A_INT)
            fprintf(f, "%d", ((const int *)base)[i]);
        else if (d->kind == A_I64LIST)
            fprintf(f, "%" PRId64, ((const int64_t *)base)[i]);
        else
            write_float(f, ((const float *)base)[i]);
    }
}

static void write_dims(FILE *f, const mb_tensor *t)
{
    if (t->ndim == 0)
        fputs("scalar", f);
    for (int i = 0; i < t->ndim; i++)
        fprintf(f, "%s%" PRId64, i ? "x" : "", t->dims[i]);
}

/* Node names as written: characters the format reserves become '_'. */
static void clean_name(const char *in, char *out)
{
    size_t i = 0;
    for (; in[i] && i + 1 < MB_NAME_LEN; i++) {
        char c = in[i];
        out[i] = (isspace((unsigned char)c) || c == ',' || c == '=' || c == '#') ? '_' : c;
    }
    if (i == 0)
        out[i++] = '_';
    out[i] = 0;
}

/* A file name as bin()/npy() read it: as it is when it holds none of the
 * characters that separate (space, ',', '#', '=', parentheses) or quote,
 * else "quoted" with '"' and '\\' escaped. */
static void write_file_name(FILE *f, const char *name)
{
    if (!name[strcspn(name, " \t,#=()\"\\")]) {
        fputs(name, f);
        return;
    }
    fputc('"', f);
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

int mb_modelfile_write(const mb_graph *g, const char *path, char *err, size_t errlen)
{
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            /* a line break in the weights' file name would end the line */
            snprintf(err, errlen, "%s: a control character in the file name", path);
            return -1;
        }
    int n = g->n_nodes;
    char(*names)[MB_NAME_LEN] = calloc((size_t)(n ? n : 1), MB_NAME_LEN);
    if (!names) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        clean_name(g->nodes[i].name, names[i]);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j])) {
                snprintf(err, errlen, "%s: nodes %d and %d are both named '%s' (after replacing spaces, ',', '=', '#')",
                         path, j, i, names[i]);
                free(names);
                return -1;
            }
    }
    char binpath[8192];
    snprintf(binpath, sizeof binpath, "%s.bin", path);
    const char *binbase = strrchr(binpath, '/') ? strrchr(binpath, '/') + 1 : binpath;
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(names);
        return -1;
    }
    FILE *bin = NULL;
    int64_t bin_off = 0;
    int rc = 0;
    char gname[MB_NAME_LEN];
    clean_name(g->name, gname);
    fprintf(f, "%s %d\n# written by mecbed %s; format: docs/model-format.md\n", MF_MAGIC, MF_VERSION, MB_VERSION);
    fprintf(f, "name %s\n", gname);
    for (int i = 0; i < n && !rc; i++) {
        const mb_node *nd = &g->nodes[i];
        fprintf(f, "%s %s", mb_op_name(nd->type), names[i]);
        for (int k = 0; k < nd->n_inputs; k++)
            fprintf(f, "%c%s", k ? ',' : ' ', names[nd->inputs[k]]);
        mb_op_attrs def;
        memset(&def, 0, sizeof def);
        op_defaults(nd->type, &def);
        for (size_t k = 0; k < N_ATTR; k++) {
            const attr_def *d = &attr_defs[k];
            int len = d->count;
            if (d->count_off)
                len = *(const int *)((const char *)&nd->a + d->count_off);
            else if (d->kind == A_I64LIST || d->kind == A_FLOATLIST) {
                len = 0; /* lists without a stored length: up to the last non-zero */
                for (int q = 0; q < d->count; q++) {
                    int nz = d->kind == A_I64LIST ? ((const int64_t *)((const char *)&nd->a + d->off))[q] != 0
                                                  : ((const float *)((const char *)&nd->a + d->off))[q] != 0;
                    if (nz)
                        len = q + 1;
                }
                if (!strcmp(d->key, "scales") && nd->out_ndim > len)
                    len = nd->out_ndim;
                if (!strcmp(d->key, "pad_amounts") && len && nd->out_ndim && 2 * nd->out_ndim > len)
                    len = 2 * nd->out_ndim;
            }
            /* Defaulted keys are always written, so files stay readable by eye. */
            int always = memcmp((const char *)&def + d->off, "\0\0\0\0", 4) != 0;
            if (!always && attr_is_default(d, &nd->a, &def))
                continue;
            if (len > 0 || d->kind == A_ENUM || d->kind == A_INT || d->kind == A_FLOAT)
                write_attr(f, d, &nd->a, len);
        }
        const char *const *pn = param_names(nd->type, nd->n_inputs);
        for (int k = 0; k < nd->n_params; k++) {
            const mb_tensor *t = nd->params[k];
            char key[16];
            const char *kname = key;
            if (k < n_names(pn))
                kname = pn[k];
            else
                snprintf(key, sizeof key, "p%d", k);
            int64_t numel = mb_tensor_numel(t);
            fprintf(f, " %s=", kname);
            if (numel <= MF_INLINE_MAX) {
                fputs("values(", f);
                write_dims(f, t);
                for (int64_t q = 0; q < numel; q++) {
                    fputc(',', f);
                    write_float(f, t->data[q]);
                }
                fputc(')', f);
                continue;
            }
            if (!bin && !(bin = fopen(binpath, "wb"))) {
                snprintf(err, errlen, "%s: %s", binpath, strerror(errno));
                rc = -1;
                break;
            }
            if (fwrite(t->data, sizeof(float), (size_t)numel, bin) != (size_t)numel) {
                snprintf(err, errlen, "%s: write failed: %s", binpath, strerror(errno));
                rc = -1;
                break;
            }
            fputs("bin(", f);
            write_dims(f, t);
            fputc(',', f);
            write_file_name(f, binbase);
            fprintf(f, ",%" PRId64 ")", bin_off);
            bin_off += numel * (int64_t)sizeof(float);
        }
        fputc('\n', f);
    }
    if (!rc) {
        fputs("output", f);
        for (int o = 0; o < g->n_outputs; o++)
            fprintf(f, " %s", names[g->outputs[o]]);
        fputc('\n', f);
    }
    if (bin && fclose(bin) != 0 && !rc) {
        snprintf(err, errlen, "%s: write failed: %s", binpath, strerror(errno));
        rc = -1;
    }
    if (fclose(f) != 0 && !rc) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        rc = -1;
    }
    if (!rc && !bin)
        remove(binpath); /* no large weights: drop a stale sidecar from an earlier write */
    free(names);
    return rc;
}
