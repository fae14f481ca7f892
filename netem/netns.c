/* Namespaces, iproute2 commands, the clean-up registry and `mecbed clean`.
 *
 * Why `ip` by fork/exec rather than our own netlink code: iproute2 is the
 * reference implementation of every operation we need (netns, veth across
 * namespaces, addresses, routes, tc qdiscs), its error messages are the ones
 * users can look up, MECBED_NET_VERBOSE=1 prints each command so a set-up can
 * be replayed by hand, and a topology needs a few dozen commands (a few ms
 * each), so speed does not matter. Clean-up in a signal handler cannot fork
 * safely, so it uses the system calls behind `ip netns del` directly
 * (umount2 + unlink) and kill(2). */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mecbed/netns.h"

#define MAX_NETNS 96
#define MAX_PIDS 256
#define MAX_HOOKS 32
#define NAME_LEN 64

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- commands ---- */

static int verbose(void)
{
    const char *v = getenv("MECBED_NET_VERBOSE");
    return v && *v && strcmp(v, "0");
}

static void read_all(int fd, char *buf, size_t len)
{
    size_t used = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf && len > 1 && used < len - 1) {
            size_t k = (size_t)n < len - 1 - used ? (size_t)n : len - 1 - used;
            memcpy(buf + used, tmp, k);
            used += k;
        }
    }
    if (buf && len)
        buf[used] = 0;
}

int mb_cmd_run(char *const argv[], char *out, size_t outlen, char *err, size_t errlen)
{
    if (verbose()) {
        fprintf(stderr, "+");
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    int pout[2] = {-1, -1}, perr[2];
    if (pipe2(perr, O_CLOEXEC) || (out && pipe2(pout, O_CLOEXEC)))
        return fail(err, errlen, "%s: pipe: %s", argv[0], strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(perr[0]), close(perr[1]);
        if (out)
            close(pout[0]), close(pout[1]);
        return fail(err, errlen, "%s: fork: %s", argv[0], strerror(errno));
    }
    if (pid == 0) {
        /* child: stderr (and stdout unless captured) to the error pipe */
        dup2(perr[1], 2);
        dup2(out ? pout[1] : perr[1], 1);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(perr[1]);
    char ebuf[1024];
    if (out) {
        close(pout[1]);
        /* read both pipes without deadlock: stdout first is fine for the
         * small outputs of ip/tc; stderr is drained after */
        read_all(pout[0], out, outlen);
        close(pout[0]);
    }
    read_all(perr[0], ebuf, sizeof ebuf);
    close(perr[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (rc) {
        size_t n = strlen(ebuf);
        while (n && (ebuf[n - 1] == '\n' || ebuf[n - 1] == ' '))
            ebuf[--n] = 0;
        char cmd[512];
        size_t used = 0;
        cmd[0] = 0;
        for (int i = 0; argv[i] && used < sizeof cmd - 1; i++) {
            int k = snprintf(cmd + used, sizeof cmd - used, "%s%s", i ? " " : "", argv[i]);
            if (k < 0)
                break;
            used += (size_t)k;
        }
        if (used >= sizeof cmd)
            used = sizeof cmd - 1;
        fail(err, errlen, "'%s' failed: %s", cmd, ebuf[0] ? ebuf : "(no message)");
    }
    return rc;
}

int mb_netns_available(char *why, size_t len)
{
    if (geteuid() != 0)
        return fail(why, len, "needs root (network namespaces, veth, TUN)");
    if (access("/dev/net/tun", R_OK | W_OK))
        return fail(why, len, "/dev/net/tun is not usable: %s", strerror(errno));
    char *argv[] = {"ip", "-V", NULL};
    char out[256], err[256];
    if (mb_cmd_run(argv, out, sizeof out, err, sizeof err))
        return fail(why, len, "iproute2's 'ip' is not available (apt-get install iproute2): %s", err);
    /* can we make a namespace at all (containers may forbid it)? */
    pid_t pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWNET) ? 1 : 0);
    int st = 1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    if (pid < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
        return fail(why, len, "cannot create network namespaces here (unshare(CLONE_NEWNET) refused)");
    return 0;
}

void mb_run_id_new(char out[MB_RUN_ID_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long long x = ((unsigned long long)getpid() << 20) ^ (unsigned long long)ts.tv_nsec ^
                           ((unsigned long long)ts.tv_sec << 7);
    for (int attempt = 0;; attempt++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(out, MB_RUN_ID_LEN + 1, "%06llx", (x >> 20) & 0xffffffULL);
        char path[128];
        snprintf(path, sizeof path, "%s/%s.pid", MB_RUN_DIR, out);
        if (access(path, F_OK) || attempt > 100)
            return;
    }
}

int mb_netns_create(const char *name, char *err, size_t errlen)
{
    char *argv[] = {"ip", "netns", "add", (char *)name, NULL};
    return mb_cmd_run(argv, NULL, 0, err, errlen) ? -1 : 0;
}

/* Async-signal-safe: what `ip netns del` does. The namespace itself goes when
 * no process and no open fd refers to it any more. */
static void netns_remove_raw(const char *name)
{
    char path[128];
    size_t n = strlen(name);
    if (n > 100)
        return;
    memcpy(path, "/run/netns/", 11);
    memcpy(path + 11, name, n + 1);
    umount2(path, MNT_DETACH);
    unlink(path);
}

void mb_netns_delete(const char *name)
{
    netns_remove_raw(name);
}

int mb_netns_open(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", name);
    return open(path, O_RDONLY | O_CLOEXEC);
}

int mb_netns_enter(const char *name, int *saved)
{
    *saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (*saved < 0)
        return -1;
    int fd = mb_netns_open(name);
    if (fd < 0 || setns(fd, CLONE_NEWNET)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        close(*saved);
        *saved = -1;
        errno = e;
        return -1;
    }
    close(fd);
    return 0;
}

void mb_netns_leave(int saved)
{
    if (saved < 0)
        return;
    if (setns(saved, CLONE_NEWNET))
        perror("mecbed: cannot return to the original network namespace");
    close(saved);
}

/* ---- registry ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static char reg_netns[MAX_NETNS][NAME_LEN];
static volatile sig_atomic_t reg_netns_used[MAX_NETNS];
static volatile pid_t reg_pids[MAX_PIDS];
static char reg_owner[MAX_NETNS][MB_RUN_ID_LEN + 1];
static volatile sig_atomic_t reg_owner_used[MAX_NETNS];
static struct { void (*fn)(void *); void *arg; } reg_hooks[MAX_HOOKS];
static int n_hooks;
static int installed;

static void owner_path(char *path, size_t len, const char *run)
{
    snprintf(path, len, "%s/%s.pid", MB_RUN_DIR, run);
}

/* Signal-handler teardown: kill children, drop namespace names and owner
 * files. Interfaces and TUN devices die with the namespaces and our fds. */
static void teardown_raw(void)
{
    for (int i = 0; i < MAX_PIDS; i++)
        if (reg_pids[i] > 0)
            kill(reg_pids[i], SIGKILL);
    for (int i = 0; i < MAX_NETNS; i++)
        if (reg_netns_used[i])
            netns_remove_raw(reg_netns[i]);
    for (int i = 0; i < MAX_NETNS; i++)
        if (reg_owner_used[i]) {
            char path[128];
            /* build the path by hand: snprintf is not async-signal-safe */
            size_t n = strlen(MB_RUN_DIR);
            memcpy(path, MB_RUN_DIR, n);
            path[n] = '/';
            memcpy(path + n + 1, reg_owner[i], MB_RUN_ID_LEN);
            memcpy(path + n + 1 + MB_RUN_ID_LEN, ".pid", 5);
            unlink(path);
        }
}

/* The process that registered things; a forked child (a node process that
 * has not exec'd yet, a test's helper) inherits the handlers and the
 * registry but must never tear down its parent's run. */
static volatile pid_t reg_owner_pid;

static void on_signal(int sig)
{
    if (getpid() == reg_owner_pid)
        teardown_raw();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void at_exit(void)
{
    if (getpid() == reg_owner_pid)
        mb_cleanup_all();
}

void mb_cleanup_install(void)
{
    pthread_mutex_lock(&reg_lock);
    if (installed && reg_owner_pid != getpid()) {
        /* a forked child starting a run of its own: what it inherited
         * belongs to the parent's run */
        for (int i = 0; i < MAX_NETNS; i++)
            reg_netns_used[i] = 0, reg_owner_used[i] = 0;
        for (int i = 0; i < MAX_PIDS; i++)
            reg_pids[i] = 0;
        n_hooks = 0;
        reg_owner_pid = getpid();
    }
    if (!installed) {
        installed = 1;
        reg_owner_pid = getpid();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction old;
            /* keep a handler somebody else installed (the runtime may have its own) */
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)
                continue;
            sigaction(sigs[i], &sa, NULL);
        }
        atexit(at_exit);
    }
    pthread_mutex_unlock(&reg_lock);
}

int mb_cleanup_owner_write(const char *run_id)
{
    mkdir(MB_RUN_DIR, 0755);
    char path[128];
    owner_path(path, sizeof path, run_id);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_NETNS; i++)
        if (!reg_owner_used[i]) {
            memcpy(reg_owner[i], run_id, MB_RUN_ID_LEN + 1);
            reg_owner_used[i] = 1;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
    return 0;
}

void mb_cleanup_owner_remove(const char *run_id)
{
    char path[128];
    owner_path(path, sizeof path, run_id);
    unlink(path);
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_NETNS; i++)
        if (reg_owner_used[i] && !strcmp(reg_owner[i], run_id))
            reg_owner_used[i] = 0;
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_add_netns(const char *name)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_NETNS; i++)
        if (!reg_netns_used[i]) {
            snprintf(reg_netns[i], NAME_LEN, "%s", name);
            reg_netns_used[i] = 1;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_remove_netns(const char *name)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_NETNS; i++)
        if (reg_netns_used[i] && !strcmp(reg_netns[i], name))
            reg_netns_used[i] = 0;
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_add_pid(pid_t pid)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_PIDS; i++)
        if (reg_pids[i] <= 0) {
            reg_pids[i] = pid;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_remove_pid(pid_t pid)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < MAX_PIDS; i++)
        if (reg_pids[i] == pid)
            reg_pids[i] = 0;
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_add_hook(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&reg_lock);
    if (n_hooks < MAX_HOOKS) {
        reg_hooks[n_hooks].fn = fn;
        reg_hooks[n_hooks].arg = arg;
        n_hooks++;
    }
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_remove_hook(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&reg_lock);
    for (int i = 0; i < n_hooks; i++)
        if (reg_hooks[i].fn == fn && reg_hooks[i].arg == arg) {
            memmove(&reg_hooks[i], &reg_hooks[i + 1], (size_t)(n_hooks - i - 1) * sizeof reg_hooks[0]);
            n_hooks--;
            break;
        }
    pthread_mutex_unlock(&reg_lock);
}

void mb_cleanup_all(void)
{
    /* hooks first (they stop emulator threads and free what they own); a
     * hook removes itself, so take them one at a time from the end */
    for (;;) {
        pthread_mutex_lock(&reg_lock);
        if (!n_hooks) {
            pthread_mutex_unlock(&reg_lock);
            break;
        }
        void (*fn)(void *) = reg_hooks[n_hooks - 1].fn;
        void *arg = reg_hooks[n_hooks - 1].arg;
        n_hooks--;
        pthread_mutex_unlock(&reg_lock);
        fn(arg);
    }
    for (int i = 0; i < MAX_PIDS; i++) {
        pid_t p = reg_pids[i];
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            reg_pids[i] = 0;
        }
    }
    teardown_raw();
    for (int i = 0; i < MAX_NETNS; i++)
        reg_netns_used[i] = 0, reg_owner_used[i] = 0;
}

/* ---- leftovers ---- */

static int run_alive(const char *run)
{
    char path[128];
    owner_path(path, sizeof path, run);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int pid = 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Run id of a namespace name "mecbed-<run>-<node>", or "" if not ours. */
static int netns_run(const char *name, char run[MB_RUN_ID_LEN + 1])
{
    size_t p = strlen(MB_NETNS_PREFIX);
    if (strncmp(name, MB_NETNS_PREFIX, p) || strlen(name) < p + MB_RUN_ID_LEN + 2 || name[p + MB_RUN_ID_LEN] != '-')
        return -1;
    memcpy(run, name + p, MB_RUN_ID_LEN);
    run[MB_RUN_ID_LEN] = 0;
    return 0;
}

/* Processes whose network namespace is the one at path: kill them. */
static int kill_procs_in(const char *nspath, int dry_run, FILE *log, const char *nsname)
{
    struct stat ns;
    if (stat(nspath, &ns))
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1 || pid == getpid())
            continue;
        char p[64];
        struct stat st;
        snprintf(p, sizeof p, "/proc/%ld/ns/net", pid);
        if (stat(p, &st) || st.st_ino != ns.st_ino || st.st_dev != ns.st_dev)
            continue;
        if (log)
            fprintf(log, "%s process %ld (in %s)\n", dry_run ? "would kill" : "killing", pid, nsname);
        if (!dry_run)
            kill((pid_t)pid, SIGKILL);
        n++;
    }
    closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Temporary directories MB_RUN_TMP_PREFIX<run>-XXXXXX of dead runs (all
 * runs with all): only real directories (not links) owned by this user,
 * removed without following links. Returns how many. */
static int clean_tmp_dirs(int all, int dry_run, FILE *log)
{
    const char *prefix = MB_RUN_TMP_PREFIX;
    const char *slash = strrchr(prefix, '/');
    char dir[64];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - prefix), prefix);
    const char *base = slash + 1;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strlen(n) != bl + MB_RUN_ID_LEN + 7 || n[bl + MB_RUN_ID_LEN] != '-')
            continue;
        char run[MB_RUN_ID_LEN + 1], path[256];
        memcpy(run, n + bl, MB_RUN_ID_LEN);
        run[MB_RUN_ID_LEN] = 0;
        snprintf(path, sizeof path, "%s/%s", dir, n);
        struct stat st;
        if (lstat(path, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (!all && run_alive(run))
            continue;
        if (log)
            fprintf(log, "%s temporary directory %s\n", dry_run ? "would remove" : "removing", path);
        if (!dry_run && nftw(path, remove_entry, 8, FTW_DEPTH | FTW_PHYS) && log)
            fprintf(log, "  %s: %s\n", path, strerror(errno));
        removed++;
    }
    closedir(d);
    return removed;
}

int mb_clean_leftovers(int all, int dry_run, FILE *log, char *err, size_t errlen)
{
    int removed = 0;
    DIR *d = opendir("/run/netns");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char run[MB_RUN_ID_LEN + 1];
            if (netns_run(e->d_name, run))
                continue;
            if (!all && run_alive(run)) {
                if (log)
                    fprintf(log, "keeping %s: run %s is still alive (use --all to remove it too)\n", e->d_name, run);
                continue;
            }
            char path[512];
            snprintf(path, sizeof path, "/run/netns/%s", e->d_name);
            removed += kill_procs_in(path, dry_run, log, e->d_name);
            if (log)
                fprintf(log, "%s namespace %s\n", dry_run ? "would remove" : "removing", e->d_name);
            if (!dry_run)
                netns_remove_raw(e->d_name);
            removed++;
            if (!dry_run) {
                char own[128];
                owner_path(own, sizeof own, run);
                unlink(own);
            }
        }
        closedir(d);
    }
    /* interfaces "mb<run>..." left in the root namespace (a veth whose move
     * into a namespace was interrupted) */
    struct if_nameindex *ifs = if_nameindex();
    if (ifs) {
        for (struct if_nameindex *i = ifs; i->if_index; i++) {
            const char *name = i->if_name;
            if (strncmp(name, MB_IF_PREFIX, 2) || strlen(name) < 2 + MB_RUN_ID_LEN + 1)
                continue;
            char run[MB_RUN_ID_LEN + 1];
            memcpy(run, name + 2, MB_RUN_ID_LEN);
            run[MB_RUN_ID_LEN] = 0;
            if (!all && run_alive(run))
                continue;
            if (log)
                fprintf(log, "%s interface %s\n", dry_run ? "would remove" : "removing", name);
            if (!dry_run) {
                char *argv[] = {"ip", "link", "del", (char *)name, NULL};
                char e2[256];
                if (mb_cmd_run(argv, NULL, 0, e2, sizeof e2) && log)
                    fprintf(log, "  %s\n", e2);
            }
            removed++;
        }
        if_freenameindex(ifs);
    }
    /* owner files of dead runs */
    d = opendir(MB_RUN_DIR);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n != MB_RUN_ID_LEN + 4 || strcmp(e->d_name + MB_RUN_ID_LEN, ".pid"))
                continue;
            char run[MB_RUN_ID_LEN + 1];
            memcpy(run, e->d_name, MB_RUN_ID_LEN);
            run[MB_RUN_ID_LEN] = 0;
            if (!all && run_alive(run))
                continue;
            if (!dry_run) {
                char path[128];
                owner_path(path, sizeof path, run);
                unlink(path);
            }
        }
        closedir(d);
    }
    removed += clean_tmp_dirs(all, dry_run, log);
    (void)err;
    (void)errlen;
    return removed;
}

int mb_run_leftovers(const char *run_id, int *n_netns, int *n_ifaces, int *n_procs)
{
    *n_netns = *n_ifaces = *n_procs = 0;
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s-", MB_NETNS_PREFIX, run_id);
    DIR *d = opendir("/run/netns");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, prefix, strlen(prefix))) {
                char path[512];
                snprintf(path, sizeof path, "/run/netns/%s", e->d_name);
                (*n_netns)++;
                *n_procs += kill_procs_in(path, 1, NULL, e->d_name);
            }
        closedir(d);
    }
    char ifp[32];
    snprintf(ifp, sizeof ifp, "%s%s", MB_IF_PREFIX, run_id);
    struct if_nameindex *ifs = if_nameindex();
    if (ifs) {
        for (struct if_nameindex *i = ifs; i->if_index; i++)
            if (!strncmp(i->if_name, ifp, strlen(ifp)))
                (*n_ifaces)++;
        if_freenameindex(ifs);
    }
    return 0;
}
