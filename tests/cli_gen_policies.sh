#!/bin/sh
# `mecbed generate --gen-policy` (docs/generation.md, "Policies"): every
# generation policy's prediction for GPT-2 (relations that must hold: the
# pipeline's cut the best of its cuts, speculative decoding's expected tokens
# per round, P/D's KV-cache transfer, energy per token), the in-process
# verification of galaxy, pd-device and speculative on the small gpt2_draft
# (tokens equal to the unsplit model's), bad input.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-genpol.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
export XDG_CACHE_HOME="$tmp/cache" # measured profiles are cached here

"$M" generate --help >"$tmp/help" || fail "--help exited $?"
grep -q -- "--gen-policy" "$tmp/help" && grep -q -- "--edges" "$tmp/help" || fail "--help lacks --gen-policy/--edges"

"$M" generate --model gpt2_draft --draft gpt2_draft -p 8 -n 16 --link rate=50mbit,rtt=40ms --gen-policy all \
    --edges 2 --json >"$tmp/all.json" 2>"$tmp/err" || fail "--gen-policy all exited $?: $(cat "$tmp/err")"
"$M" generate --model gpt2_draft --draft gpt2_draft -p 8 -n 16 --link rate=50mbit,rtt=40ms --gen-policy all \
    --edges 2 >"$tmp/all.txt" 2>"$tmp/err" || fail "--gen-policy all (text) exited $?: $(cat "$tmp/err")"
for p in device edge pipeline galaxy pd-device speculative mJ/token; do
    grep -q "$p" "$tmp/all.txt" || fail "text table lacks $p: $(cat "$tmp/all.txt")"
done
python3 - "$tmp/all.json" <<'EOF2' || fail "--gen-policy all content"
import json, sys
a = json.load(open(sys.argv[1]))
p = a["policies"]
names = [e["policy"] for e in p]
assert names == ["device", "edge", "pipeline", "galaxy", "pd-device", "speculative", "speculative"], names
d = {e["policy"] + (str(e.get("acceptance", "")) if e["policy"] == "speculative" else ""): e for e in p}
dev, edge, pipe, gal, pd = d["device"], d["edge"], d["pipeline"], d["galaxy"], d["pd-device"]
s6, s8 = d["speculative0.6"], d["speculative0.8"]
for e in p:
    assert e["predicted_tpot_ms"] > 0 and e["predicted_ttft_ms"] > 0 and e["energy_per_token_mj"] > 0, e
    assert abs(e["predicted_total_ms"] - (e["predicted_ttft_ms"] + 15 * e["predicted_tpot_ms"])) < 1e-6 * e["predicted_total_ms"], e
    assert abs(e["predicted_tokens_per_s"] * e["predicted_tpot_ms"] - 1000) < 1e-6, e
assert dev["split_after"] == 4 and edge["split_after"] == 0 and dev["up_bytes_per_token"] == 0
assert pipe["predicted_total_ms"] <= min(dev["predicted_total_ms"], edge["predicted_total_ms"]) + 1e-9
# one round trip per token at least, for every policy that leaves the device
for e in (edge, gal):
    assert e["predicted_tpot_ms"] > 40, e
assert gal["edges"] == 2 and gal["sync_ms_per_token"] > 0 and gal["backbone_bytes_per_token"] > 0
# P/D: decode on the device, the prompt's KV cache (4 layers, K and V, 4 heads x 64, 8 positions) in TTFT
assert pd["predicted_tpot_ms"] == dev["predicted_tpot_ms"] and pd["energy_per_token_mj"] == dev["energy_per_token_mj"]
assert pd["kv_transfer_bytes"] == 2 * 4 * 4 * 64 * 8 * 4, pd
# speculative: expected tokens per round (1 - a^(k+1)) / (1 - a), k = 4
for s, a_ in ((s6, 0.6), (s8, 0.8)):
    assert s["draft_tokens"] == 4 and abs(s["tokens_per_round"] - (1 - a_ ** 5) / (1 - a_)) < 1e-9, s
assert s8["predicted_tpot_ms"] < s6["predicted_tpot_ms"]
assert abs(s8["predicted_tpot_ms"] * s8["tokens_per_round"] - s6["predicted_tpot_ms"] * s6["tokens_per_round"]) < 1e-6
EOF2

# verification on the small gpt2_draft: the split computations give the unsplit model's tokens
for pol in "galaxy --edges 3" "pd-device" "speculative:k=2,a=0.5 --draft gpt2_draft" "edge"; do
    # shellcheck disable=SC2086
    "$M" generate --model gpt2_draft -p 5 -n 9 --link rate=20mbit,rtt=30ms --gen-policy $pol --verify --json \
        >"$tmp/v.json" 2>"$tmp/err" || fail "--gen-policy $pol --verify exited $?: $(cat "$tmp/err")"
    python3 - "$tmp/v.json" "$pol" <<'EOF2' || fail "verify $pol: $(cat "$tmp/v.json")"
import json, sys
a = json.load(open(sys.argv[1]))
assert a["output_match"] is True and len(a["tokens"]) == 9, a
if sys.argv[2].startswith("speculative"):
    assert a["accepted"] >= a["accepted_by_pattern"] > 0 and a["proposed"] == 2 * a["rounds"], a
if sys.argv[2].startswith("galaxy"):
    assert a["edges"] == 3, a
EOF2
done

# the sweep's generation mode and the experiment's figure, on gpt2_draft
cat >"$tmp/gen.conf" <<EOF2
[sweep]
name = gentest
mode = plan
measure = generation
models = gpt2_draft
prompt_tokens = 6
gen_tokens = 5
policies = device edge pipeline galaxy:edges=2 pd-device
x_name = round-trip time
x_unit = ms
x = 10 100
links = rate=50mbit,rtt={x}ms
metrics = ttft_ms tpot_ms energy_per_token_mj sync_ms split_after
plot = $PWD/experiments/plots/generation.gp
EOF2
command -v gnuplot >/dev/null || sed -i '/^plot/d' "$tmp/gen.conf"
"$M" sweep "$tmp/gen.conf" --json --out "$tmp/gen" >"$tmp/gen.json" 2>"$tmp/err" || fail "generation sweep exited $?: $(tail -3 "$tmp/err")"
grep -q '"ok":10,"failed":0' "$tmp/gen.json" || fail "generation sweep: $(cat "$tmp/gen.json")"
python3 - "$tmp/gen/results.csv" <<'EOF2' || fail "generation sweep rows"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {(r["policy"], r["x"]): r for r in rows}
assert len(rows) == 10, len(rows)
for r in rows:
    assert abs(float(r["latency_ms"]) - float(r["m_ttft_ms"]) - 4 * float(r["m_tpot_ms"])) < 1e-6 * float(r["latency_ms"]), r
    assert float(r["m_energy_per_token_mj"]) > 0
# a 90 ms longer round trip costs edge-only 90 ms per token; the device does not care
d = float(by[("edge", "100")]["m_tpot_ms"]) - float(by[("edge", "10")]["m_tpot_ms"])
assert abs(d - 90) < 0.5, d
assert by[("device", "100")]["m_tpot_ms"] == by[("device", "10")]["m_tpot_ms"]
assert by[("galaxy:edges=2", "10")]["m_sync_ms"] != "" and by[("device", "10")]["m_sync_ms"] == ""
assert by[("device", "10")]["m_split_after"] == "4" and by[("edge", "10")]["m_split_after"] == "0"
EOF2
if command -v gnuplot >/dev/null; then
    grep -q '"plots_failed":0' "$tmp/gen.json" || fail "generation figure failed: $(cat "$tmp/gen"/plot-*.log 2>/dev/null | head -5)"
    [ -s "$tmp/gen/generation-vs-rtt.png" ] && [ -s "$tmp/gen/generation-vs-rtt.svg" ] || fail "no generation figure"
    grep -q 'Galaxy, 2 edge nodes' "$tmp/gen/generation-vs-rtt.svg" || fail "figure legend lacks Galaxy"
fi
sed 's/^links.*/topologies = experiments\/topologies\/tier1.ini/' "$tmp/gen.conf" >"$tmp/gen2.conf"
"$M" sweep "$tmp/gen2.conf" --out "$tmp/gen2" >"$tmp/out" 2>&1 && fail "generation over a topology file was accepted"
grep -q "measure = generation is plan mode over links" "$tmp/out" || fail "message: $(cat "$tmp/out")"
sed 's/^policies.*/policies = device warp/' "$tmp/gen.conf" >"$tmp/gen3.conf"
"$M" sweep "$tmp/gen3.conf" --out "$tmp/gen3" >"$tmp/out" 2>&1 && fail "an unknown generation policy was accepted"
grep -q "unknown generation policy 'warp'" "$tmp/out" || fail "message: $(cat "$tmp/out")"

# bad input
bad() { # expected message, then arguments
    msg=$1
    shift
    "$M" generate "$@" >"$tmp/out" 2>&1 && fail "accepted: $*"
    grep -q -- "$msg" "$tmp/out" || fail "message for $*: $(cat "$tmp/out")"
}
L="--link rate=50mbit,rtt=40ms"
bad "unknown generation policy 'warp'" --model gpt2_draft -p 4 -n 4 $L --gen-policy warp
bad "option a=2" --model gpt2_draft -p 4 -n 4 $L --gen-policy speculative:a=2
bad "not key=number" --model gpt2_draft -p 4 -n 4 $L --gen-policy galaxy:edges
bad "edges=3, the topology has 2" --model gpt2_draft -p 4 -n 4 $L --edges 2 --gen-policy galaxy:edges=3
bad "needs a draft model" --model gpt2_draft -p 4 -n 4 $L --gen-policy speculative
bad "vocabulary" --model gpt2 -p 4 -n 4 $L --gen-policy speculative --draft smollm_135m
bad "is not a decoder" --model gpt2 -p 4 -n 4 $L --gen-policy speculative --draft gpt5
bad "--edges '0'" --model gpt2_draft -p 4 -n 4 $L --edges 0 --gen-policy galaxy
bad "need --link" --model gpt2_draft -p 4 -n 4 --gen-policy galaxy
bad "are for --gen-policy" --model gpt2_draft -p 4 -n 4 $L --edges 2
bad "checks one policy" --model gpt2_draft -p 4 -n 4 $L --gen-policy all --verify
bad "--lan" --model gpt2_draft -p 4 -n 4 $L --edges 2 --lan rate=fast --gen-policy galaxy
bad "pipeline:split=K" --model gpt2_draft -p 4 -n 4 $L --gen-policy pipeline --split 2
bad "split=9" --model gpt2_draft -p 4 -n 4 $L --gen-policy pipeline:split=9
echo "ok"
