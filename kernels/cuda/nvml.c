/* NVML through dlopen: the GPU's energy counter without linking the driver's
 * library (it exists only where an NVIDIA driver is installed). Only the
 * handful of entry points used here are declared, with NVML's documented
 * signatures (nvml.h, NVML API reference). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_cuda.h"

typedef int nvml_ret; /* nvmlReturn_t: 0 is NVML_SUCCESS */
typedef void *nvml_dev;

struct mbc_nvml {
    void *lib;
    nvml_dev dev;
    nvml_ret (*shutdown)(void);
    nvml_ret (*energy)(nvml_dev, unsigned long long *);
    const char *(*error_string)(nvml_ret);
};

static const char *nv_err(const mbc_nvml *m, nvml_ret r)
{
    static char buf[32];
    if (m->error_string)
        return m->error_string(r);
    snprintf(buf, sizeof buf, "NVML error %d", r);
    return buf;
}

mbc_nvml *mbc_nvml_open(const char *pci_bus_id, char *why, size_t whylen)
{
    mbc_nvml *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    m->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!m->lib) {
        const char *e = dlerror();
        snprintf(why, whylen, "NVML not available: dlopen libnvidia-ml.so.1: %s (no NVIDIA driver here)",
                 e ? e : "not found");
        free(m);
        return NULL;
    }
    nvml_ret (*init)(void) = (nvml_ret(*)(void))dlsym(m->lib, "nvmlInit_v2");
    nvml_ret (*by_index)(unsigned, nvml_dev *) =
        (nvml_ret(*)(unsigned, nvml_dev *))dlsym(m->lib, "nvmlDeviceGetHandleByIndex_v2");
    nvml_ret (*by_pci)(const char *, nvml_dev *) =
        (nvml_ret(*)(const char *, nvml_dev *))dlsym(m->lib, "nvmlDeviceGetHandleByPciBusId_v2");
    m->shutdown = (nvml_ret(*)(void))dlsym(m->lib, "nvmlShutdown");
    m->energy = (nvml_ret(*)(nvml_dev, unsigned long long *))dlsym(m->lib, "nvmlDeviceGetTotalEnergyConsumption");
    m->error_string = (const char *(*)(nvml_ret))dlsym(m->lib, "nvmlErrorString");
    if (!init || !by_index || !by_pci || !m->shutdown || !m->energy) {
        snprintf(why, whylen, "NVML (libnvidia-ml.so.1) lacks nvmlInit_v2, a device lookup or "
                              "nvmlDeviceGetTotalEnergyConsumption (driver too old)");
        dlclose(m->lib);
        free(m);
        return NULL;
    }
    nvml_ret r = init();
    if (r) {
        snprintf(why, whylen, "nvmlInit_v2: %s", nv_err(m, r));
        dlclose(m->lib);
        free(m);
        return NULL;
    }
    r = pci_bus_id ? by_pci(pci_bus_id, &m->dev) : by_index(0, &m->dev);
    if (r) {
        snprintf(why, whylen, "NVML: no handle for GPU %s: %s", pci_bus_id ? pci_bus_id : "0", nv_err(m, r));
        m->shutdown();
        dlclose(m->lib);
        free(m);
        return NULL;
    }
    return m;
}

int mbc_nvml_energy_mj(mbc_nvml *m, unsigned long long *mj, char *why, size_t whylen)
{
    if (!m) {
        snprintf(why, whylen, "NVML not open");
        return -1;
    }
    nvml_ret r = m->energy(m->dev, mj);
    if (r) {
        /* NVML_ERROR_NOT_SUPPORTED (3) before Volta and on some boards */
        snprintf(why, whylen, "nvmlDeviceGetTotalEnergyConsumption: %s", nv_err(m, r));
        return -1;
    }
    return 0;
}

void mbc_nvml_close(mbc_nvml *m)
{
    if (!m)
        return;
    m->shutdown();
    dlclose(m->lib);
    free(m);
}
