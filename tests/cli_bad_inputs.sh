#!/bin/sh
# Inputs that once crashed, hung or read without bound, each now refused at
# once with an error naming the file: a zero-size conv kernel (SIGFPE), a
# profile op time of 1e40 ms (min cut looped forever), /dev/zero and FIFOs
# given as model, trace, profile, topology or .npy (grew or blocked forever),
# NaN in an input .npy; and inputs whose errors were unclear: tensors too
# large for the machine, NUL bytes, long or duplicated lines in sweep
# configs, node types and topologies, unknown node types, malformed profile
# headers, non-trace files. Every command runs under `timeout`, so a
# regression fails instead of hanging the suite.
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
# dimensions too large for any machine (hundreds of TB, within the element
# bound of shape inference): named, not "out of memory", before allocating
printf 'mecbed-model 1\nInput d shape=1,1,10000000,10000000\nRelu r d\noutput r\n' > $T/huge.mbm
want="huge.mbm: model 'huge': input 'd' (Input) is 1x1x10000000x10000000 float32, 400000.0 GB: more than this machine's"
expect $B infer --model $T/huge.mbm
printf 'mecbed-model 1\nInput d shape=1,3,64,64\nResize r d scales=1,1,100000,100000\noutput r\n' > $T/wide.mbm
want="model 'wide': the output of op 'r' (Resize) is 1x3x6400000x6400000 float32, 491520.0 GB"
expect $B profile --model $T/wide.mbm
# an embedded NUL byte ends the line in C: refused at its line and column
printf 'mecbed-model 1\nInput d\000 shape=1,3,8,8\nRelu r d\noutput r\n' > $T/nul.mbm
want="nul.mbm:2: a NUL byte at column 8"
expect $B infer --model $T/nul.mbm
printf '# mecbed-trace 1\n0 1\000 2\nend 3\n' > $T/nul.trace
want="nul.trace:2: a NUL byte"
expect $B trace stats $T/nul.trace

# sweep configs: a line longer than inih's buffer, a key or section given
# twice (the last used to win), an error on a later line names that line
S="[sweep]\nname = t\npolicies = local\nlinks = rate=10mbit\n"
python3 -c "print('[sweep]\nname = t\nmodels = ' + ' '.join(['mobilenetv2'] * 18) + ' x')" > $T/long.conf  # 226 characters
want="long.conf:3: line of 226 characters: at most 198 fit (continue a long value on indented lines)"
expect $B sweep $T/long.conf --out $T/o
printf "$S"'models = alexnet\npolicies = mincut\n' > $T/dupkey.conf
want="dupkey.conf:6: 'policies' given twice in [sweep] (first at line 3)"
expect $B sweep $T/dupkey.conf --out $T/o
printf "$S"'[quick]\nmodels = alexnet\n[quick]\nlinks = rate=1mbit\n' > $T/dupsec.conf
want="dupsec.conf:7: section [quick] appears twice (first at line 5)"
expect $B sweep $T/dupsec.conf --out $T/o
printf "$S"'models = alexnet\nfps = fast\nframes = 0\n' > $T/twoerr.conf
want="twoerr.conf:6: fps: 'fast' is not a number >= 0"
expect $B sweep $T/twoerr.conf --out $T/o
want="/dev/zero: is a character device, not a regular file"
expect $B sweep /dev/zero --out $T/o

# node types: the same checks (and only regular files)
printf '[fast]\nspeed = 2\ncompute_w = 3\nspeed = 4\n' > $T/dupkey.ini
want="dupkey.ini:4: 'speed' given twice in [fast] (first at line 2)"
expect $B plan --model alexnet --policy local --link rate=10mbit --node-types $T/dupkey.ini
printf '[fast]\nspeed = 2\n[fast]\nidle_w = 1\n' > $T/dupsec.ini
want="dupsec.ini:3: section [fast] appears twice (first at line 1)"
expect $B plan --model alexnet --policy local --link rate=10mbit --node-types $T/dupsec.ini
want="fifo: is a FIFO, not a regular file"
expect $B plan --model alexnet --policy local --link rate=10mbit --node-types $T/fifo

# topologies: a node key given twice; an unknown node type names file and line
printf '[node device]\nrole = device\ntype = phone\nrole = edge\n' > $T/dupkey-topo.ini
want="dupkey-topo.ini:4: role given twice for node 'device' (first at line 2)"
expect $B plan --model alexnet --policy local --topology $T/dupkey-topo.ini
printf '[node device]\nrole = device\ntype = toaster\n[node edge0]\nrole = edge\n[link device edge0]\nspec = rate=10mbit\n' \
    > $T/toaster.ini
want="toaster.ini:3: node 'device': unknown node type 'toaster' (known: "
expect $B plan --model alexnet --policy local --topology $T/toaster.ini

# profiles: ref_gflops=0 is named as such (was "header lacks ref_gflops="), a
# malformed hash at its line; another version of the model is a warning
# naming both hashes
sed 's/ref_gflops=[0-9.]*/ref_gflops=0/' $P > $T/g0.csv
want="g0.csv:3: ref_gflops=0: not a number > 0"
expect $B plan --model alexnet --policy local --link rate=10mbit --profile $T/g0.csv
sed 's/hash=[0-9a-f]*/hash=nothex/' $P > $T/hx.csv
want="hx.csv:2: hash=nothex: not a model hash"
expect $B plan --model alexnet --policy local --link rate=10mbit --profile $T/hx.csv
sed 's/hash=[0-9a-f]*/hash=0123456789abcdef/' $P > $T/other.csv
timeout 20 $B plan --model alexnet --policy local --link rate=10mbit --profile $T/other.csv >"$T/out" 2>"$T/err" \
    || fail "a profile of another version was refused: $(cat "$T/err")"
grep -q "warning: profile $T/other.csv was measured on model 'alexnet' with hash 0123456789abcdef, but alexnet is model 'alexnet' with hash [0-9a-f]\{16\}" "$T/err" \
    || fail "no warning naming both hashes: $(cat "$T/err")"

# a file that is not a trace is not echoed
want="passwd:1: not a bandwidth trace: the first line matches no known format"
expect $B trace stats /etc/passwd
grep -q "root" "$T/err" && fail "the trace error echoes /etc/passwd: $(cat "$T/err")"
expect $B link test --link trace=/etc/passwd --duration 1
grep -q "root" "$T/err" && fail "link test echoes /etc/passwd: $(cat "$T/err")"

echo "bad inputs: all refused or handled"
