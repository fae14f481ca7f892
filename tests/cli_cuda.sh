#!/bin/sh
# The CUDA backend from the command line, on a GPU: the tile-stitching
# property (tests/test_tiles.c held to the cuda backend), ONNX's conformance
# tests on --backend cuda (every in-scope test that passes on ref must pass),
# and whole zoo models against the reference backend. Without a GPU, or in a
# build without nvcc, it skips (exit 77) and says why.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
DATA=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-cuda.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# Is there a cuda backend and a GPU? mb_backend_new says why not.
mkdir "$tmp/empty"
"$M" conformance --backend cuda --data "$tmp/empty" >"$tmp/probe" 2>&1
if grep -q "backend 'cuda'" "$tmp/probe"; then
    grep -q "cannot load libmecbed-cuda.so\|no usable GPU" "$tmp/probe" ||
        fail "cuda backend refused without a reason: $(cat "$tmp/probe")"
    echo "skip: $(grep "backend 'cuda'" "$tmp/probe" | sed 's/^mecbed conformance: //')"
    exit 77
fi

# 1. tiles stitched from the cuda backend's tile outputs equal its whole-op
#    output (bit-exact for its own kernels; cuBLAS convolutions within 1e-5)
MECBED_TILE_BACKEND=cuda MECBED_TILE_TOL=1e-5 "$BUILD/tests/test_tiles" >"$tmp/tiles" 2>&1 ||
    { tail -n 30 "$tmp/tiles"; fail "test_tiles on the cuda backend"; }
grep -E "single ops|fused" "$tmp/tiles"

# 2. ONNX conformance: cuda passes what ref passes
if [ -d "$DATA/node" ]; then
    "$M" conformance --backend ref --data "$DATA" >"$tmp/ref" 2>&1
    "$M" conformance --backend cuda --data "$DATA" >"$tmp/cuda" 2>&1
    rc=$?
    grep '^FAIL' "$tmp/cuda"
    ref_last=$(tail -n 1 "$tmp/ref")
    last=$(tail -n 1 "$tmp/cuda")
    echo "ref: $ref_last"
    echo "cuda: $last"
    echo "$last" | grep -Eq '^[0-9]+ passed, 0 failed, [0-9]+ skipped$' || fail "cuda conformance: $last"
    [ $rc -eq 0 ] || fail "cuda conformance: exit status $rc"
    [ "$(echo "$last" | cut -d' ' -f1)" = "$(echo "$ref_last" | cut -d' ' -f1)" ] ||
        fail "cuda passed $(echo "$last" | cut -d' ' -f1) tests, ref $(echo "$ref_last" | cut -d' ' -f1)"
else
    echo "note: ONNX test data not found in $DATA; conformance part not run"
fi

# 3. whole models against ref (the executor, cached weights, every op kind)
for model in mobilenetv2 resnet18 googlenet; do
    "$M" infer --model "$model" --backend cuda --compare-ref >"$tmp/$model" 2>&1 ||
        { tail -n 20 "$tmp/$model"; fail "infer $model on cuda"; }
    line=$(grep '^compare-ref:' "$tmp/$model")
    echo "$model: $line"
    # max |cuda - ref| <= 1e-4 of max |ref| (summation order differs layer after layer)
    echo "$line" | awk '{ for (i = 1; i <= NF; i++) { if ($i == "=") d = $(i+1); if ($i == "|ref|") s = $(i+1) }
                          gsub(/\)/, "", s); exit !(d + 0 <= 1e-4 * (s + 0)) }' ||
        fail "$model: cuda differs from ref more than 1e-4 of scale: $line"
done
echo "cuda backend: tiles, conformance and models agree with ref"
