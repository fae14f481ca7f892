/* Run session, the report writers: one JSON object (`mecbed run --json`,
 * what the sweep and scripts read; its keys are an interface) and the
 * human-readable summary. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>

#include "mecbed/platform.h"
#include "mecbed/timescale.h"
#include "mecbed/jsontext.h"
#include "session_priv.h"

double mb_rel_error(double measured, double predicted)
{
    if (!isfinite(measured) || !isfinite(predicted) || !(predicted > 0))
        return NAN;
    return (measured - predicted) / predicted;
}


/* ,"key":number, or null where there is none (NaN, infinity). */
static void jnum(FILE *f, const char *key, double v, const char *fmt)
{
    fprintf(f, ",\"%s\":", key);
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fprintf(f, "null");
}

static const char *emulation(const mb_session *s, int site)
{
    if (s->cfg.emulate == MB_EMULATE_MODEL && !s->real)
        return "model";
    return s->slowdown[site] <= 1.0001 ? "none" : s->cap_cores[site] > 0 ? "cap" : "dilate";
}

/* The ns3 backend's real-time check and its radio energy. */
static void json_realtime(const mb_session *s, FILE *f)
{
    double radio = 0;
    for (int i = 0; i < s->n_rec; i++)
        if (isfinite(s->rec[i].radio_mj))
            radio += s->rec[i].radio_mj;
    fprintf(f, ",\"valid\":%s", s->rt_valid ? "true" : "false");
    jnum(f, "realtime_lag_max_ms", s->rt_lag_max_ms, "%.3f");
    /* ns-3's Wi-Fi radio energy model over the measured frames (from the
     * first release to the end of the last) beside mecbed's radio model
     * (summed over the frames) */
    jnum(f, "ns3_radio_energy_mj", s->ns3_energy_j * 1e3, "%.4f");
    jnum(f, "ns3_radio_simulated_s", isfinite(s->ns3_energy_j) ? s->ns3_sim_s : NAN, "%.3f");
    jnum(f, "radio_model_mj", radio, "%.4f");
}

static void json_sites(const mb_session *s, FILE *f)
{
    fprintf(f, ",\"sites\":[");
    for (int i = 0; i < s->cfg.topo->n_sites; i++) {
        fprintf(f, "%s{\"name\":", i ? "," : "");
        mb_json_print_string(f, s->cfg.topo->sites[i].name);
        fprintf(f, ",\"type\":");
        mb_json_print_string(f, mb_cost_site_type(s->cfg.cost, i)->name);
        fprintf(f, ",\"emulation\":\"%s\"", emulation(s, i));
        /* factor: against the profile (the plan's); emulated_factor:
         * against this machine now (the calibration's); slowdown: as run,
         * emulated_factor x tdf (1: at this machine's speed) */
        fprintf(f, ",\"factor\":%.4f,\"emulated_factor\":%.4f,\"slowdown\":%.4f,\"cpu_cap\":%.4f",
                s->factor[i], s->emu_factor[i], s->slowdown[i], s->cap_cores[i]);
        ss_json_clock(s, i, f);
        fprintf(f, "}");
    }
    fprintf(f, "],\"warnings\":[");
    for (int i = 0; i < s->n_warn; i++) {
        fprintf(f, "%s", i ? "," : "");
        mb_json_print_string(f, s->warn[i]);
    }
    fprintf(f, "]");
}

static void json_frames(const mb_session *s, FILE *f)
{
    fprintf(f, ",\"per_frame\":[");
    for (int i = 0; i < s->n_rec; i++) {
        const ss_frame *fr = &s->rec[i];
        fprintf(f, "%s{\"frame\":%u,\"ok\":%s,\"fell_back\":%s,\"output_match\":%s", i ? "," : "",
                fr->frame, fr->ok ? "true" : "false", fr->fell_back ? "true" : "false",
                fr->output_match ? "true" : "false");
        int done = fr->ok || fr->fell_back;
        /* the frame's start on the links' clock: where a trace= link was then */
        jnum(f, "t_s", s->net_epoch > 0 && fr->t_start > 0 ? ss_emulated(s, fr->t_start - s->net_epoch) : NAN,
             "%.4f");
        jnum(f, "latency_ms", done ? fr->latency_ms : NAN, "%.4f");
        jnum(f, "predicted_ms", fr->predicted_ms, "%.4f");
        jnum(f, "energy_mj", done ? fr->energy_mj : NAN, "%.4f");
        jnum(f, "radio_mj", done ? fr->radio_mj : NAN, "%.4f");
        jnum(f, "busy_ms", done ? fr->busy_ms : NAN, "%.4f");
        jnum(f, "critical_path_ms", fr->critical_ms, "%.4f");
        jnum(f, "max_abs_err", done ? fr->max_abs_err : NAN, "%.9g");
        fprintf(f, ",\"bytes_up\":%lld,\"bytes_down\":%lld,\"plan\":%d", (long long)fr->bytes_up,
                (long long)fr->bytes_down, fr->epoch);
        if (fr->error) {
            fprintf(f, ",\"error\":");
            mb_json_print_string(f, fr->error);
        }
        fprintf(f, "}");
    }
    fprintf(f, "]");
}

void mb_session_write_json(const mb_session *s, FILE *f)
{
    const mb_session_report *r = &s->rep;
    fprintf(f, "{\"model\":");
    mb_json_print_string(f, s->cfg.g->name);
    fprintf(f, ",\"policy\":");
    mb_json_print_string(f, s->plans[0]->policy);
    /* where the (first) plan puts the model: the same columns plan mode has */
    mb_plan_shape sh;
    mb_plan_shape_of(s->plans[0], s->cfg.g, &sh);
    fprintf(f, ",\"plan_shape\":{\"device_ops\":%d,\"server_ops\":%d,\"split_ops\":%d,\"cut_index\":%d,"
               "\"cut_after\":", sh.device_ops, sh.server_ops, sh.split_ops, sh.cut_index);
    mb_json_print_string(f, sh.cut_after);
    fprintf(f, ",\"plan_sig\":\"%016llx\"}", (unsigned long long)sh.signature);
    fprintf(f, ",\"link\":");
    mb_json_print_string(f, s->cfg.link_label);
    fprintf(f, ",\"backend\":");
    mb_json_print_string(f, s->real ? "real" : s->cfg.backend);
    fprintf(f, ",\"run_id\":");
    mb_json_print_string(f, s->cfg.run_id ? s->cfg.run_id : "");
    fprintf(f, ",\"blas_core\":");
    mb_json_print_string(f, mb_platform_blas_core());
    fprintf(f, ",\"profile\":");
    mb_json_print_string(f, s->cfg.profile_source);
    fprintf(f, ",\"frames\":%d,\"warmup\":%d,\"ok_frames\":%d,\"failed_frames\":%d,\"fallback_frames\":%d",
            r->frames, r->warmup, r->ok_frames, r->failed_frames, r->fallback_frames);
    jnum(f, "measured_ms", r->measured_ms, "%.4f");
    jnum(f, "mean_ms", r->mean_ms, "%.4f");
    jnum(f, "p95_ms", r->p95_ms, "%.4f");
    jnum(f, "predicted_ms", r->predicted_ms, "%.4f");
    jnum(f, "rel_err", r->rel_err, "%.4f"); /* mb_rel_error: signed, of the prediction */
    jnum(f, "energy_mj", r->energy_mj, "%.4f");
    jnum(f, "predicted_energy_mj", r->predicted_energy_mj, "%.4f");
    jnum(f, "energy_rel_err", r->energy_rel_err, "%.4f");
    jnum(f, "critical_path_ms", r->critical_path_ms, "%.4f");
    jnum(f, "overhead_ratio", isfinite(r->critical_path_ms) && r->critical_path_ms > 0
                                  ? r->measured_ms / r->critical_path_ms : NAN, "%.4f");
    fprintf(f, ",\"output_match\":%s", r->all_match ? "true" : "false");
    jnum(f, "max_abs_err", r->max_abs_err, "%.9g");
    fprintf(f, ",\"fps\":%.3f,\"throughput_fps\":%.3f,\"deadline_misses\":%d,\"deadline_misses_own\":%d", r->fps,
            r->throughput_fps, r->deadline_misses, r->deadline_misses_own);
    fprintf(f, ",\"replans\":%d", r->replans);
    jnum(f, "tdf", r->tdf, "%.4f");
    fprintf(f, ",\"calibration\":");
    char cal[2048];
    if (s->cal && mb_calibration_json(s->cal, cal, sizeof cal) < (int)sizeof cal)
        fputs(cal, f);
    else
        fputs("null", f);
    jnum(f, "calibration_cpu_share", s->cpu_share, "%.4f");
    int a_side, dl = ss_device_link(s->cfg.topo, s->cfg.device, &a_side);
    /* the device link's rate when its spec had none (ns-3 Wi-Fi, LTE) */
    jnum(f, "probed_rate_mbps", dl >= 0 ? s->probed_bps[dl] / 1e6 : NAN, "%.3f");
    jnum(f, "host_scale", s->host_scale, "%.4f");
    if (s->rt_have)
        json_realtime(s, f);
    /* A busy machine slows every site: say how busy it was. */
    double la = NAN;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &la) != 1)
            la = NAN;
        fclose(lf);
    }
    jnum(f, "loadavg", la, "%.2f");
    fprintf(f, ",\"bytes_up\":%lld,\"bytes_down\":%lld", (long long)r->bytes_up, (long long)r->bytes_down);
    ss_json_links(s, f);
    json_sites(s, f);
    json_frames(s, f);
    fprintf(f, ",\"replan_us\":[");
    for (int i = 1; i < s->n_plans; i++)
        fprintf(f, "%s%.1f", i > 1 ? "," : "", s->replan_us[i]);
    fprintf(f, "]}\n");
}

void mb_session_write_text(const mb_session *s, FILE *f)
{
    const mb_session_report *r = &s->rep;
    const mb_topology *t = s->cfg.topo;
    fprintf(f, "model %s, policy %s, %s %s, backend %s\n", s->cfg.g->name, s->plans[0]->policy,
            s->cfg.label_is_link ? "link" : "topology", s->cfg.link_label, s->cfg.backend);
    for (int i = 0; i < t->n_sites; i++)
        fprintf(f, "  site %-8s %-11s x%.3f of the profile, emulated x%.3f%s\n", t->sites[i].name,
                mb_cost_site_type(s->cfg.cost, i)->name, s->factor[i], s->slowdown[i],
                s->cfg.emulate == MB_EMULATE_MODEL ? " (modelled op times)"
                : s->slowdown[i] <= 1.0001         ? ""
                : s->cap_cores[i] > 0              ? " (CPU capped)"
                                                   : " (time-dilated)");
    for (int i = 0; i < t->n_sites; i++)
        if (s->clock_known[i] && isfinite(s->clock_rtt[i]))
            fprintf(f, "  clock %-7s %+.3f ms to the runner's, error at most %.3f ms (HELLO round trip %.3f ms)\n",
                    t->sites[i].name, s->clock_off[i] * 1e3, s->clock_bound[i] * 1e3, s->clock_rtt[i] * 1e3);
    if (s->cal)
        fprintf(f, "calibration     this machine now x%.3f of the profile's op times in CPU time (wall: %.3f vs "
                   "%.3f ms, on a core %.0f %% of it; sgemm %.0f GFLOP/s, %s); time dilation factor %.2f\n",
                s->host_scale, s->cal->total_ms_now, s->cal->ref_total_ms, s->cpu_share * 100,
                s->cal->gflops_now, s->cal->blas_core, s->k);
    else
        fprintf(f, "calibration     none (%s); time dilation factor %.2f\n",
                s->real ? "real servers" : "no emulation: every site at this machine's speed", s->k);
    int a_side, dl = ss_device_link(t, s->cfg.device, &a_side);
    if (dl >= 0 && isfinite(s->probed_bps[dl]))
        fprintf(f, "link rate       probed %.2f Mbit/s through the simulated link (its spec has none); planned with it\n",
                s->probed_bps[dl] / 1e6);
    fprintf(f, "frames          %d ok, %d failed, %d completed locally\n", r->ok_frames,
            r->failed_frames, r->fallback_frames);
    /* times are emulated time (wall / tdf); the error is mb_rel_error's */
    fprintf(f, "latency         measured %.3f ms (median; mean %.3f, p95 %.3f), predicted %.3f ms, error %+.1f%%\n",
            r->measured_ms, r->mean_ms, r->p95_ms, r->predicted_ms, r->rel_err * 100);
    fprintf(f, "critical path   %.3f ms from this run's op and transfer times (runtime overhead x%.3f)\n",
            r->critical_path_ms, r->critical_path_ms > 0 ? r->measured_ms / r->critical_path_ms : NAN);
    fprintf(f, "device energy   measured %.3f mJ, predicted %.3f mJ, error %+.1f%%\n", r->energy_mj,
            r->predicted_energy_mj, r->energy_rel_err * 100);
    if (s->n_rec > 0) /* the last frame's bytes over the device's link */
        fprintf(f, "device traffic  %lld bytes up, %lld down per frame (last frame)\n",
                (long long)r->last_bytes_up, (long long)r->last_bytes_down);
    ss_text_links(s, f);
    fprintf(f, "output          %s (max abs error %.3g vs the unsplit model)\n",
            r->all_match ? "matches" : "DIFFERS", r->max_abs_err);
    if (r->fps > 0) {
        fprintf(f, "stream          %.2f fps offered, %.2f achieved, %d deadline misses", r->fps, r->throughput_fps,
                r->deadline_misses);
        if (r->deadline_misses > r->deadline_misses_own)
            fprintf(f, " (%d late on their own, %d queued behind late frames)", r->deadline_misses_own,
                    r->deadline_misses - r->deadline_misses_own);
        fputc('\n', f);
    }
    if (s->n_plans > 1)
        fprintf(f, "re-plans        %d\n", s->n_plans - 1);
    /* what made the run deviate from the configuration it predicts */
    for (int i = 0; i < s->n_warn; i++)
        fprintf(f, "warning         %s\n", s->warn[i]);
    for (int i = 0; i < s->n_rec; i++)
        if (s->rec[i].error)
            fprintf(f, "frame %u: %s%s\n", s->rec[i].frame, s->rec[i].error,
                    s->rec[i].fell_back ? " (completed locally)" : "");
}
