/* mecbed sweep: experiments as models x policies x links x node types x
 * repetitions (docs/experiments.md): the sweep engine (sweep/). */
#ifndef MB_EMU_SWEEP_H
#define MB_EMU_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#define SW_MAX_ITEMS 64
#define SW_MAX_VARIANTS 8
#define SW_MAX_METRICS 16
#define SW_MAX_PLOTS 4
#define SW_STR 512

typedef struct sw_list {
    int n;
    char *v[SW_MAX_ITEMS];
} sw_list;

typedef struct sw_variant {
    char name[32];
    char args[SW_STR]; /* extra `mecbed run` arguments (run mode) */
} sw_variant;

/* plan mode: plan (a policy's plan), decision (its decision time) or
 * generation (a decoder's generation policies: genplan.h, sweep_gen.c) */
typedef enum sw_measure { SW_MEASURE_PLAN = 0, SW_MEASURE_DECISION, SW_MEASURE_GENERATION } sw_measure;

/* One experiment, after [quick] overrides are applied. */
typedef struct sw_config {
    char path[SW_STR];
    char name[64];
    char question[SW_STR];
    int run_mode;        /* 0 plan (cost model), 1 run (emulated, measured) */
    sw_measure measure;  /* plan mode: plan (predictions) or decision (decision time) */
    sw_list models;      /* zoo names or model files */
    sw_list dags;        /* sizes of generated DAGs (models "dag<N>") */
    uint64_t dag_seed;
    sw_list policies;    /* NAME or NAME:key=value,... */
    sw_list policy_plugins; /* plugins to load first: .so paths or names on the plugin path */
    sw_list links;       /* link spec templates ({x} replaced) */
    sw_list topologies;  /* topology file templates ({x} replaced) */
    char star_links[SW_STR]; /* generated star: device links cycled (space separated) */
    char star_edge[32];      /* node type of the star's edge */
    char x_name[32];     /* what {x} is (axis label), e.g. "uplink rate" */
    char x_unit[32];     /* its unit ("Mbit/s"; "" for a count or a name): x_unit= or the
                          * "(unit)" ending an x_name */
    sw_list xs;          /* values of {x} ("-" when none) */
    sw_list node_types;  /* "device/edge[/cloud]" or "-" */
    sw_list metrics;     /* plan metrics to add as columns m_<name> */
    int repetitions;
    int require_pinned;  /* profile = pinned */
    int decision_repeats;/* decision: plans per point (rates drawn from decision_rates) */
    sw_list decision_rates;
    /* run mode */
    int frames, warmup, per_frame;
    double fps, timeout_s;
    char backend[16];
    char run_args[SW_STR];
    int n_variants;
    sw_variant variants[SW_MAX_VARIANTS];
    int n_plots;
    char plots[SW_MAX_PLOTS][SW_STR];
    int prompt_tokens, gen_tokens; /* measure = generation (defaults 32, 64) */
} sw_config;

/* Read path; quick applies the [quick] section. Errors "file:line: what". */
int sw_config_read(const char *path, int quick, sw_config *c, char *err, size_t errlen);
void sw_config_free(sw_config *c);

/* One point of the sweep. */
typedef struct sw_point {
    int index;
    int rep;
    const char *model;   /* list item */
    int dag_ops;         /* > 0: a generated DAG of that many ops instead of model */
    char policy[SW_STR]; /* as listed, {x} replaced */
    const sw_variant *variant; /* NULL: none */
    char link[SW_STR];   /* "" when topology */
    char topology[SW_STR];
    const char *x;
    const char *node_types;
    int star_devices;    /* > 0: topology is a generated star of that many devices (run mode
                          * runs them all: `mecbed run --devices N`) */
    char key[2048];      /* identifies the point (resume, baseline) */
} sw_point;

/* Every point, in sweep order. *out is malloc'd. Generated topologies are
 * written under topo_dir. */
int sw_points(const sw_config *c, const char *topo_dir, sw_point **out, int *n, char *err,
              size_t errlen);

/* A result row: column name -> value (strings, "" = missing). */
#define SW_MAX_COLS 96
typedef struct sw_row {
    int n;
    char *name[SW_MAX_COLS];
    char *val[SW_MAX_COLS];
} sw_row;

void sw_row_set(sw_row *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sw_row_num(sw_row *r, const char *name, double v);
const char *sw_row_get(const sw_row *r, const char *name);
void sw_row_free(sw_row *r);

/* Plan mode: evaluate one point in-process. extra_types: node types added
 * (perturbation, may be NULL). Fills row; returns 0, or -1 with err (the
 * row then carries error=). */
int sw_plan_point(const sw_config *c, const sw_point *p, const char *extra_types, sw_row *row,
                  char *err, size_t errlen);
void sw_plan_cache_free(void);
/* Plan mode, measure = generation: predict one generation policy (spec as
 * `generate --gen-policy`) for a decoder over the point's link (a device and
 * edge0; galaxy:edges=K adds edge1.. on a LAN). Row: latency_ms = TTFT +
 * (N-1) TPOT, energy_mj = the whole generation's device energy, bytes_up /
 * bytes_down per token, note; metrics by name (ttft_ms, tpot_ms,
 * tokens_per_s, energy_per_token_mj, radio_per_token_mj, ttft_energy_mj,
 * tokens_per_round, sync_ms, kv_transfer_bytes, backbone_bytes_per_token,
 * split_after, edges). types: the node types (with the point's applied). */
struct mb_topology;
struct mb_nodetype_set;
int sw_gen_point(const sw_config *c, const sw_point *p, const struct mb_nodetype_set *types, sw_row *row,
                 char *err, size_t errlen);
void sw_gen_cache_free(void);
/* "dev/edge/cloud" node types onto the topology's sites by role ("-": none). */
int sw_apply_node_types(struct mb_topology *t, const char *spec, char *err, size_t errlen);

/* Run mode: a point is `run`'s arguments (its variant args= and run_args
 * are run options), so it is run by `run`'s entry, which parses them, runs
 * a session (mecbed/session.h) and prints the report as JSON. The CLI
 * hands that entry to the sweep (the sweep sits below it). */
typedef int (*sw_run_main)(int argc, char **argv);
/* Run mode: one point in a forked child that calls run_main with
 * `run ... --json` (no exec); parse its JSON. frames_csv (may be NULL)
 * receives per-frame rows, trace_csv the uplink trace's rate over the run
 * (point,t_s,rate_mbps). stop: set by SIGINT. */
int sw_run_point(const sw_config *c, const sw_point *p, const char *extra_types,
                 sw_run_main run_main, const char *log_path, sw_row *row, char **frames_csv,
                 char **trace_csv, volatile int *stop, char *err, size_t errlen);

/* A seeded CNN-like random DAG of n ops (structure, out_bytes) and a
 * matching synthetic profile (op times); see sweep_dag.c. */
struct mb_graph;
struct mb_profile;
struct mb_graph *sw_dag_generate(int n, uint64_t seed);
struct mb_profile *sw_dag_profile(const struct mb_graph *g, uint64_t seed);

/* Replace every {x} in tmpl by x. */
void sw_subst(char *out, size_t len, const char *tmpl, const char *x);

#endif
