#!/bin/sh
# The Python package (python/mecbed): its unit tests (python/tests, run with
# Debian's python3 and the standard library's unittest) against the built
# binary, and the example script, whose series must equal the plan-mode
# regression baseline's rows for the same points.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
[ -f "$BUILD/plugins/half.so" ] || { echo "skip: $BUILD/plugins/half.so not built (make plugins)"; exit 77; }
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "skip: no python3"; exit 77; }
MECBED=$(cd "$(dirname "$M")" && pwd)/mecbed
export MECBED
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-python.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
export XDG_CACHE_HOME="$tmp/cache"

"$PY" -m unittest discover -s python/tests -t python/tests 2>"$tmp/ut" || { cat "$tmp/ut"; fail "python unit tests"; }
tail -n 3 "$tmp/ut"
"$PY" python/examples/tinyyolo_mincut.py --csv "$tmp/cut.csv" >"$tmp/out" 2>&1 ||
    fail "example: $(cat "$tmp/out")"
"$PY" - "$tmp/cut.csv" results/baseline/bandwidth.csv <<'PY' || fail "example differs from the baseline"
import csv, sys
got = list(csv.DictReader(open(sys.argv[1])))
base = {(r["node_types"], float(r["x"])): r for r in csv.DictReader(open(sys.argv[2]))
        if r["model"] == "tiny_yolov2" and r["policy"] == "mincut"}
assert len(got) == 16 and len(base) == 16, (len(got), len(base))
for r in got:
    b = base[(r["node_types"], float(r["uplink_mbps"]))]
    assert r["device_ops"] == b["device_ops"] and r["cut_after"] == b["cut_after"], (r, b)
    assert abs(float(r["latency_ms"]) - float(b["latency_ms"])) <= 1e-4 * float(b["latency_ms"]), (r, b)
PY
echo ok
