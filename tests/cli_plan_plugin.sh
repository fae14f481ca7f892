#!/bin/sh
# The example plugin through the command line: loaded by path, planned,
# verified; a plugin built for another ABI version is refused clearly.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
P="$BUILD/plugins/greedy.so"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
[ -f "$P" ] || { echo "skip: $P not built (make plugins)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-plugin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

"$M" plan --model resnet18 --policy greedy --policy-plugin "$P" --link rate=50mbit,rtt=10ms \
    --verify >"$tmp/out" 2>&1 || fail "greedy plugin: $(cat "$tmp/out")"
grep -q "policy greedy" "$tmp/out" || fail "not planned by greedy: $(cat "$tmp/out")"
grep -q "bit-exact" "$tmp/out" || fail "greedy plan not verified: $(cat "$tmp/out")"
MECBED_PLUGIN_DIR="$BUILD/plugins" "$M" compare --model alexnet --policy-plugin greedy \
    --link rate=10mbit --policies greedy,mincut --json >"$tmp/cmp" || fail "compare with plugin by name"
grep -q '"policy":"greedy"' "$tmp/cmp" || fail "compare lacks greedy: $(cat "$tmp/cmp")"
"$M" plan --model resnet18 --policy greedy --policy-plugin "$BUILD/plugins/abi99.so" \
    --link rate=50mbit >"$tmp/e" 2>&1 && fail "ABI 99 plugin accepted"
grep -q "ABI version 99" "$tmp/e" || fail "ABI message: $(cat "$tmp/e")"
echo ok
