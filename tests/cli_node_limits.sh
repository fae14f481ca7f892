#!/bin/sh
# Bounded resources of a node (docs/protocol.md, "Limits and timeouts"):
# 200 hanging connections and a slowloris sender do not lock a legitimate,
# authenticated runner out, and the node's memory stays bounded; a session
# that goes idle after its HELLO, or stops halfway through a PLAN, is
# dropped within the idle timeout; the next runner gets through at once.
# Also prints the handshake's cost and the run's time with and without the
# hanging connections (informative: timings are not asserted tightly).
B=${BUILD:-build}/mecbed
command -v python3 >/dev/null || { echo "skip: python3 needed for the raw socket clients"; exit 77; }
[ "$(ulimit -n)" -ge 1024 ] 2>/dev/null || ulimit -n 1024 2>/dev/null || { echo "skip: needs 1024 open files"; exit 77; }
dir=$(mktemp -d /tmp/mb-limits.XXXXXX)
pid=""
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
ports=$(python3 -c '
import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
set -- $ports
cat > "$dir/topo.ini" <<T
[node device]
role = device
type = this
address = 127.0.0.1:$1
[node edge]
role = edge
type = this
address = 127.0.0.1:$2
[link device edge]
spec = rate=1gbit,rtt=1ms
T
cat > "$dir/net.model" <<'M'
mecbed-model 1
name limits_net
seed 5
Input x shape=1,3,32,32
Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(8x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x8) C=const(10,0)
output fc
M
$B keygen -o "$dir/k" || exit 1
$B node --role edge --listen 127.0.0.1:$2 --key-file "$dir/k" --model "$dir/net.model" --idle-timeout 2 \
    --verbose 2> "$dir/node.log" &
pid=$!
run="$B run --model $dir/net.model --policy offload --topology $dir/topo.ini --key-file $dir/k --frames 5 --no-cap"
PYTHONPATH=tests python3 - $2 "$dir/k" "$dir/node.log" $pid "$run" $1 <<'P' || { tail -20 "$dir/node.log"; exit 1; }
import re, socket, subprocess, sys, threading, time
from mbwire import *
port, key, log, pid, run = int(sys.argv[1]), read_key(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
dev_port = int(sys.argv[6])
connect(port).close()
def rss_kb():
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))
def timed_run(what):
    t0 = time.time()
    r = subprocess.run(run.split(), capture_output=True, text=True, timeout=60)
    took = time.time() - t0
    assert r.returncode == 0, "%s: the legitimate run failed: %s" % (what, r.stderr[-600:])
    return took

# the handshake's cost (Python client, this node): mean of 100
t0 = time.time()
for _ in range(100):
    s = connect(port)
    _, _, reply = handshake(s, key, frame(HELLO, hello_payload(graph_hash=1)))
    assert reply[1] == AUTH
    expect_error(s, 3)
    s.close()
hs_ms = (time.time() - t0) * 1e3 / 100
base = timed_run("baseline")
rss0 = rss_kb()

# 200 hanging connections (connected, silent) and a slowloris that trickles
# a HELLO a byte every 0.2 s and reconnects whenever it is cut
stop = False
def slowloris():
    while not stop:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            for b in frame(HELLO, hello_payload()):
                if stop:
                    break
                s.send(bytes([b]))
                time.sleep(0.2)
        except OSError:
            time.sleep(0.05)
# and the device's data port, while the run listens there: up to 30 silent
# sockets, reopened as soon as the runner cuts them
dev_hang = []
def squat():
    while not stop:
        dev_hang[:] = [c for c in dev_hang if c.fileno() >= 0]
        if len(dev_hang) < 30:
            try:
                dev_hang.append(socket.create_connection(("127.0.0.1", dev_port), timeout=0.2))
            except OSError:
                time.sleep(0.005)
        else:
            time.sleep(0.01)
# daemon threads: a failed assertion below must end the test, not leave
# these senders keeping Python alive (a CI run once hung here for an hour)
loris = [threading.Thread(target=slowloris, daemon=True) for _ in range(4)] + [
    threading.Thread(target=squat, daemon=True)]
for t in loris:
    t.start()
hang = []
try:
    for _ in range(200):
        try:
            hang.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    assert len(hang) >= 150, "only %d hanging connections opened" % len(hang)
    time.sleep(0.5)
    loaded = timed_run("200 hanging connections + slowloris")
    rss1 = rss_kb()
finally:
    stop = True
    for t in loris:
        t.join(timeout=5)
for s in hang + dev_hang:
    s.close()
assert dev_hang, "no hanging connection to the device's port was made"
assert rss1 - rss0 < 64 * 1024, "node RSS grew by %d kB under the hanging connections" % (rss1 - rss0)

# model hash of the node's file, from its log (a runner would compute it)
h = int(re.search(r"serves .*net.model \(graph hash ([0-9a-f]+)\)", open(log).read()).group(1), 16)
def session():
    s = connect(port, timeout=10)
    _, _, reply = handshake(s, key, frame(HELLO, hello_payload(graph_hash=h, model=b"limits_net")))
    assert reply[1] == AUTH, reply
    v, t, p, _ = recv_frame(s)
    assert t == HELLO, (t, p)
    idle_ms = struct.unpack("<I", p[33:37])[0]
    assert idle_ms == 2000, idle_ms
    return s
def dropped_after(s):
    t0 = time.time()
    msg = expect_error(s, 7)
    took = time.time() - t0
    assert s.recv(100) == b"", "not closed after the timeout ERROR"
    return took, msg
# an idle session: dropped at the 2 s idle timeout
idle_took, msg = dropped_after(session())
assert 1.5 < idle_took < 4, "idle session dropped after %.2f s (timeout 2 s): %s" % (idle_took, msg)
# a PLAN sent halfway (10 of 1000 bytes): dropped as well
s = session()
s.sendall(header(PLAN, 1000) + bytes(10))
half_took, msg = dropped_after(s)
assert half_took < 4, "half-sent PLAN held the session %.2f s" % half_took
# and the next runner gets through at once (no "node busy")
after = timed_run("right after the dropped sessions")
print("handshake %.2f ms (Python client, mean of 100); run of 5 frames: %.2f s alone, %.2f s with %d "
      "hanging connections + 4 slowloris senders (node RSS %+d kB) + %d on the device's port, %.2f s right after two dropped sessions"
      % (hs_ms, base, loaded, len(hang), rss1 - rss0, len(dev_hang), after))
print("idle session dropped after %.2f s, half-sent PLAN after %.2f s (idle timeout 2 s)" % (idle_took, half_took))
P
kill -0 $pid 2>/dev/null || { echo "the node died"; exit 1; }
exit 0
