#!/bin/sh
# mecbed run --prompt-tokens with the other generation policies measured over
# emulated links (docs/generation.md): P/D-Device (the edge prefills, the
# whole KV cache crosses to the device once, the device decodes) and Galaxy
# (tensor parallel over two edge nodes, each keeping its heads' cache). The
# tokens must equal the unsplit model's; bytes and caches are checked.
B=${BUILD:-build}/mecbed
. "$(dirname "$0")/lib_run_fails.sh"
fails "pd-device has no layer split" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --policy pd-device --split 3 --link rate=50mbit,rtt=10ms
fails "a generation runs edgeshard" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --policy mincut --link rate=50mbit,rtt=10ms
fails "takes edges=K (K >= 1) with galaxy" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --policy galaxy --policy-opt k=2 --topology experiments/topologies/galaxy2.ini
fails "edges=3, the topology has 2 edge nodes" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --policy galaxy --policy-opt edges=3 --topology experiments/topologies/galaxy2.ini
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clirungenpol.XXXXXX)
trap 'rm -rf "$dir"' EXIT
# P/D-Device: the edge prefills every layer, the prompt's positions of the
# cache (the prefill's pads to the capacity run on the device) cross to the
# device once, the device decodes every layer with no traffic per token
$B run --model smollm_135m --prompt-tokens 8 --gen-tokens 4 --policy pd-device --link rate=200mbit,rtt=10ms --json \
    > "$dir/pd.json" 2> "$dir/err.txt" || { echo "the P/D generation failed:"; cat "$dir/err.txt" "$dir/pd.json"; exit 1; }
python3 - "$dir/pd.json" <<'P' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["policy"] == "pd-device" and r["split"] == 30, (r["policy"], r["split"])
assert r["output_match"] is True and r["tokens"] == r["reference_tokens"], (r["tokens"], r["reference_tokens"])
per_layer = 2 * 3 * 64 * 256 * 4
c = r["cache_bytes"]
assert c["device"] == 30 * per_layer and c["server"] == 0 and c["device_held"] == c["device"], c
# the prompt's 8 positions of every layer's keys and values cross, not the 256 of the static cache
kv = 2 * 30 * 3 * 64 * 8 * 4
assert r["predicted_kv_transfer_bytes"] == kv, r["predicted_kv_transfer_bytes"]
# measured on the device's timeline: the cache and the first token (4 B: an f32 on the wire)
assert r["prefill_bytes_down"] == kv + 4, r["prefill_bytes_down"]
assert r["bytes_up_per_token"] == 0 and r["bytes_down_per_token"] == 0, r
assert r["ttft_ms"] > 8 * kv / 200e6 * 1e3, r["ttft_ms"]  # the cache's serialisation at least
print("P/D-Device: tokens match, cache %.1f MB down once; TTFT %.1f ms (predicted %.1f), TPOT %.1f ms "
      "(predicted %.1f)" % (r["prefill_bytes_down"] / 1e6, r["ttft_ms"], r["predicted_ttft_ms"], r["tpot_ms"],
                            r["predicted_tpot_ms"]))
P

# Galaxy over edge0 and edge1: each keeps its heads' part of every layer's
# cache (together the whole cache, none on the device); a token moves the
# embedded hidden state and masks up and the token down
$B run --model smollm_135m --prompt-tokens 8 --gen-tokens 4 --policy galaxy \
    --topology experiments/topologies/galaxy2.ini --json > "$dir/gx.json" 2> "$dir/err.txt" ||
    { echo "the Galaxy generation failed:"; cat "$dir/err.txt" "$dir/gx.json"; exit 1; }
python3 - "$dir/gx.json" <<'P' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["policy"] == "galaxy" and r["edges"] == 2, (r["policy"], r.get("edges"))
assert r["output_match"] is True and r["tokens"] == r["reference_tokens"], (r["tokens"], r["reference_tokens"])
per_layer = 2 * 3 * 64 * 256 * 4
c = r["cache_bytes"]
assert c["device"] == 0 and c["server"] == 30 * per_layer and c["device_held"] == 0, c
up, down = r["bytes_up_per_token"], r["bytes_down_per_token"]
assert up == r["predicted_bytes_up_per_token"] and down == r["predicted_bytes_down_per_token"], (up, down)
assert 0 < up < 100000 and 0 < down < 64, (up, down)
print("Galaxy: tokens match, %d B up / %d B down per token, cache %.1f MB over 2 edges; TPOT %.1f ms (predicted "
      "%.1f)" % (up, down, c["server"] / 1e6, r["tpot_ms"], r["predicted_tpot_ms"]))
P

exit 0
