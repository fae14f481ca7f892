#!/bin/sh
# An imported-style CNN with Resize (FPN) and ConvTranspose (head) ops,
# tests/models/textdet.mbm at a smaller input: the cpu backend against the
# reference backend, the same model through ONNX (export, import) on two
# threads, and tile splits of every local op on the cpu backend
# (tests/test_tiles with MECBED_TILE_BACKEND=cpu, 1e-5 of scale: the
# sgemm-based kernels re-block by tile size).
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-textdet.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

src=$(dirname "$0")/models/textdet.mbm
grep -q 'shape=1,3,640,640' "$src" || fail "$src: no 640x640 input line"
sed 's/shape=1,3,640,640/shape=1,3,96,128/' "$src" >"$tmp/small.mbm"

"$M" infer --model "$tmp/small.mbm" --compare-ref --json -o "$tmp/y_mbm.npy" >"$tmp/ref.json" 2>"$tmp/err" ||
    fail "infer --compare-ref: $(cat "$tmp/err")"
python3 - "$tmp/ref.json" <<'PY' || fail "cpu vs ref"
import json, sys
j = json.load(open(sys.argv[1]))
types = {p["type"] for p in j["profile"]}
assert {"Resize", "ConvTranspose"} <= types, types
c = j["compare_ref"]
print("cpu vs ref: max abs diff %.3g of max |y| %.3g" % (c["max_abs_diff"], c["max_abs_ref"]))
assert c["max_abs_ref"] > 0 and c["max_abs_diff"] <= 1e-5 * c["max_abs_ref"], c
PY

"$M" export --model "$tmp/small.mbm" -o "$tmp/small.onnx" >/dev/null 2>"$tmp/err" || fail "export: $(cat "$tmp/err")"
"$M" infer --model "$tmp/small.onnx" --threads 2 -o "$tmp/y_onnx.npy" >/dev/null 2>"$tmp/err" ||
    fail "infer the ONNX file: $(cat "$tmp/err")"
python3 - "$tmp/y_mbm.npy" "$tmp/y_onnx.npy" <<'PY' || fail "ONNX round trip on 2 threads differs"
import struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    d = b[10 + n:]
    return struct.unpack("<%df" % (len(d) // 4), d)
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == len(b) == 96 * 128, (len(a), len(b))
diff = max(abs(x - y) for x, y in zip(a, b))
print("model file vs ONNX, 1 vs 2 threads: max abs diff %.3g" % diff)
assert diff <= 1e-5 * max(abs(x) for x in a)
PY

[ -x "$BUILD/tests/test_tiles" ] || { echo "skip tiles: $BUILD/tests/test_tiles not built"; exit 0; }
MECBED_TILE_BACKEND=cpu MECBED_TILE_TOL=1e-5 "$BUILD/tests/test_tiles" >"$tmp/tiles" 2>&1 ||
    { tail -n 30 "$tmp/tiles"; fail "test_tiles on the cpu backend"; }
grep "single ops:" "$tmp/tiles"
echo "ok"
