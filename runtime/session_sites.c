/* Run session, site speed: each site's node type is some factor slower or
 * faster than this machine. A slower site is emulated by time dilation
 * (default) or a cgroup CPU cap; a faster one cannot be, so it runs at this
 * machine's speed and the plan is made for that (docs/runtime.md). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "mecbed/platform.h"
#include "session_priv.h"

/* Before planning: what each site can be emulated as, and the cost model
 * told so (a site that stays at this machine's speed is planned at it). */
void ss_sites_plan_speed(mb_session *s)
{
    const mb_topology *t = s->cfg.topo;
    int no_emulation = s->cfg.emulate == MB_EMULATE_NONE;
    for (int i = 0; i < t->n_sites; i++) {
        s->factor[i] = mb_cost_site_factor(s->cfg.cost, i);
        s->emu_factor[i] = s->factor[i];
        if (!t->sites[i].address[0] && (s->factor[i] < 1 || no_emulation)) {
            mb_cost_set_site_scale(s->cfg.cost, i, 1.0 / s->factor[i]);
            s->emu_factor[i] = 1;
        }
    }
    for (int i = 0; i < t->n_sites; i++)
        if (s->factor[i] < 1 && !t->sites[i].address[0])
            ss_warn(s, "%s (%s) is %.2fx faster than this machine: emulated at this machine's speed, and planned for it",
                    t->sites[i].name, mb_cost_site_type(s->cfg.cost, i)->name, 1 / s->factor[i]);
}

/* Runs first in each of the device's compute and sender threads: they
 * join the device's CPU cap. */
void ss_device_thread_hook(void *arg)
{
    mb_session *s = arg;
    mb_cpu_cap *cap = s->cap[s->cfg.device];
    char err[256];
    if (cap && mb_cpu_cap_add_thread(cap, 0, err, sizeof err) && s->cfg.log) {
        char msg[320];
        snprintf(msg, sizeof msg, "device thread not capped: %s", err);
        s->cfg.log(s->cfg.log_arg, MB_SESSION_WARN, msg);
    }
}

/* At bring-up, before the nodes start: the device's slowdown (dilation)
 * or a CPU cgroup per slower site (caps; the nodes and the device's threads
 * join them). run_id names the cgroups. 0, or -1 with err. */
int ss_sites_apply(mb_session *s, const char *run_id, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int dev = s->cfg.device;
    int use_cap = s->cfg.emulate == MB_EMULATE_CAP;
    int no_emulation = s->cfg.emulate == MB_EMULATE_NONE;
    char why[256];
    int have_caps = !mb_cpu_cap_available(NULL, why, sizeof why);
    if (have_caps)
        mb_cpu_cap_clean_dead(); /* a killed run's cgroups */
    int cap_ok = use_cap && have_caps;
    if (use_cap && !cap_ok)
        ss_warn(s, "node types are not emulated (%s): every site runs at this machine's speed", why);
    int dilate = !use_cap && !no_emulation;
    if (dilate)
        mb_rt_set_slowdown(s->emu_factor[dev]);
    double total_cores = 0;
    for (int i = 0; i < t->n_sites; i++) {
        if (t->sites[i].address[0])
            continue;
        double cores = 1.0;
        if (cap_ok && s->emu_factor[i] > 1.0001) {
            char name[64];
            snprintf(name, sizeof name, "%s%s-%s", MB_CPU_CAP_PREFIX, run_id, t->sites[i].name);
            s->cap[i] = mb_cpu_cap_new(name, 1.0 / s->emu_factor[i], err, errlen);
            if (!s->cap[i])
                return -1;
            cores = 1.0 / s->emu_factor[i];
            s->cap_cores[i] = cores;
        } else if (dilate && s->emu_factor[i] > 1.0001)
            cores = 1.0 / s->emu_factor[i];
        total_cores += cores;
    }
    if (total_cores > mb_platform_cores() + 1e-9)
        ss_warn(s, "the sites' CPU shares add up to %.2f cores but this machine has %d: when they compute at the same time, timings are invalid",
                total_cores, mb_platform_cores());
    return 0;
}

void ss_sites_free(mb_session *s)
{
    for (int i = 0; i < MB_MAX_SITES; i++)
        if (s->cap[i]) {
            mb_cpu_cap_free(s->cap[i]);
            s->cap[i] = NULL;
        }
}
