#!/bin/sh
# Exported models are valid ONNX by ONNX's own rules: every zoo model (and a
# model using every operator the exporter writes) passes onnx::checker's
# check_model and strict shape inference (types checked, inferred shapes
# must agree with the declared ones), compiled here against Debian's libonnx.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
CXX=${CXX:-g++}
command -v "$CXX" >/dev/null 2>&1 || { echo "skip: no C++ compiler ($CXX) for ONNX's checker"; exit 77; }
[ -f /usr/include/onnx/checker.h ] || { echo "skip: libonnx-dev not installed"; exit 77; }
[ -f /usr/include/google/protobuf/port_def.inc ] || { echo "skip: libprotobuf-dev not installed (ONNX's C++ headers need it)"; exit 77; }
base=${TMPDIR:-/tmp}
[ -z "$TMPDIR" ] && [ -w /dev/shm ] && base=/dev/shm # the zoo exports run to 550 MB a file
tmp=$(mktemp -d "$base/mecbed-cli-onnxchk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

cat >"$tmp/check.cc" <<'CC'
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <fstream>
#include <iostream>
int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        try {
            onnx::checker::check_model(std::string(argv[i]));
            onnx::ModelProto m;
            std::ifstream f(argv[i], std::ios::binary);
            if (!m.ParseFromIstream(&f))
                throw std::runtime_error("protobuf parse failed");
            onnx::ShapeInferenceOptions o{true, 1, false}; /* check types, errors are fatal */
            onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), o);
            std::cout << argv[i] << ": ok\n";
        } catch (const std::exception &e) {
            std::cout << argv[i] << ": " << e.what() << "\n";
            bad++;
        }
    }
    return bad ? 1 : 0;
}
CC
"$CXX" -O1 -DONNX_NAMESPACE=onnx -DONNX_ML=1 -o "$tmp/check" "$tmp/check.cc" -lonnx -lonnx_proto -lprotobuf \
    >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; echo "skip: cannot build a program against libonnx"; exit 77; }
# the checker itself must reject a broken model
printf 'garbage' >"$tmp/bad.onnx"
"$tmp/check" "$tmp/bad.onnx" >/dev/null 2>&1 && fail "the checker accepts garbage"

cat >"$tmp/all.mbm" <<'MBM'
mecbed-model 1
Input x shape=1,2,6,6
Pad p x pad_amounts=0,0,1,2,0,0,0,1 pad_mode=reflect
Resize r p scales=1,1,2,1.5 resize_mode=linear coord_mode=align_corners
ConvTranspose t r W=uniform(2x3x3x3,-1,1) B=const(3,0.5) stride=2,1 pads=1,0,1,0 output_padding=1,0
Clip c t alpha=-1 beta=1
HardSigmoid hs c alpha=0.3 beta=0.4
LeakyRelu lr hs alpha=0.1
HardSwish hw lr
Sigmoid sg hw
MaxPool mp sg kernel=2,2 stride=2,2 ceil_mode=1
AveragePool ap sg kernel=3,3 stride=2,2 pads=1,1,1,1 count_include_pad=1
Div dv ap B=const(1,4)
Flatten f mp axis=1
Flatten f2 dv axis=1
Concat cc f,f2 axis=1
Gemm gm cc trans_b=1 alpha=0.5 beta=2 B=uniform(5x672,-1,1) C=const(5,1)
Softmax sm gm axis=1
Reshape rs sm shape=1,5,1
MatMul mm rs B=uniform(1x3,-1,1)
Identity id mm
output id sm
MBM
files="$tmp/all.onnx"
"$M" export --model "$tmp/all.mbm" -o "$tmp/all.onnx" >/dev/null || fail "export all.mbm"
"$M" export --model mobilenetv2 --fold-bn -o "$tmp/mnv2_folded.onnx" >/dev/null || fail "export --fold-bn"
files="$files $tmp/mnv2_folded.onnx"
for m in $("$M" models --json | python3 -c 'import json,sys; print(" ".join(o["name"] for o in json.load(sys.stdin)))'); do
    "$M" export --model "$m" -o "$tmp/$m.onnx" >"$tmp/out" 2>&1 || fail "export $m: $(cat "$tmp/out")"
    "$tmp/check" "$tmp/$m.onnx" || fail "$m: ONNX's checker rejects the export"
    rm -f "$tmp/$m.onnx"
done
"$tmp/check" $files || fail "ONNX's checker rejects an export"
echo "ok"
