/* Dinic's max flow on double capacities, and the DADS flow graph of a DAG.
 * Dinic: BFS levels over the residual graph, then blocking flows by DFS with
 * per-vertex edge pointers; O(V^2 E), far below that on these layered
 * graphs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mincut.h"

/* Tolerances are relative: a residual below EPS_REL of the largest finite
 * capacity is rounding noise (doubles carry ~16 digits), whatever the unit. An
 * absolute epsilon fails both ways: below the rounding error of large
 * capacities, and above real small ones. */
#define EPS_REL 1e-12

typedef struct fedge {
    int to, next;
    double cap, orig;
} fedge;

struct mb_flow {
    int n, ne, cap_e;
    double max_cap; /* largest finite capacity added (after clamping) */
    double eps;     /* set by mb_flow_max: EPS_REL * max(1, max_cap) */
    int *head, *level, *iter, *queue;
    fedge *e;
    char *side;
};

mb_flow *mb_flow_new(int n)
{
    mb_flow *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->n = n;
    f->head = malloc(sizeof(int) * (size_t)n);
    f->level = malloc(sizeof(int) * (size_t)n);
    f->iter = malloc(sizeof(int) * (size_t)n);
    f->queue = malloc(sizeof(int) * (size_t)n);
    f->side = calloc((size_t)n, 1);
    if (!f->head || !f->level || !f->iter || !f->queue || !f->side) {
        mb_flow_free(f);
        return NULL;
    }
    memset(f->head, -1, sizeof(int) * (size_t)n);
    return f;
}

void mb_flow_free(mb_flow *f)
{
    if (!f)
        return;
    free(f->head);
    free(f->level);
    free(f->iter);
    free(f->queue);
    free(f->side);
    free(f->e);
    free(f);
}

int mb_flow_n_vertices(const mb_flow *f) { return f->n; }

static int push_edge(mb_flow *f, int u, int v, double cap, double orig)
{
    if (f->ne == f->cap_e) {
        int cap_e = f->cap_e ? 2 * f->cap_e : 64;
        fedge *n = realloc(f->e, sizeof(*n) * (size_t)cap_e);
        if (!n)
            return -1;
        f->e = n;
        f->cap_e = cap_e;
    }
    f->e[f->ne] = (fedge){v, f->head[u], cap, orig};
    f->head[u] = f->ne++;
    return 0;
}

int mb_flow_add_edge(mb_flow *f, int u, int v, double cap)
{
    if (u < 0 || v < 0 || u >= f->n || v >= f->n || !(cap >= 0))
        return -1;
    /* Finite capacities stay far below the infinity, so that no sum of them
     * (one per edge) can reach it or saturate an infinite edge; larger ones
     * (1e40 ms from a profile) are as impossible as MB_FLOW_CAP_MAX. */
    if (cap == MB_FLOW_INF || isinf(cap))
        cap = MB_FLOW_INF;
    else if (cap > MB_FLOW_CAP_MAX)
        cap = MB_FLOW_CAP_MAX;
    if (cap < MB_FLOW_INF && cap > f->max_cap)
        f->max_cap = cap;
    /* edge 2k forward, 2k+1 its residual twin */
    if (push_edge(f, u, v, cap, cap) || push_edge(f, v, u, 0, 0))
        return -1;
    return 0;
}

static int bfs(mb_flow *f, int s, int t)
{
    for (int i = 0; i < f->n; i++)
        f->level[i] = -1;
    int qh = 0, qt = 0;
    f->queue[qt++] = s;
    f->level[s] = 0;
    while (qh < qt) {
        int u = f->queue[qh++];
        for (int k = f->head[u]; k >= 0; k = f->e[k].next)
            if (f->e[k].cap > f->eps && f->level[f->e[k].to] < 0) {
                f->level[f->e[k].to] = f->level[u] + 1;
                f->queue[qt++] = f->e[k].to;
            }
    }
    return f->level[t] >= 0;
}

/* Iterative DFS for one augmenting path in the level graph; returns the
 * pushed amount (0 when none). Recursion would overflow on 2000-op chains
 * only in theory, but iterative is as short. */
static double dfs(mb_flow *f, int s, int t)
{
    int *stack_e = f->queue; /* reuse: edges along the current path */
    int depth = 0, u = s;
    for (;;) {
        if (u == t) {
            /* start above every capacity: starting at MB_FLOW_INF would
             * push at most that much per path, and a path of larger
             * capacities would take forever */
            double a = HUGE_VAL;
            for (int i = 0; i < depth; i++)
                a = fmin(a, f->e[stack_e[i]].cap);
            for (int i = 0; i < depth; i++) {
                f->e[stack_e[i]].cap -= a;
                f->e[stack_e[i] ^ 1].cap += a;
            }
            return a;
        }
        int k;
        for (k = f->iter[u]; k >= 0; k = f->e[k].next) {
            int v = f->e[k].to;
            if (f->e[k].cap > f->eps && f->level[v] == f->level[u] + 1)
                break;
        }
        f->iter[u] = k;
        if (k >= 0) {
            stack_e[depth++] = k;
            u = f->e[k].to;
        } else {
            if (depth == 0)
                return 0;
            f->level[u] = -1; /* dead end: prune */
            depth--;
            int back = stack_e[depth];
            u = f->e[back ^ 1].to;
            f->iter[u] = f->e[f->iter[u]].next;
        }
    }
}

double mb_flow_max(mb_flow *f, int s, int t)
{
    double flow = 0;
    f->eps = EPS_REL * fmax(1.0, f->max_cap);
    while (bfs(f, s, t)) {
        for (int i = 0; i < f->n; i++)
            f->iter[i] = f->head[i];
        double a;
        while ((a = dfs(f, s, t)) > f->eps)
            flow += a;
    }
    /* residual reachability from s: the source side of a minimum cut */
    memset(f->side, 0, (size_t)f->n);
    int qh = 0, qt = 0;
    f->queue[qt++] = s;
    f->side[s] = 1;
    while (qh < qt) {
        int u = f->queue[qh++];
        for (int k = f->head[u]; k >= 0; k = f->e[k].next)
            if (f->e[k].cap > f->eps && !f->side[f->e[k].to]) {
                f->side[f->e[k].to] = 1;
                f->queue[qt++] = f->e[k].to;
            }
    }
    return flow;
}

int mb_flow_source_side(const mb_flow *f, int v) { return f->side[v]; }

double mb_flow_cut_capacity(const mb_flow *f)
{
    double c = 0;
    for (int k = 0; k < f->ne; k += 2) {
        int u = f->e[k ^ 1].to, v = f->e[k].to;
        if (f->side[u] && !f->side[v])
            c += f->e[k].orig;
    }
    return c;
}

/* ---- the DADS graph ---- */

int mb_cut_costs_from_model(const mb_cost_model *c, int device, int server, mb_cut_costs *cc,
                            char *err, size_t errlen)
{
    const mb_graph *g = mb_cost_graph(c);
    int n = g->n_nodes;
    cc->n = n;
    cc->td = calloc((size_t)n, sizeof(double));
    cc->te = calloc((size_t)n, sizeof(double));
    cc->tx = calloc((size_t)n, sizeof(double));
    cc->rx = calloc((size_t)n, sizeof(double));
    if (!cc->td || !cc->te || !cc->tx || !cc->rx) {
        mb_cut_costs_free(cc);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int free_op = g->nodes[i].type == MB_OP_INPUT || g->nodes[i].type == MB_OP_CONSTANT;
        cc->td[i] = free_op ? 0 : mb_cost_op_ms(c, device, i);
        cc->te[i] = free_op ? 0 : mb_cost_op_ms(c, server, i);
        cc->tx[i] = mb_cost_xfer_ms(c, device, server, g->nodes[i].out_bytes);
        cc->rx[i] = mb_cost_xfer_ms(c, server, device, g->nodes[i].out_bytes);
    }
    if (!isfinite(cc->tx[0]) || !isfinite(cc->rx[0])) {
        mb_cut_costs_free(cc);
        snprintf(err, errlen, "min cut: no route between the device and the server");
        return -1;
    }
    return 0;
}

void mb_cut_costs_free(mb_cut_costs *cc)
{
    free(cc->td);
    free(cc->te);
    free(cc->tx);
    free(cc->rx);
    memset(cc, 0, sizeof(*cc));
}

static int is_output(const mb_graph *g, int i)
{
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == i)
            return 1;
    return 0;
}

double mb_dag_mincut(const mb_graph *g, const mb_cut_costs *cc, int *server)
{
    int n = g->n_nodes;
    /* vertices: s, t, op i at 2+i, "shipped up" aux at 2+n+i, "shipped down" aux at 2+2n+i */
    enum { S = 0, T = 1 };
    mb_flow *f = mb_flow_new(2 + 3 * n);
    if (!f)
        return -1;
    int bad = 0;
    char *has_cons = calloc((size_t)n, 1);
    if (!has_cons) {
        mb_flow_free(f);
        return -1;
    }
    for (int v = 0; v < n; v++) {
        const mb_node *nd = &g->nodes[v];
        if (nd->type == MB_OP_CONSTANT)
            continue; /* on every site already: never part of the cut */
        if (nd->type == MB_OP_INPUT)
            bad |= mb_flow_add_edge(f, S, 2 + v, MB_FLOW_INF); /* pinned to the device */
        else {
            bad |= mb_flow_add_edge(f, S, 2 + v, cc->te[v]); /* cut iff v on the server */
            bad |= mb_flow_add_edge(f, 2 + v, T, cc->td[v]); /* cut iff v on the device */
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int u = nd->inputs[k];
            if (g->nodes[u].type == MB_OP_CONSTANT)
                continue;
            if (!has_cons[u]) {
                has_cons[u] = 1;
                bad |= mb_flow_add_edge(f, 2 + u, 2 + n + u, cc->tx[u]);
                bad |= mb_flow_add_edge(f, 2 + 2 * n + u, 2 + u, cc->rx[u]);
            }
            bad |= mb_flow_add_edge(f, 2 + n + u, 2 + v, MB_FLOW_INF);
            bad |= mb_flow_add_edge(f, 2 + v, 2 + 2 * n + u, MB_FLOW_INF);
        }
    }
    for (int v = 0; v < n; v++) {
        if (!is_output(g, v) || g->nodes[v].type == MB_OP_CONSTANT)
            continue;
        /* the device consumes every output: it comes back (once) if made on the server */
        if (!has_cons[v]) {
            has_cons[v] = 1;
            bad |= mb_flow_add_edge(f, 2 + v, 2 + n + v, cc->tx[v]);
            bad |= mb_flow_add_edge(f, 2 + 2 * n + v, 2 + v, cc->rx[v]);
        }
        bad |= mb_flow_add_edge(f, S, 2 + 2 * n + v, MB_FLOW_INF);
    }
    double value = -1;
    if (!bad) {
        value = mb_flow_max(f, S, T);
        for (int v = 0; v < n; v++)
            server[v] = g->nodes[v].type == MB_OP_CONSTANT ? 0 : !mb_flow_source_side(f, 2 + v);
    }
    free(has_cons);
    mb_flow_free(f);
    return value;
}

double mb_dag_cut_cost(const mb_graph *g, const mb_cut_costs *cc, const int *server)
{
    int n = g->n_nodes;
    double cost = 0;
    for (int v = 0; v < n; v++) {
        const mb_node *nd = &g->nodes[v];
        if (nd->type == MB_OP_CONSTANT)
            continue;
        if (nd->type != MB_OP_INPUT)
            cost += server[v] ? cc->te[v] : cc->td[v];
        int up = 0, down = server[v] && is_output(g, v);
        for (int w = v + 1; w < n; w++)
            for (int k = 0; k < g->nodes[w].n_inputs; k++)
                if (g->nodes[w].inputs[k] == v) {
                    up |= !server[v] && server[w];
                    down |= server[v] && !server[w];
                }
        cost += (up ? cc->tx[v] : 0) + (down ? cc->rx[v] : 0);
    }
    return cost;
}
