#!/bin/sh
# Fault: the edge node is killed while the input is crossing the link. The
# device must notice within the timeout, report the frame as failed naming
# the edge, complete it locally (--fallback local) with the right output, and
# leave nothing behind.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces, TUN)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clikill.XXXXXX)
run=$(printf 'k%05d' $(($$ % 100000)))
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
cat > "$dir/net.model" <<'M'
mecbed-model 1
name clikill_net
seed 3
Input x shape=1,3,128,128
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
output gap
M
# 196 KB of input at 500 kbit/s: about 3 s on the wire
start=$(date +%s)
$B run --model "$dir/net.model" --policy offload --link rate=500kbit,rtt=20ms --warmup 0 --frames 1 \
    --timeout 6 --fallback local --json --run-id $run > "$dir/out.json" 2> "$dir/err.txt" &
pid=$!
# wait for the edge node, let the transfer start, then kill it
node=""
for i in $(seq 1 100); do
    # the node itself, not a set-up command that ran in the namespace
    for p in $(ip netns pids mecbed-$run-edge0 2>/dev/null); do
        tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q "node --role" && node=$p
    done
    [ -n "$node" ] && break
    sleep 0.1
done
[ -n "$node" ] || { echo "the edge node never started"; cat "$dir/err.txt"; exit 1; }
# the runner's control and data connections are up: the frame starts at once
for i in $(seq 1 100); do
    [ "$(ip netns exec mecbed-$run-edge0 ss -Htn state established 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 0.1
done
sleep 0.8
kill -9 "$node"
wait "$pid"
rc=$?
pid=""
took=$(( $(date +%s) - start ))
python3 - "$dir/out.json" <<'P' || { cat "$dir/err.txt"; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
f = r["per_frame"][0]
assert r["failed_frames"] == 1 and r["fallback_frames"] == 1, r
assert not f["ok"] and f["fell_back"], f
assert "edge0" in f["error"], f["error"]
assert r["output_match"] is True, "local completion must give the unsplit output"
# detected well within the 6 s timeout: the connections drop when the node dies
assert f["latency_ms"] < 6000, f["latency_ms"]
print("detected and completed locally after %.0f ms: %s" % (f["latency_ms"], f["error"]))
P
[ $rc -eq 0 ] || { echo "a frame completed locally should not fail the run (exit $rc)"; exit 1; }
[ $took -lt 30 ] || { echo "took $took s"; exit 1; }
ip netns list | grep -q "mecbed-$run" && { echo "namespaces left behind"; exit 1; }
ip -o link show | grep -q "mb$run" && { echo "interfaces left behind"; exit 1; }
ls /sys/fs/cgroup/cpu 2>/dev/null | grep -q "mecbed-$run" && { echo "cgroups left behind"; exit 1; }
exit 0
