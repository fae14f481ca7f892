/* mecbed sweep: the experiment file (INI, docs/experiments.md) and the
 * points it expands to. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mecbed/inifile.h"
#include "mecbed/link.h"
#include "mecbed/linkspec.h"
#include "mecbed/sweep.h"

typedef struct kv {
    int quick; /* 0 [sweep], 1 [quick], 2 [variant] */
    char section[64];
    char key[64];
    char *value;
    int line;
} kv;

typedef struct conf_reader {
    kv *e;
    int n, cap;
    char err[512];
} conf_reader;

static const char *const list_keys[] = {"models", "dags", "policies", "links", "topologies",
                                        "x", "node_types", "metrics", "decision_rates", "plot",
                                        "star_links", "run_args", "question", "args",
                                        "policy_plugins", NULL};
static const char *const scalar_keys[] = {"name", "mode", "measure", "dag_seed", "x_name", "x_unit",
                                          "repetitions", "profile", "decision_repeats", "frames",
                                          "warmup", "fps", "timeout", "backend", "per_frame",
                                          "variants", "star_edge", "prompt_tokens", "gen_tokens", NULL};

static int in(const char *const *set, const char *k)
{
    for (int i = 0; set[i]; i++)
        if (!strcmp(set[i], k))
            return 1;
    return 0;
}

/* A link backend of the registry (link.h)? */
static int link_backend_known(const char *name)
{
    for (const char *const *b = mb_net_backends(); *b; b++)
        if (!strcmp(*b, name))
            return 1;
    return 0;
}

static int parse_int(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int parse_num(const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x))
        return -1;
    *out = x;
    return 0;
}

/* Check a value as it is read, so the error names its line. */
static int check_value(conf_reader *r, const char *key, const char *v)
{
    long l;
    double d;
    if (!strcmp(key, "mode") && strcmp(v, "plan") && strcmp(v, "run"))
        snprintf(r->err, sizeof r->err, "mode: '%s' is not plan or run", v);
    else if (!strcmp(key, "measure") && strcmp(v, "plan") && strcmp(v, "decision") && strcmp(v, "generation"))
        snprintf(r->err, sizeof r->err, "measure: '%s' is not plan, decision or generation", v);
    else if ((!strcmp(key, "prompt_tokens") || !strcmp(key, "gen_tokens")) && parse_int(v, 1, 100000, &l))
        snprintf(r->err, sizeof r->err, "%s: '%s' is not a whole number from 1 to 100000", key, v);
    else if (!strcmp(key, "profile") && strcmp(v, "pinned") && strcmp(v, "default"))
        snprintf(r->err, sizeof r->err, "profile: '%s' is not pinned or default", v);
    else if ((!strcmp(key, "repetitions") || !strcmp(key, "frames") ||
              !strcmp(key, "decision_repeats")) && parse_int(v, 1, 1000000, &l))
        snprintf(r->err, sizeof r->err, "%s: '%s' is not a whole number >= 1", key, v);
    else if ((!strcmp(key, "warmup") || !strcmp(key, "per_frame")) && parse_int(v, 0, 1000000, &l))
        snprintf(r->err, sizeof r->err, "%s: '%s' is not a whole number >= 0", key, v);
    else if (!strcmp(key, "dag_seed") && parse_int(v, 0, 0x7fffffffL, &l))
        snprintf(r->err, sizeof r->err, "dag_seed: '%s' is not a whole number >= 0", v);
    else if ((!strcmp(key, "fps") || !strcmp(key, "timeout")) && (parse_num(v, &d) || d < 0))
        snprintf(r->err, sizeof r->err, "%s: '%s' is not a number >= 0", key, v);
    else if (!strcmp(key, "backend") && !link_backend_known(v)) {
        char names[128];
        snprintf(r->err, sizeof r->err, "backend: '%s' is not %s", v,
                 mb_net_backend_list(names, sizeof names, ", "));
    }
    else if (!strcmp(key, "dags")) {
        char *s = strdup(v), *save = NULL;
        for (char *t = strtok_r(s, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save))
            if (parse_int(t, 2, 100000, &l)) {
                snprintf(r->err, sizeof r->err, "dags: '%s' is not a DAG size (2..100000 ops)", t);
                break;
            }
        free(s);
    } else if (!strcmp(key, "decision_rates")) {
        char *s = strdup(v), *save = NULL;
        for (char *t = strtok_r(s, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save))
            if (parse_num(t, &d) || d <= 0) {
                snprintf(r->err, sizeof r->err, "decision_rates: '%s' is not a rate in Mbit/s > 0", t);
                break;
            }
        free(s);
    }
    return r->err[0] ? -1 : 0;
}

/* One key, or an indented line continuing a list key's value (appended with
 * a space). 0, or -1 with r->err (empty: out of memory). */
static int conf_kv(conf_reader *r, const char *section, const char *key, const char *value, int continuation,
                   int line)
{
    int quick;
    if (!strcmp(section, "sweep"))
        quick = 0;
    else if (!strcmp(section, "quick"))
        quick = 1;
    else if (!strncmp(section, "variant ", 8) && section[8])
        quick = 2;
    else {
        snprintf(r->err, sizeof r->err, "unknown section [%s] (known: [sweep], [quick], [variant NAME])",
                 section);
        return -1;
    }
    if (quick == 2 ? strcmp(key, "args") : !in(list_keys, key) && !in(scalar_keys, key)) {
        if (quick == 2)
            snprintf(r->err, sizeof r->err, "[%s]: unknown key '%s' (known: args)", section, key);
        else
            snprintf(r->err, sizeof r->err,
                     "unknown key '%s' (known: name question mode measure models dags dag_seed policies "
                     "policy_plugins "
                     "links topologies star_links star_edge x_name x_unit x node_types repetitions profile "
                     "metrics decision_repeats decision_rates frames warmup fps timeout backend "
                     "run_args per_frame variants plot prompt_tokens gen_tokens)",
                     key);
        return -1;
    }
    if (check_value(r, key, value))
        return -1;
    if (continuation) {
        if (!in(list_keys, key)) {
            snprintf(r->err, sizeof r->err, "%s takes one value: this indented line would continue it", key);
            return -1;
        }
        kv *e = &r->e[r->n - 1]; /* the key it continues was the last one stored */
        size_t a = strlen(e->value), b = strlen(value);
        char *nv = realloc(e->value, a + b + 2);
        if (!nv)
            return -1;
        nv[a] = ' ';
        memcpy(nv + a + 1, value, b + 1);
        e->value = nv;
        return 0;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        kv *ne = realloc(r->e, (size_t)cap * sizeof *ne);
        if (!ne)
            return -1;
        r->e = ne;
        r->cap = cap;
    }
    kv *e = &r->e[r->n];
    e->quick = quick;
    snprintf(e->section, sizeof e->section, "%s", section);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->value = strdup(value);
    if (!e->value)
        return -1;
    e->line = line;
    r->n++;
    return 0;
}

/* The reader (inifile.h) adds the file and line to an error and has
 * already refused a section or a key given twice. */
static int on_kv(void *user, const char *section, const char *key, const char *value, const mb_ini_pos *pos,
                 char *err, size_t errlen)
{
    conf_reader *r = user;
    r->err[0] = 0;
    if (conf_kv(r, section, key, value, pos->continuation, pos->line)) {
        snprintf(err, errlen, "%s", r->err[0] ? r->err : "out of memory");
        return -1;
    }
    return 0;
}

static void list_free(sw_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

/* Items separated by whitespace (and commas unless keep_commas). */
static int list_set(sw_list *l, const char *v, int keep_commas, const char *key, char *err, size_t errlen)
{
    list_free(l);
    char *s = strdup(v), *save = NULL;
    if (!s)
        return -1;
    for (char *t = strtok_r(s, keep_commas ? " \t" : " \t,", &save); t;
         t = strtok_r(NULL, keep_commas ? " \t" : " \t,", &save)) {
        if (l->n == SW_MAX_ITEMS) {
            snprintf(err, errlen, "%s: more than %d items", key, SW_MAX_ITEMS);
            free(s);
            return -1;
        }
        l->v[l->n++] = strdup(t);
    }
    free(s);
    return 0;
}

static int apply(sw_config *c, const kv *e, char *err, size_t errlen)
{
    const char *k = e->key, *v = e->value;
    if (!strcmp(k, "name"))
        snprintf(c->name, sizeof c->name, "%s", v);
    else if (!strcmp(k, "question"))
        snprintf(c->question, sizeof c->question, "%s", v);
    else if (!strcmp(k, "mode"))
        c->run_mode = !strcmp(v, "run");
    else if (!strcmp(k, "measure"))
        c->measure = !strcmp(v, "decision") ? SW_MEASURE_DECISION
                     : !strcmp(v, "generation") ? SW_MEASURE_GENERATION : SW_MEASURE_PLAN;
    else if (!strcmp(k, "prompt_tokens"))
        c->prompt_tokens = atoi(v);
    else if (!strcmp(k, "gen_tokens"))
        c->gen_tokens = atoi(v);
    else if (!strcmp(k, "models"))
        return list_set(&c->models, v, 0, k, err, errlen);
    else if (!strcmp(k, "dags"))
        return list_set(&c->dags, v, 0, k, err, errlen);
    else if (!strcmp(k, "dag_seed"))
        c->dag_seed = strtoull(v, NULL, 10);
    else if (!strcmp(k, "policies"))
        return list_set(&c->policies, v, 1, k, err, errlen);
    else if (!strcmp(k, "policy_plugins"))
        return list_set(&c->policy_plugins, v, 0, k, err, errlen);
    else if (!strcmp(k, "links"))
        return list_set(&c->links, v, 1, k, err, errlen);
    else if (!strcmp(k, "topologies"))
        return list_set(&c->topologies, v, 1, k, err, errlen);
    else if (!strcmp(k, "star_links"))
        snprintf(c->star_links, sizeof c->star_links, "%s", v);
    else if (!strcmp(k, "star_edge"))
        snprintf(c->star_edge, sizeof c->star_edge, "%s", v);
    else if (!strcmp(k, "x_name") || !strcmp(k, "x_unit")) {
        char *dst = k[2] == 'n' ? c->x_name : c->x_unit;
        if (strlen(v) >= sizeof c->x_name || strpbrk(v, "'\"\\")) {
            snprintf(err, errlen, "%s = %s: at most %zu characters, no quotes or backslashes (an axis label)", k, v,
                     sizeof c->x_name - 1);
            return -1;
        }
        snprintf(dst, sizeof c->x_name, "%s", v);
    }
    else if (!strcmp(k, "x"))
        return list_set(&c->xs, v, 0, k, err, errlen);
    else if (!strcmp(k, "node_types"))
        return list_set(&c->node_types, v, 0, k, err, errlen);
    else if (!strcmp(k, "metrics"))
        return list_set(&c->metrics, v, 0, k, err, errlen);
    else if (!strcmp(k, "decision_rates"))
        return list_set(&c->decision_rates, v, 0, k, err, errlen);
    else if (!strcmp(k, "repetitions"))
        c->repetitions = atoi(v);
    else if (!strcmp(k, "profile"))
        c->require_pinned = !strcmp(v, "pinned");
    else if (!strcmp(k, "decision_repeats"))
        c->decision_repeats = atoi(v);
    else if (!strcmp(k, "frames"))
        c->frames = atoi(v);
    else if (!strcmp(k, "warmup"))
        c->warmup = atoi(v);
    else if (!strcmp(k, "per_frame"))
        c->per_frame = atoi(v);
    else if (!strcmp(k, "fps"))
        c->fps = strtod(v, NULL);
    else if (!strcmp(k, "timeout"))
        c->timeout_s = strtod(v, NULL);
    else if (!strcmp(k, "backend"))
        snprintf(c->backend, sizeof c->backend, "%s", v);
    else if (!strcmp(k, "run_args"))
        snprintf(c->run_args, sizeof c->run_args, "%s", v);
    else if (!strcmp(k, "variants")) {
        sw_list l = {0};
        if (list_set(&l, v, 0, k, err, errlen))
            return -1;
        if (l.n > SW_MAX_VARIANTS) {
            snprintf(err, errlen, "variants: at most %d", SW_MAX_VARIANTS);
            list_free(&l);
            return -1;
        }
        c->n_variants = l.n;
        for (int i = 0; i < l.n; i++) {
            snprintf(c->variants[i].name, sizeof c->variants[i].name, "%s", l.v[i]);
            c->variants[i].args[0] = 0;
        }
        list_free(&l);
    } else if (!strcmp(k, "plot")) {
        sw_list l = {0};
        if (list_set(&l, v, 1, k, err, errlen))
            return -1;
        c->n_plots = l.n < SW_MAX_PLOTS ? l.n : SW_MAX_PLOTS;
        for (int i = 0; i < c->n_plots; i++)
            snprintf(c->plots[i], sizeof c->plots[i], "%s", l.v[i]);
        list_free(&l);
    }
    return 0;
}

int sw_config_read(const char *path, int quick, sw_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->repetitions = 1;
    c->frames = 3;
    c->warmup = 1;
    c->timeout_s = 300;
    c->decision_repeats = 1;
    c->dag_seed = 1;
    c->prompt_tokens = 32;
    c->gen_tokens = 64;
    snprintf(c->backend, sizeof c->backend, "emu");
    snprintf(c->x_name, sizeof c->x_name, "x");
    snprintf(c->star_edge, sizeof c->star_edge, "edge-cpu");
    conf_reader r = {0};
    mb_ini_opts io = {.on_kv = on_kv, .user = &r};
    int rc = mb_ini_read(path, &io, err, errlen);
    for (int pass = 0; pass < 2 && !rc; pass++)
        for (int i = 0; i < r.n && !rc; i++) {
            char e2[512] = "";
            if (r.e[i].quick == pass && (pass == 0 || quick) && apply(c, &r.e[i], e2, sizeof e2)) {
                snprintf(err, errlen, "%s:%d: %s", path, r.e[i].line, e2[0] ? e2 : "out of memory");
                rc = -1;
            }
        }
    /* variant sections */
    for (int i = 0; i < r.n && !rc; i++) {
        if (r.e[i].quick != 2)
            continue;
        const char *vn = r.e[i].section + 8;
        int found = 0;
        for (int k = 0; k < c->n_variants; k++)
            if (!strcmp(c->variants[k].name, vn)) {
                snprintf(c->variants[k].args, sizeof c->variants[k].args, "%s", r.e[i].value);
                found = 1;
            }
        (void)found; /* a variant section not listed in variants= is unused, not an error */
    }
    for (int i = 0; i < r.n; i++)
        free(r.e[i].value);
    free(r.e);
    if (rc) {
        sw_config_free(c);
        return -1;
    }
    /* "uplink (Mbit/s)": the unit in brackets is x_unit, unless given */
    size_t xl = strlen(c->x_name);
    char *open = strrchr(c->x_name, '(');
    if (!c->x_unit[0] && xl > 2 && c->x_name[xl - 1] == ')' && open && open > c->x_name && open[-1] == ' ') {
        snprintf(c->x_unit, sizeof c->x_unit, "%.*s", (int)(c->x_name + xl - 1 - open - 1), open + 1);
        open[-1] = 0;
    }
    const char *missing = !c->name[0] ? "name" : !c->policies.n ? "policies"
                          : !c->models.n && !c->dags.n ? "models (or dags)"
                          : !c->links.n && !c->topologies.n && !c->star_links[0] ? "links (or topologies, star_links)"
                          : NULL;
    if (missing) {
        snprintf(err, errlen, "%s: [sweep] needs %s", path, missing);
        sw_config_free(c);
        return -1;
    }
    for (const char *s = c->name; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_') {
            snprintf(err, errlen, "%s: name '%s': use [a-z0-9_-] (it names results/NAME/)", path, c->name);
            sw_config_free(c);
            return -1;
        }
    if (c->measure == SW_MEASURE_GENERATION && (c->run_mode || c->dags.n || c->topologies.n || c->star_links[0])) {
        snprintf(err, errlen, "%s: measure = generation is plan mode over links (a device and edge0; "
                 "galaxy:edges=K adds edge nodes): no run mode, dags, topologies or star_links", path);
        sw_config_free(c);
        return -1;
    }
    if (c->run_mode && c->dags.n) {
        snprintf(err, errlen, "%s: dags are plan mode only (generated DAGs have no weights to run)", path);
        sw_config_free(c);
        return -1;
    }
    if (!c->xs.n) {
        c->xs.v[0] = strdup("-");
        c->xs.n = 1;
    }
    if (!c->node_types.n) {
        c->node_types.v[0] = strdup("-");
        c->node_types.n = 1;
    }
    return 0;
}

void sw_config_free(sw_config *c)
{
    list_free(&c->models);
    list_free(&c->dags);
    list_free(&c->policies);
    list_free(&c->policy_plugins);
    list_free(&c->links);
    list_free(&c->topologies);
    list_free(&c->xs);
    list_free(&c->node_types);
    list_free(&c->metrics);
    list_free(&c->decision_rates);
}

void sw_subst(char *out, size_t len, const char *tmpl, const char *x)
{
    size_t o = 0;
    for (const char *s = tmpl; *s && o + 1 < len;) {
        if (!strncmp(s, "{x}", 3)) {
            for (const char *t = x; *t && o + 1 < len; t++)
                out[o++] = *t;
            s += 3;
        } else
            out[o++] = *s++;
    }
    out[o] = 0;
}

/* A star: n devices sharing one edge, device links cycled from specs. */
static int write_star(const sw_config *c, int n, const char *path, char *err, size_t errlen)
{
    char specs[SW_STR];
    snprintf(specs, sizeof specs, "%s", c->star_links);
    char *sv[64];
    int ns = 0;
    char *save = NULL;
    for (char *t = strtok_r(specs, " \t", &save); t && ns < 64; t = strtok_r(NULL, " \t", &save))
        sv[ns++] = t;
    if (!ns || n < 1 || n > 64) {
        snprintf(err, errlen, "%s: star topology: %d devices (1..64) over %d star_links", c->path, n, ns);
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "; generated by mecbed sweep (%s): %d devices sharing edge0\n[node edge0]\nrole = edge\ntype = %s\n",
            c->name, n, c->star_edge);
    for (int i = 0; i < n; i++)
        fprintf(f, "[node dev%d]\nrole = device\n", i);
    for (int i = 0; i < n; i++)
        fprintf(f, "[link dev%d edge0]\nspec = %s\n", i, sv[i % ns]);
    if (fclose(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int sw_points(const sw_config *c, const char *topo_dir, sw_point **out, int *n, char *err,
              size_t errlen)
{
    int n_graphs = c->models.n + c->dags.n;
    int n_nets = c->links.n + c->topologies.n + (c->star_links[0] ? 1 : 0);
    int n_var = c->n_variants ? c->n_variants : 1;
    long total = (long)n_graphs * c->policies.n * n_nets * c->xs.n * c->node_types.n * n_var *
                 c->repetitions;
    if (total > 200000) {
        snprintf(err, errlen, "%s: %ld points is too many (at most 200000)", c->path, total);
        return -1;
    }
    sw_point *pts = calloc((size_t)(total ? total : 1), sizeof *pts);
    if (!pts) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int k = 0;
    /* order: x outermost after model, so a plot's series fill in together */
    for (int gi = 0; gi < n_graphs; gi++)
        for (int ni = 0; ni < n_nets; ni++)
            for (int ti = 0; ti < c->node_types.n; ti++)
                for (int xi = 0; xi < c->xs.n; xi++)
                    for (int pi = 0; pi < c->policies.n; pi++)
                        for (int vi = 0; vi < n_var; vi++)
                            for (int rep = 0; rep < c->repetitions; rep++) {
                                sw_point *p = &pts[k];
                                p->index = k;
                                p->rep = rep;
                                if (gi < c->models.n)
                                    p->model = c->models.v[gi];
                                else {
                                    p->model = c->dags.v[gi - c->models.n];
                                    p->dag_ops = atoi(p->model);
                                }
                                p->x = c->xs.v[xi];
                                sw_subst(p->policy, sizeof p->policy, c->policies.v[pi], p->x);
                                p->variant = c->n_variants ? &c->variants[vi] : NULL;
                                p->node_types = c->node_types.v[ti];
                                if (ni < c->links.n)
                                    sw_subst(p->link, sizeof p->link, c->links.v[ni], p->x);
                                else if (ni < c->links.n + c->topologies.n)
                                    sw_subst(p->topology, sizeof p->topology,
                                             c->topologies.v[ni - c->links.n], p->x);
                                else {
                                    int nd = atoi(p->x);
                                    p->star_devices = nd;
                                    snprintf(p->topology, sizeof p->topology, "%s/star-%d.ini", topo_dir, nd);
                                    struct stat st;
                                    if (stat(p->topology, &st) &&
                                        write_star(c, nd, p->topology, err, errlen)) {
                                        free(pts);
                                        return -1;
                                    }
                                }
                                char gname[64];
                                if (p->dag_ops)
                                    snprintf(gname, sizeof gname, "dag%d", p->dag_ops);
                                else
                                    snprintf(gname, sizeof gname, "%s", p->model);
                                /* generated topologies are keyed by their size, not their path */
                                char net[SW_STR + 16];
                                if (p->link[0])
                                    snprintf(net, sizeof net, "link=%s", p->link);
                                else if (ni >= c->links.n + c->topologies.n)
                                    snprintf(net, sizeof net, "star=%s", p->x);
                                else
                                    snprintf(net, sizeof net, "topology=%s", p->topology);
                                snprintf(p->key, sizeof p->key, "%s|%s|%s|%s|%s|%s|%s|%d", c->name,
                                         gname, p->policy, p->variant ? p->variant->name : "-", net,
                                         p->node_types, p->x, rep);
                                k++;
                            }
    *out = pts;
    *n = k;
    return 0;
}
