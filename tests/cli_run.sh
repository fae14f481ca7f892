#!/bin/sh
# mecbed run end to end: nodes in namespaces, tensors over emulated links;
# every policy's output matches the unsplit model, the JSON has the figures
# scripts rely on, the timeline files are written, and nothing is left
# behind (namespaces, interfaces, cgroups, processes).
B=${BUILD:-build}/mecbed
$B run --help | grep -q -- "--fallback" || { echo "mecbed run --help is missing options"; exit 1; }
$B run --model nope --policy local --link rate=1mbit 2>&1 | grep -q "nope" || { echo "a bad model should be named"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clirun.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/net.model" <<'M'
mecbed-model 1
name clirun_net
seed 3
Input x shape=1,3,96,96
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
Conv c2 r1 kernel=3,3 pads=1,1,1,1 W=he(32x16x3x3)
Relu r2 c2
MaxPool p2 r2 kernel=2,2 stride=2,2
Conv c3 p2 kernel=3,3 pads=1,1,1,1 W=he(32x32x3x3)
Add s3 c3,p2
Conv c4 s3 kernel=1,1 W=he(8x32x1x1)
GlobalAveragePool gap c4
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x8) C=const(10,0)
output fc
M
# a run id of this test process: tests of several build dirs may run at once
run=$(printf 'r%05d' $(($$ % 100000)))
fail=0
for policy in local offload mincut oplevel tile; do
    if ! $B run --model "$dir/net.model" --policy $policy --link rate=20mbit,rtt=10ms --frames 2 \
        --json --run-id $run --timeline "$dir/t.json" > "$dir/out.json" 2> "$dir/err.txt"; then
        echo "run --policy $policy failed:"; cat "$dir/err.txt"; fail=1; continue
    fi
    python3 - "$dir/out.json" "$policy" <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
p = sys.argv[2]
for k in ("measured_ms", "predicted_ms", "energy_mj", "predicted_energy_mj", "output_match", "max_abs_err"):
    assert k in r, (p, "missing", k)
assert r["output_match"] is True, (p, "output differs", r["max_abs_err"])
assert r["ok_frames"] == 2 and r["failed_frames"] == 0, (p, r)
assert r["measured_ms"] > 0 and r["predicted_ms"] > 0, (p, r)
assert r["energy_mj"] > 0 and r["predicted_energy_mj"] > 0, (p, r)
assert len(r["per_frame"]) == 2
if p == "offload":
    assert r["per_frame"][0]["bytes_up"] > 0, (p, "nothing crossed the link")
print("%-8s measured %8.2f ms  predicted %8.2f ms  energy %8.2f / %8.2f mJ  overhead x%.2f" % (
    p, r["measured_ms"], r["predicted_ms"], r["energy_mj"], r["predicted_energy_mj"], r["overhead_ratio"]))
P
    python3 - "$dir/t.json" "$policy" <<'P' || { echo "timeline JSON ($policy) wrong"; fail=1; }
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
p = sys.argv[2]
assert len(ev) > 10
# one arrow per transfer: each flow start has one finish with its id, later
starts = {e["id"]: e for e in ev if e["ph"] == "s"}
ends = {e["id"]: e for e in ev if e["ph"] == "f"}
assert starts.keys() == ends.keys(), (p, "unpaired flow events")
assert all(ends[i]["ts"] >= starts[i]["ts"] for i in starts), (p, "arrow points back in time")
sends = [e for e in ev if e["ph"] == "X" and e["cat"] == "send"]
assert len(starts) == len(sends), (p, len(starts), len(sends))
if p == "offload":  # the other policies keep this small net on the device
    assert starts, (p, "no transfer arrows")
# bytes in flight per link: never negative, back to 0 at the end
tracks = {}
for e in sorted((e for e in ev if e["ph"] == "C"), key=lambda e: e["ts"]):
    tracks.setdefault((e["pid"], e["name"]), []).append(e["args"]["KB"])
for k, v in tracks.items():
    assert min(v) >= 0 and v[-1] == 0, (p, k, v)
# one marker per frame
marks = [e["name"] for e in ev if e["ph"] == "i"]
assert marks == ["frame 0", "frame 1"] or marks == ["frame 1", "frame 2"], (p, marks)
P
    head -1 "$dir/t.json.csv" | grep -q "frame,kind,site" || { echo "timeline CSV missing"; fail=1; }
done
# a zoo model named in another spelling the zoo accepts ("alex-net" for
# alexnet, as the demo's "tinyyolov2"): the node serves it too
if ! $B run --model alex-net --policy offload --link rate=50mbit,rtt=10ms --frames 1 --quiet --json \
    --run-id $run > "$dir/alias.json" 2> "$dir/alias.err" ||
   ! python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["output_match"] is True' "$dir/alias.json"; then
    echo "a zoo alias is refused by the node:"; cat "$dir/alias.err"; fail=1
fi
if ip netns list | grep -q "mecbed-$run"; then echo "namespaces left behind"; ip netns list; fail=1; fi
if ip -o link show | grep -q "mb$run"; then echo "interfaces left behind"; fail=1; fi
if ls /sys/fs/cgroup/cpu 2>/dev/null | grep -q "mecbed-$run"; then echo "cgroups left behind"; fail=1; fi
if pgrep -f "mecbed node --role" | grep -q .; then
    for p in $(pgrep -f "mecbed node --role"); do
        # only ours: a node whose listen address is in a run namespace of this test
        ip netns identify "$p" 2>/dev/null | grep -q "mecbed-$run" && { echo "node process $p left behind"; fail=1; }
    done
fi
exit $fail
