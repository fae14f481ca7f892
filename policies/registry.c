/* The policy registry, plugin loading and sessions (policy.h). Built-ins
 * and plugins register through mb_policy_register alike, as in Linux's
 * tcp_register_congestion_control. */
#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "datadir.h"
#include "mecbed/cost.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"

#define MAX_POLICIES 64

static const mb_policy_ops *registry[MAX_POLICIES];
static int n_registered;

/* Version 2 is the oldest ABI spoken: version 1 plugins read the graph and
 * plan layouts directly, which are no longer part of the ABI. */
#define MIN_ABI_VERSION 2
/* The fields of version 2; a struct smaller than this lacks `replan`. */
#define OPS_V2_SIZE (offsetof(mb_policy_ops, replan) + sizeof(((mb_policy_ops *)0)->replan))

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
    if (ops->struct_size < OPS_V2_SIZE) {
        snprintf(err, errlen, "policy '%s': ops struct is %zu bytes, ABI version 2 needs %zu", name,
                 ops->struct_size, (size_t)OPS_V2_SIZE);
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
    if (mb_policy_find(name)) {
        snprintf(err, errlen, "policy '%s': a policy of that name is already registered", name);
        return -1;
    }
    if (n_registered == MAX_POLICIES) {
        snprintf(err, errlen, "policy '%s': registry full (%d policies)", name, MAX_POLICIES);
        return -1;
    }
    registry[n_registered++] = ops;
    return 0;
}

int mb_policy_unregister(const char *name)
{
    for (int i = 0; i < n_registered; i++)
        if (!strcmp(registry[i]->name, name)) {
            memmove(&registry[i], &registry[i + 1], sizeof(registry[0]) * (size_t)(n_registered - i - 1));
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

static int key_declared(const mb_policy_ops *ops, const char *key, size_t kl)
{
    for (const char *const *k = ops->option_keys; k && *k; k++)
        if (strlen(*k) == kl && !strncmp(*k, key, kl))
            return 1;
    return 0;
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
        if (len && !key_declared(ops, s, (size_t)(eq - s))) {
            char known[256] = "";
            size_t at = 0;
            for (const char *const *k = ops->option_keys; k && *k && at < sizeof(known); k++)
                at += (size_t)snprintf(known + at, sizeof(known) - at, "%s%s", at ? ", " : "", *k);
            snprintf(err, errlen, "policy %s: unknown option '%.*s' (%s%s)", ops->name,
                     (int)(eq - s), s, known[0] ? "it takes: " : "it takes no options",
                     known);
            return -1;
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
    } else {
        const char *dir = getenv("MECBED_PLUGIN_DIR");
        char exe[2048];
        int found = 0;
        if (dir && *dir) {
            snprintf(path, sizeof(path), "%s/%s.so", dir, path_or_name);
            found = access(path, R_OK) == 0;
        }
        if (!found) {
            mb_datadir_exe_dir(exe, sizeof(exe));
            snprintf(path, sizeof(path), "%s/plugins/%s.so", exe, path_or_name);
            found = access(path, R_OK) == 0;
        }
        if (!found) {
            char rel[512];
            snprintf(rel, sizeof(rel), "lib/mecbed/plugins/%s.so", path_or_name);
            found = mb_datadir_find(rel, path, sizeof(path)) == 0;
        }
        if (!found) {
            snprintf(err, errlen,
                     "policy plugin '%s' not found (looked in $MECBED_PLUGIN_DIR, %s/plugins and "
                     "the install prefix for %s.so)",
                     path_or_name, exe, path_or_name);
            return -1;
        }
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
    char e2[512];
    if (mb_policy_register(ops, e2, sizeof(e2))) {
        snprintf(err, errlen, "policy plugin %s: %s", path, e2);
        dlclose(h);
        return -1;
    }
    /* The handle stays open while the policy is registered: for the process's life. */
    if (name_out)
        *name_out = ops->name;
    return 0;
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
    if (mb_plan_evaluate(p, s->in.cost, e2, sizeof(e2))) {
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
