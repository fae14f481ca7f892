/* Generation policies beside the layer-range pipeline (include/mecbed/
 * genplan.h, docs/generation.md "Policies"): device energy per token,
 * P/D-Device (prefill on the server, the KV cache to the device, decode on
 * the device) and speculative decoding (a draft on the device, the target
 * on the server). Galaxy's tensor parallelism is gen_galaxy.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mecbed/energy.h"
#include "mecbed/genplan.h"

/* Milliseconds a message of bytes is on the air at the route's bottleneck rate. */
static double air_ms(const mb_cost_model *c, int from, int to, int64_t bytes)
{
    double bps = mb_cost_rate_bps(c, from, to);
    return bytes > 0 && bps > 0 && isfinite(bps) ? (double)bytes * 8.0 / bps * 1e3 : 0;
}

void mb_gen_step_energy(const mb_cost_model *c, int device, int server, const mb_gen_step_pred *s,
                        double interval_ms, mb_gen_energy *out)
{
    memset(out, 0, sizeof *out);
    const mb_nodetype *nt = mb_cost_site_type(c, device);
    double busy = s->device_ms < s->ms ? s->device_ms : s->ms;
    out->compute_mj = nt->compute_w * busy;
    out->idle_mj = nt->idle_w * (s->ms - busy);
    int kind = mb_radio_from_name(nt->radio);
    const mb_radio_model *rm = kind > 0 ? mb_radio_get((mb_radio_kind)kind) : NULL;
    if (rm && (s->up_bytes || s->down_bytes)) {
        mb_radio_burst b[2];
        int n = 0;
        double up = air_ms(c, device, server, s->up_bytes), down = air_ms(c, server, device, s->down_bytes);
        if (s->up_bytes && up > 0)
            b[n++] = (mb_radio_burst){busy / 1e3, (busy + up) / 1e3, (double)s->up_bytes * 8 / (up * 1e3), 0};
        if (s->down_bytes && down > 0) {
            double t0 = s->ms - down > busy + up ? s->ms - down : busy + up;
            b[n++] = (mb_radio_burst){t0 / 1e3, (t0 + down) / 1e3, 0, (double)s->down_bytes * 8 / (down * 1e3)};
        }
        mb_radio_energy re;
        double frame = s->ms;
        for (int i = 0; i < n; i++)
            frame = b[i].t1 * 1e3 > frame ? b[i].t1 * 1e3 : frame;
        double every = interval_ms > 0 ? (interval_ms > frame ? interval_ms : frame) : 0;
        mb_radio_frame_energy(rm, b, n, frame / 1e3, every / 1e3, &re);
        out->radio_mj = re.total_mj;
    }
    out->total_mj = out->compute_mj + out->idle_mj + out->radio_mj;
}

void mb_gen_pred_energy(mb_gen_policy_pred *p, const mb_cost_model *c_ttft, const mb_gen_step_pred *ttft,
                        const mb_cost_model *c_step, const mb_gen_step_pred *step, double tokens_per_step,
                        int device, int server, int n_gen)
{
    mb_gen_energy e1, e2;
    mb_gen_step_energy(c_ttft, device, server, ttft, 0, &e1);
    mb_gen_step_energy(c_step, device, server, step, step->ms, &e2);
    double per = tokens_per_step > 0 ? tokens_per_step : 1;
    p->ttft_energy_mj = e1.total_mj;
    p->energy_per_token_mj = e2.total_mj / per;
    p->radio_per_token_mj = e2.radio_mj / per;
    p->energy_total_mj = e1.total_mj + (n_gen > 1 ? (n_gen - 1) * p->energy_per_token_mj : 0);
}

/* Every op of g on one site. */
static double all_ms(const mb_graph *g, const mb_cost_model *c, int site)
{
    double ms = 0;
    for (int v = 0; v < g->n_nodes; v++)
        if (g->nodes[v].type != MB_OP_INPUT && g->nodes[v].type != MB_OP_CONSTANT)
            ms += mb_cost_op_ms(c, site, v);
    return ms;
}

static int64_t input_bytes(const mb_graph *g, const char *name)
{
    int i = mb_graph_find(g, name);
    return i >= 0 ? g->nodes[i].out_bytes : 0;
}

static int routed(double x, char *err, size_t errlen)
{
    if (isfinite(x))
        return 0;
    snprintf(err, errlen, "no route between the device and the server");
    return -1;
}

int mb_gen_pd_predict(const mb_graph *prefill, const mb_cost_model *c_prefill, const mb_graph *decode,
                      const mb_cost_model *c_decode, int64_t kv_bytes, int device, int server, int n_gen,
                      mb_gen_policy_pred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->policy, sizeof out->policy, "pd-device");
    mb_gen_step_pred t = {0}, d = {0};
    /* the prompt (ids and positions) up; the first token and the cache down */
    t.up_bytes = input_bytes(prefill, "input_ids") + input_bytes(prefill, "position_ids");
    t.down_bytes = prefill->nodes[prefill->outputs[0]].out_bytes + kv_bytes;
    t.compute_ms = all_ms(prefill, c_prefill, server);
    t.up_ms = mb_cost_xfer_ms(c_prefill, device, server, t.up_bytes);
    t.down_ms = mb_cost_xfer_ms(c_prefill, server, device, t.down_bytes);
    if (routed(t.up_ms + t.down_ms, err, errlen))
        return -1;
    t.ms = t.up_ms + t.compute_ms + t.down_ms;
    d.compute_ms = d.device_ms = all_ms(decode, c_decode, device);
    d.ms = d.compute_ms;
    out->ttft_ms = t.ms;
    out->tpot_ms = d.ms;
    out->total_ms = t.ms + (n_gen > 1 ? (n_gen - 1) * d.ms : 0);
    out->tokens_per_s = d.ms > 0 ? 1000.0 / d.ms : 0;
    out->kv_transfer_bytes = (double)kv_bytes;
    snprintf(out->detail, sizeof out->detail, "prefill on the server, %.2f MB of KV cache to the device",
             kv_bytes / 1e6);
    mb_gen_pred_energy(out, c_prefill, &t, c_decode, &d, 1, device, server, n_gen);
    return 0;
}

double mb_gen_spec_tokens_per_round(double a, int k)
{
    if (k < 0)
        return 1;
    if (a >= 1)
        return k + 1;
    if (a <= 0)
        return 1;
    return (1 - pow(a, k + 1)) / (1 - a);
}

int mb_gen_spec_predict(const mb_graph *draft_prefill, const mb_cost_model *c_draft_prefill,
                        const mb_graph *draft_decode, const mb_cost_model *c_draft,
                        const mb_graph *target_prefill, const mb_cost_model *c_target_prefill,
                        const mb_graph *verify, const mb_cost_model *c_verify, int device, int server, int k,
                        double a, int n_gen, mb_gen_policy_pred *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->policy, sizeof out->policy, "speculative");
    if (k < 1 || !(a >= 0 && a <= 1)) {
        snprintf(err, errlen, "speculative decoding needs k >= 1 draft tokens and an acceptance rate in [0, 1]");
        return -1;
    }
    /* TTFT: the target's prefill on the server; the draft's prefill runs on
     * the device meanwhile */
    mb_gen_step_pred t = {0}, r = {0};
    t.up_bytes = input_bytes(target_prefill, "input_ids") + input_bytes(target_prefill, "position_ids");
    t.down_bytes = target_prefill->nodes[target_prefill->outputs[0]].out_bytes;
    t.up_ms = mb_cost_xfer_ms(c_target_prefill, device, server, t.up_bytes);
    t.down_ms = mb_cost_xfer_ms(c_target_prefill, server, device, t.down_bytes);
    if (routed(t.up_ms + t.down_ms, err, errlen))
        return -1;
    double remote = t.up_ms + all_ms(target_prefill, c_target_prefill, server) + t.down_ms;
    t.device_ms = all_ms(draft_prefill, c_draft_prefill, device);
    t.compute_ms = all_ms(target_prefill, c_target_prefill, server) + t.device_ms;
    t.ms = remote > t.device_ms ? remote : t.device_ms;
    /* a round: k draft steps, the k+1 positions up, the target's step, its k+1 tokens down */
    r.device_ms = k * all_ms(draft_decode, c_draft, device);
    r.up_bytes = input_bytes(verify, "input_ids") + input_bytes(verify, "position_ids");
    r.down_bytes = (int64_t)(k + 1) * draft_decode->nodes[draft_decode->outputs[0]].out_bytes;
    r.up_ms = mb_cost_xfer_ms(c_verify, device, server, r.up_bytes);
    r.down_ms = mb_cost_xfer_ms(c_verify, server, device, r.down_bytes);
    if (routed(r.up_ms + r.down_ms, err, errlen))
        return -1;
    r.compute_ms = r.device_ms + all_ms(verify, c_verify, server);
    r.ms = r.compute_ms + r.up_ms + r.down_ms;
    double e = mb_gen_spec_tokens_per_round(a, k);
    out->tokens_per_round = e;
    out->ttft_ms = t.ms;
    out->tpot_ms = r.ms / e;
    out->total_ms = t.ms + (n_gen > 1 ? (n_gen - 1) * out->tpot_ms : 0);
    out->tokens_per_s = out->tpot_ms > 0 ? 1000.0 / out->tpot_ms : 0;
    out->up_bytes_per_token = r.up_bytes / e;
    out->down_bytes_per_token = r.down_bytes / e;
    snprintf(out->detail, sizeof out->detail, "k=%d a=%.2f: %.3f tokens per round of %.2f ms", k, a, e, r.ms);
    mb_gen_pred_energy(out, c_target_prefill, &t, c_verify, &r, e, device, server, n_gen);
    return 0;
}
