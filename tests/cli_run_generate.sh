#!/bin/sh
# mecbed run --prompt-tokens/--gen-tokens: a generation split between the
# device and an edge node over an emulated link (docs/generation.md,
# "Measured split runs"). The split run's tokens equal the unsplit local
# generation's, the KV cache stays where its layers run (the bytes a token
# sends are a tiny fraction of the cache each site keeps), and bad requests
# get clear errors.
B=${BUILD:-build}/mecbed
$B run --help | grep -q -- "--prompt-tokens" || { echo "mecbed run --help lacks --prompt-tokens"; exit 1; }
. "$(dirname "$0")/lib_run_fails.sh"
fails "expected a count >= 1" --model smollm_135m --prompt-tokens 4 --gen-tokens 0 --link rate=50mbit,rtt=10ms
fails "go together" --model smollm_135m --prompt-tokens 4 --link rate=50mbit,rtt=10ms
fails "go together" --model smollm_135m --split 3 --link rate=50mbit,rtt=10ms
fails "resnet18 is not a decoder" --model resnet18 --prompt-tokens 4 --gen-tokens 2 --link rate=50mbit,rtt=10ms
fails "cache positions" --model smollm_135m --prompt-tokens 250 --gen-tokens 10 --link rate=50mbit,rtt=10ms
fails "has 30 layers" --model smollm_135m --prompt-tokens 4 --gen-tokens 2 --split 31 --link rate=50mbit,rtt=10ms
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN, cgroups)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
dir=$(mktemp -d /tmp/mb-clirungen.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# layers 0..9 on the device, 10..29 on the edge: both sites keep a cache
$B run --model smollm_135m --prompt-tokens 8 --gen-tokens 6 --split 10 --link rate=50mbit,rtt=10ms --json \
    > "$dir/gen.json" 2> "$dir/err.txt" || { echo "the split generation failed:"; cat "$dir/err.txt" "$dir/gen.json"; exit 1; }
python3 - "$dir/gen.json" <<'P' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("ttft_ms", "predicted_ttft_ms", "tpot_ms", "predicted_tpot_ms", "tpot_p95_ms", "tokens_per_s",
          "energy_mj_per_token", "bytes_up_per_token", "bytes_down_per_token"):
    assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r[k])
assert r["output_match"] is True and r["tokens"] == r["reference_tokens"], (r["tokens"], r["reference_tokens"])
assert len(r["tokens"]) == 6 and len(r["step_ms"]) == 5 and r["split"] == 10
c = r["cache_bytes"]
# smollm: 3 KV heads x 64 x 256 positions x 4 bytes, keys and values, per layer
per_layer = 2 * 3 * 64 * 256 * 4
assert c["device"] == 10 * per_layer and c["server"] == 20 * per_layer, c
assert c["device_held"] == c["device"], c
# a token sends the hidden state and the step's small tensors, never the cache
up, down = r["bytes_up_per_token"], r["bytes_down_per_token"]
assert up == r["predicted_bytes_up_per_token"] and down == r["predicted_bytes_down_per_token"], (up, down)
assert 100 * (up + down) < c["server"] and 100 * (up + down) < c["device"], (up, down, c)
print("split generation: tokens match, %d B up / %d B down per token, cache %.1f MB device, %.1f MB edge; "
      "TPOT %.1f ms (predicted %.1f)" % (up, down, c["device"] / 1e6, c["server"] / 1e6, r["tpot_ms"],
                                           r["predicted_tpot_ms"]))
P

exit 0
