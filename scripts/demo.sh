#!/bin/sh
# make demo: the default experiment. One model under every built-in policy
# over an emulated LTE-like link: first what each policy predicts (cost model
# only), then, as root, each plan executed for real (the device and an edge
# server in their own network namespaces, tensors crossing mecbed's own link
# emulator), with measured against predicted latency and device energy.
#
#   DEMO_MODEL   zoo model or model file (default tinyyolov2: on a Raspberry Pi
#                at LTE rates local, layer-wise and operator-level plans all
#                differ; resnet18 on a phone runs locally under every policy)
#   DEMO_DEVICE  device node type (default rpi4; see policies/nodetypes)
#   DEMO_LINK    link spec (default LTE-like: 10 Mbit/s up, 30 down, 40 ms RTT)
#   DEMO_FRAMES  frames per policy (default 3)
B=${BUILD:-build}/mecbed
MODEL=${DEMO_MODEL:-tinyyolov2}
DEVICE=${DEMO_DEVICE:-rpi4}
LINK=${DEMO_LINK:-up.rate=10mbit,down.rate=30mbit,rtt=40ms}
FRAMES=${DEMO_FRAMES:-3}

[ -x "$B" ] || { echo "demo: $B is not built (run make)" >&2; exit 1; }
# Every registered policy, as the registry lists them when asked for an unknown one.
POLICIES=$("$B" plan --model "$MODEL" --link "$LINK" --policy '?' 2>&1 |
    sed -n 's/.*(registered: \(.*\); plugins load.*/\1/p')
[ -n "$POLICIES" ] || { echo "demo: '$B plan' lists no registered policies" >&2; exit 1; }

echo "== mecbed demo: $MODEL on a $DEVICE, link $LINK"
echo
echo "-- 1. what each policy predicts (cost model, pinned profile)"
"$B" compare --model "$MODEL" --device-type "$DEVICE" --link "$LINK" || exit 1
echo

if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ]; then
    echo "-- 2. measured runs skipped: they need root and /dev/net/tun (network namespaces and"
    echo "   the TUN link emulator). Run 'sudo make demo' to execute every plan for real."
    exit 0
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-demo.XXXXXX")
trap 'rm -rf "$out"' EXIT
trap 'exit 130' INT TERM

echo "-- 2. every plan executed for real, $FRAMES frames each (emu backend)"
printf '%-10s %12s %12s %8s %12s %12s %8s  %s\n' policy measured_ms predicted_ms error \
    energy_mj pred_mj_dev bytes_up output
status=0
for p in $POLICIES; do
    if ! "$B" run --model "$MODEL" --device-type "$DEVICE" --policy "$p" --link "$LINK" \
        --frames "$FRAMES" > "$out/$p.txt" 2> "$out/$p.err"; then
        printf '%-10s failed: %s\n' "$p" "$(grep -v warning "$out/$p.err" | tail -n 1)"
        status=1
        continue
    fi
    # the human summary's lines: "latency measured X ms (...), predicted Y ms, error Z",
    # "device energy measured A mJ, predicted B mJ", "output matches ..."
    awk -v p="$p" '
        /^latency/ { for (i = 1; i <= NF; i++) { if ($i == "measured") m = $(i + 1);
                     if ($i == "predicted") pr = $(i + 1); if ($i == "error") e = $(i + 1) } }
        /^device energy/ { for (i = 1; i <= NF; i++) { if ($i == "measured") em = $(i + 1);
                     if ($i == "predicted") ep = $(i + 1) } }
        /^device traffic/ { b = $3 }
        /^output/ { o = ($2 == "matches") ? "matches" : "DIFFERS" }
        END { printf "%-10s %12s %12s %8s %12s %12s %8s  %s\n", p, m, pr, e, em, ep, b == "" ? "-" : b, o }
    ' "$out/$p.txt"
done
echo
echo "measured: median frame latency in emulated time (sites at their node types' speed; transfers, overlap and overheads real);"
# the device type's radio, as policies/nodetypes/default.ini gives it (rpi4: wifi)
RADIO=$(awk -v t="[$DEVICE]" '/^\[/ { p = ($0 == t) } p && $1 == "radio" { print $3; exit }' policies/nodetypes/default.ini)
echo "predicted: the policy's cost model; energy: the device's compute and its ${RADIO:-} radio, modelled from the"
echo "  measured busy time and packets (the same model for both columns: docs/energy.md)."
echo "More: mecbed run --help, mecbed compare --help, docs/runtime.md, experiments/README.md"
exit $status
