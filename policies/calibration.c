/* Calibration (profile.h): how fast this machine runs a model's kernels
 * now, against the profile that predictions use. Dilation and prediction
 * both derive from one record, so they cannot disagree by the host's drift
 * (load, clock frequency, BLAS core) since the profile was measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "mecbed/exec.h"
#include "mecbed/platform.h"
#include "mecbed/profile.h"

static void free_inputs(const mb_graph *g, mb_tensor **in)
{
    if (!in)
        return;
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].type == MB_OP_INPUT)
            mb_tensor_free(in[k++]);
    free(in);
}

static double unix_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

/* Time every op of g: one mb_exec_run of `repeats` passes (its per-op
 * medians). The executor plans its buffers once per call, so the passes
 * see what a frame sees; the first pass is cold and the median outvotes it. */
static int measure_ops(const mb_graph *g, const char *backend, int threads, int repeats, double *ms,
                       char *err, size_t errlen)
{
    mb_backend *be = mb_backend_new(backend, threads, err, errlen);
    if (!be)
        return -1;
    mb_tensor **in = mb_exec_make_inputs(g, 1);
    mb_op_time *times = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof(*times));
    mb_tensor **outs = NULL;
    int rc = -1;
    if (!in) {
        mb_exec_memory_error(g, "inputs", err, errlen);
    } else if (!times) {
        snprintf(err, errlen, "calibration: out of memory");
    } else {
        mb_exec_opts o = {.times = times, .repeats = repeats};
        rc = mb_exec_run(g, be, in, &outs, &o, NULL, err, errlen);
    }
    if (!rc) {
        for (int i = 0; i < g->n_nodes; i++)
            ms[i] = times[i].ms;
        for (int k = 0; k < g->n_outputs; k++)
            mb_tensor_free(outs[k]);
    }
    free(outs);
    free(times);
    free_inputs(g, in);
    mb_backend_free(be);
    return rc;
}

mb_calibration *mb_calibrate(const mb_graph *g, const mb_profile *ref, const char *backend, int threads,
                             int repeats, char *err, size_t errlen)
{
    if (!g || g->n_nodes < 1) {
        snprintf(err, errlen, "calibration: no model");
        return NULL;
    }
    if (ref && ref->n_ops != g->n_nodes) {
        snprintf(err, errlen, "calibration: the reference profile has %d ops, model '%s' %d", ref->n_ops,
                 g->name, g->n_nodes);
        return NULL;
    }
    mb_calibration *c = calloc(1, sizeof *c);
    if (!c || !(c->ms_now = calloc((size_t)g->n_nodes, sizeof(double)))) {
        free(c);
        snprintf(err, errlen, "calibration: out of memory");
        return NULL;
    }
    double t0 = mb_now();
    c->when = unix_now();
    c->threads = threads > 0 ? threads : 1;
    c->repeats = repeats < 3 ? 3 : repeats;
    c->n_ops = g->n_nodes;
    snprintf(c->model, sizeof c->model, "%s", g->name);
    snprintf(c->backend, sizeof c->backend, "%s", backend ? backend : "cpu");
    if (measure_ops(g, c->backend, c->threads, c->repeats, c->ms_now, err, errlen)) {
        mb_calibration_free(c);
        return NULL;
    }
    for (int i = 0; i < g->n_nodes; i++)
        c->total_ms_now += c->ms_now[i];
    c->gflops_now = mb_profile_sgemm_gflops(c->threads);
    snprintf(c->blas_core, sizeof c->blas_core, "%s", mb_platform_blas_core());
    mb_platform_cpu_model(c->cpu, sizeof c->cpu);
    c->host_scale = 1.0;
    if (ref) {
        c->ref_total_ms = mb_profile_total_ms(ref);
        c->ref_gflops = ref->ref_gflops;
        if (c->ref_total_ms > 0 && c->total_ms_now > 0)
            c->host_scale = c->total_ms_now / c->ref_total_ms;
    }
    c->took_s = mb_now() - t0;
    return c;
}

void mb_calibration_free(mb_calibration *c)
{
    if (!c)
        return;
    free(c->ms_now);
    free(c);
}

double mb_calibration_site_factor(const mb_calibration *c, const mb_nodetype *t)
{
    if (!c || !t)
        return NAN;
    if (c->ref_total_ms > 0) {
        /* The node type against the profiled machine (as the cost model
         * scales the profile), then the profiled machine against this one
         * now. */
        double f = t->speed > 0 ? t->speed : t->gflops > 0 && c->ref_gflops > 0 ? c->ref_gflops / t->gflops : NAN;
        return f / c->host_scale;
    }
    if (t->speed > 0)
        return t->speed;
    return t->gflops > 0 && c->gflops_now > 0 ? c->gflops_now / t->gflops : NAN;
}

int mb_calibration_format(const mb_calibration *c, char *buf, size_t len)
{
    return snprintf(buf, len,
                    "calib_model=%s calib_blas_core=%s calib_backend=%s calib_threads=%d calib_repeats=%d "
                    "calib_gflops_now=%.2f calib_total_ms_now=%.4f calib_ref_total_ms=%.4f "
                    "calib_ref_gflops=%.2f calib_host_scale=%.4f calib_when=%.3f calib_took_s=%.3f "
                    "calib_cpu=\"%s\"",
                    c->model, c->blas_core, c->backend, c->threads, c->repeats, c->gflops_now, c->total_ms_now,
                    c->ref_total_ms, c->ref_gflops, c->host_scale, c->when, c->took_s, c->cpu);
}

int mb_calibration_json(const mb_calibration *c, char *buf, size_t len)
{
    /* The CPU model string comes from /proc/cpuinfo: drop anything JSON
     * would need escaped rather than carry an escaper for one field. */
    char cpu[sizeof c->cpu];
    size_t k = 0;
    for (size_t i = 0; c->cpu[i] && k + 1 < sizeof cpu; i++)
        if (c->cpu[i] != '"' && c->cpu[i] != '\\' && (unsigned char)c->cpu[i] >= 0x20)
            cpu[k++] = c->cpu[i];
    cpu[k] = 0;
    return snprintf(buf, len,
                    "{\"model\": \"%s\", \"cpu\": \"%s\", \"blas_core\": \"%s\", \"backend\": \"%s\", "
                    "\"threads\": %d, \"repeats\": %d, \"gflops_now\": %.2f, \"total_ms_now\": %.4f, "
                    "\"ref_total_ms\": %.4f, \"ref_gflops\": %.2f, \"host_scale\": %.4f, \"when\": %.3f, "
                    "\"took_s\": %.3f}",
                    c->model, cpu, c->blas_core, c->backend, c->threads, c->repeats, c->gflops_now,
                    c->total_ms_now, c->ref_total_ms, c->ref_gflops, c->host_scale, c->when, c->took_s);
}
