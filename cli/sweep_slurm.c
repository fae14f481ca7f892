/* A sweep as a Slurm job array: the scripts, and their submission with
 * sbatch. Each array task runs one shard into its own folder with --resume,
 * so a requeued task continues where it stopped; the merge job waits for the
 * whole array (afterok) and writes the results as one sweep would. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sweep_files.h"
#include "sweep_slurm.h"

/* s quoted for sh: in single quotes, each ' as '\'' */
static void sh_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* The absolute form of path (which must exist), or -1 with err. */
static int absolute(const char *path, char *out, char *err, size_t errlen)
{
    if (!realpath(path, out)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct paths {
    char exe[PATH_MAX], conf[PATH_MAX], dir[PATH_MAX], cwd[PATH_MAX], types[PATH_MAX];
    char shards[PATH_MAX + 32], merge[PATH_MAX + 32];
} paths;

static int resolve(const sweep_slurm_job *j, paths *p, char *err, size_t errlen)
{
    ssize_t k = readlink("/proc/self/exe", p->exe, sizeof p->exe - 1);
    if (k <= 0) {
        snprintf(err, errlen, "cannot find the mecbed binary (/proc/self/exe): %s", strerror(errno));
        return -1;
    }
    p->exe[k] = 0;
    if (!getcwd(p->cwd, sizeof p->cwd)) {
        snprintf(err, errlen, "getcwd: %s", strerror(errno));
        return -1;
    }
    char sd[PATH_MAX + 16];
    snprintf(sd, sizeof sd, "%s/slurm", j->dir);
    if (sweep_mkdir_p(sd)) {
        snprintf(err, errlen, "cannot create %s: %s", sd, strerror(errno));
        return -1;
    }
    if (absolute(j->conf, p->conf, err, errlen) || absolute(j->dir, p->dir, err, errlen))
        return -1;
    p->types[0] = 0;
    if (j->extra_types && absolute(j->extra_types, p->types, err, errlen))
        return -1;
    snprintf(p->shards, sizeof p->shards, "%s/slurm/shards.sbatch", p->dir);
    snprintf(p->merge, sizeof p->merge, "%s/slurm/merge.sbatch", p->dir);
    return 0;
}

static int write_shards(const sweep_slurm_job *j, const paths *p, char *err, size_t errlen)
{
    FILE *f = fopen(p->shards, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", p->shards, strerror(errno));
        return -1;
    }
    fprintf(f, "#!/bin/sh\n"
               "# mecbed sweep %s as %d Slurm array tasks, one shard each (written by\n"
               "# `mecbed sweep --slurm %d`). Submit this, then merge.sbatch with\n"
               "# --dependency=afterok:<this job's id> (or let --submit do both).\n", j->name, j->shards,
            j->shards);
    fprintf(f, "#SBATCH --job-name=mecbed-%s\n#SBATCH --array=1-%d\n#SBATCH --output=%s/slurm/shard-%%a.log\n",
            j->name, j->shards, p->dir);
    if (j->exclusive)
        fputs("#SBATCH --exclusive\n# run mode: measured runs need the whole machine (and root)\n", f);
    fputs("cd ", f);
    sh_quote(f, p->cwd);
    fputs(" || exit 1\nexec ", f);
    sh_quote(f, p->exe);
    fputs(" sweep ", f);
    sh_quote(f, p->conf);
    fprintf(f, "%s%s%s", j->quick ? " --quick" : "", j->no_times ? " --no-times" : "", " --no-plots");
    if (p->types[0]) {
        fputs(" --node-types ", f);
        sh_quote(f, p->types);
    }
    for (int i = 0; i < j->n_plugins; i++) {
        char abs[PATH_MAX];
        fputs(" --policy-plugin ", f);
        sh_quote(f, strchr(j->plugins[i], '/') && realpath(j->plugins[i], abs) ? abs : j->plugins[i]);
    }
    fprintf(f, " --resume --shard \"$SLURM_ARRAY_TASK_ID/%d\" --out ", j->shards);
    sh_quote(f, p->dir);
    fputs("/shard-\"$SLURM_ARRAY_TASK_ID\"\n", f);
    if (fclose(f) || chmod(p->shards, 0755)) {
        snprintf(err, errlen, "%s: %s", p->shards, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_merge(const sweep_slurm_job *j, const paths *p, char *err, size_t errlen)
{
    FILE *f = fopen(p->merge, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", p->merge, strerror(errno));
        return -1;
    }
    fprintf(f, "#!/bin/sh\n# Merge the %d shards of mecbed sweep %s into one result folder.\n", j->shards,
            j->name);
    fprintf(f, "#SBATCH --job-name=mecbed-%s-merge\n#SBATCH --output=%s/slurm/merge.log\ncd ", j->name, p->dir);
    sh_quote(f, p->cwd);
    fputs(" || exit 1\nexec ", f);
    sh_quote(f, p->exe);
    fprintf(f, " sweep merge%s --out ", j->no_plots ? " --no-plots" : "");
    sh_quote(f, p->dir);
    for (int i = 1; i <= j->shards; i++) {
        char d[PATH_MAX + 32];
        snprintf(d, sizeof d, "%s/shard-%d", p->dir, i);
        fputc(' ', f);
        sh_quote(f, d);
    }
    fputc('\n', f);
    if (fclose(f) || chmod(p->merge, 0755)) {
        snprintf(err, errlen, "%s: %s", p->merge, strerror(errno));
        return -1;
    }
    return 0;
}

/* sbatch --parsable [--dependency=afterok:dep] script: the job id. */
static int sbatch(const char *script, const char *dep, char *id, size_t idlen, char *err, size_t errlen)
{
    int fd[2];
    if (pipe(fd)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    char depopt[128];
    snprintf(depopt, sizeof depopt, "--dependency=afterok:%s", dep ? dep : "");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (dep)
            execlp("sbatch", "sbatch", "--parsable", depopt, script, (char *)NULL);
        else
            execlp("sbatch", "sbatch", "--parsable", script, (char *)NULL);
        fprintf(stderr, "mecbed sweep: cannot run sbatch: %s (is Slurm installed? apt-get install slurm-client)\n",
                strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    char buf[256] = "";
    size_t got = 0;
    ssize_t k;
    while (pid > 0 && got < sizeof buf - 1 && (k = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = 0;
    close(fd[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
        snprintf(err, errlen, "sbatch %s failed (exit %d)", script, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    buf[strcspn(buf, ";\n")] = 0; /* "id" or "id;cluster" */
    if (!buf[0] || strspn(buf, "0123456789_") != strlen(buf)) {
        snprintf(err, errlen, "sbatch %s: unexpected reply '%s'", script, buf);
        return -1;
    }
    snprintf(id, idlen, "%s", buf);
    return 0;
}

int sweep_slurm_write(const sweep_slurm_job *j, int submit, char *array_id, char *merge_id, size_t idlen,
                      char *err, size_t errlen)
{
    paths p;
    if (resolve(j, &p, err, errlen) || write_shards(j, &p, err, errlen) || write_merge(j, &p, err, errlen))
        return -1;
    if (!submit)
        return 0;
    if (sbatch(p.shards, NULL, array_id, idlen, err, errlen))
        return -1;
    return sbatch(p.merge, array_id, merge_id, idlen, err, errlen);
}
