/* The reference executor: one graph, one backend, one process. Each node is
 * computed whole (its full output region) in the stored topological order;
 * an intermediate tensor's buffer is reused as soon as its last consumer has
 * run, so peak memory is what a real runtime would need, not the sum of all
 * activations. Timing repeats the whole pass (caches then see what they see
 * in a real inference, not one op re-run in a hot loop) and reports each
 * op's median; the buffers are planned and faulted in once per call, so a
 * pass's wall time is the sum of its op times. */
#include "mecbed/exec.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/platform.h"

#include "backend_impl.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void dims_str(int ndim, const int64_t *dims, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    if (ndim == 0)
        snprintf(buf, len, "scalar");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRId64, i ? "x" : "", dims[i]);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Memory plan of a call: every computed node's output lives in a slot, a
 * buffer allocated and faulted in once before the first pass and reused by
 * every pass. Slots are assigned by liveness (a slot is free again once the
 * last consumer of its tensor has run), so the footprint stays near what a
 * real runtime needs, not the sum of all activations. The timed path then
 * does no allocation, no pool search and no page faults: what a pass costs
 * is what its ops cost. Inputs and constants are borrowed, never owned. */
typedef struct mem_plan {
    int n;            /* nodes */
    int *slot_of;     /* per node: its slot, -1 when borrowed (Input, Constant) */
    int n_slots;
    size_t *slot_cap; /* bytes */
    mb_tensor **slot; /* the buffers (1-D tensors reshaped per use) */
} mem_plan;

static size_t node_bytes(const mb_node *nd)
{
    int64_t numel = 1;
    for (int d = 0; d < nd->out_ndim; d++)
        numel *= nd->out_dims[d];
    return (size_t)(numel > 0 ? numel : 1) * sizeof(float);
}

/* Slot buffers outlive a call: a finished call hands its buffers to this
 * process-wide arena and the next call (the next frame, the next timed
 * run) takes them back, already faulted in, instead of allocating, zeroing
 * and unmapping the model's activations every time (measured: 4-5 ms of
 * CPU per call for MobileNetV2 and ResNet-18, a third of MobileNetV2's
 * compute). A buffer is reused for a need between half its size and its
 * size; the arena keeps at most ARENA_MAX buffers and ARENA_BYTES bytes and
 * frees what does not fit. */
#define ARENA_MAX 64
#define ARENA_BYTES ((size_t)512 << 20)
static pthread_mutex_t arena_mu = PTHREAD_MUTEX_INITIALIZER;
static mb_tensor *arena_buf[ARENA_MAX];
static size_t arena_cap[ARENA_MAX], arena_bytes;
static int arena_n;

/* A buffer of at least `need` bytes from the arena (best fit), or NULL. */
static mb_tensor *arena_take(size_t need, size_t *cap)
{
    pthread_mutex_lock(&arena_mu);
    int best = -1;
    for (int k = 0; k < arena_n; k++)
        if (arena_cap[k] >= need && arena_cap[k] / 2 <= need && (best < 0 || arena_cap[k] < arena_cap[best]))
            best = k;
    mb_tensor *t = NULL;
    if (best >= 0) {
        t = arena_buf[best];
        *cap = arena_cap[best];
        arena_bytes -= arena_cap[best];
        arena_buf[best] = arena_buf[--arena_n];
        arena_cap[best] = arena_cap[arena_n];
    }
    pthread_mutex_unlock(&arena_mu);
    return t;
}

static void arena_give(mb_tensor *t, size_t cap)
{
    if (!t)
        return;
    pthread_mutex_lock(&arena_mu);
    int kept = arena_n < ARENA_MAX && arena_bytes + cap <= ARENA_BYTES;
    if (kept) {
        arena_buf[arena_n] = t;
        arena_cap[arena_n++] = cap;
        arena_bytes += cap;
    }
    pthread_mutex_unlock(&arena_mu);
    if (!kept)
        mb_tensor_free(t);
}

void mb_exec_release(mb_tensor *t)
{
    if (!t)
        return;
    if (!t->owns_data) {
        mb_tensor_free(t);
        return;
    }
    arena_give(t, mb_tensor_bytes(t));
}

/* Pick a free slot for `need` bytes: the smallest free one that fits, else
 * the largest free one grown to fit, else a new one. Returns the slot. */
static int plan_take(mem_plan *mp, char *is_free, size_t need)
{
    int fit = -1, big = -1;
    for (int s = 0; s < mp->n_slots; s++) {
        if (!is_free[s])
            continue;
        if (mp->slot_cap[s] >= need && (fit < 0 || mp->slot_cap[s] < mp->slot_cap[fit]))
            fit = s;
        if (big < 0 || mp->slot_cap[s] > mp->slot_cap[big])
            big = s;
    }
    int s = fit >= 0 ? fit : big;
    if (s < 0) {
        s = mp->n_slots++;
        mp->slot_cap[s] = 0;
    }
    if (mp->slot_cap[s] < need)
        mp->slot_cap[s] = need;
    is_free[s] = 0;
    return s;
}

/* Assign slots by walking the graph once the way a pass does; then allocate
 * and fault in every slot. keep_all: nothing is released (every computed
 * node keeps its own slot). Returns 0 or -1 (out of memory). */
static int plan_build(mem_plan *mp, const mb_graph *g, const int *uses, const char *is_out, int keep_all,
                      const mb_fusion *fz, const int *head)
{
    int n = g->n_nodes;
    size_t nn = (size_t)(n ? n : 1);
    mp->n = n;
    mp->slot_of = malloc(sizeof(int) * nn);
    mp->slot_cap = calloc(nn, sizeof(size_t));
    mp->slot = calloc(nn, sizeof(mb_tensor *));
    int *left = malloc(sizeof(int) * nn);
    char *is_free = calloc(nn, 1);
    int rc = -1;
    if (!mp->slot_of || !mp->slot_cap || !mp->slot || !left || !is_free)
        goto out;
    memcpy(left, uses, sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        const mb_node *nd = &g->nodes[i];
        int fused_into = head && head[i] >= 0; /* this Add or activation runs inside conv head[i] */
        if (nd->type == MB_OP_INPUT || nd->type == MB_OP_CONSTANT) {
            mp->slot_of[i] = -1;
        } else if (fused_into) {
            mp->slot_of[i] = mp->slot_of[head[i]]; /* taken with the conv, before its inputs were released */
        } else {
            size_t need = node_bytes(nd);
            for (int k = 0; fz && k < 2; k++) {
                int f = k ? fz[i].act : fz[i].add;
                if (f >= 0 && node_bytes(&g->nodes[f]) > need)
                    need = node_bytes(&g->nodes[f]);
            }
            mp->slot_of[i] = plan_take(mp, is_free, need);
        }
        if (keep_all)
            continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int p = nd->inputs[k];
            /* a chain's own links share its slot: only the residual is released */
            if (--left[p] == 0 && !is_out[p] && mp->slot_of[p] >= 0 && !(fused_into && mp->slot_of[p] == mp->slot_of[i]))
                is_free[mp->slot_of[p]] = 1;
        }
        if (uses[i] == 0 && !is_out[i] && mp->slot_of[i] >= 0)
            is_free[mp->slot_of[i]] = 1;
    }
    for (int s = 0; s < mp->n_slots; s++) {
        size_t cap;
        if ((mp->slot[s] = arena_take(mp->slot_cap[s], &cap))) {
            mp->slot_cap[s] = cap;
            continue;
        }
        int64_t numel = (int64_t)(mp->slot_cap[s] / sizeof(float));
        if (!(mp->slot[s] = mb_tensor_new(1, &numel)))
            goto out;
        /* calloc hands out untouched pages for large buffers: fault them in
         * now, outside any pass. */
        memset(mp->slot[s]->data, 0, mp->slot_cap[s]);
    }
    rc = 0;
out:
    free(left);
    free(is_free);
    return rc;
}

static void plan_free(mem_plan *mp)
{
    for (int s = 0; mp->slot && s < mp->n_slots; s++)
        arena_give(mp->slot[s], mp->slot_cap[s]);
    free(mp->slot);
    free(mp->slot_of);
    free(mp->slot_cap);
    memset(mp, 0, sizeof *mp);
}

/* One pass over the graph: val[i] receives node i's tensor (a slot or a
 * borrowed one). times_row: n entries (ms), or NULL. Outputs are not zeroed
 * first: a backend writes every element of the region it computes (the
 * runtime hands kernels reused scratch buffers too), so a slot's previous
 * contents never show through, and an op's time is its kernel's alone. */
static int is_fusable_act(mb_op_type t)
{
    return t == MB_OP_RELU || t == MB_OP_CLIP || t == MB_OP_LEAKYRELU || t == MB_OP_HARDSIGMOID ||
           t == MB_OP_HARDSWISH || t == MB_OP_SIGMOID;
}

/* MECBED_FUSE_ADD=0 keeps residual Adds out of fused chains (to measure
 * what fusing them gains, A/B in one build). */
static int fuse_adds(void)
{
    const char *e = getenv("MECBED_FUSE_ADD");
    return !(e && strcmp(e, "0") == 0);
}

/* MECBED_FUSE_BN=0 keeps activations after a BatchNormalization out of
 * fused chains (A/B, as MECBED_FUSE_ADD). */
static int fuse_bn(void)
{
    const char *e = getenv("MECBED_FUSE_BN");
    return !(e && strcmp(e, "0") == 0);
}

/* With fusion: what may run inside conv i (mb_fusion): a residual Add
 * next in order (i its only consumer, the other operand already computed,
 * same shape, no broadcasting), then an activation next in order (the only
 * consumer of the conv or of the Add). Neither link may be a graph output
 * but the last. A BatchNormalization that folding left in the graph (one
 * after a Concat: DenseNet's pre-activation) takes only the activation.
 * The memory plan gives the chain one slot, taken when the conv runs; if
 * the backend then declines, the nodes run on their own, in place. Returns
 * the chain's last node, or -1 (nothing fused). */
static int fusable_chain(const mb_graph *g, int i, const int *uses, const char *is_out, mb_fusion *f)
{
    const mb_node *nd = &g->nodes[i];
    f->add = f->act = -1;
    f->res_first = 0;
    memset(&f->res, 0, sizeof f->res);
    int is_bn = nd->type == MB_OP_BATCHNORM && fuse_bn();
    if ((nd->type != MB_OP_CONV && !is_bn) || i + 1 >= g->n_nodes || uses[i] != 1 || is_out[i])
        return -1;
    int last = i;
    const mb_node *a = &g->nodes[i + 1];
    if (!is_bn && a->type == MB_OP_ADD && a->n_inputs == 2 && (a->inputs[0] == i) != (a->inputs[1] == i) && fuse_adds()) {
        const mb_node *rn = &g->nodes[a->inputs[a->inputs[0] == i ? 1 : 0]];
        int same = rn->out_ndim == nd->out_ndim && a->out_ndim == nd->out_ndim;
        for (int d = 0; same && d < nd->out_ndim; d++)
            same = rn->out_dims[d] == nd->out_dims[d] && a->out_dims[d] == nd->out_dims[d];
        if (same) {
            f->add = last = i + 1;
            f->res_first = a->inputs[0] != i;
        }
    }
    if (last + 1 < g->n_nodes && (last == i || (uses[last] == 1 && !is_out[last]))) {
        const mb_node *b = &g->nodes[last + 1];
        if (is_fusable_act(b->type) && b->n_inputs == 1 && b->inputs[0] == last && b->out_ndim == nd->out_ndim)
            f->act = last = last + 1;
    }
    return last > i ? last : -1;
}

static int run_pass(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, const mem_plan *mp,
                    const mb_fusion *fz, mb_tensor **val, double *times_row, char *err, size_t errlen)
{
    int n = g->n_nodes, next_input = 0;
    mb_view views[MB_MAX_INPUTS];
    for (int i = 0; i < n; i++) {
        const mb_node *nd = &g->nodes[i];
        if (times_row)
            times_row[i] = 0;
        if (nd->type == MB_OP_INPUT) {
            val[i] = inputs[next_input++];
            continue;
        }
        if (nd->type == MB_OP_CONSTANT) {
            val[i] = nd->n_params > 0 ? nd->params[0] : NULL;
            if (!val[i]) {
                seterr(err, errlen, "node '%s' (Constant) has no value", nd->name);
                return -1;
            }
            continue;
        }
        for (int k = 0; k < nd->n_inputs; k++)
            views[k] = mb_view_whole(val[nd->inputs[k]]);
        mb_fusion f = {-1, 0, {0}, -1};
        if (fz && (fz[i].add >= 0 || fz[i].act >= 0)) {
            f = fz[i];
            if (f.add >= 0)
                f.res = mb_view_whole(val[g->nodes[f.add].inputs[f.res_first ? 0 : 1]]);
        }
        int last = f.act >= 0 ? f.act : f.add;
        mb_tensor *out = mp->slot[mp->slot_of[i]]; /* with a chain: the slot they share */
        out->ndim = nd->out_ndim;
        memcpy(out->dims, nd->out_dims, sizeof(int64_t) * (size_t)nd->out_ndim);
        char berr[256] = "";
        mb_region r = mb_node_full_region(g, i);
        double t0 = mb_now();
        int brc = last >= 0 ? mb_backend_compute_fused(be, g, i, &f, views, r, out, berr, sizeof berr) : 0;
        if (brc == 1) {
            double t1 = mb_now();
            for (int k = i; k <= last; k++) {
                val[k] = out;
                if (times_row)
                    times_row[k] = k == i ? (t1 - t0) * 1e3 : 0;
            }
            i = last; /* done with the Add and the activation too */
            continue;
        }
        if (brc == 0)
            brc = mb_backend_compute(be, g, i, views, r, out, berr, sizeof berr);
        double t1 = mb_now();
        if (brc) {
            seterr(err, errlen, "node '%s' (%s) on backend %s: %s", nd->name, mb_op_name(nd->type), mb_backend_name(be),
                   berr[0] ? berr : "compute failed");
            return -1;
        }
        val[i] = out;
        if (times_row)
            times_row[i] = (t1 - t0) * 1e3;
    }
    return 0;
}

static int check_inputs(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, char *err, size_t errlen)
{
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *nd = &g->nodes[i];
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] < 0 || nd->inputs[j] >= i) {
                seterr(err, errlen, "node '%s': input %d is not an earlier node (graph not in topological order)",
                       nd->name, j);
                return -1;
            }
        if (nd->type == MB_OP_INPUT) {
            const mb_tensor *t = inputs ? inputs[k] : NULL;
            if (!t) {
                seterr(err, errlen, "no tensor given for graph input %d ('%s')", k, nd->name);
                return -1;
            }
            int same = t->ndim == nd->out_ndim;
            for (int d = 0; same && d < t->ndim; d++)
                same = t->dims[d] == nd->out_dims[d];
            if (!same) {
                char a[128], b[128];
                dims_str(t->ndim, t->dims, a, sizeof a);
                dims_str(nd->out_ndim, nd->out_dims, b, sizeof b);
                seterr(err, errlen, "graph input %d ('%s') has shape %s, the model expects %s", k, nd->name, a, b);
                return -1;
            }
            k++;
        } else if (nd->type != MB_OP_CONSTANT && !mb_backend_supports(be, g, i)) {
            seterr(err, errlen, "backend %s cannot run node '%s' (%s)", mb_backend_name(be), nd->name, mb_op_name(nd->type));
            return -1;
        }
    }
    return 0;
}

int mb_exec_run(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, mb_tensor ***outputs,
                const mb_exec_opts *opts, mb_tensor ***all, char *err, size_t errlen)
{
    static const mb_exec_opts defaults = {0, NULL, 1, 0};
    if (!opts)
        opts = &defaults;
    if (outputs)
        *outputs = NULL;
    if (all)
        *all = NULL;
    if (!g || !be || !outputs) {
        seterr(err, errlen, "mb_exec_run: missing graph, backend or outputs");
        return -1;
    }
    if (g->n_outputs < 1) {
        seterr(err, errlen, "model '%s' has no outputs", g->name);
        return -1;
    }
    if (mb_exec_check_memory(g, err, errlen) || check_inputs(g, be, inputs, err, errlen))
        return -1;

    int n = g->n_nodes;
    int keep_all = opts->keep_all && all;
    int repeats = opts->repeats > 0 ? opts->repeats : 1;
    size_t nn = (size_t)(n ? n : 1);
    int *uses = calloc(nn, sizeof(int));
    char *is_out = calloc(nn, 1);
    mb_tensor **val = calloc(nn, sizeof(mb_tensor *));
    mem_plan mp = {0};
    double *samples = opts->times ? calloc(nn * (size_t)repeats, sizeof(double)) : NULL;
    mb_tensor **outs = calloc((size_t)g->n_outputs, sizeof(mb_tensor *));
    mb_fusion *fz = NULL; /* per node: what runs inside it */
    int *head = NULL;     /* per node: the conv it runs inside, or -1 */
    int rc = -1;
    if (!uses || !is_out || !val || (opts->times && !samples) || !outs) {
        seterr(err, errlen, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            uses[g->nodes[i].inputs[k]]++;
    for (int o = 0; o < g->n_outputs; o++) {
        if (g->outputs[o] < 0 || g->outputs[o] >= n) {
            seterr(err, errlen, "model '%s': output %d names no node", g->name, o);
            goto done;
        }
        is_out[g->outputs[o]] = 1;
    }
    if (opts->fuse && !keep_all && be->compute_fused) {
        fz = malloc(sizeof *fz * nn);
        head = malloc(sizeof(int) * nn);
        if (!fz || !head) {
            seterr(err, errlen, "out of memory");
            goto done;
        }
        for (int i = 0; i < n; i++)
            head[i] = -1;
        for (int i = 0; i < n; i++) {
            int last = head[i] < 0 ? fusable_chain(g, i, uses, is_out, &fz[i]) : -1;
            if (head[i] >= 0)
                fz[i].add = fz[i].act = -1;
            for (int k = i + 1; k <= last; k++)
                head[k] = i;
        }
    }
    if (plan_build(&mp, g, uses, is_out, keep_all, fz, head)) {
        mb_exec_memory_error(g, "activations", err, errlen);
        goto done;
    }

    for (int pass = 0; pass < repeats; pass++)
        if (run_pass(g, be, inputs, &mp, fz, val, samples ? samples + (size_t)pass * nn : NULL, err, errlen))
            goto done;

    /* Hand over outputs: move a slot out of the plan, clone borrowed or
     * shared tensors. */
    for (int o = 0; o < g->n_outputs; o++) {
        int id = g->outputs[o], s = mp.slot_of[id];
        int shared = keep_all || s < 0;
        for (int q = 0; q < g->n_outputs; q++)
            shared |= q != o && g->outputs[q] == id; /* one node in two output slots */
        outs[o] = shared ? mb_tensor_clone(val[id]) : val[id];
        if (!outs[o]) {
            seterr(err, errlen, "out of memory copying output '%s'", g->nodes[id].name);
            for (int q = 0; q < o; q++)
                mb_tensor_free(outs[q]);
            goto done;
        }
        if (!shared)
            mp.slot[s] = NULL;
    }
    if (keep_all) {
        /* Every computed node has its own slot: move them all. */
        mb_tensor **everything = calloc(nn, sizeof(mb_tensor *));
        if (!everything) {
            seterr(err, errlen, "out of memory");
            for (int o = 0; o < g->n_outputs; o++)
                mb_tensor_free(outs[o]);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            int s = mp.slot_of[i];
            if (g->nodes[i].type == MB_OP_CONSTANT)
                everything[i] = NULL; /* free node: its value is the node's own param */
            else if (s < 0)
                everything[i] = val[i] ? mb_tensor_clone(val[i]) : NULL;
            else {
                everything[i] = mp.slot[s];
                mp.slot[s] = NULL;
            }
        }
        *all = everything;
    }

    if (opts->times) {
        double *col = malloc(sizeof(double) * (size_t)repeats);
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < repeats && col; r++)
                col[r] = samples[(size_t)r * nn + (size_t)i];
            if (col)
                qsort(col, (size_t)repeats, sizeof(double), cmp_double);
            opts->times[i].node = i;
            opts->times[i].ms = !col ? samples[i]
                                : repeats % 2 ? col[repeats / 2]
                                              : 0.5 * (col[repeats / 2 - 1] + col[repeats / 2]);
        }
        free(col);
    }
    *outputs = outs;
    outs = NULL;
    rc = 0;
done:
    free(fz);
    free(head);
    free(outs);
    free(uses);
    free(is_out);
    free(val);
    plan_free(&mp);
    free(samples);
    return rc;
}

int mb_exec_check_memory(const mb_graph *g, char *err, size_t errlen)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return 0;
    double mem = (double)pages * (double)page;
    int worst = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (worst < 0 || g->nodes[i].out_bytes > g->nodes[worst].out_bytes)
            worst = i;
    if (worst < 0 || (double)g->nodes[worst].out_bytes <= mem)
        return 0;
    const mb_node *nd = &g->nodes[worst];
    char dims[256];
    dims_str(nd->out_ndim, nd->out_dims, dims, sizeof dims);
    seterr(err, errlen,
           "model '%s': %s '%s' (%s) is %s float32, %.1f GB: more than this machine's %.1f GB of memory "
           "(it can be planned, not run here)",
           g->name, nd->type == MB_OP_INPUT ? "input" : "the output of op", nd->name, mb_op_name(nd->type), dims,
           (double)nd->out_bytes / 1e9, mem / 1e9);
    return -1;
}

void mb_exec_memory_error(const mb_graph *g, const char *what, char *err, size_t errlen)
{
    if (!mb_exec_check_memory(g, err, errlen))
        seterr(err, errlen, "model '%s': out of memory for its %s", g->name, what);
}

/* An integer or bool input (token ids, token types, masks): whole numbers
 * in [0, bound), bound the smallest table a Gather looks up with it (the
 * vocabulary), else 2. in holds uniform values in [-1, 1) to map. */
static void int_input_values(const mb_graph *g, int node, mb_tensor *t)
{
    int64_t bound = 0;
    for (int j = node + 1; j < g->n_nodes; j++) {
        const mb_node *c = &g->nodes[j];
        if (c->type == MB_OP_GATHER && c->n_inputs == 1 && c->a.gather_table && c->inputs[0] == node) {
            int64_t rows = c->params[0]->dims[c->a.axis];
            if (!bound || rows < bound)
                bound = rows;
        }
    }
    if (!bound)
        bound = 2;
    if (g->nodes[node].out_dtype == MB_DT_BOOL)
        bound = 2;
    int64_t n = mb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = (int64_t)((t->data[i] + 1.0f) * 0.5f * (float)bound);
        t->data[i] = (float)(v < 0 ? 0 : v >= bound ? bound - 1 : v);
    }
}

mb_tensor **mb_exec_make_inputs(const mb_graph *g, uint64_t seed)
{
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
    /* a tensor larger than the machine would be faulted in while filled */
    if (mb_exec_check_memory(g, NULL, 0))
        return NULL;
    /* NULL-terminated as a convenience; the count is the graph's Input nodes. */
    mb_tensor **in = calloc((size_t)n_in + 1, sizeof(mb_tensor *));
    if (!in)
        return NULL;
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *nd = &g->nodes[i];
        if (nd->type != MB_OP_INPUT)
            continue;
        int ndim = nd->out_ndim ? nd->out_ndim : nd->a.shape_ndim;
        const int64_t *dims = nd->out_ndim ? nd->out_dims : nd->a.shape;
        in[k] = mb_tensor_new(ndim, dims);
        if (!in[k]) {
            for (int q = 0; q < k; q++)
                mb_tensor_free(in[q]);
            free(in);
            return NULL;
        }
        /* Roughly the range of a normalised image. */
        mb_tensor_fill_uniform(in[k], seed * 1000003u + (uint64_t)k, -1.0f, 1.0f);
        if (nd->out_dtype != MB_DT_FLOAT)
            int_input_values(g, i, in[k]);
        k++;
    }
    return in;
}
