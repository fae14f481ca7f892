/* The plugin ABI: registration rules (missing plan, duplicate name, foreign
 * ABI version, short struct, bad name), built-ins registered through the
 * same call, and the example plugin loaded with dlopen by path and by name
 * (built by mk/policies.mk into $BUILD/plugins/), planning a real model
 * through the host table only. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#include <cmocka.h>

#include "mecbed/model.h"
#include "mecbed/platform.h"
#include "mecbed/policy.h"
#include "policy_fixture.h"

static int dummy_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    int *where = calloc((size_t)in->g->n_nodes + 1, sizeof(int));
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
    mb_policy_ops ok = {MB_POLICY_ABI_VERSION, sizeof(mb_policy_ops), "dummy", "test", NULL, NULL,
                        dummy_plan, NULL};
    mb_policy_ops no_plan = ok, bad_abi = ok, old_abi = ok, short_struct = ok, bad_name = ok,
                  no_name = ok;
    no_plan.name = "noplan";
    no_plan.plan = NULL;
    expect_reject(&no_plan, "'plan' is missing");
    bad_abi.abi_version = 99;
    expect_reject(&bad_abi, "ABI version 99");
    old_abi.abi_version = 0;
    expect_reject(&old_abi, "ABI version 0");
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
    const char *names[] = {"local", "offload", "layerwise", "mincut", "cic", "tile", "oplevel", "dds"};
    for (int i = 0; i < 8; i++) {
        if (!mb_policy_find(names[i]))
            fprintf(stderr, "built-in policy %s is not registered\n", names[i]);
        assert_non_null(mb_policy_find(names[i]));
    }
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
    /* loading it again: the duplicate name is refused */
    assert_int_equal(mb_policy_load(path, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already registered"));
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
    snprintf(path, sizeof(path), "%s/abi99.so", dir);
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
        cmocka_unit_test(test_plugin_load_and_plan),
        cmocka_unit_test(test_plugin_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
