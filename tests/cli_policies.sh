#!/bin/sh
# Plugins as first-class policies (issue 17): `mecbed policies` lists the
# built-ins and the plugins on the plugin path with their typed options;
# plugins load by name from the current folder and $MECBED_PLUGIN_PATH
# (auto-load: no --policy-plugin needed); an ABI 2 plugin still loads; an
# unknown --policy-opt key is an error naming the valid ones, a value of the
# wrong type too; errors carry one "policy NAME:" prefix; a plan-mode sweep
# uses plugins through policy_plugins, --policy-plugin and by name; one
# count of a model's ops everywhere; no NaN in oplevel's metrics; `mecbed
# help plan` is plan's help.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
for f in plugins/greedy.so plugins/half.so plugins-test/abi99.so plugins-test/greedy_v2.so; do
    [ -f "$BUILD/$f" ] || { echo "skip: $BUILD/$f not built (make plugins)"; exit 77; }
done
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
M=$(cd "$(dirname "$M")" && pwd)/mecbed
B=$(cd "$BUILD" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-policies.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
unset MECBED_PLUGIN_PATH MECBED_PLUGIN_DIR

# the listing: built-ins with typed options, the build tree's plugins
(cd "$tmp" && "$M" policies --json) >"$tmp/p.json" 2>"$tmp/e" || fail "policies --json: $(cat "$tmp/e")"
python3 - "$tmp/p.json" "$B" <<'PY' || fail "policies --json: $(cat "$tmp/p.json")"
import json, os, sys
j = json.load(open(sys.argv[1]))
pol = {p["name"]: p for p in j["policies"]}
for b in ("local", "offload", "layerwise", "mincut", "cic", "tile", "oplevel", "dds"):
    assert pol[b]["kind"] == "builtin" and pol[b]["summary"], pol[b]
opts = {o["name"]: o for o in pol["dds"]["options"]}
assert opts["capacity"]["type"] == "number" and opts["capacity"]["default"] == "1", opts
assert opts["rounds"]["type"] == "int" and opts["rounds"]["help"], opts
assert pol["local"]["options"] == []
for p in ("greedy", "half"):
    assert pol[p]["kind"] == "plugin", pol[p]
    assert pol[p]["path"] == os.path.realpath(os.path.join(sys.argv[2], "plugins", p + ".so")), pol[p]
h = {o["name"]: o for o in pol["half"]["options"]}
assert h["frac"] == {"name": "frac", "type": "number", "default": "0.5", "help": h["frac"]["help"]}, h
assert pol["half"]["abi_version"] == 3
assert os.path.realpath(os.path.join(sys.argv[2], "plugins")) in j["plugin_path"], j["plugin_path"]
assert j["refused"] == [], j["refused"]
PY
"$M" policies >"$tmp/p.txt" || fail "policies"
grep -q "^half .*example plugin" "$tmp/p.txt" || fail "text listing lacks half: $(cat "$tmp/p.txt")"
grep -q "frac=number .*\[default 0.5\]" "$tmp/p.txt" || fail "text listing lacks frac: $(cat "$tmp/p.txt")"

# MECBED_PLUGIN_PATH comes first: an ABI 2 build of greedy loads (no typed
# options), the ABI 99 build is listed as refused with the reason, and the
# build tree's greedy.so is refused as a second 'greedy'
MECBED_PLUGIN_PATH="$B/plugins-test" "$M" policies --json >"$tmp/p2.json" || fail "policies with MECBED_PLUGIN_PATH"
python3 - "$tmp/p2.json" <<'PY' || fail "MECBED_PLUGIN_PATH listing: $(cat "$tmp/p2.json")"
import json, sys
j = json.load(open(sys.argv[1]))
g = [p for p in j["policies"] if p["name"] == "greedy"][0]
assert g["abi_version"] == 2 and g["path"].endswith("plugins-test/greedy_v2.so"), g
why = {r["path"].rsplit("/", 1)[1]: r["error"] for r in j["refused"]}
assert "ABI version 99" in why["abi99.so"], why
assert "already registered" in why["greedy.so"] and "greedy_v2.so" in why["greedy.so"], why
PY

# by name from the current folder (where docs/plugins.md builds one), no --policy-plugin
cp "$B/plugins/half.so" "$tmp/mine.so"
cp "$B/plugins/half.so" "$tmp/half.so"
(cd "$tmp" && "$M" policies --json half) >"$tmp/p3.json" || fail "policies half from ."
python3 -c 'import json,sys,os; j=json.load(open(sys.argv[1])); p=j["policies"]; assert len(p)==1 and p[0]["path"]==os.path.realpath(sys.argv[2]), p' \
    "$tmp/p3.json" "$tmp/half.so" || fail "half not loaded from the current folder: $(cat "$tmp/p3.json")"
(cd "$tmp" && "$M" plan --model alexnet --policy half --policy-opt frac=0.3 --link rate=20mbit --json) \
    >"$tmp/plan.json" 2>"$tmp/e" || fail "plan --policy half by name: $(cat "$tmp/e")"
grep -q '"policy":"half"' "$tmp/plan.json" || fail "not planned by half"
# a file whose policy has another name is not taken for it
(cd "$tmp" && "$M" plan --model alexnet --policy mine --link rate=20mbit) >/dev/null 2>"$tmp/e" &&
    fail "mine.so (policy half) accepted as policy mine"
grep -q "registers a policy named 'half', not 'mine'" "$tmp/e" || fail "mine message: $(cat "$tmp/e")"
"$M" plan --model alexnet --policy nosuch --link rate=20mbit >/dev/null 2>"$tmp/e" && fail "nosuch accepted"
grep -q "unknown policy 'nosuch' (registered: local .*nosuch.so in the plugin path" "$tmp/e" ||
    fail "unknown policy message: $(cat "$tmp/e")"

# options: unknown key names the valid ones; wrong type; one prefix
"$M" plan --model alexnet --policy half --policy-opt fracc=0.2 --link rate=20mbit 2>"$tmp/e" && fail "fracc accepted"
grep -qx "mecbed plan: policy half: unknown option 'fracc' (it takes: frac, server)" "$tmp/e" ||
    fail "unknown key message: $(cat "$tmp/e")"
"$M" plan --model alexnet --policy half --policy-opt frac=lots --link rate=20mbit 2>"$tmp/e" && fail "frac=lots accepted"
grep -qx "mecbed plan: policy half: option frac=lots: expected a number" "$tmp/e" || fail "type message: $(cat "$tmp/e")"
"$M" plan --model alexnet --policy half --policy-opt frac=2 --link rate=20mbit 2>"$tmp/e" && fail "frac=2 accepted"
grep -qx "mecbed plan: policy half: frac=2: expected a fraction from 0 to 1" "$tmp/e" || fail "plugin error prefix: $(cat "$tmp/e")"
"$M" plan --model alexnet --policy tile --policy-opt k=two --link rate=20mbit 2>"$tmp/e" && fail "tile k=two accepted"
grep -q "policy tile: option k=two: expected a whole number" "$tmp/e" || fail "built-in type message: $(cat "$tmp/e")"
"$M" compare --model alexnet --policy-opt fracc=1 --link rate=20mbit 2>"$tmp/e" && fail "compare fracc accepted"
grep -q "fracc=1': no policy compared takes this key (the policies compared take: server, cuts" "$tmp/e" ||
    fail "compare key message: $(cat "$tmp/e")"

# plan-mode sweep: policy_plugins (relative to the experiment file), --policy-plugin, by name
mkdir -p "$tmp/exp/plug"
cp "$B/plugins/half.so" "$tmp/exp/plug/half.so"
cat >"$tmp/exp/e.conf" <<'CONF'
[sweep]
name = plugins
mode = plan
models = alexnet
policies = half:frac=0.25 half:frac=1 greedy mincut
policy_plugins = plug/half.so
x = 5 50
links = rate={x}mbit,rtt=20ms
CONF
"$M" sweep "$tmp/exp/e.conf" --out "$tmp/res" --no-plots >"$tmp/out" 2>&1 || fail "sweep: $(cat "$tmp/out")"
alex_ops=$("$M" models alexnet --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ops"])')
python3 - "$tmp/res/results.csv" "$alex_ops" <<'PY' || fail "sweep rows: $(cat "$tmp/res/results.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 8 and all(r["error"] == "" for r in rows), rows
by = {(r["policy"], r["x"]): r for r in rows}
assert by[("half:frac=1", "5")]["server_ops"] == "0", by[("half:frac=1", "5")]
assert int(by[("half:frac=0.25", "5")]["server_ops"]) > 0
assert by[("greedy", "50")]["latency_ms"] != ""
assert len({r["ops"] for r in rows}) == 1 and rows[0]["ops"] == sys.argv[2], ([r["ops"] for r in rows], sys.argv[2])
PY
sed -i 's/^policy_plugins.*//' "$tmp/exp/e.conf"
"$M" sweep "$tmp/exp/e.conf" --out "$tmp/res2" --no-plots --policy-plugin "$tmp/exp/plug/half.so" >"$tmp/out" 2>&1 ||
    fail "sweep --policy-plugin: $(cat "$tmp/out")"
sed -i 's/half:frac=0.25/half:fracc=0.25/' "$tmp/exp/e.conf"
"$M" sweep "$tmp/exp/e.conf" --out "$tmp/res3" --no-plots >"$tmp/out" 2>&1 && fail "sweep with fracc ran"
grep -q "policies: policy half: unknown option 'fracc' (it takes: frac, server)" "$tmp/out" ||
    fail "sweep option message: $(cat "$tmp/out")"
[ -e "$tmp/res3/results.csv" ] && fail "sweep with a bad option wrote results"

# run mode (root, TUN): a plugin by name in a run-mode sweep; the forked
# point finds the policy its parent loaded from policy_plugins
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
    cat >"$tmp/exp/r.conf" <<'CONF'
[sweep]
name = plugins-run
mode = run
models = alexnet
policies = half:frac=0.5
policy_plugins = plug/half.so
links = rate=50mbit,rtt=10ms
frames = 1
warmup = 0
timeout = 120
CONF
    "$M" sweep "$tmp/exp/r.conf" --out "$tmp/rres" --no-plots >"$tmp/out" 2>&1 || fail "run-mode sweep: $(cat "$tmp/out")"
    python3 - "$tmp/rres/results.csv" <<'PY' || fail "run-mode rows: $(cat "$tmp/rres/results.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 1 and rows[0]["ok"] == "1" and rows[0]["error"] == "", rows
assert float(rows[0]["measured_ms"]) > 0 and rows[0]["output_match"] == "1", rows
# where the plan put the model: filled as in plan mode (half: half the ops on each side)
r = rows[0]
assert len(r["plan_sig"]) == 16 and r["cut_after"] not in ("", "(all on device)"), r
assert int(float(r["device_ops"])) > 0 and int(float(r["server_ops"])) > 0, r
PY
else
    echo "(run-mode sweep with a plugin skipped: needs root and /dev/net/tun)"
fi

# one count of ops: plan's header, its steps for an all-local plan, models,
# import and infer of the same file
"$M" plan --model resnet50 --policy local --link rate=20mbit >"$tmp/o" || fail "plan resnet50"
ops=$(sed -n 's/^model resnet50 (\([0-9]*\) ops).*/\1/p' "$tmp/o")
steps=$(sed -n 's/^plan: .* \([0-9]*\) steps$/\1/p' "$tmp/o")
[ -n "$ops" ] && [ "$ops" = "$steps" ] || fail "plan says $ops ops and $steps steps: $(head -n 12 "$tmp/o")"
"$M" models resnet50 --json | python3 -c 'import json,sys; assert json.load(sys.stdin)[0]["ops"]==int(sys.argv[1])' "$ops" ||
    fail "models disagrees with plan ($ops ops)"
"$M" export --model alexnet -o "$tmp/a.onnx" >/dev/null 2>&1 || fail "export alexnet"
"$M" import "$tmp/a.onnx" --json >"$tmp/i.json" || fail "import --json"
"$M" infer --model "$tmp/a.onnx" --json >"$tmp/f.json" 2>/dev/null || fail "infer --json"
python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["ops"]; b=json.load(open(sys.argv[2]))["ops"]; assert a==b>0, (a,b)' \
    "$tmp/i.json" "$tmp/f.json" || fail "import and infer count ops differently"

# oplevel on a plain cut: no NaN anywhere
"$M" plan --model resnet18 --policy oplevel --link rate=20mbit >"$tmp/o" || fail "oplevel"
grep -qi nan "$tmp/o" && fail "oplevel prints NaN: $(grep -i nan "$tmp/o")"

# help
"$M" help plan | head -n 1 | grep -q "^usage: mecbed plan" || fail "help plan: $("$M" help plan | head -n 1)"
"$M" help policies | head -n 1 | grep -q "^usage: mecbed policies" || fail "help policies"
"$M" help nosuch >/dev/null 2>"$tmp/e" && fail "help nosuch exited 0"
grep -q "unknown command 'nosuch'" "$tmp/e" || fail "help nosuch: $(cat "$tmp/e")"
echo ok
