#!/bin/sh
# `mecbed compare`: every registered policy, the JSON contract scripts rely on,
# and the sanity order of the predictions (mincut <= layerwise <=
# min(local, offload), oplevel <= layerwise).
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-compare.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

"$M" compare --help | grep -q -- "--json" || fail "compare --help"
"$M" compare --model resnet50 --link rate=10mbit,rtt=20ms >"$tmp/out" 2>&1 ||
    fail "compare exited $?: $(cat "$tmp/out")"
# the registry's list, as plan prints it for an unknown policy
POLICIES=$("$M" plan --model alexnet --link rate=10mbit --policy '?' 2>&1 |
    sed -n 's/.*(registered: \(.*\); plugins load.*/\1/p')
[ -n "$POLICIES" ] || fail "plan lists no registered policies"
export POLICIES
for p in $POLICIES; do
    grep -q "^$p " "$tmp/out" || fail "compare lacks $p: $(cat "$tmp/out")"
done
for bw in 1 5.85 18.88 100; do
    "$M" compare --model mobilenetv2 --link "rate=${bw}mbit,rtt=20ms" --json >"$tmp/j$bw" ||
        fail "compare --json at $bw exited $?"
    python3 - "$tmp/j$bw" <<'PY' || fail "compare --json content at $bw: $(cat "$tmp/j$bw")"
import json, math, sys
a = json.load(open(sys.argv[1]))
r = {o["policy"]: o for o in a}
import os
assert set(r) >= set(os.environ["POLICIES"].split()), list(r)
for o in a:
    for k in ("policy", "latency_ms", "energy_mj", "decision_us", "bytes_sent", "cut_value_ms"):
        assert k in o, (k, o)
    assert o["latency_ms"] > 0 and o["energy_mj"] > 0 and o["decision_us"] >= 0
assert r["local"]["bytes_sent"] == 0
for p in ("mincut", "cic"):
    assert r[p]["cut_value_ms"] is not None
assert r["local"]["cut_value_ms"] is None
assert abs(r["mincut"]["cut_value_ms"] - r["cic"]["cut_value_ms"]) <= 1e-6 * r["mincut"]["cut_value_ms"]
eps = 1e-9
assert r["mincut"]["latency_ms"] <= r["layerwise"]["latency_ms"] + eps
assert r["layerwise"]["latency_ms"] <= min(r["local"]["latency_ms"], r["offload"]["latency_ms"]) + eps
assert r["oplevel"]["latency_ms"] <= r["layerwise"]["latency_ms"] + eps, (r["oplevel"], r["layerwise"])
PY
done
# --rates: one object per rate and policy, the same numbers as separate runs
"$M" compare --model mobilenetv2 --link rate=1mbit,rtt=20ms --rates 5.85,100 --policies mincut,local \
    --json >"$tmp/rates" || fail "compare --rates"
python3 - "$tmp/rates" "$tmp/j5.85" "$tmp/j100" <<'PY' || fail "compare --rates content: $(cat "$tmp/rates")"
import json, sys
a = json.load(open(sys.argv[1]))
assert [(o["rate_mbps"], o["policy"]) for o in a] == [(5.85, "local"), (5.85, "mincut"), (100, "local"), (100, "mincut")], a
for o, f in ((a[1], sys.argv[2]), (a[3], sys.argv[3])):
    ref = {x["policy"]: x for x in json.load(open(f))}["mincut"]
    assert abs(o["latency_ms"] - ref["latency_ms"]) <= 1e-9 * ref["latency_ms"], (o, ref)
PY
"$M" compare --model resnet18 --link rate=1mbit --rates 1,x >"$tmp/e2" 2>&1 && fail "bad --rates accepted"
"$M" compare --model resnet18 --link rate=10mbit --policies mincut,bogus >"$tmp/e" 2>&1 && fail "unknown policy accepted"
grep -q "bogus" "$tmp/e" || fail "message: $(cat "$tmp/e")"
# --kernels chooses --verify's kernels; --backend is its deprecated spelling
"$M" compare --model resnet18 --link rate=10mbit --policies local --verify --kernels gpu9 >"$tmp/k" 2>&1 &&
    fail "--kernels gpu9 accepted"
grep -q "unknown backend 'gpu9'" "$tmp/k" || fail "--kernels not used by --verify: $(cat "$tmp/k")"
"$M" compare --model resnet18 --link rate=10mbit --policies local --verify --backend gpu9 >"$tmp/b" 2>&1 &&
    fail "--backend gpu9 accepted"
grep -q "unknown backend 'gpu9'" "$tmp/b" || fail "--backend alias not used by --verify: $(cat "$tmp/b")"
grep -q "^mecbed: --backend is deprecated here; use --kernels$" "$tmp/b" || fail "no notice: $(cat "$tmp/b")"
echo ok
