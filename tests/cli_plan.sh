#!/bin/sh
# `mecbed plan`: human and JSON output, --verify, --objective, errors.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-plan.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

"$M" plan --help | grep -q -- "--policy" || fail "plan --help"

"$M" plan --model resnet18 --policy mincut --link rate=18.88mbit,rtt=20ms --verify >"$tmp/out" 2>&1 ||
    fail "plan mincut exited $?: $(cat "$tmp/out")"
grep -q "^predicted latency" "$tmp/out" || fail "no predicted latency: $(cat "$tmp/out")"
grep -q "^decision time" "$tmp/out" || fail "no decision time"
grep -q "^cut value" "$tmp/out" || fail "mincut prints no cut value"
grep -q "^verify (cpu backend): bit-exact" "$tmp/out" || fail "verify: $(grep verify "$tmp/out")"

"$M" plan --model mobilenetv2 --policy layerwise --link rate=5.85mbit,rtt=40ms --json --verify \
    --out "$tmp/plan.json" >"$tmp/json" || fail "plan --json exited $?"
python3 - "$tmp/json" "$tmp/plan.json" <<'PY' || fail "plan --json content"
import json, sys
o = json.load(open(sys.argv[1]))
for k in ("policy", "model", "device", "sites", "pred", "steps", "verify", "graph_hash"):
    assert k in o, k
p = o["pred"]
for k in ("latency_ms", "energy_mj", "energy_system_mj", "bytes_up", "decision_us"):
    assert k in p, k
assert p["latency_ms"] > 0 and p["decision_us"] >= 0
assert o["verify"]["ok"] is True and o["verify"]["max_abs_err"] == 0
assert o["steps"] and o["steps"][0]["kind"] in ("compute", "send")
f = json.load(open(sys.argv[2]))
assert f["steps"] == o["steps"]
PY

# the energy objective never gives more device energy than the latency one
e_lat=$("$M" plan --model resnet50 --policy layerwise --link rate=10mbit,rtt=20ms --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pred"]["energy_mj"])')
e_en=$("$M" plan --model resnet50 --policy layerwise --link rate=10mbit,rtt=20ms --objective energy --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pred"]["energy_mj"])')
python3 -c "import sys; sys.exit(0 if $e_en <= $e_lat + 1e-9 else 1)" || fail "energy objective $e_en > latency objective $e_lat"

# a three-tier topology file with node types
cat >"$tmp/topo.ini" <<'INI'
[node device]
role = device
type = jetson-nano
[node edge0]
role = edge
type = edge-gpu
[node cloud]
role = cloud
[link device edge0]
spec = rate=20mbit,rtt=10ms
[link edge0 cloud]
spec = rate=100mbit,rtt=30ms
INI
"$M" plan --model resnet18 --policy offload --topology "$tmp/topo.ini" >"$tmp/topo.out" 2>&1 ||
    fail "plan with a topology: $(cat "$tmp/topo.out")"
grep -q "site device   jetson-nano" "$tmp/topo.out" || fail "topology node type not used: $(cat "$tmp/topo.out")"
# offloading to the cloud crosses the edge: the input counts as uplink and as backbone bytes
"$M" plan --model resnet18 --policy offload --policy-opt server=cloud --topology "$tmp/topo.ini" \
    --json >"$tmp/cloud.json" || fail "offload to the cloud"
python3 - "$tmp/cloud.json" <<'PY' || fail "cloud offload bytes: $(cat "$tmp/cloud.json")"
import json, sys
p = json.load(open(sys.argv[1]))["pred"]
assert p["bytes_up"] == 602112 and p["bytes_backbone"] == 602112 + 4000, p
PY

# DADS heavy-load mode (DSH): for a frame rate the light cut cannot sustain,
# the re-cut's slowest stage is never worse than the light cut's (fps=0.001:
# no search, the light cut's own slowest stage) nor than running all
# locally, and beats the light cut where offloading is near break-even: a
# link whose upload stage is shorter than the device's local time while the
# whole offload is not. Where that is depends on the pinned profile, so the
# uplink rate is swept (30-150 Mbit/s) rather than fixed.
rates=""
r=30
while [ "$r" -le 150 ]; do rates="$rates $r"; r=$((r + r / 10 + 1)); done
for r in $rates; do
    for fps in 0.001 100; do
        "$M" plan --model resnet50 --policy mincut --device-type jetson-nano --link rate=${r}mbit,rtt=20ms \
            --policy-opt mode=heavy,fps=$fps --json >"$tmp/heavy$fps-$r.json" || fail "heavy mode fps=$fps rate=$r"
    done
done
"$M" plan --model resnet50 --policy local --device-type jetson-nano --link rate=50mbit,rtt=20ms --json \
    >"$tmp/heavylocal.json" || fail "local plan"
python3 - "$tmp" "$rates" <<'PY' || fail "heavy mode"
import json, sys
d, rates = sys.argv[1], sys.argv[2].split()
local = json.load(open(f"{d}/heavylocal.json"))["pred"]["latency_ms"]
better = []
for r in rates:
    light, heavy = (json.load(open(f"{d}/heavy{fps}-{r}.json")) for fps in ("0.001", "100"))
    sl, sh = light["metrics"]["slowest_stage_ms"], heavy["metrics"]["slowest_stage_ms"]
    assert sh <= sl + 1e-9, (r, sh, sl)
    assert sh <= local + 1e-9, (r, sh, local)
    assert abs(heavy["metrics"]["max_fps"] - 1e3 / sh) < 1e-6
    if sh < 0.99 * sl:
        better.append(r)
assert better, "the re-cut beat the light cut at no rate in " + " ".join(rates)
PY
"$M" plan --model tinyyolov2 --policy mincut --link rate=18.88mbit --policy-opt mode=heavy >"$tmp/eh" 2>&1 \
    && fail "heavy mode without fps accepted"
grep -q "fps" "$tmp/eh" || fail "heavy mode message: $(cat "$tmp/eh")"

# errors: clear, non-zero, naming what is wrong
"$M" plan --model resnet18 --policy nope --link rate=1mbit >"$tmp/e1" 2>&1 && fail "unknown policy accepted"
grep -q "unknown policy 'nope'" "$tmp/e1" || fail "unknown policy message: $(cat "$tmp/e1")"
"$M" plan --model resnet18 --policy mincut --link rate=fast >"$tmp/e2" 2>&1 && fail "bad link spec accepted"
grep -qi "rate" "$tmp/e2" || fail "bad spec message: $(cat "$tmp/e2")"
"$M" plan --model nosuchmodel --policy mincut --link rate=1mbit >"$tmp/e3" 2>&1 && fail "unknown model accepted"
"$M" plan --model resnet18 --link rate=1mbit >"$tmp/e4" 2>&1 && fail "missing --policy accepted"
grep -q -- "--policy is required" "$tmp/e4" || fail "missing policy message: $(cat "$tmp/e4")"
printf 'op,name,type,ms\n0,wrong,Input,0\n' >"$tmp/bad.csv"
"$M" plan --model resnet18 --policy local --link rate=1mbit --profile "$tmp/bad.csv" >"$tmp/e5" 2>&1 && fail "bad profile accepted"
grep -q "bad.csv" "$tmp/e5" || fail "bad profile message: $(cat "$tmp/e5")"
"$M" plan --model resnet18 --policy local --link rate=1mbit --objective speed >"$tmp/e6" 2>&1 && fail "bad objective accepted"
# --kernels chooses --verify's kernels; --backend is its deprecated spelling
"$M" plan --model resnet18 --policy local --link rate=1mbit --verify --kernels gpu9 >"$tmp/e7" 2>&1 &&
    fail "--kernels gpu9 accepted"
grep -q "unknown backend 'gpu9'" "$tmp/e7" || fail "--kernels not used by --verify: $(cat "$tmp/e7")"
grep -q "deprecated" "$tmp/e7" && fail "--kernels printed a deprecation notice"
"$M" plan --model resnet18 --policy local --link rate=1mbit --verify --backend gpu9 >"$tmp/e8" 2>&1 &&
    fail "--backend gpu9 accepted"
grep -q "unknown backend 'gpu9'" "$tmp/e8" || fail "--backend alias not used by --verify: $(cat "$tmp/e8")"
grep -q "^mecbed: --backend is deprecated here; use --kernels$" "$tmp/e8" || fail "no notice: $(cat "$tmp/e8")"
echo "ok"
