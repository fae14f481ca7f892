/* Every input a fuzz harness found to crash, hang or exhaust memory
 * (fuzz/regress/<harness>/) is fed again to the same parser the harness
 * calls, each in a child process with a 10 s alarm: the test fails when a
 * child dies by a signal (crash, abort, the alarm) or reports a broken
 * invariant. It runs in the ordinary build (no clang needed); the sanitizer
 * build (SANITIZE=address,undefined) turns memory errors into failures too. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/graph.h"
#include "mecbed/model.h"
#include "mecbed/npy.h"
#include "mecbed/onnx.h"
#include "mecbed/plan.h"
#include "mecbed/topology.h"
#include "mecbed/trace.h"

#include "../fuzz/fuzz_util.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b)
        b[n] = 0;
    *len = n;
    return b;
}

/* Runs one input through the parser of harness `name`; 0 when it was handled
 * (accepted or refused with an error), 1 when an invariant broke. */
static int feed(const char *name, const char *path)
{
    char err[512] = "";
    size_t len = 0;
    if (!strcmp(name, "modelfile")) {
        mb_graph *g = mb_modelfile_read(path, err, sizeof err);
        mb_graph_free(g);
        return !g && !err[0];
    }
    if (!strcmp(name, "onnx")) {
        mb_graph *g = mb_onnx_load(path, err, sizeof err);
        mb_graph_free(g);
        return !g && !err[0];
    }
    if (!strcmp(name, "npy")) {
        mb_tensor *t = mb_npy_read(path, err, sizeof err);
        mb_tensor_free(t);
        return !t && !err[0];
    }
    char *data = slurp(path, &len);
    if (!data)
        return 1;
    int bad = 0;
    if (!strcmp(name, "trace") && len > 0) {
        const char *tmp = fuzz_file((const uint8_t *)data + 1, len - 1, ".trace");
        mb_trace *tr = tmp ? mb_trace_read(tmp, (mb_trace_format)((unsigned char)data[0] % MB_TRACE_FMT_COUNT), err, sizeof err) : NULL;
        bad = !tr && !err[0];
        if (tr) { /* what the harness does with an accepted trace */
            mb_trace_stats st;
            mb_trace_cursor c;
            bad |= mb_trace_stats_compute(tr, 1.0, &st) == 0 && !isfinite(st.mean_bps);
            mb_trace_cursor_init(&c, tr, 1);
            double t = mb_trace_serve(&c, 0, 1e6);
            bad |= !(t >= 0);
        }
        mb_trace_free(tr);
    } else if (!strcmp(name, "plan_json")) {
        mb_graph *g = mb_modelfile_read(FUZZ_MODEL, err, sizeof err);
        static mb_topology t;
        if (!g || mb_topology_from_link("rate=10mbit,rtt=20ms", &t, err, sizeof err))
            bad = 1;
        else
            mb_plan_free(mb_plan_from_json(data, g, &t, err, sizeof err));
        mb_graph_free(g);
    } else if (!strcmp(name, "topology")) {
        static mb_topology t;
        bad = mb_topology_read(path, &t, err, sizeof err) && !err[0];
    } else {
        print_message("%s: no replay for harness '%s'\n", path, name);
        bad = 1;
    }
    free(data);
    return bad;
}

static void test_regressions(void **state)
{
    (void)state;
    DIR *top = opendir("fuzz/regress");
    if (!top)
        fail_msg("fuzz/regress not found (run from the repository root)");
    int n = 0;
    struct dirent *h;
    while ((h = readdir(top))) {
        if (h->d_name[0] == '.')
            continue;
        char dir[512];
        snprintf(dir, sizeof dir, "fuzz/regress/%s", h->d_name);
        DIR *d = opendir(dir);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                alarm(10);
                int rc = feed(h->d_name, path);
                fuzz_remove_file(); /* _exit skips atexit */
                _exit(rc);
            }
            int st = 0;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            if (WIFSIGNALED(st))
                fail_msg("%s: killed by signal %d (a crash, or a hang cut by the 10 s alarm)", path, WTERMSIG(st));
            if (WEXITSTATUS(st))
                fail_msg("%s: broken invariant (refused without an error message, or no replay)", path);
            n++;
        }
        closedir(d);
    }
    closedir(top);
    print_message("%d fuzz findings replayed\n", n);
    assert_true(n > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
