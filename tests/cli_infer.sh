#!/bin/sh
# `mecbed infer`: a zoo model with profile and .npy output, a model file with
# a .npy input whose output is checked independently (in Python, without
# NumPy), --json, --compare-ref, and errors.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-infer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

# a zoo model, fast backend, profile CSV and output .npy
"$M" infer --model resnet18 --repeats 2 --output "$tmp/y.npy" --profile "$tmp/p.csv" >"$tmp/out" 2>&1 ||
    fail "infer resnet18 exited $?: $(cat "$tmp/out")"
grep -q "OpenBLAS core" "$tmp/out" || fail "no OpenBLAS core in the output"
grep -q "layer1.0.conv1 *Conv" "$tmp/out" || fail "profile table lacks layer1.0.conv1"
grep -q "^output 0 'fc': 1x1000" "$tmp/out" || fail "output line: $(grep ^output "$tmp/out")"
[ "$(wc -c <"$tmp/y.npy")" -eq $((128 + 4000)) ] || fail "y.npy has $(wc -c <"$tmp/y.npy") bytes"
head -c 6 "$tmp/y.npy" | grep -q NUMPY || fail "y.npy is not .npy"
grep -q "^# blas_core=" "$tmp/p.csv" || fail "profile lacks blas_core"
grep -q "^op,name,type,ms,bytes_out,macs" "$tmp/p.csv" || fail "profile header"
[ "$(grep -c '^[0-9]' "$tmp/p.csv")" -eq 70 ] || fail "profile should have 70 rows"

# a model file with an input file: y = x0 - 2*x1 + 0.5 (1x1 conv), then relu
cat >"$tmp/net.mbm" <<'EOF'
mecbed-model 1
Input x shape=1,2,2,3
Conv c x W=values(1x2x1x1,1,-2) B=values(1,0.5)
Relu r c
output r c
EOF
python3 - "$tmp" <<'EOF' || fail "writing x.npy"
import struct, sys
d = sys.argv[1]
vals = [0.5, -1, 2, 3, 0, -4, 1, 1, -1, 2, 0.25, -3]
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2, 3), }"
hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
with open(d + "/x.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<12f", *vals))
EOF
"$M" infer --model "$tmp/net.mbm" --input "$tmp/x.npy" --output "$tmp/r.npy" --output "$tmp/c.npy" \
    --json >"$tmp/j" 2>"$tmp/err" || fail "infer net.mbm exited $?: $(cat "$tmp/err")"
python3 - "$tmp" <<'EOF' || fail "checking outputs"
import json, struct, sys
d = sys.argv[1]
def load(p):
    b = open(p, "rb").read()
    assert b[:6] == b"\x93NUMPY"
    hl = struct.unpack("<H", b[8:10])[0]
    hdr = b[10:10 + hl].decode()
    assert "'<f4'" in hdr and "(1, 1, 2, 3)" in hdr, hdr
    return struct.unpack("<6f", b[10 + hl:])
x = [0.5, -1, 2, 3, 0, -4, 1, 1, -1, 2, 0.25, -3]
c = [x[i] - 2 * x[6 + i] + 0.5 for i in range(6)]
r = [max(0.0, v) for v in c]
assert all(abs(a - b) < 1e-6 for a, b in zip(load(d + "/c.npy"), c)), (load(d + "/c.npy"), c)
assert all(abs(a - b) < 1e-6 for a, b in zip(load(d + "/r.npy"), r))
j = json.load(open(d + "/j"))
for k in ("model", "backend", "threads", "blas_core", "total_ms", "macs", "profile", "outputs"):
    assert k in j, k
assert [o["name"] for o in j["outputs"]] == ["r", "c"]
assert [p["type"] for p in j["profile"]] == ["Input", "Conv", "Relu"]
for p in j["profile"]:
    for k in ("op", "name", "type", "ms", "bytes_out", "macs", "gflops"):
        assert k in p, k
# convs carry their window (scripts/ort-op-types.py groups by it); other ops do not
conv = j["profile"][1]
assert (conv["kernel"], conv["stride"], conv["group"], conv["in_channels"]) == ([1, 1], [1, 1], 1, 2), conv
assert "kernel" not in j["profile"][2]
EOF

# the reference backend agrees with the fast one (kernels/ref is always
# built: a failing --compare-ref is a failure, whatever it prints)
"$M" infer --model mobilenetv2 --compare-ref >"$tmp/cmp" 2>&1 || fail "compare-ref exited non-zero: $(tail -3 "$tmp/cmp")"
python3 - "$tmp/cmp" <<'EOF' || fail "compare-ref: $(grep compare-ref "$tmp/cmp")"
import re, sys
m = re.search(r"compare-ref: max \|cpu - ref\| = (\S+) \(max \|ref\| (\S+)\)", open(sys.argv[1]).read())
assert m, "no compare-ref line"
assert float(m.group(1)) <= 1e-4 * float(m.group(2)), m.group(0)
EOF

# errors
"$M" infer >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --model should exit 2"
"$M" infer --help | grep -q "usage: mecbed infer" || fail "--help"
"$M" infer --model resnet18 --threads 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--threads 0 should exit 2"
"$M" infer --model nosuchnet >"$tmp/e" 2>&1; [ $? -eq 1 ] || fail "unknown model should exit 1"
grep -q "unknown model 'nosuchnet'" "$tmp/e" || fail "unknown model message: $(cat "$tmp/e")"
"$M" infer --model resnet18 --kernels gpu9 >"$tmp/e" 2>&1; [ $? -eq 1 ] || fail "bad kernels should exit 1"
grep -q "unknown backend 'gpu9'" "$tmp/e" || fail "bad kernels message: $(cat "$tmp/e")"
grep -q "deprecated" "$tmp/e" && fail "--kernels printed a deprecation notice"
# --kernels picks the kernels; the old spelling --backend (and -b) still works, with one notice
"$M" infer --model "$tmp/net.mbm" --kernels ref --json >"$tmp/k.json" 2>"$tmp/k.err" || fail "--kernels ref"
grep -q '"backend":[[:space:]]*"ref"' "$tmp/k.json" || fail "--kernels ref ran $(grep backend "$tmp/k.json")"
[ -s "$tmp/k.err" ] && fail "--kernels wrote to stderr: $(cat "$tmp/k.err")"
for old in --backend -b; do
    "$M" infer --model "$tmp/net.mbm" $old ref --json >"$tmp/b.json" 2>"$tmp/b.err" || fail "$old ref"
    grep -q '"backend":[[:space:]]*"ref"' "$tmp/b.json" || fail "$old ref ran $(grep backend "$tmp/b.json")"
    [ "$(cat "$tmp/b.err")" = "mecbed: --backend is deprecated here; use --kernels" ] ||
        fail "$old notice: $(cat "$tmp/b.err")"
done
"$M" infer --help | grep -q -- "--kernels NAME" || fail "--help lacks --kernels"
"$M" infer --model resnet18 --input "$tmp/x.npy" >"$tmp/e" 2>&1; [ $? -eq 1 ] || fail "wrong input shape should exit 1"
grep -q "has shape 1x2x2x3, the model expects 1x3x224x224" "$tmp/e" || fail "shape message: $(cat "$tmp/e")"
printf 'not an array' >"$tmp/bad.npy"
"$M" infer --model "$tmp/net.mbm" --input "$tmp/bad.npy" >"$tmp/e" 2>&1; [ $? -eq 1 ] || fail "bad npy should exit 1"
grep -q "bad.npy: not a NumPy .npy file" "$tmp/e" || fail "bad npy message: $(cat "$tmp/e")"
"$M" infer --model "$tmp/net.mbm" --output "$tmp/a.npy" --output "$tmp/b.npy" --output "$tmp/c2.npy" >"$tmp/e" 2>&1
[ $? -eq 1 ] || fail "too many --output should exit 1"
grep -q "has 2 outputs, 3 --output files given" "$tmp/e" || fail "outputs message: $(cat "$tmp/e")"
echo "cli_infer: ok"
