#!/bin/sh
# The zoo's transformers end to end: every built-in policy plans DeiT-Tiny
# and BERT-base and the executed plans are bit-exact; cpu and ref agree;
# BERT's export (int64 token ids) runs through the conformance runner on both
# backends; and, as root, a measured `mecbed run` of DeiT-Tiny split over an
# emulated link reproduces the unsplit output.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-tf.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# every policy, verified (a rate at which DeiT-Tiny is split after its patch embedding)
for m in deit_tiny bert_base; do
    "$M" compare --model "$m" --link rate=100mbit,rtt=10ms --verify --json >"$tmp/$m.json" 2>"$tmp/err" ||
        fail "compare $m exited $?: $(cat "$tmp/err")"
    python3 - "$tmp/$m.json" "$m" <<'PY' || fail "compare $m: $(cat "$tmp/$m.json")"
import json, sys
rows = json.load(open(sys.argv[1]))
names = {r["policy"] for r in rows}
for p in ("local", "offload", "layerwise", "mincut", "cic", "tile", "oplevel", "dds"):
    assert p in names, p
for r in rows:
    assert "error" not in r, r
    assert r["output_match"] is True and r["max_abs_err"] == 0, r
split = [r for r in rows if r["policy"] == "layerwise"][0]
loc = [r for r in rows if r["policy"] == "local"][0]
# BERT: offloading its three int64 inputs (4.6 kB) beats running it locally
assert split["latency_ms"] < loc["latency_ms"], (split, loc)
PY
done

# fast kernels against the reference
"$M" infer --model deit_tiny --compare-ref --json >"$tmp/infer.json" || fail "infer deit_tiny exited $?"
python3 - "$tmp/infer.json" <<'PY' || fail "cpu vs ref: $(grep -o '"compare[^}]*' "$tmp/infer.json")"
import json, sys
o = json.load(open(sys.argv[1]))
c = o["compare_ref"]
assert c["max_abs_diff"] < 1e-5 * max(1.0, c["max_abs_ref"]), c
PY

# BERT exported with its int64 inputs, checked by the conformance runner on both backends
mkdir -p "$tmp/data/test_bert"
"$M" export --model bert_base -o "$tmp/data/test_bert/model.onnx" --test-data >/dev/null || fail "export bert_base"
for be in ref cpu; do
    "$M" conformance --all --kernels $be --data "$tmp/data" >"$tmp/conf" 2>&1
    tail -n 1 "$tmp/conf" | grep -q "^1 passed, 0 failed, 0 skipped" || fail "bert_base export on $be: $(cat "$tmp/conf")"
done

[ "$(id -u)" = 0 ] || { echo "skip: the measured run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
"$M" run --model deit_tiny --policy layerwise --link rate=100mbit,rtt=10ms --frames 2 --json >"$tmp/run.json" \
    2>"$tmp/err" || fail "run deit_tiny exited $?: $(cat "$tmp/err")"
python3 - "$tmp/run.json" <<'PY' || fail "run deit_tiny: $(cat "$tmp/run.json")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["output_match"] is True and o["max_abs_err"] == 0, o
assert o["ok_frames"] == 2 and o["failed_frames"] == 0, o
assert o["bytes_up"] < 602112, o  # the split sends the patch embedding, not the image
PY
echo ok
