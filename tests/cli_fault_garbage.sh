#!/bin/sh
# Fault and attack: garbage, unauthenticated clients and a peer of another
# protocol version against a node. Each gets a precise ERROR frame before
# anything past the handshake is parsed; the node keeps serving. The Python
# side (tests/mbwire.py) implements the handshake independently.
B=${BUILD:-build}/mecbed
command -v python3 >/dev/null || { echo "skip: python3 needed for the raw socket client"; exit 77; }
B=$B . "$(dirname "$0")/lib_node.sh"
node_setup mb-garbage
port=$(free_ports 1)
node_key "$dir/k"
start_node "$dir/node.log" --role edge --listen 127.0.0.1:$port --key-file "$dir/k" --verbose
pid=$node_pid
PYTHONPATH=tests python3 - $port "$dir/k" <<'P' || { cat "$dir/node.log"; exit 1; }
import socket, struct, sys
from mbwire import *
port, key = int(sys.argv[1]), read_key(sys.argv[2])
# 1) random bytes: an ERROR frame, then the node closes
s = connect(port); s.sendall(bytes((i * 37 + 11) & 255 for i in range(64)))
v, t, p, _ = recv_frame(s)
assert t == ERROR and b"magic" in p, p
assert s.recv(4096) == b"", "the node kept the connection open after its ERROR"
s.close()
# 2) a valid header announcing a 4 GiB HELLO: refused without reading it
s = connect(port); s.sendall(header(HELLO, 0xffffffff))
assert "exceeds" in expect_error(s, 1)
s.close()
# 3) a truncated HELLO, then silence: cut at the handshake deadline (3 s), not held
s = connect(port); s.sendall(header(HELLO, 40) + b"\x01\x00")
s.settimeout(10)
t0 = time.time()
try:
    while s.recv(4096):
        pass
except OSError:
    pass
took = time.time() - t0
assert took < 5, "a half-sent HELLO held the node for %.1f s" % took
s.close()
# 4) another protocol version: ERROR code 2 (version), naming both
s = connect(port); s.sendall(frame(HELLO, b"x" * 10, version=1))
msg = expect_error(s, 2)
assert "version 1" in msg and "3" in msg, msg
s.close()
# 5) a PLAN instead of the handshake: refused as unexpected, never parsed
s = connect(port); s.sendall(frame(PLAN, b"\x00" * 64))
assert "unexpected PLAN" in expect_error(s, 1)
s.close()
# 6) HELLO, then a PLAN instead of AUTH: the same
s = connect(port); s.sendall(frame(HELLO, hello_payload()))
v, t, p, _ = recv_frame(s); assert t == CHALLENGE and p[0] == 1, (t, p)
s.sendall(frame(PLAN, b"\x00" * 64))
assert "unexpected PLAN" in expect_error(s, 1)
s.close()
# 7) no key (a zero answer) and a wrong key: ERROR auth; the PLAN right behind is never read
for k in (None, bytes(32), key[::-1]):
    s = connect(port)
    hello = frame(HELLO, hello_payload())
    s.sendall(hello)
    v, t, chal, raw = recv_frame(s)
    m = mac(k, b"mecbed/2 client", hello + raw) if k else bytes(32)
    s.sendall(frame(AUTH, m) + frame(PLAN, b"\xff" * 200))
    assert expect_error(s, 8) == "authentication failed"
    s.close()
# 8) the right key: the node proves the key back (checked in handshake), then
#    refuses a model it does not serve without naming a file or a hash
s = connect(port)
hello = frame(HELLO, hello_payload(graph_hash=0x1234, model=b"/etc/shadow"))
transcript, auth, reply = handshake(s, key, hello)
assert reply[1] == AUTH, reply
msg = expect_error(s, 3)
assert "not available" in msg and "shadow" not in msg and "1234" not in msg, msg
s.close()
# 9) a replayed answer: the same HELLO and AUTH on a new connection fail (new nonce)
s = connect(port)
s.sendall(hello)
v, t, p, _ = recv_frame(s); assert t == CHALLENGE
s.sendall(auth)
assert expect_error(s, 8) == "authentication failed"
s.close()
print("garbage, other versions, missing, wrong and replayed proofs refused with ERROR frames")
P
sleep 0.2
kill -0 $pid 2>/dev/null || { echo "the node died on garbage"; exit 1; }
# nothing past the handshake was parsed for the unauthenticated clients
grep -Eq "plan epoch|malformed PLAN|PLAN invalid|PLAN:|PLAN step" "$dir/node.log" && { echo "the node looked at a PLAN:"; cat "$dir/node.log"; exit 1; }
grep -q "shadow" "$dir/node.log" && { echo "the node used a peer's path:"; cat "$dir/node.log"; exit 1; }
# The runner against a node of another protocol version (a Python stand-in
# answering in version 4): the run fails naming the versions, and the
# stand-in gets ERROR code 2 (version) from the runner.
set -- $(free_ports 2)
loopback_topo "$dir/topo.ini" "rate=100mbit,rtt=1ms" $1 $2
PYTHONPATH=tests python3 - $2 > "$dir/fake.txt" 2>&1 <<'P' &
import socket, sys
from mbwire import *
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(4); l.settimeout(20)
c, _ = l.accept(); c.settimeout(10)
recv_frame(c)                                   # the runner's HELLO
c.sendall(frame(CHALLENGE, bytes(33), version=4))
print("got", WERR[expect_error(c, 2) and 2])
P
fake=$!
$B run --model tiny_yolov2 --policy offload --topology "$dir/topo.ini" --key-file "$dir/k" --frames 1 \
    > /dev/null 2> "$dir/run.txt" && { echo "a run against a version-4 node succeeded"; exit 1; }
wait $fake || { echo "the version-4 stand-in did not get a version ERROR:"; cat "$dir/fake.txt" "$dir/run.txt"; exit 1; }
grep -q "version 4, this mecbed speaks 3" "$dir/run.txt" || { echo "version mismatch not reported:"; cat "$dir/run.txt"; exit 1; }
echo "runner vs a version-4 node: $(grep -o 'version 4.*' "$dir/run.txt")"
exit 0
