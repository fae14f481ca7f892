#!/bin/sh
# make bench-ort: mecbed's cpu kernels against ONNX Runtime (the npm package
# onnxruntime-node, a benchmark-only dependency installed into a cache folder
# outside the repository) on the same ONNX files with the same input.
#
#   scripts/bench-ort.sh [MODEL.onnx|MODEL.mbm ...]
#                         every zoo model and tests/models/*.mbm (exported to
#                         ONNX first), then these files
#   make bench-ort BENCH_ORT_ARGS="extra.onnx"
#
# Per model and thread count: ORT median ms (BENCH_ORT_RUNS timed runs after 2
# warm-ups, intra_op_num_threads = threads, sequential), mecbed's wall ms per
# run and sum of per-op medians (`infer --repeats BENCH_ORT_REPEATS --json`,
# 1 warm-up), wall / ORT, wall / op sum, and the max abs difference of the
# outputs relative to ORT's largest |y|. Then the geometric mean of wall / ORT.
# Environment:
#   BENCH_ORT_MODELS   zoo models and .mbm files (default: all of `mecbed models`
#                      and tests/models/*.mbm; "none": only the files given)
#   BENCH_ORT_THREADS  thread counts (default "1 2")
#   BENCH_ORT_RUNS     ORT timed runs (default 15)
#   BENCH_ORT_REPEATS  mecbed timed runs (default 10)
#   BENCH_ORT_INFER    extra `mecbed infer` options (default "--fold-bn --fuse":
#                      the load-time BatchNorm folding and conv + activation
#                      fusion ORT also does)
#   ORT_DIR            where onnxruntime-node is installed
#                      (default ${XDG_CACHE_HOME:-~/.cache}/mecbed/ort)
#   BENCH_ORT_TOL      fail when a relative output difference exceeds this (1e-3)
#   BENCH_ORT_OPS      1 (default): after the table, where the time goes per op
#                      class (conv kind, pool, ...) against ORT's own profile on
#                      the first thread count, summed over the models
#                      (scripts/ort-op-types.py); 0: skip it
#   BENCH_ORT_AB       A/B: environment assignments (e.g. "MECBED_CPU_DC_TILE=1")
#                      for a second mecbed run right before the default one, against
#                      the same ORT time: a row "NAME[B]" and its own geometric mean
set -eu
BUILD=${BUILD:-build}
MECBED="$BUILD/mecbed"
ORT_VERSION=1.30.0
ORT_DIR=${ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mecbed/ort}
THREADS=${BENCH_ORT_THREADS:-1 2}
RUNS=${BENCH_ORT_RUNS:-15}
REPEATS=${BENCH_ORT_REPEATS:-10}
INFER_ARGS=${BENCH_ORT_INFER---fold-bn --fuse}
TOL=${BENCH_ORT_TOL:-1e-3}
OPS=${BENCH_ORT_OPS:-1}
OPS_THREADS=${THREADS%% *}
here=$(cd "$(dirname "$0")" && pwd)

[ "${1:-}" != --help ] && [ "${1:-}" != -h ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }
die() { echo "bench-ort: $*" >&2; exit 1; }
# jget JSON EXPR: a field of a JSON text (EXPR in JavaScript, the object is j).
jget() { node -e 'const j = JSON.parse(process.argv[1]); console.log(eval(process.argv[2]))' "$1" "$2"; }
command -v node >/dev/null || die "node (nodejs) is needed: apt-get install nodejs npm"
[ -x "$MECBED" ] || die "$MECBED not built (make all)"
for f in "$@"; do
    [ -r "$f" ] || die "$f: cannot read"
done

if [ ! -f "$ORT_DIR/node_modules/onnxruntime-node/package.json" ] ||
   ! grep -q "\"version\": \"$ORT_VERSION\"" "$ORT_DIR/node_modules/onnxruntime-node/package.json"; then
    command -v npm >/dev/null || die "npm is needed to install onnxruntime-node"
    echo "installing onnxruntime-node@$ORT_VERSION into $ORT_DIR (CPU only)" >&2
    mkdir -p "$ORT_DIR"
    # The install script only fetches CUDA binaries (from nuget); skip it.
    (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --silent \
        "onnxruntime-node@$ORT_VERSION" >&2) || die "npm install onnxruntime-node@$ORT_VERSION failed"
fi
export NODE_PATH="$ORT_DIR/node_modules"

work=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-bench-ort.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

models=${BENCH_ORT_MODELS:-$(jget "$("$MECBED" models --json)" "j.map((m) => m.name).join(' ')") $(ls tests/models/*.mbm 2>/dev/null)}
[ "$models" = none ] && models=

# bench NAME FILE.onnx: one table row per thread count; appends ratios to $work/ratio_T.
bench() {
    name=$1 onnx=$2 in="$work/$1.in.npy"
    for t in $THREADS; do
        rc=0
        ort=$(node "$here/bench-ort.js" run "$onnx" "$in" "$t" "$RUNS" "$work/$name.ort" 2>"$work/ort.err") || rc=$?
        case $rc in
        0) ;;
        3) printf "%-16s skipped: %s\n" "$name" "$(sed 's/^bench-ort.js: //' "$work/ort.err")"
           return 0 ;; # not one float32 input (e.g. BERT's ids and masks): no row, no ratio
        *) cat "$work/ort.err" >&2
           die "$name: ONNX Runtime failed" ;;
        esac
        n_out=$(jget "$ort" j.outputs)
        oargs=
        k=0
        while [ "$k" -lt "$n_out" ]; do
            oargs="$oargs -o $work/$name.mb_$k.npy"
            k=$((k + 1))
        done
        for variant in ${BENCH_ORT_AB:+B} A; do
            # shellcheck disable=SC2086  # option lists and the A/B assignments
            if [ "$variant" = B ]; then
                mb=$(env $BENCH_ORT_AB "$MECBED" infer --model "$onnx" -i "$in" $oargs --threads "$t" \
                    --repeats "$REPEATS" --json $INFER_ARGS) || die "$name: mecbed infer ($BENCH_ORT_AB) failed"
                row="$name[B]" rfile="$work/ratioB_$t"
            else
                mb=$("$MECBED" infer --model "$onnx" -i "$in" $oargs --threads "$t" --repeats "$REPEATS" \
                    --json $INFER_ARGS) || die "$name: mecbed infer failed"
                row=$name rfile="$work/ratio_$t"
            fi
            worst=0
            k=0
            while [ "$k" -lt "$n_out" ]; do
                d=$(node "$here/bench-ort.js" diff "$work/$name.mb_$k.npy" "$work/$name.ort_$k.npy")
                worst=$(jget "$d" "Math.max($worst, j.max_abs_diff / (j.max_abs > 0 ? j.max_abs : 1))")
                k=$((k + 1))
            done
            if [ "$variant" = A ] && [ "$OPS" = 1 ] && [ "$t" = "$OPS_THREADS" ]; then
                # per-op profiles for the op-class table (ORT's profiler on: a separate run)
                echo "$mb" >"$work/$name.mbprof.json"
                node "$here/bench-ort.js" profile "$onnx" "$t" "$RUNS" "$work/$name.prof" \
                    >"$work/$name.ortprof.jsonl" 2>"$work/ort.err" || { cat "$work/ort.err" >&2; die "$name: ORT profile failed"; }
                echo "$name $work/$name.mbprof.json $work/$name.ortprof.jsonl" >>"$work/opsets"
            fi
            ort_ms=$(jget "$ort" j.ms_median)
            wall=$(jget "$mb" j.wall_ms)
            sum=$(jget "$mb" j.total_ms)
            awk -v n="$row" -v t="$t" -v o="$ort_ms" -v w="$wall" -v s="$sum" -v d="$worst" -v tol="$TOL" 'BEGIN {
                flag = d > tol ? "  MISMATCH" : ""
                printf "%-16s %3d %9.2f %9.2f %9.2f %7.2f %7.2f %9.1e%s\n", n, t, o, w, s, w / o, w / s, d, flag }'
            echo "$wall $ort_ms" >>"$rfile"
            awk -v d="$worst" -v tol="$TOL" 'BEGIN { exit !(d > tol) }' && echo "$row" >>"$work/mismatch"
        done
    done
    return 0
}

echo "mecbed vs ONNX Runtime $ORT_VERSION, same ONNX file and input; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mecbed: $MECBED infer --repeats $REPEATS $INFER_ARGS; ORT: median of $RUNS runs"
printf "%-16s %3s %9s %9s %9s %7s %7s %9s\n" model thr "ORT ms" "mb wall" "mb ops" "wall/ORT" "wall/ops" "rel diff"
for m in $models "$@"; do
    name=$(basename "$m" .onnx)
    name=$(basename "$name" .mbm)
    case $m in
    *.onnx) bench "$name" "$m" ;;
    *) "$MECBED" export --model "$m" -o "$work/$name.onnx" >/dev/null || die "$m: export failed"
       bench "$name" "$work/$name.onnx" ;;
    esac
done
for t in $THREADS; do
    [ -f "$work/ratio_$t" ] || continue
    awk -v t="$t" '{ s += log($1 / $2); n++ } END {
        printf "geometric mean of wall/ORT, %d thread%s: %.2f over %d models\n", t, t == 1 ? "" : "s", exp(s / n), n }' \
        "$work/ratio_$t"
    [ -f "$work/ratioB_$t" ] || continue
    awk -v t="$t" -v ab="$BENCH_ORT_AB" '{ s += log($1 / $2); n++ } END {
        printf "geometric mean of wall/ORT, %d thread%s, with %s: %.2f over %d models\n", t, t == 1 ? "" : "s", ab, exp(s / n), n }' \
        "$work/ratioB_$t"
done
if [ -f "$work/opsets" ]; then
    py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3 # Debian's, not one earlier on PATH
    echo
    echo "where the time goes, $OPS_THREADS thread(s), summed over the models (kernel times, ORT's profiler on;"
    echo "ORT folds fused ops into the node before them; scripts/ort-op-types.py):"
    # shellcheck disable=SC2046  # NAME MB.json ORT.jsonl triples
    "$py" "$here/ort-op-types.py" $(cat "$work/opsets") || die "op-class table failed"
fi
if [ -f "$work/mismatch" ]; then
    echo "bench-ort: outputs differ by more than $TOL of scale: $(sort -u "$work/mismatch" | tr '\n' ' ')" >&2
    exit 1
fi
