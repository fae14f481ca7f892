#!/bin/sh
# mecbed run --devices N: three devices, each with its own runner, link and
# frame stream, sharing one edge node. Every device's output matches the
# unsplit model; the node served the three sessions at once (their frames
# overlap in time, and steps queued for the node's shared compute); the
# prediction accounts for the sharing; under dds each device holds its share of
# the edge and does not queue; nothing is left behind.
B=${BUILD:-build}/mecbed
$B run --help | grep -q -- "--devices" || { echo "mecbed run --help lacks --devices"; exit 1; }
$B node --help | grep -q -- "--max-sessions" || { echo "mecbed node --help lacks --max-sessions"; exit 1; }
out=$($B run --model alexnet --policy offload --link rate=1mbit --devices 0 2>&1) && { echo "--devices 0 accepted"; exit 1; }
echo "$out" | grep -q -- "--devices 0" || { echo "--devices 0: unclear error: $out"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-devices.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/net.model" <<'M'
mecbed-model 1
name devices_net
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
# heavier convolutions for a phone: dds offloads them to the edge
cat > "$dir/heavy.model" <<'M'
mecbed-model 1
name devices_heavy
seed 3
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(32x3x3x3)
Relu r1 c1
Conv c2 r1 kernel=3,3 pads=1,1,1,1 W=he(64x32x3x3)
Relu r2 c2
Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)
GlobalAveragePool gap c3
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x64) C=const(10,0)
output fc
M
run=$(printf 'd%05d' $(($$ % 100000)))
fail=0
# several devices cannot re-plan yet: refused with a clear message
$B run --model "$dir/net.model" --policy offload --link rate=200mbit,rtt=2ms --devices 2 --adaptive \
    --run-id $run > /dev/null 2> "$dir/err.txt" && { echo "--devices with --adaptive accepted"; fail=1; }
grep -q "adaptive" "$dir/err.txt" || { echo "--adaptive refusal unclear:"; cat "$dir/err.txt"; fail=1; }
# the whole model on a slow edge (rpi4) over a fast link: the edge's
# compute is most of each frame, so the three devices compete for it
if ! $B run --model "$dir/net.model" --policy offload --link rate=200mbit,rtt=2ms --edge-type rpi4 \
    --devices 3 --frames 4 --json --quiet --run-id $run > "$dir/out.json" 2> "$dir/err.txt"; then
    echo "run --devices 3 failed:"; cat "$dir/err.txt"; fail=1
else
    python3 - "$dir/out.json" <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
d = r["devices"]
assert r["n_devices"] == 3 and len(d) == 3, r["n_devices"]
assert [x["device"] for x in d] == ["dev0", "dev1", "dev2"], [x["device"] for x in d]
for x in d:
    for k in ("measured_ms", "predicted_ms", "energy_mj", "output_match", "queue_ms", "predicted_alone_ms"):
        assert k in x, ("missing", k)
    assert x["output_match"] is True, (x["device"], "output differs")
    assert x["ok_frames"] == 4 and x["failed_frames"] == 0, x["device"]
    assert x["measured_ms"] > 0 and x["energy_mj"] > 0, x["device"]
    # the sharing is in the prediction: each device waits for the others' work
    assert x["predicted_ms"] > x["predicted_alone_ms"] * 1.2, (x["predicted_ms"], x["predicted_alone_ms"])
    assert x["session"]["per_frame"][0]["bytes_up"] > 0, "nothing crossed the device's link"
assert r["all_match"] is True
# the node served the sessions at once: frames of different devices overlap
# in time (one clock: the run's links' epoch) ...
iv = [[(f["t_s"], f["t_s"] + f["latency_ms"] / 1e3) for f in x["session"]["per_frame"]] for x in d]
overlap = sum(1 for a in iv[0] for b in iv[1] if a[0] < b[1] and b[0] < a[1])
assert overlap >= 2, ("dev0's and dev1's frames did not overlap", iv[:2])
# ... and steps queued for its shared compute (QUEUE events on the timelines)
q = [x["queue_ms"] for x in d]
s = [x["server_ms"] for x in d]
assert max(q) > 0.25 * max(s), ("no queueing at the shared edge", q, s)
# the measured sharing is what was predicted, loosely (a busy machine)
assert abs(r["median_abs_rel_err"]) < 0.5, r["median_abs_rel_err"]
print("3 devices: measured %s ms, predicted %s ms (alone %.2f), queue %s ms, server util %.2f" % (
    [round(x["measured_ms"], 2) for x in d], [round(x["predicted_ms"], 2) for x in d],
    d[0]["predicted_alone_ms"], [round(v, 2) for v in q], r["server_util"]))
P
fi
# dds: each device holds its equilibrium share of the edge, and the node runs
# them side by side at those shares (no queue), as the prediction says
if ! $B run --model "$dir/heavy.model" --policy dds --link rate=200mbit,rtt=2ms --device-type phone \
    --edge-type edge-cpu --devices 2 --frames 3 --json --quiet --run-id $run > "$dir/dds.json" 2> "$dir/err.txt"; then
    echo "run --policy dds --devices 2 failed:"; cat "$dir/err.txt"; fail=1
else
    python3 - "$dir/dds.json" <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
d = r["devices"]
assert r["sharing"] == "shares", r["sharing"]
sh = [x["share"] for x in d]
assert all(s is not None and 0 < s <= 1 for s in sh) and sum(sh) <= 1 + 1e-9, sh
for x in d:
    assert x["output_match"] is True and x["failed_frames"] == 0, x["device"]
    assert x["queue_ms"] == 0, ("a device holding a share queued", x["queue_ms"])
    # its server work at its share: slower than alone, as predicted
    assert x["predicted_ms"] > x["predicted_alone_ms"], (x["predicted_ms"], x["predicted_alone_ms"])
assert r["median_abs_rel_err"] < 0.25, r["median_abs_rel_err"]
print("dds, 2 devices: shares %s, measured %s ms, predicted %s ms (alone %.2f)" % (
    sh, [round(x["measured_ms"], 2) for x in d], [round(x["predicted_ms"], 2) for x in d], d[0]["predicted_alone_ms"]))
P
fi
if ip netns list | grep -q "mecbed-$run"; then echo "namespaces left behind"; ip netns list; fail=1; fi
if ip -o link show | grep -q "mb$run"; then echo "interfaces left behind"; fail=1; fi
for p in $(pgrep -f "mecbed node --role"); do
    ip netns identify "$p" 2>/dev/null | grep -q "mecbed-$run" && { echo "node process $p left behind"; fail=1; }
done
exit $fail
