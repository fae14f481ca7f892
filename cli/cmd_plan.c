/* mecbed plan: partition a model with one policy and print the plan and
 * what the cost model predicts; --verify runs it in-process. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_policies.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: mecbed plan --model M --policy P (--link SPEC | --topology FILE) [options]\n\n"
               "Partition a model with a policy and print the plan with its predicted latency,\n"
               "device energy, bytes sent and decision time.\n\n"
               "  --policy P           local offload layerwise mincut cic tile oplevel dds, or a plugin's\n"
               "  --json               the plan as JSON (steps included; docs/policies.md)\n"
               "  --verify             run the plan in-process with the real kernels and compare\n"
               "                       with the unsplit model (exit 1 beyond 1e-5 relative)\n"
               "  --backend B          kernels for --verify: cpu (default) or ref\n"
               "  --out FILE           also write the plan JSON to FILE\n");
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
    {"verbose", no_argument, 0, 0},            {"policy", required_argument, 0, 'p'},
    {"json", no_argument, 0, 'j'},             {"verify", no_argument, 0, 'v'},
    {"backend", required_argument, 0, 'b'},    {"out", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},             {0, 0, 0, 0},
};

int cmd_plan(int argc, char **argv)
{
    mb_plan_setup s;
    mb_plan_setup_init(&s);
    const char *policy = NULL, *out_path = NULL;
    int c, idx;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, &idx)) != -1) {
        switch (c) {
        case 0:
            if (mb_plan_setup_option(&s, long_opts[idx].name, optarg))
                return 2;
            break;
        case 'p': policy = optarg; break;
        case 'j': s.json = 1; break;
        case 'v': s.verify = 1; break;
        case 'b': s.verify_backend = optarg; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed plan: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!policy) {
        fprintf(stderr, "mecbed plan: --policy is required (mecbed plan --help)\n");
        return 2;
    }
    char err[1024];
    if (mb_plan_setup_build(&s, err, sizeof(err))) {
        fprintf(stderr, "mecbed plan: %s\n", err);
        mb_plan_setup_free(&s);
        return 1;
    }
    const mb_policy_ops *ops = mb_policy_find(policy);
    if (!ops) {
        fprintf(stderr, "mecbed plan: unknown policy '%s' (registered:", policy);
        for (int i = 0; i < mb_policy_count(); i++)
            fprintf(stderr, " %s", mb_policy_at(i)->name);
        fprintf(stderr, "; plugins load with --policy-plugin)\n");
        mb_plan_setup_free(&s);
        return 1;
    }
    mb_plan *p = mb_policy_run(ops, s.g, &s.topo, s.cost, s.device, s.objective, s.policy_opts,
                               err, sizeof(err));
    if (!p) {
        fprintf(stderr, "mecbed plan: %s\n", err);
        mb_plan_setup_free(&s);
        return 1;
    }
    int rc = 0;
    double verr = NAN, vscale = NAN;
    int vok = 1;
    char verdict[1200] = "";
    if (s.verify) {
        if (mb_plan_verify(&s, p, &verr, &vscale, err, sizeof(err))) {
            fprintf(stderr, "mecbed plan: --verify: %s\n", err);
            rc = 1;
            vok = 0;
            snprintf(verdict, sizeof(verdict), "could not run: %s", err);
        } else {
            vok = mb_plan_verify_verdict(verr, vscale, verdict, sizeof(verdict));
            rc = vok ? 0 : 1;
        }
    }
    p->graph_hash = mb_graph_hash(s.g);
    char *json = mb_plan_to_json(p, s.g, &s.topo, 1);
    if (out_path && json) {
        FILE *f = fopen(out_path, "w");
        if (!f || fputs(json, f) < 0 || fclose(f)) {
            fprintf(stderr, "mecbed plan: cannot write %s\n", out_path);
            rc = 1;
        }
    }
    if (s.json) {
        /* plan JSON plus the verification result as one object */
        size_t len = strlen(json);
        printf("%.*s,\"profile\":", (int)(len - 1), json);
        mb_json_print_string(stdout, s.prof_source);
        printf(",\"link\":");
        mb_json_print_string(stdout, s.link ? s.link : s.topology);
        if (s.verify) {
            if (isfinite(verr))
                printf(",\"verify\":{\"ok\":%s,\"output_match\":%s,\"max_abs_err\":%.9g,\"scale\":%.9g}",
                       vok ? "true" : "false", verr == 0 ? "true" : "false", verr, vscale);
            else
                printf(",\"verify\":{\"ok\":false,\"error\":\"could not run\"}");
        }
        printf("}\n");
    } else {
        printf("model %s (%d ops), policy %s, %s %s\n", s.g->name, s.g->n_nodes, p->policy,
               s.link ? "link" : "topology", s.link ? s.link : s.topology);
        printf("profile: %s (%d thread%s, %s, sgemm %.1f GFLOP/s)\n", s.prof_source,
               s.prof->threads, s.prof->threads == 1 ? "" : "s",
               s.prof->blas_core[0] ? s.prof->blas_core : "?", s.prof->ref_gflops);
        for (int i = 0; i < s.topo.n_sites; i++)
            printf("  site %-8s %-11s x%.3f of the profile\n", s.topo.sites[i].name,
                   mb_cost_site_type(s.cost, i)->name, mb_cost_site_factor(s.cost, i));
        printf("predicted latency   %10.3f ms\n", p->pred.latency_ms);
        printf("device energy       %10.3f mJ  (radio %.3f mJ, compute %.3f ms busy)\n",
               p->pred.energy_mj, p->pred.radio_mj, p->pred.device_compute_ms);
        printf("whole-system energy %10.3f mJ\n", p->pred.energy_system_mj);
        printf("bytes               up %lld, down %lld, backbone %lld\n",
               (long long)p->pred.bytes_up, (long long)p->pred.bytes_down,
               (long long)p->pred.bytes_backbone);
        printf("decision time       %10.1f us\n", p->pred.decision_us);
        if (isfinite(p->pred.cut_value_ms))
            printf("cut value           %10.3f ms\n", p->pred.cut_value_ms);
        for (int i = 0; i < p->n_metrics; i++)
            printf("  %-18s %g\n", p->metrics[i].name, p->metrics[i].value);
        mb_plan_print(stdout, p, s.g, &s.topo);
        if (s.verify)
            printf("verify (%s backend): %s\n", s.verify_backend, verdict);
    }
    free(json);
    mb_plan_free(p);
    mb_plan_setup_free(&s);
    return rc;
}
