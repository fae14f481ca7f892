#!/bin/sh
# Inputs that once crashed, hung or read without bound, each now refused at
# once with an error naming the file: a zero-size conv kernel (SIGFPE), a
# profile op time of 1e40 ms (min cut looped forever), /dev/zero and FIFOs
# given as model, trace, profile, topology or .npy (grew or blocked forever),
# NaN in an input .npy. Every command runs under `timeout`, so a regression
# fails instead of hanging the suite.
B=${BUILD:-build}/mecbed
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-bad.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# expect CMD... : exits 1 (not a crash, not a timeout), stderr has $want
expect() {
    timeout 20 "$@" >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 1 ] || fail "$* exited $rc (want 1): $(cat "$T/err")"
    grep -qF -- "$want" "$T/err" || fail "$*: error lacks '$want': $(cat "$T/err")"
}

printf 'mecbed-model 1\nInput d shape=1,3,8,8\nConv c d W=he(16x3x0x0)\n' > $T/k0.mbm
want="k0.mbm:3: node 1 'c' (Conv): weights dimension 2 is 0"
expect $B infer --model $T/k0.mbm
expect $B models $T/k0.mbm
printf 'mecbed-model 1\nInput d shape=1,3,8,8\nConv c d group=-1 W=he(4x3x3x3)\n' > $T/g.mbm
want="group is -1"
expect $B infer --model $T/g.mbm

mkfifo $T/fifo
want="/dev/zero: is a character device, not a regular file"
expect $B infer --model /dev/zero
expect $B trace stats /dev/zero
expect $B infer --model resnet18 --input /dev/zero
expect $B plan --model alexnet --policy mincut --topology /dev/zero
want="fifo: is a FIFO, not a regular file"
expect $B infer --model $T/fifo
expect $B trace stats $T/fifo
expect $B plan --model alexnet --policy mincut --link rate=10mbit,rtt=20ms --profile $T/fifo
ln -s fifo $T/fifo.onnx
want="fifo.onnx: is a FIFO, not a regular file"
expect $B infer --model $T/fifo.onnx

# NaN in an input
python3 - "$T/nan.npy" <<'PY' || fail "write nan.npy"
import struct, sys
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }"
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
data = [0.5] * (3 * 224 * 224)
data[7] = float("nan")
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
    f.write(struct.pack("<%df" % len(data), *data))
PY
want="nan.npy: element 7 of 150528 is NaN"
expect $B infer --model resnet18 --input $T/nan.npy

# a trace rate whose mean overflowed to inf
printf '0 1.5\n1 1e308\n' > $T/big.trace
want="big.trace:2: rate 1e+308 Mbit/s exceeds the limit"
expect $B trace stats $T/big.trace

# a 1e40 ms op time: every min-cut policy ends, quickly
P=policies/profiles/alexnet.csv
[ -f $P ] || fail "$P missing"
sed 's/^5,\([^,]*\),\([^,]*\),[0-9.]*,/5,\1,\2,1e40,/' $P > $T/huge.csv
grep -q '^5,.*,1e40,' $T/huge.csv || fail "could not plant 1e40 in the profile"
for pol in mincut cic dds; do
    timeout 30 $B plan --model alexnet --policy $pol --link rate=10mbit,rtt=20ms --profile $T/huge.csv \
        >"$T/out" 2>"$T/err"
    rc=$?
    [ $rc -eq 0 ] || fail "plan --policy $pol with a 1e40 ms op exited $rc: $(tail -3 "$T/err")"
done
echo "bad inputs: all refused or handled"
