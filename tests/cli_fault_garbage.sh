#!/bin/sh
# Fault: a peer sends garbage to a node. The node answers with an ERROR
# frame, closes that connection, and keeps serving (no crash, no hang).
B=${BUILD:-build}/mecbed
command -v python3 >/dev/null || { echo "skip: python3 needed for the raw socket client"; exit 77; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$B node --role edge --listen 127.0.0.1:$port &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
python3 - $port <<'P' || exit 1
import socket, struct, sys, time
port = int(sys.argv[1])
def connect():
    for _ in range(100):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            time.sleep(0.05)
    raise SystemExit("node never listened")
def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
def reply(s):
    """One whole frame: the 16-byte header, then its payload length."""
    hdr = recv_exact(s, 16)
    if len(hdr) < 16:
        return hdr
    (n,) = struct.unpack("<I", hdr[8:12])
    assert n < 65536, ("ERROR frame with a payload of", n)
    body = recv_exact(s, n)
    assert len(body) == n, ("ERROR frame cut short", hdr, body)
    return hdr + body
def closed(s, what):
    """After its ERROR frame the node closes the connection: the next read
    sees end of file (or a reset), not more data and not a silence."""
    s.settimeout(5)
    try:
        rest = s.recv(4096)
    except ConnectionResetError:
        return
    except socket.timeout:
        raise SystemExit("%s: the node kept the connection open after its ERROR frame" % what)
    assert rest == b"", ("%s: data after the ERROR frame" % what, rest[:32])
# 1) random bytes
s = connect(); s.sendall(bytes((i * 37 + 11) & 255 for i in range(64)))
r = reply(s)
assert r[:4] == b"MBWP" and r[5] == 7, ("expected an ERROR frame", r[:16])
closed(s, "random bytes")
s.close()
# 2) a valid header announcing a 4 GiB HELLO: refused without reading it
s = connect(); s.sendall(b"MBWP" + bytes([1, 1, 0, 0]) + struct.pack("<II", 0xffffffff, 0))
r = reply(s)
assert r[:4] == b"MBWP" and r[5] == 7 and b"exceeds" in r, r
closed(s, "4 GiB HELLO")
s.close()
# 3) a truncated HELLO, then silence: the node must not wait forever on it
# (it drops the connection at its 10 s HELLO deadline, docs/protocol.md)
s = connect(); s.sendall(b"MBWP" + bytes([1, 1, 0, 0]) + struct.pack("<II", 40, 0) + b"\x01\x00")
t0 = time.monotonic()
s.settimeout(20)
try:
    while s.recv(4096):
        pass
except ConnectionResetError:
    pass
except socket.timeout:
    raise SystemExit("a half-sent HELLO held the connection for 20 s")
held = time.monotonic() - t0
assert 5 <= held <= 15, ("half-sent HELLO dropped after %.1f s, expected at the 10 s deadline" % held)
s.close()
print("garbage refused with ERROR frames")
P
sleep 0.2
kill -0 $pid 2>/dev/null || { echo "the node died on garbage"; exit 1; }
exit 0
