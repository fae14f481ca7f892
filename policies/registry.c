/* The policy registry, plugin loading and sessions (policy.h). Built-ins
 * and plugins register through mb_policy_register alike, as in Linux's
 * tcp_register_congestion_control. */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

#include "builtin.h"
#include "mecbed/cost.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"

#define MAX_POLICIES 64

static const mb_policy_ops *registry[MAX_POLICIES];
static char *origin[MAX_POLICIES]; /* the plugin's path; NULL for built-ins */
static int n_registered;

/* Version 2 is the oldest ABI spoken: version 1 plugins read the graph and
 * plan layouts directly, which are no longer part of the ABI. */
#define MIN_ABI_VERSION 2
#define FIELD_END(f) (offsetof(mb_policy_ops, f) + sizeof(((mb_policy_ops *)0)->f))
/* The fields of version 2; a struct smaller than this lacks `replan`. */
#define OPS_V2_SIZE FIELD_END(replan)
/* Version 3 added `options`. */
#define OPS_V3_SIZE FIELD_END(options)

/* The declared options of a version 3 policy (NULL for version 2, which
 * has only option_keys). */
static const mb_policy_option *typed_options(const mb_policy_ops *ops)
{
    return ops->abi_version >= 3 && ops->struct_size >= OPS_V3_SIZE ? ops->options : NULL;
}

int mb_policy_option_count(const mb_policy_ops *ops)
{
    int n = 0;
    const mb_policy_option *o = typed_options(ops);
    if (o) {
        while (o[n].name)
            n++;
        return n;
    }
    for (const char *const *k = ops->option_keys; k && *k; k++)
        n++;
    return n;
}

mb_policy_option mb_policy_option_at(const mb_policy_ops *ops, int i)
{
    mb_policy_option r = {NULL, -1, NULL, NULL};
    if (i < 0 || i >= mb_policy_option_count(ops))
        return r;
    const mb_policy_option *o = typed_options(ops);
    if (o)
        return o[i];
    r.name = ops->option_keys[i]; /* version 2: a key without type, default or help */
    return r;
}

const char *mb_policy_option_type_name(int type)
{
    switch (type) {
    case MB_OPT_STRING: return "string";
    case MB_OPT_NUMBER: return "number";
    case MB_OPT_INT: return "int";
    case MB_OPT_BOOL: return "bool";
    default: return "any";
    }
}

int mb_policy_register(const mb_policy_ops *ops, char *err, size_t errlen)
{
    if (!ops) {
        snprintf(err, errlen, "policy: NULL ops");
        return -1;
    }
    const char *name = ops->name ? ops->name : "";
    if (ops->abi_version < MIN_ABI_VERSION || ops->abi_version > MB_POLICY_ABI_VERSION) {
        snprintf(err, errlen,
                 "policy '%s': built for plugin ABI version %d, this mecbed speaks versions %d..%d "
                 "(rebuild the plugin against this mecbed's policy.h)",
                 name, ops->abi_version, MIN_ABI_VERSION, MB_POLICY_ABI_VERSION);
        return -1;
    }
    size_t need = ops->abi_version >= 3 ? OPS_V3_SIZE : OPS_V2_SIZE;
    if (ops->struct_size < need) {
        snprintf(err, errlen, "policy '%s': ops struct is %zu bytes, ABI version %d needs %zu", name,
                 ops->struct_size, ops->abi_version, need);
        return -1;
    }
    if (!*name) {
        snprintf(err, errlen, "policy: no name");
        return -1;
    }
    for (const char *c = name; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-')) {
            snprintf(err, errlen, "policy '%s': names use a-z, 0-9, '_' and '-' only", name);
            return -1;
        }
    if (strlen(name) >= sizeof(((mb_plan *)0)->policy)) {
        snprintf(err, errlen, "policy '%s': name longer than 31 characters", name);
        return -1;
    }
    if (!ops->plan) {
        snprintf(err, errlen, "policy '%s': the required callback 'plan' is missing", name);
        return -1;
    }
    for (int i = 0; i < mb_policy_option_count(ops); i++) {
        mb_policy_option o = mb_policy_option_at(ops, i);
        if (!o.name[0] || strchr(o.name, ',') || strchr(o.name, '=') ||
            (typed_options(ops) && (o.type < MB_OPT_STRING || o.type > MB_OPT_BOOL))) {
            snprintf(err, errlen, "policy '%s': option %d ('%s') has an empty or malformed name or an "
                     "unknown type %d", name, i + 1, o.name, o.type);
            return -1;
        }
    }
    if (mb_policy_find(name)) {
        snprintf(err, errlen, "policy '%s': a policy of that name is already registered", name);
        return -1;
    }
    if (n_registered == MAX_POLICIES) {
        snprintf(err, errlen, "policy '%s': registry full (%d policies)", name, MAX_POLICIES);
        return -1;
    }
    origin[n_registered] = NULL;
    registry[n_registered++] = ops;
    return 0;
}

void mb_policy_set_origin(const char *name, const char *path)
{
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registry[i]->name, name)) {
            free(origin[i]);
            origin[i] = path ? strdup(path) : NULL;
        }
}

const char *mb_policy_origin(const mb_policy_ops *ops)
{
    for (int i = 0; i < n_registered; i++)
        if (registry[i] == ops)
            return origin[i];
    return NULL;
}

int mb_policy_unregister(const char *name)
{
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registry[i]->name, name)) {
            free(origin[i]);
            memmove(&registry[i], &registry[i + 1], sizeof(registry[0]) * (size_t)(n_registered - i - 1));
            memmove(&origin[i], &origin[i + 1], sizeof(origin[0]) * (size_t)(n_registered - i - 1));
            n_registered--;
            return 0;
        }
    return -1;
}

const mb_policy_ops *mb_policy_find(const char *name)
{
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registry[i]->name, name))
            return registry[i];
    return NULL;
}

int mb_policy_count(void) { return n_registered; }

const mb_policy_ops *mb_policy_at(int i)
{
    return i >= 0 && i < n_registered ? registry[i] : NULL;
}

const char *mb_policy_names(char *buf, size_t len, const char *sep)
{
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < n_registered && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%s", i ? sep : "", registry[i]->name);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

/* The index of the declared option named key[0..kl), or -1. */
static int key_index(const mb_policy_ops *ops, const char *key, size_t kl)
{
    for (int i = 0; i < mb_policy_option_count(ops); i++) {
        const char *k = mb_policy_option_at(ops, i).name;
        if (strlen(k) == kl && !strncmp(k, key, kl))
            return i;
    }
    return -1;
}

static int key_declared(const mb_policy_ops *ops, const char *key, size_t kl)
{
    return key_index(ops, key, kl) >= 0;
}

/* Does v[0..n) parse as the type? */
static int value_ok(int type, const char *v, size_t n)
{
    char buf[128], *end;
    if (type == MB_OPT_STRING || type < 0)
        return 1;
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, v, n);
    buf[n] = 0;
    if (type == MB_OPT_NUMBER) {
        double d = strtod(buf, &end);
        return !*end && isfinite(d);
    }
    if (type == MB_OPT_INT) {
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        return !*end && !errno && x >= INT32_MIN && x <= INT32_MAX;
    }
    static const char *const words[] = {"0", "1", "true", "false", "yes", "no", NULL};
    for (int i = 0; words[i]; i++)
        if (!strcmp(buf, words[i]))
            return 1;
    return 0;
}

const char *mb_policy_option_names(const mb_policy_ops *ops, char *buf, size_t len)
{
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < mb_policy_option_count(ops) && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", mb_policy_option_at(ops, i).name);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

int mb_policy_check_options(const mb_policy_ops *ops, const char *options, char *err,
                            size_t errlen)
{
    for (const char *s = options; s && *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (len && (!eq || eq == s)) {
            snprintf(err, errlen, "policy %s: option '%.*s' is not key=value", ops->name,
                     (int)len, s);
            return -1;
        }
        int k = len ? key_index(ops, s, (size_t)(eq - s)) : -1;
        if (len && k < 0) {
            char known[256];
            mb_policy_option_names(ops, known, sizeof(known));
            snprintf(err, errlen, "policy %s: unknown option '%.*s' (%s%s)", ops->name,
                     (int)(eq - s), s, known[0] ? "it takes: " : "it takes no options",
                     known);
            return -1;
        }
        if (len) {
            mb_policy_option o = mb_policy_option_at(ops, k);
            size_t vl = len - (size_t)(eq + 1 - s);
            if (!value_ok(o.type, eq + 1, vl)) {
                snprintf(err, errlen, "policy %s: option %s=%.*s: expected %s", ops->name, o.name,
                         (int)vl, eq + 1,
                         o.type == MB_OPT_NUMBER ? "a number"
                         : o.type == MB_OPT_INT  ? "a whole number"
                                                 : "0, 1, true, false, yes or no");
                return -1;
            }
        }
        s = end ? end + 1 : NULL;
    }
    return 0;
}

const char *mb_policy_options_for(const mb_policy_ops *ops, const char *options, char *buf,
                                  size_t len)
{
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (const char *s = options; s && *s && at < len;) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (eq && key_declared(ops, s, (size_t)(eq - s)))
            at += (size_t)snprintf(buf + at, len - at, "%s%.*s", at ? "," : "", (int)n, s);
        s = end ? end + 1 : NULL;
    }
    return buf;
}

/* A policy's own message may start with its name; the host adds
 * "policy NAME: " itself, so drop the policy's copy rather than say it twice. */
static const char *unprefixed(const char *name, const char *msg)
{
    size_t n = strlen(name);
    return !strncmp(msg, name, n) && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

int mb_policy_load(const char *path_or_name, const char **name_out, char *err, size_t errlen)
{
    char path[4096];
    size_t len = strlen(path_or_name);
    if (strchr(path_or_name, '/') || (len > 3 && !strcmp(path_or_name + len - 3, ".so"))) {
        snprintf(path, sizeof(path), "%s", path_or_name);
    } else if (mb_policy_plugin_find(path_or_name, path, sizeof(path))) {
        char dirs[1024];
        snprintf(err, errlen, "policy plugin '%s' not found: no %s.so in the plugin path (%s)",
                 path_or_name, path_or_name, mb_policy_plugin_path(dirs, sizeof(dirs)));
        return -1;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "policy plugin %s: %s", path, dlerror());
        return -1;
    }
    typedef const mb_policy_ops *(*entry_fn)(const mb_host *);
    entry_fn entry;
    *(void **)&entry = dlsym(h, MB_POLICY_PLUGIN_SYMBOL);
    if (!entry) {
        snprintf(err, errlen, "policy plugin %s: no symbol %s (see docs/plugins.md)", path,
                 MB_POLICY_PLUGIN_SYMBOL);
        dlclose(h);
        return -1;
    }
    const mb_policy_ops *ops = entry(mb_policy_host());
    if (!ops) {
        snprintf(err, errlen, "policy plugin %s: %s() returned NULL (it refused this host)", path,
                 MB_POLICY_PLUGIN_SYMBOL);
        dlclose(h);
        return -1;
    }
    /* The same file loaded again (by path and by name, or a sweep's point
     * that names the plugin its parent loaded): already registered. */
    if (ops->name && mb_policy_find(ops->name) == ops) {
        dlclose(h); /* drops the extra reference only */
        if (name_out)
            *name_out = ops->name;
        return 0;
    }
    char e2[512];
    if (mb_policy_register(ops, e2, sizeof(e2))) {
        const mb_policy_ops *other = ops->name ? mb_policy_find(ops->name) : NULL;
        if (other && strstr(e2, "already registered"))
            snprintf(err, errlen, "policy plugin %s: a policy named '%s' is already registered (%s)",
                     path, ops->name, mb_policy_origin(other) ? mb_policy_origin(other) : "built-in");
        else
            snprintf(err, errlen, "policy plugin %s: %s", path, e2);
        dlclose(h);
        return -1;
    }
    char real[4096];
    mb_policy_set_origin(ops->name, realpath(path, real) ? real : path);
    /* The handle stays open while the policy is registered: for the process's life. */
    if (name_out)
        *name_out = ops->name;
    return 0;
}

/* A valid policy name could be a plugin's file name (no path, no suffix). */
static int plugin_name_ok(const char *name)
{
    if (!*name || strlen(name) > 31)
        return 0;
    for (const char *c = name; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || *c == '-'))
            return 0;
    return 1;
}

const mb_policy_ops *mb_policy_find_or_load(const char *name, char *err, size_t errlen)
{
    mb_policy_register_builtins();
    const mb_policy_ops *ops = mb_policy_find(name);
    if (ops)
        return ops;
    char path[4096], names[512], dirs[1024];
    if (plugin_name_ok(name) && !mb_policy_plugin_find(name, path, sizeof(path))) {
        const char *got = NULL;
        char e2[1024];
        if (mb_policy_load(path, &got, e2, sizeof(e2))) {
            snprintf(err, errlen, "%s", e2);
            return NULL;
        }
        if (strcmp(got, name)) {
            snprintf(err, errlen, "policy %s: %s registers a policy named '%s', not '%s'", name, path,
                     got, name);
            return NULL;
        }
        return mb_policy_find(name);
    }
    snprintf(err, errlen,
             "unknown policy '%s' (registered: %s; plugins load with --policy-plugin, or by name "
             "from %s.so in the plugin path: %s)",
             name, mb_policy_names(names, sizeof(names), " "), name,
             mb_policy_plugin_path(dirs, sizeof(dirs)));
    return NULL;
}

/* ---- sessions ---- */

struct mb_policy_session {
    const mb_policy_ops *ops;
    mb_policy_input in;
    char *options;
};

mb_policy_session *mb_policy_session_new(const mb_policy_ops *ops, const mb_graph *g,
                                         const mb_topology *t, const mb_cost_model *c, int device,
                                         mb_objective obj, const char *options, char *err,
                                         size_t errlen)
{
    if (device < 0 || device >= t->n_sites) {
        snprintf(err, errlen, "policy %s: device site %d out of range", ops->name, device);
        return NULL;
    }
    if (mb_policy_check_options(ops, options, err, errlen))
        return NULL;
    mb_policy_session *s = calloc(1, sizeof(*s));
    if (!s || !(s->options = strdup(options ? options : ""))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->ops = ops;
    s->in = (mb_policy_input){.host = mb_policy_host(), .g = g, .topo = t, .cost = c,
                              .device = device, .objective = obj, .options = s->options};
    if (ops->init) {
        void *state = NULL;
        char e2[512] = "";
        if (ops->init(&s->in, &state, e2, sizeof(e2))) {
            snprintf(err, errlen, "policy %s: init: %s", ops->name,
                     e2[0] ? unprefixed(ops->name, e2) : "failed");
            free(s->options);
            free(s);
            return NULL;
        }
        s->in.state = state;
    }
    return s;
}

/* The plan's prediction, as a run executes it. Its steps keep the times at
 * full speed (nodes stretch each step by 1 / share themselves); a plan that
 * holds a share of a server is predicted at that share (the policy's own
 * model, mb_plan_evaluate_shared), with metric latency_alone_ms keeping the
 * latency at full speed, so `plan`, `compare` and `run` print one figure. */
static int predict(mb_plan *p, const mb_cost_model *c, char *err, size_t errlen)
{
    if (mb_plan_evaluate(p, c, err, errlen))
        return -1;
    if (!mb_plan_has_shares(p))
        return 0;
    mb_plan *v = mb_plan_clone(p);
    if (!v || mb_plan_evaluate_shared(v, c, err, errlen)) {
        if (!v)
            snprintf(err, errlen, "out of memory");
        mb_plan_free(v);
        return -1;
    }
    mb_plan_metric_set(p, "latency_alone_ms", p->pred.latency_ms);
    double cut = p->pred.cut_value_ms; /* the policy's own figure */
    p->pred = v->pred;
    p->pred.cut_value_ms = cut;
    mb_plan_free(v);
    return 0;
}

mb_plan *mb_policy_session_plan(mb_policy_session *s, const mb_plan *prev, char *err, size_t errlen)
{
    const mb_policy_ops *ops = s->ops;
    mb_plan *p = mb_plan_new(ops->name, s->in.g, s->in.device);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char e2[512] = "";
    double t0 = mb_now();
    int rc = prev && ops->replan ? ops->replan(&s->in, prev, p, e2, sizeof(e2))
                                 : ops->plan(&s->in, p, e2, sizeof(e2));
    double us = (mb_now() - t0) * 1e6;
    if (rc) {
        snprintf(err, errlen, "policy %s: %s", ops->name,
                 e2[0] ? unprefixed(ops->name, e2) : "plan failed");
        mb_plan_free(p);
        return NULL;
    }
    /* what the policy wrote into the header must still describe this graph */
    snprintf(p->policy, sizeof(p->policy), "%s", ops->name);
    p->device = s->in.device;
    p->graph_hash = 0; /* hashing reads every weight: writers of plan files set it */
    if (mb_plan_validate(p, s->in.g, s->in.topo, e2, sizeof(e2))) {
        snprintf(err, errlen, "policy %s produced an invalid plan: %s", ops->name, e2);
        mb_plan_free(p);
        return NULL;
    }
    if (predict(p, s->in.cost, e2, sizeof(e2))) {
        snprintf(err, errlen, "policy %s: %s", ops->name, unprefixed(ops->name, e2));
        mb_plan_free(p);
        return NULL;
    }
    p->pred.decision_us = us;
    return p;
}

void mb_policy_session_free(mb_policy_session *s)
{
    if (!s)
        return;
    if (s->ops->fini)
        s->ops->fini(s->in.state);
    free(s->options);
    free(s);
}

mb_plan *mb_policy_run(const mb_policy_ops *ops, const mb_graph *g, const mb_topology *t,
                       const mb_cost_model *c, int device, mb_objective obj, const char *options,
                       char *err, size_t errlen)
{
    mb_policy_session *s = mb_policy_session_new(ops, g, t, c, device, obj, options, err, errlen);
    if (!s)
        return NULL;
    mb_plan *p = mb_policy_session_plan(s, NULL, err, errlen);
    mb_policy_session_free(s);
    return p;
}
