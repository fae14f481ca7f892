/* Where policy plugins are found (policy_host.h): the plugin path, lookup
 * of <dir>/<name>.so along it, and loading every plugin on it (for
 * `mecbed policies`). */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"
#include "mecbed/policy_host.h"

#ifndef MB_PREFIX
#define MB_PREFIX "/usr/local"
#endif

/* Append dir unless empty or already present (by real path when it exists). */
static void add_dir(char dirs[][PATH_MAX], int *n, int max, const char *dir)
{
    if (!dir || !*dir || *n >= max)
        return;
    char real[PATH_MAX];
    const char *d = realpath(dir, real) ? real : dir;
    for (int i = 0; i < *n; i++)
        if (!strcmp(dirs[i], d))
            return;
    snprintf(dirs[(*n)++], PATH_MAX, "%s", d);
}

int mb_policy_plugin_dirs(char dirs[][PATH_MAX], int max)
{
    int n = 0;
    const char *env = getenv("MECBED_PLUGIN_PATH");
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save))
            add_dir(dirs, &n, max, t);
        free(copy);
    }
    add_dir(dirs, &n, max, getenv("MECBED_PLUGIN_DIR")); /* the older, single-folder name */
    add_dir(dirs, &n, max, ".");                         /* where docs/plugins.md builds one */
    char exe[PATH_MAX], d[PATH_MAX + 32];
    mb_datadir_exe_dir(exe, sizeof(exe));
    if (exe[0]) {
        snprintf(d, sizeof(d), "%s/plugins", exe); /* build/mecbed: build/plugins */
        add_dir(dirs, &n, max, d);
        snprintf(d, sizeof(d), "%s/../lib/mecbed/plugins", exe); /* PREFIX/bin/mecbed */
        add_dir(dirs, &n, max, d);
    }
    add_dir(dirs, &n, max, MB_PREFIX "/lib/mecbed/plugins");
    return n;
}

const char *mb_policy_plugin_path(char *buf, size_t len)
{
    char dirs[MB_PLUGIN_MAX_DIRS][PATH_MAX];
    int n = mb_policy_plugin_dirs(dirs, MB_PLUGIN_MAX_DIRS);
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < n && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%s", i ? ":" : "", dirs[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

int mb_policy_plugin_find(const char *name, char *out, size_t len)
{
    char dirs[MB_PLUGIN_MAX_DIRS][PATH_MAX];
    int n = mb_policy_plugin_dirs(dirs, MB_PLUGIN_MAX_DIRS);
    for (int i = 0; i < n; i++) {
        snprintf(out, len, "%s/%s.so", dirs[i], name);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

static int is_so(const struct dirent *e)
{
    size_t l = strlen(e->d_name);
    return l > 3 && !strcmp(e->d_name + l - 3, ".so") && e->d_name[0] != '.';
}

int mb_policy_load_path(mb_policy_load_cb cb, void *user)
{
    mb_policy_register_builtins();
    char dirs[MB_PLUGIN_MAX_DIRS][PATH_MAX];
    int n = mb_policy_plugin_dirs(dirs, MB_PLUGIN_MAX_DIRS), failed = 0;
    for (int i = 0; i < n; i++) {
        struct dirent **ents = NULL;
        int ne = scandir(dirs[i], &ents, is_so, alphasort);
        for (int k = 0; k < ne; k++) {
            char path[2 * PATH_MAX], err[1024] = "";
            snprintf(path, sizeof(path), "%.*s/%.*s", PATH_MAX - 1, dirs[i], PATH_MAX - 1,
                     ents[k]->d_name);
            const char *name = NULL;
            int rc = mb_policy_load(path, &name, err, sizeof(err));
            failed += rc != 0;
            if (cb)
                cb(path, rc ? NULL : name, rc ? err : NULL, user);
            free(ents[k]);
        }
        free(ents);
    }
    return failed;
}
