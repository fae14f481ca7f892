#!/bin/sh
# Seed corpora for the fuzz harnesses, made from what the repository already
# has: sample traces, topologies, sweep configs, profiles, plans written by
# `mecbed plan --json`, frame sequences from wire_seeds, small ONNX models of
# ONNX's own test data (libonnx-testdata, when installed), plus the seeds
# committed under fuzz/corpus/. Usage: BUILD=build fuzz/make-corpus.sh DIR
set -e
out=$1
B=${BUILD:-build}
[ -n "$out" ] || { echo "usage: make-corpus.sh DIR" >&2; exit 2; }
rm -rf "$out"
for n in modelfile onnx npy trace topology sweepconf plan_json linkspec profile wire auth; do
    mkdir -p "$out/$n"
    [ -d "fuzz/corpus/$n" ] && cp fuzz/corpus/$n/* "$out/$n/" 2>/dev/null || true
done
# harnesses that take a leading selector byte (trace: the format, 0 = auto;
# sweepconf: bit 0 = apply [quick]; auth: bit 0 = the node has no key)
prefixed() { # BYTE SRC DST
    { printf "\\$(printf '%03o' "$1")"; cat "$2"; } > "$3"
}
for f in traces/*.trace; do prefixed 0 "$f" "$out/trace/$(basename "$f")"; done
for f in experiments/*.conf; do
    prefixed 0 "$f" "$out/sweepconf/$(basename "$f")"
    prefixed 1 "$f" "$out/sweepconf/quick-$(basename "$f")"
done
cp experiments/topologies/*.ini "$out/topology/"
# the plan, profile and wire harnesses work on this small model (fuzz_util.h)
model=fuzz/corpus/modelfile/tiny_net.mbm
"$B/mecbed" profile --model $model --repeats 1 --out "$out/profile/tiny_net.csv" >/dev/null
# plans of several policies for it on a device-edge link
for p in local offload layerwise mincut oplevel tile; do
    "$B/mecbed" plan --model $model --profile "$out/profile/tiny_net.csv" --policy $p \
        --link rate=10mbit,rtt=20ms --json > "$out/plan_json/$p.json" 2>/dev/null || rm -f "$out/plan_json/$p.json"
done
"$B/fuzz/wire_seeds" "$out/wire"
# the handshake harness: a runner's HELLO to a node with a key (0) and without (1)
for f in "$out"/wire/*; do
    prefixed 0 "$f" "$out/auth/key-$(basename "$f")"
    prefixed 1 "$f" "$out/auth/nokey-$(basename "$f")"
done
td=/usr/share/libonnx-testdata/data/node
if [ -d $td ]; then
    for t in test_conv_with_strides_padding test_convtranspose_pads test_maxpool_2d_pads test_averagepool_2d_same_upper \
             test_gemm_transposeB test_globalaveragepool test_batchnorm_epsilon test_concat_3d_axis_1 test_hardswish \
             test_resize_upsample_scales_nearest test_relu test_add_bcast test_softmax_axis_1 test_flatten_axis1 \
             test_reshape_reordered_all_dims test_edge_pad test_clip test_matmul_2d test_leakyrelu test_sigmoid; do
        [ -f $td/$t/model.onnx ] && cp $td/$t/model.onnx "$out/onnx/$t.onnx"
    done
fi
echo "fuzz corpus: $(find "$out" -type f | wc -l) seeds in $out"
