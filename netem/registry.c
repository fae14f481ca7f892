/* The link-backend registry (backend.h's NET_BACKENDS table): lookup and
 * enumeration for help text and validation (link.h), and the check of
 * backend-specific link-spec keys that core's parser hands over
 * (mb_linkspec_set_extra_check): a key no backend declares is unknown, and
 * the backend that declares a spec's keys validates them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "mecbed/link.h"
#include "mecbed/linkspec.h"

#define NET_BACKEND_REF(n) &net_backend_##n,
static const net_backend *const backends[] = {NET_BACKENDS(NET_BACKEND_REF)};
#undef NET_BACKEND_REF
#define N_BACKENDS ((int)(sizeof backends / sizeof backends[0]))

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

const net_backend *net_backend_find(const char *name)
{
    if (!name || !*name)
        return backends[0];
    for (int i = 0; i < N_BACKENDS; i++)
        if (!strcmp(backends[i]->name, name))
            return backends[i];
    return NULL;
}

int mb_net_backend_count(void) { return N_BACKENDS; }

const char *mb_net_backend_name(int i) { return i >= 0 && i < N_BACKENDS ? backends[i]->name : NULL; }

const char *mb_net_backend_summary(int i)
{
    return i >= 0 && i < N_BACKENDS ? backends[i]->summary : NULL;
}

const char *const *mb_net_backend_keys(int i)
{
    return i >= 0 && i < N_BACKENDS ? backends[i]->keys : NULL;
}

const char *const *mb_net_backends(void)
{
    static const char *names[N_BACKENDS + 1];
    for (int i = 0; i < N_BACKENDS; i++)
        names[i] = backends[i]->name;
    return names;
}

const char *mb_net_backend_list(char *buf, size_t len, const char *sep)
{
    size_t at = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < N_BACKENDS && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s%s", i ? sep : "", backends[i]->name);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    return buf;
}

static int declares(const net_backend *be, const char *key, size_t kl)
{
    for (const char *const *k = be->keys; k && *k; k++)
        if (strlen(*k) == kl && !strncmp(*k, key, kl))
            return 1;
    return 0;
}

static const net_backend *owner_of(const char *key, size_t kl)
{
    for (int i = 0; i < N_BACKENDS; i++)
        if (declares(backends[i], key, kl))
            return backends[i];
    return NULL;
}

/* "ns3 (ns3: ns3, distance, ...)" for the unknown-key message. */
static void backend_keys_text(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < N_BACKENDS && at < len; i++) {
        if (!backends[i]->keys || !backends[i]->keys[0])
            continue;
        at += (size_t)snprintf(buf + at, len - at, "%s%s backend:", at ? "; " : "", backends[i]->name);
        for (const char *const *k = backends[i]->keys; *k && at < len; k++)
            at += (size_t)snprintf(buf + at, len - at, " %s", *k);
    }
}

/* Each item of s->extra: its key and the key's length. Returns the next item. */
static const char *next_key(const char *p, size_t *kl)
{
    const char *eq = strchr(p, '=');
    *kl = eq ? (size_t)(eq - p) : strlen(p);
    const char *end = strchr(p, ',');
    return end ? end + 1 : NULL;
}

int mb_net_check_spec_keys(const mb_link_spec *s, char *err, size_t errlen)
{
    const net_backend *owner = NULL;
    const char *owner_key = NULL;
    size_t owner_kl = 0;
    for (const char *p = s->extra; p && *p;) {
        size_t kl;
        const char *next = next_key(p, &kl);
        const net_backend *be = owner_of(p, kl);
        if (!be) {
            char keys[512];
            backend_keys_text(keys, sizeof keys);
            return fail(err, errlen, "link spec: unknown key '%.*s' (known: %s; link backends' keys: %s)",
                        (int)kl, p, mb_linkspec_generic_keys(), keys[0] ? keys : "none");
        }
        if (owner && be != owner)
            return fail(err, errlen, "link spec: '%.*s' is the %s backend's key and '%.*s' the %s backend's: "
                        "one link has one backend", (int)owner_kl, owner_key, owner->name, (int)kl, p, be->name);
        owner = be, owner_key = p, owner_kl = kl;
        p = next;
    }
    return owner && owner->validate ? owner->validate(s, err, errlen) : 0;
}

/* Installed when netem is part of the program (static constructor: the
 * parser lives below netem and cannot call up into it). */
__attribute__((constructor)) static void install_extra_check(void)
{
    mb_linkspec_set_extra_check(mb_net_check_spec_keys);
}

int mb_net_check(const char *backend, const mb_link_spec *spec, char *err, size_t errlen)
{
    const net_backend *be = net_backend_find(backend);
    if (!be) {
        char names[128];
        return fail(err, errlen, "unknown link backend '%s' (%s)", backend,
                    mb_net_backend_list(names, sizeof names, ", "));
    }
    /* another backend's keys: say which backend they need */
    for (const char *p = spec->extra; p && *p;) {
        size_t kl;
        const char *next = next_key(p, &kl);
        if (!declares(be, p, kl)) {
            const net_backend *o = owner_of(p, kl);
            int vl = (int)(next ? (size_t)(next - p - 1) : strlen(p));
            return fail(err, errlen, "the %s backend cannot use the link key %.*s: use --backend %s", be->name,
                        vl, p, o ? o->name : "?");
        }
        p = next;
    }
    return be->check(spec, err, errlen);
}
