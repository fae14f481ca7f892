/* mecbed policies: every policy mecbed can use, built-in and plugin, with
 * its summary and declared options (type, default, help). Plugins are
 * loaded from the plugin path (policy_host.h) and from --policy-plugin;
 * a file on the path that does not load is listed with the reason. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mecbed/policy_host.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed policies [--json] [--policy-plugin P ...] [--no-path] [NAME ...]\n"
               "\n"
               "Lists the partition policies: the built-ins, then every plugin found on the plugin\n"
               "path (each <dir>/*.so; folders in lookup order: $MECBED_PLUGIN_PATH, colon-separated,\n"
               "$MECBED_PLUGIN_DIR, the current folder, <binary's dir>/plugins,\n"
               "<binary's dir>/../lib/mecbed/plugins, PREFIX/lib/mecbed/plugins) and those given\n"
               "with --policy-plugin. For each: its summary and the --policy-opt keys it takes,\n"
               "with type, default and meaning. Files on the path that do not load are listed\n"
               "with the reason. NAMEs: only those policies (a name not yet registered is loaded\n"
               "from <name>.so on the path, as plan, compare, run and sweep do).\n"
               "\n"
               "  --json              one JSON object: plugin_path (folders), policies (name,\n"
               "                      kind builtin|plugin, path, abi_version, summary, options:\n"
               "                      name, type, default, help), refused (path, error)\n"
               "  --policy-plugin P   load a plugin (.so path, or a name on the plugin path)\n"
               "  --no-path           do not scan the plugin path\n"
               "  -h, --help          this text\n"
               "\n"
               "Exit status: 0, or 1 when a --policy-plugin or a NAME cannot be loaded.\n");
}

typedef struct listing {
    cJSON *refused;
} listing;

static void on_file(const char *path, const char *name, const char *err, void *user)
{
    listing *l = user;
    if (name)
        return;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "path", path);
    cJSON_AddStringToObject(r, "error", err);
    cJSON_AddItemToArray(l->refused, r);
}

static cJSON *policy_json(const mb_policy_ops *ops)
{
    cJSON *p = cJSON_CreateObject();
    const char *origin = mb_policy_origin(ops);
    cJSON_AddStringToObject(p, "name", ops->name);
    cJSON_AddStringToObject(p, "kind", origin ? "plugin" : "builtin");
    if (origin)
        cJSON_AddStringToObject(p, "path", origin);
    else
        cJSON_AddNullToObject(p, "path");
    cJSON_AddNumberToObject(p, "abi_version", ops->abi_version);
    cJSON_AddStringToObject(p, "summary", ops->summary ? ops->summary : "");
    cJSON *opts = cJSON_AddArrayToObject(p, "options");
    for (int i = 0; i < mb_policy_option_count(ops); i++) {
        mb_policy_option o = mb_policy_option_at(ops, i);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", o.name);
        cJSON_AddStringToObject(j, "type", mb_policy_option_type_name(o.type));
        if (o.dflt && o.dflt[0])
            cJSON_AddStringToObject(j, "default", o.dflt);
        else
            cJSON_AddNullToObject(j, "default");
        cJSON_AddStringToObject(j, "help", o.help ? o.help : "");
        cJSON_AddItemToArray(opts, j);
    }
    return p;
}

static void policy_text(const mb_policy_ops *ops)
{
    const char *origin = mb_policy_origin(ops);
    printf("%-10s %s\n", ops->name, ops->summary && ops->summary[0] ? ops->summary : "(no summary)");
    if (origin)
        printf("           plugin %s (ABI version %d)\n", origin, ops->abi_version);
    int n = mb_policy_option_count(ops);
    if (!n)
        printf("           takes no options\n");
    for (int i = 0; i < n; i++) {
        mb_policy_option o = mb_policy_option_at(ops, i);
        char key[96];
        snprintf(key, sizeof key, "%s=%s", o.name, o.type < 0 ? "V" : mb_policy_option_type_name(o.type));
        printf("           %-18s %s", key, o.help && o.help[0] ? o.help : "(undocumented)");
        if (o.dflt && o.dflt[0])
            printf(" [default %s]", o.dflt);
        printf("\n");
    }
}

static int selected(int argc, char **argv, const char *name)
{
    if (optind >= argc)
        return 1;
    for (int i = optind; i < argc; i++)
        if (!strcmp(argv[i], name))
            return 1;
    return 0;
}

int cmd_policies(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'},
        {"policy-plugin", required_argument, 0, 'P'},
        {"no-path", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int json = 0, scan = 1, c, rc = 0;
    const char *plugins[16];
    int n_plugins = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'n': scan = 0; break;
        case 'P':
            if (n_plugins == 16) {
                fprintf(stderr, "mecbed policies: at most 16 --policy-plugin options\n");
                return 2;
            }
            plugins[n_plugins++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    mb_policy_register_builtins();
    char err[1536];
    /* explicit plugins first: they win over a file of the same name on the path */
    for (int i = 0; i < n_plugins; i++)
        if (mb_policy_load(plugins[i], NULL, err, sizeof err)) {
            fprintf(stderr, "mecbed policies: %s\n", err);
            rc = 1;
        }
    for (int i = optind; i < argc; i++)
        if (!mb_policy_find_or_load(argv[i], err, sizeof err)) {
            fprintf(stderr, "mecbed policies: %s\n", err);
            rc = 1;
        }
    listing l = {cJSON_CreateArray()};
    if (scan)
        mb_policy_load_path(on_file, &l);
    char dirs[MB_PLUGIN_MAX_DIRS][4096];
    int nd = mb_policy_plugin_dirs(dirs, MB_PLUGIN_MAX_DIRS);
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *path = cJSON_AddArrayToObject(root, "plugin_path");
        for (int i = 0; i < nd; i++)
            cJSON_AddItemToArray(path, cJSON_CreateString(dirs[i]));
        cJSON *arr = cJSON_AddArrayToObject(root, "policies");
        for (int i = 0; i < mb_policy_count(); i++)
            if (selected(argc, argv, mb_policy_at(i)->name))
                cJSON_AddItemToArray(arr, policy_json(mb_policy_at(i)));
        cJSON_AddItemToObject(root, "refused", l.refused);
        char *s = cJSON_PrintUnformatted(root);
        if (s)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(root);
        return rc;
    }
    for (int i = 0; i < mb_policy_count(); i++)
        if (selected(argc, argv, mb_policy_at(i)->name))
            policy_text(mb_policy_at(i));
    if (optind >= argc) {
        printf("\nplugin path:");
        for (int i = 0; i < nd; i++)
            printf(" %s", dirs[i]);
        printf("%s\n", scan ? "" : " (not scanned: --no-path)");
        for (int i = 0; i < cJSON_GetArraySize(l.refused); i++) {
            cJSON *r = cJSON_GetArrayItem(l.refused, i);
            printf("not loaded: %s\n", cJSON_GetObjectItem(r, "error")->valuestring);
        }
    }
    cJSON_Delete(l.refused);
    return rc;
}
