/* The plugin ABI: registration rules (missing plan, duplicate name, foreign
 * or retired ABI version, short struct, bad name), built-ins registered
 * through the same call in builtin.h's order, declared option keys, error
 * prefixes, the host table's accessors, and the example plugin loaded with
 * dlopen by path and by name (built by mk/policies.mk into $BUILD/plugins/),
 * planning a real model through the host table only. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/policy_host.h"
#include "policy_fixture.h"
#include "../policies/builtin.h"

static int dummy_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    int *where = calloc((size_t)in->host->graph_n_nodes(in->g) + 1, sizeof(int));
    int rc = in->host->plan_assign(out, in->g, where, err, errlen);
    free(where);
    return rc;
}

static void expect_reject(const mb_policy_ops *ops, const char *needle)
{
    char err[512] = "";
    assert_int_equal(mb_policy_register(ops, err, sizeof(err)), -1);
    if (!strstr(err, needle))
        fprintf(stderr, "'%s' lacks '%s'\n", err, needle);
    assert_non_null(strstr(err, needle));
}

static void test_registration_rules(void **state)
{
    (void)state;
    char err[512];
    mb_policy_ops ok = {.abi_version = MB_POLICY_ABI_VERSION,
                        .struct_size = sizeof(mb_policy_ops),
                        .name = "dummy",
                        .summary = "test",
                        .plan = dummy_plan};
    mb_policy_ops no_plan = ok, bad_abi = ok, old_abi = ok, short_struct = ok, bad_name = ok,
                  no_name = ok;
    no_plan.name = "noplan";
    no_plan.plan = NULL;
    expect_reject(&no_plan, "'plan' is missing");
    bad_abi.abi_version = 99;
    expect_reject(&bad_abi, "ABI version 99");
    old_abi.abi_version = 1; /* read the layouts directly: retired */
    expect_reject(&old_abi, "ABI version 1");
    short_struct.struct_size = 8;
    expect_reject(&short_struct, "needs");
    bad_name.name = "Bad Name";
    expect_reject(&bad_name, "a-z");
    no_name.name = NULL;
    expect_reject(&no_name, "no name");
    assert_int_equal(mb_policy_register(&ok, err, sizeof(err)), 0);
    assert_ptr_equal(mb_policy_find("dummy"), &ok);
    expect_reject(&ok, "already registered");
    assert_int_equal(mb_policy_unregister("dummy"), 0);
    assert_null(mb_policy_find("dummy"));
}

static void test_builtins(void **state)
{
    (void)state;
    mb_policy_register_builtins();
    mb_policy_register_builtins(); /* idempotent */
    /* builtin.h's table is the only list: each entry is registered, at its
     * position, through the public call, with a summary and option table */
    int i = 0;
#define CHECK_BUILTIN(n)                                                                           \
    assert_ptr_equal(mb_policy_at(i), &mb_policy_##n##_ops);                                       \
    assert_ptr_equal(mb_policy_find(mb_policy_at(i)->name), &mb_policy_##n##_ops);                 \
    assert_non_null(mb_policy_at(i)->summary);                                                     \
    assert_non_null(mb_policy_at(i)->options);                                                     \
    i++;
    MB_BUILTIN_POLICIES(CHECK_BUILTIN)
#undef CHECK_BUILTIN
    assert_true(mb_policy_count() >= i);
    char names[512];
    mb_policy_names(names, sizeof(names), " ");
    assert_non_null(strstr(names, "local offload"));
    assert_non_null(strstr(names, "dds"));
}

static const char *const two_keys[] = {"alpha", "beta", NULL};

static void test_option_keys(void **state)
{
    (void)state;
    char err[512];
    mb_policy_ops ops = {.abi_version = MB_POLICY_ABI_VERSION,
                         .struct_size = sizeof(mb_policy_ops),
                         .name = "keyed",
                         .option_keys = two_keys,
                         .plan = dummy_plan};
    assert_int_equal(mb_policy_check_options(&ops, "", err, sizeof(err)), 0);
    assert_int_equal(mb_policy_check_options(&ops, "alpha=1,beta=x", err, sizeof(err)), 0);
    assert_int_equal(mb_policy_check_options(&ops, "alpha=1,alphabet=2", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown option 'alphabet'"));
    assert_non_null(strstr(err, "alpha, beta"));
    assert_int_equal(mb_policy_check_options(&ops, "alpha", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'alpha' is not key=value"));
    char kept[64];
    assert_string_equal(mb_policy_options_for(&ops, "gamma=3,beta=2,alpha=1", kept, sizeof(kept)),
                        "beta=2,alpha=1");
    ops.option_keys = NULL;
    assert_string_equal(mb_policy_options_for(&ops, "alpha=1", kept, sizeof(kept)), "");
    assert_int_equal(mb_policy_check_options(&ops, "alpha=1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "takes no options"));
    /* version 3: typed options; values are checked against the type */
    static const mb_policy_option typed[] = {
        {"frac", MB_OPT_NUMBER, "0.5", "a fraction"}, {"n", MB_OPT_INT, "3", "a count"},
        {"on", MB_OPT_BOOL, "0", "a switch"},         {"who", MB_OPT_STRING, "", "a name"},
        {NULL, 0, NULL, NULL},
    };
    mb_policy_ops t3 = {.abi_version = 3, .struct_size = sizeof(mb_policy_ops), .name = "typed",
                        .option_keys = two_keys, .options = typed, .plan = dummy_plan};
    assert_int_equal(mb_policy_option_count(&t3), 4);
    assert_string_equal(mb_policy_option_at(&t3, 1).name, "n");
    assert_int_equal(mb_policy_check_options(&t3, "frac=0.25,n=7,on=yes,who=edge0", err, sizeof(err)), 0);
    assert_int_equal(mb_policy_check_options(&t3, "alpha=1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "it takes: frac, n, on, who"));
    assert_int_equal(mb_policy_check_options(&t3, "frac=abc", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "frac=abc: expected a number"));
    assert_int_equal(mb_policy_check_options(&t3, "n=2.5", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected a whole number"));
    assert_int_equal(mb_policy_check_options(&t3, "on=maybe", err, sizeof(err)), -1);
    assert_int_equal(mb_policy_check_options(&t3, "frac=", err, sizeof(err)), -1);
    /* the same struct claiming version 2: options is not read, option_keys is */
    t3.abi_version = 2;
    assert_int_equal(mb_policy_option_count(&t3), 2);
    assert_int_equal(mb_policy_option_at(&t3, 0).type, -1);
    assert_int_equal(mb_policy_check_options(&t3, "alpha=anything", err, sizeof(err)), 0);
    /* host reads bools as numbers */
    assert_true(mb_policy_host()->opt_double("on=true", "on", 0) == 1);
    assert_true(mb_policy_host()->opt_double("on=no", "on", 1) == 0);
    /* a built-in: its own keys pass, others are named */
    mb_policy_register_builtins();
    assert_int_equal(mb_policy_check_options(mb_policy_find("mincut"), "mode=heavy,fps=10", err,
                                             sizeof(err)),
                     0);
    assert_int_equal(mb_policy_check_options(mb_policy_find("local"), "server=edge0", err,
                                             sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "policy local: unknown option 'server'"));
}

static int failing_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    (void)in;
    (void)out;
    snprintf(err, errlen, "failing: no luck");
    return -1;
}

/* Sessions refuse undeclared keys before init, and say the policy's name once. */
static void test_session_errors(void **state)
{
    (void)state;
    char err[512];
    mb_graph *g = mb_zoo_build("alexnet", MB_ZOO_SEED, err, sizeof(err));
    assert_non_null(g);
    mb_profile *prof = pf_profile(g, 0.1, 2);
    mb_topology t;
    mb_cost_model *c = pf_cost(g, prof, "rate=50mbit,rtt=10ms", &t, 5, 0.2);
    mb_policy_ops ops = {.abi_version = MB_POLICY_ABI_VERSION,
                         .struct_size = sizeof(mb_policy_ops),
                         .name = "failing",
                         .plan = failing_plan};
    assert_null(mb_policy_run(&ops, g, &t, c, 0, MB_OBJ_LATENCY, "x=1", err, sizeof(err)));
    assert_non_null(strstr(err, "unknown option 'x'"));
    assert_null(mb_policy_run(&ops, g, &t, c, 0, MB_OBJ_LATENCY, "", err, sizeof(err)));
    assert_string_equal(err, "policy failing: no luck");
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

/* The host table's accessors agree with the structures they hide. */
static void test_host_accessors(void **state)
{
    (void)state;
    char err[512];
    const mb_host *h = mb_policy_host();
    assert_int_equal(h->abi_version, MB_POLICY_ABI_VERSION);
    assert_int_equal(h->struct_size, sizeof(mb_host));
    mb_graph *g = mb_zoo_build("resnet18", MB_ZOO_SEED, err, sizeof(err));
    assert_non_null(g);
    assert_int_equal(h->graph_n_nodes(g), g->n_nodes);
    assert_int_equal(h->graph_n_outputs(g), g->n_outputs);
    assert_int_equal(h->graph_output(g, 0), g->outputs[0]);
    assert_int_equal(h->graph_output(g, g->n_outputs), -1);
    for (int i = 0; i < g->n_nodes; i++) {
        const mb_node *n = &g->nodes[i];
        assert_string_equal(h->node_name(g, i), n->name);
        assert_string_equal(h->node_op(g, i), mb_op_name(n->type));
        int kind = n->type == MB_OP_INPUT ? MB_NODE_INPUT
                   : n->type == MB_OP_CONSTANT ? MB_NODE_CONSTANT
                                               : MB_NODE_OP;
        assert_int_equal(h->node_kind(g, i), kind);
        assert_int_equal(h->node_n_inputs(g, i), n->n_inputs);
        for (int k = 0; k < n->n_inputs; k++)
            assert_int_equal(h->node_input(g, i, k), n->inputs[k]);
        int64_t dims[8];
        assert_int_equal(h->node_out_dims(g, i, dims, 8), n->out_ndim);
        for (int d = 0; d < n->out_ndim; d++)
            assert_int_equal(dims[d], n->out_dims[d]);
        assert_int_equal(h->node_out_bytes(g, i), n->out_bytes);
        assert_int_equal(h->node_macs(g, i), n->macs);
        assert_int_equal(h->node_local(g, i), n->local);
    }
    assert_null(h->node_name(g, g->n_nodes));
    assert_int_equal(h->node_kind(g, -1), -1);
    mb_profile *prof = pf_profile(g, 0.1, 2);
    mb_topology t;
    mb_cost_model *c = pf_cost(g, prof, "rate=50mbit,rtt=10ms", &t, 5, 0.2);
    assert_int_equal(h->topo_n_sites(&t), t.n_sites);
    assert_int_equal(h->site_role(&t, 0), MB_SITE_DEVICE);
    assert_string_equal(h->site_name(&t, 1), t.sites[1].name);
    /* a candidate plan made, evaluated and read through the table */
    mb_plan *p = h->plan_new("probe", g, 0);
    assert_non_null(p);
    int *where = calloc((size_t)g->n_nodes, sizeof(int));
    assert_int_equal(h->plan_assign(p, g, where, err, sizeof(err)), 0);
    free(where);
    assert_true(h->plan_n_steps(p) > 0);
    h->plan_set_note(p, "all local");
    assert_string_equal(p->note, "all local");
    h->plan_set_cut_value(p, 1.5);
    assert_int_equal(h->plan_evaluate(p, c, err, sizeof(err)), 0);
    assert_true(h->plan_pred(p, "latency_ms") > 0);
    assert_true(h->plan_pred(p, "latency_ms") == p->pred.latency_ms);
    assert_true(h->plan_pred(p, "bytes_up") == (double)p->pred.bytes_up);
    assert_true(h->plan_pred(p, "cut_value_ms") == 1.5);
    assert_true(isnan(h->plan_pred(p, "no_such_field")));
    h->plan_free(p);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

static void plugin_dir(char *out, size_t len)
{
    char exe[PATH_MAX / 2];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = 0;
    *strrchr(exe, '/') = 0; /* $BUILD/tests */
    snprintf(out, len, "%s/../plugins", exe);
}

static void test_plugin_load_and_plan(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512];
    plugin_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/greedy.so", dir);
    const char *name = NULL;
    int rc = mb_policy_load(path, &name, err, sizeof(err));
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(name, "greedy");
    /* loading the same file again is a no-op; another file with the same
     * policy name is refused, naming the file registered first */
    const mb_policy_ops *first = mb_policy_find("greedy");
    assert_int_equal(mb_policy_load(path, NULL, err, sizeof(err)), 0);
    assert_ptr_equal(mb_policy_find("greedy"), first);
    assert_non_null(mb_policy_origin(first));
    assert_non_null(strstr(mb_policy_origin(first), "greedy.so"));
    char copy[64];
    snprintf(copy, sizeof(copy), "/tmp/mecbed-test-greedy-%d.so", (int)getpid());
    char cmd[PATH_MAX + 160];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mb_policy_load(copy, NULL, err, sizeof(err)), -1);
    unlink(copy);
    assert_non_null(strstr(err, "already registered"));
    assert_non_null(strstr(err, "greedy.so"));
    /* by name from the plugin directory */
    assert_int_equal(mb_policy_unregister("greedy"), 0);
    setenv("MECBED_PLUGIN_DIR", dir, 1);
    assert_int_equal(mb_policy_load("greedy", NULL, err, sizeof(err)), 0);
    /* it plans a real model, and the plan is valid and evaluated */
    mb_graph *g = mb_zoo_build("resnet18", MB_ZOO_SEED, err, sizeof(err));
    assert_non_null(g);
    mb_profile *prof = pf_profile(g, 0.1, 2);
    mb_topology t;
    mb_cost_model *c = pf_cost(g, prof, "rate=50mbit,rtt=10ms", &t, 5, 0.2);
    mb_plan *p = mb_policy_run(mb_policy_find("greedy"), g, &t, c, 0, MB_OBJ_LATENCY, "", err,
                               sizeof(err));
    if (!p)
        fprintf(stderr, "%s\n", err);
    assert_non_null(p);
    assert_true(p->pred.latency_ms > 0);
    assert_false(isnan(mb_plan_metric_get(p, "server_ops")));
    assert_non_null(strstr(p->note, "ops on edge0"));
    mb_plan_free(p);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

static void test_plugin_errors(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX + 32], err[512];
    plugin_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/../plugins-test/abi99.so", dir);
    assert_int_equal(mb_policy_load(path, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ABI version 99"));
    assert_int_equal(mb_policy_load("/nonexistent/x.so", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/x.so"));
    setenv("MECBED_PLUGIN_DIR", dir, 1);
    assert_int_equal(mb_policy_load("no_such_plugin", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not found"));
    /* a shared object without the entry point */
    assert_int_equal(mb_policy_load("/lib/x86_64-linux-gnu/libm.so.6", NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "mb_policy_plugin"));
}

int main(int argc, char **argv)
{
    mb_platform_init(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_option_keys),
        cmocka_unit_test(test_session_errors),
        cmocka_unit_test(test_host_accessors),
        cmocka_unit_test(test_plugin_load_and_plan),
        cmocka_unit_test(test_plugin_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
