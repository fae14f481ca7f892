/* mecbed: process-wide set-up and facts about the machine that every result
 * file records (OpenBLAS core name, CPU model, kernel version). */
#ifndef MECBED_PLATFORM_H
#define MECBED_PLATFORM_H

#include <stddef.h>

#define MB_VERSION "0.1.0"

/* Call first in main(), before any BLAS call. Debian's OpenBLAS 0.3.21 does
 * not recognise Zen 5 and falls back to Haswell kernels at half speed; when
 * the CPU has AVX-512 but OpenBLAS runs an AVX2 core (misdetected, or forced
 * by an inherited OPENBLAS_CORETYPE), re-exec the program with
 * OPENBLAS_CORETYPE=SkylakeX (the library picks kernels at load time, so
 * setting it later is too late). MECBED_BLAS_CORETYPE=NAME forces a core
 * instead; MECBED_NO_REEXEC=1 keeps whatever OpenBLAS chose. Also pins
 * OpenBLAS to one thread: mecbed parallelises above it. */
void mb_platform_init(int argc, char **argv);

const char *mb_platform_blas_core(void);  /* openblas_get_corename() */
void mb_platform_cpu_model(char *buf, size_t len);
void mb_platform_kernel(char *buf, size_t len);
int mb_platform_cores(void);
/* Monotonic clock in seconds. */
double mb_now(void);

#endif
