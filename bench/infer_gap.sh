#!/bin/sh
# Gap between a whole inference and the sum of its per-op times, for every
# zoo model and a small model: `mecbed infer --repeats N --json` reports
# total_ms (sum of op medians) and wall_ms (whole call / repeats). A ratio
# near 1 means the profile describes execution. Optional second binary
# (e.g. an older build) is measured in the same run, interleaved, and its
# outputs are compared byte for byte with the first's. Each figure is the
# round with the median ratio of ROUNDS rounds (default 3): on a shared
# machine one preempted pass moves a mean (wall) but not a median (ops).
#   bench/infer_gap.sh [build/mecbed [OTHER_BINARY]]
set -eu
A=${1:-build/mecbed}
B=${2:-}
R=${REPEATS:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/small.mbm" <<'M'
mecbed-model 1
name small_net
seed 7
Input               data                  shape=1,3,64,64
Conv                conv1  data           kernel=3,3 pads=1,1,1,1 W=he(16x3x3x3) B=const(16,0)
BatchNormalization  bn1    conv1          epsilon=1e-5 scale=uniform(16,0.8,1.2) bias=const(16,0) mean=const(16,0) var=const(16,1)
Relu                relu1  bn1
MaxPool             pool1  relu1          kernel=2,2 stride=2,2
Conv                conv2  pool1          kernel=3,3 pads=1,1,1,1 W=he(16x16x3x3)
Add                 sum    conv2,pool1
GlobalAveragePool   gap    sum
Flatten             flat   gap            axis=1
Gemm                fc     flat           trans_b=1 B=he(10x16) C=const(10,0)
output fc
M
ROUNDS=${ROUNDS:-3}
ratio() {
    i=0
    while [ $i -lt "$ROUNDS" ]; do
        "$1" infer --model "$2" --repeats "$R" --json -o "$3" |
            python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.3f %.3f %.3f" % (d["total_ms"], d["wall_ms"], d["wall_ms"] / d["total_ms"]))'
        i=$((i + 1))
    done | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2)'
}
models="$(ls "$tmp"/small.mbm) $("$A" models | awk 'NR > 1 {print $1}')"
if [ -n "$B" ]; then
    printf '%-12s %10s %10s %7s   %10s %10s %7s  %s\n' model ops_ms wall_ms ratio ops_ms wall_ms ratio same_output
    printf '%-12s %30s   %30s\n' "" "($B)" "($A)"
else
    printf '%-12s %10s %10s %7s\n' model ops_ms wall_ms ratio
fi
for m in $models; do
    name=$(basename "$m" .mbm)
    new=$(ratio "$A" "$m" "$tmp/a.npy")
    if [ -n "$B" ]; then
        old=$(ratio "$B" "$m" "$tmp/b.npy")
        same=$(cmp -s "$tmp/a.npy" "$tmp/b.npy" && echo yes || echo NO)
        # shellcheck disable=SC2086
        printf '%-12s %10s %10s %7s   %10s %10s %7s  %s\n' "$name" $old $new "$same"
    else
        # shellcheck disable=SC2086
        printf '%-12s %10s %10s %7s\n' "$name" $new
    fi
done
