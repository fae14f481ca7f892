#!/bin/sh
# ONNX commands end to end: export a zoo model with an ONNX backend-test data
# set and run it through `mecbed conformance --data`; import to the text
# format and check `mecbed infer` gives the same output from the .onnx and
# the .mbm; truncated models and tensors give clear errors naming the file,
# never a crash; unsupported operators are named.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-onnx.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$tmp/suite/test_resnet18"
"$M" export --model resnet18 -o "$tmp/suite/test_resnet18/model.onnx" --test-data >"$tmp/out" 2>&1 ||
    fail "export exited $?: $(cat "$tmp/out")"
# one op count everywhere: export, import, infer and plan say 69 ops for resnet18
grep -q "model resnet18, 69 ops," "$tmp/out" || fail "export summary: $(cat "$tmp/out")"
[ -s "$tmp/suite/test_resnet18/test_data_set_0/input_0.pb" ] || fail "no input_0.pb"
[ -s "$tmp/suite/test_resnet18/test_data_set_0/output_0.pb" ] || fail "no output_0.pb"
# the reference backend must agree with what the cpu backend wrote
"$M" conformance --kernels ref --data "$tmp/suite" --verbose >"$tmp/out" 2>&1 ||
    fail "conformance on the export: $(cat "$tmp/out")"
grep -q "^PASS  suite/test_resnet18" "$tmp/out" || fail "export not passed: $(cat "$tmp/out")"
tail -n 1 "$tmp/out" | grep -q "^1 passed, 0 failed, 0 skipped$" || fail "$(tail -n 1 "$tmp/out")"

# import to the text format; the same output from both files
"$M" import "$tmp/suite/test_resnet18/model.onnx" -o "$tmp/r18.mbm" >"$tmp/out" 2>&1 || fail "import: $(cat "$tmp/out")"
grep -q "69 ops, 11.699 M params" "$tmp/out" || fail "import summary: $(cat "$tmp/out")"
"$M" infer --model "$tmp/suite/test_resnet18/model.onnx" --output "$tmp/a.npy" >/dev/null 2>&1 || fail "infer .onnx"
"$M" infer --model "$tmp/r18.mbm" --output "$tmp/b.npy" >/dev/null 2>&1 || fail "infer .mbm"
cmp -s "$tmp/a.npy" "$tmp/b.npy" || fail "the .onnx and the imported .mbm give different outputs"
"$M" infer --model "$tmp/r18.mbm" 2>/dev/null | head -n 1 | grep -q ": 69 ops," || fail "infer's op count"
"$M" plan --model "$tmp/r18.mbm" --policy local --link rate=10mbit 2>/dev/null | grep -q "(69 ops)" || fail "plan's op count"
"$M" import "$tmp/suite/test_resnet18/model.onnx" --json >"$tmp/j" || fail "import --json"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["ops"]==69 and o["inputs"][0]["shape"]==[1,3,224,224], o' \
    "$tmp/j" || fail "import --json output"

# truncated models: a clear error naming the file, exit 1, no crash
size=$(wc -c <"$tmp/suite/test_resnet18/model.onnx")
for cut in 0 1 7 100 4096 $((size / 3)) $((size / 2)) $((size - 1000)) $((size - 1)); do
    head -c "$cut" "$tmp/suite/test_resnet18/model.onnx" >"$tmp/cut.onnx"
    "$M" infer --model "$tmp/cut.onnx" >"$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 1 ] || fail "cut at $cut: exit status $rc: $(cat "$tmp/out")"
    grep -q "cut.onnx" "$tmp/out" || fail "cut at $cut: error does not name the file: $(cat "$tmp/out")"
    "$M" import "$tmp/cut.onnx" >"$tmp/out" 2>&1
    [ $? -eq 1 ] || fail "import of a cut at $cut"
done

# a truncated expected output: the test fails, naming the file
head -c 100 "$tmp/suite/test_resnet18/test_data_set_0/output_0.pb" >"$tmp/o.pb"
mv "$tmp/o.pb" "$tmp/suite/test_resnet18/test_data_set_0/output_0.pb"
"$M" conformance --data "$tmp/suite" >"$tmp/out" 2>&1 && fail "a truncated output_0.pb passed"
grep -q "^FAIL.*output_0.pb" "$tmp/out" || fail "no FAIL naming output_0.pb: $(cat "$tmp/out")"

# an operator mecbed does not run is named with its node and opset
T=/usr/share/libonnx-testdata/data/node/test_gathernd_example_float32/model.onnx
if [ -f "$T" ]; then
    "$M" import "$T" >"$tmp/out" 2>&1 && fail "GatherND imported"
    grep -q "not supported: .*node 'output' (GatherND, opset [0-9]*, #0): operator GatherND is not supported" "$tmp/out" ||
        fail "unsupported-operator message: $(cat "$tmp/out")"
fi

# usage errors
"$M" export --model nosuchmodel -o "$tmp/x.onnx" >"$tmp/out" 2>&1 && fail "unknown model exported"
"$M" export --model resnet18 >"$tmp/out" 2>&1; [ $? -eq 2 ] || fail "export without -o"
"$M" import >"$tmp/out" 2>&1; [ $? -eq 2 ] || fail "import without a file"
"$M" import x.onnx --shape bad >"$tmp/out" 2>&1; [ $? -eq 2 ] || fail "import --shape bad"
for c in import export conformance; do "$M" $c --help >/dev/null || fail "$c --help"; done
echo "ok"
