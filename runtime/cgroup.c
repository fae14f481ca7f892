/* mecbed CPU caps: cgroup v1 cpu controller or cgroup v2 cpu.max. */
#include "mecbed/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#include "mecbed/netns.h"

#define V1_ROOT "/sys/fs/cgroup/cpu"
#define V2_ROOT "/sys/fs/cgroup"

struct mb_cpu_cap {
    int version;
    double cores;
    char parent[64];
    char path[256];
};

static int write_file(const char *path, const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        if (err)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = fputs(text, f) < 0;
    rc |= fclose(f) != 0;
    if (rc && err)
        snprintf(err, errlen, "writing '%s' to %s: %s", text, path, strerror(errno));
    return rc ? -1 : 0;
}

static int file_has_word(const char *path, const char *word)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[512];
    int found = 0;
    while (!found && fscanf(f, "%511s", buf) == 1)
        found = !strcmp(buf, word);
    fclose(f);
    return found;
}

int mb_cpu_cap_available(int *version, char *why, size_t len)
{
    if (geteuid() != 0) {
        snprintf(why, len, "CPU caps need root (cgroups)");
        return -1;
    }
    if (access(V1_ROOT "/cpu.cfs_quota_us", W_OK) == 0) {
        if (version)
            *version = 1;
        return 0;
    }
    if (file_has_word(V2_ROOT "/cgroup.controllers", "cpu")) {
        if (version)
            *version = 2;
        return 0;
    }
    snprintf(why, len, "no cgroup CPU controller (neither %s/cpu.cfs_quota_us nor cpu in %s/cgroup.controllers)",
             V1_ROOT, V2_ROOT);
    return -1;
}

mb_cpu_cap *mb_cpu_cap_new(const char *name, double cores, char *err, size_t errlen)
{
    int version;
    if (strncmp(name, MB_CPU_CAP_PREFIX, strlen(MB_CPU_CAP_PREFIX)) || strchr(name, '/')) {
        snprintf(err, errlen, "cgroup name '%s' must start with '%s'", name, MB_CPU_CAP_PREFIX);
        return NULL;
    }
    if (!(cores > 0 && cores <= 1024)) {
        snprintf(err, errlen, "CPU cap %g cores out of range", cores);
        return NULL;
    }
    if (mb_cpu_cap_available(&version, err, errlen))
        return NULL;
    mb_cpu_cap *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->version = version;
    c->cores = cores;
    snprintf(c->parent, sizeof c->parent, "%s", version == 1 ? V1_ROOT : V2_ROOT);
    snprintf(c->path, sizeof c->path, "%s/%s", c->parent, name);
    if (version == 2) {
        char sub[300];
        snprintf(sub, sizeof sub, "%s/cgroup.subtree_control", c->parent);
        if (!file_has_word(sub, "cpu") && write_file(sub, "+cpu", err, errlen)) {
            free(c);
            return NULL;
        }
    }
    if (mkdir(c->path, 0755) && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", c->path, strerror(errno));
        free(c);
        return NULL;
    }
    /* The kernel's smallest quota is 1 ms: lengthen the period for tiny caps. */
    long period = MB_CPU_CAP_PERIOD_US;
    long quota = (long)(cores * period + 0.5);
    if (quota < 1000) {
        quota = 1000;
        period = (long)(1000 / cores + 0.5);
    }
    char file[300], val[64];
    int rc;
    if (version == 1) {
        snprintf(file, sizeof file, "%s/cpu.cfs_period_us", c->path);
        snprintf(val, sizeof val, "%ld", period);
        rc = write_file(file, val, err, errlen);
        snprintf(file, sizeof file, "%s/cpu.cfs_quota_us", c->path);
        snprintf(val, sizeof val, "%ld", quota);
        if (!rc)
            rc = write_file(file, val, err, errlen);
    } else {
        snprintf(file, sizeof file, "%s/cpu.max", c->path);
        snprintf(val, sizeof val, "%ld %ld", quota, period);
        rc = write_file(file, val, err, errlen);
    }
    if (rc) {
        rmdir(c->path);
        free(c);
        return NULL;
    }
    return c;
}

int mb_cpu_cap_add(mb_cpu_cap *c, pid_t pid, char *err, size_t errlen)
{
    char file[300], val[32];
    snprintf(file, sizeof file, "%s/cgroup.procs", c->path);
    snprintf(val, sizeof val, "%d", (int)(pid ? pid : getpid()));
    return write_file(file, val, err, errlen);
}

int mb_cpu_cap_add_thread(mb_cpu_cap *c, pid_t tid, char *err, size_t errlen)
{
    if (c->version != 1) {
        snprintf(err, errlen, "per-thread CPU caps need cgroup v1 (this machine has v2)");
        return -1;
    }
    char file[300], val[32];
    snprintf(file, sizeof file, "%s/tasks", c->path);
    snprintf(val, sizeof val, "%d", (int)(tid ? tid : (pid_t)syscall(SYS_gettid)));
    return write_file(file, val, err, errlen);
}

double mb_cpu_cap_cores(const mb_cpu_cap *c)
{
    return c->cores;
}

const char *mb_cpu_cap_path(const mb_cpu_cap *c)
{
    return c->path;
}

/* Move every process of cgroup `path` to `parent`, then remove it. */
static int drain_and_remove(const char *path, const char *parent)
{
    char file[300], dst[320];
    snprintf(file, sizeof file, "%s/cgroup.procs", path);
    snprintf(dst, sizeof dst, "%s/cgroup.procs", parent);
    for (int tries = 0; tries < 50; tries++) {
        FILE *f = fopen(file, "r");
        int any = 0, pid;
        while (f && fscanf(f, "%d", &pid) == 1) {
            char val[32];
            snprintf(val, sizeof val, "%d", pid);
            write_file(dst, val, NULL, 0);
            any = 1;
        }
        if (f)
            fclose(f);
        if (!rmdir(path) || errno == ENOENT)
            return 0;
        if (!any)
            usleep(10000); /* exiting tasks leave a moment later */
    }
    return -1;
}

void mb_cpu_cap_free(mb_cpu_cap *c)
{
    if (!c)
        return;
    drain_and_remove(c->path, c->parent);
    free(c);
}

int mb_cpu_cap_clean(const char *run_prefix)
{
    int removed = 0;
    const char *roots[] = {V1_ROOT, V2_ROOT};
    for (int r = 0; r < 2; r++) {
        DIR *d = opendir(roots[r]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, MB_CPU_CAP_PREFIX, strlen(MB_CPU_CAP_PREFIX)))
                continue;
            if (run_prefix && strncmp(e->d_name, run_prefix, strlen(run_prefix)))
                continue;
            char path[300];
            snprintf(path, sizeof path, "%s/%s", roots[r], e->d_name);
            struct stat st;
            if (stat(path, &st) || !S_ISDIR(st.st_mode))
                continue;
            if (!drain_and_remove(path, roots[r]))
                removed++;
        }
        closedir(d);
    }
    return removed;
}

/* Is the run that owns this id still alive? */
static int run_alive(const char *run)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.pid", MB_RUN_DIR, run);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int pid = 0;
    int ok = fscanf(f, "%d", &pid) == 1 && pid > 0;
    fclose(f);
    return ok && (kill(pid, 0) == 0 || errno == EPERM);
}

int mb_cpu_cap_clean_dead(void)
{
    int removed = 0;
    const char *roots[] = {V1_ROOT, V2_ROOT};
    size_t plen = strlen(MB_CPU_CAP_PREFIX);
    for (int r = 0; r < 2; r++) {
        DIR *d = opendir(roots[r]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, MB_CPU_CAP_PREFIX, plen) || strlen(e->d_name) < plen + MB_RUN_ID_LEN + 1)
                continue;
            char run[MB_RUN_ID_LEN + 1];
            memcpy(run, e->d_name + plen, MB_RUN_ID_LEN);
            run[MB_RUN_ID_LEN] = 0;
            if (e->d_name[plen + MB_RUN_ID_LEN] != '-' || run_alive(run))
                continue;
            char path[300];
            snprintf(path, sizeof path, "%s/%s", roots[r], e->d_name);
            if (!drain_and_remove(path, roots[r]))
                removed++;
        }
        closedir(d);
    }
    return removed;
}
