/* Max-flow / min-cut (Dinic) on a small directed graph, and the two-site
 * DAG cut of DADS built on it. Private to policies/ (plugins reach the DAG
 * cut through mb_host.mincut). */
#ifndef MB_POLICIES_MINCUT_H
#define MB_POLICIES_MINCUT_H

#include <stddef.h>

#include "mecbed/cost.h"
#include "mecbed/policy_host.h"

#define MB_FLOW_INF 1e30
/* Finite capacities are clamped to this (ms: ~31,700 years), so that even
 * 1e6 edges of it sum far below MB_FLOW_INF. */
#define MB_FLOW_CAP_MAX 1e15

typedef struct mb_flow mb_flow;

mb_flow *mb_flow_new(int n_vertices);
void mb_flow_free(mb_flow *f);
/* Edge u -> v with capacity cap (>= 0; MB_FLOW_INF or +inf for infinite; finite ones are clamped
 * to MB_FLOW_CAP_MAX). Returns 0 or -1 (bad vertex, NaN or negative capacity, no memory). */
int mb_flow_add_edge(mb_flow *f, int u, int v, double cap);
/* Maximum s-t flow (Dinic). */
double mb_flow_max(mb_flow *f, int s, int t);
/* After mb_flow_max: 1 if v is reachable from s in the residual graph (source side of the min cut). */
int mb_flow_source_side(const mb_flow *f, int v);
/* After mb_flow_max: sum of capacities of edges from the source side to the sink side. */
double mb_flow_cut_capacity(const mb_flow *f);
int mb_flow_n_vertices(const mb_flow *f);

/* Per-op costs of a two-site cut, in ms: td[i] on the device, te[i] on the
 * server, tx[i] shipping op i's output device -> server, rx[i] server ->
 * device. Built from a cost model, or given directly (tests). */
typedef struct mb_cut_costs {
    int n;
    double *td, *te, *tx, *rx;
} mb_cut_costs;

int mb_cut_costs_from_model(const mb_cost_model *c, int device, int server, mb_cut_costs *cc,
                            char *err, size_t errlen);
void mb_cut_costs_free(mb_cut_costs *cc);

/* DADS min cut of g under cc: server[i] = 1 when op i runs on the server.
 * The input ops are pinned to the device; outputs computed on the server
 * pay rx to come back; a tensor shipped to several consumers pays tx once
 * (auxiliary vertex). Returns the cut value (ms), or a negative number on
 * allocation failure. */
double mb_dag_mincut(const mb_graph *g, const mb_cut_costs *cc, int *server);
/* The cost the cut model assigns to a given assignment (brute-force oracle
 * and the check that cut capacity == max flow). */
double mb_dag_cut_cost(const mb_graph *g, const mb_cut_costs *cc, const int *server);

#endif
