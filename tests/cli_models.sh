#!/bin/sh
# `mecbed models`: the zoo table, --json, model files, errors.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-models.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

"$M" models >"$tmp/out" 2>&1 || fail "models exited $?: $(cat "$tmp/out")"
for m in alexnet vgg16 resnet18 resnet50 resnet152 mobilenetv2 googlenet densenet121 tiny_yolov2 deit_tiny vit_b16 \
         bert_base; do
    grep -q "^$m " "$tmp/out" || fail "models does not list $m"
done
grep -q "^resnet50 .* 25\.610 .* 4\.117" "$tmp/out" || fail "resnet50 row: $(grep resnet50 "$tmp/out")"

"$M" models --json >"$tmp/json" || fail "models --json exited $?"
python3 - "$tmp/json" <<'EOF' || fail "models --json content"
import json, sys
a = json.load(open(sys.argv[1]))
assert isinstance(a, list) and len(a) == 12, a
for o in a:
    for k in ("name", "ops", "params", "macs", "largest_activation_bytes"):
        assert k in o, (k, o)
r = {o["name"]: o for o in a}
assert abs(r["vgg16"]["params"] - 138.36e6) < 0.02 * 138.36e6
assert abs(r["mobilenetv2"]["macs"] - 0.30e9) < 0.05 * 0.30e9
assert r["tiny_yolov2"]["output_shape"] == "1x125x13x13"
# the transformers: published sizes (class token and position embeddings are not counted, docs/onnx.md)
assert abs(r["deit_tiny"]["params"] - 5.717e6) < 0.02 * 5.717e6
assert abs(r["vit_b16"]["params"] - 86.567e6) < 0.02 * 86.567e6
assert abs(r["bert_base"]["params"] - 110e6) < 0.02 * 110e6
assert r["bert_base"]["input_shape"] == "128" and r["vit_b16"]["output_shape"] == "1x1000"
EOF

cat >"$tmp/net.mbm" <<'EOF'
mecbed-model 1
name two_layer
Input x shape=1,3,8,8
Conv c x W=he(4x3x3x3) pads=1
Relu r c
EOF
"$M" models --json "$tmp/net.mbm" resnet18 >"$tmp/json2" || fail "models FILE exited $?"
python3 - "$tmp/json2" <<'EOF' || fail "models FILE content"
import json, sys
a = json.load(open(sys.argv[1]))
assert [o["name"] for o in a] == ["two_layer", "resnet18"], a
assert a[0]["params"] == 108 and a[0]["macs"] == 4 * 64 * 27 + 4 * 64, a[0]
EOF

"$M" models --help | grep -q "usage: mecbed models" || fail "--help"
"$M" models --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option should exit 2"
"$M" models lenet5 >"$tmp/err" 2>&1; [ $? -eq 1 ] || fail "unknown model should exit 1"
grep -q "unknown model 'lenet5'" "$tmp/err" || fail "unknown model message: $(cat "$tmp/err")"
printf 'mecbed-model 1\nInput x shape=1,2\nRelu r y\n' >"$tmp/bad.mbm"
"$M" models "$tmp/bad.mbm" >"$tmp/err" 2>&1; [ $? -eq 1 ] || fail "bad model file should exit 1"
grep -q "bad.mbm:3: input 'y' is not defined" "$tmp/err" || fail "bad file message: $(cat "$tmp/err")"
echo "cli_models: ok"
