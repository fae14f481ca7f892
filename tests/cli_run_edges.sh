#!/bin/sh
# mecbed run over several edge nodes and a cloud (experiments/topologies/
# tier2.ini: a phone, two Jetson Nano edges on a LAN, a cloud GPU behind a
# WAN link), every site in its own namespace: a D3-style tile plan split
# over both edges (tiles and halos over the edge-edge link) and a full
# offload to the cloud through edge0 (the input and output over the
# edge-cloud link). Both outputs match the unsplit model, and the bytes the
# emulator carried on each link per frame (packet logs: payload plus TCP/IP
# headers, ACKs and control messages) are the plan's payload for that link
# plus at most the protocol overhead; links the plan leaves idle carry
# (almost) nothing.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: mecbed run needs root (namespaces, TUN)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
T=experiments/topologies/tier2.ini
[ -f "$T" ] || T="$(dirname "$0")/../$T"
dir=$(mktemp -d /tmp/mb-edges.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
# --tdf 2: the cloud GPU then runs at this machine's speed (warned); bytes
# and outputs do not depend on it, and the test stays short
for p in tile offload:server=cloud; do
    pol=${p%%:*}
    opt=""
    [ "$pol" != "$p" ] && opt="--policy-opt ${p#*:}"
    if ! $B run --model tiny_yolov2 --policy $pol $opt --topology "$T" --frames 2 --tdf 2 --json \
        > "$dir/out.json" 2> "$dir/err.txt"; then
        echo "$p failed:"; cat "$dir/err.txt"; fail=1; continue
    fi
    python3 - "$dir/out.json" "$p" <<'P' || fail=1
import json, sys
r, p = json.load(open(sys.argv[1])), sys.argv[2]
assert r["ok_frames"] == 2 and r["output_match"] is True, (p, r["ok_frames"], r["output_match"])
links = {(l["a"], l["b"]): l for l in r["links"]}
assert set(links) == {("device", "edge0"), ("edge0", "edge1"), ("edge0", "cloud")}, sorted(links)
for (a, b), l in links.items():
    pb, mb = l["predicted_bytes"], l["measured_bytes"]
    assert mb is not None, (p, a, b, "not measured")
    print("%-22s %-6s-%-6s predicted %9d B, measured %9d B per frame" % (p, a, b, pb, mb))
    if pb == 0:
        assert mb < 4096, (p, a, b, "idle link carried", mb)
    else:
        # payload + 52 B of TCP/IP headers per 1448 B segment, ACKs, control messages
        assert pb <= mb <= pb * 1.12 + 16384, (p, a, b, pb, mb)
if p == "tile":
    assert r["metrics"]["k_edges"] == 2 and r["metrics"]["tiles"] >= 2, r["metrics"]
    assert links[("edge0", "edge1")]["predicted_bytes"] > 0, "tile plan left edge1 idle"
    assert r["edge_edge_bytes_measured"] == links[("edge0", "edge1")]["measured_bytes"]
else:
    ec = links[("edge0", "cloud")]
    assert ec["predicted_bytes"] == links[("device", "edge0")]["predicted_bytes"] > 0, "offload not through edge0"
    assert r["edge_cloud_bytes"] == ec["predicted_bytes"] and r["edge_cloud_bytes_measured"] == ec["measured_bytes"]
P
done
exit $fail
