/* libFuzzer harness: profile CSV (policies/profile.c) for a small model
 * (FUZZ_MODEL), then the min-cut policies (mincut, dds) planned with every
 * accepted profile: an op time of 1e40 ms once made the max flow loop
 * forever, so a timeout here is a finding too. Runs from the repository
 * root (it reads the default node types). */
#include <math.h>

#include "fuzz_util.h"

#include "mecbed/cost.h"
#include "mecbed/graph.h"
#include "mecbed/nodetype.h"
#include "mecbed/plan.h"
#include "mecbed/policy_host.h"
#include "mecbed/profile.h"
#include "mecbed/topology.h"
#include "mecbed/model.h"

static mb_graph *g;
static mb_topology topo;
static mb_nodetype_set types;

static void setup(void)
{
    char err[512];
    g = mb_modelfile_read(FUZZ_MODEL, err, sizeof err);
    if (!g || mb_topology_from_link("rate=10mbit,rtt=20ms", &topo, err, sizeof err) ||
        mb_nodetypes_load_default(&types, err, sizeof err)) {
        fprintf(stderr, "fuzz_profile: setup: %s\n", err);
        abort();
    }
    mb_policy_register_builtins();
}

static void plan_with(const char *policy, const mb_cost_model *c)
{
    const mb_policy_ops *ops = mb_policy_find(policy);
    if (!ops)
        abort();
    char err[512];
    mb_plan *p = mb_policy_run(ops, g, &topo, c, mb_topology_find(&topo, "device"), MB_OBJ_LATENCY, "", err,
                               sizeof err);
    mb_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 16))
        return 0;
    if (!g)
        setup();
    const char *path = fuzz_file(data, size, ".csv");
    if (!path)
        return 0;
    char err[512] = "";
    mb_profile *p = mb_profile_read_csv(path, g, err, sizeof err);
    if (!p) {
        fuzz_check_err(err);
        return 0;
    }
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    mb_cost_model *c = mb_cost_new(g, &topo, p, &types, &o, err, sizeof err);
    if (c) {
        plan_with("mincut", c);
        plan_with("dds", c);
        mb_cost_free(c);
    }
    mb_profile_free(p);
    return 0;
}
