/* mecbed: CPU caps for emulated node types. A "phone" that is 4x slower
 * than this machine runs in a cgroup limited to 0.25 of a core. cgroup v1's
 * cpu controller (cpu.cfs_quota_us / cpu.cfs_period_us) or cgroup v2's
 * cpu.max, whichever this machine has. The period is short (4 ms): with the
 * default 100 ms, work shorter than a period either runs uncapped or waits
 * out the rest of the window, so per-op times would be bursty (docs/runtime.md). */
#ifndef MECBED_CGROUP_H
#define MECBED_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

#define MB_CPU_CAP_PERIOD_US 4000
#define MB_CPU_CAP_PREFIX "mecbed-"

typedef struct mb_cpu_cap mb_cpu_cap;

/* 0 when a CPU controller is usable here (root, v1 cpu or v2 cpu.max);
 * -1 with the reason. *version (optional) receives 1 or 2. */
int mb_cpu_cap_available(int *version, char *why, size_t len);
/* Create cgroup `name` (must start with "mecbed-") capped at `cores` CPUs
 * (0 < cores). NULL with err. */
mb_cpu_cap *mb_cpu_cap_new(const char *name, double cores, char *err, size_t errlen);
/* Move a process (all its threads; 0 = this process) into the cgroup. */
int mb_cpu_cap_add(mb_cpu_cap *c, pid_t pid, char *err, size_t errlen);
/* Move one thread (a tid; 0 = the calling thread). cgroup v1 only (v2
 * caps whole processes unless the cgroup is "threaded"): -1 with err. */
int mb_cpu_cap_add_thread(mb_cpu_cap *c, pid_t tid, char *err, size_t errlen);
double mb_cpu_cap_cores(const mb_cpu_cap *c);
const char *mb_cpu_cap_path(const mb_cpu_cap *c);
/* Move what is left back to the parent and remove the cgroup. */
void mb_cpu_cap_free(mb_cpu_cap *c);
/* Remove empty "mecbed-*" cgroups whose run left them (run_prefix: only
 * those starting with it; NULL: all). Returns how many were removed. */
int mb_cpu_cap_clean(const char *run_prefix);
/* Remove the cgroups of runs that are gone: "mecbed-<run>-<site>" whose
 * owner file /run/mecbed/<run>.pid (netns.h) is missing or names a dead
 * process. For `mecbed clean` and the start of every run. */
int mb_cpu_cap_clean_dead(void);

#endif
