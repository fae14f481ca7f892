/* Run session, re-planning: an EWMA of the goodput the device's uplink
 * transfers achieved; when it moves more than 25 % from the rate the plan
 * assumed (adaptive), the policy re-plans with the measured rate and every
 * node gets the new plan between frames. */
#define _GNU_SOURCE
#include <stdio.h>

#include "mecbed/platform.h"
#include "session_priv.h"

void ss_replan_init(mb_session *s)
{
    const mb_topology *t = s->cfg.topo;
    int dev = s->cfg.device, a_side;
    mb_goodput_init(&s->gp, 0.3, 0.7, 16 * 1024);
    int dl = ss_device_link(t, dev, &a_side);
    s->plan_bps = dl >= 0 ? mb_cost_rate_bps(s->cfg.cost, dev, a_side ? t->links[dl].b : t->links[dl].a) : 0;
}

/* Feed the goodput estimator with the device's uplink transfers of a frame. */
static void feed_goodput(mb_session *s, uint32_t frame)
{
    const mb_topology *t = s->cfg.topo;
    int a_side;
    int l = ss_device_link(t, s->cfg.device, &a_side);
    if (l < 0)
        return;
    const mb_link_dir *d = a_side ? &t->links[l].spec.up : &t->links[l].spec.down;
    for (int i = 0; i < s->tl.n; i++) {
        const mb_event *e = &s->tl.ev[i];
        if (e->frame != frame || e->kind != MB_EV_SEND || e->site != s->cfg.device)
            continue;
        for (int k = 0; k < s->tl.n; k++) {
            const mb_event *r = &s->tl.ev[k];
            if (r->frame == frame && r->kind == MB_EV_RECV && r->step == e->step) {
                /* the transfer's wall time back to emulated time: the
                 * estimate is then the emulated link's goodput, the rate the
                 * plan assumed (d is the undilated spec) */
                mb_goodput_add(&s->gp, e->bytes, ss_emulated(s, r->t1 - e->t0), d->delay_s);
                break;
            }
        }
    }
}

/* Re-plan at uplink_bps and send the plan; the timeline gets a REPLAN
 * event before frame next_frame. */
static int replan_at(mb_session *s, double uplink_bps, uint32_t next_frame, char *err, size_t errlen)
{
    const mb_topology *t = s->cfg.topo;
    int a_side;
    int l = ss_device_link(t, s->cfg.device, &a_side);
    if (l < 0) {
        snprintf(err, errlen, "the device has no link");
        return -1;
    }
    if (s->n_plans >= SESSION_MAX_PLANS) {
        snprintf(err, errlen, "at most %d plans per session", SESSION_MAX_PLANS);
        return -1;
    }
    double up = uplink_bps;
    double down = mb_cost_rate_bps(s->cfg.cost, a_side ? t->links[l].b : t->links[l].a, s->cfg.device);
    if (a_side)
        mb_cost_set_rate(s->cfg.cost, l, up, down);
    else
        mb_cost_set_rate(s->cfg.cost, l, down, up);
    char why[512];
    double t0 = mb_now();
    mb_plan *np = mb_policy_session_plan(s->policy, s->cur, why, sizeof why);
    double t1 = mb_now();
    if (!np) {
        snprintf(err, errlen, "re-plan at %.2f Mbit/s failed: %s", uplink_bps / 1e6, why);
        return -1;
    }
    if (mb_runner_plan(s->runner, np, why, sizeof why)) {
        snprintf(err, errlen, "sending the new plan failed: %s", why);
        mb_plan_free(np);
        return -1;
    }
    mb_event e = {.frame = next_frame, .step = -1, .kind = MB_EV_REPLAN, .site = s->cfg.device,
                  .peer = -1, .op = -1, .t0 = t0, .t1 = t1, .bytes = 0};
    mb_timeline_add(&s->tl, &e);
    s->replan_us[s->n_plans] = (t1 - t0) * 1e6;
    s->plans[s->n_plans++] = np;
    s->cur = np;
    s->plan_bps = uplink_bps;
    return 0;
}

int mb_session_replan(mb_session *s, double uplink_bps, char *err, size_t errlen)
{
    if (!s->runner || mb_runner_in_flight(s->runner)) {
        snprintf(err, errlen, "re-planning needs a session that is up, between frames");
        return -1;
    }
    if (!(uplink_bps > 0)) {
        snprintf(err, errlen, "re-planning needs an uplink rate > 0");
        return -1;
    }
    uint32_t next = s->n_rec ? s->rec[s->n_rec - 1].frame + 1 : 0;
    return replan_at(s, uplink_bps, next, err, errlen);
}

/* After a completed frame (adaptive): feed the estimator; when nothing is
 * in flight (idle) and the goodput moved, re-plan. */
void ss_replan_after_frame(mb_session *s, uint32_t frame, int idle, uint32_t next_frame)
{
    feed_goodput(s, frame);
    if (!idle || s->n_plans >= SESSION_MAX_PLANS || !mb_goodput_changed(&s->gp, s->plan_bps, 0.25))
        return;
    int a_side;
    if (ss_device_link(s->cfg.topo, s->cfg.device, &a_side) < 0)
        return;
    double est = mb_goodput_bps(&s->gp);
    char err[1024];
    if (replan_at(s, est, next_frame, err, sizeof err)) {
        ss_warn(s, "%s", err);
        return;
    }
    ss_info(s, "goodput %.2f Mbit/s: re-planned in %.0f us (predicted %.1f ms)", est / 1e6,
            s->replan_us[s->n_plans - 1], s->cur->pred.latency_ms);
}
