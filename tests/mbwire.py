"""A second, independent implementation of mecbed's wire protocol handshake
(docs/protocol.md), for the command tests: frames, HELLO, and the HMAC-SHA256
challenge-response from Python's own hmac/hashlib."""
import hashlib
import hmac
import os
import socket
import struct
import time

MAGIC = b"MBWP"
VERSION = 3
HELLO, PLAN, READY, FRAME, TENSOR, RESULT, ERROR, BYE, CHALLENGE, AUTH, PING = range(1, 12)
ROLE_RUNNER, ROLE_NODE, ROLE_PEER = 0, 1, 2
WERR = {1: "protocol", 2: "version", 3: "model", 4: "plan", 5: "compute", 6: "peer", 7: "timeout", 8: "auth"}


def header(mtype, length, frame=0, version=VERSION):
    return MAGIC + bytes([version, mtype, 0, 0]) + struct.pack("<II", length, frame)


def frame(mtype, payload=b"", version=VERSION):
    return header(mtype, len(payload), 0, version) + payload


def hello_payload(role=ROLE_RUNNER, graph_hash=0, model=b"", nonce=None, site=0xFFFF, epoch=0):
    nonce = nonce if nonce is not None else os.urandom(32)
    return (struct.pack("<HBHIQqQI", VERSION, role, site, epoch, graph_hash, 0, 0, 0) + nonce
            + struct.pack("<H", len(model)) + model)


def read_key(path):
    return bytes.fromhex(open(path).read().strip())


def connect(port, timeout=5):
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on port %d" % port)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def recv_frame(s):
    """(version, type, payload, raw frame bytes)."""
    h = recv_exact(s, 16)
    assert h[:4] == MAGIC, ("not a mecbed frame", h)
    length = struct.unpack("<I", h[8:12])[0]
    p = recv_exact(s, length) if length else b""
    return h[4], h[5], p, h + p


def error_of(payload):
    code = struct.unpack("<H", payload[:2])[0]
    n = struct.unpack("<H", payload[2:4])[0]
    return code, payload[4:4 + n].decode("utf-8", "replace")


def mac(key, label, transcript):
    return hmac.new(key, label + transcript, hashlib.sha256).digest()


def handshake(s, key, hello=None, auth_override=None):
    """Client side. Returns (transcript, our AUTH frame, the server's reply frame tuple)."""
    hello = hello if hello is not None else frame(HELLO, hello_payload())
    s.sendall(hello)
    v, t, p, raw = recv_frame(s)
    if t == ERROR:
        return hello + raw, None, (v, t, p, raw)
    assert t == CHALLENGE and len(p) == 33, (t, p)
    transcript = hello + raw
    m = auth_override if auth_override is not None else (
        mac(key, b"mecbed/2 client", transcript) if key else bytes(32))
    auth = frame(AUTH, m)
    s.sendall(auth)
    reply = recv_frame(s)
    if key and reply[1] == AUTH:
        want = mac(key, b"mecbed/2 server", transcript + auth)
        assert hmac.compare_digest(want, reply[2]), "the node's proof does not verify"
    return transcript, auth, reply


def expect_error(s, code):
    v, t, p, _ = recv_frame(s)
    assert t == ERROR, ("expected ERROR", t, p)
    c, msg = error_of(p)
    assert c == code, ("expected %s error, got %s: %s" % (WERR.get(code), WERR.get(c), msg))
    return msg
