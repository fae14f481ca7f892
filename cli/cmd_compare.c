/* mecbed compare: every registered policy on one model and link, side by
 * side, from the same cost model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
               "  --verify             also run every plan in-process (--backend cpu|ref)\n");
    mb_plan_setup_help(f);
}

static const struct option long_opts[] = {
    {"model", required_argument, 0, 0},        {"link", required_argument, 0, 0},
    {"topology", required_argument, 0, 0},     {"profile", required_argument, 0, 0},
    {"node-types", required_argument, 0, 0},   {"device-type", required_argument, 0, 0},
    {"edge-type", required_argument, 0, 0},    {"cloud-type", required_argument, 0, 0},
    {"radio", required_argument, 0, 0},        {"frame-interval", required_argument, 0, 0},
    {"msg-overhead", required_argument, 0, 0}, {"objective", required_argument, 0, 0},
    {"policy-opt", required_argument, 0, 0},   {"policy-plugin", required_argument, 0, 0},
    {"verbose", no_argument, 0, 0},            {"json", no_argument, 0, 'j'},
    {"policies", required_argument, 0, 'P'},   {"verify", no_argument, 0, 'v'},
    {"backend", required_argument, 0, 'b'},    {"help", no_argument, 0, 'h'},
    {"rates", required_argument, 0, 'R'},      {0, 0, 0, 0},
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

int cmd_compare(int argc, char **argv)
{
    mb_plan_setup s;
    mb_plan_setup_init(&s);
    const char *only = NULL, *rates_arg = NULL;
    double rates[64];
    int n_rates = 0;
    int c, idx;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
        switch (c) {
        case 0:
            if (mb_plan_setup_option(&s, long_opts[idx].name, optarg))
                return 2;
            break;
        case 'j': s.json = 1; break;
        case 'P': only = optarg; break;
        case 'R': rates_arg = optarg; break;
        case 'v': s.verify = 1; break;
        case 'b': s.verify_backend = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed compare: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    for (const char *r = rates_arg; r && *r;) {
        char *end;
        double v = strtod(r, &end);
        if (end == r || (*end && *end != ',') || !(v > 0) || !isfinite(v) || n_rates == 64) {
            fprintf(stderr, "mecbed compare: --rates %s: expected up to 64 rates in Mbit/s > 0, "
                            "comma-separated\n", rates_arg);
            return 2;
        }
        rates[n_rates++] = v;
        r = *end ? end + 1 : end;
    }
    char err[1024];
    if (mb_plan_setup_build(&s, err, sizeof(err))) {
        fprintf(stderr, "mecbed compare: %s\n", err);
        mb_plan_setup_free(&s);
        return 1;
    }
    for (const char *p = only; p && *p;) { /* every named policy must exist */
        const char *e = strchr(p, ',');
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
        if (!mb_policy_find(name)) {
            fprintf(stderr, "mecbed compare: --policies: unknown policy '%s'\n", name);
            mb_plan_setup_free(&s);
            return 1;
        }
        p = e ? e + 1 : NULL;
    }
    int failures = 0, first = 1;
    int n_pol = 0;
    for (int i = 0; i < mb_policy_count(); i++)
        n_pol += selected(only, mb_policy_at(i)->name);
    double *table = calloc((size_t)(n_rates ? n_rates : 1) * (size_t)(n_pol ? n_pol : 1), sizeof(double));
    if (!table) {
        fprintf(stderr, "mecbed compare: out of memory\n");
        mb_plan_setup_free(&s);
        return 1;
    }
    if (s.json)
        printf("[");
    else {
        printf("model %s (%d ops), %s %s, profile %s\n", s.g->name, s.g->n_nodes,
               s.link ? "link" : "topology", s.link ? s.link : s.topology, s.prof_source);
    }
    for (int ri = 0; ri < (n_rates ? n_rates : 1); ri++) {
        if (n_rates)
            for (int l = 0; l < s.topo.n_links; l++)
                if (s.topo.links[l].a == s.device || s.topo.links[l].b == s.device) {
                    double bps = mb_cost_goodput_bps(rates[ri] * 1e6, s.topo.links[l].spec.mtu);
                    mb_cost_set_rate(s.cost, l, bps, bps);
                }
        if (!s.json) {
            if (n_rates)
                printf("\nrate %g Mbit/s\n", rates[ri]);
            printf("%-10s %12s %12s %12s %12s %12s %12s%s\n", "policy", "latency_ms", "energy_mj",
                   "system_mj", "bytes_sent", "decision_us", "cut_ms", s.verify ? "  verify" : "");
        }
        int pi = 0;
        for (int i = 0; i < mb_policy_count(); i++) {
            const mb_policy_ops *ops = mb_policy_at(i);
            if (!selected(only, ops->name))
                continue;
            /* one --policy-opt for all: each policy gets the keys it declares */
            char opts[512];
            mb_policy_options_for(ops, s.policy_opts, opts, sizeof(opts));
            mb_plan *p = mb_policy_run(ops, s.g, &s.topo, s.cost, s.device, s.objective, opts, err,
                                       sizeof(err));
            table[(size_t)ri * n_pol + pi++] = p ? p->pred.latency_ms : NAN;
            double verr = NAN, vscale = NAN;
            char verdict[1200] = "";
            int vok = 1;
            if (p && s.verify) {
                char e2[1024];
                if (mb_plan_verify(&s, p, &verr, &vscale, e2, sizeof(e2))) {
                    vok = 0;
                    snprintf(verdict, sizeof(verdict), "error: %s", e2);
                } else
                    vok = mb_plan_verify_verdict(verr, vscale, verdict, sizeof(verdict));
                failures += !vok;
            }
            if (!p)
                failures++;
            if (s.json) {
                printf("%s{\"policy\":", first ? "" : ",");
                mb_json_print_string(stdout, ops->name);
                first = 0;
                if (n_rates)
                    json_num("rate_mbps", rates[ri]);
                if (!p) {
                    printf(",\"error\":");
                    mb_json_print_string(stdout, err);
                    printf("}");
                    continue;
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
                if (s.verify) {
                    printf(",\"output_match\":%s", vok ? "true" : "false");
                    json_num("max_abs_err", verr);
                }
                printf("}");
            } else if (!p) {
                printf("%-10s error: %s\n", ops->name, err);
            } else {
                int64_t sent = p->pred.bytes_up + p->pred.bytes_down + p->pred.bytes_backbone;
                char cut[32] = "-";
                if (isfinite(p->pred.cut_value_ms))
                    snprintf(cut, sizeof(cut), "%.3f", p->pred.cut_value_ms);
                printf("%-10s %12.3f %12.3f %12.3f %12lld %12.1f %12s%s%s\n", ops->name,
                       p->pred.latency_ms, p->pred.energy_mj, p->pred.energy_system_mj,
                       (long long)sent, p->pred.decision_us, cut, s.verify ? "  " : "",
                       s.verify ? (verr == 0 ? "bit-exact" : verdict) : "");
            }
            mb_plan_free(p);
        }
    }
    if (!s.json && n_rates) {
        printf("\npredicted latency (ms), %s\n%-10s", s.g->name, "Mbit/s");
        for (int i = 0; i < mb_policy_count(); i++)
            if (selected(only, mb_policy_at(i)->name))
                printf(" %10s", mb_policy_at(i)->name);
        printf("\n");
        for (int ri = 0; ri < n_rates; ri++) {
            printf("%-10g", rates[ri]);
            for (int pi = 0; pi < n_pol; pi++)
                printf(" %10.1f", table[(size_t)ri * n_pol + pi]);
            printf("\n");
        }
    }
    free(table);
    if (s.json)
        printf("]\n");
    mb_plan_setup_free(&s);
    return failures ? 1 : 0;
}
