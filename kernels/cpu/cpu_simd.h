/* Hot loops of the CPU backend are compiled for AVX-512, AVX2+FMA and baseline
 * x86-64 and picked at load time (GCC function multi-versioning), so one
 * binary runs everywhere yet uses the vector units it finds. Elsewhere (ARM
 * boards) the plain version is built for whatever -march the build uses. */
#ifndef MECBED_CPU_SIMD_H
#define MECBED_CPU_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CPU_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CPU_SIMD_CLONES
#endif

#endif
