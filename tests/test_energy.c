/* Energy: Huang et al.'s radio power while transferring, the RRC tail and
 * promotion, repeated frames, and the device/system energy of evaluated
 * plans (compute x busy + idle x waiting + radio). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "mecbed/energy.h"
#include "mecbed/plan.h"
#include "policy_fixture.h"

static void test_constants(void **state)
{
    (void)state;
    const mb_radio_model *lte = mb_radio_get(MB_RADIO_LTE);
    assert_non_null(lte);
    assert_float_equal(lte->a_up_mw_per_mbps, 438.39, 1e-9);
    assert_float_equal(lte->a_down_mw_per_mbps, 51.97, 1e-9);
    assert_float_equal(lte->beta_mw, 1288.04, 1e-9);
    assert_non_null(mb_radio_get(MB_RADIO_WIFI));
    assert_non_null(mb_radio_get(MB_RADIO_3G));
    assert_null(mb_radio_get(MB_RADIO_NONE));
    assert_int_equal(mb_radio_from_name("lte"), MB_RADIO_LTE);
    assert_int_equal(mb_radio_from_name("5g"), -1);
}

static void test_single_burst(void **state)
{
    (void)state;
    const mb_radio_model *m = mb_radio_get(MB_RADIO_LTE);
    mb_radio_burst b = {0.1, 0.3, 10, 0};
    mb_radio_energy e;
    /* one frame of 0.5 s, radio connected: connected without data for 0.1 s,
     * active 0.2 s, then tail to the frame's end */
    mb_radio_frame_energy(m, &b, 1, 0.5, 0, &e);
    double active = (438.39 * 10 + 1288.04) * 0.2;
    assert_float_equal(e.active_mj, active, 1e-9);
    assert_float_equal(e.tail_mj, 1060 * (0.1 + 0.2), 1e-9);
    assert_float_equal(e.promo_mj, 0, 0);
    assert_float_equal(e.total_mj, active + 318, 1e-9);
    /* overlapping up and down bursts: powers add in Huang's linear model */
    mb_radio_burst two[2] = {{0, 1, 4, 0}, {0.5, 1, 0, 20}};
    mb_radio_frame_energy(m, two, 2, 1, 0, &e);
    assert_float_equal(e.active_mj,
                       (438.39 * 4 + 1288.04) * 0.5 + (438.39 * 4 + 51.97 * 20 + 1288.04) * 0.5,
                       1e-9);
}

static void test_tail_and_promotion(void **state)
{
    (void)state;
    const mb_radio_model *m = mb_radio_get(MB_RADIO_LTE);
    mb_radio_burst b = {0, 0.1, 5, 0};
    mb_radio_energy e;
    /* frames every 1 s: the radio never idles (tail 11.6 s): 0.9 s of tail, no promotion */
    mb_radio_frame_energy(m, &b, 1, 0.2, 1.0, &e);
    assert_float_equal(e.tail_mj, 1060 * 0.9, 1e-9);
    assert_float_equal(e.promo_s, 0, 0);
    /* frames every 60 s: a full tail, idle for the rest, a promotion per frame */
    mb_radio_frame_energy(m, &b, 1, 0.2, 60, &e);
    assert_float_equal(e.tail_mj, 1060 * m->tail_s + 1e3 * m->idle_w * (59.9 - m->tail_s), 1e-6);
    assert_float_equal(e.promo_mj, 1e3 * m->promo_w * m->promo_s, 1e-9);
    assert_float_equal(e.promo_s, m->promo_s, 1e-12);
    /* 3G has a second tail stage (FACH) */
    const mb_radio_model *g3 = mb_radio_get(MB_RADIO_3G);
    mb_radio_frame_energy(g3, &b, 1, 0.2, 60, &e);
    assert_float_equal(e.tail_mj,
                       1e3 * (g3->tail_w * g3->tail_s + g3->tail2_w * g3->tail2_s +
                              g3->idle_w * (59.9 - g3->tail_s - g3->tail2_s)),
                       1e-6);
    /* no bursts: no radio energy */
    mb_radio_frame_energy(m, NULL, 0, 1, 1, &e);
    assert_float_equal(e.total_mj, 0, 0);
}

static void test_plan_energy(void **state)
{
    (void)state;
    mb_graph *g = pf_random_dag(12);
    for (int i = 0; i < g->n_nodes; i++) { /* whole-tensor ops only */
        g->nodes[i].out_ndim = 2;
        g->nodes[i].out_dims[0] = 1;
        g->nodes[i].out_dims[1] = g->nodes[i].out_bytes / 4;
        g->nodes[i].out_bytes = 4 * g->nodes[i].out_dims[1];
    }
    mb_profile *prof = pf_profile(g, 1, 5);
    mb_topology t;
    mb_cost_model *c = pf_cost(g, prof, "rate=20mbit,rtt=10ms", &t, 3.0, 0.2);
    assert_non_null(c);
    char err[256];
    int where[12];
    /* local: device energy = compute_w x latency exactly (never idle, no radio) */
    for (int i = 0; i < 12; i++)
        where[i] = 0;
    mb_plan *p = mb_plan_new("x", g, 0);
    assert_int_equal(mb_plan_assign(p, g, where, err, sizeof(err)), 0);
    assert_int_equal(mb_plan_evaluate(p, c, err, sizeof(err)), 0);
    assert_float_equal(p->pred.energy_mj, 3.0 * p->pred.latency_ms, 1e-9);
    assert_float_equal(p->pred.radio_mj, 0, 0);
    assert_float_equal(p->pred.energy_system_mj, p->pred.energy_mj, 1e-9);
    mb_plan_free(p);
    /* offload: device idle while waiting + LTE radio; the system adds the edge */
    for (int i = 0; i < 12; i++)
        where[i] = 1;
    p = mb_plan_new("x", g, 0);
    assert_int_equal(mb_plan_assign(p, g, where, err, sizeof(err)), 0);
    assert_int_equal(mb_plan_evaluate(p, c, err, sizeof(err)), 0);
    assert_float_equal(p->pred.device_compute_ms, 0, 0);
    assert_true(p->pred.radio_mj > 0);
    assert_float_equal(p->pred.energy_mj, 0.6 * p->pred.latency_ms + p->pred.radio_mj, 1e-9);
    assert_true(p->pred.energy_system_mj > p->pred.energy_mj);
    mb_plan_free(p);
    mb_cost_free(c);
    mb_profile_free(prof);
    mb_graph_free(g);
}

/* Plan energy summed by hand (not from the code under test): the device
 * computes a1 (4 ms) and a2 (6 ms) at 3.0 W, sends both over one LTE uplink
 * (8 Mbit/s shaped: 7.7227 Mbit/s of goodput, 5 ms, 0.25 ms per message),
 * the edge computes c and sends 4000 bytes back. One frame, radio already
 * connected (no promotion). Device: 3.0 W x 10 ms busy + 0.6 W idle for the
 * rest of the latency; radio (Huang et al., LTE): (438.39 mW/Mbit/s x R +
 * 1288.04 mW) while sending, (51.97 x R + 1288.04) while receiving, and the
 * 1060 mW tail in every gap between transfers and after the last one until
 * the result is in (0.25 + 10.75 + 0.25 ms). The edge (150 W busy, 60 W idle)
 * adds to the system energy. */
static void test_plan_energy_by_hand(void **state)
{
    (void)state;
    pf_fork f;
    char err[512];
    if (pf_fork_new(&f, err, sizeof(err)))
        fail_msg("%s", err);
    mb_plan *p = f.p;
    /* in ms: transfers of 103.5912, 51.7956 and 4.1436; latency 174.7804 */
    double R = 8.0 * 1448 / 1500; /* Mbit/s */
    double s1 = 0.8 / R * 1e3, s2 = 0.4 / R * 1e3, s3 = 0.032 / R * 1e3;
    double lat = 10 + (s1 - 6) + 0.25 + s2 + 0.25 + 5 + 0.5 + s3 + 0.25 + 5;
    assert_float_equal(p->pred.latency_ms, lat, 1e-9);
    /* the radio sends and receives whole packets: the link's 8 Mbit/s, of
     * which R is the payload's share */
    double up_mj = (438.39 * 8 + 1288.04) * (s1 + s2) / 1e3;
    double down_mj = (51.97 * 8 + 1288.04) * s3 / 1e3;
    /* connected without data for the rest of the frame: the 4 ms before the
     * first send, the gaps and the end (the result is heard a link delay
     * after it was sent) */
    double tail_mj = 1060 * (lat - (s1 + s2 + s3)) / 1e3;
    assert_float_equal(lat - (s1 + s2 + s3), 4 + 0.25 + (0.25 + 5 + 0.5 + 5) + 0.25, 1e-4);
    double radio = up_mj + down_mj + tail_mj;
    assert_float_equal(radio, 768.3292, 1e-3);
    assert_float_equal(p->pred.radio_mj, radio, 1e-9);
    double device = 3.0 * 10 + 0.6 * (lat - 10) + radio; /* W x ms = mJ */
    assert_float_equal(p->pred.energy_mj, device, 1e-9);
    assert_float_equal(device, 897.1974, 1e-3);
    double edge = 150 * 0.5 + 60 * (lat - 0.5);
    assert_float_equal(p->pred.energy_system_mj, device + edge, 1e-6);
    pf_fork_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constants),
        cmocka_unit_test(test_single_burst),
        cmocka_unit_test(test_tail_and_promotion),
        cmocka_unit_test(test_plan_energy),
        cmocka_unit_test(test_plan_energy_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
