/* mecbed: authenticated connections between the runner and its nodes
 * (docs/protocol.md, "Authentication"). Every connection to a node (the
 * runner's control connection, a peer's data connection) and to the
 * device's data port starts with a challenge-response over a shared secret
 * key of MB_KEY_LEN random bytes:
 *
 *   client -> server  HELLO      (its nonce inside; not parsed by the server yet)
 *   server -> client  CHALLENGE  (mode, the server's nonce)
 *   client -> server  AUTH       HMAC-SHA256(key, "mecbed/2 client" || HELLO || CHALLENGE)
 *   server -> client  AUTH       HMAC-SHA256(key, "mecbed/2 server" || HELLO || CHALLENGE || client MAC)
 *
 * (each message as its whole frame, header included). The server checks the
 * client's MAC in constant time and only then decodes the HELLO; the client
 * checks the server's MAC before it sends anything else (mutual). A replayed
 * AUTH fails: the server's nonce is new on every connection. */
#ifndef MECBED_AUTH_H
#define MECBED_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "mecbed/wire.h"

#define MB_KEY_LEN 32

/* A side's credentials: on = 1 with a key, or 0 (--insecure-no-auth: no
 * key; then the other side must have none either). */
typedef struct mb_auth {
    int on;
    uint8_t key[MB_KEY_LEN];
} mb_auth;

/* MB_KEY_LEN bytes from getrandom(2). 0, or -1 with err. */
int mb_key_generate(uint8_t key[MB_KEY_LEN], char *err, size_t errlen);
/* Create path (it must not exist) with mode 0600 holding the key as 64 hex
 * digits and a newline. 0, or -1 with err. */
int mb_key_write(const char *path, const uint8_t key[MB_KEY_LEN], char *err, size_t errlen);
/* Read a key file: a regular file, not readable or writable by group or
 * others, holding 64 hex digits (surrounding white space allowed). 0, or
 * -1 with err naming the file. */
int mb_key_read(const char *path, uint8_t key[MB_KEY_LEN], char *err, size_t errlen);
/* Overwrite secret bytes (not optimised away). */
void mb_key_wipe(void *p, size_t n);

/* Client side: send hl (its nonce is filled in here), answer the
 * challenge, check the server's proof; all before `deadline` (mb_now()
 * seconds). 0, or -1 with err (an ERROR from the server is quoted, with
 * *code set to its code when code is not NULL; else *code = 0). On a
 * failure the client sends ERROR where it can. */
int mb_auth_client(int fd, const mb_auth *a, mb_hello *hl, double deadline, int *code, char *err,
                   size_t errlen);
/* Server side: receive a HELLO, challenge, check the client's answer, and
 * only then decode the HELLO into *hl; then prove the key back. On any
 * failure sends ERROR (MB_WERR_VERSION for another protocol version,
 * MB_WERR_AUTH for a missing or wrong proof, MB_WERR_PROTOCOL for the
 * rest) and returns -1 with err (for the log). */
int mb_auth_server(int fd, const mb_auth *a, double deadline, mb_hello *hl, char *err,
                   size_t errlen);

#endif
