/* mecbed: key files and the challenge-response handshake (auth.h,
 * docs/protocol.md). HMAC-SHA256 from OpenSSL's libcrypto (EVP_MAC); the
 * proofs are compared with CRYPTO_memcmp (constant time). */
#define _GNU_SOURCE
#include "mecbed/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "mecbed/platform.h"

#define LABEL_CLIENT "mecbed/2 client"
#define LABEL_SERVER "mecbed/2 server"
#define KEY_FILE_MAX 256

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void mb_key_wipe(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

int mb_key_generate(uint8_t key[MB_KEY_LEN], char *err, size_t errlen)
{
    size_t got = 0;
    while (got < MB_KEY_LEN) {
        ssize_t n = getrandom(key + got, MB_KEY_LEN - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            seterr(err, errlen, "getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int mb_key_write(const char *path, const uint8_t key[MB_KEY_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char hex[2 * MB_KEY_LEN + 2];
    for (int i = 0; i < MB_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * MB_KEY_LEN] = '\n';
    hex[2 * MB_KEY_LEN + 1] = 0;
    /* whatever the umask: owner only */
    int rc = fchmod(fd, 0600) || write(fd, hex, 2 * MB_KEY_LEN + 1) != 2 * MB_KEY_LEN + 1;
    int e = errno;
    mb_key_wipe(hex, sizeof hex);
    if (close(fd) || rc) {
        seterr(err, errlen, "%s: %s", path, strerror(rc ? e : errno));
        unlink(path);
        return -1;
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int mb_key_read(const char *path, uint8_t key[MB_KEY_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        seterr(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
        seterr(err, errlen, "key file %s: not a regular file of at most %d bytes", path, KEY_FILE_MAX);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        seterr(err, errlen, "key file %s: mode %03o lets others read or change it (chmod 600 %s)", path,
               (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return -1;
    }
    char buf[KEY_FILE_MAX + 1];
    ssize_t n = read(fd, buf, KEY_FILE_MAX);
    close(fd);
    if (n < 0) {
        seterr(err, errlen, "key file %s: %s", path, strerror(errno));
        return -1;
    }
    buf[n] = 0;
    const char *p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    int ok = 1;
    for (int i = 0; i < MB_KEY_LEN && ok; i++) {
        int hi = hexval((unsigned char)p[2 * i]), lo = hi < 0 ? -1 : hexval((unsigned char)p[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        if (ok)
            key[i] = (uint8_t)(hi << 4 | lo);
    }
    if (ok) {
        p += 2 * MB_KEY_LEN;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        ok = *p == 0;
    }
    mb_key_wipe(buf, sizeof buf);
    if (!ok) {
        mb_key_wipe(key, MB_KEY_LEN);
        seterr(err, errlen, "key file %s: expected %d hex digits (make one with mecbed keygen -o FILE)", path,
               2 * MB_KEY_LEN);
        return -1;
    }
    return 0;
}

/* The HMAC implementation, fetched once (a provider lookup costs more than
 * the MAC itself); kept for the process's life. */
static EVP_MAC *hmac_impl;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
    hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* HMAC-SHA256(key, label || a || b). 0 or -1. */
static int hmac3(const uint8_t key[MB_KEY_LEN], const char *label, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen, uint8_t out[MB_WIRE_MAC])
{
    pthread_once(&hmac_once, hmac_fetch);
    EVP_MAC_CTX *ctx = hmac_impl ? EVP_MAC_CTX_new(hmac_impl) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, MB_KEY_LEN, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)label, strlen(label)) &&
             EVP_MAC_update(ctx, a, alen) && (!blen || EVP_MAC_update(ctx, b, blen)) &&
             EVP_MAC_final(ctx, out, &outl, MB_WIRE_MAC) && outl == MB_WIRE_MAC;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* The transcript: every handshake frame as sent, header included. */
static void transcript_add(mb_wbuf *t, int type, uint32_t frame, const uint8_t *p, size_t len)
{
    uint8_t hdr[MB_WIRE_HDR_LEN];
    mb_wire_hdr_encode(hdr, type, (uint32_t)len, frame);
    mb_wbuf_bytes(t, hdr, sizeof hdr);
    mb_wbuf_bytes(t, p, len);
}

static int send_add(int fd, mb_wbuf *t, int type, const uint8_t *p, size_t len, char *err, size_t errlen)
{
    transcript_add(t, type, 0, p, len);
    return mb_wire_send(fd, type, 0, p, len, err, errlen);
}

/* A frame of an allowed type, or an ERROR from the other side (quoted in
 * err, its code in *code). 0 for the frame; -1 otherwise. */
static int recv_or_error(int fd, uint32_t allowed, double deadline, mb_wire_hdr *h, uint8_t **p, int *code,
                         char *err, size_t errlen)
{
    int rc = mb_wire_recv(fd, allowed | MB_MSG_BIT(MB_MSG_ERROR), 0, deadline, h, p, err, errlen);
    if (rc)
        return rc;
    if (h->type == MB_MSG_ERROR) {
        char m[MB_WIRE_MAX_STR + 1];
        int c = 0;
        if (mb_error_decode(*p, h->len, &c, m, sizeof m))
            snprintf(m, sizeof m, "malformed ERROR frame");
        if (code)
            *code = c;
        seterr(err, errlen, "%s", m);
        free(*p);
        *p = NULL;
        return -1;
    }
    return 0;
}

int mb_auth_client(int fd, const mb_auth *a, mb_hello *hl, double deadline, int *code, char *err,
                   size_t errlen)
{
    if (code)
        *code = 0;
    char e[512];
    if (mb_key_generate(hl->nonce, err, errlen))
        return -1;
    mb_wbuf t, b;
    mb_wbuf_init(&t);
    mb_wbuf_init(&b);
    uint8_t *p = NULL;
    mb_wire_hdr h;
    uint8_t mac[MB_WIRE_MAC], want[MB_WIRE_MAC];
    int rc = -1;
    if (mb_hello_encode(hl, &b) || send_add(fd, &t, MB_MSG_HELLO, b.p, b.len, err, errlen))
        goto out;
    int r = recv_or_error(fd, MB_MSG_BIT(MB_MSG_CHALLENGE), deadline, &h, &p, code, e, sizeof e);
    if (r) {
        if (r == MB_WIRE_EVERSION)
            mb_wire_send_error(fd, 0, MB_WERR_VERSION, e);
        seterr(err, errlen, "%s", e);
        goto out;
    }
    if (h.len != 1 + MB_WIRE_NONCE || p[0] > MB_AUTH_HMAC_SHA256) {
        seterr(err, errlen, "malformed CHALLENGE");
        mb_wire_send_error(fd, 0, MB_WERR_PROTOCOL, err);
        goto out;
    }
    int mode = p[0];
    transcript_add(&t, MB_MSG_CHALLENGE, h.frame, p, h.len);
    if (mode == MB_AUTH_NONE && a->on) {
        seterr(err, errlen, "it runs without authentication (--insecure-no-auth) and this side has a key: "
                            "refusing an unauthenticated node (give it the key with --key-file)");
        mb_wire_send_error(fd, 0, MB_WERR_AUTH, "this runner requires authentication");
        goto out;
    }
    if (mode == MB_AUTH_HMAC_SHA256 && !a->on) {
        seterr(err, errlen, "it requires authentication: give this side its key (--key-file)");
        mb_wire_send_error(fd, 0, MB_WERR_AUTH, "no key on this side");
        goto out;
    }
    memset(mac, 0, sizeof mac);
    if (a->on && (t.oom || hmac3(a->key, LABEL_CLIENT, t.p, t.len, NULL, 0, mac))) {
        seterr(err, errlen, "HMAC failed");
        goto out;
    }
    if (send_add(fd, &t, MB_MSG_AUTH, mac, sizeof mac, err, errlen))
        goto out;
    free(p);
    p = NULL;
    if (recv_or_error(fd, MB_MSG_BIT(MB_MSG_AUTH), deadline, &h, &p, code, err, errlen))
        goto out;
    if (h.len != MB_WIRE_MAC) {
        seterr(err, errlen, "malformed AUTH");
        goto out;
    }
    if (a->on) {
        /* t holds HELLO, CHALLENGE and our AUTH frame: the server's MAC covers them */
        if (t.oom || hmac3(a->key, LABEL_SERVER, t.p, t.len, NULL, 0, want)) {
            seterr(err, errlen, "HMAC failed");
            goto out;
        }
        if (CRYPTO_memcmp(want, p, MB_WIRE_MAC)) {
            seterr(err, errlen, "it failed to prove the key (a different key, or not a mecbed node of this run)");
            mb_wire_send_error(fd, 0, MB_WERR_AUTH, "authentication failed");
            goto out;
        }
    }
    rc = 0;
out:
    free(p);
    mb_wbuf_free(&t);
    mb_wbuf_free(&b);
    return rc;
}

int mb_auth_server(int fd, const mb_auth *a, double deadline, mb_hello *hl, char *err, size_t errlen)
{
    mb_wbuf t;
    mb_wbuf_init(&t);
    uint8_t *hello = NULL, *p = NULL;
    mb_wire_hdr h, hh;
    memset(&h, 0, sizeof h);
    uint8_t ch[1 + MB_WIRE_NONCE], want[MB_WIRE_MAC], mine[MB_WIRE_MAC];
    int rc = -1, code = MB_WERR_PROTOCOL;
    int r = mb_wire_recv(fd, MB_MSG_BIT(MB_MSG_HELLO), 0, deadline, &hh, &hello, err, errlen);
    if (r) {
        if (r == MB_WIRE_EVERSION)
            code = MB_WERR_VERSION;
        goto fail;
    }
    /* Kept as bytes: nothing in it is looked at before the proof. */
    transcript_add(&t, MB_MSG_HELLO, hh.frame, hello, hh.len);
    ch[0] = a->on ? MB_AUTH_HMAC_SHA256 : MB_AUTH_NONE;
    if (mb_key_generate(ch + 1, err, errlen) || send_add(fd, &t, MB_MSG_CHALLENGE, ch, sizeof ch, err, errlen))
        goto fail;
    r = recv_or_error(fd, MB_MSG_BIT(MB_MSG_AUTH), deadline, &h, &p, NULL, err, errlen);
    if (r || h.len != MB_WIRE_MAC) {
        if (!r)
            seterr(err, errlen, "malformed AUTH");
        if (r == MB_WIRE_EVERSION)
            code = MB_WERR_VERSION;
        if (r == -1 && h.type == MB_MSG_ERROR) {
            rc = -1; /* the client gave up: nothing to answer */
            goto out;
        }
        goto fail;
    }
    if (a->on) {
        if (t.oom || hmac3(a->key, LABEL_CLIENT, t.p, t.len, NULL, 0, want)) {
            seterr(err, errlen, "HMAC failed");
            goto fail;
        }
        if (CRYPTO_memcmp(want, p, MB_WIRE_MAC)) {
            seterr(err, errlen, "authentication failed");
            code = MB_WERR_AUTH;
            goto fail;
        }
    }
    transcript_add(&t, MB_MSG_AUTH, h.frame, p, h.len);
    /* Authenticated: now the HELLO may be read. */
    if (mb_hello_decode(hello, hh.len, hl, err, errlen)) {
        code = hl->proto != MB_WIRE_VERSION && hl->proto ? MB_WERR_VERSION : MB_WERR_PROTOCOL;
        goto fail;
    }
    memset(mine, 0, sizeof mine);
    if (a->on && (t.oom || hmac3(a->key, LABEL_SERVER, t.p, t.len, NULL, 0, mine))) {
        seterr(err, errlen, "HMAC failed");
        goto fail;
    }
    if (mb_wire_send(fd, MB_MSG_AUTH, 0, mine, sizeof mine, err, errlen))
        goto out;
    rc = 0;
    goto out;
fail:
    mb_wire_send_error(fd, 0, code, err);
out:
    free(hello);
    free(p);
    mb_wbuf_free(&t);
    return rc;
}
