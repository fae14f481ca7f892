#!/bin/sh
# Fault: the device's link has a 5 s outage (a trace with zero capacity)
# during a stream. The frame caught in it fails within the timeout, later
# frames fail at once (the session is broken), every one of them is
# completed locally with the right output; nothing hangs or is left behind.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces, TUN)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clioutage.XXXXXX)
run=$(printf 'o%05d' $(($$ % 100000)))
trap 'rm -rf "$dir"' EXIT
cat > "$dir/net.model" <<'M'
mecbed-model 1
name clioutage_net
seed 3
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
output gap
M
cat > "$dir/outage.trace" <<'T'
# mecbed-trace 1
0 20
3 0
8 20
end 60
T
start=$(date +%s)
timeout 60 $B run --model "$dir/net.model" --policy offload --link "trace=$dir/outage.trace,rtt=10ms" \
    --warmup 0 --frames 14 --fps 2 --timeout 1.5 --fallback local --tdf 1 --json --run-id $run \
    > "$dir/out.json" 2> "$dir/err.txt"
rc=$?
took=$(( $(date +%s) - start ))
[ $rc -eq 124 ] && { echo "mecbed run hung"; exit 1; }
python3 - "$dir/out.json" <<'P' || { cat "$dir/err.txt"; exit 1; }
import json, sys
r = json.load(open(sys.argv[1]))
fr = r["per_frame"]
failed = [f for f in fr if not f["ok"]]
assert failed, "the outage should have failed a frame"
assert all(f["fell_back"] for f in failed), "every failed frame is completed locally"
assert r["output_match"] is True
first = failed[0]
assert "timeout" in first["error"] or "within" in first["error"], first["error"]
# detected within the 1.5 s timeout (plus the local run and scheduling slack)
assert first["latency_ms"] < 1500 + 1000, first["latency_ms"]
print("%d ok, %d failed and completed locally; first failure after %.0f ms: %s" % (
    r["ok_frames"], len(failed), first["latency_ms"], first["error"]))
P
[ $took -lt 45 ] || { echo "took $took s"; exit 1; }
ip netns list | grep -q "mecbed-$run" && { echo "namespaces left behind"; exit 1; }
ip -o link show | grep -q "mb$run" && { echo "interfaces left behind"; exit 1; }
ls /sys/fs/cgroup/cpu 2>/dev/null | grep -q "mecbed-$run" && { echo "cgroups left behind"; exit 1; }
exit 0
