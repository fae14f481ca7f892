/* Topology files (docs/topology.md), read with inih:
 *
 *   [node device]            role=device, type=phone
 *   [node edge0]             role=edge, type=edge-cpu, address=10.0.0.2:7000 (optional)
 *   [link device edge0]      spec=rate=20mbit,rtt=40ms   up=rate=5mbit   down=...
 *
 * inih (Debian's build) does not hand line numbers to the handler, so we feed
 * it through our own line reader and count lines there: when the handler runs,
 * the line it is looking at is the last one read. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "mecbed/topology.h"
#include "mecbed/readfile.h"

#define TEXT_LEN 1024

typedef struct pending_link {
    char a[32], b[32];
    int line;                /* of the [link] header */
    char spec[TEXT_LEN], up[TEXT_LEN], down[TEXT_LEN];
    int spec_line, up_line, down_line;
} pending_link;

typedef struct topo_reader {
    const char *path;
    FILE *f;
    char *buf; /* the line being read (getline) */
    size_t cap;
    int line;
    int line_too_long;
    mb_topology *t;
    int site_line[MB_MAX_SITES];
    int key_line[MB_MAX_SITES][3]; /* where role=, type=, address= were given (0: not yet) */
    pending_link *links;
    int n_links;
    int cur_site, cur_link;  /* section being read (-1: none) */
    char section[128];
    char err[512];
} topo_reader;

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

static int rfail(topo_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rfail(topo_reader *r, const char *fmt, ...)
{
    if (r->err[0])
        return 0;
    int n = snprintf(r->err, sizeof r->err, "%s:%d: ", r->path, r->line);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->err)
        vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
    va_end(ap);
    return 0; /* tells inih to record an error */
}

/* Node names become parts of namespace names and file names: keep them tame. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 32)
        return 0;
    if (!isalpha((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

static int start_section(topo_reader *r, const char *section);

static char *reader_gets(char *str, int num, void *stream)
{
    topo_reader *r = stream;
    if (r->line_too_long)
        return NULL;
    ssize_t got = getline(&r->buf, &r->cap, r->f);
    if (got <= 0)
        return NULL;
    r->line++;
    if (memchr(r->buf, 0, (size_t)got)) { /* the line would end there */
        r->line_too_long = 1;
        rfail(r, "a NUL byte (not a text file?)");
        return NULL;
    }
    if (got > num - 1) {
        r->line_too_long = 1;
        rfail(r, "line longer than %d characters", num - 2);
        return NULL;
    }
    memcpy(str, r->buf, (size_t)got + 1);
    /* A section header: open it here, since Debian's inih does not call the
     * handler for a section without keys. */
    const char *p = str;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close) {
            size_t len = (size_t)(close - p - 1);
            if (len >= sizeof r->section) {
                rfail(r, "section name too long");
                return NULL;
            }
            /* inih strips spaces around the name: do the same */
            const char *b = p + 1;
            while (b < close && isspace((unsigned char)*b))
                b++, len--;
            while (len && isspace((unsigned char)b[len - 1]))
                len--;
            memcpy(r->section, b, len);
            r->section[len] = 0;
            if (!start_section(r, r->section))
                return NULL;
        }
    }
    return str;
}

static int parse_role(const char *v, mb_role *role)
{
    if (!strcmp(v, "device"))
        *role = MB_ROLE_DEVICE;
    else if (!strcmp(v, "edge"))
        *role = MB_ROLE_EDGE;
    else if (!strcmp(v, "cloud"))
        *role = MB_ROLE_CLOUD;
    else
        return -1;
    return 0;
}

/* strcmp(x, y) == 0, written out: GCC 12 with -fsanitize=address reports a
 * false -Wstringop-overread ("region of size 0") for strcmp on these fields. */
static int same(const char *x, const char *y)
{
    while (*x && *x == *y)
        x++, y++;
    return *x == *y;
}

/* Does pending link l join a and b (either way)? */
static int joins(const pending_link *l, const char *a, const char *b)
{
    return (same(l->a, a) && same(l->b, b)) || (same(l->a, b) && same(l->b, a));
}

static int start_section(topo_reader *r, const char *section)
{
    char kind[16], a[64], b[64], extra[8];
    r->cur_site = r->cur_link = -1;
    int n = sscanf(section, "%15s %63s %63s %7s", kind, a, b, extra);
    if (n >= 1 && !strcmp(kind, "node")) {
        if (n != 2)
            return rfail(r, "[%s]: write [node NAME]", section);
        if (!valid_name(a))
            return rfail(r, "node name '%s': use 1-31 letters, digits, '_' or '-', starting with a letter", a);
        if (mb_topology_find(r->t, a) >= 0)
            return rfail(r, "node '%s' defined twice", a);
        if (r->t->n_sites == MB_MAX_SITES)
            return rfail(r, "more than %d nodes", MB_MAX_SITES);
        mb_site *s = &r->t->sites[r->t->n_sites];
        memset(s, 0, sizeof *s);
        s->role = (mb_role)-1;
        strcpy(s->name, a);
        s->line = r->line;
        r->site_line[r->t->n_sites] = r->line;
        memset(r->key_line[r->t->n_sites], 0, sizeof r->key_line[0]);
        r->cur_site = r->t->n_sites++;
        return 1;
    }
    if (n >= 1 && !strcmp(kind, "link")) {
        if (n != 3)
            return rfail(r, "[%s]: write [link NODE_A NODE_B] (A is the side nearer the device)", section);
        if (strlen(a) >= 32 || strlen(b) >= 32)
            return rfail(r, "[%s]: node name too long", section);
        if (!strcmp(a, b))
            return rfail(r, "[%s]: a link joins two different nodes", section);
        for (int i = 0; i < r->n_links; i++) {
            pending_link *l = &r->links[i];
            if (joins(l, a, b))
                return rfail(r, "link %s-%s defined twice (first at line %d)", a, b, l->line);
        }
        if (r->n_links == MB_MAX_LINKS)
            return rfail(r, "more than %d links", MB_MAX_LINKS);
        pending_link *l = &r->links[r->n_links];
        memset(l, 0, sizeof *l);
        strcpy(l->a, a);
        strcpy(l->b, b);
        l->line = r->line;
        r->cur_link = r->n_links++;
        return 1;
    }
    return rfail(r, "unknown section [%s] (expected [node NAME] or [link A B])", section);
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    topo_reader *r = user;
    if (r->err[0])
        return 0;
    /* sections are opened by the line reader; inih must agree on the name */
    if (r->cur_site < 0 && r->cur_link < 0)
        return rfail(r, "'%s' outside a [node NAME] or [link A B] section", name);
    if (strcmp(section, r->section))
        return rfail(r, "section [%s] not understood", section);
    if (r->cur_site >= 0) {
        mb_site *s = &r->t->sites[r->cur_site];
        static const char *const keys[3] = {"role", "type", "address"};
        for (int k = 0; k < 3; k++)
            if (!strcmp(name, keys[k])) {
                int *seen = &r->key_line[r->cur_site][k];
                if (*seen)
                    return rfail(r, "%s given twice for node '%s' (first at line %d)", name, s->name, *seen);
                *seen = r->line;
            }
        if (!strcmp(name, "role")) {
            if (parse_role(value, &s->role))
                return rfail(r, "role=%s: expected device, edge or cloud", value);
        } else if (!strcmp(name, "type")) {
            if (strlen(value) >= sizeof s->node_type || !value[0])
                return rfail(r, "type=%s: empty or longer than %zu characters", value, sizeof s->node_type - 1);
            strcpy(s->node_type, value);
            s->line = r->line;
        } else if (!strcmp(name, "address")) {
            const char *colon = strrchr(value, ':');
            if (!colon || colon == value || !colon[1] || strlen(value) >= sizeof s->address)
                return rfail(r, "address=%s: expected host:port", value);
            char *end;
            long port = strtol(colon + 1, &end, 10);
            if (*end || port <= 0 || port > 65535)
                return rfail(r, "address=%s: port must be 1..65535", value);
            strcpy(s->address, value);
        } else {
            return rfail(r, "unknown node key '%s' (role, type, address)", name);
        }
        return 1;
    }
    pending_link *l = &r->links[r->cur_link];
    char *dst;
    int *line;
    if (!strcmp(name, "spec"))
        dst = l->spec, line = &l->spec_line;
    else if (!strcmp(name, "up"))
        dst = l->up, line = &l->up_line;
    else if (!strcmp(name, "down"))
        dst = l->down, line = &l->down_line;
    else
        return rfail(r, "unknown link key '%s' (spec, up, down)", name);
    if (*line)
        return rfail(r, "%s given twice (first at line %d)", name, *line);
    if (strlen(value) >= TEXT_LEN)
        return rfail(r, "%s: longer than %d characters", name, TEXT_LEN - 1);
    strcpy(dst, value);
    *line = r->line;
    /* check this piece alone now, so its error points at its own line */
    mb_link_spec tmp;
    char e[300];
    if (mb_linkspec_parse(value, &tmp, e, sizeof e))
        return rfail(r, "%s: %s", name, e);
    return 1;
}

/* Prefix each key of `text` with "up." / "down.", refusing keys that already
 * have a prefix or cannot take one. */
static int prefix_keys(const char *text, const char *prefix, char *out, size_t outlen, char *err, size_t errlen)
{
    char buf[TEXT_LEN];
    snprintf(buf, sizeof buf, "%s", text);
    size_t used = 0;
    out[0] = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        if (!strncmp(tok, "up.", 3) || !strncmp(tok, "down.", 5))
            return fail(err, errlen, "'%s': keys in up=/down= take no direction prefix", tok);
        if (!strncmp(tok, "mtu=", 4) || !strncmp(tok, "rtt=", 4) || !strncmp(tok, "ns3=", 4))
            return fail(err, errlen, "'%s' applies to the whole link: put it in spec=", tok);
        int n = snprintf(out + used, outlen - used, "%s%s.%s", used ? "," : "", prefix, tok);
        if (n < 0 || (size_t)n >= outlen - used)
            return fail(err, errlen, "link spec too long");
        used += (size_t)n;
    }
    return 0;
}

static int finish(topo_reader *r, char *err, size_t errlen)
{
    mb_topology *t = r->t;
    for (int i = 0; i < t->n_sites; i++)
        if ((int)t->sites[i].role < 0)
            return fail(err, errlen, "%s:%d: node '%s' has no role= (device, edge or cloud)", r->path,
                        r->site_line[i], t->sites[i].name);
    if (t->n_sites == 0)
        return fail(err, errlen, "%s: no [node NAME] sections", r->path);
    int devices = 0;
    for (int i = 0; i < t->n_sites; i++)
        devices += t->sites[i].role == MB_ROLE_DEVICE;
    if (!devices)
        return fail(err, errlen, "%s: no node has role=device", r->path);
    t->n_links = 0;
    for (int i = 0; i < r->n_links; i++) {
        pending_link *l = &r->links[i];
        int a = mb_topology_find(t, l->a), b = mb_topology_find(t, l->b);
        if (a < 0 || b < 0)
            return fail(err, errlen, "%s:%d: [link %s %s]: no node named '%s'", r->path, l->line, l->a, l->b,
                        a < 0 ? l->a : l->b);
        if (!l->spec_line && !l->up_line && !l->down_line)
            return fail(err, errlen, "%s:%d: [link %s %s] has no spec=, up= or down=", r->path, l->line, l->a, l->b);
        char full[3 * TEXT_LEN + 64], piece[TEXT_LEN + 256], e[300];
        snprintf(full, sizeof full, "%s", l->spec);
        const char *texts[2] = {l->up, l->down};
        const char *prefixes[2] = {"up", "down"};
        int lines[2] = {l->up_line, l->down_line};
        for (int k = 0; k < 2; k++) {
            if (!lines[k])
                continue;
            if (prefix_keys(texts[k], prefixes[k], piece, sizeof piece, e, sizeof e))
                return fail(err, errlen, "%s:%d: %s: %s", r->path, lines[k], prefixes[k], e);
            size_t used = strlen(full);
            snprintf(full + used, sizeof full - used, "%s%s", used ? "," : "", piece);
        }
        mb_topo_link *tl = &t->links[t->n_links];
        if (mb_linkspec_parse(full, &tl->spec, e, sizeof e)) {
            int line = l->down_line ? l->down_line : l->up_line ? l->up_line : l->spec_line;
            return fail(err, errlen, "%s:%d: [link %s %s]: %s", r->path, line, l->a, l->b, e);
        }
        tl->a = a;
        tl->b = b;
        t->n_links++;
    }
    return 0;
}

int mb_topology_read(const char *path, mb_topology *t, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    topo_reader *r = calloc(1, sizeof *r);
    if (!r)
        return fail(err, errlen, "%s: out of memory", path);
    r->links = calloc(MB_MAX_LINKS, sizeof *r->links);
    if (!r->links) {
        free(r);
        return fail(err, errlen, "%s: out of memory", path);
    }
    int rc = -1;
    r->path = path;
    r->t = t;
    r->cur_site = r->cur_link = -1;
    memset(t, 0, sizeof *t);
    r->f = mb_fopen_regular(path, MB_READ_LIMIT_TEXT, err, errlen);
    if (!r->f)
        goto out;
    int ret = ini_parse_stream(reader_gets, r, handler, r);
    if (r->err[0]) {
        fail(err, errlen, "%s", r->err);
        goto out;
    }
    if (ret > 0) {
        fail(err, errlen, "%s:%d: not an INI line (expected [section] or key=value)", path, ret);
        goto out;
    }
    if (ret < 0) {
        fail(err, errlen, "%s: could not read (%s)", path, ret == -2 ? "out of memory" : "I/O error");
        goto out;
    }
    if (ferror(r->f)) {
        fail(err, errlen, "%s: read error", path);
        goto out;
    }
    rc = finish(r, err, errlen);
out:
    if (r->f)
        fclose(r->f);
    free(r->buf);
    free(r->links);
    free(r);
    if (rc)
        memset(t, 0, sizeof *t);
    return rc;
}

int mb_topology_from_link(const char *spec, mb_topology *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (mb_linkspec_parse(spec, &t->links[0].spec, err, errlen))
        return -1;
    t->n_sites = 2;
    strcpy(t->sites[0].name, "device");
    t->sites[0].role = MB_ROLE_DEVICE;
    strcpy(t->sites[1].name, "edge0");
    t->sites[1].role = MB_ROLE_EDGE;
    t->links[0].a = 0;
    t->links[0].b = 1;
    t->n_links = 1;
    return 0;
}

int mb_topology_star(const char *spec, int n, mb_topology *t, char *err, size_t errlen)
{
    if (n == 1)
        return mb_topology_from_link(spec, t, err, errlen);
    if (n < 1 || n >= MB_MAX_SITES) {
        snprintf(err, errlen, "a star of %d devices: 1 to %d", n, MB_MAX_SITES - 1);
        return -1;
    }
    memset(t, 0, sizeof *t);
    mb_link_spec sp;
    if (mb_linkspec_parse(spec, &sp, err, errlen))
        return -1;
    for (int i = 0; i < n; i++) {
        snprintf(t->sites[i].name, sizeof t->sites[i].name, "dev%d", i);
        t->sites[i].role = MB_ROLE_DEVICE;
        t->links[i].spec = sp;
        t->links[i].a = i;
        t->links[i].b = n;
    }
    strcpy(t->sites[n].name, "edge0");
    t->sites[n].role = MB_ROLE_EDGE;
    t->n_sites = n + 1;
    t->n_links = n;
    return 0;
}

int mb_topology_find(const mb_topology *t, const char *name)
{
    for (int i = 0; i < t->n_sites; i++)
        if (!strcmp(t->sites[i].name, name))
            return i;
    return -1;
}

int mb_topology_link_between(const mb_topology *t, int a, int b)
{
    for (int i = 0; i < t->n_links; i++)
        if ((t->links[i].a == a && t->links[i].b == b) || (t->links[i].a == b && t->links[i].b == a))
            return i;
    return -1;
}
