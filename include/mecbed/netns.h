/* mecbed: network namespaces, running iproute2 commands, and the run-wide
 * clean-up registry (docs/link-emulation.md).
 *
 * Everything a run creates is named so it can be found again: namespaces
 * "mecbed-<run>-<node>", interfaces "mb<run>...", and an owner file
 * /run/mecbed/<run>.pid holding the pid of the process that made them. The
 * registry removes what this process registered on mb_cleanup_all(), at exit,
 * and on SIGINT/SIGTERM/SIGHUP (async-signal-safe: kill + umount + unlink);
 * `mecbed clean` (mb_clean_leftovers) removes what a killed run left. */
#ifndef MECBED_NETNS_H
#define MECBED_NETNS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define MB_RUN_ID_LEN 6        /* run ids are 6 characters [0-9a-z] */
#define MB_NETNS_PREFIX "mecbed-"
#define MB_IF_PREFIX "mb"
#define MB_RUN_DIR "/run/mecbed"
/* A run's temporary directory (its links' logs): MB_RUN_TMP_PREFIX<run>-XXXXXX */
#define MB_RUN_TMP_PREFIX "/tmp/mecbed-run-"

/* Can this process create namespaces, veths and TUN devices? 0 yes; -1 with
 * the reason in why (not root, no /dev/net/tun, no `ip`, ...). */
int mb_netns_available(char *why, size_t len);

/* A fresh run id (6 lowercase hex characters, unique among live runs). */
void mb_run_id_new(char out[MB_RUN_ID_LEN + 1]);

/* Run a command (argv[0] looked up in PATH) and wait for it; its stderr (and
 * stdout when out is NULL) is captured into err on failure. With out, stdout
 * is captured there. Returns the exit status (0 ok), -1 if it could not run.
 * MECBED_NET_VERBOSE=1 in the environment echoes every command to stderr. */
int mb_cmd_run(char *const argv[], char *out, size_t outlen, char *err, size_t errlen);

int mb_netns_create(const char *name, char *err, size_t errlen);
void mb_netns_delete(const char *name);
/* O_RDONLY fd on /run/netns/NAME, or -1. */
int mb_netns_open(const char *name);
/* Move the calling thread into the namespace; *saved gets a fd for
 * mb_netns_leave. Returns 0 or -1 (errno set). */
int mb_netns_enter(const char *name, int *saved);
void mb_netns_leave(int saved);

/* Clean-up registry (process-wide, thread-safe enough for set-up code). */
void mb_cleanup_install(void); /* signal handlers + atexit, once */
int mb_cleanup_owner_write(const char *run_id);  /* /run/mecbed/<run>.pid */
void mb_cleanup_owner_remove(const char *run_id);
void mb_cleanup_add_netns(const char *name);
void mb_cleanup_remove_netns(const char *name);
void mb_cleanup_add_pid(pid_t pid);
void mb_cleanup_remove_pid(pid_t pid);
/* Hooks run (in registration order, before namespaces go) by mb_cleanup_all;
 * never from a signal handler. */
void mb_cleanup_add_hook(void (*fn)(void *), void *arg);
void mb_cleanup_remove_hook(void (*fn)(void *), void *arg);
void mb_cleanup_all(void);

/* What `mecbed clean` does: remove namespaces "mecbed-*", interfaces "mb*"
 * in the root namespace, processes inside those namespaces, owner files and
 * temporary directories (MB_RUN_TMP_PREFIX) of runs whose owner process is
 * gone (all runs with all != 0). Prints what it removes to
 * log (may be NULL). Returns the number of things removed, -1 on error. */
int mb_clean_leftovers(int all, int dry_run, FILE *log, char *err, size_t errlen);

/* Names of namespaces / root-namespace interfaces belonging to a run (for
 * tests asserting that nothing is left): counts of each. */
int mb_run_leftovers(const char *run_id, int *n_netns, int *n_ifaces, int *n_procs);

#endif
