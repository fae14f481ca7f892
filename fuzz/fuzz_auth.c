/* libFuzzer harness: a node's side of the authenticated handshake
 * (runtime/auth.c, mb_auth_server) fed arbitrary client bytes over a socket
 * pair, the way a node's listening port sees them. First byte: bit 0 set =
 * the node runs with --insecure-no-auth (no key: a well-formed HELLO is then
 * decoded and accepted); else it holds a key. Invariant: a node with a key
 * never accepts an input, since answering its challenge needs the key (the
 * challenge's nonce is fresh on every connection, so no input replays). */
#include "fuzz_util.h"

#include <fcntl.h>
#include <sys/socket.h>

#include "mecbed/auth.h"
#include "mecbed/platform.h"
#include "mecbed/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return 0;
    /* the client's bytes wait in the socket, then its side is closed for
     * writing: the node reads them and then end of file, never blocks */
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    size_t off = 0;
    while (off < size - 1) {
        ssize_t w = write(sv[0], data + 1 + off, size - 1 - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    mb_auth a;
    memset(&a, 0, sizeof a);
    a.on = !(data[0] & 1);
    for (int i = 0; i < MB_KEY_LEN; i++)
        a.key[i] = (uint8_t)(i * 37 + 11);
    mb_hello hl;
    char err[512];
    int rc = mb_auth_server(sv[1], &a, mb_now() + 2.0, &hl, err, sizeof err);
    if (rc == 0 && a.on)
        abort(); /* authenticated without the key */
    close(sv[0]);
    close(sv[1]);
    return 0;
}
