#!/bin/sh
# make install PREFIX=<temp> and make uninstall: the installed binary runs
# from its prefix; mecbed.pc lets a plugin build out of tree with
# `pkg-config --cflags mecbed` (the installed example source, nothing of the
# source tree on the include path), and the installed binary runs it in a
# plan-mode sweep of the installed experiments' kind, by name from the
# current folder; man pages (one per command, from --help), bash completion,
# docs, experiments and the Python package are there; uninstall removes
# every file install wrote.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v pkg-config >/dev/null || { echo "skip: pkg-config not installed"; exit 77; }
command -v "${CC:-cc}" >/dev/null || { echo "skip: no C compiler"; exit 77; }
command -v make >/dev/null || { echo "skip: no make"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
P="$tmp/prefix"
unset MECBED_PLUGIN_PATH MECBED_PLUGIN_DIR MECBED_DATA

make -s install PREFIX="$P" BUILD="$BUILD" >"$tmp/install.log" 2>&1 || fail "make install: $(tail -n 20 "$tmp/install.log")"
find "$P" -type f | sort >"$tmp/files"
for f in bin/mecbed include/mecbed/policy.h lib/pkgconfig/mecbed.pc lib/mecbed/plugins/greedy.so \
    lib/mecbed/plugins/half.so share/man/man1/mecbed.1 share/man/man1/mecbed-plan.1 \
    share/man/man1/mecbed-policies.1 share/bash-completion/completions/mecbed share/doc/mecbed/README.md \
    share/doc/mecbed/docs/plugins.md share/mecbed/experiments/bandwidth.conf \
    share/mecbed/examples/plugins/half.c share/mecbed/policies/nodetypes/default.ini \
    lib/python3/dist-packages/mecbed/__init__.py; do
    [ -f "$P/$f" ] || fail "not installed: $f"
done
# a man page per command, and each is the command's --help
for c in $("$P/bin/mecbed" --help | sed -n '/^commands:/,$s/^  \([a-z][a-z0-9-]*\) .*/\1/p'); do
    [ -f "$P/share/man/man1/mecbed-$c.1" ] || fail "no man page for $c"
done
grep -q '^mecbed-policies \\- list the policies' "$P/share/man/man1/mecbed-policies.1" || fail "man NAME line"
grep -q -- '--policy-plugin P   load a plugin' "$P/share/man/man1/mecbed-policies.1" || fail "man page is not the --help text"
if command -v man >/dev/null; then
    MANWIDTH=100 man -l "$P/share/man/man1/mecbed-plan.1" 2>/dev/null | grep -q "mecbed plan --model M" ||
        fail "man cannot render mecbed-plan.1"
fi

# pkg-config: the flags of the prefix, and a plugin built out of tree with them
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
[ "$(pkg-config --modversion mecbed)" = "$("$P/bin/mecbed" --version | sed 's/^mecbed //')" ] || fail "mecbed.pc version"
[ "$(pkg-config --variable=plugindir mecbed)" = "$P/lib/mecbed/plugins" ] || fail "plugindir: $(pkg-config --variable=plugindir mecbed)"
pkg-config --cflags mecbed | grep -q -- "-I$P/include" || fail "cflags: $(pkg-config --cflags mecbed)"
mkdir -p "$tmp/work"
cp "$P/share/mecbed/examples/plugins/half.c" "$tmp/work/"
sed -i 's/"half"/"myhalf"/' "$tmp/work/half.c"
(cd "$tmp/work" && ${CC:-cc} -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags mecbed) -shared -fPIC \
    -o myhalf.so half.c) || fail "the example plugin does not build with pkg-config --cflags mecbed"

# the installed binary finds its data and plugins from the prefix, and runs
# the out-of-tree plugin by name (current folder) in a plan-mode sweep
cat >"$tmp/work/e.conf" <<'CONF'
[sweep]
name = installed
mode = plan
models = alexnet
policies = myhalf:frac=0.5 greedy mincut
x = 5 50
links = rate={x}mbit,rtt=20ms
CONF
(cd "$tmp/work" && "$P/bin/mecbed" sweep e.conf --out res --no-plots --json) >"$tmp/sum" 2>"$tmp/err" ||
    fail "sweep with the out-of-tree plugin: $(cat "$tmp/err")"
python3 - "$tmp/work/res/results.csv" "$P" <<'PY' || fail "sweep rows: $(cat "$tmp/work/res/results.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6 and all(r["ok"] == "1" for r in rows), rows
assert {r["policy"] for r in rows} == {"myhalf:frac=0.5", "greedy", "mincut"}
assert all(r["profile"] == "pinned" for r in rows), [r["profile"] for r in rows]  # data from the prefix
assert any("on the device, the rest on edge0" in r["note"] for r in rows if r["policy"].startswith("myhalf"))
PY
(cd "$tmp/work" && "$P/bin/mecbed" policies --json) >"$tmp/pol" || fail "installed policies"
python3 - "$tmp/pol" "$P" "$tmp/work" <<'PY' || fail "installed listing: $(cat "$tmp/pol")"
import json, os, sys
j = json.load(open(sys.argv[1]))
where = {p["name"]: p["path"] for p in j["policies"]}
assert where["greedy"] == os.path.realpath(sys.argv[2] + "/lib/mecbed/plugins/greedy.so"), where
assert where["myhalf"] == os.path.realpath(sys.argv[3] + "/myhalf.so"), where
assert j["refused"] == [], j["refused"]
PY

# bash completion from the installed script, completing the installed binary
if command -v bash >/dev/null; then
    out=$(bash -c '. "$1/share/bash-completion/completions/mecbed"
        COMP_WORDS=("$1/bin/mecbed" pol); COMP_CWORD=1; _mecbed; echo "${COMPREPLY[*]}"
        COMP_WORDS=("$1/bin/mecbed" plan --policy-o); COMP_CWORD=2; _mecbed; echo "${COMPREPLY[*]}"
        COMP_WORDS=("$1/bin/mecbed" plan --policy m); COMP_CWORD=3; _mecbed; echo "${COMPREPLY[*]}"' _ "$P")
    [ "$(echo "$out" | sed -n 1p)" = "policies" ] || fail "completion of 'pol': $out"
    [ "$(echo "$out" | sed -n 2p)" = "--policy-opt" ] || fail "completion of '--policy-o': $out"
    [ "$(echo "$out" | sed -n 3p)" = "mincut" ] || fail "completion of '--policy m': $out"
fi

# the installed Python package runs the installed binary
if [ -x /usr/bin/python3 ]; then
    PYTHONPATH="$P/lib/python3/dist-packages" MECBED="$P/bin/mecbed" /usr/bin/python3 -c '
import mecbed, sys
assert mecbed.__file__.startswith(sys.argv[1]), mecbed.__file__
p = mecbed.plan("alexnet", "local", link="rate=10mbit")
assert p["pred"]["bytes_up"] == 0, p["pred"]' "$P" || fail "installed python package"
fi

make -s uninstall PREFIX="$P" BUILD="$BUILD" >"$tmp/un.log" 2>&1 || fail "make uninstall: $(cat "$tmp/un.log")"
left=$(find "$P" -type f)
[ -z "$left" ] || fail "uninstall left: $left"
echo ok
