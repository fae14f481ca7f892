/* TensorProto decoding: typed fields or little-endian raw_data, checked
 * against the declared dims, converted to fp32 (floating types) or int64
 * (integer types). Also reads standalone .pb tensor files. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_internal.h"
#include "mecbed/readfile.h"

const char *mb_onnx_type_name(int dt)
{
    static char buf[32];
    switch (dt) {
    case MB_ONNX_FLOAT: return "FLOAT";
    case MB_ONNX_UINT8: return "UINT8";
    case MB_ONNX_INT8: return "INT8";
    case MB_ONNX_UINT16: return "UINT16";
    case MB_ONNX_INT16: return "INT16";
    case MB_ONNX_INT32: return "INT32";
    case MB_ONNX_INT64: return "INT64";
    case MB_ONNX_STRING: return "STRING";
    case MB_ONNX_BOOL: return "BOOL";
    case MB_ONNX_FLOAT16: return "FLOAT16";
    case MB_ONNX_DOUBLE: return "DOUBLE";
    case MB_ONNX_UINT32: return "UINT32";
    case MB_ONNX_UINT64: return "UINT64";
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    case MB_ONNX_BFLOAT16: return "BFLOAT16";
    default:
        snprintf(buf, sizeof buf, "type %d", dt);
        return buf;
    }
}

static int is_floating(int dt)
{
    return dt == MB_ONNX_FLOAT || dt == MB_ONNX_DOUBLE || dt == MB_ONNX_FLOAT16 || dt == MB_ONNX_BFLOAT16;
}

static int is_integer(int dt)
{
    switch (dt) {
    case MB_ONNX_UINT8: case MB_ONNX_INT8: case MB_ONNX_UINT16: case MB_ONNX_INT16: case MB_ONNX_INT32:
    case MB_ONNX_INT64: case MB_ONNX_BOOL: case MB_ONNX_UINT32: case MB_ONNX_UINT64:
        return 1;
    default:
        return 0;
    }
}

static size_t elem_size(int dt)
{
    switch (dt) {
    case MB_ONNX_UINT8: case MB_ONNX_INT8: case MB_ONNX_BOOL: return 1;
    case MB_ONNX_UINT16: case MB_ONNX_INT16: case MB_ONNX_FLOAT16: case MB_ONNX_BFLOAT16: return 2;
    case MB_ONNX_FLOAT: case MB_ONNX_INT32: case MB_ONNX_UINT32: return 4;
    case MB_ONNX_INT64: case MB_ONNX_DOUBLE: case MB_ONNX_UINT64: return 8;
    default: return 0;
    }
}

static float half_to_float(uint16_t h)
{
    int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0)
        v = ldexpf((float)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexpf((float)(m | 0x400), e - 25);
    return sign ? -v : v;
}

static float bf16_to_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Little-endian loads: ONNX's raw_data is little-endian whatever the host. */
static uint64_t load_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t b = 0; b < n; b++)
        v |= (uint64_t)p[b] << (8 * b);
    return v;
}

/* One raw element as a double (floating types) or int64 (integers). */
static void raw_elem(int dt, const uint8_t *p, double *fv, int64_t *iv)
{
    uint64_t u = load_le(p, elem_size(dt));
    switch (dt) {
    case MB_ONNX_FLOAT: { uint32_t w = (uint32_t)u; float f; memcpy(&f, &w, 4); *fv = f; break; }
    case MB_ONNX_DOUBLE: { double d; memcpy(&d, &u, 8); *fv = d; break; }
    case MB_ONNX_FLOAT16: *fv = half_to_float((uint16_t)u); break;
    case MB_ONNX_BFLOAT16: *fv = bf16_to_float((uint16_t)u); break;
    case MB_ONNX_INT8: *iv = (int8_t)u; break;
    case MB_ONNX_INT16: *iv = (int16_t)u; break;
    case MB_ONNX_INT32: *iv = (int32_t)u; break;
    case MB_ONNX_INT64: *iv = (int64_t)u; break;
    case MB_ONNX_BOOL: *iv = u != 0; break;
    default: *iv = (int64_t)u; break; /* unsigned */
    }
}

static int tfail(char *err, size_t errlen, const char *what, const char *msg)
{
    snprintf(err, errlen, "%s: %s", what, msg);
    return -1;
}

int mb_onnx_decode(const Onnx__TensorProto *tp, const char *what, mb_onnx_tensor *t, char *err, size_t errlen)
{
    char msg[256];
    memset(t, 0, sizeof *t);
    int dt = tp->has_data_type ? tp->data_type : 0;
    t->data_type = dt;
    t->name = strdup(tp->name ? tp->name : "");
    if (!t->name)
        return tfail(err, errlen, what, "out of memory");
    if (!is_floating(dt) && !is_integer(dt)) {
        snprintf(msg, sizeof msg, "data type %s is not supported (only numeric tensors)", mb_onnx_type_name(dt));
        goto bad;
    }
    if (tp->segment) {
        snprintf(msg, sizeof msg, "segmented tensors are not supported");
        goto bad;
    }
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        snprintf(msg, sizeof msg, "external data (a separate weights file) is not supported; "
                                  "save the model with its weights inside");
        goto bad;
    }
    if (tp->n_dims > MB_MAX_DIMS) {
        snprintf(msg, sizeof msg, "rank %zu exceeds mecbed's limit of %d", tp->n_dims, MB_MAX_DIMS);
        goto bad;
    }
    t->ndim = (int)tp->n_dims;
    int64_t n = 1;
    for (size_t d = 0; d < tp->n_dims; d++) {
        int64_t v = tp->dims[d];
        if (v < 0) {
            snprintf(msg, sizeof msg, "dimension %zu is negative (%lld)", d, (long long)v);
            goto bad;
        }
        if (v > 0 && n > ((int64_t)1 << 40) / v) {
            snprintf(msg, sizeof msg, "too many elements (dimension %zu is %lld)", d, (long long)v);
            goto bad;
        }
        t->dims[d] = v;
        n *= v;
    }
    t->numel = n;

    /* Where the values are, and how many there are. */
    size_t have;
    const char *field;
    if (tp->has_raw_data) {
        size_t es = elem_size(dt);
        if (tp->raw_data.len % es) {
            snprintf(msg, sizeof msg, "raw_data has %zu bytes, not a multiple of %s's %zu", tp->raw_data.len,
                     mb_onnx_type_name(dt), es);
            goto bad;
        }
        have = tp->raw_data.len / es;
        field = "raw_data";
    } else {
        switch (dt) {
        case MB_ONNX_FLOAT: have = tp->n_float_data; field = "float_data"; break;
        case MB_ONNX_DOUBLE: have = tp->n_double_data; field = "double_data"; break;
        case MB_ONNX_INT64: have = tp->n_int64_data; field = "int64_data"; break;
        case MB_ONNX_UINT32: case MB_ONNX_UINT64: have = tp->n_uint64_data; field = "uint64_data"; break;
        default: have = tp->n_int32_data; field = "int32_data"; break;
        }
    }
    if ((int64_t)have != n) {
        snprintf(msg, sizeof msg, "%s holds %zu values but the dims call for %lld (truncated or inconsistent)",
                 field, have, (long long)n);
        goto bad;
    }

    if (is_floating(dt)) {
        t->f = mb_tensor_new(t->ndim, t->dims);
        if (!t->f) {
            snprintf(msg, sizeof msg, "out of memory");
            goto bad;
        }
        float *o = t->f->data;
        if (tp->has_raw_data && dt == MB_ONNX_FLOAT) {
            if (n > 0)
                memcpy(o, tp->raw_data.data, (size_t)n * 4); /* little-endian host (x86, arm64) */
        } else if (tp->has_raw_data) {
            for (int64_t k = 0; k < n; k++) {
                double v = 0;
                int64_t iv = 0;
                raw_elem(dt, tp->raw_data.data + (size_t)k * elem_size(dt), &v, &iv);
                o[k] = (float)v;
            }
        } else {
            for (int64_t k = 0; k < n; k++) {
                switch (dt) {
                case MB_ONNX_FLOAT: o[k] = tp->float_data[k]; break;
                case MB_ONNX_DOUBLE: o[k] = (float)tp->double_data[k]; break;
                case MB_ONNX_FLOAT16: o[k] = half_to_float((uint16_t)tp->int32_data[k]); break;
                default: o[k] = bf16_to_float((uint16_t)tp->int32_data[k]); break;
                }
            }
        }
    } else {
        t->i = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
        if (!t->i) {
            snprintf(msg, sizeof msg, "out of memory");
            goto bad;
        }
        for (int64_t k = 0; k < n; k++) {
            if (tp->has_raw_data) {
                double v = 0;
                raw_elem(dt, tp->raw_data.data + (size_t)k * elem_size(dt), &v, &t->i[k]);
            } else if (dt == MB_ONNX_INT64) {
                t->i[k] = tp->int64_data[k];
            } else if (dt == MB_ONNX_UINT32 || dt == MB_ONNX_UINT64) {
                t->i[k] = (int64_t)tp->uint64_data[k];
            } else {
                t->i[k] = tp->int32_data[k];
            }
        }
    }
    return 0;
bad:
    mb_onnx_tensor_clear(t);
    return tfail(err, errlen, what, msg);
}

void mb_onnx_tensor_clear(mb_onnx_tensor *t)
{
    if (!t)
        return;
    free(t->name);
    mb_tensor_free(t->f);
    free(t->i);
    memset(t, 0, sizeof *t);
}

void mb_onnx_tensor_free(mb_onnx_tensor *t)
{
    mb_onnx_tensor_clear(t);
    free(t);
}

int mb_onnx_tensor_copy(mb_onnx_tensor *dst, const mb_onnx_tensor *src)
{
    *dst = *src;
    dst->name = strdup(src->name ? src->name : "");
    dst->f = src->f ? mb_tensor_clone(src->f) : NULL;
    dst->i = NULL;
    if (src->i) {
        dst->i = malloc(sizeof(int64_t) * (size_t)(src->numel > 0 ? src->numel : 1));
        if (dst->i)
            memcpy(dst->i, src->i, sizeof(int64_t) * (size_t)src->numel);
    }
    if (!dst->name || (src->f && !dst->f) || (src->i && !dst->i)) {
        mb_onnx_tensor_clear(dst);
        return -1;
    }
    return 0;
}

double mb_onnx_tensor_get(const mb_onnx_tensor *t, int64_t k)
{
    return t->f ? (double)t->f->data[k] : (double)t->i[k];
}

int64_t mb_onnx_tensor_geti(const mb_onnx_tensor *t, int64_t k)
{
    return t->i ? t->i[k] : (int64_t)t->f->data[k];
}

int mb_onnx_tensor_floatify(mb_onnx_tensor *t)
{
    if (t->f)
        return 0;
    int dt = t->data_type;
    if (!t->i || !(dt == MB_ONNX_INT64 || dt == MB_ONNX_INT32 || dt == MB_ONNX_BOOL || dt == MB_ONNX_INT8 ||
                   dt == MB_ONNX_UINT8))
        return -1;
    for (int64_t k = 0; k < t->numel; k++)
        if (t->i[k] > (int64_t)MB_DT_EXACT_INT || t->i[k] < -(int64_t)MB_DT_EXACT_INT)
            return -1;
    t->f = mb_onnx_tensor_to_mb(t);
    return t->f ? 0 : -1;
}

mb_tensor *mb_onnx_tensor_to_mb(const mb_onnx_tensor *t)
{
    if (t->f)
        return mb_tensor_clone(t->f);
    mb_tensor *m = mb_tensor_new(t->ndim, t->dims);
    if (m)
        for (int64_t k = 0; k < t->numel; k++)
            m->data[k] = (float)t->i[k];
    return m;
}

const unsigned char *mb_onnx_map_file(const char *path, size_t *len, char *err, size_t errlen)
{
    /* Mapped, not read: model files run to hundreds of MB, and protobuf-c
     * copies what it keeps anyway. */
    int64_t size = 0;
    int fd = mb_open_regular(path, MB_READ_LIMIT_DATA, &size, err, errlen);
    if (fd < 0)
        return NULL;
    *len = (size_t)size;
    if (*len == 0) {
        close(fd);
        return (const unsigned char *)"";
    }
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    return p;
}

void mb_onnx_unmap_file(const unsigned char *p, size_t len)
{
    if (p && len)
        munmap((void *)p, len);
}

mb_onnx_tensor *mb_onnx_tensor_read(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    const unsigned char *buf = mb_onnx_map_file(path, &len, err, errlen);
    if (!buf)
        return NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    mb_onnx_unmap_file(buf, len);
    if (!tp) {
        snprintf(err, errlen, "%s: not a valid TensorProto (truncated or corrupt protobuf, %zu bytes)", path,
                 len);
        return NULL;
    }
    mb_onnx_tensor *t = calloc(1, sizeof *t);
    int rc = t ? mb_onnx_decode(tp, path, t, err, errlen) : tfail(err, errlen, path, "out of memory");
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (rc) {
        free(t);
        return NULL;
    }
    return t;
}
