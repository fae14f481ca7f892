/* Link specs in tc-netem's own words (`delay 20ms 5ms distribution normal
 * loss 1% rate 10mbit limit 100`), translated into the key=value grammar
 * (linkspec.c) so both spellings mean the same link. What netem can say but
 * mecbed does not emulate (correlations, the 4-state loss model, slotting,
 * packet overhead) is refused by name, never ignored. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/linkspec.h"

#define MAX_WORDS 48

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

/* netem's keywords: a spec starting with one of them is in netem's words. */
static const char *const keywords[] = {"delay", "loss", "rate", "limit", "duplicate", "corrupt", "reorder",
                                       "slot", "distribution", "gap", "ecn", NULL};

static int is_keyword(const char *w)
{
    for (int i = 0; keywords[i]; i++)
        if (!strcmp(w, keywords[i]))
            return 1;
    return 0;
}

/* A number (netem writes times and percentages with units: 10ms, 1%). */
static int is_value(const char *w)
{
    return w && (isdigit((unsigned char)w[0]) || (w[0] == '.' && isdigit((unsigned char)w[1])));
}

int mb_linkspec_is_netem(const char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    if (strchr(text, '='))
        return 0;
    char first[16];
    size_t n = strcspn(text, " \t");
    if (n == 0 || n >= sizeof first)
        return 0;
    memcpy(first, text, n);
    first[n] = 0;
    return is_keyword(first);
}

typedef struct out_buf {
    char *s;
    size_t len, cap;
    int overflow;
} out_buf;

static void emit(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out_buf *o, const char *fmt, ...)
{
    if (o->len && o->len + 1 < o->cap)
        o->s[o->len++] = ',', o->s[o->len] = 0;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= o->cap - o->len)
        o->overflow = 1;
    else
        o->len += (size_t)k;
}

/* delay TIME [JITTER [CORRELATION]] [distribution uniform|normal|pareto] */
static int words_delay(char **w, int n, int *i, out_buf *o, char *err, size_t errlen)
{
    if (*i >= n || !is_value(w[*i]))
        return fail(err, errlen, "netem words: delay needs a time (e.g. delay 20ms)");
    emit(o, "delay=%s", w[(*i)++]);
    const char *jitter = NULL, *dist = NULL;
    if (*i < n && is_value(w[*i]))
        jitter = w[(*i)++];
    if (*i < n && is_value(w[*i]))
        return fail(err, errlen, "netem words: delay correlation (%s) is not emulated: leave it out", w[*i]);
    if (*i < n && !strcmp(w[*i], "distribution")) {
        if (++*i >= n)
            return fail(err, errlen, "netem words: distribution needs a name (uniform, normal, pareto)");
        dist = w[(*i)++];
        if (strcmp(dist, "uniform") && strcmp(dist, "normal") && strcmp(dist, "pareto"))
            return fail(err, errlen, "netem words: distribution %s is not emulated (uniform, normal, pareto)", dist);
        if (!jitter)
            return fail(err, errlen, "netem words: a distribution needs a jitter (delay 20ms 5ms distribution %s)",
                        dist);
    }
    if (jitter)
        emit(o, "jitter=%s%s%s", jitter, dist ? ":" : "", dist ? dist : "");
    return 0;
}

/* loss [random] P | loss gemodel p [r [1-h [1-k]]] */
static int words_loss(char **w, int n, int *i, out_buf *o, char *err, size_t errlen)
{
    if (*i < n && !strcmp(w[*i], "random"))
        ++*i;
    else if (*i < n && !strcmp(w[*i], "state"))
        return fail(err, errlen, "netem words: the 4-state loss model (loss state) is not emulated: use loss "
                                 "gemodel or loss P");
    else if (*i < n && !strcmp(w[*i], "gemodel")) {
        ++*i;
        const char *v[4] = {NULL, NULL, NULL, NULL};
        int k = 0;
        while (k < 4 && *i < n && is_value(w[*i]))
            v[k++] = w[(*i)++];
        if (k == 0)
            return fail(err, errlen, "netem words: loss gemodel needs p (and r, 1-h, 1-k)");
        if (k == 1) { /* netem: r = 1 - p when left out */
            double p = atof(v[0]) / (strchr(v[0], '%') ? 100 : 1);
            emit(o, "loss=ge:%s:%.9g", v[0], 1 - p);
        } else {
            emit(o, "loss=ge:%s:%s%s%s%s%s", v[0], v[1], v[2] ? ":" : "", v[2] ? v[2] : "", v[3] ? ":" : "",
                 v[3] ? v[3] : "");
        }
        return 0;
    }
    if (*i >= n || !is_value(w[*i]))
        return fail(err, errlen, "netem words: loss needs a probability (e.g. loss 1%%)");
    emit(o, "loss=%s", w[(*i)++]);
    if (*i < n && is_value(w[*i]))
        return fail(err, errlen, "netem words: loss correlation (%s) is not emulated: use loss gemodel for bursts",
                    w[*i]);
    return 0;
}

/* duplicate P | corrupt P (no correlation) */
static int words_prob(const char *key, char **w, int n, int *i, out_buf *o, char *err, size_t errlen)
{
    if (*i >= n || !is_value(w[*i]))
        return fail(err, errlen, "netem words: %s needs a probability (e.g. %s 1%%)", key, key);
    emit(o, "%s=%s", key, w[(*i)++]);
    if (*i < n && is_value(w[*i]))
        return fail(err, errlen, "netem words: %s correlation (%s) is not emulated", key, w[*i]);
    return 0;
}

/* reorder P [gap N] (no correlation) */
static int words_reorder(char **w, int n, int *i, out_buf *o, char *err, size_t errlen)
{
    if (*i >= n || !is_value(w[*i]))
        return fail(err, errlen, "netem words: reorder needs a probability (e.g. delay 10ms reorder 25%%)");
    const char *p = w[(*i)++];
    if (*i < n && is_value(w[*i]))
        return fail(err, errlen, "netem words: reorder correlation (%s) is not emulated", w[*i]);
    if (*i < n && !strcmp(w[*i], "gap")) {
        ++*i;
        if (*i >= n || !is_value(w[*i]))
            return fail(err, errlen, "netem words: gap needs a packet count (e.g. reorder 25%% gap 5)");
        emit(o, "reorder=%s:%s", p, w[(*i)++]);
        return 0;
    }
    emit(o, "reorder=%s", p);
    return 0;
}

/* One keyword and its arguments. */
static int translate_one(char **w, int n, int *i, out_buf *o, char *err, size_t errlen)
{
    const char *kw = w[(*i)++];
    if (!strcmp(kw, "delay"))
        return words_delay(w, n, i, o, err, errlen);
    if (!strcmp(kw, "loss"))
        return words_loss(w, n, i, o, err, errlen);
    if (!strcmp(kw, "duplicate") || !strcmp(kw, "corrupt"))
        return words_prob(kw, w, n, i, o, err, errlen);
    if (!strcmp(kw, "rate")) {
        if (*i >= n || !is_value(w[*i]))
            return fail(err, errlen, "netem words: rate needs a rate (e.g. rate 10mbit)");
        emit(o, "rate=%s", w[(*i)++]);
        if (*i < n && (is_value(w[*i]) || w[*i][0] == '-'))
            return fail(err, errlen, "netem words: rate's packet and cell overheads are not emulated");
        return 0;
    }
    if (!strcmp(kw, "limit")) {
        if (*i >= n || !is_value(w[*i]) || strspn(w[*i], "0123456789") != strlen(w[*i]))
            return fail(err, errlen, "netem words: limit needs a packet count (e.g. limit 100)");
        emit(o, "queue=%sp", w[(*i)++]);
        return 0;
    }
    if (!strcmp(kw, "reorder"))
        return words_reorder(w, n, i, o, err, errlen);
    if (!strcmp(kw, "gap"))
        return fail(err, errlen, "netem words: gap belongs after reorder P (delay 10ms reorder 25%% gap 5)");
    if (!strcmp(kw, "slot"))
        return fail(err, errlen, "netem words: slot is not emulated: use a trace (trace=FILE) for bursty delivery");
    if (!strcmp(kw, "ecn"))
        return fail(err, errlen, "netem words: ecn marking is not emulated");
    if (!strcmp(kw, "distribution"))
        return fail(err, errlen, "netem words: distribution belongs after delay TIME JITTER");
    return fail(err, errlen, "netem words: unknown word '%s' (delay, loss, rate, limit, duplicate, corrupt, reorder)", kw);
}

int mb_linkspec_from_netem(const char *text, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    if (!buf)
        return fail(err, errlen, "link spec: out of memory");
    memcpy(buf, text, len + 1);
    char *w[MAX_WORDS];
    int n = 0, rc = 0;
    for (char *save = NULL, *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save)) {
        if (n == MAX_WORDS) {
            rc = fail(err, errlen, "netem words: more than %d words", MAX_WORDS);
            break;
        }
        w[n++] = t;
    }
    out_buf o = {out, 0, outlen, 0};
    out[0] = 0;
    for (int i = 0; !rc && i < n;) {
        if (!is_keyword(w[i])) {
            rc = fail(err, errlen, "netem words: '%s' is not a netem keyword here", w[i]);
            break;
        }
        rc = translate_one(w, n, &i, &o, err, errlen);
    }
    if (!rc && o.overflow)
        rc = fail(err, errlen, "netem words: too long");
    free(buf);
    return rc;
}
