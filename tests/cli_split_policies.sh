#!/bin/sh
# Command-level test of the split policies (tile, oplevel, dds) through
# `mecbed plan`: topology files with 1..4 edge nodes and with 4 devices,
# every plan executed in-process (--verify) and compared with the unsplit
# model, the JSON fields scripts read, and clear errors for bad options.
BUILD=${BUILD:-build}
MECBED="$BUILD/mecbed"
[ -x "$MECBED" ] || { echo "skip: $MECBED not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not installed (reads the JSON)"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-split.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
export XDG_CACHE_HOME="$dir/cache"
fail() { echo "FAIL: $*"; exit 1; }

# device -- edge0 (-- edge1..3 on a LAN) -- cloud
for K in 1 2 3 4; do
    {
        printf '[node device]\nrole = device\ntype = phone\n'
        i=0
        while [ $i -lt $K ]; do printf '[node edge%d]\nrole = edge\ntype = jetson-nano\n' $i; i=$((i+1)); done
        printf '[node cloud]\nrole = cloud\ntype = cloud-gpu\n'
        printf '[link device edge0]\nspec = rate=400mbit,rtt=2ms\n'
        i=1
        while [ $i -lt $K ]; do printf '[link edge0 edge%d]\nspec = rate=10gbit,delay=0.05ms\n' $i; i=$((i+1)); done
        printf '[link edge0 cloud]\nspec = rate=20mbit,delay=10ms\n'
    } > "$dir/tier$K.ini"
done
# four devices on different uplinks sharing edge0
{
    printf '[node edge0]\nrole = edge\ntype = edge-cpu\n'
    for i in 0 1 2 3; do printf '[node dev%d]\nrole = device\n' $i; done
    printf '[link dev0 edge0]\nspec = rate=1.1mbit,rtt=60ms\n'
    printf '[link dev1 edge0]\nspec = rate=5.85mbit,rtt=40ms\n'
    printf '[link dev2 edge0]\nspec = rate=18.88mbit,rtt=20ms\n'
    printf '[link dev3 edge0]\nspec = rate=100mbit,rtt=10ms\n'
} > "$dir/star4.ini"

field() { # file python-expression
    python3 -c "import json,sys; d=json.load(open('$1')); print($2)" || fail "cannot read $2 from $1"
}

tiles_seen=0
for K in 1 2 3 4; do
    "$MECBED" plan --model resnet18 --policy tile --topology "$dir/tier$K.ini" --verify --json \
        > "$dir/tile$K.json" 2> "$dir/tile$K.err" || { cat "$dir/tile$K.err"; fail "tile K=$K: plan --verify failed"; }
    [ "$(field "$dir/tile$K.json" "d['metrics']['k_edges']")" = "$K.0" ] ||
        [ "$(field "$dir/tile$K.json" "d['metrics']['k_edges']")" = "$K" ] || fail "tile K=$K: k_edges metric"
    field "$dir/tile$K.json" "d['metrics']['edge_cloud_bytes'] >= 0 and d['pred']['latency_ms'] > 0" | grep -q True ||
        fail "tile K=$K: latency or edge_cloud_bytes missing"
    t=$(field "$dir/tile$K.json" "int(d['metrics']['tiles'])")
    [ "$t" -gt 0 ] && tiles_seen=$((tiles_seen+1))
done
[ $tiles_seen -ge 1 ] || fail "tile never tiled with 2..4 Jetson-class edge nodes on a 10 Gbit/s LAN"

for R in 5.85 100; do
    "$MECBED" plan --model tinyyolov2 --policy oplevel --link "rate=${R}mbit,rtt=20ms" --verify --json \
        > "$dir/op.json" 2> "$dir/op.err" || { cat "$dir/op.err"; fail "oplevel at $R Mbit/s: plan --verify failed"; }
    "$MECBED" plan --model tinyyolov2 --policy layerwise --link "rate=${R}mbit,rtt=20ms" --json > "$dir/lw.json" 2>/dev/null ||
        fail "layerwise at $R Mbit/s"
    ok=$(python3 -c "import json; a=json.load(open('$dir/op.json')); b=json.load(open('$dir/lw.json')); print(a['pred']['latency_ms'] <= b['pred']['latency_ms'] + 1e-9)")
    [ "$ok" = True ] || fail "oplevel worse than layerwise at $R Mbit/s"
done

"$MECBED" plan --model resnet18 --policy dds --topology "$dir/star4.ini" --verify --json > "$dir/dds.json" 2> "$dir/dds.err" ||
    { cat "$dir/dds.err"; fail "dds: plan --verify failed"; }
field "$dir/dds.json" "d['metrics']['n_devices'] == 4 and d['metrics']['converged'] == 1 and 0 <= d['metrics']['server_util'] <= 1" |
    grep -q True || fail "dds metrics"

# bad options are clear errors, not crashes
"$MECBED" plan --model resnet18 --policy oplevel --link rate=10mbit --policy-opt server=nowhere > /dev/null 2> "$dir/e1" &&
    fail "oplevel accepted server=nowhere"
grep -q nowhere "$dir/e1" || fail "oplevel's error does not name the bad server"
"$MECBED" plan --model resnet18 --policy dds --link rate=10mbit --policy-opt capacity=0 > /dev/null 2> "$dir/e2" &&
    fail "dds accepted capacity=0"
grep -q capacity "$dir/e2" || fail "dds's error does not name capacity"
echo "split policies: tile K=1..4, oplevel, dds plans verified"
exit 0
