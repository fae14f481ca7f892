/* mecbed plan: partition a model with one policy and print the plan and
 * what the cost model predicts; --verify runs it in-process. */
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
    fprintf(f, "usage: mecbed plan --model M --policy P (--link SPEC | --topology FILE) [options]\n\n"
               "Partition a model with a policy and print the plan with its predicted latency,\n"
               "device energy, bytes sent and decision time.\n\n"
               "  --policy P           a registered policy, or a plugin's (--policy-plugin, or\n"
               "                       P.so on the plugin path: mecbed policies); built in:\n"
               "                      ");
    /* the names come from the registry, so a new built-in is listed without an edit here */
    mb_policy_register_builtins();
    for (int i = 0; i < mb_policy_count(); i++)
        fprintf(f, " %s", mb_policy_at(i)->name);
    fprintf(f, "\n"
               "  --json               the plan as JSON (steps included; docs/policies.md)\n"
               "  --verify             run the plan in-process with the real kernels and compare\n"
               "                       with the unsplit model (exit 1 beyond 1e-5 relative)\n"
               "  --kernels K          kernels for --verify: cpu (default) or ref (--backend: deprecated)\n"
               "  --out FILE           also write the plan JSON to FILE\n");
    mb_plan_setup_help(f);
}

/* plan's own options; the shared planning options come from options.c */
static const struct option own_opts[] = {
    {"policy", required_argument, 0, 'p'},  {"json", no_argument, 0, 'j'},
    {"verify", no_argument, 0, 'v'},        {"kernels", required_argument, 0, 'k'},
    {"backend", required_argument, 0, 'b'}, {"out", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
};

/* The plan JSON plus profile, link and the verification result as one object. */
static void print_json(const mb_plan_setup *s, const char *json, double verr, double vscale, int vok)
{
    size_t len = strlen(json);
    printf("%.*s,\"profile\":", (int)(len - 1), json);
    mb_json_print_string(stdout, s->prof_source);
    printf(",\"link\":");
    mb_json_print_string(stdout, s->link ? s->link : s->topology);
    if (s->verify) {
        if (isfinite(verr))
            printf(",\"verify\":{\"ok\":%s,\"output_match\":%s,\"max_abs_err\":%.9g,\"scale\":%.9g}",
                   vok ? "true" : "false", verr == 0 ? "true" : "false", verr, vscale);
        else
            printf(",\"verify\":{\"ok\":false,\"error\":\"could not run\"}");
    }
    printf("}\n");
}

static void print_text(const mb_plan_setup *s, const mb_plan *p, const char *verdict)
{
    printf("model %s (%d ops), policy %s, %s %s\n", s->g->name, mb_graph_n_ops(s->g), p->policy,
           s->link ? "link" : "topology", s->link ? s->link : s->topology);
    printf("profile: %s (%d thread%s, %s, sgemm %.1f GFLOP/s)\n", s->prof_source, s->prof->threads,
           s->prof->threads == 1 ? "" : "s", s->prof->blas_core[0] ? s->prof->blas_core : "?",
           s->prof->ref_gflops);
    for (int i = 0; i < s->topo.n_sites; i++)
        printf("  site %-8s %-11s x%.3f of the profile\n", s->topo.sites[i].name,
               mb_cost_site_type(s->cost, i)->name, mb_cost_site_factor(s->cost, i));
    printf("predicted latency   %10.3f ms\n", p->pred.latency_ms);
    printf("device energy       %10.3f mJ  (radio %.3f mJ, compute %.3f ms busy)\n", p->pred.energy_mj,
           p->pred.radio_mj, p->pred.device_compute_ms);
    printf("whole-system energy %10.3f mJ\n", p->pred.energy_system_mj);
    printf("bytes               up %lld, down %lld, backbone %lld\n", (long long)p->pred.bytes_up,
           (long long)p->pred.bytes_down, (long long)p->pred.bytes_backbone);
    printf("decision time       %10.1f us\n", p->pred.decision_us);
    if (isfinite(p->pred.cut_value_ms))
        printf("cut value           %10.3f ms\n", p->pred.cut_value_ms);
    for (int i = 0; i < p->n_metrics; i++)
        printf("  %-18s %g\n", p->metrics[i].name, p->metrics[i].value);
    mb_plan_print(stdout, p, s->g, &s->topo);
    if (s->verify)
        printf("verify (%s backend): %s\n", s->verify_backend, verdict);
}

int cmd_plan(int argc, char **argv)
{
    mb_plan_setup s;
    mb_plan_setup_init(&s);
    const char *policy = NULL, *out_path = NULL;
    struct option long_opts[MB_CLI_MAX_OPTIONS];
    if (mb_plan_options_build(long_opts, MB_CLI_MAX_OPTIONS, own_opts)) {
        fprintf(stderr, "mecbed plan: too many options\n");
        return 2;
    }
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
        case 'k': s.verify_backend = optarg; break;
        case 'b':
            mb_cli_deprecated("backend", "kernels");
            s.verify_backend = optarg;
            break;
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
    const mb_policy_ops *ops = mb_policy_find_or_load(policy, err, sizeof(err));
    if (!ops) {
        fprintf(stderr, "mecbed plan: %s\n", err);
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
    if (s.json)
        print_json(&s, json, verr, vscale, vok);
    else
        print_text(&s, p, verdict);
    free(json);
    mb_plan_free(p);
    mb_plan_setup_free(&s);
    return rc;
}
