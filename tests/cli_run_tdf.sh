#!/bin/sh
# mecbed run under calibration and time dilation (docs/runtime.md, "Emulating
# node speed and time dilation"):
#  - one prediction: run predicts what compare predicts for the same model,
#    node types, link and profile (resnet18 on an rpi4 at 18.88 Mbit/s, local
#    and mincut; the default edge is faster than this machine, so mincut needs
#    a time dilation factor > 1), and both report the calibration and tdf;
#  - a fixed --tdf 2 measures the same emulated latency as --tdf 1 (15 %);
#  - the frame timeout is emulated time: a timeout between the emulated and
#    the wall latency of a dilated frame must not fire (nodes get it too);
#  - --fps is emulated time: the achieved rate is the offered one, and the
#    run takes k times longer on the wall.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clitdf.XXXXXX)
trap 'rm -rf "$dir"' EXIT
run=$(printf 't%05d' $(($$ % 100000)))
fail=0

# 1. compare and run agree on the prediction.
link=rate=18.88mbit,rtt=20ms
$B compare --model resnet18 --device-type rpi4 --link $link --policies local,mincut --json > "$dir/cmp.json" \
    || { echo "compare failed"; exit 1; }
for policy in local mincut; do
    if ! $B run --model resnet18 --device-type rpi4 --policy $policy --link $link --frames 1 --warmup 0 \
        --json --run-id $run > "$dir/run.json" 2> "$dir/err.txt"; then
        echo "run --policy $policy failed:"; cat "$dir/err.txt"; fail=1; continue
    fi
    python3 - "$dir/cmp.json" "$dir/run.json" $policy <<'P' || fail=1
import json, sys
cmp = {c["policy"]: c for c in json.load(open(sys.argv[1]))}
r = json.load(open(sys.argv[2]))
p = sys.argv[3]
c = cmp[p]
assert abs(r["predicted_ms"] - c["latency_ms"]) <= 1e-3 * c["latency_ms"], (p, r["predicted_ms"], c["latency_ms"])
assert abs(r["predicted_energy_mj"] - c["energy_mj"]) <= 1e-3 * c["energy_mj"], (p, r["predicted_energy_mj"], c["energy_mj"])
assert r["calibration"] and r["calibration"]["total_ms_now"] > 0, (p, "no calibration")
assert r["tdf"] >= 1, (p, r["tdf"])
edge = [s for s in r["sites"] if s["name"] == "edge0"][0]
if edge["emulated_factor"] < 1:  # faster than this machine: emulated through the tdf
    assert r["tdf"] >= 1 / edge["emulated_factor"] - 0.011, (p, r["tdf"], edge)
    assert edge["slowdown"] >= 0.999, (p, edge)
assert not any("planned for it" in w for w in r["warnings"]), (p, r["warnings"])
m, pr = r["measured_ms"], r["predicted_ms"]
assert abs(r["rel_err"] - (m - pr) / pr) < 1e-3, (p, "rel_err is not (measured - predicted) / predicted", r["rel_err"])
print("%-7s predicted %.3f ms (compare %.3f), measured %.1f ms, tdf %.2f" % (p, pr, c["latency_ms"], m, r["tdf"]))
P
done

# A small model for the clock tests (about 15 ms per frame on a phone).
cat > "$dir/net.model" <<'M'
mecbed-model 1
name clitdf_net
seed 3
Input x shape=1,3,96,96
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(64x3x3x3)
Relu r1 c1
Conv c2 r1 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)
Relu r2 c2
Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)
Relu r3 c3
Conv c4 r3 kernel=3,3 pads=1,1,1,1 W=he(64x64x3x3)
GlobalAveragePool gap c4
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x64) C=const(10,0)
output fc
M
# 2. --tdf 2 against --tdf 1: the same emulated latency. An rpi4 device, so
# that both runs spend most of the time in dilation sleeps (on a busy machine
# a sleep cools the caches, and the share of sleeping should not differ much).
for k in 1 2; do
    $B run --model "$dir/net.model" --device-type rpi4 --policy local --link rate=20mbit,rtt=10ms --frames 7 --tdf $k --json \
        --run-id $run > "$dir/k$k.json" 2> "$dir/err.txt" || { echo "run --tdf $k failed:"; cat "$dir/err.txt"; fail=1; }
done
python3 - "$dir/k1.json" "$dir/k2.json" <<'P' || fail=1
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert abs(a["tdf"] - 1) < 1e-9 and abs(b["tdf"] - 2) < 1e-9, (a["tdf"], b["tdf"])
d = (b["measured_ms"] - a["measured_ms"]) / a["measured_ms"]
print("tdf 1: %.2f ms, tdf 2: %.2f ms emulated (%+.1f %%)" % (a["measured_ms"], b["measured_ms"], d * 100))
assert abs(d) <= 0.15, "a dilated run measured a different emulated latency"
P

# 3. Timeouts are emulated time (the runner's, and the nodes' through the
# plan): offload, k = 6, a timeout of 2.5 x the emulated latency is shorter
# than the wall latency (6 x), so an undilated timeout would fail the frames.
$B run --model "$dir/net.model" --policy offload --link rate=20mbit,rtt=10ms --frames 1 --json \
    --run-id $run > "$dir/t1.json" 2> "$dir/err.txt" || { echo "offload run failed:"; cat "$dir/err.txt"; fail=1; }
to=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%.4f' % (2.5 * r['measured_ms'] / 1e3))" "$dir/t1.json")
if ! $B run --model "$dir/net.model" --policy offload --link rate=20mbit,rtt=10ms --frames 2 --tdf 6 --timeout "$to" \
    --json --run-id $run > "$dir/t6.json" 2> "$dir/err.txt"; then
    echo "offload --tdf 6 --timeout $to failed (timeouts not dilated?):"; cat "$dir/err.txt"; fail=1
fi
python3 - "$dir/t6.json" "$to" <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok_frames"] == 2 and r["failed_frames"] == 0, ("frames failed under a dilated timeout", r["per_frame"])
print("timeout %s s emulated: %d frames ok at tdf %.0f (%.1f ms emulated each)" % (sys.argv[2], r["ok_frames"], r["tdf"], r["measured_ms"]))
P

# 4. --fps is emulated time: 10 fps at k = 3 releases a frame every 0.3 s.
start=$(date +%s.%N)
$B run --model "$dir/net.model" --policy local --link rate=20mbit,rtt=10ms --frames 6 --warmup 0 --fps 10 --tdf 3 \
    --json --run-id $run > "$dir/fps.json" 2> "$dir/err.txt" || { echo "fps run failed:"; cat "$dir/err.txt"; fail=1; }
end=$(date +%s.%N)
python3 - "$dir/fps.json" "$start" "$end" <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
print("10 fps offered at tdf 3: %.2f fps achieved (emulated), run took %.1f s" % (r["throughput_fps"], wall))
assert abs(r["throughput_fps"] - 10) <= 1.5, r["throughput_fps"]
assert wall >= 5 * 0.3, ("frames were released at the wall rate", wall)
assert r["deadline_misses"] == 0, r["deadline_misses"]
P
exit $fail
