/* mecbed runtime: one site's plan executor (see rt_exec.h). */
#include "rt_exec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include "mecbed/platform.h"
#include "mecbed/wire.h"
#include "rt_mem.h"

enum { ROLE_NONE = RT_ROLE_NONE, ROLE_COMPUTE = RT_ROLE_COMPUTE, ROLE_SEND = RT_ROLE_SEND, ROLE_RECV = RT_ROLE_RECV };
enum { ST_WAIT = 0, ST_READY, ST_RUNNING, ST_DONE };

/* One in-flight frame slot. Its arrays, arena and event list are allocated
 * by the first frame that uses the slot and kept for the later ones: after
 * the first frames, running a frame allocates nothing. */
typedef struct rt_frame {
    int used;
    uint32_t id;
    int done;
    int n_done;
    int *pending;           /* per step: producers not yet done */
    uint8_t *state;         /* per step: ST_* */
    float *arena;           /* the frame's tensors, laid out by x->mem */
    mb_tensor *view;        /* per op: its tensor in the arena (not owning) */
    mb_tensor *const *inputs;
    mb_timeline events;
} rt_frame;

typedef struct rt_sender {
    rt_exec *x;
    float *scratch;
    size_t scratch_len;
    int peer;
    pthread_t th;
    int started;
} rt_sender;

struct rt_exec {
    double share;     /* this site's share of the node's compute (plan->share[me]); 0: first come first served */
    int overruns;     /* modelled steps this machine finished late */
    double overrun_s; /* how late, in total (wall seconds) */
    const mb_graph *g;
    const mb_plan *p;
    const mb_topology *names;
    char name_buf[MB_MAX_SITES][16];
    int me;
    uint32_t epoch;
    mb_backend *be;
    int out_fd[MB_MAX_SITES];

    uint8_t *role;   /* per step */
    int n_mine;
    int *dep_off;    /* CSR of dependents: dep_off[s]..dep_off[s+1] in dep_list */
    int *dep_list;
    int *ndeps;      /* per step: producers it waits for */
    int *input_idx;  /* per op: index among INPUT nodes, -1 otherwise */
    int *st_in;      /* per op: its state binding on this site when a bound input, -1 otherwise */
    int n_st_here;   /* state bindings on this site */
    rt_state *st;

    pthread_mutex_t mu;
    pthread_cond_t cv;         /* frames done, failure: the waiters */
    pthread_cond_t cv_compute; /* a COMPUTE step became ready */
    pthread_cond_t cv_send[MB_MAX_SITES]; /* a SEND to that site became ready */
    int stop;
    int failed;
    char fail_msg[512];
    rt_frame frames[RT_MAX_INFLIGHT];
    /* Ids of the frames taken last (a ring): a node's FRAME message can
     * arrive after the frame's data already ran it to the end (control and
     * data travel on different connections); starting it again would hold a
     * slot forever, and after RT_MAX_INFLIGHT such frames every frame fails. */
    uint32_t recent[RT_RECENT];
    int n_recent, recent_pos;

    /* Where each tensor of a frame lives (slots by liveness, rt_mem.h). */
    rt_mem_plan mem;
    /* Scratch for partial regions (compute thread; senders have their own). */
    float *scratch;
    size_t scratch_len;

    pthread_t compute_th;
    int compute_started;
    rt_sender senders[MB_MAX_SITES];
};

static const char *site_name(rt_exec *x, int s)
{
    if (x->names && s >= 0 && s < x->names->n_sites)
        return x->names->sites[s].name;
    if (s < 0 || s >= MB_MAX_SITES)
        return "?";
    snprintf(x->name_buf[s], sizeof x->name_buf[s], "site %d", s);
    return x->name_buf[s];
}

static void (*thread_hook)(void *);
static void *thread_hook_arg;
static double slowdown = 1.0;
/* Modelled step timing: a COMPUTE step lasts its predicted duration x tdf. */
static int step_model;
static double step_tdf = 1.0;

/* The shared compute of a node serving several sessions: one compute at a
 * time, granted first come, first served (a ticket lock). Each session's
 * compute thread takes a ticket when a step is ready and holds the gate for
 * the step's whole (emulated) duration; the wait becomes a QUEUE event. */
static int gate_on;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static uint64_t gate_next, gate_serving;
static double gate_vfree; /* where the last holder's step ended, on its virtual clock */

void mb_rt_set_shared_compute(int on)
{
    gate_on = on != 0;
}

/* Shares (mb_plan.share): an executor whose plan gives its site a share s
 * of the node does not take the gate; its steps run beside the others',
 * each stretched to 1 / s of its duration at the node's full speed
 * (processor sharing with reserved rates: DDS's model, where a device's
 * server time scales with 1 / share). When the executors alive in this
 * process hold more than the whole node between them, each gets
 * s / (sum of shares), the game's own rule. */
static double share_sum;
static int share_n;

static void share_register(rt_exec *x, double s)
{
    if (!(s > 0))
        return;
    pthread_mutex_lock(&gate_mu);
    x->share = s;
    share_sum += s;
    share_n++;
    pthread_mutex_unlock(&gate_mu);
}

static void share_unregister(rt_exec *x)
{
    if (!(x->share > 0))
        return;
    pthread_mutex_lock(&gate_mu);
    share_sum = --share_n > 0 ? share_sum - x->share : 0;
    pthread_mutex_unlock(&gate_mu);
    x->share = 0;
}

/* The share a step gets now: 0 when the executor has none. */
static double share_now(const rt_exec *x)
{
    if (!(x->share > 0))
        return 0;
    pthread_mutex_lock(&gate_mu);
    double s = x->share / fmax(1.0, share_sum);
    pthread_mutex_unlock(&gate_mu);
    return s;
}

double mb_rt_share_total(void)
{
    pthread_mutex_lock(&gate_mu);
    double s = share_sum;
    pthread_mutex_unlock(&gate_mu);
    return s;
}

static int gate_enter(double *vfree)
{
    *vfree = 0;
    if (!gate_on)
        return 0;
    pthread_mutex_lock(&gate_mu);
    uint64_t me = gate_next++;
    while (gate_serving != me)
        pthread_cond_wait(&gate_cv, &gate_mu);
    *vfree = gate_vfree;
    pthread_mutex_unlock(&gate_mu);
    return 1;
}

static void gate_leave(int held, double vend)
{
    if (!held)
        return;
    pthread_mutex_lock(&gate_mu);
    gate_vfree = vend;
    gate_serving++;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

void mb_rt_set_step_timing(int modelled, double tdf)
{
    step_model = modelled != 0;
    step_tdf = tdf >= 1.0 && isfinite(tdf) ? tdf : 1.0;
}

void mb_rt_set_slowdown(double factor)
{
    slowdown = factor > 1.0 ? factor : 1.0;
}

double mb_rt_slowdown(void)
{
    return slowdown;
}

double mb_rt_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleep until `until` (mb_now() seconds, CLOCK_MONOTONIC). An absolute
 * deadline: a wake-up interrupted by a signal resumes towards the same
 * instant, and nothing is lost converting a relative interval. */
static void sleep_until(double until)
{
    struct timespec ts = {(time_t)until, (long)((until - (double)(time_t)until) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Time dilation: a site `slowdown` times slower than this machine takes
 * slowdown x the CPU time this op took here, so wait out the rest. CPU
 * time, not wall time: preemption by other work on a shared machine does
 * not count as the op's own work (unless it already overran the target). */
void mb_rt_dilate(double t0_wall, double cpu_s)
{
    if (slowdown <= 1.0)
        return;
    double until = t0_wall + cpu_s * slowdown;
    if (until > mb_now())
        sleep_until(until);
}

void mb_rt_precise_timers(void)
{
    /* The default slack (50 us) lets the kernel wake a sleeper that much
     * late to batch wake-ups; 1 us makes a dilated step end on time. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
}

/* A step that follows its predecessor without waiting for inputs starts,
 * in the emulated site's time, where the predecessor's target ended: the
 * late wake-up of the previous sleep (timer slack, scheduling) is not
 * carried into this step, so overshoots do not add up over many small ops.
 * A step that had to wait starts when it was picked. */
double mb_rt_vclock_begin(mb_rt_vclock *vc, double now, int waited)
{
    if (!vc->primed || waited || vc->target > now)
        return now;
    return vc->target;
}

double mb_rt_vclock_end(mb_rt_vclock *vc, double start, double cpu_s)
{
    double k = slowdown > 1.0 ? slowdown : 1.0;
    vc->target = start + cpu_s * k;
    vc->primed = 1;
    if (k > 1.0 && vc->target > mb_now())
        sleep_until(vc->target);
    return vc->target;
}

double mb_rt_vclock_until(mb_rt_vclock *vc, double target)
{
    vc->target = target;
    vc->primed = 1;
    double now = mb_now();
    if (target > now) {
        sleep_until(target);
        return 0;
    }
    return now - target;
}

void mb_rt_set_thread_hook(void (*fn)(void *), void *arg)
{
    thread_hook = fn;
    thread_hook_arg = arg;
}

static void run_thread_hook(void)
{
    if (thread_hook)
        thread_hook(thread_hook_arg);
}

static int overlap(mb_region a, mb_region b)
{
    return a.h0 < b.h1 && b.h0 < a.h1 && a.w0 < b.w1 && b.w0 < a.w1;
}

static int region_is_full(const mb_graph *g, int op, mb_region r)
{
    mb_region f = mb_node_full_region(g, op);
    return !memcmp(&f, &r, sizeof r);
}

/* A tensor that exists on this site without any step: constants everywhere,
 * graph inputs on the device. */
static int is_free_here(const rt_exec *x, int op)
{
    mb_op_type t = x->g->nodes[op].type;
    return t == MB_OP_CONSTANT || (t == MB_OP_INPUT && (x->me == x->p->device || x->st_in[op] >= 0));
}

/* ---- state across frames (rt_exec.h) ---- */

struct rt_state {
    int n, cap;
    uint32_t *key;
    mb_tensor **t;
};

rt_state *rt_state_new(void)
{
    return calloc(1, sizeof(rt_state));
}

void rt_state_free(rt_state *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        mb_tensor_free(st->t[i]);
    free(st->key);
    free(st->t);
    free(st);
}

int64_t rt_state_bytes(const rt_state *st, int *n)
{
    int64_t b = 0;
    for (int i = 0; st && i < st->n; i++)
        b += mb_tensor_numel(st->t[i]) * (int64_t)sizeof(float);
    if (n)
        *n = st ? st->n : 0;
    return b;
}

static mb_tensor *state_find(const rt_state *st, uint32_t key)
{
    for (int i = 0; st && i < st->n; i++)
        if (st->key[i] == key)
            return st->t[i];
    return NULL;
}

/* Keep src under key: into the tensor already there when its size is the
 * same, else a new one. 0, or -1 out of memory. */
static int state_put(rt_state *st, uint32_t key, const mb_tensor *src)
{
    mb_tensor *t = state_find(st, key);
    if (t && mb_tensor_numel(t) == mb_tensor_numel(src)) {
        t->ndim = src->ndim;
        memcpy(t->dims, src->dims, sizeof t->dims);
        memcpy(t->data, src->data, sizeof(float) * (size_t)mb_tensor_numel(src));
        return 0;
    }
    mb_tensor *c = mb_tensor_clone(src);
    if (!c)
        return -1;
    for (int i = 0; i < st->n; i++)
        if (st->key[i] == key) {
            mb_tensor_free(st->t[i]);
            st->t[i] = c;
            return 0;
        }
    if (st->n == st->cap) {
        int nc = st->cap ? 2 * st->cap : 16;
        uint32_t *nk = realloc(st->key, sizeof(uint32_t) * (size_t)nc);
        if (nk)
            st->key = nk;
        mb_tensor **nt = nk ? realloc(st->t, sizeof(mb_tensor *) * (size_t)nc) : NULL;
        if (!nt) {
            mb_tensor_free(c);
            return -1;
        }
        st->t = nt;
        st->cap = nc;
    }
    st->key[st->n] = key;
    st->t[st->n++] = c;
    return 0;
}

void rt_exec_set_state(rt_exec *x, rt_state *st)
{
    pthread_mutex_lock(&x->mu);
    x->st = st;
    pthread_mutex_unlock(&x->mu);
}

/* Build, for every step of this site, the earlier steps here that produce
 * what it reads, and the reverse lists. */
static int analyse(rt_exec *x, char *err, size_t errlen)
{
    const mb_plan *p = x->p;
    const mb_graph *g = x->g;
    int ns = p->n_steps, nn = g->n_nodes;
    x->role = calloc((size_t)ns + 1, 1);
    x->ndeps = calloc((size_t)ns + 1, sizeof(int));
    x->dep_off = calloc((size_t)ns + 2, sizeof(int));
    x->input_idx = malloc(sizeof(int) * (size_t)nn);
    int *prod_off = calloc((size_t)nn + 1, sizeof(int));
    int *prod = malloc(sizeof(int) * ((size_t)ns + 1));
    int *mark = malloc(sizeof(int) * ((size_t)ns + 1));
    /* (producer, consumer) pairs, grown as needed */
    size_t cap = 1024, n_pairs = 0;
    int *pairs = malloc(sizeof(int) * 2 * cap);
    if (!x->role || !x->ndeps || !x->dep_off || !x->input_idx || !prod_off || !prod || !mark || !pairs)
        goto oom;
    for (int i = 0, k = 0; i < nn; i++)
        x->input_idx[i] = g->nodes[i].type == MB_OP_INPUT ? k++ : -1;
    for (int s = 0; s < ns; s++) {
        const mb_plan_step *st = &p->steps[s];
        if (st->kind == MB_STEP_COMPUTE && st->site == x->me)
            x->role[s] = ROLE_COMPUTE;
        else if (st->kind == MB_STEP_SEND && st->site == x->me)
            x->role[s] = ROLE_SEND;
        else if (st->kind == MB_STEP_SEND && st->to == x->me)
            x->role[s] = ROLE_RECV;
        if (x->role[s])
            x->n_mine++;
        if (x->role[s] == ROLE_COMPUTE || x->role[s] == ROLE_RECV)
            prod_off[st->op + 1]++;
    }
    for (int i = 0; i < nn; i++)
        prod_off[i + 1] += prod_off[i];
    {
        int *fill = calloc((size_t)nn, sizeof(int));
        if (!fill)
            goto oom;
        for (int s = 0; s < ns; s++)
            if (x->role[s] == ROLE_COMPUTE || x->role[s] == ROLE_RECV) {
                int op = p->steps[s].op;
                prod[prod_off[op] + fill[op]++] = s;
            }
        free(fill);
    }
    for (int s = 0; s < ns; s++)
        mark[s] = -1;
    for (int s = 0; s < ns; s++) {
        const mb_plan_step *st = &p->steps[s];
        if (x->role[s] != ROLE_COMPUTE && x->role[s] != ROLE_SEND)
            continue;
        int n_in = x->role[s] == ROLE_COMPUTE ? g->nodes[st->op].n_inputs : 1;
        for (int k = 0; k < n_in; k++) {
            int src = x->role[s] == ROLE_COMPUTE ? g->nodes[st->op].inputs[k] : st->op;
            if (is_free_here(x, src))
                continue;
            mb_region need = x->role[s] == ROLE_COMPUTE ? mb_node_input_region(g, st->op, k, st->region)
                                                        : st->region;
            int found = 0;
            for (int i = prod_off[src]; i < prod_off[src + 1]; i++) {
                int q = prod[i];
                if (q >= s)
                    break;
                if (!overlap(p->steps[q].region, need))
                    continue;
                found = 1;
                if (mark[q] == s)
                    continue;
                mark[q] = s;
                if (n_pairs == cap) {
                    cap *= 2;
                    int *np = realloc(pairs, sizeof(int) * 2 * cap);
                    if (!np)
                        goto oom;
                    pairs = np;
                }
                pairs[2 * n_pairs] = q;
                pairs[2 * n_pairs + 1] = s;
                n_pairs++;
                x->ndeps[s]++;
                x->dep_off[q + 1]++;
            }
            if (!found) {
                snprintf(err, errlen, "plan step %d on %s needs %s, which no earlier step brings there",
                         s, site_name(x, x->me), g->nodes[src].name);
                goto fail;
            }
        }
    }
    for (int s = 0; s < ns; s++)
        x->dep_off[s + 1] += x->dep_off[s];
    x->dep_list = malloc(sizeof(int) * (n_pairs + 1));
    int *fill = calloc((size_t)ns + 1, sizeof(int));
    if (!x->dep_list || !fill) {
        free(fill);
        goto oom;
    }
    for (size_t i = 0; i < n_pairs; i++) {
        int q = pairs[2 * i], s = pairs[2 * i + 1];
        x->dep_list[x->dep_off[q] + fill[q]++] = s;
    }
    free(fill);
    free(prod_off);
    free(prod);
    free(mark);
    free(pairs);
    return 0;
oom:
    snprintf(err, errlen, "out of memory analysing the plan");
fail:
    free(prod_off);
    free(prod);
    free(mark);
    free(pairs);
    return -1;
}

/* Lock held: was frame id taken lately? */
static int recently_taken(const rt_exec *x, uint32_t id)
{
    for (int i = 0; i < x->n_recent; i++)
        if (x->recent[i] == id)
            return 1;
    return 0;
}

static rt_frame *frame_find(rt_exec *x, uint32_t id)
{
    for (int i = 0; i < RT_MAX_INFLIGHT; i++)
        if (x->frames[i].used && x->frames[i].id == id)
            return &x->frames[i];
    return NULL;
}

/* The frame is over: its slot keeps its buffers for the next frame. */
static void frame_release(rt_exec *x, rt_frame *f)
{
    x->recent[x->recent_pos] = f->id;
    x->recent_pos = (x->recent_pos + 1) % RT_RECENT;
    if (x->n_recent < RT_RECENT)
        x->n_recent++;
    f->used = 0;
    f->id = 0;
    f->done = 0;
    f->n_done = 0;
    f->inputs = NULL;
    f->events.n = 0;
}

static void frame_destroy(rt_frame *f)
{
    free(f->pending);
    free(f->state);
    free(f->arena);
    free(f->view);
    mb_timeline_free(&f->events);
    memset(f, 0, sizeof *f);
}

/* First use of a frame slot: its arrays, and the arena faulted in now (a
 * first touch inside an op would be charged to that op, which the profile
 * never pays). Every op's view points into the arena at its slot. */
static int frame_setup(rt_exec *x, rt_frame *f)
{
    const mb_graph *g = x->g;
    int ns = x->p->n_steps, nn = g->n_nodes;
    f->pending = malloc(sizeof(int) * ((size_t)ns + 1));
    f->state = calloc((size_t)ns + 1, 1);
    f->view = calloc((size_t)nn + 1, sizeof(mb_tensor));
    f->arena = malloc(x->mem.arena_len * sizeof(float));
    if (!f->pending || !f->state || !f->view || !f->arena) {
        frame_destroy(f);
        return -1;
    }
    memset(f->arena, 0, x->mem.arena_len * sizeof(float));
    mb_timeline_init(&f->events);
    for (int op = 0; op < nn; op++) {
        const mb_node *n = &g->nodes[op];
        int sl = x->mem.slot_of[op];
        if (sl < 0)
            continue;
        f->view[op].ndim = n->out_ndim;
        memcpy(f->view[op].dims, n->out_dims, sizeof(int64_t) * (size_t)n->out_ndim);
        f->view[op].data = f->arena + x->mem.slot_off[sl];
        f->view[op].owns_data = 0;
    }
    return 0;
}

/* Separate condition variables: a finished step wakes only the thread that
 * can run what it made ready, not every thread of the site. */
static void wake_all(rt_exec *x)
{
    pthread_cond_broadcast(&x->cv);
    pthread_cond_broadcast(&x->cv_compute);
    for (int i = 0; i < MB_MAX_SITES; i++)
        pthread_cond_broadcast(&x->cv_send[i]);
}

static void fail_locked(rt_exec *x, const char *msg);

/* Lock held: a frame that ends keeps this site's state outputs, before it
 * counts as done (the next frame's state inputs read them). */
static void frame_check_done(rt_exec *x, rt_frame *f)
{
    if (!f->done && f->n_done == x->n_mine) {
        for (int i = 0; i < x->p->n_state && !x->failed; i++) {
            const mb_plan_state *b = &x->p->state[i];
            if (b->site != x->me || b->out_op < 0)
                continue;
            if (!x->st || x->mem.slot_of[b->out_op] < 0 || state_put(x->st, b->key, &f->view[b->out_op]))
                fail_locked(x, x->st ? "out of memory keeping the state" : "a state output, but no state here");
        }
        f->done = 1;
        pthread_cond_broadcast(&x->cv);
    }
}

/* Called with the lock held. */
static rt_frame *frame_create(rt_exec *x, uint32_t id, char *err, size_t errlen)
{
    rt_frame *f = NULL;
    for (int i = 0; i < RT_MAX_INFLIGHT; i++)
        if (!x->frames[i].used) {
            f = &x->frames[i];
            break;
        }
    if (!f) {
        snprintf(err, errlen, "frame %u: %d frames already in flight", id, RT_MAX_INFLIGHT);
        return NULL;
    }
    int ns = x->p->n_steps;
    if (!f->arena && frame_setup(x, f)) {
        snprintf(err, errlen, "out of memory for frame %u", id);
        return NULL;
    }
    memset(f->state, 0, (size_t)ns + 1);
    f->used = 1;
    f->id = id;
    memcpy(f->pending, x->ndeps, sizeof(int) * (size_t)ns);
    for (int s = 0; s < ns; s++)
        if ((x->role[s] == ROLE_COMPUTE || x->role[s] == ROLE_SEND) && f->pending[s] == 0)
            f->state[s] = ST_READY;
    frame_check_done(x, f);
    wake_all(x);
    return f;
}

/* Lock held: step s of frame f finished. */
static void step_done(rt_exec *x, rt_frame *f, int s)
{
    f->state[s] = ST_DONE;
    f->n_done++;
    for (int i = x->dep_off[s]; i < x->dep_off[s + 1]; i++) {
        int d = x->dep_list[i];
        if (--f->pending[d] == 0 && f->state[d] == ST_WAIT) {
            f->state[d] = ST_READY;
            if (x->role[d] == ROLE_COMPUTE)
                pthread_cond_signal(&x->cv_compute);
            else if (x->role[d] == ROLE_SEND)
                pthread_cond_signal(&x->cv_send[x->p->steps[d].to]);
        }
    }
    frame_check_done(x, f);
}

static void add_event(rt_frame *f, int step, int kind, int site, int peer, int op, double t0,
                      double t1, int64_t bytes)
{
    mb_event e = {.frame = f->id, .step = step, .kind = kind, .site = site, .peer = peer,
                  .op = op, .t0 = t0, .t1 = t1, .bytes = bytes};
    mb_timeline_add(&f->events, &e);
}

/* Lock held: the tensor of op on this site for frame f (NULL when op has
 * no place here: no step of this site writes it). */
static mb_tensor *store_get(rt_exec *x, rt_frame *f, int op)
{
    const mb_node *n = &x->g->nodes[op];
    if (n->type == MB_OP_CONSTANT)
        return n->n_params ? n->params[0] : NULL;
    if (n->type == MB_OP_INPUT && x->st_in[op] >= 0)
        return state_find(x->st, x->p->state[x->st_in[op]].key);
    if (n->type == MB_OP_INPUT && x->me == x->p->device)
        return f->inputs ? f->inputs[x->input_idx[op]] : NULL;
    return x->mem.slot_of[op] >= 0 ? &f->view[op] : NULL;
}

static void fail_locked(rt_exec *x, const char *msg)
{
    if (!x->failed) {
        x->failed = 1;
        snprintf(x->fail_msg, sizeof x->fail_msg, "%s", msg);
    }
    wake_all(x);
}

void rt_exec_fail(rt_exec *x, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&x->mu);
    fail_locked(x, msg);
    pthread_mutex_unlock(&x->mu);
}

int rt_exec_failed(rt_exec *x, char *msg, size_t len)
{
    pthread_mutex_lock(&x->mu);
    int f = x->failed;
    if (f && msg)
        snprintf(msg, len, "%s", x->fail_msg);
    pthread_mutex_unlock(&x->mu);
    return f;
}

/* Lock held: lowest (frame, step) ready with the given role (and peer). */
static int pick(rt_exec *x, int role, int peer, rt_frame **out)
{
    rt_frame *best = NULL;
    if (role == ROLE_COMPUTE && x->n_st_here) {
        /* state: frame t+1 reads what frame t keeps when it ends */
        for (int i = 0; i < RT_MAX_INFLIGHT; i++)
            if (x->frames[i].used && !x->frames[i].done && (!best || x->frames[i].id < best->id))
                best = &x->frames[i];
        for (int s = 0; best && s < x->p->n_steps; s++)
            if (best->state[s] == ST_READY && x->role[s] == role) {
                *out = best;
                return s;
            }
        return -1;
    }
    for (int i = 0; i < RT_MAX_INFLIGHT; i++) {
        rt_frame *f = &x->frames[i];
        if (!f->used || f->done || (best && f->id > best->id))
            continue;
        for (int s = 0; s < x->p->n_steps; s++)
            if (f->state[s] == ST_READY && x->role[s] == role &&
                (role != ROLE_SEND || x->p->steps[s].to == peer)) {
                best = f;
                break;
            }
    }
    if (!best)
        return -1;
    for (int s = 0; s < x->p->n_steps; s++)
        if (best->state[s] == ST_READY && x->role[s] == role &&
            (role != ROLE_SEND || x->p->steps[s].to == peer)) {
            *out = best;
            return s;
        }
    return -1;
}

/* One compute step at its site's speed: through the shared compute's gate
 * when on (tq: ready, t0: granted), computed, then stretched to its
 * modelled or dilated duration (t1: the end). A step granted after a queue
 * starts, on the virtual clock, where the previous holder's step ended, so
 * the hand-over's wake-up latency is not added to every queued step. */
static int timed_compute(rt_exec *x, mb_rt_vclock *vc, int waited, const mb_plan_step *st, mb_view *in, int full,
                         mb_tensor *dst, mb_tensor *out, double *tq, double *t0, double *t1, int *held, char *err,
                         size_t errlen)
{
    double vfree = 0;
    *tq = mb_now();
    double share = share_now(x), stretch = share > 0 ? 1.0 / share : 1.0;
    *held = share > 0 ? 0 : gate_enter(&vfree);
    *t0 = mb_now();
    double c0 = slowdown > 1.0 ? mb_rt_thread_cpu_s() : 0;
    int queued = *held && *t0 - *tq > 50e-6;
    double start = queued ? fmax(*tq, fmin(vfree, *t0)) : mb_rt_vclock_begin(vc, *t0, waited);
    if (queued)
        *t0 = start;
    int rc = mb_backend_compute(x->be, x->g, st->op, in, st->region, out, err, errlen);
    if (!rc && !full)
        rc = mb_tensor_paste_region(dst, st->region, out);
    double pred_s = (st->t_end_ms - st->t_start_ms) * 1e-3;
    double vend = 0;
    if (!rc && step_model && isfinite(pred_s) && pred_s >= 0) {
        /* The node type's modelled time for this step (the plan's
         * prediction, in emulated time) stretched by the TDF; an op
         * this machine cannot finish in time is late, and counted. */
        double late = mb_rt_vclock_until(vc, start + pred_s * step_tdf * stretch);
        vend = vc->target;
        if (late > 1e-4) {
            pthread_mutex_lock(&x->mu);
            x->overruns++;
            x->overrun_s += late;
            pthread_mutex_unlock(&x->mu);
        }
    } else if (!rc && slowdown > 1.0) {
        vend = mb_rt_vclock_end(vc, start, (mb_rt_thread_cpu_s() - c0) * stretch);
    } else if (!rc && share > 0) { /* not emulated (or capped): this machine's time, stretched */
        mb_rt_vclock_until(vc, *t0 + (mb_now() - *t0) * stretch);
        vend = vc->target;
    }
    *t1 = mb_now();
    gate_leave(*held, vend > 0 ? fmin(vend, *t1) : *t1);
    return rc;
}

static void *compute_main(void *arg)
{
    rt_exec *x = arg;
    const mb_graph *g = x->g;
    run_thread_hook();
    /* Dilation keeps a virtual clock (mb_rt_vclock_begin) and sleeps to
     * absolute deadlines with a tight timer slack. */
    mb_rt_vclock vc = {0};
    if (slowdown > 1.0 || step_model)
        mb_rt_precise_timers();
    pthread_mutex_lock(&x->mu);
    for (;;) {
        rt_frame *f = NULL;
        int s = -1, waited = 0;
        while (!x->stop && !x->failed && (s = pick(x, ROLE_COMPUTE, -1, &f)) < 0) {
            waited = 1;
            pthread_cond_wait(&x->cv_compute, &x->mu);
        }
        if (x->stop || x->failed)
            break;
        const mb_plan_step *st = &x->p->steps[s];
        const mb_node *n = &g->nodes[st->op];
        f->state[s] = ST_RUNNING;
        mb_view in[MB_MAX_INPUTS];
        int bad = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            mb_tensor *t = store_get(x, f, n->inputs[k]);
            if (!t) {
                bad = 1 + n->inputs[k];
                break;
            }
            in[k] = mb_view_whole(t);
        }
        int full = region_is_full(g, st->op, st->region);
        mb_tensor *dst = store_get(x, f, st->op);
        mb_tensor *out = NULL;
        mb_tensor part = {0};
        if (!bad && dst) {
            if (full) {
                out = dst;
            } else {
                part.ndim = mb_region_dims(g, st->op, st->region, part.dims);
                size_t need = 1;
                for (int k = 0; k < part.ndim; k++)
                    need *= (size_t)part.dims[k];
                if (need > x->scratch_len) {
                    float *ns = realloc(x->scratch, need * sizeof(float));
                    if (ns) {
                        x->scratch = ns;
                        x->scratch_len = need;
                    }
                }
                if (need <= x->scratch_len) {
                    part.data = x->scratch;
                    out = &part;
                }
            }
        }
        if (bad || !dst || !out) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s on %s: input %s is missing%s", n->name, site_name(x, x->me),
                     bad ? g->nodes[bad - 1].name : "?",
                     bad && x->st_in[bad - 1] >= 0 ? " (no state kept under its key on this site)" : "");
            fail_locked(x, bad ? msg : "out of memory");
            break;
        }
        uint32_t fid = f->id;
        pthread_mutex_unlock(&x->mu);
        char err[256] = "";
        double tq, t0, t1;
        int held;
        int rc = timed_compute(x, &vc, waited, st, in, full, dst, out, &tq, &t0, &t1, &held, err, sizeof err);
        pthread_mutex_lock(&x->mu);
        f = frame_find(x, fid);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "compute %s on %s: %s", n->name, site_name(x, x->me),
                     err[0] ? err : "failed");
            fail_locked(x, msg);
            break;
        }
        if (!f)
            continue;
        if (held && t0 - tq > 1e-6)
            add_event(f, s, MB_EV_QUEUE, x->me, -1, st->op, tq, t0, 0);
        add_event(f, s, MB_EV_COMPUTE, x->me, -1, st->op, t0, t1, n->out_bytes);
        step_done(x, f, s);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

static void *sender_main(void *arg)
{
    rt_sender *snd = arg;
    rt_exec *x = snd->x;
    const mb_graph *g = x->g;
    int fd = x->out_fd[snd->peer];
    run_thread_hook();
    pthread_mutex_lock(&x->mu);
    for (;;) {
        rt_frame *f = NULL;
        int s = -1;
        while (!x->stop && !x->failed && (s = pick(x, ROLE_SEND, snd->peer, &f)) < 0)
            pthread_cond_wait(&x->cv_send[snd->peer], &x->mu);
        if (x->stop || x->failed)
            break;
        const mb_plan_step *st = &x->p->steps[s];
        f->state[s] = ST_RUNNING;
        mb_tensor *src = store_get(x, f, st->op);
        uint32_t fid = f->id;
        pthread_mutex_unlock(&x->mu);

        mb_tensor_hdr h = {.epoch = x->epoch, .step = (uint32_t)s, .op = st->op, .region = st->region,
                           .dtype = MB_DTYPE_F32};
        h.ndim = mb_region_dims(g, st->op, st->region, h.dims);
        const float *data = src ? src->data : NULL;
        size_t numel = 1;
        for (int i = 0; i < h.ndim; i++)
            numel *= (size_t)h.dims[i];
        if (src && !region_is_full(g, st->op, st->region)) {
            if (numel > snd->scratch_len) {
                float *ns = realloc(snd->scratch, numel * sizeof(float));
                if (ns) {
                    snd->scratch = ns;
                    snd->scratch_len = numel;
                }
            }
            mb_tensor tmp = {.ndim = h.ndim, .data = snd->scratch};
            memcpy(tmp.dims, h.dims, sizeof tmp.dims);
            mb_view v = mb_view_whole(src);
            data = numel <= snd->scratch_len && !mb_tensor_copy_region(&v, st->region, &tmp) ? snd->scratch
                                                                                          : NULL;
        }
        size_t bytes = numel * sizeof(float);
        char err[256] = "";
        double t0 = mb_now();
        int rc = -1;
        if (data) {
            mb_wbuf b;
            mb_wbuf_init(&b);
            mb_tensor_hdr_encode(&h, &b);
            uint8_t hdr[MB_WIRE_HDR_LEN];
            mb_wire_hdr_encode(hdr, MB_MSG_TENSOR, (uint32_t)(b.len + bytes), fid);
            rc = b.oom ? -1 : mb_wire_write_full(fd, hdr, sizeof hdr, err, sizeof err);
            if (!rc)
                rc = mb_wire_write_full(fd, b.p, b.len, err, sizeof err);
            if (!rc)
                rc = mb_wire_write_full(fd, data, bytes, err, sizeof err);
            mb_wbuf_free(&b);
        } else {
            snprintf(err, sizeof err, "region to send is missing or out of memory");
        }
        double t1 = mb_now();
        pthread_mutex_lock(&x->mu);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "sending %s from %s to %s: %s", g->nodes[st->op].name,
                     site_name(x, x->me), site_name(x, snd->peer), err);
            fail_locked(x, msg);
            break;
        }
        f = frame_find(x, fid);
        if (!f)
            continue;
        add_event(f, s, MB_EV_SEND, x->me, snd->peer, st->op, t0, t1, (int64_t)bytes);
        step_done(x, f, s);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

rt_exec *rt_exec_new(const mb_graph *g, const mb_plan *p, int me, uint32_t epoch, mb_backend *be,
                     const int *out_fd, const mb_topology *names, char *err, size_t errlen)
{
    rt_exec *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    x->g = g;
    x->p = p;
    x->names = names;
    x->me = me;
    x->epoch = epoch;
    x->be = be;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    pthread_cond_init(&x->cv_compute, NULL);
    for (int i = 0; i < MB_MAX_SITES; i++)
        pthread_cond_init(&x->cv_send[i], NULL);
    for (int i = 0; i < MB_MAX_SITES; i++)
        x->out_fd[i] = out_fd ? out_fd[i] : -1;
    x->st_in = malloc(sizeof(int) * ((size_t)g->n_nodes + 1));
    if (!x->st_in) {
        snprintf(err, errlen, "out of memory");
        rt_exec_free(x);
        return NULL;
    }
    for (int i = 0; i < g->n_nodes; i++)
        x->st_in[i] = -1;
    for (int i = 0; i < p->n_state; i++)
        if (p->state[i].site == me) {
            x->n_st_here++;
            if (p->state[i].in_op >= 0)
                x->st_in[p->state[i].in_op] = i;
        }
    if (analyse(x, err, errlen) ||
        rt_mem_plan_build(&x->mem, g, p, me, x->role, x->dep_off, x->dep_list, err, errlen)) {
        rt_exec_free(x);
        return NULL;
    }
    share_register(x, me >= 0 && me < MB_MAX_SITES ? p->share[me] : 0);
    for (int s = 0; s < p->n_steps; s++)
        if (x->role[s] == ROLE_SEND && x->out_fd[p->steps[s].to] < 0) {
            snprintf(err, errlen, "%s sends to %s but has no connection to it", site_name(x, me),
                     site_name(x, p->steps[s].to));
            rt_exec_free(x);
            return NULL;
        }
    if (pthread_create(&x->compute_th, NULL, compute_main, x)) {
        snprintf(err, errlen, "cannot start the compute thread");
        rt_exec_free(x);
        return NULL;
    }
    x->compute_started = 1;
    for (int peer = 0; peer < MB_MAX_SITES; peer++) {
        if (x->out_fd[peer] < 0)
            continue;
        rt_sender *snd = &x->senders[peer];
        snd->x = x;
        snd->peer = peer;
        if (pthread_create(&snd->th, NULL, sender_main, snd)) {
            snprintf(err, errlen, "cannot start a sender thread");
            rt_exec_free(x);
            return NULL;
        }
        snd->started = 1;
    }
    return x;
}

void rt_exec_free(rt_exec *x)
{
    if (!x)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = 1;
    wake_all(x);
    pthread_mutex_unlock(&x->mu);
    if (x->compute_started)
        pthread_join(x->compute_th, NULL);
    share_unregister(x);
    for (int i = 0; i < MB_MAX_SITES; i++) {
        if (x->senders[i].started)
            pthread_join(x->senders[i].th, NULL);
        free(x->senders[i].scratch);
    }
    for (int i = 0; i < RT_MAX_INFLIGHT; i++)
        frame_destroy(&x->frames[i]);
    rt_mem_plan_free(&x->mem);
    free(x->scratch);
    free(x->role);
    free(x->ndeps);
    free(x->dep_off);
    free(x->dep_list);
    free(x->input_idx);
    free(x->st_in);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    pthread_cond_destroy(&x->cv_compute);
    for (int i = 0; i < MB_MAX_SITES; i++)
        pthread_cond_destroy(&x->cv_send[i]);
    free(x);
}

int rt_exec_begin(rt_exec *x, uint32_t frame, mb_tensor *const *inputs, char *err, size_t errlen)
{
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    rt_frame *f = frame_find(x, frame);
    if (f && inputs) {
        snprintf(err, errlen, "frame %u already started", frame);
        rc = -1;
    } else if (!f && !inputs && recently_taken(x, frame)) {
        /* its data came first and it is over: nothing to start */
    } else if (!f) {
        /* Inputs must be in place before any step can run. */
        if (x->me == x->p->device && !inputs) {
            snprintf(err, errlen, "frame %u: the device needs the inputs", frame);
            rc = -1;
        } else {
            f = frame_create(x, frame, err, errlen);
            if (!f)
                rc = -1;
            else
                f->inputs = inputs;
        }
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}

float *rt_exec_recv_buffer(rt_exec *x, uint32_t frame, const mb_tensor_hdr *h, char *err,
                           size_t errlen)
{
    pthread_mutex_lock(&x->mu);
    float *buf = NULL;
    if (x->failed) {
        snprintf(err, errlen, "%s", x->fail_msg);
        goto out;
    }
    rt_frame *f = frame_find(x, frame);
    if (!f && x->me == x->p->device) {
        /* The device starts every frame itself; data for another is bogus. */
        snprintf(err, errlen, "TENSOR for frame %u, which the device is not running", frame);
        goto out;
    }
    if (!f && recently_taken(x, frame)) {
        snprintf(err, errlen, "TENSOR for frame %u, which is over", frame);
        goto out;
    }
    if (!f && !(f = frame_create(x, frame, err, errlen)))
        goto out;
    int s = (int)h->step;
    if (x->role[s] != ROLE_RECV || f->state[s] != ST_WAIT) {
        snprintf(err, errlen, "frame %u step %d received twice", frame, s);
        goto out;
    }
    f->state[s] = ST_RUNNING;
    if (region_is_full(x->g, h->op, h->region)) {
        mb_tensor *t = store_get(x, f, h->op);
        buf = t ? t->data : NULL;
    } else {
        /* A partial region lands in its own place in the arena and is
         * pasted into the tensor when complete (rt_exec_received). */
        size_t n = 1;
        for (int i = 0; i < h->ndim; i++)
            n *= (size_t)h->dims[i];
        if (n > x->mem.recv_len[s]) {
            snprintf(err, errlen, "frame %u step %d: region larger than the plan's", frame, s);
            goto out;
        }
        buf = f->arena + x->mem.recv_off[s];
    }
    if (!buf)
        snprintf(err, errlen, "out of memory receiving %s", x->g->nodes[h->op].name);
out:
    pthread_mutex_unlock(&x->mu);
    return buf;
}

void rt_exec_received(rt_exec *x, uint32_t frame, const mb_tensor_hdr *h, int from, float *buf,
                      double t0, double t1)
{
    pthread_mutex_lock(&x->mu);
    rt_frame *f = frame_find(x, frame);
    int full = region_is_full(x->g, h->op, h->region);
    if (f && !full) {
        mb_tensor tmp = {.ndim = h->ndim, .data = buf, .owns_data = 0};
        memcpy(tmp.dims, h->dims, sizeof tmp.dims);
        mb_tensor *dst = store_get(x, f, h->op);
        if (!dst || mb_tensor_paste_region(dst, h->region, &tmp))
            fail_locked(x, "cannot place a received region");
    }
    if (f && !x->failed) {
        size_t n = 1;
        for (int i = 0; i < h->ndim; i++)
            n *= (size_t)h->dims[i];
        add_event(f, (int)h->step, MB_EV_RECV, x->me, from, h->op, t0, t1, (int64_t)(n * 4));
        step_done(x, f, (int)h->step);
    }
    pthread_mutex_unlock(&x->mu);
}

static void timespec_at(double deadline, struct timespec *ts)
{
    /* pthread_cond_timedwait uses CLOCK_REALTIME by default: convert. */
    double left = deadline - mb_now();
    if (left < 0)
        left = 0;
    clock_gettime(CLOCK_REALTIME, ts);
    double t = (double)ts->tv_sec + ts->tv_nsec * 1e-9 + left;
    ts->tv_sec = (time_t)t;
    ts->tv_nsec = (long)((t - (double)ts->tv_sec) * 1e9);
}

int rt_exec_wait(rt_exec *x, uint32_t frame, double deadline, char *err, size_t errlen)
{
    pthread_mutex_lock(&x->mu);
    int rc = -1;
    for (;;) {
        rt_frame *f = frame_find(x, frame);
        if (x->failed) {
            snprintf(err, errlen, "%s", x->fail_msg);
            break;
        }
        if (!f) {
            snprintf(err, errlen, "frame %u is not running", frame);
            break;
        }
        if (f->done) {
            rc = 0;
            break;
        }
        if (deadline > 0) {
            if (mb_now() >= deadline) {
                snprintf(err, errlen, "frame %u not finished on %s within the timeout (%d of %d steps done)",
                         frame, site_name(x, x->me), f->n_done, x->n_mine);
                break;
            }
            struct timespec ts;
            timespec_at(deadline, &ts);
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
        } else {
            pthread_cond_wait(&x->cv, &x->mu);
        }
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int rt_exec_next_done(rt_exec *x, double deadline, uint32_t *frame)
{
    pthread_mutex_lock(&x->mu);
    int rc = 0;
    for (;;) {
        if (x->failed || x->stop) {
            rc = -1;
            break;
        }
        rt_frame *best = NULL;
        for (int i = 0; i < RT_MAX_INFLIGHT; i++)
            if (x->frames[i].used && x->frames[i].done && (!best || x->frames[i].id < best->id))
                best = &x->frames[i];
        if (best) {
            *frame = best->id;
            rc = 1;
            break;
        }
        if (deadline > 0 && mb_now() >= deadline)
            break;
        struct timespec ts;
        timespec_at(deadline > 0 ? deadline : mb_now() + 0.5, &ts);
        pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int rt_exec_take(rt_exec *x, uint32_t frame, mb_timeline *tl, mb_tensor ***outputs, char *err,
                 size_t errlen)
{
    pthread_mutex_lock(&x->mu);
    rt_frame *f = frame_find(x, frame);
    int rc = -1;
    if (!f || !f->done) {
        snprintf(err, errlen, "frame %u is not finished", frame);
        goto out;
    }
    if (tl)
        for (int i = 0; i < f->events.n; i++)
            mb_timeline_add(tl, &f->events.ev[i]);
    if (outputs) {
        const mb_graph *g = x->g;
        mb_tensor **o = calloc((size_t)g->n_outputs, sizeof *o);
        for (int i = 0; o && i < g->n_outputs; i++) {
            int kept = 0; /* a state output stays where it was computed: NULL here */
            for (int k = 0; k < x->p->n_state; k++)
                kept |= x->p->state[k].out_op == g->outputs[i];
            if (kept)
                continue;
            mb_tensor *t = store_get(x, f, g->outputs[i]);
            o[i] = t ? mb_tensor_clone(t) : NULL;
            if (!o[i]) {
                for (int k = 0; k < i; k++)
                    mb_tensor_free(o[k]);
                free(o);
                o = NULL;
            }
        }
        if (!o) {
            snprintf(err, errlen, "frame %u: an output is missing on the device", frame);
            goto out;
        }
        *outputs = o;
    }
    frame_release(x, f);
    pthread_cond_broadcast(&x->cv);
    rc = 0;
out:
    pthread_mutex_unlock(&x->mu);
    return rc;
}

int rt_exec_my_steps(const rt_exec *x)
{
    return x->n_mine;
}

void rt_exec_overruns(rt_exec *x, int *n, double *late_s)
{
    pthread_mutex_lock(&x->mu);
    *n = x->overruns;
    *late_s = x->overrun_s;
    pthread_mutex_unlock(&x->mu);
}

const rt_mem_plan *rt_exec_mem(const rt_exec *x)
{
    return &x->mem;
}
