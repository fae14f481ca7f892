/* The run session API (mecbed/session.h) driven directly: a session over
 * an emulated link (namespaces, TUN, `mecbed node` in the edge's
 * namespace) runs a few frames whose outputs match the unsplit model,
 * reports its figures and JSON, re-plans on request, and leaves no
 * namespace behind after a run, after a free without a run, and after a
 * bring-up that failed. Needs root, /dev/net/tun and the built mecbed
 * binary (the nodes); skipped (77) otherwise. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/model.h"
#include "mecbed/netns.h"
#include "mecbed/nodetype.h"
#include "mecbed/policy_host.h"
#include "mecbed/profile.h"
#include "mecbed/session.h"

static const char net_text[] =
    "mecbed-model 1\nname session_net\nseed 5\n"
    "Input x shape=1,3,48,48\n"
    "Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(8x3x3x3)\n"
    "Relu r1 c1\n"
    "Conv c2 r1 kernel=3,3 pads=1,1,1,1 W=he(16x8x3x3)\n"
    "Relu r2 c2\n"
    "MaxPool p2 r2 kernel=2,2 stride=2,2\n"
    "Conv c3 p2 kernel=1,1 W=he(8x16x1x1)\n"
    "GlobalAveragePool gap c3\n"
    "Flatten fl gap axis=1\n"
    "Gemm fc fl trans_b=1 B=he(10x8) C=const(10,0)\n"
    "output fc\n";

static char model_path[64], mecbed_exe[512];
static mb_graph *g;
static mb_topology topo;
static mb_nodetype_set types;
static mb_profile *prof;
static int device = -1;
static int n_logged, n_frames_seen;

/* A run id of this test process (6 chars): tests of several build dirs may run at once. */
static void run_id(char *out, size_t len, int k)
{
    snprintf(out, len, "s%d%04d", k, (int)(getpid() % 10000));
}

/* Namespaces whose name carries run id: mecbed-<id>-<site>. */
static int namespaces_of(const char *id)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s%s-", MB_NETNS_PREFIX, id);
    DIR *d = opendir("/run/netns");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

static void on_log(void *arg, mb_session_level level, const char *msg)
{
    (void)arg;
    (void)level;
    (void)msg;
    n_logged++;
}

static void on_frame(void *arg, int index, int ok)
{
    (void)arg;
    (void)ok;
    assert_int_equal(index, n_frames_seen);
    n_frames_seen++;
}

/* A fresh cost model per session: a session adjusts it (site scales, rates). */
static mb_cost_model *new_cost(void)
{
    char err[512];
    mb_cost_opts o;
    mb_cost_opts_default(&o);
    mb_cost_model *c = mb_cost_new(g, &topo, prof, &types, &o, err, sizeof err);
    if (!c)
        fail_msg("cost model: %s", err);
    return c;
}

static void config(mb_session_config *cfg, mb_cost_model *cost, const char *policy, const char *id)
{
    mb_session_config_init(cfg);
    cfg->model = model_path;
    cfg->g = g;
    cfg->topo = &topo;
    cfg->cost = cost;
    cfg->device = device;
    cfg->profile_source = "measured now";
    cfg->link_label = "rate=40mbit,rtt=4ms";
    cfg->label_is_link = 1;
    cfg->policy = policy;
    cfg->run_id = id;
    cfg->node_exe = mecbed_exe;
    cfg->emulate = MB_EMULATE_NONE; /* speed is not what this test checks */
    cfg->frames = 3;
    cfg->warmup = 1;
    cfg->timeout_s = 5;
    cfg->log = on_log;
    cfg->on_frame = on_frame;
}

/* net.ipv4.tcp_slow_start_after_idle in the namespace of site `site` of
 * run id: its first character, or '?' when it cannot be read. */
static char ssai_in(const char *id, int site)
{
    char cmd[256], out[8] = "?";
    snprintf(cmd, sizeof cmd, "ip netns exec %s%s-%s cat /proc/sys/net/ipv4/tcp_slow_start_after_idle 2>/dev/null",
             MB_NETNS_PREFIX, id, topo.sites[site].name);
    FILE *f = popen(cmd, "r");
    if (f) {
        if (!fgets(out, sizeof out, f))
            out[0] = '?';
        pclose(f);
    }
    return out[0];
}

static void test_run_frames(void **state)
{
    (void)state;
    char err[1024], id[16];
    run_id(id, sizeof id, 1);
    mb_cost_model *cost = new_cost();
    mb_session_config cfg;
    config(&cfg, cost, "offload", id);
    n_frames_seen = 0;
    mb_session *s = mb_session_new(&cfg, err, sizeof err);
    if (!s)
        fail_msg("mb_session_new: %s", err);
    assert_int_equal(namespaces_of(id), 2); /* device and edge are up */
    /* frames reuse connections idle between them: their windows are kept
     * (the cost model's warm connections) */
    for (int site = 0; site < topo.n_sites; site++)
        assert_int_equal(ssai_in(id, site), '0');
    mb_session_report r;
    assert_int_equal(mb_session_get_report(s, &r), -1); /* nothing run yet */
    assert_int_equal(mb_session_run(s, err, sizeof err), 0);
    assert_int_equal(namespaces_of(id), 0); /* the run tore the links down */
    assert_int_equal(mb_session_get_report(s, &r), 0);
    assert_int_equal(r.ok_frames, 3);
    assert_int_equal(r.failed_frames, 0);
    assert_int_equal(n_frames_seen, 3);
    assert_true(r.all_match);
    assert_true(r.max_abs_err <= 1e-5);
    assert_true(r.measured_ms > 0 && isfinite(r.measured_ms));
    assert_true(r.predicted_ms > 0);
    assert_true(r.energy_mj > 0);
    assert_true(r.last_bytes_up > 0); /* offload: the input crossed the link */
    assert_int_equal(r.replans, 0);
    assert_false(r.interrupted);
    assert_string_equal(r.policy, "offload");
    assert_int_equal(mb_session_run(s, err, sizeof err), -1); /* once only */

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mb_session_write_json(s, f);
    fclose(f);
    static const char head[] = "{\"model\":\"session_net\",\"policy\":\"offload\",";
    assert_true(!strncmp(buf, head, strlen(head)));
    assert_non_null(strstr(buf, "\"ok_frames\":3,"));
    assert_non_null(strstr(buf, "\"output_match\":true"));
    free(buf);
    mb_session_free(s);
    mb_cost_free(cost);
}

static void test_replan(void **state)
{
    (void)state;
    char err[1024], id[16];
    run_id(id, sizeof id, 2);
    mb_cost_model *cost = new_cost();
    mb_session_config cfg;
    config(&cfg, cost, "mincut", id);
    cfg.frames = 2;
    n_frames_seen = 0;
    mb_session *s = mb_session_new(&cfg, err, sizeof err);
    if (!s)
        fail_msg("mb_session_new: %s", err);
    assert_int_equal(mb_session_replan(s, 0, err, sizeof err), -1);
    assert_int_equal(mb_session_replan(s, 2e6, err, sizeof err), 0);
    assert_int_equal(mb_session_run(s, err, sizeof err), 0);
    mb_session_report r;
    assert_int_equal(mb_session_get_report(s, &r), 0);
    assert_int_equal(r.replans, 1);
    assert_int_equal(r.ok_frames, 2);
    assert_true(r.all_match);
    mb_session_free(s);
    assert_int_equal(namespaces_of(id), 0);
    mb_cost_free(cost);
}

/* Brought up, never run: free tears it all down. */
static void test_free_without_run(void **state)
{
    (void)state;
    char err[1024], id[16];
    run_id(id, sizeof id, 3);
    mb_cost_model *cost = new_cost();
    mb_session_config cfg;
    config(&cfg, cost, "local", id);
    mb_session *s = mb_session_new(&cfg, err, sizeof err);
    if (!s)
        fail_msg("mb_session_new: %s", err);
    assert_int_equal(namespaces_of(id), 2);
    mb_session_free(s);
    assert_int_equal(namespaces_of(id), 0);
    mb_cost_free(cost);
}

/* Nodes that exit at once: the bring-up fails, nothing is left behind;
 * an unknown policy fails before anything is up. */
static void test_failed_bring_up(void **state)
{
    (void)state;
    char err[1024], id[16];
    run_id(id, sizeof id, 4);
    mb_cost_model *cost = new_cost();
    mb_session_config cfg;
    config(&cfg, cost, "offload", id);
    cfg.node_exe = "/bin/false";
    cfg.timeout_s = 1;
    assert_null(mb_session_new(&cfg, err, sizeof err));
    assert_true(err[0] != 0);
    assert_int_equal(namespaces_of(id), 0);
    config(&cfg, cost, "no-such-policy", id);
    assert_null(mb_session_new(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "no-such-policy"));
    mb_cost_free(cost);
}

static int setup(void **state)
{
    (void)state;
    char err[512];
    snprintf(model_path, sizeof model_path, "/tmp/mb-session-%d.model", (int)getpid());
    FILE *f = fopen(model_path, "w");
    if (!f)
        return -1;
    fputs(net_text, f);
    fclose(f);
    g = mb_model_load(model_path, err, sizeof err);
    if (!g || mb_topology_from_link("rate=40mbit,rtt=4ms", &topo, err, sizeof err) ||
        mb_nodetypes_load_default(&types, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    for (int i = 0; i < topo.n_sites && device < 0; i++)
        if (topo.sites[i].role == MB_ROLE_DEVICE)
            device = i;
    prof = mb_profile_measure(g, "cpu", 1, 3, err, sizeof err);
    if (!prof || device < 0) {
        fprintf(stderr, "profile: %s\n", err);
        return -1;
    }
    mb_policy_register_builtins();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(model_path);
    mb_profile_free(prof);
    mb_graph_free(g);
    return 0;
}

int main(void)
{
    const char *build = getenv("BUILD");
    snprintf(mecbed_exe, sizeof mecbed_exe, "%s/mecbed", build && *build ? build : "build");
    char why[256];
    if (geteuid() != 0) {
        printf("skip: the session needs root (namespaces, TUN)\n");
        return 77;
    }
    if (access("/dev/net/tun", R_OK | W_OK) || mb_netns_available(why, sizeof why)) {
        printf("skip: no emulated links here (/dev/net/tun, namespaces)\n");
        return 77;
    }
    if (access(mecbed_exe, X_OK)) {
        printf("skip: %s not built (the nodes run it)\n", mecbed_exe);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_frames),
        cmocka_unit_test(test_replan),
        cmocka_unit_test(test_free_without_run),
        cmocka_unit_test(test_failed_bring_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
