#!/bin/sh
# `mecbed sweep` in plan mode: a small experiment produces results.csv (one
# row per point, every row finished), results.json and meta.json; --resume
# skips the points already in results.csv; Ctrl-C leaves a consistent file;
# bad experiment files are errors naming the file and line; every shipped
# experiment parses; the bandwidth figures are drawn (PNG and SVG).
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not installed (reads the CSV and JSON)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-sweep.XXXXXX")
bg=
trap '[ -n "$bg" ] && kill $bg 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
export XDG_CACHE_HOME="$tmp/cache"
fail() { echo "FAIL: $*"; exit 1; }

"$M" sweep --help | grep -q -- "--resume" || fail "sweep --help lacks --resume"

cat > "$tmp/t.conf" <<'CONF'
; a test experiment
[sweep]
name        = t
question    = does the sweep work?
mode        = plan
models      = resnet18 tiny_yolov2
dags        = 60
policies    = local offload mincut cic
x_name      = uplink (Mbit/s)
x           = 1.1 18.88 100
links       = rate={x}mbit,rtt=20ms
node_types  = phone/edge-cpu rpi4/-
metrics     = server_ops
repetitions = 2
[quick]
repetitions = 1
CONF
"$M" sweep "$tmp/t.conf" --quick --no-plots --out "$tmp/r1" --json > "$tmp/sum.json" 2> "$tmp/err1" ||
    { cat "$tmp/err1"; fail "quick sweep exited $?"; }
for f in results.csv results.json meta.json; do [ -s "$tmp/r1/$f" ] || fail "no $f"; done
python3 - "$tmp" <<'PY' || fail "results of the quick sweep"
import csv, json, sys
d = sys.argv[1]
s = json.load(open(d + "/sum.json"))
assert s["points"] == 72 and s["ok"] == 72 and s["complete"], s
rows = list(csv.DictReader(open(d + "/r1/results.csv")))
assert len(rows) == 72, len(rows)                      # 3 graphs x 4 policies x 3 rates x 2 types
assert len({r["key"] for r in rows}) == 72
for r in rows:
    assert r["ok"] == "1", r
    assert float(r["latency_ms"]) > 0 and float(r["energy_mj"]) > 0, r
    assert r["plan_sig"] and r["cut_after"], r
by = {(r["model"], r["x"], r["node_types"], r["policy"]): r for r in rows}
for (m, x, t, p), r in by.items():
    if p != "mincut":
        continue
    loc, cic = by[(m, x, t, "local")], by[(m, x, t, "cic")]
    assert float(r["latency_ms"]) <= float(loc["latency_ms"]) + 1e-9, (r, loc)
    assert abs(float(r["cut_value_ms"]) - float(cic["cut_value_ms"])) <= 1e-6 * float(r["cut_value_ms"])
assert by[("resnet18", "1.1", "phone/edge-cpu", "local")]["cut_after"] == "(all on device)"
assert by[("resnet18", "1.1", "phone/edge-cpu", "offload")]["cut_after"] == "input"
assert by[("dag60", "18.88", "phone/edge-cpu", "local")]["ops"] == "60"
assert by[("tiny_yolov2", "18.88", "phone/edge-cpu", "local")]["profile"] == "pinned"
j = json.load(open(d + "/r1/results.json"))
assert j["experiment"] == "t" and len(j["rows"]) == 72 and j["complete"]
assert isinstance(j["rows"][0]["latency_ms"], float)
# the variable's unit: from "uplink (Mbit/s)", in every row, results.json and meta.json
assert j["x_name"] == "uplink" and j["x_unit"] == "Mbit/s", (j["x_name"], j["x_unit"])
assert all(r["x_unit"] == "Mbit/s" for r in rows) and j["rows"][0]["x_unit"] == "Mbit/s"
m = json.load(open(d + "/r1/meta.json"))
for k in ("git_commit", "cpu_model", "cores", "openblas_core", "kernel", "mecbed_version",
          "link_backend", "kernel_netem", "link_backends_built", "started_utc", "finished_utc"):
    assert k in m, k
assert m["cores"] >= 1 and m["openblas_core"] and m["complete"] is True
assert m["x_name"] == "uplink" and m["x_unit"] == "Mbit/s"
PY
# x_unit given on its own; an axis label with a quote is refused with file and line
sed 's/^x_name .*/x_name = uplink rate\nx_unit = kbit\/s/' "$tmp/t.conf" > "$tmp/u.conf"
"$M" sweep "$tmp/u.conf" --quick --no-plots --out "$tmp/ru" 2>/dev/null || fail "x_unit sweep"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert (j["x_name"], j["x_unit"]) == ("uplink rate", "kbit/s"), j["x_unit"]' "$tmp/ru/results.json" ||
    fail "x_unit= not in results.json"
sed "s/^x_name .*/x_name = it's/" "$tmp/t.conf" > "$tmp/q.conf"
"$M" sweep "$tmp/q.conf" --quick --no-plots --out "$tmp/rq" 2> "$tmp/qerr" && fail "quote in x_name accepted"
grep -q "q.conf:9: x_name = it's: .*no quotes" "$tmp/qerr" || fail "x_name quote error: $(cat "$tmp/qerr")"

# --resume: keep the header and 10 rows, the rest are computed again
mkdir -p "$tmp/r2"
head -n 11 "$tmp/r1/results.csv" > "$tmp/r2/results.csv"
"$M" sweep "$tmp/t.conf" --quick --no-plots --out "$tmp/r2" --resume 2> "$tmp/err2" ||
    { cat "$tmp/err2"; fail "--resume exited $?"; }
grep -q "10 of 72 points done, 62 to go" "$tmp/err2" || fail "--resume did not skip 10 points: $(head -n 3 "$tmp/err2")"
[ "$(grep -c ' rep 0: ok' "$tmp/err2")" = 62 ] || fail "--resume ran $(grep -c ' rep 0: ok' "$tmp/err2") points, not 62"
python3 - "$tmp" <<'PY' || fail "resumed results differ"
import csv, sys
d = sys.argv[1]
a = {r["key"]: r for r in csv.DictReader(open(d + "/r1/results.csv"))}
b = list(csv.DictReader(open(d + "/r2/results.csv")))
assert len(b) == 72 and len({r["key"] for r in b}) == 72
for r in b:
    assert r["latency_ms"] == a[r["key"]]["latency_ms"] and r["plan_sig"] == a[r["key"]]["plan_sig"], r["key"]
PY

# Ctrl-C: slow decision-time points, interrupted; the CSV stays whole
cat > "$tmp/slow.conf" <<'CONF'
[sweep]
name = slow
mode = plan
measure = decision
dags = 2000 2001 2002 2003 2004 2005 2006 2007
policies = mincut
links = rate=10mbit,rtt=20ms
decision_rates = 1 10 100
decision_repeats = 150
CONF
"$M" sweep "$tmp/slow.conf" --no-plots --out "$tmp/r3" 2> "$tmp/err3" &
bg=$!
sleep 2
kill -INT $bg
wait $bg
rc=$?
bg=
[ $rc = 130 ] || fail "interrupted sweep exited $rc, not 130: $(tail -n 3 "$tmp/err3")"
grep -q "interrupted" "$tmp/err3" || fail "no interruption message"
python3 - "$tmp" <<'PY' || fail "the interrupted sweep left an inconsistent results.csv or meta.json"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/r3/results.csv")))
assert len(rows) < 8, len(rows)
assert all(r["ok"] == "1" and r["key"] for r in rows)
assert json.load(open(d + "/r3/meta.json"))["complete"] is False
PY
ls "$tmp/r3"/*.tmp 2>/dev/null && fail "temporary file left behind"

# bad experiment files: errors name the file and the line
printf '[sweep]\nname = b\nfrobnicate = 1\n' > "$tmp/bad1.conf"
"$M" sweep "$tmp/bad1.conf" --out "$tmp/x" 2> "$tmp/e1" && fail "unknown key accepted"
grep -q "bad1.conf:3: unknown key 'frobnicate'" "$tmp/e1" || fail "unknown key error: $(cat "$tmp/e1")"
printf '[sweep]\nname = b\nmodels = resnet18\npolicies = local\nmode = simulate\n' > "$tmp/bad2.conf"
"$M" sweep "$tmp/bad2.conf" --out "$tmp/x" 2> "$tmp/e2" && fail "bad mode accepted"
grep -q "bad2.conf:5: mode: 'simulate'" "$tmp/e2" || fail "bad mode error: $(cat "$tmp/e2")"
printf '[sweep]\nname = b\n[extra]\nx = 1\n' > "$tmp/bad3.conf"
"$M" sweep "$tmp/bad3.conf" --out "$tmp/x" 2> "$tmp/e3" && fail "unknown section accepted"
grep -q "bad3.conf:4: unknown section \[extra\]" "$tmp/e3" || fail "unknown section error: $(cat "$tmp/e3")"
printf '[sweep]\nname = b\nmodels = resnet18\n' > "$tmp/bad4.conf"
"$M" sweep "$tmp/bad4.conf" --out "$tmp/x" 2> "$tmp/e4" && fail "experiment without policies accepted"
grep -q "bad4.conf: \[sweep\] needs policies" "$tmp/e4" || fail "missing key error: $(cat "$tmp/e4")"
printf '[sweep]\nname = b\nmodels = resnet18\npolicies = nosuch\nlinks = rate=1mbit\n' > "$tmp/bad5.conf"
"$M" sweep "$tmp/bad5.conf" --no-plots --out "$tmp/x5" 2> "$tmp/e5" && fail "unknown policy: sweep exited 0"
# refused before the first point (not one failed row per point), naming the file
grep -q "bad5.conf: policies: unknown policy 'nosuch'" "$tmp/e5" || fail "unknown policy error: $(cat "$tmp/e5")"
[ -e "$tmp/x5/results.csv" ] && fail "an experiment with an unknown policy ran"
"$M" sweep "$tmp/nonexistent.conf" 2> "$tmp/e6" && fail "missing file accepted"
grep -q "nonexistent.conf: No such file or directory" "$tmp/e6" || fail "missing file error: $(cat "$tmp/e6")"

# every shipped experiment parses, full and quick
for c in experiments/*.conf; do
    for q in "" --quick; do
        "$M" sweep "$c" $q --dry-run > "$tmp/dry" 2> "$tmp/dryerr" || fail "$c $q: $(cat "$tmp/dryerr")"
        tail -n 1 "$tmp/dry" | grep -q ' points$' || fail "$c $q: no point count"
    done
done

# the bandwidth experiment's figures
if command -v gnuplot >/dev/null; then
    "$M" sweep experiments/bandwidth.conf --quick --out "$tmp/bw" 2> "$tmp/ebw" || { tail -n 5 "$tmp/ebw"; fail "bandwidth --quick"; }
    for f in latency-vs-uplink energy-vs-uplink latency-vs-uplink-rpi4 energy-vs-uplink-rpi4 tinyyolo-mincut-position; do
        for t in png svg; do [ -s "$tmp/bw/$f.$t" ] || fail "no $f.$t"; done
    done
else
    echo "gnuplot not installed: figures not checked"
fi
echo "sweep: quick run, resume, interrupt, errors, shipped experiments and figures ok"
exit 0
