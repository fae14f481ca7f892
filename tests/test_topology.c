/* Topology files: nodes, links, per-direction specs, "file:line:" errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mecbed/topology.h"

static char path[64];

static void write_file(const char *text)
{
    snprintf(path, sizeof path, "/tmp/mb-topo-test-%d.ini", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void read_bad(const char *text, const char *needle)
{
    static mb_topology t;
    char err[512] = "";
    write_file(text);
    int rc = mb_topology_read(path, &t, err, sizeof err);
    unlink(path);
    if (rc == 0)
        fail_msg("topology should be refused:\n%s", text);
    if (!strstr(err, needle) || strncmp(err, path, strlen(path)))
        fail_msg("error '%s' should start with the file name and mention '%s'", err, needle);
}

static void test_three_tier(void **state)
{
    (void)state;
    static mb_topology t;
    char err[512];
    write_file("; device, two edges, a cloud\n"
               "[node device]\nrole = device\ntype = phone\n\n"
               "[node edge0]\nrole=edge\ntype=edge-cpu\n"
               "[node edge1]\nrole=edge\naddress=192.168.1.7:7000\n"
               "[node cloud]\nrole=cloud\n"
               "[link device edge0]\nspec=rate=20mbit,rtt=40ms\nup=rate=5.85mbit\n"
               "[link device edge1]\nspec=rate=10mbit,delay=5ms\n"
               "[link edge0 cloud]\nup=rate=100mbit,delay=10ms\ndown=rate=200mbit,delay=10ms\n");
    int rc = mb_topology_read(path, &t, err, sizeof err);
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(t.n_sites, 4);
    assert_int_equal(t.n_links, 3);
    int dev = mb_topology_find(&t, "device"), e0 = mb_topology_find(&t, "edge0");
    int e1 = mb_topology_find(&t, "edge1"), cl = mb_topology_find(&t, "cloud");
    assert_true(dev >= 0 && e0 >= 0 && e1 >= 0 && cl >= 0);
    assert_int_equal(mb_topology_find(&t, "nope"), -1);
    assert_int_equal(t.sites[dev].role, MB_ROLE_DEVICE);
    assert_string_equal(t.sites[dev].node_type, "phone");
    assert_int_equal(t.sites[cl].role, MB_ROLE_CLOUD);
    assert_string_equal(t.sites[e1].address, "192.168.1.7:7000");
    int l = mb_topology_link_between(&t, e0, dev);
    assert_true(l >= 0);
    assert_int_equal(t.links[l].a, dev);
    assert_true(t.links[l].spec.up.rate_bps == 5.85e6);
    assert_true(t.links[l].spec.down.rate_bps == 20e6);
    assert_true(t.links[l].spec.up.delay_s == 0.02);
    l = mb_topology_link_between(&t, cl, e0);
    assert_true(t.links[l].spec.up.rate_bps == 100e6 && t.links[l].spec.down.rate_bps == 200e6);
    assert_int_equal(mb_topology_link_between(&t, e1, cl), -1);
}

static void test_from_link(void **state)
{
    (void)state;
    static mb_topology t;
    char err[256];
    assert_int_equal(mb_topology_from_link("rate=10mbit,rtt=20ms", &t, err, sizeof err), 0);
    assert_int_equal(t.n_sites, 2);
    assert_string_equal(t.sites[0].name, "device");
    assert_string_equal(t.sites[1].name, "edge0");
    assert_int_equal(t.sites[1].role, MB_ROLE_EDGE);
    assert_int_equal(mb_topology_link_between(&t, 0, 1), 0);
    assert_true(t.links[0].spec.up.rate_bps == 10e6);
    assert_int_equal(mb_topology_from_link("rate=fast", &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "rate=fast"));
}

static void test_errors(void **state)
{
    (void)state;
    static mb_topology t;
    char err[256];
    assert_int_equal(mb_topology_read("/nonexistent/topo.ini", &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/topo.ini: "));

    read_bad("[node device]\nrole=phone\n", ":2: role=phone");
    read_bad("[node device]\nrole=device\ncolour=red\n", ":3: unknown node key 'colour'");
    read_bad("[node device]\nrole=device\n[node device]\nrole=edge\n", ":3: node 'device' defined twice");
    read_bad("[node 1bad]\nrole=device\n", ":1: node name '1bad'");
    read_bad("[node device]\nrole=device\n[node edge0]\nrole=edge\n[link device edge0]\nspec=rate=10mbps\n",
             ":6: spec: rate=10mbps");
    read_bad("[node device]\nrole=device\n[node edge0]\nrole=edge\n[link device edge0]\nspec=rate=1mbit\n"
             "up=up.rate=2mbit\n",
             ":7: up: 'up.rate=2mbit'");
    read_bad("[node device]\nrole=device\n[link device ghost]\nspec=rate=1mbit\n", ":3: [link device ghost]: no node named 'ghost'");
    read_bad("[node device]\nrole=device\n[node e]\nrole=edge\n[link device e]\n", ":5: [link device e] has no spec");
    read_bad("[node device]\nrole=device\n[node e]\nrole=edge\n[link device e]\nspec=rate=1mbit\n[link e device]\nspec=rate=1mbit\n",
             ":7: link e-device defined twice");
    read_bad("[node device]\n[node e]\nrole=edge\n", ":1: node 'device' has no role");
    read_bad("[router x]\n", ":1: unknown section [router x]");
    read_bad("rate=1\n[node device]\nrole=device\n", ":1: 'rate' outside");
    read_bad("[node e]\nrole=edge\n", "no node has role=device");
    read_bad("[node device]\nrole=device\nthis line is not ini\n", ":3: not an INI line");
    read_bad("[node device]\nrole=device\n[node e]\nrole=edge\n[link device e]\nspec=rtt=10ms\nup=delay=5ms\n",
             ":7: [link device e]: link spec: give either rtt or delay");
    read_bad("[node device]\nrole=device\naddress=nohost\n", ":3: address=nohost");
    char longline[400];
    memset(longline, 'x', sizeof longline);
    strcpy(longline, "[node device]\nrole=device\ntype=");
    memset(longline + strlen(longline), 'y', 300);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = 0;
    read_bad(longline, ":3: line longer than");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_tier),
        cmocka_unit_test(test_from_link),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
