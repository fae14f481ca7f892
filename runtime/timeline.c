/* mecbed timeline: events of a distributed run, their wire form (RESULT),
 * CSV and Chrome trace-event JSON. */
#include "mecbed/timeline.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"compute", "send", "recv", "replan", "fallback", "queue"};
#define N_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

void mb_timeline_init(mb_timeline *tl)
{
    memset(tl, 0, sizeof *tl);
}

void mb_timeline_free(mb_timeline *tl)
{
    free(tl->ev);
    memset(tl, 0, sizeof *tl);
}

int mb_timeline_add(mb_timeline *tl, const mb_event *e)
{
    if (tl->n == tl->cap) {
        int cap = tl->cap ? tl->cap * 2 : 256;
        mb_event *p = realloc(tl->ev, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        tl->ev = p;
        tl->cap = cap;
    }
    tl->ev[tl->n++] = *e;
    return 0;
}

/* Each event on the wire: 4+4+1+2+2+4+8+8+8 = 41 bytes. */
#define EV_WIRE 41

int mb_result_encode(int status, const char *msg, const mb_event *ev, int n, mb_wbuf *b)
{
    mb_wbuf_u32(b, (uint32_t)status);
    mb_wbuf_str(b, msg ? msg : "");
    mb_wbuf_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        mb_wbuf_u32(b, ev[i].frame);
        mb_wbuf_u32(b, (uint32_t)ev[i].step);
        mb_wbuf_u8(b, (uint8_t)ev[i].kind);
        mb_wbuf_u16(b, (uint16_t)ev[i].site);
        mb_wbuf_u16(b, ev[i].peer < 0 ? 0xffff : (uint16_t)ev[i].peer);
        mb_wbuf_u32(b, (uint32_t)ev[i].op);
        mb_wbuf_f64(b, ev[i].t0);
        mb_wbuf_f64(b, ev[i].t1);
        mb_wbuf_i64(b, ev[i].bytes);
    }
    return b->oom ? -1 : 0;
}

int mb_result_decode(const uint8_t *p, size_t len, int n_sites, int n_ops, double offset_s,
                     mb_timeline *tl, int *status, char *msg, size_t msglen, char *err,
                     size_t errlen)
{
    mb_rbuf r;
    mb_rbuf_init(&r, p, len);
    *status = (int)mb_rbuf_u32(&r);
    char tmp[MB_WIRE_MAX_STR + 1];
    mb_rbuf_str(&r, tmp, sizeof tmp);
    uint32_t n = mb_rbuf_u32(&r);
    if (r.bad || n > MB_WIRE_MAX_EVENTS || (size_t)n * EV_WIRE != r.len - r.pos) {
        snprintf(err, errlen, "malformed RESULT (%zu bytes)", len);
        return -1;
    }
    if (msg && msglen)
        snprintf(msg, msglen, "%s", tmp);
    for (uint32_t i = 0; i < n; i++) {
        mb_event e;
        e.frame = mb_rbuf_u32(&r);
        e.step = (int)mb_rbuf_u32(&r);
        e.kind = mb_rbuf_u8(&r);
        e.site = mb_rbuf_u16(&r);
        uint16_t peer = mb_rbuf_u16(&r);
        e.peer = peer == 0xffff ? -1 : peer;
        e.op = (int)mb_rbuf_u32(&r);
        e.t0 = mb_rbuf_f64(&r) + offset_s;
        e.t1 = mb_rbuf_f64(&r) + offset_s;
        e.bytes = mb_rbuf_i64(&r);
        if (e.kind >= N_KINDS || e.site >= n_sites || e.peer >= n_sites || e.op < -1 ||
            e.op >= n_ops || e.bytes < 0 || !(e.t1 >= e.t0)) {
            snprintf(err, errlen, "RESULT event %u out of range", i);
            return -1;
        }
        if (mb_timeline_add(tl, &e)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

static const char *site_name(const mb_topology *t, int s)
{
    return s >= 0 && s < t->n_sites ? t->sites[s].name : "-";
}

static const char *op_name(const mb_graph *g, int op)
{
    return op >= 0 && op < g->n_nodes ? g->nodes[op].name : "-";
}

int mb_timeline_write_csv(const mb_timeline *tl, const mb_graph *g, const mb_topology *t,
                          double t_origin, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "frame,kind,site,peer,step,op,op_name,start_ms,end_ms,dur_ms,bytes\n");
    for (int i = 0; i < tl->n; i++) {
        const mb_event *e = &tl->ev[i];
        fprintf(f, "%u,%s,%s,%s,%d,%d,%s,%.4f,%.4f,%.4f,%lld\n", e->frame,
                e->kind < N_KINDS ? kind_names[e->kind] : "?", site_name(t, e->site),
                site_name(t, e->peer), e->step, e->op, op_name(g, e->op),
                (e->t0 - t_origin) * 1e3, (e->t1 - t_origin) * 1e3, (e->t1 - e->t0) * 1e3,
                (long long)e->bytes);
    }
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Sorting keys: a transfer is known by (frame, step, sender, receiver). */
static int64_t transfer_key(uint32_t frame, int step, int from, int to)
{
    return ((int64_t)frame << 32) | ((int64_t)(step + 1) << 12) | ((int64_t)(from & 63) << 6) | (to & 63);
}

typedef struct keyed {
    int64_t key;
    int idx;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

/* For each event, the index of the RECV that completes it when it is a
 * SEND (same frame and step, at its peer, from its site), else -1. */
static int *match_transfers(const mb_timeline *tl)
{
    int *match = malloc(sizeof(int) * (size_t)(tl->n ? tl->n : 1));
    keyed *recv = malloc(sizeof(keyed) * (size_t)(tl->n ? tl->n : 1));
    if (!match || !recv) {
        free(match);
        free(recv);
        return NULL;
    }
    int nr = 0;
    for (int i = 0; i < tl->n; i++) {
        const mb_event *e = &tl->ev[i];
        if (e->kind == MB_EV_RECV)
            recv[nr++] = (keyed){transfer_key(e->frame, e->step, e->peer, e->site), i};
    }
    qsort(recv, (size_t)nr, sizeof *recv, cmp_keyed);
    for (int i = 0; i < tl->n; i++) {
        const mb_event *e = &tl->ev[i];
        match[i] = -1;
        if (e->kind != MB_EV_SEND)
            continue;
        keyed k = {transfer_key(e->frame, e->step, e->site, e->peer), 0};
        keyed *hit = bsearch(&k, recv, (size_t)nr, sizeof *recv, cmp_keyed);
        if (hit)
            match[i] = hit->idx;
    }
    free(recv);
    return match;
}

static cJSON *trace_event(cJSON *arr, const char *ph, const char *name, double ts_us, int pid, int tid)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "ph", ph);
    cJSON_AddNumberToObject(o, "ts", ts_us);
    cJSON_AddNumberToObject(o, "pid", pid);
    cJSON_AddNumberToObject(o, "tid", tid);
    cJSON_AddItemToArray(arr, o);
    return o;
}

/* A change of a directed link's bytes in flight. */
typedef struct flight_step {
    double t;
    int from, to;
    double kb; /* + sent, - received */
} flight_step;

static int cmp_flight(const void *a, const void *b)
{
    const flight_step *x = a, *y = b;
    if (x->from != y->from || x->to != y->to)
        return x->from != y->from ? x->from - y->from : x->to - y->to;
    return x->t < y->t ? -1 : x->t > y->t;
}

/* An arrow from each send slice to its receive slice (flow events "s"/"f",
 * bound to the enclosing slices: ts in the middle of each), and per
 * directed link a counter track of the bytes sent but not yet received. */
static void add_transfers(cJSON *arr, const mb_timeline *tl, const mb_topology *t, double t_origin)
{
    int *match = match_transfers(tl);
    flight_step *fs = malloc(sizeof *fs * (size_t)(2 * tl->n + 1));
    if (!match || !fs) {
        free(match);
        free(fs);
        return;
    }
    int nf = 0;
    for (int i = 0; i < tl->n; i++) {
        if (match[i] < 0)
            continue;
        const mb_event *e = &tl->ev[i], *r = &tl->ev[match[i]];
        double id = (double)e->frame * 1e6 + (double)(e->step + 1);
        cJSON *s = trace_event(arr, "s", "tensor", ((e->t0 + e->t1) / 2 - t_origin) * 1e6, e->site, MB_EV_SEND);
        cJSON_AddStringToObject(s, "cat", "transfer");
        cJSON_AddNumberToObject(s, "id", id);
        cJSON *f = trace_event(arr, "f", "tensor", ((r->t0 + r->t1) / 2 - t_origin) * 1e6, r->site, MB_EV_RECV);
        cJSON_AddStringToObject(f, "cat", "transfer");
        cJSON_AddStringToObject(f, "bp", "e");
        cJSON_AddNumberToObject(f, "id", id);
        fs[nf++] = (flight_step){e->t0, e->site, e->peer, (double)e->bytes / 1024};
        fs[nf++] = (flight_step){r->t1, e->site, e->peer, -(double)e->bytes / 1024};
    }
    qsort(fs, (size_t)nf, sizeof *fs, cmp_flight);
    double level = 0;
    for (int k = 0; k < nf; k++) {
        if (k == 0 || fs[k].from != fs[k - 1].from || fs[k].to != fs[k - 1].to)
            level = 0;
        level += fs[k].kb;
        if (level < 1e-9)
            level = 0; /* rounding after the last receive */
        char name[96];
        snprintf(name, sizeof name, "in flight to %s (KB)", site_name(t, fs[k].to));
        cJSON *c = trace_event(arr, "C", name, (fs[k].t - t_origin) * 1e6, fs[k].from, 0);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(c, "args"), "KB", level);
    }
    free(fs);
    free(match);
}

/* A global instant marker where each frame's first event starts. */
static void add_frame_markers(cJSON *arr, const mb_timeline *tl, double t_origin)
{
    keyed *first = malloc(sizeof *first * (size_t)(tl->n ? tl->n : 1));
    if (!first)
        return;
    for (int i = 0; i < tl->n; i++)
        first[i] = (keyed){(int64_t)tl->ev[i].frame, i};
    qsort(first, (size_t)tl->n, sizeof *first, cmp_keyed);
    for (int i = 0; i < tl->n;) {
        double t0 = tl->ev[first[i].idx].t0;
        int64_t frame = first[i].key;
        for (; i < tl->n && first[i].key == frame; i++)
            if (tl->ev[first[i].idx].t0 < t0)
                t0 = tl->ev[first[i].idx].t0;
        char name[32];
        snprintf(name, sizeof name, "frame %lld", (long long)frame);
        cJSON *o = trace_event(arr, "i", name, (t0 - t_origin) * 1e6, 0, 0);
        cJSON_AddStringToObject(o, "s", "g");
    }
    free(first);
}

/* Chrome trace-event format: one process per site, threads for compute,
 * send and receive, "X" (complete) events with microsecond times; arrows
 * from each send to its receive, bytes in flight per directed link as
 * counter tracks, and a marker at each frame's start (add_transfers,
 * add_frame_markers). */
int mb_timeline_write_chrome(const mb_timeline *tl, const mb_graph *g, const mb_topology *t,
                             double t_origin, const char *path, char *err, size_t errlen)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "traceEvents");
    cJSON_AddStringToObject(root, "displayTimeUnit", "ms");
    for (int s = 0; s < t->n_sites; s++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", "process_name");
        cJSON_AddStringToObject(m, "ph", "M");
        cJSON_AddNumberToObject(m, "pid", s);
        cJSON *a = cJSON_AddObjectToObject(m, "args");
        cJSON_AddStringToObject(a, "name", t->sites[s].name);
        cJSON_AddItemToArray(arr, m);
        static const char *const lanes[] = {"compute", "send", "recv", "queue"};
        for (int k = 0; k < 4; k++) {
            cJSON *th = cJSON_CreateObject();
            cJSON_AddStringToObject(th, "name", "thread_name");
            cJSON_AddStringToObject(th, "ph", "M");
            cJSON_AddNumberToObject(th, "pid", s);
            cJSON_AddNumberToObject(th, "tid", k);
            cJSON *ta = cJSON_AddObjectToObject(th, "args");
            cJSON_AddStringToObject(ta, "name", lanes[k]);
            cJSON_AddItemToArray(arr, th);
        }
    }
    for (int i = 0; i < tl->n; i++) {
        const mb_event *e = &tl->ev[i];
        cJSON *o = cJSON_CreateObject();
        char name[160];
        if (e->kind == MB_EV_COMPUTE)
            snprintf(name, sizeof name, "%s", op_name(g, e->op));
        else if (e->kind == MB_EV_SEND)
            snprintf(name, sizeof name, "%s -> %s", op_name(g, e->op), site_name(t, e->peer));
        else if (e->kind == MB_EV_RECV)
            snprintf(name, sizeof name, "%s <- %s", op_name(g, e->op), site_name(t, e->peer));
        else if (e->kind == MB_EV_QUEUE)
            snprintf(name, sizeof name, "queue: %s", op_name(g, e->op));
        else
            snprintf(name, sizeof name, "%s", e->kind < N_KINDS ? kind_names[e->kind] : "?");
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "cat", e->kind < N_KINDS ? kind_names[e->kind] : "?");
        cJSON_AddStringToObject(o, "ph", "X");
        cJSON_AddNumberToObject(o, "ts", (e->t0 - t_origin) * 1e6);
        cJSON_AddNumberToObject(o, "dur", (e->t1 - e->t0) * 1e6);
        cJSON_AddNumberToObject(o, "pid", e->site);
        cJSON_AddNumberToObject(o, "tid", e->kind <= MB_EV_RECV ? e->kind : e->kind == MB_EV_QUEUE ? 3 : 0);
        cJSON *a = cJSON_AddObjectToObject(o, "args");
        cJSON_AddNumberToObject(a, "frame", e->frame);
        cJSON_AddNumberToObject(a, "step", e->step);
        cJSON_AddNumberToObject(a, "bytes", (double)e->bytes);
        cJSON_AddItemToArray(arr, o);
    }
    add_transfers(arr, tl, t, t_origin);
    add_frame_markers(arr, tl, t_origin);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) {
        snprintf(err, errlen, "out of memory writing %s", path);
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        free(text);
        return -1;
    }
    fputs(text, f);
    fputc('\n', f);
    free(text);
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
