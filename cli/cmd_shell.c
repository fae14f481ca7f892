/* mecbed shell: any program behind an emulated link, as Mahimahi's shells
 * put a browser behind mm-link. The command runs in the device's network
 * namespace; the far side of the link is another namespace where --peer
 * starts a server (iperf3 -s, a user's inference server); $MECBED_PEER holds
 * its address. The per-packet logs, pcaps and the radio energy model of
 * `mecbed run` are available; everything is removed when the command ends. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "commands.h"
#include "mecbed/energy.h"
#include "mecbed/link.h"
#include "mecbed/platform.h"
#include "mecbed/runstats.h"
#include "mecbed/timeline.h"
#include "shell_nest.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: mecbed shell (--link SPEC | --topology FILE [--at SITE]) [options] [--] [COMMAND [ARG...]]\n"
            "\n"
            "Runs COMMAND (default: $SHELL, interactive) in the device's network namespace behind an\n"
            "emulated link (needs root), like Mahimahi's mm-link and mm-delay shells. The other end\n"
            "of the link is a namespace of its own; --peer starts a program there, and $MECBED_PEER\n"
            "is its address, so `mecbed shell --link rate=10mbit,rtt=40ms --peer 'iperf3 -s' --peer-port 5201 \\\n"
            "-- sh -c 'iperf3 -c $MECBED_PEER'` measures the link with iperf3 (COMMAND is run as given,\n"
            "not by a shell: use sh -c for variables). When COMMAND ends, the links,\n"
            "namespaces and the peer are removed and a summary of what crossed the link is printed\n"
            "(stderr); the exit status is COMMAND's.\n"
            "  --link SPEC        one link, device <-> peer (docs/link-spec.md)\n"
            "  --topology FILE    a topology; COMMAND runs at --at SITE (default: the first site)\n"
            "  --peer CMD         run `sh -c CMD` at the far end (a server; its output goes to\n"
            "                     stderr); killed at the end\n"
            "  --peer-at SITE     where --peer runs (default: the site across the first link)\n"
            "  --peer-port PORT   wait until the peer listens on TCP PORT before COMMAND starts\n"
            "                     (at most 10 s)\n"
            "  --link-backend B   emu (default), tc or ns3 (docs/link-emulation.md)\n"
            "  --log-dir DIR      emu: per-packet CSV and pcap of each link direction into DIR\n"
            "  --radio KIND       the device's radio energy over the session (lte, wifi, 3g: the\n"
            "                     model of docs/energy.md, from the emu packet logs)\n"
            "  --summary-json F   the summary as JSON into F (bytes, packets, drops per direction,\n"
            "                     radio energy, COMMAND's exit status)\n"
            "  --seed N           loss and jitter random streams\n"
            "  --quiet            no summary on stderr\n"
            "Environment of COMMAND: MECBED_PEER (peer address), MECBED_SELF (this site's address),\n"
            "MECBED_ADDR_<SITE> for every site, MECBED_RUN_ID, MECBED_LOG_DIR (when logging).\n"
            "Ctrl-C goes to COMMAND (as in any shell); SIGTERM ends the session.\n"
            "Shells nest: `mecbed shell --link A -- mecbed shell --link B -- CMD` runs CMD behind B and\n"
            "then A (B's far end is A's namespace), with $MECBED_PEER still A's peer (unless the inner\n"
            "shell has its own --peer, which runs at B's far end); an inner shell takes --link only.\n");
}

typedef struct shell_opts {
    const char *spec, *topo_file, *backend, *log_dir, *peer_cmd, *summary_json, *at, *peer_at;
    int radio, quiet, peer_port;
    unsigned long long seed;
    char **cmd;
} shell_opts;

static int parse_opts(shell_opts *o, int argc, char **argv)
{
    enum { O_LINK = 256, O_TOPO, O_AT, O_PEER, O_PEER_AT, O_PEER_PORT, O_BACKEND, O_LOG, O_RADIO, O_SUMMARY,
           O_SEED, O_QUIET };
    static const struct option opts[] = {
        {"link", required_argument, 0, O_LINK},        {"topology", required_argument, 0, O_TOPO},
        {"at", required_argument, 0, O_AT},            {"peer", required_argument, 0, O_PEER},
        {"peer-at", required_argument, 0, O_PEER_AT},  {"peer-port", required_argument, 0, O_PEER_PORT},
        {"link-backend", required_argument, 0, O_BACKEND}, {"log-dir", required_argument, 0, O_LOG},
        {"radio", required_argument, 0, O_RADIO},      {"summary-json", required_argument, 0, O_SUMMARY},
        {"seed", required_argument, 0, O_SEED},        {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->backend = "emu";
    o->seed = 1;
    int c;
    char *end;
    optind = 1;
    /* '+': options end at the first non-option (COMMAND's own options follow) */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case O_LINK: o->spec = optarg; break;
        case O_TOPO: o->topo_file = optarg; break;
        case O_AT: o->at = optarg; break;
        case O_PEER: o->peer_cmd = optarg; break;
        case O_PEER_AT: o->peer_at = optarg; break;
        case O_BACKEND: o->backend = optarg; break;
        case O_LOG: o->log_dir = optarg; break;
        case O_SUMMARY: o->summary_json = optarg; break;
        case O_QUIET: o->quiet = 1; break;
        case O_PEER_PORT:
            o->peer_port = (int)strtol(optarg, &end, 10);
            if (*end || o->peer_port < 1 || o->peer_port > 65535) {
                fprintf(stderr, "mecbed shell: --peer-port %s: a TCP port, 1..65535\n", optarg);
                return 2;
            }
            break;
        case O_RADIO:
            o->radio = mb_radio_from_name(optarg);
            if (o->radio <= 0) {
                fprintf(stderr, "mecbed shell: --radio %s: lte, wifi or 3g\n", optarg);
                return 2;
            }
            break;
        case O_SEED:
            o->seed = strtoull(optarg, &end, 0);
            if (*end) {
                fprintf(stderr, "mecbed shell: --seed %s: not an integer\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!!o->spec == !!o->topo_file) {
        fprintf(stderr, "mecbed shell: give --link SPEC or --topology FILE (mecbed shell --help)\n");
        return 2;
    }
    if (o->peer_port && !o->peer_cmd) {
        fprintf(stderr, "mecbed shell: --peer-port goes with --peer CMD\n");
        return 2;
    }
    o->cmd = argv + optind;
    return -1;
}

/* Sites: where COMMAND runs and where the peer is. */
static int pick_sites(const shell_opts *o, const mb_topology *t, int *at, int *peer)
{
    *at = o->at ? mb_topology_find(t, o->at) : 0;
    if (*at < 0) {
        fprintf(stderr, "mecbed shell: --at %s: no such site in %s\n", o->at, o->topo_file ? o->topo_file : "the link");
        return -1;
    }
    if (o->peer_at) {
        *peer = mb_topology_find(t, o->peer_at);
        if (*peer < 0) {
            fprintf(stderr, "mecbed shell: --peer-at %s: no such site\n", o->peer_at);
            return -1;
        }
    } else {
        *peer = -1;
        for (int i = 0; i < t->n_links && *peer < 0; i++)
            if (t->links[i].a == *at || t->links[i].b == *at)
                *peer = t->links[i].a == *at ? t->links[i].b : t->links[i].a;
        if (*peer < 0) {
            fprintf(stderr, "mecbed shell: site %s has no link\n", t->sites[*at].name);
            return -1;
        }
    }
    if (*peer == *at) {
        fprintf(stderr, "mecbed shell: the peer and the command are at the same site\n");
        return -1;
    }
    return 0;
}

/* Does a process in the peer's namespace listen on TCP port? Its
 * /proc/PID/net/tcp{,6} list that namespace's sockets (state 0A: LISTEN). */
static int listening(pid_t pid, int port)
{
    const char *files[] = {"tcp", "tcp6"};
    for (int k = 0; k < 2; k++) {
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, files[k]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            char local[128], remote[128], st[8];
            if (sscanf(line, " %*d: %127s %127s %7s", local, remote, st) != 3)
                continue;
            const char *colon = strrchr(local, ':');
            if (colon && strtol(colon + 1, NULL, 16) == port && !strcmp(st, "0A")) {
                fclose(f);
                return 1;
            }
        }
        fclose(f);
    }
    return 0;
}

static volatile sig_atomic_t end_session;
static void on_term(int sig) { (void)sig; end_session = 1; }
static void on_interrupt(int sig) { (void)sig; /* the foreground COMMAND gets it too and decides */ }

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
}

/* The environment COMMAND and the peer see. */
static void export_env(const mb_net *net, const mb_topology *t, int at, int peer, const char *log_dir)
{
    setenv("MECBED_PEER", mb_net_addr(net, peer), 1);
    setenv("MECBED_SELF", mb_net_addr(net, at), 1);
    setenv("MECBED_RUN_ID", mb_net_run_id(net), 1);
    if (log_dir)
        setenv("MECBED_LOG_DIR", log_dir, 1);
    for (int i = 0; i < t->n_sites; i++) {
        char name[64];
        snprintf(name, sizeof name, "MECBED_ADDR_%s", t->sites[i].name);
        for (char *p = name; *p; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                *p = '_';
        setenv(name, mb_net_addr(net, i), 1);
    }
}

/* Start the peer (and wait for its port); 0, or -1 with a message. */
static int start_peer(mb_net *net, const shell_opts *o, int peer, pid_t *pid)
{
    *pid = 0;
    if (!o->peer_cmd)
        return 0;
    /* the peer's output goes to stderr: COMMAND's stdout stays its own */
    char script[4200];
    snprintf(script, sizeof script, "exec 1>&2; %s", o->peer_cmd);
    char *argv[] = {"sh", "-c", script, NULL};
    char err[512];
    if (mb_net_spawn(net, peer, argv, pid, err, sizeof err)) {
        fprintf(stderr, "mecbed shell: --peer: %s\n", err);
        return -1;
    }
    if (!o->peer_port)
        return 0;
    for (int i = 0; i < 1000 && !end_session; i++) {
        if (listening(*pid, o->peer_port))
            return 0;
        pid_t gone;
        int st;
        if (mb_net_child_exited(net, &gone, &st) == 1 && gone == *pid) {
            fprintf(stderr, "mecbed shell: --peer '%s' exited (status %d) before listening on port %d\n",
                    o->peer_cmd, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), o->peer_port);
            *pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "mecbed shell: --peer '%s' does not listen on TCP port %d after 10 s\n", o->peer_cmd,
            o->peer_port);
    return -1;
}

/* Run COMMAND at site at until it ends (or SIGTERM); its exit status. */
static int run_command(mb_net *net, const shell_opts *o, int at, pid_t peer_pid)
{
    char *dflt[] = {getenv("SHELL") && *getenv("SHELL") ? getenv("SHELL") : "/bin/sh", NULL};
    char *const *argv = o->cmd[0] ? o->cmd : dflt;
    pid_t pid;
    char err[512];
    if (mb_net_spawn(net, at, argv, &pid, err, sizeof err)) {
        fprintf(stderr, "mecbed shell: %s: %s\n", argv[0], err);
        return 127;
    }
    int status = 0;
    for (;;) {
        pid_t gone;
        int st;
        while (mb_net_child_exited(net, &gone, &st) == 1) {
            if (gone == pid) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return status;
            }
            if (gone == peer_pid && !o->quiet)
                fprintf(stderr, "mecbed shell: the peer '%s' exited (status %d)\n", o->peer_cmd,
                        WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
        if (end_session) {
            kill(pid, SIGTERM);
            end_session = 0;
            status = 143;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Radio energy of the device over [t0, t1] from the emu packet logs of the
 * links at site at. -1 when there are no logs. */
static int radio_energy(double epoch, const mb_topology *t, int at, const char *log_dir, int kind, double t0,
                        double t1, mb_radio_energy *e)
{
    rs_packets ps = {0};
    char err[512];
    for (int l = 0; l < t->n_links; l++) {
        const mb_topo_link *tl = &t->links[l];
        if (tl->a != at && tl->b != at)
            continue;
        for (int dir = 0; dir < 2; dir++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/link%d-%s-%s.%s.csv", log_dir, l, t->sites[tl->a].name,
                     t->sites[tl->b].name, dir ? "down" : "up");
            /* "up" leaves the device when the device is side a */
            int up = (dir == 0) == (tl->a == at);
            if (rs_packets_read(&ps, path, epoch, up, err, sizeof err)) {
                rs_packets_free(&ps);
                return -1;
            }
        }
    }
    enum { MAX_BURSTS = 1 << 16 };
    mb_radio_burst *b = malloc(sizeof *b * MAX_BURSTS);
    mb_timeline none;
    mb_timeline_init(&none);
    int n = b ? rs_bursts(&ps, &none, 0, at, t0, t1, 0.001, b, MAX_BURSTS) : 0;
    mb_radio_frame_energy(mb_radio_get((mb_radio_kind)kind), b, n, t1 - t0, 0, e);
    free(b);
    rs_packets_free(&ps);
    return 0;
}

/* What crossed each link, on stderr and into a JSON summary (read while
 * the links are up: their counters go with them). */
static cJSON *summarize_links(const mb_net *net, const mb_topology *t, const shell_opts *o, int status, double t0,
                              double t1)
{
    cJSON *js = cJSON_CreateObject();
    cJSON_AddNumberToObject(js, "exit_status", status);
    cJSON_AddNumberToObject(js, "duration_s", t1 - t0);
    cJSON_AddStringToObject(js, "backend", mb_net_backend(net));
    cJSON_AddStringToObject(js, "run_id", mb_net_run_id(net));
    cJSON *links = cJSON_AddArrayToObject(js, "links");
    if (!o->quiet)
        fprintf(stderr, "mecbed shell: %.1f s, exit status %d\n", t1 - t0, status);
    for (int l = 0; l < t->n_links; l++) {
        const mb_topo_link *tl = &t->links[l];
        for (int dir = 0; dir < 2; dir++) {
            mb_link_counters c;
            if (mb_net_link_counters(net, l, dir, &c))
                continue;
            const char *from = t->sites[dir ? tl->b : tl->a].name, *to = t->sites[dir ? tl->a : tl->b].name;
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "from", from);
            cJSON_AddStringToObject(d, "to", to);
            cJSON_AddNumberToObject(d, "in_packets", (double)c.in_packets);
            cJSON_AddNumberToObject(d, "out_packets", (double)c.out_packets);
            cJSON_AddNumberToObject(d, "out_bytes", (double)c.out_bytes);
            cJSON_AddNumberToObject(d, "drop_loss", (double)c.drop_loss);
            cJSON_AddNumberToObject(d, "drop_queue", (double)c.drop_queue);
            cJSON_AddNumberToObject(d, "drop_aqm", (double)c.drop_aqm);
            cJSON_AddNumberToObject(d, "drop_outage", (double)c.drop_outage);
            cJSON_AddNumberToObject(d, "duplicated", (double)c.duplicated);
            cJSON_AddNumberToObject(d, "corrupted", (double)c.corrupted);
            cJSON_AddNumberToObject(d, "reordered", (double)c.reordered);
            cJSON_AddItemToArray(links, d);
            if (!o->quiet)
                fprintf(stderr, "  %s -> %s: %llu of %llu packets delivered (%.3f MB); dropped: loss %llu, "
                                "queue %llu, aqm %llu, outage %llu\n", from, to,
                        (unsigned long long)c.out_packets, (unsigned long long)c.in_packets, c.out_bytes / 1e6,
                        (unsigned long long)c.drop_loss, (unsigned long long)c.drop_queue,
                        (unsigned long long)c.drop_aqm, (unsigned long long)c.drop_outage);
        }
    }
    return js;
}

/* The radio energy (from the packet logs, complete once the links are
 * down) and the JSON summary file. Frees js. */
static void summarize_radio(cJSON *js, const char *backend, double epoch, const mb_topology *t, const shell_opts *o,
                            int at, double t0, double t1, const char *log_dir)
{
    mb_radio_energy e;
    if (o->radio && log_dir && !radio_energy(epoch, t, at, log_dir, o->radio, t0, t1, &e)) {
        cJSON *r = cJSON_AddObjectToObject(js, "radio");
        cJSON_AddStringToObject(r, "model", mb_radio_get((mb_radio_kind)o->radio)->name);
        cJSON_AddNumberToObject(r, "total_mj", e.total_mj);
        cJSON_AddNumberToObject(r, "active_mj", e.active_mj);
        cJSON_AddNumberToObject(r, "tail_mj", e.tail_mj);
        if (!o->quiet)
            fprintf(stderr, "  radio (%s): %.1f mJ (transferring %.1f, tail %.1f) over %.1f s\n",
                    mb_radio_get((mb_radio_kind)o->radio)->name, e.total_mj, e.active_mj, e.tail_mj, t1 - t0);
    } else if (o->radio && !o->quiet)
        fprintf(stderr, "  radio: no packet logs (the %s backend keeps none)\n", backend);
    if (o->summary_json) {
        char *text = cJSON_Print(js);
        FILE *f = fopen(o->summary_json, "w");
        if (!f || !text || fputs(text, f) < 0 || fclose(f))
            fprintf(stderr, "mecbed shell: --summary-json %s: %s\n", o->summary_json, strerror(errno));
        free(text);
    }
    cJSON_Delete(js);
}

/* --radio without --log-dir: the logs go to a private folder removed at the end. */
static void remove_logs(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "mecbed shell: could not remove %s\n", dir);
}

int cmd_shell(int argc, char **argv)
{
    shell_opts o;
    int rc = parse_opts(&o, argc, argv);
    if (rc >= 0)
        return rc;
    shell_nest nest;
    if (shell_nest_detect(&nest, o.topo_file != NULL, o.at || o.peer_at))
        return 2;
    char err[1024];
    static mb_topology topo;
    if (o.spec ? mb_topology_from_link(o.spec, &topo, err, sizeof err)
               : mb_topology_read(o.topo_file, &topo, err, sizeof err)) {
        fprintf(stderr, "mecbed shell: %s\n", err);
        return 2;
    }
    int at, peer;
    if (pick_sites(&o, &topo, &at, &peer))
        return 2;

    for (int i = 0; i < topo.n_links; i++)
        if (mb_net_check(o.backend, &topo.links[i].spec, err, sizeof err)) {
            fprintf(stderr, "mecbed shell: %s\n", err);
            return 1;
        }
    if (geteuid() != 0) {
        fprintf(stderr, "mecbed shell: needs root (network namespaces and links)\n");
        return 1;
    }
    char tmp_logs[64] = "";
    const char *log_dir = o.log_dir;
    if (log_dir && mkdir(log_dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "mecbed shell: --log-dir %s: %s\n", log_dir, strerror(errno));
        return 1;
    }
    if (!log_dir && o.radio && !strcmp(o.backend, "emu")) {
        snprintf(tmp_logs, sizeof tmp_logs, "/tmp/mecbed-shell-XXXXXX");
        if (!mkdtemp(tmp_logs)) {
            fprintf(stderr, "mecbed shell: temporary folder: %s\n", strerror(errno));
            return 1;
        }
        log_dir = tmp_logs;
    }
    install_handlers();
    mb_net *net = NULL;
    mb_net_opts no = {.backend = o.backend, .log_dir = log_dir, .seed = o.seed};
    if (nest.nested) /* the far end is the outer shell's namespace */
        no.host_netns = nest.host_ns, no.host_site = peer, no.addr_octet = nest.octet;
    if (mb_net_up(&topo, &no, &net, err, sizeof err) ||
        (nest.nested && shell_nest_connect(&nest, net, at, peer, err, sizeof err))) {
        fprintf(stderr, "mecbed shell: %s\n", err);
        shell_nest_disconnect(&nest);
        if (net)
            mb_net_down(net);
        if (tmp_logs[0])
            remove_logs(tmp_logs);
        return 1;
    }
    export_env(net, &topo, at, peer, log_dir);
    shell_nest_export(&nest, net, &topo, at, o.peer_cmd != NULL);
    pid_t peer_pid;
    int status = 1;
    double t0 = mb_now(), t1 = t0;
    if (!start_peer(net, &o, peer, &peer_pid)) {
        t0 = mb_now();
        status = run_command(net, &o, at, peer_pid);
        t1 = mb_now();
    }
    if (peer_pid > 0)
        kill(peer_pid, SIGTERM);
    cJSON *js = summarize_links(net, &topo, &o, status, t0, t1);
    double epoch = mb_net_epoch(net);
    char backend[32];
    snprintf(backend, sizeof backend, "%s", mb_net_backend(net));
    shell_nest_disconnect(&nest);
    mb_net_down(net);
    summarize_radio(js, backend, epoch, &topo, &o, at, t0, t1, log_dir);
    if (tmp_logs[0])
        remove_logs(tmp_logs);
    return status;
}
