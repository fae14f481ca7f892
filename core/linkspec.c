/* Link spec grammar (include/mecbed/linkspec.h, docs/link-spec.md).
 *
 * A spec is a comma-separated list of key=value items. An unprefixed key sets
 * both directions; "up." / "down." set one direction and override the
 * unprefixed value whatever the order. Setting the same key twice at the same
 * scope is an error. Keys outside this grammar belong to link backends: they
 * are kept verbatim in `extra` and judged by the check netem installs
 * (mb_linkspec_set_extra_check: the backend that declares the key validates
 * it); without one they are unknown keys. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/linkspec.h"

#define MAX_ITEMS 64

/* Keys with a direction; bit index into a "seen" mask per scope. */
enum {
    K_RATE, K_DELAY, K_JITTER, K_LOSS, K_QUEUE, K_AQM, K_TRACE, K_TIMESCALE, K_DUPLICATE, K_CORRUPT, K_REORDER, K_COUNT
};
static const char *const dir_keys[K_COUNT] = {"rate", "delay", "jitter", "loss", "queue", "aqm", "trace",
                                              "timescale", "duplicate", "corrupt", "reorder"};

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

/* Split "12.5mbit" into a finite number and its unit suffix. */
static int split_number(const char *v, double *num, const char **unit)
{
    char *end;
    errno = 0;
    if (!*v || isspace((unsigned char)*v))
        return -1;
    *num = strtod(v, &end);
    if (end == v || errno == ERANGE || !isfinite(*num))
        return -1;
    /* strtod accepts "inf", "nan" and hex floats: refuse them. */
    for (const char *p = v; p < end; p++)
        if (!(isdigit((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+' || *p == 'e' || *p == 'E'))
            return -1;
    *unit = end;
    return 0;
}

static int ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Rate in bit/s. Units: none/bit, k/kbit, m/mbit, g/gbit, optionally "/s"
 * or "ps" after "bit". Bytes-per-second spellings ("mbps", "MB/s") are
 * refused: tc reads "mbps" as megabytes, others as megabits. */
static int parse_rate(const char *v, double *out, char *err, size_t errlen, const char *key)
{
    double x;
    const char *u;
    if (split_number(v, &x, &u))
        return fail(err, errlen, "%s=%s: not a number with a unit (e.g. 20mbit)", key, v);
    char unit[16];
    size_t n = strlen(u);
    if (n >= sizeof unit)
        return fail(err, errlen, "%s=%s: unknown rate unit '%s'", key, v, u);
    for (size_t i = 0; i <= n; i++)
        unit[i] = (char)tolower((unsigned char)u[i]);
    /* strip an optional "/s" or "ps" after "bit" */
    if (n >= 5 && !strcmp(unit + n - 5, "bit/s"))
        unit[n - 2] = 0;
    else if (n >= 5 && !strcmp(unit + n - 5, "bitps"))
        unit[n - 2] = 0;
    double mult;
    if (!strcmp(unit, "") || !strcmp(unit, "bit"))
        mult = 1;
    else if (!strcmp(unit, "k") || !strcmp(unit, "kbit"))
        mult = 1e3;
    else if (!strcmp(unit, "m") || !strcmp(unit, "mbit"))
        mult = 1e6;
    else if (!strcmp(unit, "g") || !strcmp(unit, "gbit"))
        mult = 1e9;
    else if (strstr(unit, "bps") || strstr(unit, "b/s") || strstr(unit, "byte"))
        return fail(err, errlen, "%s=%s: '%s' is ambiguous (bytes or bits?); write bit/s as bit, kbit, mbit or gbit", key, v, u);
    else
        return fail(err, errlen, "%s=%s: unknown rate unit '%s' (use bit, kbit, mbit, gbit or k, m, g)", key, v, u);
    x *= mult;
    if (!(x > 0))
        return fail(err, errlen, "%s=%s: a rate must be > 0 (leave %s out for an unlimited link)", key, v, key);
    if (x > 1e12)
        return fail(err, errlen, "%s=%s: rate above 1 Tbit/s is not a link we can emulate", key, v);
    *out = x;
    return 0;
}

/* Time in seconds: us, ms or s (a unit is required: "10" would be ambiguous). */
static int parse_time(const char *v, double *out, char *err, size_t errlen, const char *key, int allow_zero)
{
    double x;
    const char *u;
    if (split_number(v, &x, &u))
        return fail(err, errlen, "%s=%s: not a time (e.g. 10ms, 500us, 0.1s)", key, v);
    if (ieq(u, "us") || ieq(u, "usec"))
        x *= 1e-6;
    else if (ieq(u, "ms") || ieq(u, "msec"))
        x *= 1e-3;
    else if (ieq(u, "s") || ieq(u, "sec"))
        ;
    else if (!*u)
        return fail(err, errlen, "%s=%s: a time needs a unit (us, ms or s)", key, v);
    else
        return fail(err, errlen, "%s=%s: unknown time unit '%s' (use us, ms or s)", key, v, u);
    if (x < 0 || (!allow_zero && x == 0))
        return fail(err, errlen, "%s=%s: must be %s", key, v, allow_zero ? ">= 0" : "> 0");
    if (x > 3600)
        return fail(err, errlen, "%s=%s: more than an hour is not a link delay", key, v);
    *out = x;
    return 0;
}

/* A probability: "0.5%" or a fraction "0.005". */
static int parse_prob(const char *v, double *out, char *err, size_t errlen, const char *key)
{
    double x;
    const char *u;
    if (split_number(v, &x, &u))
        return fail(err, errlen, "%s=%s: not a probability (e.g. 0.5%% or 0.005)", key, v);
    if (!strcmp(u, "%")) {
        if (x < 0 || x > 100)
            return fail(err, errlen, "%s=%s: a percentage must be within 0..100%%", key, v);
        x /= 100;
    } else if (!*u) {
        if (x < 0 || x > 1)
            return fail(err, errlen, "%s=%s: a fraction must be within 0..1 (write %g%% for a percentage)", key, v, x);
    } else {
        return fail(err, errlen, "%s=%s: unknown unit '%s' (use %% or a plain fraction)", key, v, u);
    }
    *out = x;
    return 0;
}

static int parse_jitter(const char *v, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    char buf[64];
    if (strlen(v) >= sizeof buf)
        return fail(err, errlen, "%s=%s: too long", key, v);
    strcpy(buf, v);
    int dist = MB_JITTER_UNIFORM;
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = 0;
        const char *name = colon + 1;
        if (ieq(name, "uniform"))
            dist = MB_JITTER_UNIFORM;
        else if (ieq(name, "normal"))
            dist = MB_JITTER_NORMAL;
        else if (ieq(name, "pareto"))
            dist = MB_JITTER_PARETO;
        else
            return fail(err, errlen, "%s=%s: unknown distribution '%s' (uniform, normal or pareto)", key, v, name);
    }
    if (parse_time(buf, &d->jitter_s, err, errlen, key, 1))
        return -1;
    d->jitter_dist = d->jitter_s > 0 ? dist : MB_JITTER_NONE;
    return 0;
}

/* loss=P (Bernoulli) or loss=ge:P:R[:LOSS_BAD[:LOSS_GOOD]] (Gilbert-Elliott,
 * netem's "gemodel p r 1-h 1-k" order; defaults 100 % in bad, 0 % in good). */
static int parse_loss(const char *v, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    if (strncasecmp(v, "ge:", 3) && strncasecmp(v, "gilbert:", 8)) {
        if (parse_prob(v, &d->loss, err, errlen, key))
            return -1;
        d->loss_model = d->loss > 0 ? MB_LOSS_BERNOULLI : MB_LOSS_NONE;
        d->ge_p = d->ge_r = d->ge_loss_good = d->ge_loss_bad = 0;
        return 0;
    }
    char buf[128];
    if (strlen(v) >= sizeof buf)
        return fail(err, errlen, "%s=%s: too long", key, v);
    strcpy(buf, strchr(v, ':') + 1);
    double vals[4] = {0, 0, 1, 0};
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (n == 4)
            return fail(err, errlen, "%s=%s: Gilbert-Elliott takes at most 4 values (p:r:loss_bad:loss_good)", key, v);
        char sub[48];
        static const char *names[4] = {"p", "r", "loss_bad", "loss_good"};
        snprintf(sub, sizeof sub, "%s (ge %s)", key, names[n]);
        if (parse_prob(tok, &vals[n], err, errlen, sub))
            return -1;
        n++;
    }
    if (n < 2)
        return fail(err, errlen, "%s=%s: Gilbert-Elliott needs at least p:r (e.g. ge:1%%:30%%)", key, v);
    if (vals[1] == 0 && vals[0] > 0)
        return fail(err, errlen, "%s=%s: r = 0 would leave the bad state never (an endless outage)", key, v);
    d->loss_model = MB_LOSS_GILBERT_ELLIOTT;
    d->ge_p = vals[0];
    d->ge_r = vals[1];
    d->ge_loss_bad = vals[2];
    d->ge_loss_good = vals[3];
    d->loss = 0;
    return 0;
}

/* queue=100p (packets) or queue=64kb / 65536b / 1mb (bytes; k = 1024 as in tc). */
static int parse_queue(const char *v, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    double x;
    const char *u;
    if (split_number(v, &x, &u) || x != floor(x))
        return fail(err, errlen, "%s=%s: not a whole number with a unit (100p or 64kb)", key, v);
    if (x <= 0)
        return fail(err, errlen, "%s=%s: a queue must hold at least one packet", key, v);
    if (ieq(u, "p")) {
        if (x > 1e7)
            return fail(err, errlen, "%s=%s: more than 10^7 packets", key, v);
        d->queue_packets = (long)x;
        d->queue_bytes = 0;
        return 0;
    }
    double mult;
    if (ieq(u, "b"))
        mult = 1;
    else if (ieq(u, "kb"))
        mult = 1024;
    else if (ieq(u, "mb"))
        mult = 1024 * 1024;
    else
        return fail(err, errlen, "%s=%s: unknown queue unit '%s' (p for packets; b, kb, mb for bytes)", key, v, u);
    x *= mult;
    if (x < 64)
        return fail(err, errlen, "%s=%s: a byte queue smaller than 64 bytes cannot hold a packet", key, v);
    if (x > 4e9)
        return fail(err, errlen, "%s=%s: more than 4 GB of queue", key, v);
    d->queue_bytes = (long)x;
    d->queue_packets = 0;
    return 0;
}

static int parse_trace(const char *v, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    size_t n = strlen(v);
    int loop = 1;
    if (n >= 5 && !strcmp(v + n - 5, ":loop"))
        n -= 5;
    else if (n >= 5 && !strcmp(v + n - 5, ":once")) {
        n -= 5;
        loop = 0;
    }
    if (n == 0)
        return fail(err, errlen, "%s=%s: empty trace file name", key, v);
    if (n >= sizeof d->trace)
        return fail(err, errlen, "%s: trace path longer than %d characters", key, MB_PATH_LEN - 1);
    memcpy(d->trace, v, n);
    d->trace[n] = 0;
    d->trace_loop = loop;
    return 0;
}

/* timescale=K: the trace's time dilation (mb_linkspec_dilate), written by
 * mb_linkspec_format so that a dilated spec handed to another process as
 * text (a link helper, ns-3) keeps its stretched trace. */
static int parse_timescale(const char *val, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    double v;
    const char *unit;
    if (split_number(val, &v, &unit) || *unit || !(v >= 1) || v > 1e6)
        return fail(err, errlen, "%s=%s: expected a time dilation factor >= 1", key, val);
    d->time_scale = v;
    return 0;
}

/* reorder=P[:GAP]: netem's reorder P gap GAP (GAP a whole number >= 1) */
static int parse_reorder(const char *val, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    char buf[64];
    if (strlen(val) >= sizeof buf)
        return fail(err, errlen, "%s=%s: too long", key, val);
    strcpy(buf, val);
    char *colon = strchr(buf, ':');
    d->reorder_gap = 0;
    if (colon) {
        *colon = 0;
        char *end;
        errno = 0;
        long g = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || errno || g < 1 || g > 1000000)
            return fail(err, errlen, "%s=%s: the gap after ':' must be a whole number of packets within 1..1000000",
                        key, val);
        d->reorder_gap = g;
    }
    return parse_prob(buf, &d->reorder, err, errlen, key);
}

static int set_dir_key(int k, const char *val, mb_link_dir *d, char *err, size_t errlen, const char *key)
{
    switch (k) {
    case K_RATE: return parse_rate(val, &d->rate_bps, err, errlen, key);
    case K_DELAY: return parse_time(val, &d->delay_s, err, errlen, key, 1);
    case K_JITTER: return parse_jitter(val, d, err, errlen, key);
    case K_LOSS: return parse_loss(val, d, err, errlen, key);
    case K_QUEUE: return parse_queue(val, d, err, errlen, key);
    case K_AQM: return parse_time(val, &d->aqm_target_s, err, errlen, key, 0);
    case K_TRACE: return parse_trace(val, d, err, errlen, key);
    case K_TIMESCALE: return parse_timescale(val, d, err, errlen, key);
    case K_DUPLICATE: return parse_prob(val, &d->duplicate, err, errlen, key);
    case K_CORRUPT: return parse_prob(val, &d->corrupt, err, errlen, key);
    case K_REORDER: return parse_reorder(val, d, err, errlen, key);
    }
    return -1;
}

static int find_dir_key(const char *name)
{
    for (int k = 0; k < K_COUNT; k++)
        if (!strcmp(name, dir_keys[k]))
            return k;
    return -1;
}

typedef struct item {
    char *key, *val;
} item;

/* Keys beyond the grammar: the link backends' (netem installs the check). */
static mb_linkspec_extra_check_fn extra_check;

void mb_linkspec_set_extra_check(mb_linkspec_extra_check_fn fn)
{
    extra_check = fn;
}

#define GENERIC_KEYS                                                                                               \
    "rate, delay, rtt, jitter, loss, queue, aqm, trace (with format, column, unit, time_column, time_unit, "            \
    "duplicates, gaps), timescale, duplicate, corrupt, reorder, mtu; up./down. prefixes"

const char *mb_linkspec_generic_keys(void)
{
    return GENERIC_KEYS;
}

static int add_extra(mb_link_spec *s, const char *key, const char *val, char *err, size_t errlen)
{
    char buf[8];
    if (mb_linkspec_extra_get(s, key, buf, sizeof buf))
        return fail(err, errlen, "link spec: %s given twice", key);
    size_t used = strlen(s->extra);
    int n = snprintf(s->extra + used, sizeof s->extra - used, "%s%s=%s", used ? "," : "", key, val);
    if (n < 0 || (size_t)n >= sizeof s->extra - used) {
        s->extra[used] = 0;
        return fail(err, errlen, "link spec: backend keys longer than %zu characters", sizeof s->extra - 1);
    }
    return 0;
}

const char *mb_linkspec_extra_get(const mb_link_spec *s, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = s->extra; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > kl && !strncmp(p, key, kl) && p[kl] == '=') {
            snprintf(buf, len, "%.*s", (int)(n - kl - 1), p + kl + 1);
            return buf;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

/* Split text (copied into buf) into key=value items. */
static int tokenise(const char *text, char *buf, item *items, int *n_items, char *err, size_t errlen)
{
    char *p = buf;
    *n_items = 0;
    /* key=value separated by commas; whitespace around items is allowed */
    while (*p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        while (isspace((unsigned char)*p))
            p++;
        char *e = p + strlen(p);
        while (e > p && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (!*p)
            return fail(err, errlen, "link spec '%s': empty item (stray comma?)", text);
        char *eq = strchr(p, '=');
        if (!eq || eq == p)
            return fail(err, errlen, "link spec: '%s' is not key=value", p);
        *eq = 0;
        if (*n_items == MAX_ITEMS)
            return fail(err, errlen, "link spec: more than %d items", MAX_ITEMS);
        items[*n_items].key = p;
        items[*n_items].val = eq + 1;
        (*n_items)++;
        if (!comma)
            break;
        p = comma + 1;
        if (!*p)
            return fail(err, errlen, "link spec '%s': trailing comma", text);
    }
    return 0;
}

/* What one parse has seen so far. */
typedef struct parse_state {
    mb_link_spec s;
    unsigned seen_both, seen_up, seen_down;
    int seen_mtu, seen_rtt;
    double rtt;
} parse_state;

static int parse_mtu(parse_state *st, const char *val, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long m = strtol(val, &end, 10);
    if (st->seen_mtu++)
        return fail(err, errlen, "link spec: mtu given twice");
    if (end == val || *end || errno)
        return fail(err, errlen, "mtu=%s: not a whole number of bytes", val);
    if (m < 576 || m > 65535)
        return fail(err, errlen, "mtu=%s: must be within 576..65535 bytes", val);
    st->s.mtu = (int)m;
    return 0;
}

/* One item of the given pass (0: unprefixed keys, 1: up./down. overrides). */
static int apply_item(parse_state *st, const item *it, int pass, char *err, size_t errlen)
{
    const char *key = it->key, *val = it->val, *name = key;
    mb_link_dir *dir = NULL;
    unsigned *seen = &st->seen_both;
    int prefixed = 0;
    if (!strncmp(key, "up.", 3))
        name = key + 3, dir = &st->s.up, seen = &st->seen_up, prefixed = 1;
    else if (!strncmp(key, "down.", 5))
        name = key + 5, dir = &st->s.down, seen = &st->seen_down, prefixed = 1;
    if (prefixed != pass)
        return 0;
    int k = find_dir_key(name);
    int src_key = k < 0 ? mb_trace_src_find(name) : -1;
    if (src_key >= 0) { /* how to read the trace: format=, column=, unit=, ... */
        unsigned bit = 1u << (K_COUNT + src_key);
        if (*seen & bit)
            return fail(err, errlen, "link spec: %s given twice", key);
        *seen |= bit;
        char e[300];
        mb_link_dir *dirs[2] = {dir ? dir : &st->s.up, dir ? NULL : &st->s.down};
        for (int i = 0; i < 2; i++)
            if (dirs[i] && mb_trace_src_set(&dirs[i]->trace_src, name, val, e, sizeof e))
                return fail(err, errlen, "link spec: %s%s", prefixed ? (dir == &st->s.up ? "up." : "down.") : "", e);
        return 0;
    }
    if (k >= 0) {
        if (*seen & (1u << k))
            return fail(err, errlen, "link spec: %s given twice", key);
        *seen |= 1u << k;
        if (dir)
            return set_dir_key(k, val, dir, err, errlen, key);
        if (set_dir_key(k, val, &st->s.up, err, errlen, key))
            return -1;
        return set_dir_key(k, val, &st->s.down, err, errlen, key);
    }
    if (!strcmp(name, "rtt") || !strcmp(name, "mtu")) {
        if (prefixed)
            return fail(err, errlen, "link spec: %s: %s applies to the whole link; use %s.delay for one direction",
                        key, name, dir == &st->s.up ? "up" : "down");
        if (!strcmp(name, "mtu"))
            return parse_mtu(st, val, err, errlen);
        if (st->seen_rtt++)
            return fail(err, errlen, "link spec: rtt given twice");
        return parse_time(val, &st->rtt, err, errlen, key, 1);
    }
    if (prefixed) /* backend keys describe the whole link */
        return fail(err, errlen, "link spec: unknown key '%s' (known: " GENERIC_KEYS ")", key);
    /* Not the grammar's: a link backend's key, kept for it to validate. */
    return add_extra(&st->s, key, val, err, errlen);
}

int mb_linkspec_parse(const char *text, mb_link_spec *out, char *err, size_t errlen)
{
    if (!text || !out)
        return fail(err, errlen, "link spec: missing");
    if (mb_linkspec_is_netem(text)) { /* tc-netem's words: the same link in key=value form */
        char kv[2048], e2[512];
        if (mb_linkspec_from_netem(text, kv, sizeof kv, err, errlen))
            return -1;
        if (mb_linkspec_parse(kv, out, e2, sizeof e2))
            return fail(err, errlen, "%s (netem words read as '%s')", e2, kv);
        return 0;
    }
    if (err && errlen)
        err[0] = 0;
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    parse_state *st = calloc(1, sizeof *st);
    item items[MAX_ITEMS];
    int n_items = 0, rc = -1;
    if (!buf || !st) {
        fail(err, errlen, "link spec: out of memory");
        goto out;
    }
    memcpy(buf, text, len + 1);
    if (tokenise(text, buf, items, &n_items, err, errlen))
        goto out;
    st->s.up.trace_loop = st->s.down.trace_loop = 1;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n_items; i++)
            if (apply_item(st, &items[i], pass, err, errlen))
                goto out;
    if (st->seen_rtt) {
        if ((st->seen_both | st->seen_up | st->seen_down) & (1u << K_DELAY)) {
            fail(err, errlen, "link spec: give either rtt or delay, not both");
            goto out;
        }
        st->s.up.delay_s = st->s.down.delay_s = st->rtt / 2;
    }
    /* importer options describe a trace: one must be there to read */
    for (int i = 0; i < 2; i++) {
        mb_link_dir *d = i ? &st->s.down : &st->s.up;
        char e[300];
        if (d->trace_src.given && !d->trace[0]) {
            int k = 0;
            while (!(d->trace_src.given & (1u << k)))
                k++;
            fail(err, errlen, "link spec: %s= says how to read a trace file, but the %s direction has no trace=",
                 mb_trace_src_key(k), i ? "down" : "up");
            goto out;
        }
        if (mb_trace_src_check(&d->trace_src, e, sizeof e)) {
            fail(err, errlen, "link spec: %s%s", i ? "down." : "up.", e);
            goto out;
        }
    }
    /* netem's rule: a packet can only overtake delayed ones */
    for (int i = 0; i < 2; i++) {
        const mb_link_dir *d = i ? &st->s.down : &st->s.up;
        if (d->reorder > 0 && !(d->delay_s > 0)) {
            fail(err, errlen, "link spec: %sreorder needs a delay in that direction (a reordered packet skips the "
                 "delay: with none there is nothing to overtake)", i ? "down." : "up.");
            goto out;
        }
    }
    /* Backend keys: with no backend to judge them (a binary without the link
     * emulators), a key outside the grammar is simply unknown. */
    if (st->s.extra[0]) {
        if (!extra_check) {
            char *eq = strchr(st->s.extra, '=');
            fail(err, errlen, "link spec: unknown key '%.*s' (known: " GENERIC_KEYS ")",
                 (int)(eq - st->s.extra), st->s.extra);
            goto out;
        }
        if (extra_check(&st->s, err, errlen))
            goto out;
    }
    /* jitter larger than the delay would reorder most packets: allowed
     * (netem allows it), but a negative delay never happens: the emulator
     * clamps each sample at 0. */
    *out = st->s;
    rc = 0;
out:
    free(st);
    free(buf);
    return rc;
}

/* ---- formatting ---- */

typedef struct sbuf {
    char *p;
    size_t len, used;
    int overflow;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->used < b->len ? b->len - b->used : 0;
    int n = vsnprintf(b->p + (room ? b->used : 0), room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        b->overflow = 1;
    else
        b->used += (size_t)n;
}

/* Shortest exact decimal text of x in the given unit: %.15g when it reads
 * back to the same double, else %.17g. */
static void num_text(char *out, size_t n, double x, double unit)
{
    double v = x / unit;
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) * unit != x)
        snprintf(out, n, "%.17g", v);
}

static void fmt_rate(char *o, size_t n, double bps)
{
    static const struct { double u; const char *s; } units[] = {{1e9, "gbit"}, {1e6, "mbit"}, {1e3, "kbit"}};
    char t[40];
    for (size_t i = 0; i < 3; i++)
        if (bps >= units[i].u) {
            num_text(t, sizeof t, bps, units[i].u);
            if (strtod(t, NULL) * units[i].u == bps) {
                snprintf(o, n, "%s%s", t, units[i].s);
                return;
            }
        }
    snprintf(o, n, "%.17gbit", bps);
}

static void fmt_time(char *o, size_t n, double s)
{
    char t[40];
    if (s == 0) {
        snprintf(o, n, "0ms");
        return;
    }
    double u = s >= 1 ? 1 : s >= 1e-3 ? 1e-3 : 1e-6;
    const char *name = u == 1 ? "s" : u == 1e-3 ? "ms" : "us";
    num_text(t, sizeof t, s, u);
    if (strtod(t, NULL) * u != s) {
        snprintf(o, n, "%.17gs", s);
        return;
    }
    snprintf(o, n, "%s%s", t, name);
}

static void fmt_prob(char *o, size_t n, double p)
{
    /* a fraction: exact, unlike a percentage which would divide by 100 */
    snprintf(o, n, "%.15g", p);
    if (strtod(o, NULL) != p)
        snprintf(o, n, "%.17g", p);
}

/* Text of one directional key's value; "" when it has its default. */
static void dir_value(const mb_link_dir *d, int k, char *o, size_t n)
{
    o[0] = 0;
    char a[40], b[40], c[40], e[40];
    switch (k) {
    case K_RATE:
        if (d->rate_bps > 0)
            fmt_rate(o, n, d->rate_bps);
        break;
    case K_DELAY:
        if (d->delay_s > 0)
            fmt_time(o, n, d->delay_s);
        break;
    case K_JITTER:
        if (d->jitter_s > 0) {
            fmt_time(a, sizeof a, d->jitter_s);
            snprintf(o, n, "%s:%s", a, d->jitter_dist == MB_JITTER_NORMAL ? "normal"
                                       : d->jitter_dist == MB_JITTER_PARETO ? "pareto" : "uniform");
        }
        break;
    case K_LOSS:
        if (d->loss_model == MB_LOSS_BERNOULLI && d->loss > 0) {
            fmt_prob(o, n, d->loss);
        } else if (d->loss_model == MB_LOSS_GILBERT_ELLIOTT) {
            fmt_prob(a, sizeof a, d->ge_p);
            fmt_prob(b, sizeof b, d->ge_r);
            fmt_prob(c, sizeof c, d->ge_loss_bad);
            fmt_prob(e, sizeof e, d->ge_loss_good);
            snprintf(o, n, "ge:%s:%s:%s:%s", a, b, c, e);
        }
        break;
    case K_QUEUE:
        if (d->queue_packets > 0)
            snprintf(o, n, "%ldp", d->queue_packets);
        else if (d->queue_bytes > 0)
            snprintf(o, n, "%ldb", d->queue_bytes);
        break;
    case K_AQM:
        if (d->aqm_target_s > 0)
            fmt_time(o, n, d->aqm_target_s);
        break;
    case K_TRACE:
        if (d->trace[0])
            snprintf(o, n, "%s:%s", d->trace, d->trace_loop ? "loop" : "once");
        break;
    case K_TIMESCALE:
        if (d->time_scale > 0 && d->time_scale != 1)
            fmt_prob(o, n, d->time_scale); /* shortest text that reads back exactly */
        break;
    case K_DUPLICATE:
        if (d->duplicate > 0)
            fmt_prob(o, n, d->duplicate);
        break;
    case K_CORRUPT:
        if (d->corrupt > 0)
            fmt_prob(o, n, d->corrupt);
        break;
    case K_REORDER:
        if (d->reorder > 0) {
            fmt_prob(a, sizeof a, d->reorder);
            if (d->reorder_gap > 1)
                snprintf(o, n, "%s:%ld", a, d->reorder_gap);
            else
                snprintf(o, n, "%s", a);
        }
        break;
    }
}

int mb_linkspec_format(const mb_link_spec *s, char *buf, size_t len)
{
    sbuf b = {buf, len, 0, 0};
    if (len)
        buf[0] = 0;
    char u[MB_PATH_LEN + 16], d[MB_PATH_LEN + 16];
    for (int k = 0; k < K_COUNT; k++) {
        dir_value(&s->up, k, u, sizeof u);
        dir_value(&s->down, k, d, sizeof d);
        if (!strcmp(u, d)) {
            if (u[0])
                sb_add(&b, "%s%s=%s", b.used ? "," : "", dir_keys[k], u);
            continue;
        }
        if (u[0])
            sb_add(&b, "%sup.%s=%s", b.used ? "," : "", dir_keys[k], u);
        else if (k == K_DELAY) /* a zero delay on one side must be explicit */
            sb_add(&b, "%sup.delay=0ms", b.used ? "," : "");
        if (d[0])
            sb_add(&b, "%sdown.%s=%s", b.used ? "," : "", dir_keys[k], d);
        else if (k == K_DELAY)
            sb_add(&b, "%sdown.delay=0ms", b.used ? "," : "");
    }
    for (int k = 0; k < MB_TRACE_SRC_NKEYS; k++) {
        mb_trace_src_value(&s->up.trace_src, k, u, sizeof u);
        mb_trace_src_value(&s->down.trace_src, k, d, sizeof d);
        if (!strcmp(u, d)) {
            if (u[0])
                sb_add(&b, "%s%s=%s", b.used ? "," : "", mb_trace_src_key(k), u);
            continue;
        }
        if (u[0])
            sb_add(&b, "%sup.%s=%s", b.used ? "," : "", mb_trace_src_key(k), u);
        if (d[0])
            sb_add(&b, "%sdown.%s=%s", b.used ? "," : "", mb_trace_src_key(k), d);
    }
    if (s->mtu > 0)
        sb_add(&b, "%smtu=%d", b.used ? "," : "", s->mtu);
    if (s->extra[0])
        sb_add(&b, "%s%s", b.used ? "," : "", s->extra);
    if (b.overflow)
        return -1;
    return (int)b.used;
}

double mb_linkspec_rtt(const mb_link_spec *s)
{
    return s->up.delay_s + s->down.delay_s;
}

const char *mb_linkspec_extra(const mb_link_spec *s, const char *key, char *buf, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = s->extra; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > kl && p[kl] == '=' && !strncmp(p, key, kl)) {
            size_t vl = n - kl - 1;
            if (vl >= len)
                vl = len ? len - 1 : 0;
            if (len) {
                memcpy(buf, p + kl + 1, vl);
                buf[vl] = 0;
            }
            return buf;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return NULL;
}
