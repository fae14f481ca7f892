/* mecbed runtime: a site executor's memory plan, slots by liveness over the
 * steps the site runs (see rt_mem.h for why reuse follows dependencies, not
 * plan order). */
#include "rt_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/wire.h"

/* 64-byte alignment of every slot: a cache line, and what the vector
 * kernels like to start on. */
#define ALIGN_FLOATS 16

static size_t round_up(size_t n)
{
    return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

static size_t op_numel(const mb_node *n)
{
    int64_t numel = 1;
    for (int d = 0; d < n->out_ndim; d++)
        numel *= n->out_dims[d];
    return (size_t)(numel > 0 ? numel : 1);
}

/* A tensor present without any step: constants, the device's inputs, the
 * site's state (a state binding's input, read from the site's state). */
static int is_borrowed(const mb_graph *g, const mb_plan *p, int me, int op)
{
    mb_op_type t = g->nodes[op].type;
    if (t == MB_OP_INPUT)
        for (int i = 0; i < p->n_state; i++)
            if (p->state[i].in_op == op && p->state[i].site == me)
                return 1;
    return t == MB_OP_CONSTANT || (t == MB_OP_INPUT && me == p->device);
}

/* Working state of one build. Steps are numbered locally (this site's steps
 * in plan order); users/writers are CSR lists of local numbers per op. */
typedef struct build {
    int n_mine;
    int *mine;                /* local -> plan step */
    int *loc;                 /* plan step -> local, -1 */
    int *use_off, *use_list;  /* per op: steps that write or read it */
    int *wr_off, *wr_list;    /* per op: steps that write it */
    uint64_t *anc;            /* per local step: its ancestors (bitset), NULL when too many */
    size_t words;
} build;

static void build_free(build *b)
{
    free(b->mine);
    free(b->loc);
    free(b->use_off);
    free(b->use_list);
    free(b->wr_off);
    free(b->wr_list);
    free(b->anc);
}

/* Calls fn(b, op, local, is_write) for every tensor every step touches. */
static void for_each_touch(build *b, const mb_graph *g, const mb_plan *p, int me, const uint8_t *role,
                           void (*fn)(build *, int, int, int))
{
    for (int i = 0; i < b->n_mine; i++) {
        const mb_plan_step *st = &p->steps[b->mine[i]];
        int r = role[b->mine[i]];
        if (r == RT_ROLE_COMPUTE)
            for (int k = 0; k < g->nodes[st->op].n_inputs; k++) {
                int src = g->nodes[st->op].inputs[k];
                if (!is_borrowed(g, p, me, src))
                    fn(b, src, i, 0);
            }
        fn(b, st->op, i, r != RT_ROLE_SEND);
    }
}

static void count_touch(build *b, int op, int local, int is_write)
{
    (void)local;
    b->use_off[op + 1]++;
    if (is_write)
        b->wr_off[op + 1]++;
}

static void fill_touch(build *b, int op, int local, int is_write)
{
    /* use_off/wr_off were advanced to each list's end by the caller. */
    b->use_list[b->use_off[op]++] = local;
    if (is_write)
        b->wr_list[b->wr_off[op]++] = local;
}

static int build_lists(build *b, const mb_graph *g, const mb_plan *p, int me, const uint8_t *role)
{
    int nn = g->n_nodes, ns = p->n_steps;
    b->mine = malloc(sizeof(int) * ((size_t)ns + 1));
    b->loc = malloc(sizeof(int) * ((size_t)ns + 1));
    b->use_off = calloc((size_t)nn + 1, sizeof(int));
    b->wr_off = calloc((size_t)nn + 1, sizeof(int));
    if (!b->mine || !b->loc || !b->use_off || !b->wr_off)
        return -1;
    for (int s = 0; s < ns; s++) {
        b->loc[s] = role[s] ? b->n_mine : -1;
        if (role[s])
            b->mine[b->n_mine++] = s;
    }
    for_each_touch(b, g, p, me, role, count_touch);
    for (int i = 0; i < nn; i++) {
        b->use_off[i + 1] += b->use_off[i];
        b->wr_off[i + 1] += b->wr_off[i];
    }
    b->use_list = malloc(sizeof(int) * ((size_t)b->use_off[nn] + 1));
    b->wr_list = malloc(sizeof(int) * ((size_t)b->wr_off[nn] + 1));
    if (!b->use_list || !b->wr_list)
        return -1;
    /* Fill from each list's start, then shift the offsets back. */
    for_each_touch(b, g, p, me, role, fill_touch);
    for (int i = nn; i > 0; i--) {
        b->use_off[i] = b->use_off[i - 1];
        b->wr_off[i] = b->wr_off[i - 1];
    }
    b->use_off[0] = b->wr_off[0] = 0;
    return 0;
}

/* Ancestor sets in plan order: a producer is earlier than its consumers, so
 * a step's set is complete before it is propagated. */
static int build_ancestors(build *b, const int *dep_off, const int *dep_list)
{
    if (b->n_mine > RT_MEM_MAX_STEPS)
        return 0;
    b->words = ((size_t)b->n_mine + 63) / 64;
    b->anc = calloc((size_t)b->n_mine * b->words + 1, sizeof(uint64_t));
    if (!b->anc)
        return -1;
    for (int i = 0; i < b->n_mine; i++) {
        int s = b->mine[i];
        const uint64_t *a = b->anc + (size_t)i * b->words;
        for (int k = dep_off[s]; k < dep_off[s + 1]; k++) {
            int j = b->loc[dep_list[k]];
            if (j < 0)
                continue;
            uint64_t *d = b->anc + (size_t)j * b->words;
            for (size_t w = 0; w < b->words; w++)
                d[w] |= a[w];
            d[i / 64] |= 1ULL << (i % 64);
        }
    }
    return 0;
}

/* Every step touching a finishes before any step writing op can start. */
static int dead_before(const build *b, int a, int op)
{
    if (!b->anc)
        return 0;
    for (int w = b->wr_off[op]; w < b->wr_off[op + 1]; w++) {
        const uint64_t *anc = b->anc + (size_t)b->wr_list[w] * b->words;
        for (int u = b->use_off[a]; u < b->use_off[a + 1]; u++) {
            int s = b->use_list[u];
            if (!(anc[s / 64] >> (s % 64) & 1))
                return 0;
        }
    }
    return 1;
}

/* Slots in the order tensors are first written: the smallest reusable slot
 * that fits, else the largest reusable one grown, else a new one (the
 * executor's policy, kernels/exec.c). */
static void assign_slots(rt_mem_plan *mp, const build *b, const mb_graph *g, const mb_plan *p, int me,
                        size_t *cap, int *occupant, const char *keep)
{
    for (int i = 0; i < b->n_mine; i++) {
        int op = p->steps[b->mine[i]].op;
        if (mp->slot_of[op] >= 0 || b->wr_off[op] == b->wr_off[op + 1] || is_borrowed(g, p, me, op))
            continue;
        size_t need = op_numel(&g->nodes[op]);
        int fit = -1, big = -1;
        for (int s = 0; s < mp->n_slots; s++) {
            if (keep[occupant[s]] || !dead_before(b, occupant[s], op))
                continue;
            if (cap[s] >= need && (fit < 0 || cap[s] < cap[fit]))
                fit = s;
            if (big < 0 || cap[s] > cap[big])
                big = s;
        }
        int s = fit >= 0 ? fit : big;
        if (s < 0) {
            s = mp->n_slots++;
            cap[s] = 0;
        } else {
            mp->n_reused++;
        }
        if (cap[s] < need)
            cap[s] = need;
        occupant[s] = op;
        mp->slot_of[op] = s;
        mp->n_held++;
    }
}

static void lay_out(rt_mem_plan *mp, const mb_graph *g, const mb_plan *p, const uint8_t *role,
                    const size_t *cap)
{
    size_t at = 0;
    for (int s = 0; s < mp->n_slots; s++) {
        mp->slot_off[s] = at;
        at += round_up(cap[s]);
    }
    for (int s = 0; s < p->n_steps; s++) {
        const mb_plan_step *st = &p->steps[s];
        mb_region full = mb_node_full_region(g, st->op);
        if (role[s] != RT_ROLE_RECV || !memcmp(&full, &st->region, sizeof full))
            continue;
        int64_t dims[MB_MAX_DIMS];
        int nd = mb_region_dims(g, st->op, st->region, dims);
        size_t n = 1;
        for (int k = 0; k < nd; k++)
            n *= (size_t)dims[k];
        mp->recv_off[s] = at;
        mp->recv_len[s] = n;
        at += round_up(n);
    }
    mp->arena_len = at ? at : 1;
}

int rt_mem_plan_build(rt_mem_plan *mp, const mb_graph *g, const mb_plan *p, int me, const uint8_t *role,
                      const int *dep_off, const int *dep_list, char *err, size_t errlen)
{
    int nn = g->n_nodes, ns = p->n_steps;
    memset(mp, 0, sizeof *mp);
    build b = {0};
    size_t *cap = calloc((size_t)nn + 1, sizeof(size_t));
    int *occupant = calloc((size_t)nn + 1, sizeof(int));
    char *keep = calloc((size_t)nn + 1, 1);
    mp->slot_of = malloc(sizeof(int) * ((size_t)nn + 1));
    mp->slot_off = calloc((size_t)nn + 1, sizeof(size_t));
    mp->recv_off = calloc((size_t)ns + 1, sizeof(size_t));
    mp->recv_len = calloc((size_t)ns + 1, sizeof(size_t));
    int rc = -1;
    if (!cap || !occupant || !keep || !mp->slot_of || !mp->slot_off || !mp->recv_off || !mp->recv_len ||
        build_lists(&b, g, p, me, role) || build_ancestors(&b, dep_off, dep_list))
        goto out;
    for (int i = 0; i < nn; i++)
        mp->slot_of[i] = -1;
    /* The device hands the graph outputs back after the frame. */
    if (me == p->device)
        for (int i = 0; i < g->n_outputs; i++)
            keep[g->outputs[i]] = 1;
    /* and a site keeps its state outputs when the frame ends */
    for (int i = 0; i < p->n_state; i++)
        if (p->state[i].site == me && p->state[i].out_op >= 0)
            keep[p->state[i].out_op] = 1;
    assign_slots(mp, &b, g, p, me, cap, occupant, keep);
    lay_out(mp, g, p, role, cap);
    rc = 0;
out:
    if (rc) {
        snprintf(err, errlen, "out of memory planning the site's buffers");
        rt_mem_plan_free(mp);
    }
    build_free(&b);
    free(cap);
    free(occupant);
    free(keep);
    return rc;
}

void rt_mem_plan_free(rt_mem_plan *mp)
{
    free(mp->slot_of);
    free(mp->slot_off);
    free(mp->recv_off);
    free(mp->recv_len);
    memset(mp, 0, sizeof *mp);
}
