/* mecbed compare: every registered policy on one model and link, side by
 * side, from the same cost model. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_policies.h"

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
    {0, 0, 0, 0},
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
    const char *only = NULL;
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
    if (s.json)
        printf("[");
    else {
        printf("model %s (%d ops), %s %s, profile %s\n", s.g->name, s.g->n_nodes,
               s.link ? "link" : "topology", s.link ? s.link : s.topology, s.prof_source);
        printf("%-10s %12s %12s %12s %12s %12s %12s%s\n", "policy", "latency_ms", "energy_mj",
               "system_mj", "bytes_sent", "decision_us", "cut_ms", s.verify ? "  verify" : "");
    }
    for (int i = 0; i < mb_policy_count(); i++) {
        const mb_policy_ops *ops = mb_policy_at(i);
        if (!selected(only, ops->name))
            continue;
        mb_plan *p = mb_policy_run(ops, s.g, &s.topo, s.cost, s.device, s.objective,
                                   s.policy_opts, err, sizeof(err));
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
    if (s.json)
        printf("]\n");
    mb_plan_setup_free(&s);
    return failures ? 1 : 0;
}
