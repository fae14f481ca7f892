/* mecbed run: the command line of a run session (runtime/session*.c,
 * docs/runtime.md): parse the options, build the model, topology, cost
 * model and session configuration, run the session and print its report.
 * The session tears down everything it creates on exit, on failure and,
 * through the stop flag these signal handlers set, on SIGINT/SIGTERM. */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_policies.h"
#include "cmd_run_gen.h"
#include "options.h"
#include "commands.h"
#include "mecbed/link.h"
#include "mecbed/platform.h"
#include "mecbed/session.h"

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* The registered policies (built-ins from the registry), for --help. */
static const char *policy_names(void)
{
    static char buf[512];
    mb_policy_register_builtins();
    return mb_policy_names(buf, sizeof(buf), " ");
}

/* The registered link backends, for --help. */
static const char *link_backend_names(void)
{
    static char buf[128];
    return mb_net_backend_list(buf, sizeof(buf), ", ");
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed run --model M --policy P (--link SPEC | --topology FILE) [options]\n\n"
            "Execute a policy's plan for real: each edge/cloud site runs `mecbed node` in its own\n"
            "network namespace, the device side runs here, tensors cross emulated links. Prints\n"
            "measured vs predicted latency and device energy, and checks the output against the\n"
            "unsplit model. Needs root (namespaces, TUN, cgroups).\n\n"
            "  --policy P           %s, or a plugin\n"
            "  --devices N          N devices, each with its own runner, plan and frame stream,\n"
            "                       sharing the edge (and cloud) nodes, whose compute they share\n"
            "                       first come, first served, or at the shares their plans hold\n"
            "                       (dds: the equilibrium's; dds --policy-opt shares=equal: 1/N\n"
            "                       each). With --link: a star, each device on\n"
            "                       its own link of that spec; with --topology: its first N device\n"
            "                       sites. Reports each device's latency, energy and output check\n"
            "                       and predicted latency under sharing (docs/runtime.md);\n"
            "                       --timeline F.json writes F-dev0.json, F-dev1.json, ...\n"
            "  --link-backend B     link emulation: %s (the first is the default)\n"
            "                       (--backend B: the old spelling, deprecated)\n"
            "  --frames N           frames to run (default 1), after --warmup frames (default 1)\n"
            "  --fps F              release a frame every 1/F s (default: back to back); frames\n"
            "                       later than 1/F count as deadline misses\n"
            "  --timeout S          a frame not done within S seconds fails (default 10)\n"
            "  --fallback local     complete a failed frame on the device alone\n"
            "  --adaptive           re-plan when the measured goodput of the device's uplink moves\n"
            "                       more than 25%% from what the plan assumed (EWMA of transfers)\n"
            "  --timeline FILE      Chrome trace-event JSON of every op and transfer (Perfetto);\n"
            "                       FILE with .csv appended gets the same as CSV\n"
            "  --log-dir DIR        keep the links' per-packet CSV logs and pcaps in DIR\n"
            "  --kernels K          cpu (default) or ref, on every site\n"
            "  --emulate MODE       how each site runs at its node type's speed (docs/runtime.md):\n"
            "                       model (default): each op lasts the node type's modelled time\n"
            "                       for it (the plan's step prediction) x the TDF, whatever this\n"
            "                       machine's speed or load; kernels still compute every value and\n"
            "                       transfers, queueing, overlap and overheads are measured. dilate:\n"
            "                       each op lasts factor x the CPU time it took here (host cache\n"
            "                       effects included). cap: a cgroup CPU share (bursty). Factors\n"
            "                       and --tdf auto come from a calibration of this machine at the\n"
            "                       start against the planning profile\n"
            "  --tdf auto|K         time dilation factor: the whole run (compute, links, traces,\n"
            "                       --fps, timeouts, radio) advances K times slower than wall time,\n"
            "                       so sites up to K times faster than this machine are emulated\n"
            "                       exactly; figures are in emulated time. auto (default): the\n"
            "                       smallest K that emulates the fastest site (1 when none is faster)\n"
            "  --no-cap             no emulation: every site at this machine's speed and the plan\n"
            "                       made for that (for real devices running `mecbed node`)\n"
            "  --run-id ID          namespace/interface run id (6 chars [0-9a-z]; default random)\n"
            "  --seed N             input seed (default 1)\n"
            "  --key-file F         the key the nodes were started with (mecbed keygen -o F;\n"
            "                       mode 0600): needed for sites with address=, which run\n"
            "                       elsewhere. Without it, the nodes this run starts get a fresh\n"
            "                       per-run key (docs/protocol.md)\n"
            "  --insecure-no-auth   talk to nodes without a key (started with --insecure-no-auth)\n"
            "  --pinned-profile     accepted for compatibility: run always plans with the profile\n"
            "                       compare and plan use (pinned, cached or --profile)\n"
            "  --prompt-tokens P    generation (a decoder: gpt2, smollm_135m): prefill P prompt\n"
            "  --gen-tokens N       tokens, then N-1 decode steps, layers [0, K) on the device and\n"
            "  --split K            the rest on the server, each layer's KV cache kept where it\n"
            "                       runs; K defaults to EdgeShard's cut. Reports measured and\n"
            "                       predicted TTFT, TPOT, tokens/s, bytes and device energy per\n"
            "                       token, output_match (docs/generation.md). --policy pd-device\n"
            "                       instead: the server prefills every layer, the KV cache\n"
            "                       crosses to the device once, the device decodes; galaxy\n"
            "                       [--policy-opt edges=K]: tensor parallel over the topology's\n"
            "                       edge nodes; speculative [--policy-opt k=K,a=A]: a draft on\n"
            "                       the device, the target verifying k+1 tokens on the server\n"
            "  --json               every figure as one JSON object\n"
            "  --quiet              no per-frame progress on stderr (on a terminal: one line\n"
            "                       rewritten per frame; otherwise a line every 5 s)\n",
            policy_names(), link_backend_names());
    mb_plan_setup_help(f);
}

/* What the command line asked for. */
typedef struct run_args {
    mb_plan_setup s;
    mb_session_config cfg;
    int json, no_cap, pinned, quiet;
    int use_cap;    /* --emulate cap: cgroup CPU caps */
    int use_dilate; /* --emulate dilate: measured CPU time x factor */
    long prompt_tokens, gen_tokens, split; /* generation; 0, 0, -1 when not */
} run_args;

/* --prompt-tokens, --gen-tokens, --split. 0, or -1 (said why). */
static int parse_gen(run_args *a, int opt, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (*end || !*arg || v < (opt == 'S' ? 0 : 1) || v > 100000) {
        fprintf(stderr, "mecbed run: --%s %s: expected %s\n",
                opt == 'G' ? "prompt-tokens" : opt == 'g' ? "gen-tokens" : "split", arg,
                opt == 'S' ? "a layer count >= 0" : "a count >= 1");
        return -1;
    }
    *(opt == 'G' ? &a->prompt_tokens : opt == 'g' ? &a->gen_tokens : &a->split) = v;
    return 0;
}

/* getopt over run's options into a. Returns -1 when parsing succeeded and
 * the run should go on, else the exit status (0 after --help, 2). */
static int parse_options(run_args *a, int argc, char **argv)
{
    mb_session_config *c = &a->cfg;
    /* run's own options; the planning options come from cli/options.c. */
    static const struct option own[] = {
        {"policy", required_argument, 0, 'p'},     {"link-backend", required_argument, 0, 'b'},
        {"backend", required_argument, 0, 'B'},    {"frames", required_argument, 0, 'n'},
        {"fps", required_argument, 0, 'f'},        {"json", no_argument, 0, 'j'},
        {"timeline", required_argument, 0, 't'},   {"fallback", required_argument, 0, 'F'},
        {"timeout", required_argument, 0, 'T'},    {"adaptive", no_argument, 0, 'a'},
        {"log-dir", required_argument, 0, 'L'},    {"kernels", required_argument, 0, 'k'},
        {"no-cap", no_argument, 0, 'C'},           {"run-id", required_argument, 0, 'r'},
        {"seed", required_argument, 0, 's'},       {"warmup", required_argument, 0, 'w'},
        {"pinned-profile", no_argument, 0, 'P'},   {"emulate", required_argument, 0, 'E'},
        {"tdf", required_argument, 0, 'D'},        {"quiet", no_argument, 0, 'Q'},
        {"key-file", required_argument, 0, 'K'},   {"insecure-no-auth", no_argument, 0, 'I'},
        {"devices", required_argument, 0, 'N'},    {"help", no_argument, 0, 'h'},
        {"prompt-tokens", required_argument, 0, 'G'}, {"gen-tokens", required_argument, 0, 'g'},
        {"split", required_argument, 0, 'S'},
        {0, 0, 0, 0},
    };
    struct option opts[MB_CLI_MAX_OPTIONS];
    if (mb_plan_options_build(opts, MB_CLI_MAX_OPTIONS, own)) {
        fprintf(stderr, "mecbed run: too many options\n");
        return 2;
    }
    int opt, idx;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 0:
            if (mb_plan_setup_option(&a->s, opts[idx].name, optarg))
                return 2;
            break;
        case 'p': c->policy = optarg; break;
        case 'B': mb_cli_deprecated("backend", "link-backend"); /* fall through */
        case 'b': c->backend = optarg; break;
        case 'j': a->json = 1; break;
        case 'Q': a->quiet = 1; break;
        case 't': c->timeline = optarg; break;
        case 'a': c->adaptive = 1; break;
        case 'L': c->log_dir = optarg; break;
        case 'C': a->no_cap = 1; break;
        case 'K': c->key_file = optarg; break;
        case 'I': c->insecure_no_auth = 1; break;
        case 'E':
            if (strcmp(optarg, "model") && strcmp(optarg, "dilate") && strcmp(optarg, "cap")) {
                fprintf(stderr, "mecbed run: --emulate %s: expected model, dilate or cap\n", optarg);
                return 2;
            }
            a->use_cap = !strcmp(optarg, "cap");
            a->use_dilate = !strcmp(optarg, "dilate");
            break;
        case 'P': a->pinned = 1; break;
        case 'D':
            if (!strcmp(optarg, "auto")) {
                c->tdf = 0;
                break;
            }
            c->tdf = strtod(optarg, &end);
            if (*end || !(c->tdf >= 1) || c->tdf > 1000) {
                fprintf(stderr, "mecbed run: --tdf %s: expected auto or a factor from 1 to 1000\n", optarg);
                return 2;
            }
            break;
        case 'r': c->run_id = optarg; break;
        case 'k': c->kernels = optarg; break;
        case 'F':
            if (strcmp(optarg, "local") && strcmp(optarg, "none")) {
                fprintf(stderr, "mecbed run: --fallback %s: expected local or none\n", optarg);
                return 2;
            }
            c->fallback_local = !strcmp(optarg, "local");
            break;
        case 'N': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64) {
                fprintf(stderr, "mecbed run: --devices %s: expected 1 to 64\n", optarg);
                return 2;
            }
            a->s.devices = (int)v;
            break;
        }
        case 'n':
        case 'w':
        case 's': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < (opt == 'n') || v > 1000000) {
                fprintf(stderr, "mecbed run: --%s %s: expected a count\n",
                        opt == 'n' ? "frames" : opt == 'w' ? "warmup" : "seed", optarg);
                return 2;
            }
            if (opt == 'n')
                c->frames = (int)v;
            else if (opt == 'w')
                c->warmup = (int)v;
            else
                c->seed = (uint64_t)v;
            break;
        }
        case 'f':
        case 'T': {
            double v = strtod(optarg, &end);
            if (*end || !(v > 0) || v > 1e6) {
                fprintf(stderr, "mecbed run: --%s %s: expected a positive number\n",
                        opt == 'f' ? "fps" : "timeout", optarg);
                return 2;
            }
            if (opt == 'f')
                c->fps = v;
            else
                c->timeout_s = v;
            break;
        }
        case 'G':
        case 'g':
        case 'S':
            if (parse_gen(a, opt, optarg))
                return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mecbed run: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!a->prompt_tokens != !a->gen_tokens || (a->split >= 0 && !a->prompt_tokens)) {
        fprintf(stderr, "mecbed run: --prompt-tokens and --gen-tokens go together%s\n",
                a->split >= 0 ? " (and --split needs them)" : "");
        return 2;
    }
    if (a->prompt_tokens && !c->policy)
        c->policy = "edgeshard";
    if (!c->policy || (c->key_file && c->insecure_no_auth)) {
        fprintf(stderr, "mecbed run: %s (mecbed run --help)\n",
                c->policy ? "--key-file and --insecure-no-auth exclude each other" : "--policy is required");
        return 2;
    }
    if (strcmp(c->kernels, "cpu") && strcmp(c->kernels, "ref")) {
        fprintf(stderr, "mecbed run: --kernels %s: expected cpu or ref\n", c->kernels);
        return 2;
    }
    return -1;
}

/* The session's messages, as run has always printed them: warnings and
 * errors always, progress only without --json. */
static void on_log(void *arg, mb_session_level level, const char *msg)
{
    int json = *(const int *)arg;
    if (level == MB_SESSION_WARN)
        fprintf(stderr, "mecbed run: warning: %s\n", msg);
    else if (level == MB_SESSION_ERROR || !json)
        fprintf(stderr, "mecbed run: %s\n", msg);
}

/* Per-frame progress on stderr: never on stdout, where --json goes. */
typedef struct progress {
    int total, failed, tty;
    double t0, last;
} progress;

static void on_frame(void *arg, int index, int ok)
{
    progress *p = arg;
    double now = mb_now();
    p->failed += !ok;
    int done = index + 1;
    if (!p->tty && now - p->last < 5 && done < p->total)
        return;
    p->last = now;
    double per = (now - p->t0) / done;
    fprintf(stderr, "%smecbed run: frame %d/%d (%d failed), %.1f s, ETA %.0f s%s", p->tty ? "\r\033[K" : "", done,
            p->total, p->failed, now - p->t0, per * (p->total - done), p->tty && done < p->total ? "" : "\n");
}

/* Ctrl-C, TERM and HUP end the run cleanly (the session sees stop_flag and
 * tears everything down); a peer gone mid-write is an error, not a signal. */
static void catch_stop(run_args *a)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    stop_flag = 0;
    a->cfg.stop = &stop_flag;
}

/* Run the session and print its report. The exit status: 130 when
 * interrupted, 1 when a frame failed (and was not completed locally) or an
 * output differed, else 0. */
static int run_session(run_args *a)
{
    char err[1024];
    catch_stop(a);
    progress prog = {a->cfg.frames, 0, isatty(2), 0, 0};
    if (!a->quiet) {
        a->cfg.on_frame = on_frame;
        a->cfg.on_frame_arg = &prog;
    }
    mb_session *sess = mb_session_new(&a->cfg, err, sizeof err);
    if (!sess) {
        fprintf(stderr, "mecbed run: %s\n", err);
        return 1;
    }
    prog.t0 = prog.last = mb_now();
    if (mb_session_run(sess, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        mb_session_free(sess);
        return 1;
    }
    mb_session_report r;
    mb_session_get_report(sess, &r);
    if (a->json)
        mb_session_write_json(sess, stdout);
    else
        mb_session_write_text(sess, stdout);
    int rc = r.interrupted ? 130 : (r.failed_frames > r.fallback_frames || !r.all_match) ? 1 : 0;
    if (r.interrupted)
        fprintf(stderr, "mecbed run: interrupted; everything was torn down\n");
    mb_session_free(sess);
    return rc;
}

/* --devices N: the first N device sites, each its own session on the
 * shared nodes (runtime/session_multi.c). */
static int run_devices(run_args *a)
{
    char err[1400];
    const mb_topology *t = &a->s.topo;
    int dev[MB_MAX_SITES], n = 0;
    for (int i = 0; i < t->n_sites && n < a->s.devices; i++)
        if (t->sites[i].role == MB_ROLE_DEVICE)
            dev[n++] = i;
    if (n < a->s.devices) {
        fprintf(stderr, "mecbed run: --devices %d: %s has %d device sites\n", a->s.devices, a->s.topology, n);
        return 1;
    }
    if (a->cfg.adaptive || a->use_cap) {
        fprintf(stderr, "mecbed run: --devices: %s is not supported with several devices yet\n",
                a->cfg.adaptive ? "--adaptive" : "--emulate cap");
        return 2;
    }
    catch_stop(a);
    progress prog = {a->cfg.frames, 0, isatty(2), mb_now(), mb_now()};
    if (!a->quiet) {
        a->cfg.on_frame = on_frame;
        a->cfg.on_frame_arg = &prog;
    }
    mb_multi *m = NULL;
    if (mb_multi_run(&a->cfg, dev, n, &m, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        mb_multi_free(m);
        return 1;
    }
    if (a->json)
        mb_multi_write_json(m, stdout);
    else
        mb_multi_write_text(m, stdout);
    int rc = mb_multi_interrupted(m) ? 130 : mb_multi_ok(m) ? 0 : 1;
    mb_multi_free(m);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    static run_args args;
    run_args *a = &args;
    memset(a, 0, sizeof *a);
    a->split = -1;
    mb_plan_setup_init(&a->s);
    mb_session_config_init(&a->cfg);
    int rc = parse_options(a, argc, argv);
    if (rc >= 0)
        return rc;
    mb_session_config *c = &a->cfg;
    if (c->fps > 0 && a->s.frame_interval_s == 0)
        a->s.frame_interval_s = 1.0 / c->fps;
    char err[1024];
    if (a->prompt_tokens && (rc = mb_run_generate_check(a->s.model, a->prompt_tokens, a->gen_tokens, a->split)))
        return rc;
    /* The same profile compare and plan use: one prediction per
     * configuration. The session calibrates this machine against it. */
    if (mb_plan_setup_build(&a->s, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        mb_plan_setup_free(&a->s);
        return 1;
    }
    if (!a->prompt_tokens && !mb_policy_find_or_load(c->policy, err, sizeof err)) {
        fprintf(stderr, "mecbed run: %s\n", err);
        mb_plan_setup_free(&a->s);
        return 1;
    }
    c->emulate = a->no_cap       ? MB_EMULATE_NONE
                 : a->use_cap    ? MB_EMULATE_CAP
                 : a->use_dilate ? MB_EMULATE_DILATE
                                 : MB_EMULATE_MODEL;
    c->model = a->s.model;
    c->g = a->s.g;
    c->topo = &a->s.topo;
    c->cost = a->s.cost;
    c->device = a->s.device;
    c->profile_source = a->s.prof_source;
    c->profile = a->s.prof;
    c->link_label = a->s.link ? a->s.link : a->s.topology;
    c->label_is_link = a->s.link != NULL;
    c->policy_opts = a->s.policy_opts;
    c->objective = a->s.objective;
    c->log = on_log;
    c->log_arg = &a->json;
    if (a->prompt_tokens) {
        catch_stop(a);
        rc = mb_run_generate(&a->s, c, a->prompt_tokens, a->gen_tokens, (int)a->split, a->json);
    } else {
        rc = a->s.devices > 1 ? run_devices(a) : run_session(a);
    }
    mb_plan_setup_free(&a->s);
    return rc;
}
