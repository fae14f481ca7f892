#!/bin/sh
# mecbed run --prompt-tokens --policy speculative, measured over an emulated
# link (docs/generation.md): the draft on the device, the target verifying
# k+1 tokens a round on the edge. The tokens must equal the unsplit model's.
B=${BUILD:-build}/mecbed
. "$(dirname "$0")/lib_run_fails.sh"
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clirunspec.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# speculative decoding: the draft on the device, the target verifying k+1
# tokens a round on the edge; the acceptance pattern keeps the tokens the
# unsplit target's
$B run --model smollm_135m --prompt-tokens 8 --gen-tokens 8 --policy speculative --policy-opt k=3,a=0.6 \
    --link rate=50mbit,rtt=10ms --json > "$dir/sp.json" 2> "$dir/err.txt" ||
    { echo "the speculative generation failed:"; cat "$dir/err.txt" "$dir/sp.json"; exit 1; }
python3 - "$dir/sp.json" <<'P' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
sp = r["speculative"]
assert r["policy"] == "speculative" and sp["k"] == 3 and sp["draft"] == "smollm_draft", (r["policy"], sp)
assert r["output_match"] is True and r["tokens"] == r["reference_tokens"], (r["tokens"], r["reference_tokens"])
assert sp["rounds"] >= 2 and sp["proposed"] == 3 * sp["rounds"] and sp["forced"] <= sp["accepted"], sp
# every round emits its accepted proposals and one token of the target's
assert sp["accepted"] + sp["rounds"] >= 7, sp
c = r["cache_bytes"]
assert c["device"] == 0 and c["server"] == 30 * 2 * 3 * 64 * 256 * 4, c
assert r["tpot_ms"] > 0 and r["predicted_tpot_ms"] > 0, r
print("speculative: tokens match, %d rounds, %d/%d accepted; TPOT %.1f ms (predicted %.1f)" % (
    sp["rounds"], sp["accepted"], sp["proposed"], r["tpot_ms"], r["predicted_tpot_ms"]))
P
fails "speculative decoding with k=30 needs" --model smollm_135m --prompt-tokens 200 --gen-tokens 40 --policy speculative --policy-opt k=30 --link rate=50mbit,rtt=10ms
fails "k=K (1..32)" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --policy speculative --policy-opt k=0 --link rate=50mbit,rtt=10ms
exit 0
