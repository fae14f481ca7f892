/* NumPy .npy reader and writer. The format (numpy/lib/format.py, NEP 1):
 * magic "\x93NUMPY", major and minor version bytes, a little-endian header
 * length (2 bytes in 1.0, 4 bytes in 2.0/3.0), then an ASCII Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), } padded
 * with spaces to a multiple of 64 bytes and ending in '\n', then the data. */
#include "mecbed/npy.h"
#include "mecbed/readfile.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NPY_MAX_HEADER (1 << 20) /* numpy itself refuses headers over 10 kB by default */

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Find the value text after key 'name' in the header dict. */
static const char *dict_value(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        p = strstr(hdr, pat);
    }
    if (!p)
        return NULL;
    p += strlen(pat);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static void shape_str(const mb_tensor *t, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    if (t->ndim == 0)
        snprintf(buf, len, "scalar");
    for (int i = 0; i < t->ndim && o < len; i++)
        o += snprintf(buf + o, len - o, "%s%" PRId64, i ? "x" : "", t->dims[i]);
}

static void swap4(float *v, int64_t n)
{
    uint8_t *b = (uint8_t *)v;
    for (int64_t i = 0; i < n; i++, b += 4) {
        uint8_t t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

mb_tensor *mb_npy_read_stream(FILE *f, const char *name, char *err, size_t errlen)
{
    unsigned char pre[10];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6)) {
        seterr(err, errlen, "%s: not a NumPy .npy file (bad magic)", name);
        return NULL;
    }
    int major = pre[6];
    uint32_t hlen;
    if (major == 1) {
        if (fread(pre + 8, 1, 2, f) != 2)
            goto truncated_header;
        hlen = pre[8] | (uint32_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        unsigned char l[4];
        if (fread(l, 1, 4, f) != 4)
            goto truncated_header;
        hlen = l[0] | (uint32_t)l[1] << 8 | (uint32_t)l[2] << 16 | (uint32_t)l[3] << 24;
    } else {
        seterr(err, errlen, "%s: unsupported .npy format version %d.%d", name, major, pre[7]);
        return NULL;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        seterr(err, errlen, "%s: implausible .npy header length %u", name, hlen);
        return NULL;
    }
    char *hdr = malloc(hlen + 1);
    if (!hdr) {
        seterr(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        free(hdr);
        goto truncated_header;
    }
    hdr[hlen] = 0;

    mb_tensor *t = NULL;
    const char *d = dict_value(hdr, "descr");
    const char *fo = dict_value(hdr, "fortran_order");
    const char *sh = dict_value(hdr, "shape");
    if (!d || !fo || !sh) {
        seterr(err, errlen, "%s: .npy header lacks %s", name, !d ? "'descr'" : !fo ? "'fortran_order'" : "'shape'");
        goto out;
    }
    char descr[32] = "";
    if (*d == '\'' || *d == '"') {
        char q = *d++;
        size_t i = 0;
        while (*d && *d != q && i + 1 < sizeof descr)
            descr[i++] = *d++;
        descr[i] = 0;
    } else {
        snprintf(descr, sizeof descr, "(structured)");
    }
    int big_endian;
    if (!strcmp(descr, "<f4"))
        big_endian = 0;
    else if (!strcmp(descr, ">f4"))
        big_endian = 1;
    else {
        seterr(err, errlen, "%s: dtype '%s' is not supported: mecbed reads float32 ('<f4'); "
                            "convert with arr.astype(np.float32)", name, descr);
        goto out;
    }
    if (!strncmp(fo, "True", 4)) {
        seterr(err, errlen, "%s: Fortran-order arrays are not supported; save np.ascontiguousarray(arr)", name);
        goto out;
    }
    if (strncmp(fo, "False", 5)) {
        seterr(err, errlen, "%s: bad 'fortran_order' value in .npy header", name);
        goto out;
    }
    if (*sh != '(') {
        seterr(err, errlen, "%s: bad 'shape' in .npy header", name);
        goto out;
    }
    int64_t dims[MB_MAX_DIMS];
    int ndim = 0;
    const char *p = sh + 1;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p)) {
            seterr(err, errlen, "%s: bad 'shape' in .npy header", name);
            goto out;
        }
        if (ndim == MB_MAX_DIMS) {
            seterr(err, errlen, "%s: more than %d dimensions", name, MB_MAX_DIMS);
            goto out;
        }
        errno = 0;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0 || v > (1LL << 40)) {
            seterr(err, errlen, "%s: dimension out of range in .npy header", name);
            goto out;
        }
        dims[ndim++] = v;
        p = end;
    }
    /* The header's shape is checked against the bytes the file really has
     * before anything is allocated: a 50-byte file must not ask for 4 GB. */
    int64_t want = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] && want > INT64_MAX / 4 / dims[i]) {
            seterr(err, errlen, "%s: array too large", name);
            goto out;
        }
        want *= dims[i];
    }
    struct stat st;
    off_t here = ftello(f);
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && here >= 0 && want * 4 > (int64_t)st.st_size - here) {
        seterr(err, errlen, "%s: truncated: the header's shape needs %" PRId64 " bytes of data, the file has %lld",
               name, want * 4, (long long)(st.st_size - here));
        goto out;
    }
    t = mb_tensor_new(ndim, dims);
    if (!t) {
        seterr(err, errlen, "%s: array too large", name);
        goto out;
    }
    int64_t n = mb_tensor_numel(t);
    size_t got = n ? fread(t->data, sizeof(float), (size_t)n, f) : 0;
    if ((int64_t)got != n) {
        char s[128];
        shape_str(t, s, sizeof s);
        seterr(err, errlen, "%s: truncated: shape %s needs %" PRId64 " bytes of data, the file has %zu", name, s,
               n * 4, got * 4);
        mb_tensor_free(t);
        t = NULL;
        goto out;
    }
    int host_big = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
    if (big_endian != host_big)
        swap4(t->data, n);
out:
    free(hdr);
    return t;
truncated_header:
    seterr(err, errlen, "%s: truncated .npy header", name);
    return NULL;
}

/* Inputs and weights read from files must be finite: a NaN or Inf would
 * flow silently through every kernel and make each comparison meaningless. */
static int check_finite(const mb_tensor *t, const char *path, char *err, size_t errlen)
{
    int64_t n = mb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(t->data[i])) {
            seterr(err, errlen, "%s: element %" PRId64 " of %" PRId64 " is %s (values must be finite)", path, i, n,
                   isnan(t->data[i]) ? "NaN" : t->data[i] > 0 ? "Inf" : "-Inf");
            return -1;
        }
    return 0;
}

mb_tensor *mb_npy_read(const char *path, char *err, size_t errlen)
{
    FILE *f = mb_fopen_regular(path, MB_READ_LIMIT_DATA, err, errlen);
    if (!f)
        return NULL;
    mb_tensor *t = mb_npy_read_stream(f, path, err, errlen);
    if (t) {
        long here = ftell(f);
        if (fseek(f, 0, SEEK_END) == 0) {
            long end = ftell(f);
            if (end != here) {
                seterr(err, errlen, "%s: %ld unexpected bytes after the array", path, end - here);
                mb_tensor_free(t);
                t = NULL;
            }
        }
    }
    fclose(f);
    if (t && check_finite(t, path, err, errlen)) {
        mb_tensor_free(t);
        t = NULL;
    }
    return t;
}

int mb_npy_write(const mb_tensor *t, const char *path, char *err, size_t errlen)
{
    char dict[512];
    size_t o = (size_t)snprintf(dict, sizeof dict, "{'descr': '%cf4', 'fortran_order': False, 'shape': (",
                                __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? '>' : '<');
    for (int i = 0; i < t->ndim; i++)
        o += (size_t)snprintf(dict + o, sizeof dict - o, "%" PRId64 "%s", t->dims[i],
                              t->ndim == 1 ? "," : i + 1 < t->ndim ? ", " : "");
    o += (size_t)snprintf(dict + o, sizeof dict - o, "), }");
    /* 10 bytes of preamble + dict + padding + '\n' is a multiple of 64. */
    size_t total = 10 + o + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = o + pad + 1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, o, f) == o;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    int64_t n = mb_tensor_numel(t);
    ok = ok && (n == 0 || fwrite(t->data, sizeof(float), (size_t)n, f) == (size_t)n);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        seterr(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
