/* Link spec grammar: units, prefixes, loss models, strictness, round trip;
 * backend keys kept for the link backends and judged by their registry
 * (netem), and refused as unknown when no backend check is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mecbed/link.h"
#include "mecbed/linkspec.h"
#include "mecbed/timescale.h"

static mb_link_spec parse_ok(const char *text)
{
    mb_link_spec s;
    char err[256] = "";
    int rc = mb_linkspec_parse(text, &s, err, sizeof err);
    if (rc)
        fail_msg("'%s' should parse: %s", text, err);
    return s;
}

static void parse_bad(const char *text, const char *needle)
{
    mb_link_spec s;
    char err[256] = "";
    if (mb_linkspec_parse(text, &s, err, sizeof err) == 0)
        fail_msg("'%s' should be refused", text);
    if (!strstr(err, needle))
        fail_msg("'%s': error '%s' does not mention '%s'", text, err, needle);
}

static void test_rates(void **state)
{
    (void)state;
    assert_true(parse_ok("rate=20mbit").up.rate_bps == 20e6);
    assert_true(parse_ok("rate=20m").down.rate_bps == 20e6);
    assert_true(parse_ok("rate=5.85Mbit").up.rate_bps == 5.85e6);
    assert_true(parse_ok("rate=130kbit").up.rate_bps == 130e3);
    assert_true(parse_ok("rate=1g").up.rate_bps == 1e9);
    assert_true(parse_ok("rate=1gbit/s").up.rate_bps == 1e9);
    assert_true(parse_ok("rate=9600").up.rate_bps == 9600);
    assert_true(parse_ok("rate=9600bit").up.rate_bps == 9600);
    assert_true(parse_ok("rate=2mbitps").up.rate_bps == 2e6);
    parse_bad("rate=10mbps", "ambiguous");
    parse_bad("rate=10MB/s", "ambiguous");
    parse_bad("rate=0", "> 0");
    parse_bad("rate=-5mbit", "> 0");
    parse_bad("rate=fast", "not a number");
    parse_bad("rate=10furlongs", "unknown rate unit");
    parse_bad("rate=nan", "not a number");
    parse_bad("rate=inf", "not a number");
    parse_bad("rate=", "not a number");
}

static void test_times_and_rtt(void **state)
{
    (void)state;
    mb_link_spec s = parse_ok("delay=10ms");
    assert_true(s.up.delay_s == 10e-3 && s.down.delay_s == 10e-3);
    assert_true(fabs(mb_linkspec_rtt(&s) - 0.020) < 1e-15);
    s = parse_ok("rtt=40ms");
    assert_true(s.up.delay_s == 0.02 && s.down.delay_s == 0.02);
    assert_true(parse_ok("delay=250us").up.delay_s == 250e-6);
    assert_true(parse_ok("delay=0.1s").up.delay_s == 0.1);
    s = parse_ok("up.delay=5ms,down.delay=15ms");
    assert_true(s.up.delay_s == 5e-3 && s.down.delay_s == 15e-3);
    assert_true(fabs(mb_linkspec_rtt(&s) - 0.020) < 1e-15);
    parse_bad("delay=10", "needs a unit");
    parse_bad("delay=-1ms", ">= 0");
    parse_bad("delay=10min", "unknown time unit");
    parse_bad("rtt=40ms,delay=10ms", "either rtt or delay");
    parse_bad("rtt=40ms,up.delay=10ms", "either rtt or delay");
    parse_bad("up.rtt=40ms", "whole link");
    parse_bad("delay=2h", "unknown time unit");
}

static void test_prefixes_override(void **state)
{
    (void)state;
    /* the prefixed key wins whatever the order */
    mb_link_spec s = parse_ok("up.rate=5.85mbit,rate=20mbit");
    assert_true(s.up.rate_bps == 5.85e6 && s.down.rate_bps == 20e6);
    s = parse_ok("rate=20mbit,down.rate=100mbit,rtt=40ms");
    assert_true(s.up.rate_bps == 20e6 && s.down.rate_bps == 100e6);
    parse_bad("rate=1mbit,rate=2mbit", "given twice");
    parse_bad("up.rate=1mbit,up.rate=2mbit", "given twice");
    parse_bad("sideways.rate=1mbit", "unknown key");
    parse_bad("bandwidth=10mbit", "unknown key 'bandwidth'");
    parse_bad("rate=10mbit,", "trailing comma");
    parse_bad("rate=10mbit,,delay=1ms", "empty item");
    parse_bad("rate", "rate needs a rate"); /* netem's words, missing their value */
    parse_bad("bandwidth", "not key=value");
    parse_bad("=5", "not key=value");
}

static void test_jitter_loss_queue(void **state)
{
    (void)state;
    mb_link_spec s = parse_ok("jitter=2ms:normal");
    assert_true(s.up.jitter_s == 2e-3 && s.up.jitter_dist == MB_JITTER_NORMAL);
    assert_int_equal(parse_ok("jitter=1ms").up.jitter_dist, MB_JITTER_UNIFORM);
    assert_int_equal(parse_ok("jitter=1ms:pareto").down.jitter_dist, MB_JITTER_PARETO);
    parse_bad("jitter=1ms:gaussian", "unknown distribution");

    s = parse_ok("loss=0.5%");
    assert_int_equal(s.up.loss_model, MB_LOSS_BERNOULLI);
    assert_true(fabs(s.up.loss - 0.005) < 1e-15);
    assert_true(parse_ok("loss=0.01").down.loss == 0.01);
    assert_int_equal(parse_ok("loss=0").up.loss_model, MB_LOSS_NONE);
    parse_bad("loss=5", "within 0..1");
    parse_bad("loss=120%", "0..100");
    parse_bad("loss=-1%", "0..100");
    s = parse_ok("loss=ge:1%:30%");
    assert_int_equal(s.up.loss_model, MB_LOSS_GILBERT_ELLIOTT);
    assert_true(fabs(s.up.ge_p - 0.01) < 1e-15 && fabs(s.up.ge_r - 0.3) < 1e-15);
    assert_true(s.up.ge_loss_bad == 1 && s.up.ge_loss_good == 0);
    s = parse_ok("up.loss=ge:0.02:0.5:0.8:0.001");
    assert_true(s.up.ge_loss_bad == 0.8 && s.up.ge_loss_good == 0.001);
    assert_int_equal(s.down.loss_model, MB_LOSS_NONE);
    parse_bad("loss=ge:1%", "at least p:r");
    parse_bad("loss=ge:1%:0", "never");
    parse_bad("loss=ge:1%:2%:3%:4%:5%", "at most 4");

    s = parse_ok("queue=100p");
    assert_true(s.up.queue_packets == 100 && s.up.queue_bytes == 0);
    s = parse_ok("queue=64kb");
    assert_true(s.up.queue_bytes == 65536 && s.up.queue_packets == 0);
    assert_true(parse_ok("queue=3000b").down.queue_bytes == 3000);
    parse_bad("queue=0p", "at least one");
    parse_bad("queue=10", "unknown queue unit");
    parse_bad("queue=1.5p", "whole number");
    parse_bad("queue=10b", "smaller than 64");
    assert_true(parse_ok("queue=100p,aqm=5ms").up.aqm_target_s == 5e-3);
    parse_bad("aqm=0ms", "> 0");
}

static void test_trace_mtu_ns3(void **state)
{
    (void)state;
    mb_link_spec s = parse_ok("trace=traces/lte.trace");
    assert_string_equal(s.up.trace, "traces/lte.trace");
    assert_int_equal(s.up.trace_loop, 1);
    s = parse_ok("up.trace=a.up:once,down.trace=a.down:loop");
    assert_string_equal(s.up.trace, "a.up");
    assert_int_equal(s.up.trace_loop, 0);
    assert_string_equal(s.down.trace, "a.down");
    assert_int_equal(s.down.trace_loop, 1);
    parse_bad("trace=:once", "empty trace");

    assert_int_equal(parse_ok("mtu=1400").mtu, 1400);
    parse_bad("mtu=20", "576..65535");
    parse_bad("mtu=1500.5", "whole number");
    parse_bad("up.mtu=1400", "whole link");

    /* backend keys are kept verbatim, in order, for the backend */
    s = parse_ok("ns3=wifi,distance=20m,standard=80211a,rate=20mbit");
    assert_string_equal(s.extra, "ns3=wifi,distance=20m,standard=80211a");
    char v[32];
    assert_string_equal(mb_linkspec_extra_get(&s, "ns3", v, sizeof v), "wifi");
    assert_string_equal(mb_linkspec_extra_get(&s, "standard", v, sizeof v), "80211a");
    assert_null(mb_linkspec_extra_get(&s, "speed", v, sizeof v));
    assert_true(s.up.rate_bps == 20e6);
    /* ns3= may come last */
    s = parse_ok("distance=5m,ns3=lte");
    assert_string_equal(s.extra, "distance=5m,ns3=lte");
    /* the ns3 backend's own validation, named keys */
    parse_bad("distance=20m", "unknown key 'distance' without ns3=");
    parse_bad("ns3=satellite", "unknown ns-3 link model");
    parse_bad("ns3=p2p,distance=5m", "ns3=p2p: unknown parameter 'distance'");
    parse_bad("ns3=lte,standard=80211a", "ns3=lte: unknown parameter 'standard'");
    parse_bad("ns3=wifi,ns3=lte", "ns3 given twice");
    parse_bad("up.ns3=wifi", "unknown key 'up.ns3'");
    /* keys no backend declares */
    parse_bad("ns3=wifi,colour=blue", "unknown key 'colour'");
    /* malformed known keys are still errors under ns3= */
    parse_bad("ns3=lte,rate=fast", "not a number");
}

static void assert_same_dir(const mb_link_dir *a, const mb_link_dir *b)
{
    assert_true(a->rate_bps == b->rate_bps);
    assert_true(a->delay_s == b->delay_s);
    assert_true(a->jitter_s == b->jitter_s);
    assert_int_equal(a->jitter_dist, b->jitter_dist);
    assert_int_equal(a->loss_model, b->loss_model);
    assert_true(a->loss == b->loss);
    assert_true(a->ge_p == b->ge_p && a->ge_r == b->ge_r);
    assert_true(a->ge_loss_good == b->ge_loss_good && a->ge_loss_bad == b->ge_loss_bad);
    assert_int_equal(a->queue_packets, b->queue_packets);
    assert_int_equal(a->queue_bytes, b->queue_bytes);
    assert_true(a->aqm_target_s == b->aqm_target_s);
    assert_string_equal(a->trace, b->trace);
    assert_int_equal(a->trace_loop, b->trace_loop);
    assert_true(a->duplicate == b->duplicate && a->corrupt == b->corrupt);
    assert_true(a->reorder == b->reorder);
    assert_int_equal(a->reorder_gap, b->reorder_gap);
}

/* tc-netem's words mean the same link as the key=value form; what netem can
 * say but mecbed does not emulate is refused by name. */
static void test_netem_words(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"delay 20ms 5ms distribution normal loss 1% rate 10mbit limit 100",
         "delay=20ms,jitter=5ms:normal,loss=1%,rate=10mbit,queue=100p"},
        {"delay 10ms", "delay=10ms"},
        {"  delay 10ms 2ms", "delay=10ms,jitter=2ms:uniform"},
        {"loss random 0.5%", "loss=0.5%"},
        {"loss gemodel 1% 30% 90% 0.1%", "loss=ge:1%:30%:90%:0.1%"},
        {"loss gemodel 2%", "loss=ge:2%:0.98"},
        {"rate 10mbit duplicate 1% corrupt 0.1%", "rate=10mbit,duplicate=1%,corrupt=0.1%"},
        {"delay 10ms reorder 25%", "delay=10ms,reorder=25%"},
        {"delay 10ms reorder 100% gap 5", "delay=10ms,reorder=100%:5"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_true(mb_linkspec_is_netem(pairs[i][0]));
        assert_false(mb_linkspec_is_netem(pairs[i][1]));
        mb_link_spec a = parse_ok(pairs[i][0]), b = parse_ok(pairs[i][1]);
        assert_same_dir(&a.up, &b.up);
        assert_same_dir(&a.down, &b.down);
    }
    mb_link_spec d = parse_ok("duplicate 2% corrupt 0.5%");
    assert_true(fabs(d.up.duplicate - 0.02) < 1e-12 && fabs(d.down.corrupt - 0.005) < 1e-12);
    parse_bad("delay 10ms 2ms 25%", "delay correlation");
    parse_bad("loss 1% 25%", "loss correlation");
    mb_link_spec r = parse_ok("delay 10ms reorder 25% gap 3");
    assert_true(fabs(r.up.reorder - 0.25) < 1e-12 && r.down.reorder_gap == 3);
    parse_bad("delay 10ms reorder 25% 50%", "reorder correlation");
    parse_bad("reorder 25%", "reorder needs a delay");
    parse_bad("delay 10ms reorder", "reorder needs a probability");
    parse_bad("delay 10ms reorder 25% gap", "gap needs a packet count");
    parse_bad("delay 10ms gap 5", "gap belongs after reorder");
    parse_bad("up.delay=10ms,reorder=5%", "down.reorder needs a delay");
    parse_bad("delay=10ms,reorder=150%", "within 0..100%");
    parse_bad("delay=10ms,reorder=10%:0", "whole number of packets");
    parse_bad("delay=10ms,reorder=10%:x", "whole number of packets");
    parse_bad("loss state 1%", "4-state");
    parse_bad("slot 800us", "slot is not emulated");
    parse_bad("delay 10ms distribution paretonormal", "not emulated");
    parse_bad("delay 10ms distribution normal", "needs a jitter");
    parse_bad("delay", "delay needs a time");
    parse_bad("rate 10mbit 20", "overheads");
    parse_bad("limit lots", "packet count");
    parse_bad("delay 10ms bogus", "'bogus' is not a netem keyword");
    parse_bad("delay 10ms loss 200%", "netem words read as");
    parse_bad("duplicate=2", "fraction must be within 0..1");
    parse_bad("corrupt=-1%", "corrupt");
}

static void test_format_round_trip(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "rate=20mbit,delay=10ms,loss=0.5%",
        "rate=20mbit,delay=10ms,jitter=2ms:normal,loss=0.5%,queue=100p,mtu=1500",
        "up.rate=5.85mbit,down.rate=20mbit,rtt=40ms",
        "trace=traces/x.trace:once,delay=333us",
        "up.loss=ge:1%:30%:90%:0.1%,down.loss=0.1,queue=64kb,aqm=5ms",
        "rate=1.1mbit,up.delay=7ms,jitter=1.5ms:pareto",
        "rate=123456789,delay=0.123456789s",
        "ns3=wifi,distance=20m,rate=54mbit",
        "rate=0.13mbit,rtt=100ms,up.queue=10p",
        "rate=10mbit,duplicate=1%,up.corrupt=0.001",
        "rtt=20ms,reorder=25%",
        "delay=5ms,up.reorder=0.5:7",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        mb_link_spec a = parse_ok(specs[i]), b;
        char text[2048], err[256];
        assert_true(mb_linkspec_format(&a, text, sizeof text) > 0);
        if (mb_linkspec_parse(text, &b, err, sizeof err))
            fail_msg("format of '%s' gave '%s' which does not parse: %s", specs[i], text, err);
        assert_same_dir(&a.up, &b.up);
        assert_same_dir(&a.down, &b.down);
        assert_int_equal(a.mtu, b.mtu);
        assert_string_equal(a.extra, b.extra);
    }
    mb_link_spec s = parse_ok("rate=20mbit,rtt=40ms");
    char text[256];
    mb_linkspec_format(&s, text, sizeof text);
    assert_string_equal(text, "rate=20mbit,delay=20ms");
    char tiny[8];
    assert_int_equal(mb_linkspec_format(&s, tiny, sizeof tiny), -1);
}

/* timescale=K: a dilated spec written as text and read back keeps its
 * trace stretch (and its dilated rates and delays); nonsense is refused. */
static void test_timescale_key(void **state)
{
    (void)state;
    mb_link_spec a = parse_ok("trace=traces/x.trace:loop,rate=20mbit,delay=10ms"), d, b;
    char text[1024], err[256];
    assert_int_equal(mb_linkspec_dilate(&a, 2.43, &d, err, sizeof err), 0);
    assert_true(mb_linkspec_format(&d, text, sizeof text) > 0);
    assert_non_null(strstr(text, "timescale=2.43"));
    if (mb_linkspec_parse(text, &b, err, sizeof err))
        fail_msg("'%s' does not parse: %s", text, err);
    assert_float_equal(b.up.time_scale, 2.43, 0);
    assert_float_equal(b.down.time_scale, 2.43, 0);
    assert_float_equal(b.up.rate_bps, 20e6 / 2.43, 1e-6);
    assert_float_equal(b.down.delay_s, 0.010 * 2.43, 1e-12);
    /* undilated: no key written */
    assert_true(mb_linkspec_format(&a, text, sizeof text) > 0);
    assert_null(strstr(text, "timescale"));
    b = parse_ok("up.timescale=3,trace=t:once");
    assert_float_equal(b.up.time_scale, 3, 0);
    assert_float_equal(b.down.time_scale, 0, 0);
    assert_int_equal(mb_linkspec_parse("timescale=0.5", &b, err, sizeof err), -1);
    assert_non_null(strstr(err, "timescale"));
    assert_int_equal(mb_linkspec_parse("timescale=2x", &b, err, sizeof err), -1);
}

/* Property test (a small, bounded fuzzer): specs assembled at random from
 * plausible and implausible pieces never crash the parser; whatever it
 * accepts formats to a canonical text that parses again to the same text. */
static void test_random_specs(void **state)
{
    (void)state;
    static const char *const keys[] = {"rate", "up.rate", "down.rate", "delay", "up.delay", "rtt", "jitter",
                                       "loss", "down.loss", "queue", "aqm", "trace", "mtu", "ns3", "up.mtu",
                                       "bogus", "", "up.", "distance"};
    static const char *const vals[] = {"10mbit", "5.85m", "0", "-1", "1e3k", "20ms", "250us", "1s", "2ms:normal",
                                       "1ms:pareto", "0.5%", "0.01", "ge:1%:30%", "ge:5%:0", "100p", "64kb", "3000b",
                                       "x.trace:once", "1500", "p2p", "wifi", "", "nan", "1e400", "12furlongs",
                                       "ge:", ":loop", "99999999999999999999"};
    uint64_t x = 12345;
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char text[512] = "";
        size_t used = 0;
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int n = 1 + (int)((x >> 33) % 5);
        for (int i = 0; i < n; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *k = keys[(x >> 33) % (sizeof keys / sizeof keys[0])];
            const char *v = vals[(x >> 17) % (sizeof vals / sizeof vals[0])];
            int sep = (int)((x >> 50) % 8); /* mostly "=" and ",", sometimes broken */
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s%s%s", i ? (sep == 7 ? ",," : ",") : "",
                                     k, sep == 6 ? "" : "=", v);
        }
        mb_link_spec a, b;
        char err[256], f1[2048], f2[2048];
        if (mb_linkspec_parse(text, &a, err, sizeof err))
            continue;
        accepted++;
        assert_true(mb_linkspec_format(&a, f1, sizeof f1) >= 0);
        if (mb_linkspec_parse(f1, &b, err, sizeof err))
            fail_msg("'%s' -> '%s' does not parse: %s", text, f1, err);
        assert_true(mb_linkspec_format(&b, f2, sizeof f2) >= 0);
        if (strcmp(f1, f2))
            fail_msg("'%s': format is not stable: '%s' then '%s'", text, f1, f2);
    }
    printf("random specs: %d of 20000 accepted, all round-trip\n", accepted);
    assert_true(accepted > 100);
}

/* The registry is the only list: every backend has a name and summary, the
 * default comes first, and each declared key is accepted by the parser. */
static void test_backend_registry(void **state)
{
    (void)state;
    int n = mb_net_backend_count();
    assert_true(n >= 1);
    assert_string_equal(mb_net_backend_name(0), "emu");
    const char *const *names = mb_net_backends();
    for (int i = 0; i < n; i++) {
        assert_non_null(mb_net_backend_name(i));
        assert_string_equal(names[i], mb_net_backend_name(i));
        assert_non_null(mb_net_backend_summary(i));
    }
    assert_null(names[n]);
    assert_null(mb_net_backend_name(n));
    char list[128];
    mb_net_backend_list(list, sizeof list, ", ");
    assert_non_null(strstr(list, "emu, "));
    mb_link_spec s = parse_ok("rate=1mbit");
    char err[512];
    assert_int_equal(mb_net_check("carrier-pigeon", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, list)); /* the message lists the registry */
    /* another backend's key: the error names the key and the backend */
    s = parse_ok("ns3=wifi,rate=1mbit");
    assert_int_equal(mb_net_check("emu", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "ns3=wifi"));
    assert_non_null(strstr(err, "--backend ns3"));
}

/* Core's parser alone (no backend check installed) knows only its grammar. */
static void test_no_backend_check(void **state)
{
    (void)state;
    mb_linkspec_set_extra_check(NULL);
    parse_bad("ns3=wifi", "unknown key 'ns3'");
    parse_bad("rate=1mbit,distance=20m", "unknown key 'distance'");
    parse_ok("rate=1mbit,delay=2ms");
    mb_linkspec_set_extra_check(mb_net_check_spec_keys);
    parse_ok("ns3=wifi,distance=20m");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates),
        cmocka_unit_test(test_times_and_rtt),
        cmocka_unit_test(test_prefixes_override),
        cmocka_unit_test(test_jitter_loss_queue),
        cmocka_unit_test(test_trace_mtu_ns3),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_netem_words),
        cmocka_unit_test(test_timescale_key),
        cmocka_unit_test(test_random_specs),
        cmocka_unit_test(test_backend_registry),
        cmocka_unit_test(test_no_backend_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
