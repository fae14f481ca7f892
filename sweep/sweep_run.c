/* mecbed sweep, run mode: one point is a run session in a forked child of
 * the sweep, started through `run`'s own entry with `run ... --json`
 * arguments (no exec: the child is this process, binary and libraries
 * already loaded). The child process is kept on purpose, for isolation:
 *  - a session sets process-wide state: the time-dilation factor, the
 *    device threads' hook, the calling thread's network namespace, CPU
 *    cgroup membership of its threads, and signal handlers for Ctrl-C;
 *  - a point that crashes or hangs must cost one row, not the sweep: after
 *    `timeout` the child gets SIGTERM (the session tears down), 20 s later
 *    SIGKILL;
 *  - each point's messages go to its own log (the child's stderr).
 * The session tears down every namespace it makes itself. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/linkspec.h"
#include "mecbed/platform.h"
#include "mecbed/trace.h"
#include "mecbed/sweep.h"

#define MAX_ARGS 96

typedef struct argv_b {
    char *v[MAX_ARGS + 1];
    int n;
} argv_b;

static void push(argv_b *a, const char *s)
{
    if (a->n < MAX_ARGS)
        a->v[a->n++] = strdup(s);
}

static void pushf(argv_b *a, const char *fmt, double v)
{
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    push(a, b);
}

static void push_words(argv_b *a, const char *s)
{
    char *d = strdup(s), *save = NULL;
    for (char *t = strtok_r(d, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
        push(a, t);
    free(d);
}

static void argv_free(argv_b *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void build_argv(const sw_config *c, const sw_point *p, const char *extra_types, argv_b *a)
{
    push(a, "run");
    push(a, "--model");
    push(a, p->model);
    char pname[64];
    const char *opts = strchr(p->policy, ':');
    snprintf(pname, sizeof pname, "%.*s", (int)(opts ? opts - p->policy : (long)strlen(p->policy)),
             p->policy);
    push(a, "--policy");
    push(a, pname);
    if (opts && opts[1]) {
        push(a, "--policy-opt");
        push(a, opts + 1);
    }
    push(a, p->link[0] ? "--link" : "--topology");
    push(a, p->link[0] ? p->link : p->topology);
    if (p->star_devices > 1) { /* every device of the star, sharing its edge */
        push(a, "--devices");
        pushf(a, "%.0f", (double)p->star_devices);
    }
    if (strcmp(p->node_types, "-")) {
        static const char *const role_opt[] = {"--device-type", "--edge-type", "--cloud-type"};
        char buf[128], *save = NULL;
        snprintf(buf, sizeof buf, "%s", p->node_types);
        int role = 0;
        for (char *t = strtok_r(buf, "/", &save); t && role < 3; t = strtok_r(NULL, "/", &save), role++)
            if (strcmp(t, "-")) {
                push(a, role_opt[role]);
                push(a, t);
            }
    }
    if (extra_types) {
        push(a, "--node-types");
        push(a, extra_types);
    }
    push(a, "--frames");
    pushf(a, "%.0f", (double)c->frames);
    push(a, "--warmup");
    pushf(a, "%.0f", (double)c->warmup);
    if (c->fps > 0) {
        push(a, "--fps");
        pushf(a, "%g", c->fps);
    }
    push(a, "--link-backend");
    push(a, c->backend);
    pushf(a, "--seed=%.0f", (double)(p->rep + 1));
    push(a, "--json");
    push_words(a, c->run_args);
    if (p->variant)
        push_words(a, p->variant->args);
    a->v[a->n] = NULL;
}

/* Fork the point's child: it runs run_main(argv) with stdout into pfd[1]
 * and stderr into logfd. Returns the pid, or -1 with err. */
static pid_t spawn_point(sw_run_main run_main, argv_b *a, int pfd[2], int logfd, char *err, size_t errlen)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* own process group: a Ctrl-C reaches the sweep, which forwards it */
        setpgid(0, 0);
        dup2(pfd[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        /* the sweep's handlers are not the point's: until run installs its
         * own, a Ctrl-C ends the child (nothing is up yet) */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        int prc = run_main(a->n, a->v);
        fflush(NULL);
        _exit(prc);
    }
    return pid;
}

/* Read the child's stdout until it closes, forwarding Ctrl-C and enforcing
 * the point's (wall-clock) timeout: SIGTERM, then SIGKILL 20 s later.
 * Returns the output (NULL when out of memory); *timed_out says whether the
 * timeout fired. */
static char *collect_output(const sw_config *c, pid_t pid, int fd, volatile int *stop, int *timed_out_out)
{
    size_t len = 0, cap = 65536;
    char *out = malloc(cap);
    double t0 = mb_now();
    int signalled = 0, killed = 0, timed_out = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 200);
        if (r > 0) {
            if (out && len + 4096 > cap) {
                char *no = realloc(out, cap * 2);
                if (!no) {
                    free(out);
                    out = NULL;
                } else {
                    out = no;
                    cap *= 2;
                }
            }
            char sink[4096];
            ssize_t k = out ? read(fd, out + len, cap - len - 1) : read(fd, sink, sizeof sink);
            if (k > 0 && out)
                len += (size_t)k;
            else if (k == 0)
                break;
            else if (k < 0 && errno != EINTR)
                break;
        }
        double el = mb_now() - t0;
        if (*stop && !signalled) {
            kill(pid, SIGINT); /* `run` tears down and exits 130 */
            signalled = 1;
        }
        if (!timed_out && c->timeout_s > 0 && el > c->timeout_s) {
            kill(pid, SIGTERM);
            timed_out = 1;
            t0 = mb_now() - c->timeout_s; /* 20 s more, then SIGKILL */
        }
        if (timed_out && !killed && el > c->timeout_s + 20) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    if (out)
        out[len] = 0;
    *timed_out_out = timed_out;
    return out;
}

/* Several devices (run --devices): the mean over the devices in the
 * single-device columns; the slowest device, the sharing and the devices'
 * median |error| in metric columns (the experiment lists them in metrics:
 * n_devices queue_ms measured_max_ms median_abs_rel_err server_util_measured). */
static void row_from_multi_json(const cJSON *j, const cJSON *devs, sw_row *row)
{
    int n = cJSON_GetArraySize(devs);
    double q = 0, mx = 0, e = 0, ok = 0, failed = 0, bytes = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, devs) {
        q += jnum(d, "queue_ms") / n;
        mx = fmax(mx, jnum(d, "measured_ms"));
        e += jnum(d, "energy_mj") / n;
        ok += jnum(d, "ok_frames");
        failed += jnum(d, "failed_frames");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "session");
        bytes += s ? jnum(s, "bytes_up") / n : NAN;
    }
    double pred = jnum(j, "mean_predicted_ms"), meas = jnum(j, "mean_measured_ms");
    sw_row_num(row, "latency_ms", pred);
    sw_row_num(row, "measured_ms", meas);
    sw_row_num(row, "m_measured_max_ms", mx);
    sw_row_num(row, "rel_err", isfinite(meas) && pred > 0 ? (meas - pred) / pred : NAN);
    sw_row_num(row, "m_median_abs_rel_err", jnum(j, "median_abs_rel_err"));
    sw_row_num(row, "measured_energy_mj", e);
    sw_row_num(row, "m_queue_ms", q);
    sw_row_num(row, "m_server_util_measured", jnum(j, "server_util"));
    sw_row_num(row, "m_n_devices", n);
    sw_row_num(row, "tdf", jnum(j, "tdf"));
    sw_row_num(row, "loadavg", jnum(j, "loadavg"));
    sw_row_num(row, "bytes_up", bytes);
    sw_row_num(row, "ok_frames", ok);
    sw_row_num(row, "failed_frames", failed);
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(j, "all_match");
    sw_row_set(row, "output_match", "%d", cJSON_IsTrue(om) ? 1 : 0);
}

/* The row's columns from run's JSON. */
static void row_from_json(const cJSON *j, sw_row *row)
{
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    if (cJSON_IsArray(devs)) {
        row_from_multi_json(j, devs, row);
        return;
    }
    /* predictions in the plan-mode columns, measurements beside them */
    sw_row_num(row, "latency_ms", jnum(j, "predicted_ms"));
    sw_row_num(row, "energy_mj", jnum(j, "predicted_energy_mj"));
    sw_row_num(row, "measured_ms", jnum(j, "measured_ms"));
    sw_row_num(row, "measured_mean_ms", jnum(j, "mean_ms"));
    sw_row_num(row, "measured_p95_ms", jnum(j, "p95_ms"));
    sw_row_num(row, "measured_energy_mj", jnum(j, "energy_mj"));
    sw_row_num(row, "critical_path_ms", jnum(j, "critical_path_ms"));
    /* signed (measured - predicted) / predicted: mb_rel_error, as run reports it */
    sw_row_num(row, "rel_err", jnum(j, "rel_err"));
    sw_row_num(row, "energy_rel_err", jnum(j, "energy_rel_err"));
    /* how the point was emulated: its time dilation factor and this
     * machine's speed then (the calibration) */
    sw_row_num(row, "tdf", jnum(j, "tdf"));
    sw_row_num(row, "host_scale", jnum(j, "host_scale"));
    sw_row_num(row, "calib_cpu_share", jnum(j, "calibration_cpu_share"));
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(j, "calibration");
    sw_row_num(row, "calib_gflops_now", cal ? jnum(cal, "gflops_now") : NAN);
    sw_row_num(row, "calib_total_ms_now", cal ? jnum(cal, "total_ms_now") : NAN);
    sw_row_num(row, "bytes_up", jnum(j, "bytes_up"));
    sw_row_num(row, "bytes_down", jnum(j, "bytes_down"));
    sw_row_num(row, "ok_frames", jnum(j, "ok_frames"));
    sw_row_num(row, "failed_frames", jnum(j, "failed_frames"));
    sw_row_num(row, "replans", jnum(j, "replans"));
    sw_row_num(row, "deadline_misses", jnum(j, "deadline_misses"));
    sw_row_num(row, "loadavg", jnum(j, "loadavg"));
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(j, "output_match");
    sw_row_set(row, "output_match", "%d", cJSON_IsTrue(om) ? 1 : 0);
    /* the plan's own metrics and the bytes per link class, as metric
     * columns (those the experiment lists in metrics appear) */
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(j, "metrics"))
    {
        char col[64];
        snprintf(col, sizeof col, "m_%s", m->string);
        sw_row_num(row, col, cJSON_IsNumber(m) ? m->valuedouble : NAN);
    }
    static const char *const link_sums[] = {"edge_cloud_bytes", "edge_cloud_bytes_measured", "edge_edge_bytes",
                                            "edge_edge_bytes_measured"};
    for (int k = 0; k < 4; k++)
        if (cJSON_GetObjectItemCaseSensitive(j, link_sums[k])) {
            char col[64];
            snprintf(col, sizeof col, "m_%s", link_sums[k]);
            sw_row_num(row, col, jnum(j, link_sums[k]));
        }
    const cJSON *prof = cJSON_GetObjectItemCaseSensitive(j, "profile");
    if (cJSON_IsString(prof))
        sw_row_set(row, "profile", "%s", prof->valuestring);
    /* where the plan put the model: the columns plan mode fills (mb_plan_shape_of) */
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "plan_shape");
    static const char *const ints[] = {"device_ops", "server_ops", "split_ops", "cut_index"};
    for (int k = 0; sh && k < 4; k++)
        sw_row_num(row, ints[k], jnum(sh, ints[k]));
    const cJSON *ca = cJSON_GetObjectItemCaseSensitive(sh, "cut_after");
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(sh, "plan_sig");
    if (cJSON_IsString(ca))
        sw_row_set(row, "cut_after", "%s", ca->valuestring);
    if (cJSON_IsString(sig))
        sw_row_set(row, "plan_sig", "%s", sig->valuestring);
}

/* The per-frame CSV lines of the point (x without commas). */
static char *frames_from_json(const sw_config *c, const sw_point *p, const cJSON *j, const char *xs)
{
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(j, "per_frame");
    size_t fl = 0, fc = 4096;
    char *buf = malloc(fc);
    const cJSON *f;
    int i = 0;
    cJSON_ArrayForEach(f, pf)
    {
        if (!buf)
            break;
        if (fl + 1024 > fc) {
            char *nb = realloc(buf, fc * 2);
            if (!nb)
                break;
            buf = nb;
            fc *= 2;
        }
        double ts = jnum(f, "t_s");
        if (!isfinite(ts) && c->fps > 0)
            ts = i / c->fps;
        char lat[32] = "", pred[32] = "", tsb[32] = "";
        if (isfinite(jnum(f, "latency_ms")))
            snprintf(lat, sizeof lat, "%.4f", jnum(f, "latency_ms"));
        if (isfinite(jnum(f, "predicted_ms")))
            snprintf(pred, sizeof pred, "%.4f", jnum(f, "predicted_ms"));
        if (isfinite(ts))
            snprintf(tsb, sizeof tsb, "%.4f", ts);
        fl += (size_t)snprintf(buf + fl, fc - fl, "%d,%s,%s,%.0f,%s,%s,%s,%.0f,%d\n", p->index,
                               p->variant ? p->variant->name : "-", xs, jnum(f, "frame"), tsb,
                               lat, pred, jnum(f, "plan"),
                               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f, "ok")) ? 1 : 0);
        i++;
    }
    return buf;
}

/* The uplink trace's rate over the run (0.5 s windows), for plots; NULL
 * when the point's link has no trace. */
static char *trace_from_json(const sw_point *p, const cJSON *j, const char *xs)
{
    mb_link_spec spec;
    char e2[256];
    if (!p->link[0] || mb_linkspec_parse(p->link, &spec, e2, sizeof e2) || !spec.up.trace[0])
        return NULL;
    mb_trace *tr = mb_trace_read_src(spec.up.trace, &spec.up.trace_src, e2, sizeof e2);
    double end = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(j, "per_frame"))
    {
        double ts = jnum(f, "t_s"), l = jnum(f, "latency_ms");
        if (isfinite(ts) && ts + (isfinite(l) ? l / 1e3 : 0) > end)
            end = ts + (isfinite(l) ? l / 1e3 : 0);
    }
    end += 1;
    size_t tcap = (64 + strlen(xs)) * (size_t)(end / 0.5 + 2), o = 0;
    char *buf = tr ? malloc(tcap) : NULL;
    for (double t = 0; buf && t < end && o + 64 + strlen(xs) < tcap; t += 0.5)
        o += (size_t)snprintf(buf + o, tcap - o, "%d,%s,%.2f,%.4f\n", p->index, xs, t,
                              mb_trace_capacity(tr, t, t + 0.5, spec.up.trace_loop) * 8 / 0.5 / 1e6);
    mb_trace_free(tr);
    return buf;
}

int sw_run_point(const sw_config *c, const sw_point *p, const char *extra_types,
                 sw_run_main run_main, const char *log_path, sw_row *row, char **frames_csv,
                 char **trace_csv, volatile int *stop, char *err, size_t errlen)
{
    argv_b a = {0};
    build_argv(c, p, extra_types, &a);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        argv_free(&a);
        return -1;
    }
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (logfd >= 0) {
        char line[4096] = "# mecbed";
        for (int i = 0; i < a.n; i++)
            snprintf(line + strlen(line), sizeof line - strlen(line), " %s", a.v[i]);
        strncat(line, "\n", sizeof line - strlen(line) - 1);
        if (write(logfd, line, strlen(line)) < 0) {
            /* the log is a convenience */
        }
    }
    pid_t pid = spawn_point(run_main, &a, pfd, logfd, err, errlen);
    close(pfd[1]);
    if (logfd >= 0)
        close(logfd);
    argv_free(&a);
    if (pid < 0) {
        close(pfd[0]);
        return -1;
    }
    int timed_out = 0;
    char *out = collect_output(c, pid, pfd[0], stop, &timed_out);
    close(pfd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    if (*stop) {
        snprintf(err, errlen, "interrupted");
        free(out);
        return -1;
    }
    cJSON *j = cJSON_Parse(out);
    if (!j || !cJSON_IsObject(j)) {
        if (timed_out)
            snprintf(err, errlen, "timed out after %.0f s (log: %s)", c->timeout_s, log_path);
        else if (WIFEXITED(st))
            snprintf(err, errlen, "mecbed run exited %d without JSON (log: %s)", WEXITSTATUS(st), log_path);
        else
            snprintf(err, errlen, "mecbed run killed by signal %d (log: %s)",
                     WIFSIGNALED(st) ? WTERMSIG(st) : -1, log_path);
        cJSON_Delete(j);
        free(out);
        return -1;
    }
    free(out);
    row_from_json(j, row);
    char xs[256]; /* x without commas, for the per-frame CSVs */
    snprintf(xs, sizeof xs, "%s", p->x);
    for (char *q = xs; *q; q++)
        if (*q == ',' || *q == '"')
            *q = ';';
    if (frames_csv)
        *frames_csv = frames_from_json(c, p, j, xs);
    if (trace_csv)
        *trace_csv = trace_from_json(p, j, xs);
    double okf = jnum(j, "ok_frames");
    const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
    if (cJSON_IsArray(devs)) { /* several devices: each must have completed a frame */
        const cJSON *d;
        okf = INFINITY;
        cJSON_ArrayForEach(d, devs)
            okf = fmin(okf, jnum(d, "ok_frames"));
    }
    if (!(okf > 0)) {
        snprintf(err, errlen, "no frame completed (log: %s)", log_path);
        rc = -1;
    }
    cJSON_Delete(j);
    return rc;
}
