/* mecbed: the CUDA backend's own C interface (kernels/cuda). These objects
 * are built (where nvcc exists) into libmecbed-cuda.so, which
 * kernels/backend.c opens with dlopen when mb_backend_new("cuda", ...) is
 * called: that is how programs reach the backend, and the only way the
 * CUDA runtime gets loaded. Its kernel test (tests/test_kernels_cuda.c) and
 * benchmark (bench/bench_cuda.cu) link the objects directly and use this
 * header: why the backend could not start, the device it runs on, the GPU's
 * energy counter (NVML) and the host-simulation harness. */
#ifndef MECBED_MB_CUDA_H
#define MECBED_MB_CUDA_H

#include <stddef.h>

#include "mecbed/backend.h"

/* MB_BACKEND_IMPL_VERSION of the build (kernels/backend_impl.h): the loader
 * refuses a library whose backend table has another layout. */
int mb_backend_cuda_impl_version(void);

/* NULL when no usable GPU; mb_backend_cuda_why() then says why (no device,
 * no driver, out of memory...). n_threads is recorded, not used (the GPU
 * does the work). */
mb_backend *mb_backend_cuda_new(int n_threads);
const char *mb_backend_cuda_why(void);

/* The host-simulation test harness ("cuda-hostsim"): this backend's host
 * planning, kernel functors (run in host loops) and GEMM argument mapping
 * on the CPU. Not a backend: mb_backend_new never returns it. */
mb_backend *mbc_hostsim_new(void);

/* The backend's device: "NVIDIA H100 80GB HBM3 (sm_90, device 0)". */
const char *mb_cuda_device_name(const mb_backend *be);

/* The GPU's total energy counter in millijoules since the driver loaded
 * (NVML nvmlDeviceGetTotalEnergyConsumption, Volta and newer). -1 with the
 * reason in why when NVML or the counter is not available: callers report
 * energy as unknown (null), never as zero. */
int mb_cuda_energy_mj(const mb_backend *be, unsigned long long *mj, char *why, size_t whylen);

/* NVML, loaded with dlopen("libnvidia-ml.so.1") (kernels/cuda/nvml.c;
 * plain C, no CUDA needed, so it is testable without a GPU). */
typedef struct mbc_nvml mbc_nvml;
/* Open NVML and find the GPU with this PCI bus id ("0000:65:00.0"; NULL:
 * NVML's device 0). NULL with the reason in why. */
mbc_nvml *mbc_nvml_open(const char *pci_bus_id, char *why, size_t whylen);
int mbc_nvml_energy_mj(mbc_nvml *m, unsigned long long *mj, char *why, size_t whylen);
void mbc_nvml_close(mbc_nvml *m);

#endif
