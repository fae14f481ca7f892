#!/bin/sh
# The head-parallel policy (headpar, Galaxy-style): DeiT-Tiny, ViT-B/16 and
# BERT-base split across three edge nodes on a LAN, every plan executed
# in-process (--verify) and compared with the unsplit model (within the
# verifier's tolerance on cpu, bit-exact on ref; bit-exact on cpu here too); the split really splits (heads on every edge node,
# bytes exchanged between the edges), both MLP modes, the ref backend,
# `compare` listing it, clear errors and (as root) a measured run.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-headpar.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_CACHE_HOME="$tmp/cache"
fail() { echo "FAIL: $*"; exit 1; }

{
    printf '[node device]\nrole = device\ntype = phone\n'
    for i in 0 1 2; do printf '[node edge%d]\nrole = edge\ntype = jetson-nano\n' $i; done
    printf '[link device edge0]\nspec = rate=400mbit,rtt=2ms\n'
    printf '[link edge0 edge1]\nspec = rate=10gbit,delay=0.05ms\n'
    printf '[link edge0 edge2]\nspec = rate=10gbit,delay=0.05ms\n'
} >"$tmp/lan3.ini"

# plan M OPTS NAME [more args]: plan --verify --json into $tmp/NAME.json
plan() {
    m=$1 opts=$2 name=$3
    shift 3
    "$M" plan --model "$m" --policy headpar ${opts:+--policy-opt "$opts"} --topology "$tmp/lan3.ini" --verify \
        --json "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" || fail "$name: plan exited $?: $(cat "$tmp/$name.err")"
}

check() { # name expected-k expected-mlp-hidden (or -)
    python3 - "$tmp/$1.json" "$2" "$3" <<'PY' || fail "$1: $(head -c 2000 "$tmp/$1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
k, hid = int(sys.argv[2]), sys.argv[3]
v, m, p = d["verify"], d["metrics"], d["pred"]
assert v["ok"] is True and v["output_match"] is True, v
if d.get("kernels", "cpu") == "ref" or "ref" in sys.argv[1]:
    assert v["max_abs_err"] == 0, v  # the reference kernels: bit-exact
assert int(m["k_edges"]) == k, m
if hid != "-":
    assert int(m["mlp_hidden"]) == int(hid), m
assert m["attention_blocks"] == 12, m
if k > 1:
    assert m["sync_bytes"] > 0 and p["bytes_backbone"] >= m["sync_bytes"], (m, p)
    # every edge node computes a part of every attention's softmax (its heads)
    sm = {}
    for s in d["steps"]:
        if s["kind"] == "compute" and s["op_name"].endswith("attn.softmax"):
            sm.setdefault(s["op_name"], set()).add(s["site"])
    assert len(sm) == 12 and all(len(x) == k for x in sm.values()), sm
    # per block, the exchange is the all-gather before Q/K/V plus the heads' all-to-all,
    # a small multiple of one [tokens, width] activation (token_bytes per token)
    act = m["tokens"] * m["token_bytes"]
    assert act * 0.5 < m["sync_bytes_per_block"] < act * (8 if int(m["mlp_hidden"]) else 4), (m, act)
PY
}

plan deit_tiny "" auto
check auto 3 -
plan deit_tiny "k=1,exact_k=1" k1
check k1 1 -
python3 - "$tmp/auto.json" "$tmp/k1.json" <<'PY' || fail "three edge nodes are not faster than one on a 10 Gbit/s LAN"
import json, sys
a, b = (json.load(open(f))["pred"]["latency_ms"] for f in sys.argv[1:3])
assert a < b, (a, b)
PY
plan deit_tiny "exact_k=1,mlp=hidden" hidden
check hidden 3 1
plan deit_tiny "exact_k=1,mlp=tokens" ref --kernels ref
check ref 3 0
plan bert_base "exact_k=1,mlp=hidden" bert
check bert 3 1
plan vit_b16 "exact_k=1,k=2,mlp=tokens" vit
check vit 2 0

# compare lists it
"$M" compare --model deit_tiny --link rate=18.88mbit,rtt=20ms --json >"$tmp/cmp.json" 2>"$tmp/err" ||
    fail "compare: $(cat "$tmp/err")"
grep -q '"policy": *"headpar"' "$tmp/cmp.json" || fail "compare does not list headpar: $(cat "$tmp/cmp.json")"

# clear errors
# a CNN: nothing to split by heads, planned whole (compare and sweeps plan every model), said so;
# exact_k asks for a split and is refused
"$M" plan --model resnet18 --policy headpar --topology "$tmp/lan3.ini" --verify >"$tmp/out" 2>&1 ||
    fail "headpar on a CNN: $(cat "$tmp/out")"
grep -q "no multi-head attention in resnet18" "$tmp/out" || fail "CNN note: $(cat "$tmp/out")"
grep -q "bit-exact" "$tmp/out" || fail "CNN verify: $(cat "$tmp/out")"
"$M" plan --model resnet18 --policy headpar --policy-opt exact_k=1 --topology "$tmp/lan3.ini" >"$tmp/out" 2>&1 &&
    fail "exact_k split a CNN"
grep -q "no multi-head attention to split" "$tmp/out" || fail "CNN exact_k error: $(cat "$tmp/out")"
"$M" plan --model deit_tiny --policy headpar --policy-opt mlp=rows --topology "$tmp/lan3.ini" >"$tmp/out" 2>&1 &&
    fail "mlp=rows accepted"
grep -q "mlp is 'rows'" "$tmp/out" || fail "bad mlp error: $(cat "$tmp/out")"

# measured: the split plan executed by the runtime (device and three edge
# nodes in their own namespaces, regions of 2-D/3-D tensors on the wire)
[ "$(id -u)" = 0 ] || { echo "skip: the measured run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
"$M" run --model deit_tiny --policy headpar --policy-opt exact_k=1 --topology "$tmp/lan3.ini" --frames 2 --json \
    >"$tmp/run.json" 2>"$tmp/err" || fail "run headpar exited $?: $(cat "$tmp/err")"
python3 - "$tmp/run.json" <<'PY' || fail "run headpar: $(cat "$tmp/run.json")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["output_match"] is True, o
assert o["ok_frames"] == 2 and o["failed_frames"] == 0, o
PY
echo ok
