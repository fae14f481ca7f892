#!/bin/sh
# Gap between what the runtime spends computing a frame and what the profile
# says the same ops cost. For each model: `mecbed run --policy local
# --device-type this --no-cap` (no emulation: the device is this machine)
# writes a Chrome trace; per frame we sum the device's compute intervals
# (busy) and take the span from its first op's start to its last op's end
# (span - busy = per-step bookkeeping, locking, waiting). Both are medians
# over the frames, divided by `mecbed infer`'s sum of op medians (total_ms).
# "op medians" sums the run's per-op medians instead: the profile's own
# statistic, so the run-vs-profile comparison without the difference between
# a median of sums and a sum of medians. A ratio near 1 means the runtime
# executes ops the way profiles measure them. Optional second binary (e.g. an older build) is measured in the same
# run, model by model, so both see the same machine load.
#   bench/run_gap.sh [build/mecbed [OTHER_BINARY]]   (MODELS, FRAMES, REPEATS)
set -eu
A=${1:-build/mecbed}
B=${2:-}
MODELS=${MODELS:-"mobilenetv2 resnet18 tiny_yolov2"}
FRAMES=${FRAMES:-20}
R=${REPEATS:-10}
: "${MECBED_DATA:=$(pwd)}"
export MECBED_DATA
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
measure() {
    "$1" infer --model "$2" --repeats "$R" --json -o "$tmp/out.npy" > "$tmp/infer.json"
    "$1" run --model "$2" --policy local --link rate=50mbit,delay=5ms --frames "$FRAMES" \
        --device-type this --no-cap --json --timeline "$tmp/tl.json" > "$tmp/run.json" 2> /dev/null
    python3 - "$tmp/infer.json" "$tmp/tl.json" "$tmp/run.json" "$1" "$2" <<'PY'
import json, statistics, sys
inf = json.load(open(sys.argv[1]))
tl = json.load(open(sys.argv[2]))["traceEvents"]
run = json.load(open(sys.argv[3]))
busy, lo, hi, per_op = {}, {}, {}, {}
for e in tl:
    if e.get("ph") != "X" or e.get("pid") != 0 or e.get("cat") != "compute":
        continue
    f = e["args"]["frame"]
    busy[f] = busy.get(f, 0.0) + e["dur"] / 1e3
    per_op.setdefault(e["name"], []).append(e["dur"] / 1e3)
    lo[f] = min(lo.get(f, e["ts"]), e["ts"])
    hi[f] = max(hi.get(f, 0.0), e["ts"] + e["dur"])
b = statistics.median(busy.values())
s = statistics.median((hi[f] - lo[f]) / 1e3 for f in busy)
o = sum(statistics.median(v) for v in per_op.values())
t = inf["total_ms"]
print("%-12s %-24s ops %7.2f ms  infer wall %7.2f  run busy %7.2f (%.3f)  op medians %7.2f (%.3f)  span %7.2f (%.3f)  load %s"
      % (sys.argv[5], sys.argv[4], t, inf["wall_ms"], b, b / t, o, o / t, s, s / t, run.get("loadavg")))
PY
}
for m in $MODELS; do
    measure "$A" "$m"
    if [ -n "$B" ]; then
        measure "$B" "$m"
    fi
done
