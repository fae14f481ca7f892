#!/bin/sh
# The example plugin through the command line: loaded by path, planned,
# verified; a plugin built for another ABI version is refused clearly; the
# example and an out-of-tree plugin built against the INSTALLED headers
# (make install DESTDIR=...) load and plan; undeclared --policy-opt keys are
# errors naming the key.
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
"$M" plan --model resnet18 --policy greedy --policy-plugin "$BUILD/plugins-test/abi99.so" \
    --link rate=50mbit >"$tmp/e" 2>&1 && fail "ABI 99 plugin accepted"
grep -q "ABI version 99" "$tmp/e" || fail "ABI message: $(cat "$tmp/e")"
"$M" plan --model resnet18 --policy greedy --policy-plugin "$P" --link rate=50mbit \
    --policy-opt depth=3 >"$tmp/e2" 2>&1 && fail "greedy accepted an option it does not declare"
grep -q "policy greedy: unknown option 'depth'" "$tmp/e2" || fail "option message: $(cat "$tmp/e2")"
"$M" plan --model resnet18 --policy local --link rate=50mbit --policy-opt server=edge0 \
    >"$tmp/e3" 2>&1 && fail "local accepted server="
grep -q "unknown option 'server'" "$tmp/e3" || fail "local's option message: $(cat "$tmp/e3")"

# The ABI guard: policies/abi.c compiles against the headers as they are, and
# fails once a field is added to mb_host or mb_policy_ops without a version bump.
if command -v "${CC:-cc}" >/dev/null; then
    ${CC:-cc} -std=gnu11 -Iinclude -c policies/abi.c -o "$tmp/abi.o" || fail "abi.c does not compile"
    for anchor in 'double (\*now)(void);' 'const char \*const \*option_keys;'; do
        rm -rf "$tmp/hdr" && mkdir -p "$tmp/hdr" && cp -r include/mecbed "$tmp/hdr/"
        sed -i "s|$anchor|&\n    int added_without_bump;|" "$tmp/hdr/mecbed/policy.h"
        grep -q added_without_bump "$tmp/hdr/mecbed/policy.h" || fail "could not edit policy.h at $anchor"
        ${CC:-cc} -std=gnu11 -I"$tmp/hdr" -c policies/abi.c -o "$tmp/abi2.o" 2>"$tmp/abi.err" &&
            fail "a layout change after '$anchor' compiled without an ABI bump"
        grep -q "bump MB_POLICY_ABI_VERSION" "$tmp/abi.err" || fail "ABI guard message: $(cat "$tmp/abi.err")"
    done
fi

# Installed headers only: nothing of the source tree on the include path.
command -v "${CC:-cc}" >/dev/null || { echo "ok (skip: no C compiler for the installed-header part)"; exit 0; }
make -s install DESTDIR="$tmp/inst" PREFIX=/usr BUILD="$BUILD" >"$tmp/install.log" 2>&1 ||
    fail "make install: $(tail -n 20 "$tmp/install.log")"
inc="$tmp/inst/usr/include"
[ -f "$inc/mecbed/policy.h" ] || fail "policy.h not installed"
# The plugin header stands alone: it pulls in no other mecbed header.
grep -q '#include "mecbed/' "$inc/mecbed/policy.h" && fail "policy.h includes other mecbed headers"
CFL="-std=c11 -O2 -Wall -Wextra -Werror -fPIC -shared -I$inc"
${CC:-cc} $CFL -o "$tmp/greedy.so" policies/examples/greedy.c -lm || fail "greedy against installed headers"
cat >"$tmp/front.c" <<'C'
/* Out-of-tree plugin: the first frac of the operators (by index) on the
 * device, the rest on the first server; a candidate all-local plan is
 * built, evaluated and freed to compare with. Only the host table. */
#include <stdio.h>
#include <stdlib.h>
#include <mecbed/policy.h>

static const mb_host *host;
static const char *const keys[] = {"frac", NULL};

static int front_plan(const mb_policy_input *in, mb_plan *out, char *err, size_t errlen)
{
    int n = host->graph_n_nodes(in->g), srv = -1;
    for (int s = 0; s < host->topo_n_sites(in->topo) && srv < 0; s++)
        if (host->site_role(in->topo, s) != MB_SITE_DEVICE)
            srv = s;
    if (srv < 0) {
        snprintf(err, errlen, "front: no server");
        return -1;
    }
    double frac = host->opt_double(in->options, "frac", 0.5);
    int *site = calloc((size_t)n, sizeof(int));
    if (!site)
        return -1;
    for (int i = 0; i < n; i++)
        site[i] = i < frac * n || host->node_kind(in->g, i) != MB_NODE_OP ? in->device : srv;
    mb_plan *local = host->plan_new("front-local", in->g, in->device);
    int *dev = calloc((size_t)n, sizeof(int));
    if (!local || !dev || host->plan_assign(local, in->g, dev, err, errlen) ||
        host->plan_evaluate(local, in->cost, err, errlen)) {
        free(site);
        free(dev);
        host->plan_free(local);
        return -1;
    }
    host->plan_metric_set(out, "local_ms", host->plan_pred(local, "latency_ms"));
    host->plan_free(local);
    free(dev);
    int rc = host->plan_assign(out, in->g, site, err, errlen);
    host->plan_set_note(out, "front part on the device");
    free(site);
    return rc;
}

static const mb_policy_ops ops = {
    .abi_version = MB_POLICY_ABI_VERSION,
    .struct_size = sizeof(mb_policy_ops),
    .name = "front",
    .summary = "out-of-tree test plugin",
    .option_keys = keys,
    .plan = front_plan,
};

const mb_policy_ops *mb_policy_plugin(const mb_host *h);
const mb_policy_ops *mb_policy_plugin(const mb_host *h)
{
    if (h->abi_version < MB_POLICY_ABI_VERSION || h->struct_size < sizeof(mb_host))
        return NULL;
    host = h;
    return &ops;
}
C
${CC:-cc} $CFL -o "$tmp/front.so" "$tmp/front.c" || fail "out-of-tree plugin against installed headers"
"$M" plan --model resnet18 --policy greedy --policy-plugin "$tmp/greedy.so" --link rate=50mbit \
    >"$tmp/o2" 2>&1 || fail "installed-header greedy: $(cat "$tmp/o2")"
grep -q "policy greedy" "$tmp/o2" || fail "installed-header greedy did not plan: $(cat "$tmp/o2")"
"$M" plan --model alexnet --policy front --policy-plugin "$tmp/front.so" --link rate=50mbit \
    --policy-opt frac=0.3 --verify --json >"$tmp/o3" 2>"$tmp/o3e" || fail "front: $(cat "$tmp/o3e")"
python3 - "$tmp/o3" <<'PY' || fail "front's plan: $(cat "$tmp/o3")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["policy"] == "front", p["policy"]
assert p["note"] == "front part on the device", p["note"]
assert p["metrics"]["local_ms"] > 0, p["metrics"]
sites = {s.get("site") for s in p["steps"] if s["kind"] == "compute"}
assert len(sites) == 2, sites
PY
echo ok
