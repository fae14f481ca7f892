/* The reference executor: one graph, one backend, one process. Each node is
 * computed whole (its full output region) in the stored topological order;
 * an intermediate tensor is freed as soon as its last consumer has run, so
 * peak memory is what a real runtime would need, not the sum of all
 * activations. Timing repeats the whole pass (caches then see what they see
 * in a real inference, not one op re-run in a hot loop) and reports each
 * op's median. */
#include "mecbed/exec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/platform.h"

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

/* Tensors of one pass. Inputs and constants are borrowed, never freed here.
 * Released tensors go to a pool and their buffers are reused by later ops
 * and later passes: fresh large allocations are lazily mapped, and their
 * first-touch page faults cost more than the ops themselves on some VMs. */
typedef struct pooled {
    mb_tensor *t;
    size_t cap; /* bytes of t->data */
} pooled;

typedef struct pass_state {
    int n;
    mb_tensor **val;
    char *borrowed;
    size_t *cap; /* bytes of val[i]'s buffer */
    pooled *pool; /* idle buffers */
    int n_pool;
    size_t pool_bytes, pool_budget;
} pass_state;

/* Only large buffers are pooled (malloc recycles small ones well; large ones
 * are mapped afresh each time). The pool holds at most POOL_MAX buffers and
 * pool_budget bytes (a few times the graph's largest activation): past that
 * the smallest go first, so it cannot grow into keeping every activation. */
#define POOL_MAX 64
#define POOL_MIN_BYTES (256 * 1024)

static void pool_evict_smallest(pass_state *ps)
{
    int small = 0;
    for (int k = 1; k < ps->n_pool; k++)
        if (ps->pool[k].cap < ps->pool[small].cap)
            small = k;
    ps->pool_bytes -= ps->pool[small].cap;
    mb_tensor_free(ps->pool[small].t);
    ps->pool[small] = ps->pool[--ps->n_pool];
}

static void drop(pass_state *ps, int i)
{
    mb_tensor *t = ps->val[i];
    ps->val[i] = NULL;
    if (!t || ps->borrowed[i])
        return;
    size_t cap = ps->cap[i];
    if (cap < POOL_MIN_BYTES || cap > ps->pool_budget ||
        (!ps->pool && !(ps->pool = malloc(sizeof *ps->pool * POOL_MAX)))) {
        mb_tensor_free(t);
        return;
    }
    while (ps->n_pool && (ps->n_pool == POOL_MAX || ps->pool_bytes + cap > ps->pool_budget))
        pool_evict_smallest(ps);
    ps->pool[ps->n_pool++] = (pooled){t, cap};
    ps->pool_bytes += cap;
}

/* A tensor of the given dims: the smallest pooled buffer that fits without
 * wasting more than half of it, else a new one. */
static mb_tensor *obtain(pass_state *ps, int ndim, const int64_t *dims, size_t *cap)
{
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++)
        numel *= dims[d];
    size_t need = (size_t)(numel > 0 ? numel : 1) * sizeof(float);
    int best = -1;
    for (int k = 0; k < ps->n_pool; k++)
        if (ps->pool[k].cap >= need && ps->pool[k].cap / 2 <= need &&
            (best < 0 || ps->pool[k].cap < ps->pool[best].cap))
            best = k;
    if (best < 0) {
        *cap = need;
        return mb_tensor_new(ndim, dims);
    }
    mb_tensor *t = ps->pool[best].t;
    *cap = ps->pool[best].cap;
    ps->pool_bytes -= *cap;
    ps->pool[best] = ps->pool[--ps->n_pool];
    t->ndim = ndim;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
    return t;
}

static void pass_release(pass_state *ps)
{
    for (int i = 0; i < ps->n; i++)
        drop(ps, i);
}

static void pool_free(pass_state *ps)
{
    for (int k = 0; k < ps->n_pool; k++)
        mb_tensor_free(ps->pool[k].t);
    free(ps->pool);
    ps->pool = NULL;
    ps->n_pool = 0;
    ps->pool_bytes = 0;
}

/* One pass over the graph. times_row: n entries (ms), or NULL. */
static int run_pass(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, const int *uses,
                    const char *is_out, int keep_all, pass_state *ps, double *times_row, char *err,
                    size_t errlen)
{
    int n = g->n_nodes, next_input = 0;
    int *left = malloc(sizeof(int) * (size_t)(n ? n : 1));
    mb_view *views = malloc(sizeof(mb_view) * MB_MAX_INPUTS);
    if (!left || !views) {
        free(left);
        free(views);
        seterr(err, errlen, "out of memory");
        return -1;
    }
    memcpy(left, uses, sizeof(int) * (size_t)n);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const mb_node *nd = &g->nodes[i];
        if (times_row)
            times_row[i] = 0;
        if (nd->type == MB_OP_INPUT) {
            ps->val[i] = inputs[next_input++];
            ps->borrowed[i] = 1;
        } else if (nd->type == MB_OP_CONSTANT) {
            ps->val[i] = nd->n_params > 0 ? nd->params[0] : NULL;
            ps->borrowed[i] = 1;
            if (!ps->val[i]) {
                seterr(err, errlen, "node '%s' (Constant) has no value", nd->name);
                rc = -1;
                break;
            }
        } else {
            for (int k = 0; k < nd->n_inputs; k++)
                views[k] = mb_view_whole(ps->val[nd->inputs[k]]);
            size_t cap = 0;
            mb_tensor *out = obtain(ps, nd->out_ndim, nd->out_dims, &cap);
            if (!out) {
                char s[128];
                dims_str(nd->out_ndim, nd->out_dims, s, sizeof s);
                seterr(err, errlen, "node '%s': cannot allocate its %s output", nd->name, s);
                rc = -1;
                break;
            }
            /* Zero (kernels may accumulate) and fault in the pages of a fresh
             * buffer before the clock starts. */
            memset(out->data, 0, mb_tensor_bytes(out));
            char berr[256] = "";
            mb_region r = mb_node_full_region(g, i);
            double t0 = mb_now();
            int brc = mb_backend_compute(be, g, i, views, r, out, berr, sizeof berr);
            double t1 = mb_now();
            if (brc) {
                mb_tensor_free(out);
                seterr(err, errlen, "node '%s' (%s) on backend %s: %s", nd->name, mb_op_name(nd->type),
                       mb_backend_name(be),
                       berr[0] ? berr : "compute failed");
                rc = -1;
                break;
            }
            ps->val[i] = out;
            ps->borrowed[i] = 0;
            ps->cap[i] = cap;
            if (times_row)
                times_row[i] = (t1 - t0) * 1e3;
        }
        if (keep_all)
            continue;
        /* Drop tensors nobody will read again. */
        for (int k = 0; k < nd->n_inputs; k++) {
            int p = nd->inputs[k];
            if (--left[p] == 0 && !is_out[p])
                drop(ps, p);
        }
        if (uses[i] == 0 && !is_out[i])
            drop(ps, i);
    }
    free(left);
    free(views);
    return rc;
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
            seterr(err, errlen, "backend %s cannot run node '%s' (%s)", mb_backend_name(be), nd->name,
                   mb_op_name(nd->type));
            return -1;
        }
    }
    return 0;
}

int mb_exec_run(const mb_graph *g, mb_backend *be, mb_tensor *const *inputs, mb_tensor ***outputs,
                const mb_exec_opts *opts, mb_tensor ***all, char *err, size_t errlen)
{
    static const mb_exec_opts defaults = {0, NULL, 1};
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
    if (check_inputs(g, be, inputs, err, errlen))
        return -1;

    int n = g->n_nodes;
    int keep_all = opts->keep_all && all;
    int repeats = opts->repeats > 0 ? opts->repeats : 1;
    size_t nn = (size_t)(n ? n : 1);
    int *uses = calloc(nn, sizeof(int));
    char *is_out = calloc(nn, 1);
    pass_state ps = {n, calloc(nn, sizeof(mb_tensor *)), calloc(nn, 1), calloc(nn, sizeof(size_t)), NULL, 0, 0, 0};
    double *samples = opts->times ? calloc(nn * (size_t)repeats, sizeof(double)) : NULL;
    mb_tensor **outs = calloc((size_t)g->n_outputs, sizeof(mb_tensor *));
    int rc = -1;
    if (!uses || !is_out || !ps.val || !ps.borrowed || !ps.cap || (opts->times && !samples) || !outs) {
        seterr(err, errlen, "out of memory");
        goto done;
    }
    size_t largest = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            uses[g->nodes[i].inputs[k]]++;
        if ((size_t)g->nodes[i].out_bytes > largest)
            largest = (size_t)g->nodes[i].out_bytes;
    }
    ps.pool_budget = 4 * largest > ((size_t)32 << 20) ? 4 * largest : (size_t)32 << 20;
    for (int o = 0; o < g->n_outputs; o++) {
        if (g->outputs[o] < 0 || g->outputs[o] >= n) {
            seterr(err, errlen, "model '%s': output %d names no node", g->name, o);
            goto done;
        }
        is_out[g->outputs[o]] = 1;
    }

    for (int pass = 0; pass < repeats; pass++) {
        int last = pass == repeats - 1;
        if (run_pass(g, be, inputs, uses, is_out, last && keep_all, &ps, samples ? samples + (size_t)pass * nn : NULL,
                     err, errlen)) {
            pass_release(&ps);
            goto done;
        }
        if (!last)
            pass_release(&ps);
    }

    /* Hand over outputs: move owned tensors, clone borrowed or shared ones. */
    for (int o = 0; o < g->n_outputs; o++) {
        int id = g->outputs[o];
        int shared = keep_all || ps.borrowed[id];
        for (int q = 0; q < g->n_outputs; q++)
            shared |= q != o && g->outputs[q] == id; /* one node in two output slots */
        outs[o] = shared ? mb_tensor_clone(ps.val[id]) : ps.val[id];
        if (!outs[o]) {
            seterr(err, errlen, "out of memory copying output '%s'", g->nodes[id].name);
            for (int q = 0; q < o; q++)
                mb_tensor_free(outs[q]);
            pass_release(&ps);
            goto done;
        }
        if (!shared)
            ps.val[id] = NULL;
    }
    if (keep_all) {
        mb_tensor **everything = calloc(nn, sizeof(mb_tensor *));
        if (!everything) {
            seterr(err, errlen, "out of memory");
            for (int o = 0; o < g->n_outputs; o++)
                mb_tensor_free(outs[o]);
            pass_release(&ps);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            if (g->nodes[i].type == MB_OP_CONSTANT)
                everything[i] = NULL; /* free node: its value is the node's own param */
            else if (ps.borrowed[i])
                everything[i] = ps.val[i] ? mb_tensor_clone(ps.val[i]) : NULL;
            else {
                everything[i] = ps.val[i];
                ps.val[i] = NULL;
            }
        }
        *all = everything;
    }
    pass_release(&ps);

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
    free(outs);
    free(uses);
    free(is_out);
    if (ps.val)
        pass_release(&ps);
    pool_free(&ps);
    free(ps.val);
    free(ps.borrowed);
    free(ps.cap);
    free(samples);
    return rc;
}

mb_tensor **mb_exec_make_inputs(const mb_graph *g, uint64_t seed)
{
    int n_in = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n_in += g->nodes[i].type == MB_OP_INPUT;
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
        k++;
    }
    return in;
}
