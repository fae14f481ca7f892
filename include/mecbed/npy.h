/* mecbed: NumPy .npy files (format versions 1.0, 2.0 and 3.0), so model
 * inputs and outputs can be produced and checked with other tools. Only
 * float32 arrays in C order are read; other dtypes and Fortran order are
 * rejected with a message that says how to convert them in NumPy. */
#ifndef MECBED_NPY_H
#define MECBED_NPY_H

#include <stddef.h>
#include <stdio.h>

#include "mecbed/tensor.h"

/* Read a float32 ('<f4' or '>f4'), C-order array. NULL with "path: what is
 * wrong" in err on any problem (not a regular file, over MB_READ_LIMIT_DATA,
 * bad magic, dtype, fortran order, truncation, trailing bytes, more than
 * MB_MAX_DIMS dimensions, a NaN or Inf value). */
mb_tensor *mb_npy_read(const char *path, char *err, size_t errlen);
/* The same from an open stream positioned at the magic; name labels errors.
 * Stops after the array (trailing bytes are the caller's business). */
mb_tensor *mb_npy_read_stream(FILE *f, const char *name, char *err, size_t errlen);

/* Write t as a version 1.0 '<f4' C-order array. 0, or -1 with err. */
int mb_npy_write(const mb_tensor *t, const char *path, char *err, size_t errlen);

#endif
