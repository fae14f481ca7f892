/* mecbed timeline: events of a distributed run, their wire form (RESULT),
 * CSV and Chrome trace-event JSON. */
#include "mecbed/timeline.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"compute", "send", "recv", "replan", "fallback"};
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

/* Chrome trace-event format: one process per site, threads for compute,
 * send and receive, "X" (complete) events with microsecond times. */
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
        for (int k = 0; k < 3; k++) {
            cJSON *th = cJSON_CreateObject();
            cJSON_AddStringToObject(th, "name", "thread_name");
            cJSON_AddStringToObject(th, "ph", "M");
            cJSON_AddNumberToObject(th, "pid", s);
            cJSON_AddNumberToObject(th, "tid", k);
            cJSON *ta = cJSON_AddObjectToObject(th, "args");
            cJSON_AddStringToObject(ta, "name", kind_names[k]);
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
        else
            snprintf(name, sizeof name, "%s", e->kind < N_KINDS ? kind_names[e->kind] : "?");
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddStringToObject(o, "cat", e->kind < N_KINDS ? kind_names[e->kind] : "?");
        cJSON_AddStringToObject(o, "ph", "X");
        cJSON_AddNumberToObject(o, "ts", (e->t0 - t_origin) * 1e6);
        cJSON_AddNumberToObject(o, "dur", (e->t1 - e->t0) * 1e6);
        cJSON_AddNumberToObject(o, "pid", e->site);
        cJSON_AddNumberToObject(o, "tid", e->kind <= MB_EV_RECV ? e->kind : 0);
        cJSON *a = cJSON_AddObjectToObject(o, "args");
        cJSON_AddNumberToObject(a, "frame", e->frame);
        cJSON_AddNumberToObject(a, "step", e->step);
        cJSON_AddNumberToObject(a, "bytes", (double)e->bytes);
        cJSON_AddItemToArray(arr, o);
    }
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
