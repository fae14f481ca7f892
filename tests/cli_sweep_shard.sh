#!/bin/sh
# `mecbed sweep --shard I/N` and `mecbed sweep merge`: four shards of a
# plan-mode experiment, merged in any order, give byte for byte the
# results.csv of the unsplit sweep; a missing, doubled, unfinished or foreign
# shard is refused (--partial merges what there is); `--slurm N` writes a job
# array whose tasks run the shards. The real Slurm run is `make test-slurm`.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not installed (reads the JSON)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-shard.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_CACHE_HOME="$tmp/cache"
fail() { echo "FAIL: $*"; exit 1; }

cat > "$tmp/t.conf" <<'CONF'
[sweep]
name     = shardtest
question = do shards merge into the unsplit sweep?
mode     = plan
models   = resnet18 tiny_yolov2
dags     = 40
policies = local offload mincut cic layerwise
x_name   = uplink_mbps
x        = 1.1 18.88 100
links    = rate={x}mbit,rtt=20ms
CONF
S="$M sweep $tmp/t.conf --no-times --no-plots"
$S --out "$tmp/full" 2>"$tmp/full.log" || { cat "$tmp/full.log"; fail "unsplit sweep"; }
total=$(($(wc -l < "$tmp/full/results.csv") - 1))
[ "$total" -eq 45 ] || fail "expected 45 rows (3 models x 5 policies x 3 x), got $total"

sum=0
for i in 1 2 3 4; do
    $S --shard $i/4 --out "$tmp/s$i" 2>"$tmp/s$i.log" || { cat "$tmp/s$i.log"; fail "shard $i/4"; }
    n=$(($(wc -l < "$tmp/s$i/results.csv") - 1))
    sum=$((sum + n))
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); s=m["shard"]; assert (s["index"], s["count"]) == (int(sys.argv[2]), 4), s' \
        "$tmp/s$i/meta.json" $i || fail "meta.json of shard $i lacks shard $i/4"
done
[ "$sum" -eq "$total" ] || fail "shards have $sum rows together, the sweep $total"
# shards are disjoint (every N-th point): shard 1 has points 0,4,8,...
python3 - "$tmp/s1/results.csv" <<'PY' || fail "shard 1 does not hold points 0, 4, 8, ..."
import csv, sys
pts = [int(r["point"]) for r in csv.DictReader(open(sys.argv[1]))]
assert pts == list(range(0, 45, 4)), pts
PY
$M sweep --shard 2/4 --dry-run "$tmp/t.conf" | tail -n 1 | grep -q "11 of 45 points (shard 2/4)" || fail "--dry-run with --shard"

"$M" sweep merge --out "$tmp/merged" --json "$tmp/s3" "$tmp/s1" "$tmp/s4" "$tmp/s2" > "$tmp/m.json" 2>"$tmp/m.log" ||
    { cat "$tmp/m.log"; fail "merge"; }
cmp "$tmp/full/results.csv" "$tmp/merged/results.csv" || fail "merged results.csv differs from the unsplit sweep's"
python3 - "$tmp/m.json" "$tmp/merged/results.json" "$tmp/merged/meta.json" <<'PY' || fail "merge JSON"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["rows"] == 45 and s["complete"] and s["shards"] == 4 and s["failed"] == 0, s
r = json.load(open(sys.argv[2]))
assert r["complete"] and len(r["rows"]) == 45 and r["experiment"] == "shardtest", r.keys()
m = json.load(open(sys.argv[3]))
assert sorted(x["index"] for x in m["merged_shards"]) == [1, 2, 3, 4], m["merged_shards"]
assert "shard" not in m
PY

# what merge refuses
"$M" sweep merge --out "$tmp/bad" "$tmp/s1" "$tmp/s2" 2>"$tmp/e1" && fail "merge with shards 3, 4 missing succeeded"
grep -q "shard(s) 3, 4 of 4 missing" "$tmp/e1" || { cat "$tmp/e1"; fail "missing shards not named"; }
"$M" sweep merge --out "$tmp/bad" "$tmp/s1" "$tmp/s1" "$tmp/s2" "$tmp/s3" "$tmp/s4" 2>"$tmp/e2" && fail "doubled shard accepted"
grep -q "shard 1/4 given twice" "$tmp/e2" || { cat "$tmp/e2"; fail "doubled shard not named"; }
"$M" sweep merge --out "$tmp/bad" "$tmp/full" "$tmp/s1" 2>"$tmp/e3" && fail "unsplit run merged with a shard"
grep -q "are not shards of one sweep" "$tmp/e3" || { cat "$tmp/e3"; fail "foreign shard not explained"; }
"$M" sweep merge --out "$tmp/bad" "$tmp/nonexistent" 2>"$tmp/e4" && fail "missing folder accepted"
grep -q "nonexistent/meta.json" "$tmp/e4" || { cat "$tmp/e4"; fail "missing folder not named"; }
"$M" sweep merge "$tmp/s1" 2>/dev/null && fail "merge without --out accepted"
# an unfinished shard (complete=false in its meta.json) needs --partial
cp -r "$tmp/s4" "$tmp/s4x"
python3 -c 'import json,sys; p=sys.argv[1]; m=json.load(open(p)); m["complete"]=False; json.dump(m, open(p,"w"))' "$tmp/s4x/meta.json"
"$M" sweep merge --out "$tmp/bad" "$tmp/s1" "$tmp/s2" "$tmp/s3" "$tmp/s4x" 2>"$tmp/e5" && fail "unfinished shard merged"
grep -q "did not finish" "$tmp/e5" || { cat "$tmp/e5"; fail "unfinished shard not explained"; }
"$M" sweep merge --partial --no-plots --json --out "$tmp/part" "$tmp/s1" "$tmp/s2" > "$tmp/p.json" 2>/dev/null ||
    fail "--partial merge"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert not s["complete"] and s["rows"] == 23, s' "$tmp/p.json" ||
    fail "--partial: expected 23 rows, incomplete"
"$M" sweep --shard 5/4 "$tmp/t.conf" 2>/dev/null && fail "--shard 5/4 accepted"
"$M" sweep --shard x "$tmp/t.conf" 2>/dev/null && fail "--shard x accepted"

# --slurm: the job array's scripts
"$M" sweep "$tmp/t.conf" --no-times --slurm 3 --json --out "$tmp/sl" > "$tmp/sl.json" 2>/dev/null || fail "--slurm 3"
grep -q '^#SBATCH --array=1-3$' "$tmp/sl/slurm/shards.sbatch" || fail "no array=1-3 in shards.sbatch"
grep -q -- '--shard "$SLURM_ARRAY_TASK_ID/3"' "$tmp/sl/slurm/shards.sbatch" || fail "array task does not pick its shard"
grep -q -- '--resume' "$tmp/sl/slurm/shards.sbatch" || fail "array task not resumable"
grep -q "sweep merge --out '$tmp/sl' '$tmp/sl/shard-1' '$tmp/sl/shard-2' '$tmp/sl/shard-3'" "$tmp/sl/slurm/merge.sbatch" ||
    fail "merge.sbatch does not merge the three shards"
# the array task's command line, run by hand as Slurm would, for each task
for i in 1 2 3; do
    SLURM_ARRAY_TASK_ID=$i sh "$tmp/sl/slurm/shards.sbatch" 2>/dev/null || fail "array task $i"
done
sh "$tmp/sl/slurm/merge.sbatch" 2>/dev/null || fail "merge.sbatch"
cmp "$tmp/full/results.csv" "$tmp/sl/results.csv" || fail "the job scripts' merged results differ from the unsplit sweep's"
"$M" sweep "$tmp/t.conf" --slurm 100 --out "$tmp/sl2" 2>/dev/null && fail "--slurm with more shards than points accepted"
echo "PASS: 4 shards merge into the unsplit results ($total rows); bad merges refused; --slurm scripts run"
