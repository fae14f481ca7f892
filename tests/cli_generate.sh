#!/bin/sh
# `mecbed generate`: GPT-2 and the small Llama-architecture model generate
# with a KV cache; --json fields; the same seed gives the same tokens; a
# longer run starts with the shorter run's tokens; bad arguments.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-generate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

"$M" generate --help >"$tmp/help" || fail "--help exited $?"
grep -q -- "--prompt-tokens" "$tmp/help" || fail "--help lacks --prompt-tokens"

"$M" generate --model gpt2 --prompt-tokens 4 --gen-tokens 3 --bandwidth-mb 64 >"$tmp/text" 2>&1 ||
    fail "gpt2 exited $?: $(cat "$tmp/text")"
grep -q "TTFT" "$tmp/text" && grep -q "TPOT median" "$tmp/text" && grep -q "bound on TPOT" "$tmp/text" ||
    fail "text report: $(cat "$tmp/text")"

for m in gpt2 smollm_135m; do
    "$M" generate --model $m -p 4 -n 4 --bandwidth-mb 64 --json >"$tmp/$m.json" 2>"$tmp/err" ||
        fail "$m --json exited $?: $(cat "$tmp/err")"
    "$M" generate --model $m -p 4 -n 2 --bandwidth-mb 0 --json >"$tmp/$m.short.json" 2>"$tmp/err" ||
        fail "$m short exited $?: $(cat "$tmp/err")"
done
python3 - "$tmp" <<'EOF2' || fail "--json content"
import json, sys
d = sys.argv[1]
pub = {"gpt2": 124439808, "smollm_135m": 134515008}
for m in ("gpt2", "smollm_135m"):
    a = json.load(open(f"{d}/{m}.json"))
    s = json.load(open(f"{d}/{m}.short.json"))
    for k in ("ttft_ms", "tpot_ms", "tpot_p95_ms", "tokens_per_s", "weight_bytes_per_token", "kv_cache_bytes",
              "mem_bandwidth_gbs", "bound_tpot_ms", "tpot_to_bound", "tokens", "step_ms", "params"):
        assert k in a, (m, k)
    assert a["model"] == m and a["prompt_tokens"] == 4 and a["gen_tokens"] == 4
    assert len(a["tokens"]) == 4 and len(a["step_ms"]) == 3, a
    assert abs(a["params"] - pub[m]) < 0.02 * pub[m], a["params"]
    assert a["ttft_ms"] > 0 and a["tpot_ms"] > 0 and a["tpot_p95_ms"] >= a["tpot_ms"]
    # decode reads every weight once: at least the model's fp32 bytes minus the embedding tables
    assert 0.6 * 4 * pub[m] < a["weight_bytes_per_token"] < 4.4 * pub[m], a["weight_bytes_per_token"]
    assert abs(a["bound_tpot_ms"] - a["weight_bytes_per_token"] / (a["mem_bandwidth_gbs"] * 1e9) * 1e3) < 1e-6 * a["bound_tpot_ms"] + 1e-9
    assert "mem_bandwidth_gbs" not in s
    # greedy decoding is deterministic: a shorter run is a prefix of a longer one
    assert s["tokens"] == a["tokens"][:2], (s["tokens"], a["tokens"])
    assert all(0 <= t < 60000 for t in a["tokens"])
EOF2

"$M" generate --model resnet50 >"$tmp/out" 2>&1 && fail "a CNN was accepted"
grep -q "not a decoder" "$tmp/out" || fail "message for a non-decoder: $(cat "$tmp/out")"
"$M" generate --model gpt2 -p 1000 -n 100 >"$tmp/out" 2>&1 && fail "a context beyond 1024 was accepted"
grep -q "at most 1024 positions" "$tmp/out" || fail "message for a long context: $(cat "$tmp/out")"
"$M" generate --model gpt2 -p 4 -n 4 --capacity 5 >"$tmp/out" 2>&1 && fail "a small capacity was accepted"
"$M" generate --model gpt2 -p 0 >"$tmp/out" 2>&1 && fail "-p 0 was accepted"
grep -q -- "--prompt-tokens '0'" "$tmp/out" || fail "message for -p 0: $(cat "$tmp/out")"
"$M" generate -p 4 >"$tmp/out" 2>&1 && fail "no --model was accepted"
grep -q -- "--model is required" "$tmp/out" || fail "message without --model: $(cat "$tmp/out")"

# planning a split: every cut predicted, EdgeShard's the least total, the split run's tokens the unsplit model's
export XDG_CACHE_HOME="$tmp/cache" # measured profiles are cached here
"$M" generate --model gpt2 -p 4 -n 3 --link rate=50mbit,rtt=40ms --verify --json >"$tmp/plan.json" 2>"$tmp/err" ||
    fail "plan mode exited $?: $(cat "$tmp/err")"
"$M" generate --model gpt2 -p 4 -n 3 --link rate=50mbit,rtt=40ms --split 6 --verify --json >"$tmp/plan6.json" \
    2>"$tmp/err" || fail "--split 6 exited $?: $(cat "$tmp/err")"
python3 - "$tmp" <<'EOF2' || fail "plan mode content"
import json, sys
d = sys.argv[1]
a = json.load(open(f"{d}/plan.json"))
s = a["splits"]
assert a["layers"] == 12 and len(s) == 13, a
best = min(range(13), key=lambda k: s[k]["predicted_total_ms"])
assert a["edgeshard_split_after"] == a["split_after"] == best, (a["split_after"], best)
assert a["output_match"] is True and len(a["tokens"]) == 3
assert s[12]["up_bytes_per_token"] == 0 and s[0]["up_bytes_per_token"] > 768 * 4
for e in s:
    assert abs(e["predicted_total_ms"] - (e["predicted_ttft_ms"] + 2 * e["predicted_tpot_ms"])) < 1e-6 * e["predicted_total_ms"]
    assert e["predicted_tpot_ms"] > 0
b = json.load(open(f"{d}/plan6.json"))
assert b["split_after"] == 6 and b["output_match"] is True and b["tokens"] == a["tokens"]
assert b["predicted_tpot_ms"] == b["splits"][6]["predicted_tpot_ms"]
EOF2
"$M" generate --model gpt2 -p 4 -n 3 --verify >"$tmp/out" 2>&1 && fail "--verify without --link was accepted"
grep -q "need --link" "$tmp/out" || fail "message for --verify alone: $(cat "$tmp/out")"
"$M" generate --model gpt2 -p 4 -n 3 --link rtt=40ms --split 13 >"$tmp/out" 2>&1 && fail "--split 13 was accepted"
grep -q "from 0 to 12" "$tmp/out" || fail "message for --split 13: $(cat "$tmp/out")"

"$M" models --json gpt2 smollm_135m tinyllama_1b >"$tmp/models.json" || fail "models DECODERS exited $?"
python3 - "$tmp/models.json" <<'EOF2' || fail "models content for the decoders"
import json, sys
a = {o["name"]: o for o in json.load(open(sys.argv[1]))}
for m, p in (("gpt2", 124.44e6), ("smollm_135m", 134.515e6), ("tinyllama_1b", 1100.048e6)):
    assert abs(a[m]["params"] - p) < 0.02 * p, (m, a[m]["params"])
EOF2
echo "ok"
