#!/bin/sh
# `mecbed conformance` on both kernel backends over ONNX's own backend tests
# (Debian libonnx-testdata): every in-scope test must pass or be skipped with
# a reason; a single failure fails this test. Also checks --json and --filter.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
[ -d "$DATA/node" ] || { echo "skip: ONNX test data not found in $DATA (Debian package libonnx-testdata)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-conf.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

for be in ref cpu; do
    "$M" conformance --backend "$be" --data "$DATA" >"$tmp/$be" 2>&1
    rc=$?
    grep '^FAIL' "$tmp/$be"
    last=$(tail -n 1 "$tmp/$be")
    echo "$be: $last"
    echo "$last" | grep -Eq '^[0-9]+ passed, 0 failed, [0-9]+ skipped$' || fail "$be: $last"
    [ $rc -eq 0 ] || fail "$be: exit status $rc with no failure listed"
    n=$(echo "$last" | cut -d' ' -f1)
    # ONNX 1.12's data has well over a hundred 2-D float cases of the listed ops
    [ "$n" -ge 150 ] || fail "$be: only $n tests passed"
    # every skip gives a reason
    if grep '^SKIP' "$tmp/$be" | grep -qv ': .'; then fail "$be: a skip without a reason"; fi
done

# the cases the foundation issue names must be among the passes
"$M" conformance --verbose --backend cpu --data "$DATA" >"$tmp/v" 2>&1
for t in node/test_conv_with_strides_padding node/test_maxpool_2d_pads node/test_averagepool_2d_same_upper \
         node/test_gemm_transposeB node/test_globalaveragepool node/test_batchnorm_epsilon \
         node/test_concat_3d_axis_1 node/test_hardswish node/test_resize_upsample_scales_nearest \
         node/test_convtranspose_pads pytorch-converted/test_Conv2d_depthwise_padded \
         pytorch-converted/test_Conv2d_groups pytorch-converted/test_Conv2d_dilated \
         pytorch-converted/test_Conv1d_dilated node/test_maxpool_1d_default node/test_convtranspose_1d; do
    grep -q "^PASS  $t " "$tmp/v" || fail "$t did not pass: $(grep " $t" "$tmp/v")"
done

# --json and --filter
"$M" conformance --json --filter test_gemm --data "$DATA" >"$tmp/j" || fail "--json --filter exited $?"
python3 - "$tmp/j" <<'PY' || fail "--json output"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["failed"] == 0 and o["passed"] >= 10, o
assert all("gemm" in t["name"] for t in o["tests"])
assert all(t["status"] in ("pass", "skip") for t in o["tests"])
PY

# a missing data folder is a clear error
"$M" conformance --data "$tmp/nowhere" >"$tmp/e" 2>&1 && fail "missing data folder accepted"
grep -q "nowhere" "$tmp/e" || fail "error does not name the folder: $(cat "$tmp/e")"
echo "ok"
