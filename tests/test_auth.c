/* The handshake (auth.h) over a socket pair, both sides in this process:
 * the right key passes both ways; a wrong key, no key, a keyed client
 * against an unauthenticated server, and a replayed answer all fail with
 * ERROR auth before the server decodes the HELLO; key files are written
 * 0600 and refused when others can read them. Prints the handshake's cost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mecbed/auth.h"
#include "mecbed/platform.h"
#include "mecbed/wire.h"

typedef struct srv_arg {
    int fd;
    mb_auth auth;
    int rc;
    mb_hello hl;
    char err[512];
} srv_arg;

static void *server_main(void *p)
{
    srv_arg *a = p;
    a->rc = mb_auth_server(a->fd, &a->auth, mb_now() + 5, &a->hl, a->err, sizeof a->err);
    shutdown(a->fd, SHUT_WR); /* as a node closes after its answer */
    return NULL;
}

/* One handshake: 0 or -1 for each side; err of the client. */
static void run_pair(const mb_auth *client, const mb_auth *server, int *crc, int *src, int *code,
                     char *cerr, size_t cerrlen, srv_arg *out)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv_arg *a = calloc(1, sizeof *a);
    a->fd = sv[1];
    a->auth = *server;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, server_main, a), 0);
    mb_hello hl = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_RUNNER, .site = -1, .graph_hash = 77};
    snprintf(hl.model, sizeof hl.model, "resnet18");
    *crc = mb_auth_client(sv[0], client, &hl, mb_now() + 5, code, cerr, cerrlen);
    shutdown(sv[0], SHUT_WR);
    pthread_join(th, NULL);
    *src = a->rc;
    if (out)
        *out = *a;
    close(sv[0]);
    close(sv[1]);
    free(a);
}

static void test_right_key(void **state)
{
    (void)state;
    mb_auth k = {.on = 1};
    char err[512];
    assert_int_equal(mb_key_generate(k.key, err, sizeof err), 0);
    int crc, src, code;
    srv_arg out;
    run_pair(&k, &k, &crc, &src, &code, err, sizeof err, &out);
    if (crc || src)
        fail_msg("client %d (%s), server %d (%s)", crc, err, src, out.err);
    /* the server decoded the HELLO only after the proof: it is all there */
    assert_int_equal(out.hl.graph_hash, 77);
    assert_string_equal(out.hl.model, "resnet18");
    /* both without a key (--insecure-no-auth on both sides) */
    mb_auth none = {.on = 0};
    run_pair(&none, &none, &crc, &src, &code, err, sizeof err, NULL);
    assert_int_equal(crc, 0);
    assert_int_equal(src, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    mb_auth k = {.on = 1}, other = {.on = 1}, none = {.on = 0};
    char err[512];
    assert_int_equal(mb_key_generate(k.key, err, sizeof err), 0);
    assert_int_equal(mb_key_generate(other.key, err, sizeof err), 0);
    int crc, src, code;
    srv_arg out;
    /* wrong key: ERROR auth from the server, which never decoded the HELLO */
    run_pair(&other, &k, &crc, &src, &code, err, sizeof err, &out);
    assert_int_equal(crc, -1);
    assert_int_equal(src, -1);
    assert_int_equal(code, MB_WERR_AUTH);
    assert_string_equal(err, "authentication failed");
    assert_int_equal(out.hl.graph_hash, 0);
    /* no key against a keyed server */
    run_pair(&none, &k, &crc, &src, &code, err, sizeof err, &out);
    assert_int_equal(crc, -1);
    assert_int_equal(src, -1);
    assert_non_null(strstr(err, "requires authentication"));
    assert_int_equal(out.hl.graph_hash, 0);
    /* a keyed client refuses a server without authentication */
    run_pair(&k, &none, &crc, &src, &code, err, sizeof err, &out);
    assert_int_equal(crc, -1);
    assert_non_null(strstr(err, "without authentication"));
}

/* Replay: record a good client's HELLO and AUTH, send them again on a new
 * connection; the new challenge makes the old answer wrong. */
static void test_replay(void **state)
{
    (void)state;
    mb_auth k = {.on = 1};
    char err[512];
    assert_int_equal(mb_key_generate(k.key, err, sizeof err), 0);
    uint8_t rec[2][4200];
    size_t reclen[2] = {0, 0};
    for (int round = 0; round < 2; round++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        srv_arg *a = calloc(1, sizeof *a);
        a->fd = sv[1];
        a->auth = k;
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, server_main, a), 0);
        if (round == 0) {
            /* a man in the middle's view: proxy a real client, keep its frames */
            int cv[2];
            assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, cv), 0);
            mb_hello hl = {.proto = MB_WIRE_VERSION, .role = MB_WIRE_ROLE_RUNNER, .site = -1};
            /* the client's frames: HELLO then AUTH, captured before they reach the server */
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                close(cv[1]);
                _exit(mb_auth_client(cv[0], &k, &hl, mb_now() + 5, NULL, err, sizeof err) ? 1 : 0);
            }
            close(cv[0]);
            for (int f = 0; f < 2; f++) {
                mb_wire_hdr h;
                uint8_t *p = NULL;
                assert_int_equal(mb_wire_recv(cv[1], ~0u, 0, mb_now() + 5, &h, &p, err, sizeof err), 0);
                mb_wire_hdr_encode(rec[f], h.type, h.len, h.frame);
                memcpy(rec[f] + MB_WIRE_HDR_LEN, p, h.len);
                reclen[f] = MB_WIRE_HDR_LEN + h.len;
                free(p);
                assert_int_equal(write(sv[0], rec[f], reclen[f]), (ssize_t)reclen[f]);
                /* the challenge (then the server's AUTH) back to the client */
                uint8_t *q = NULL;
                assert_int_equal(mb_wire_recv(sv[0], ~0u, 0, mb_now() + 5, &h, &q, err, sizeof err), 0);
                mb_wire_send(cv[1], h.type, h.frame, q, h.len, err, sizeof err);
                free(q);
            }
            int st = 0;
            waitpid(pid, &st, 0);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            close(cv[1]);
        } else {
            /* the replay */
            assert_int_equal(write(sv[0], rec[0], reclen[0]), (ssize_t)reclen[0]);
            mb_wire_hdr h;
            uint8_t *q = NULL;
            assert_int_equal(mb_wire_recv(sv[0], MB_MSG_BIT(MB_MSG_CHALLENGE), 0, mb_now() + 5, &h, &q, err,
                                          sizeof err), 0);
            free(q);
            assert_int_equal(write(sv[0], rec[1], reclen[1]), (ssize_t)reclen[1]);
        }
        shutdown(sv[0], SHUT_WR);
        pthread_join(th, NULL);
        if (round == 0 && a->rc)
            fail_msg("the proxied handshake failed: %s", a->err);
        if (round == 1) {
            assert_int_equal(a->rc, -1);
            assert_string_equal(a->err, "authentication failed");
        }
        close(sv[0]);
        close(sv[1]);
        free(a);
    }
}

static void test_key_files(void **state)
{
    (void)state;
    char path[64], err[512];
    snprintf(path, sizeof path, "/tmp/mb-key-%d", (int)getpid());
    unlink(path);
    uint8_t k[MB_KEY_LEN], r[MB_KEY_LEN];
    assert_int_equal(mb_key_generate(k, err, sizeof err), 0);
    mode_t old = umask(0);
    assert_int_equal(mb_key_write(path, k, err, sizeof err), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mb_key_read(path, r, err, sizeof err), 0);
    assert_memory_equal(k, r, MB_KEY_LEN);
    /* never overwritten */
    assert_int_equal(mb_key_write(path, k, err, sizeof err), -1);
    /* others may read it: refused */
    chmod(path, 0640);
    assert_int_equal(mb_key_read(path, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "chmod 600"));
    /* not a key */
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("0123456789abcdef\n", f);
    fclose(f);
    assert_int_equal(mb_key_read(path, r, err, sizeof err), -1);
    assert_non_null(strstr(err, "64 hex digits"));
    unlink(path);
    assert_int_equal(mb_key_read("/dev/zero", r, err, sizeof err), -1);
}

/* Not a check: what a handshake costs (two threads, a socket pair). */
static void test_cost(void **state)
{
    (void)state;
    mb_auth k = {.on = 1};
    char err[512];
    assert_int_equal(mb_key_generate(k.key, err, sizeof err), 0);
    int n = 200, crc, src, code;
    double t0 = mb_now();
    for (int i = 0; i < n; i++) {
        run_pair(&k, &k, &crc, &src, &code, err, sizeof err, NULL);
        assert_int_equal(crc | src, 0);
    }
    double with = (mb_now() - t0) / n;
    mb_auth none = {.on = 0};
    t0 = mb_now();
    for (int i = 0; i < n; i++)
        run_pair(&none, &none, &crc, &src, &code, err, sizeof err, NULL);
    double without = (mb_now() - t0) / n;
    printf("handshake: %.1f us with HMAC-SHA256, %.1f us without (socket pair, thread start included)\n",
           with * 1e6, without * 1e6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_right_key), cmocka_unit_test(test_refusals), cmocka_unit_test(test_replay),
        cmocka_unit_test(test_key_files), cmocka_unit_test(test_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
