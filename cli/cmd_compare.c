/* mecbed compare: every registered policy on one model and link, side by
 * side, from the same cost model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_policies.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed compare --model M (--link SPEC | --topology FILE) [options]\n\n"
               "Plan with every registered policy (built-ins and loaded plugins) and print\n"
               "predicted latency, device energy, bytes and decision time side by side.\n\n"
               "  --json               a JSON array, one object per policy: policy, latency_ms,\n"
               "                       energy_mj, energy_system_mj, decision_us, bytes_sent,\n"
               "                       bytes_up, bytes_down, bytes_backbone, cut_value_ms (null\n"
               "                       outside the min-cut family), note; or policy and error\n"
               "  --policies A,B,..    only these policies\n"
               "  --rates R1,R2,..     repeat for these rates (Mbit/s, both directions of every\n"
               "                       link at the device); adds rate_mbps to the JSON and prints\n"
               "                       a latency table (rates x policies)\n"
               "  --verify             also run every plan in-process (--kernels cpu|ref)\n"
               "  --kernels K          kernels for --verify: cpu (default) or ref (--backend: deprecated)\n");
    mb_plan_setup_help(f);
}

/* compare's own options; the shared planning options come from options.c */
static const struct option own_opts[] = {
    {"json", no_argument, 0, 'j'},          {"policies", required_argument, 0, 'P'},
    {"verify", no_argument, 0, 'v'},        {"kernels", required_argument, 0, 'k'},
    {"backend", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'},
    {"rates", required_argument, 0, 'R'},   {0, 0, 0, 0},
};

static int selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t n = strlen(name);
    for (const char *s = list; s && *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && !strncmp(s, name, n))
            return 1;
        s = e ? e + 1 : NULL;
    }
    return 0;
}

static void json_num(const char *key, double v)
{
    if (isfinite(v))
        printf(",\"%s\":%.9g", key, v);
    else
        printf(",\"%s\":null", key);
}

/* What one compare invocation asked for, and the latency table it fills. */
typedef struct compare_ctx {
    mb_plan_setup s;
    const char *only; /* --policies, NULL: all */
    double rates[64];
    int n_rates;
    int n_pol;      /* selected policies */
    double *table;  /* [rate][policy] predicted latency, for the summary */
    int failures, first;
} compare_ctx;

/* --rates R1,R2,..: up to 64 positive Mbit/s values; 0 or -1 (message printed). */
static int parse_rates(compare_ctx *c, const char *rates_arg)
{
    for (const char *r = rates_arg; r && *r;) {
        char *end;
        double v = strtod(r, &end);
        if (end == r || (*end && *end != ',') || !(v > 0) || !isfinite(v) || c->n_rates == 64) {
            fprintf(stderr, "mecbed compare: --rates %s: expected up to 64 rates in Mbit/s > 0, "
                            "comma-separated\n", rates_arg);
            return -1;
        }
        c->rates[c->n_rates++] = v;
        r = *end ? end + 1 : end;
    }
    return 0;
}

/* Options into c; returns -1 to go on, else the exit status. */
static int parse_args(compare_ctx *c, int argc, char **argv)
{
    struct option long_opts[MB_CLI_MAX_OPTIONS];
    if (mb_plan_options_build(long_opts, MB_CLI_MAX_OPTIONS, own_opts)) {
        fprintf(stderr, "mecbed compare: too many options\n");
        return 2;
    }
    const char *rates_arg = NULL;
    int opt, idx;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
        switch (opt) {
        case 0:
            if (mb_plan_setup_option(&c->s, long_opts[idx].name, optarg))
                return 2;
            break;
        case 'j': c->s.json = 1; break;
        case 'P': c->only = optarg; break;
        case 'R': rates_arg = optarg; break;
        case 'v': c->s.verify = 1; break;
        case 'k': c->s.verify_backend = optarg; break;
        case 'b':
            mb_cli_deprecated("backend", "kernels");
            c->s.verify_backend = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed compare: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return parse_rates(c, rates_arg) ? 2 : -1;
}

/* Every policy named by --policies must be registered; 0 or -1 (printed). */
static int check_policy_names(const char *only)
{
    for (const char *p = only; p && *p;) {
        const char *e = strchr(p, ',');
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        char err[1536];
        if (!mb_policy_find_or_load(name, err, sizeof(err))) {
            fprintf(stderr, "mecbed compare: --policies: %s\n", err);
            return -1;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Is name an item of the ", "-separated list? */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ',' || !p[n]))
            return 1;
    return 0;
}

/* One --policy-opt for all the policies compared: every key must be one
 * that at least one of them declares (each gets only its own keys). */
static int check_option_keys(const compare_ctx *c)
{
    for (const char *p = c->s.policy_opts; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t kl = eq ? (size_t)(eq - p) : len;
        int known = 0;
        char keys[512] = "";
        size_t at = 0;
        for (int i = 0; i < mb_policy_count(); i++) {
            const mb_policy_ops *ops = mb_policy_at(i);
            if (!selected(c->only, ops->name))
                continue;
            for (int k = 0; k < mb_policy_option_count(ops); k++) {
                const char *name = mb_policy_option_at(ops, k).name;
                known |= strlen(name) == kl && !strncmp(name, p, kl);
                if (at < sizeof(keys) && !in_list(keys, name))
                    at += (size_t)snprintf(keys + at, sizeof(keys) - at, "%s%s", at ? ", " : "", name);
            }
        }
        if (len && (!eq || !known)) {
            fprintf(stderr, "mecbed compare: --policy-opt '%.*s': %s (the policies compared take: %s)\n",
                    (int)len, p, eq ? "no policy compared takes this key" : "not key=value",
                    keys[0] ? keys : "no options");
            return -1;
        }
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Set every link at the device to `mbps` (goodput after its MTU's headers). */
static void set_device_rate(compare_ctx *c, double mbps)
{
    mb_plan_setup *s = &c->s;
    for (int l = 0; l < s->topo.n_links; l++)
        if (s->topo.links[l].a == s->device || s->topo.links[l].b == s->device) {
            double bps = mb_cost_goodput_bps(mbps * 1e6, s->topo.links[l].spec.mtu);
            mb_cost_set_rate(s->cost, l, bps, bps);
        }
}

static void print_json_row(const compare_ctx *c, const char *policy, const mb_plan *p, double rate,
                           const char *err, int vok, double verr)
{
    printf("%s{\"policy\":", c->first ? "" : ",");
    mb_json_print_string(stdout, policy);
    if (c->n_rates)
        json_num("rate_mbps", rate);
    if (!p) {
        printf(",\"error\":");
        mb_json_print_string(stdout, err);
        printf("}");
        return;
    }
    int64_t sent = p->pred.bytes_up + p->pred.bytes_down + p->pred.bytes_backbone;
    json_num("latency_ms", p->pred.latency_ms);
    json_num("energy_mj", p->pred.energy_mj);
    json_num("energy_system_mj", p->pred.energy_system_mj);
    json_num("decision_us", p->pred.decision_us);
    json_num("bytes_sent", (double)sent);
    json_num("bytes_up", (double)p->pred.bytes_up);
    json_num("bytes_down", (double)p->pred.bytes_down);
    json_num("bytes_backbone", (double)p->pred.bytes_backbone);
    json_num("cut_value_ms", p->pred.cut_value_ms);
    printf(",\"note\":");
    mb_json_print_string(stdout, p->note);
    if (c->s.verify) {
        printf(",\"output_match\":%s", vok ? "true" : "false");
        json_num("max_abs_err", verr);
    }
    printf("}");
}

static void print_text_row(const compare_ctx *c, const char *policy, const mb_plan *p, const char *err,
                           double verr, const char *verdict)
{
    if (!p) {
        printf("%-10s error: %s\n", policy, err);
        return;
    }
    int64_t sent = p->pred.bytes_up + p->pred.bytes_down + p->pred.bytes_backbone;
    char cut[32] = "-";
    if (isfinite(p->pred.cut_value_ms))
        snprintf(cut, sizeof(cut), "%.3f", p->pred.cut_value_ms);
    printf("%-10s %12.3f %12.3f %12.3f %12lld %12.1f %12s%s%s\n", policy, p->pred.latency_ms,
           p->pred.energy_mj, p->pred.energy_system_mj, (long long)sent, p->pred.decision_us, cut,
           c->s.verify ? "  " : "", c->s.verify ? (verr == 0 ? "bit-exact" : verdict) : "");
}

/* Plan (and with --verify run) one policy at one rate, print its row;
 * returns its predicted latency (NaN when it failed). */
static double compare_one(compare_ctx *c, const mb_policy_ops *ops, int ri)
{
    mb_plan_setup *s = &c->s;
    char err[1024];
    /* one --policy-opt for all: each policy gets the keys it declares */
    char opts[512];
    mb_policy_options_for(ops, s->policy_opts, opts, sizeof(opts));
    mb_plan *p = mb_policy_run(ops, s->g, &s->topo, s->cost, s->device, s->objective, opts, err,
                               sizeof(err));
    double latency = p ? p->pred.latency_ms : NAN;
    double verr = NAN, vscale = NAN;
    char verdict[1200] = "";
    int vok = 1;
    if (p && s->verify) {
        char e2[1024];
        if (mb_plan_verify(s, p, &verr, &vscale, e2, sizeof(e2))) {
            vok = 0;
            snprintf(verdict, sizeof(verdict), "error: %s", e2);
        } else
            vok = mb_plan_verify_verdict(verr, vscale, verdict, sizeof(verdict));
        c->failures += !vok;
    }
    if (!p)
        c->failures++;
    if (s->json) {
        print_json_row(c, ops->name, p, c->n_rates ? c->rates[ri] : 0, err, vok, verr);
        c->first = 0;
    } else {
        print_text_row(c, ops->name, p, err, verr, verdict);
    }
    mb_plan_free(p);
    return latency;
}

/* Text mode with --rates: predicted latency, rates x policies. */
static void print_rate_table(const compare_ctx *c)
{
    printf("\npredicted latency (ms), %s\n%-10s", c->s.g->name, "Mbit/s");
    for (int i = 0; i < mb_policy_count(); i++)
        if (selected(c->only, mb_policy_at(i)->name))
            printf(" %10s", mb_policy_at(i)->name);
    printf("\n");
    for (int ri = 0; ri < c->n_rates; ri++) {
        printf("%-10g", c->rates[ri]);
        for (int pi = 0; pi < c->n_pol; pi++)
            printf(" %10.1f", c->table[(size_t)ri * c->n_pol + pi]);
        printf("\n");
    }
}

static void compare_all(compare_ctx *c)
{
    mb_plan_setup *s = &c->s;
    if (s->json)
        printf("[");
    else
        printf("model %s (%d ops), %s %s, profile %s\n", s->g->name, mb_graph_n_ops(s->g), s->link ? "link" : "topology",
               s->link ? s->link : s->topology, s->prof_source);
    for (int ri = 0; ri < (c->n_rates ? c->n_rates : 1); ri++) {
        if (c->n_rates)
            set_device_rate(c, c->rates[ri]);
        if (!s->json) {
            if (c->n_rates)
                printf("\nrate %g Mbit/s\n", c->rates[ri]);
            printf("%-10s %12s %12s %12s %12s %12s %12s%s\n", "policy", "latency_ms", "energy_mj", "system_mj",
                   "bytes_sent", "decision_us", "cut_ms", s->verify ? "  verify" : "");
        }
        int pi = 0;
        for (int i = 0; i < mb_policy_count(); i++) {
            const mb_policy_ops *ops = mb_policy_at(i);
            if (selected(c->only, ops->name))
                c->table[(size_t)ri * c->n_pol + pi++] = compare_one(c, ops, ri);
        }
    }
    if (!s->json && c->n_rates)
        print_rate_table(c);
    if (s->json)
        printf("]\n");
}

int cmd_compare(int argc, char **argv)
{
    static compare_ctx ctx;
    compare_ctx *c = &ctx;
    memset(c, 0, sizeof(*c));
    c->first = 1;
    mb_plan_setup_init(&c->s);
    int rc = parse_args(c, argc, argv);
    if (rc >= 0)
        return rc;
    char err[1024];
    if (mb_plan_setup_build(&c->s, err, sizeof(err))) {
        fprintf(stderr, "mecbed compare: %s\n", err);
        mb_plan_setup_free(&c->s);
        return 1;
    }
    if (check_policy_names(c->only)) {
        mb_plan_setup_free(&c->s);
        return 1;
    }
    if (check_option_keys(c)) {
        mb_plan_setup_free(&c->s);
        return 1;
    }
    for (int i = 0; i < mb_policy_count(); i++)
        c->n_pol += selected(c->only, mb_policy_at(i)->name);
    c->table = calloc((size_t)(c->n_rates ? c->n_rates : 1) * (size_t)(c->n_pol ? c->n_pol : 1), sizeof(double));
    if (!c->table) {
        fprintf(stderr, "mecbed compare: out of memory\n");
        mb_plan_setup_free(&c->s);
        return 1;
    }
    compare_all(c);
    free(c->table);
    mb_plan_setup_free(&c->s);
    return c->failures ? 1 : 0;
}
