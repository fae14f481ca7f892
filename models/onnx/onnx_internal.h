/* Private to models/onnx: the generated protobuf-c types and the helpers the
 * tensor reader, the importer and the exporter share. */
#ifndef MB_ONNX_INTERNAL_H
#define MB_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/onnx.h"
#include "onnx/onnx.pb-c.h"

struct mb_onnx_model {
    char *path;
    Onnx__ModelProto *proto;
    int64_t opset;
    int n_inputs;       /* graph inputs that are not initializers */
    const char **inputs;
};

/* Decode a TensorProto into t (zeroed by the caller). what names it in
 * errors ("initializer 'W'"); 0, or -1 with "what: problem" in err. */
int mb_onnx_decode(const Onnx__TensorProto *tp, const char *what, mb_onnx_tensor *t, char *err, size_t errlen);
/* Release what t holds, not t itself. */
void mb_onnx_tensor_clear(mb_onnx_tensor *t);
/* Deep copy into dst (zeroed by the caller); 0 or -1 (out of memory). */
int mb_onnx_tensor_copy(mb_onnx_tensor *dst, const mb_onnx_tensor *src);
/* Element k as a double / as an int64, whatever the storage. */
double mb_onnx_tensor_get(const mb_onnx_tensor *t, int64_t k);
int64_t mb_onnx_tensor_geti(const mb_onnx_tensor *t, int64_t k);
/* An fp32 mb_tensor with t's dims and values (integers converted). NULL on
 * out of memory. */
mb_tensor *mb_onnx_tensor_to_mb(const mb_onnx_tensor *t);

/* Map a whole file read-only (NULL with "path: why" in err); unmap with
 * mb_onnx_unmap_file(p, len). */
const unsigned char *mb_onnx_map_file(const char *path, size_t *len, char *err, size_t errlen);
void mb_onnx_unmap_file(const unsigned char *p, size_t len);

#endif
