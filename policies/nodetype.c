/* Node types from INI files (inih). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadir.h"
#include "mecbed/energy.h"
#include "mecbed/inifile.h"
#include "mecbed/nodetype.h"
#include "mecbed/topology.h"

typedef struct reader {
    mb_nodetype_set *set;
    mb_nodetype *cur;
    char cur_section[64];
    char err[256];
    int first_new; /* index of the first type this file added or replaced */
} reader;

static int parse_num(const char *v, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == v || *end || errno)
        return -1;
    *out = d;
    return 0;
}

static mb_nodetype *section_type(reader *r, const char *section)
{
    if (r->cur && !strcmp(r->cur_section, section))
        return r->cur;
    for (int i = 0; i < r->set->n; i++)
        if (!strcmp(r->set->types[i].name, section)) {
            memset(&r->set->types[i], 0, sizeof(mb_nodetype));
            r->cur = &r->set->types[i];
            goto named;
        }
    if (r->set->n == MB_NODETYPE_MAX)
        return NULL;
    r->cur = &r->set->types[r->set->n++];
    memset(r->cur, 0, sizeof(*r->cur));
named:
    snprintf(r->cur->name, sizeof(r->cur->name), "%s", section);
    snprintf(r->cur_section, sizeof(r->cur_section), "%s", section);
    snprintf(r->cur->radio, sizeof(r->cur->radio), "none");
    snprintf(r->cur->kernels, sizeof(r->cur->kernels), "cpu");
    return r->cur;
}

static int type_kv(reader *r, const char *section, const char *key, const char *value);

/* The reader (inifile.h) names the file and line and has already refused a
 * section or key given twice in the file (a type of another file, such as
 * the defaults, may be redefined: the later file's section replaces it). */
static int on_kv(void *user, const char *section, const char *key, const char *value, const mb_ini_pos *pos,
                 char *err, size_t errlen)
{
    reader *r = user;
    r->err[0] = 0;
    if (pos->continuation && strcmp(key, "source") && strcmp(key, "summary")) {
        snprintf(err, errlen, "%s takes one value: this indented line would continue it", key);
        return -1;
    }
    if (!type_kv(r, section, key, value)) {
        snprintf(err, errlen, "%s", r->err);
        return -1;
    }
    return 0;
}

static int type_kv(reader *r, const char *section, const char *key, const char *value)
{
    if (!section || !*section) {
        snprintf(r->err, sizeof(r->err), "key '%s' outside a [type] section", key);
        return 0;
    }
    if (strlen(section) >= sizeof(r->cur->name)) {
        snprintf(r->err, sizeof(r->err), "type name '%s' too long (max 31)", section);
        return 0;
    }
    mb_nodetype *t = section_type(r, section);
    if (!t) {
        snprintf(r->err, sizeof(r->err), "too many node types (max %d)", MB_NODETYPE_MAX);
        return 0;
    }
    double d;
    double *num = NULL;
    if (!strcmp(key, "gflops"))
        num = &t->gflops;
    else if (!strcmp(key, "speed"))
        num = &t->speed;
    else if (!strcmp(key, "compute_w"))
        num = &t->compute_w;
    else if (!strcmp(key, "idle_w"))
        num = &t->idle_w;
    if (num) {
        if (parse_num(value, &d) || d < 0) {
            snprintf(r->err, sizeof(r->err), "%s: '%s' is not a number >= 0", key, value);
            return 0;
        }
        *num = d;
        return 1;
    }
    if (!strcmp(key, "threads")) {
        if (parse_num(value, &d) || d < 1 || d > 1024 || d != (int)d) {
            snprintf(r->err, sizeof(r->err), "threads: '%s' is not an integer in 1..1024", value);
            return 0;
        }
        t->threads = (int)d;
    } else if (!strcmp(key, "radio")) {
        if (mb_radio_from_name(value) < 0) {
            snprintf(r->err, sizeof(r->err), "radio: '%s' is not one of lte, wifi, 3g, none", value);
            return 0;
        }
        snprintf(t->radio, sizeof(t->radio), "%s", value);
    } else if (!strcmp(key, "kernels")) {
        if (strcmp(value, "cpu") && strcmp(value, "cuda") && strcmp(value, "ref")) {
            snprintf(r->err, sizeof(r->err), "kernels: '%s' is not one of cpu, cuda, ref", value);
            return 0;
        }
        snprintf(t->kernels, sizeof(t->kernels), "%s", value);
    } else if (!strcmp(key, "summary")) {
        /* continuation lines (the same key again, inifile.h) append */
        size_t len = strlen(t->summary);
        snprintf(t->summary + len, sizeof(t->summary) - len, "%s%s", len ? " " : "", value);
    } else if (!strcmp(key, "source")) {
        size_t len = strlen(t->source);
        snprintf(t->source + len, sizeof(t->source) - len, "%s%s", len ? " " : "", value);
    } else {
        snprintf(r->err, sizeof(r->err),
                 "unknown key '%s' (known: summary gflops speed compute_w idle_w radio kernels "
                 "threads source)",
                 key);
        return 0;
    }
    return 1;
}

int mb_nodetypes_read(mb_nodetype_set *set, const char *path, char *err, size_t errlen)
{
    reader r = {.set = set};
    int before = set->n;
    mb_ini_opts io = {.on_kv = on_kv, .user = &r};
    if (mb_ini_read(path, &io, err, errlen))
        return -1;
    (void)before;
    for (int i = 0; i < set->n; i++) {
        mb_nodetype *t = &set->types[i];
        if (t->gflops <= 0 && t->speed <= 0) {
            snprintf(err, errlen, "%s: [%s] needs gflops or speed (> 0)", path, t->name);
            return -1;
        }
    }
    return 0;
}

int mb_nodetypes_load_default(mb_nodetype_set *set, char *err, size_t errlen)
{
    char path[4096];
    if (mb_datadir_find("policies/nodetypes/default.ini", path, sizeof(path))) {
        snprintf(err, errlen,
                 "node types: cannot find policies/nodetypes/default.ini (looked beside the "
                 "binary, in the working directory and the install prefix; set MECBED_DATA to the "
                 "source tree)");
        return -1;
    }
    return mb_nodetypes_read(set, path, err, errlen);
}

const mb_nodetype *mb_nodetypes_find(const mb_nodetype_set *set, const char *name)
{
    for (int i = 0; i < set->n; i++)
        if (!strcmp(set->types[i].name, name))
            return &set->types[i];
    return NULL;
}

int mb_nodetypes_check_sites(const mb_nodetype_set *set, const mb_topology *t, const char *topo_path, char *err,
                             size_t errlen)
{
    for (int i = 0; i < t->n_sites; i++) {
        const mb_site *s = &t->sites[i];
        const char *tn = s->node_type[0] ? s->node_type : mb_nodetype_role_default(s->role);
        if (mb_nodetypes_find(set, tn))
            continue;
        char known[1024] = "";
        size_t used = 0;
        for (int k = 0; k < set->n && used + 1 < sizeof known; k++) {
            int n = snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", set->types[k].name);
            used += n > 0 ? (size_t)n : 0;
        }
        if (topo_path && s->line > 0)
            snprintf(err, errlen, "%s:%d: node '%s': unknown node type '%s' (known: %s)", topo_path, s->line, s->name,
                     tn, known);
        else
            snprintf(err, errlen, "site '%s': unknown node type '%s' (known: %s)", s->name, tn, known);
        return -1;
    }
    return 0;
}

const char *mb_nodetype_role_default(int role)
{
    switch (role) {
    case MB_ROLE_DEVICE:
        return "phone";
    case MB_ROLE_EDGE:
        return "edge-cpu";
    case MB_ROLE_CLOUD:
        return "cloud-gpu";
    default:
        return "this";
    }
}
