#!/bin/sh
# The CI regression of predictions (make regress / make regress-update;
# docs/experiments.md). Usage: experiments/regress.sh check|update EXPERIMENT...
#   check   run each experiment's --quick size in plan mode and compare with
#           results/baseline/EXPERIMENT.csv (predicted latency, energy, bytes,
#           chosen plan); as root, also the measured regression below
#   update  rewrite results/baseline/EXPERIMENT.csv from a fresh run
# MECBED_SWEEP_NODE_TYPES=FILE adds node types (a perturbed constant must fail
# the check: tests/cli_regress.sh). REGRESS_TOLERANCE (default 1e-4, relative).
# REGRESS_MEASURED=0 skips the measured part.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
mode=$1
shift
[ -x "$M" ] || { echo "regress: $M not built (make BUILD=$BUILD)"; exit 2; }
case "$mode" in check|update) ;; *) echo "usage: $0 check|update EXPERIMENT..."; exit 2;; esac
[ $# -gt 0 ] || set -- bandwidth multi-edge multi-device
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-regress.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
tol=${REGRESS_TOLERANCE:-1e-4}
fail=0
for e in "$@"; do
    conf="experiments/$e.conf"
    base="results/baseline/$e.csv"
    if [ "$mode" = update ]; then
        if ! "$M" sweep "$conf" --quick --no-plots --no-times --out "$tmp/$e" 2>"$tmp/$e.log"; then
            cat "$tmp/$e.log"; echo "regress-update: $e failed"; fail=1; continue
        fi
        mkdir -p results/baseline
        cp "$tmp/$e/results.csv" "$base"
        echo "regress-update: wrote $base ($(($(wc -l < "$base") - 1)) rows)"
    else
        if "$M" sweep "$conf" --quick --no-plots --no-times --out "$tmp/$e" --check "$base" \
               --tolerance "$tol" 2>"$tmp/$e.log"; then
            :
        else
            grep -v '^sweep ' "$tmp/$e.log" | tail -n 5
            echo "regress: $e FAILED (what moved is listed above; if the change is intended: make regress-update)"
            fail=1
        fi
    fi
done
# Measured: one model, two policies over an emulated link (root only). Times
# on a shared 2-core machine are noisy, so only the ratio between the two
# policies is compared with the predicted one, within a factor of 2, and the
# order must hold.
if [ "$mode" = check ] && [ "${REGRESS_MEASURED:-1}" != 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "regress: measured part skipped (needs root: namespaces, TUN)"
    elif grep -q __asan_init "$M" 2>/dev/null || grep -q __ubsan_handle "$M" 2>/dev/null; then
        echo "regress: measured part skipped (sanitizer build: its timings say nothing about mecbed's)"
    elif ! command -v python3 >/dev/null; then
        echo "regress: measured part skipped (python3 reads the CSV)"
    elif ! "$M" sweep experiments/regress-measured.conf --no-plots --out "$tmp/measured" 2>"$tmp/measured.log"; then
        tail -n 5 "$tmp/measured.log"; echo "regress: measured runs FAILED"; fail=1
    elif ! python3 - "$tmp/measured/results.csv" <<'PY'
import csv, sys
rows = {r["policy"]: r for r in csv.DictReader(open(sys.argv[1]))}
a, b = rows["local"], rows["offload"]
pr = float(b["latency_ms"]) / float(a["latency_ms"])
mr = float(b["measured_ms"]) / float(a["measured_ms"])
print("regress measured: offload/local latency ratio predicted %.2f, measured %.2f (%s %s ms, %s %s ms)"
      % (pr, mr, "local", a["measured_ms"], "offload", b["measured_ms"]))
ok = 0.5 <= mr / pr <= 2 and (mr > 1) == (pr > 1)
sys.exit(0 if ok else 1)
PY
    then
        echo "regress: measured ratio FAILED (outside a factor of 2 of the prediction, or the order flipped)"; fail=1
    fi
fi
[ $fail = 0 ] && [ "$mode" = check ] && echo "regress: all passed"
exit $fail
