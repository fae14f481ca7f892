#!/bin/sh
# The ns3 link backend (docs/ns3.md): parameter checks, a point-to-point
# fidelity check with wide tolerances, a trace-driven p2p link, a Wi-Fi smoke
# run with ns-3's radio energy, a walking device, LTE, a `mecbed run` over Wi-Fi, and clean-up: no
# namespace, interface (TAP) or mecbed-ns3 process left, also after SIGINT.
# Needs root and the helper built from libns3-dev ($BUILD/mecbed-ns3).
BUILD=${BUILD:-build}
B=$BUILD/mecbed
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip > /dev/null; then
    echo "skip: the ns3 backend needs root, /dev/net/tun and iproute2"
    exit 77
fi
[ -x "$BUILD/mecbed-ns3" ] || { echo "skip: $BUILD/mecbed-ns3 not built (install libns3-dev and rebuild)"; exit 77; }
command -v python3 > /dev/null || { echo "skip: python3 reads the JSON"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-ns3.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
# a field of a JSON file (python3), "None" when absent or null
j() { python3 -c "import json,sys; d=json.load(open('$1')); v=d.get('$2'); print(v)"; }
# is the float expression true?
ok() { python3 -c "import sys; sys.exit(0 if ($1) else 1)"; }
# Figures are checked only when ns-3 kept up with real time (the JSON's
# "valid"); a measurement that fell behind is taken again once, and one that
# fell behind twice is listed here: the test then ends with SKIP (exit 77)
# naming it, never with a PASS that checked nothing.
unchecked=""
# ltest FILE ARGS...: `link test ARGS --json` into FILE, again when not valid
ltest() {
    out=$1; shift
    $B link test "$@" --json > "$out" || return 1
    [ "$(j "$out" valid)" = False ] || return 0
    echo "ns-3 fell behind real time ($*): measuring again"
    $B link test "$@" --json > "$out"
}
checked() { # NAME FILE: 0 when FILE's figures can be checked
    [ "$(j "$2" valid)" = False ] || return 0
    echo "warning: ns-3 fell behind real time twice on this (busy) machine; $1 figures not checked"
    unchecked="$unchecked $1"
    return 1
}
# live helpers of this build (other builds' tests may run theirs meanwhile; a zombie
# is already dead, waiting for its parent to reap it)
HELPER=$(realpath "$BUILD/mecbed-ns3")
helpers() { ps -eo stat=,args= | awk -v h="$HELPER" '$1 !~ /^Z/ && $2 == h'; }
nproc_ns3() { helpers | wc -l; }
procs_before=$(nproc_ns3)

# start-up: the helper answers, parameters are checked before anything is made
"$BUILD/mecbed-ns3" --help 2>&1 | grep -q "ns-3" || fail "mecbed-ns3 --help"
$B link check --backend ns3 --link ns3=wifi,distance=20m,standard=80211n > /dev/null || fail "wifi 11n refused"
$B link check --backend ns3 --link ns3=wifi,distance=20x 2> $T/err && fail "distance=20x accepted"
grep -q "distance=20x" $T/err || fail "distance error: $(cat $T/err)"
$B link check --backend ns3 --link ns3=wifi,rate=10mbit 2> $T/err && fail "wifi rate= accepted"
grep -q "rate control" $T/err || fail "wifi rate= error: $(cat $T/err)"
$B link check --backend ns3 --link ns3=p2p,colour=blue 2> $T/err && fail "unknown key accepted"
grep -q "colour" $T/err || fail "unknown key error: $(cat $T/err)"
$B link check --backend ns3 --link ns3=p2p,rate=10mbit,jitter=2ms 2> $T/err && fail "jitter accepted"
grep -q -- "--backend emu" $T/err || fail "jitter error: $(cat $T/err)"
$B link check --backend emu --link ns3=p2p,rate=10mbit 2> $T/err && fail "emu took an ns-3 model"

# p2p 10 Mbit/s + 20 ms: RTT 40 ms and TCP near the rate (wide tolerances: a
# shared machine); the measurement says whether ns-3 kept up with real time
ltest $T/p2p.json --backend ns3 --link ns3=p2p,rate=10mbit,delay=20ms --duration 2 --no-udp --no-loss \
    || fail "p2p link test"
valid=$(j $T/p2p.json valid)
rtt=$(j $T/p2p.json rtt_ms)
tcp=$(j $T/p2p.json throughput_mbps)
echo "p2p 10mbit/20ms: rtt $rtt ms, tcp $tcp Mbit/s, real time kept: $valid"
[ "$valid" = True ] || [ "$valid" = False ] || fail "no 'valid' in link test JSON: $(cat $T/p2p.json)"
python3 -c "import json; d=json.load(open('$T/p2p.json')); assert 'lag_max_ms' in d['realtime']" || fail "realtime object"
if checked p2p $T/p2p.json; then
    ok "36 <= $rtt <= 48" || fail "p2p RTT $rtt ms, expected about 40"
    ok "$tcp >= 8" || fail "p2p TCP $tcp Mbit/s, expected about 10"
fi

# a trace-driven p2p rate: bytes delivered against the trace's capacity
ltest $T/tr.json --backend ns3 --link ns3=p2p,trace=traces/steps-wifi-4g-3g.trace,delay=5ms --duration 1 \
    --no-tcp --no-loss || fail "trace link test"
ratio=$(j $T/tr.json trace_delivery_ratio)
! checked trace $T/tr.json || ok "0.8 <= $ratio <= 1.05" || fail "trace delivery ratio $ratio"

# an outage inside a trace (1 s in every 3) holds packets back and then goes on
printf '# mecbed-trace 1\n0 10\n1 0\n2 10\nend 3\n' > $T/onoff.trace
ltest $T/onoff.json --backend ns3 --link ns3=p2p,trace=$T/onoff.trace,delay=5ms --duration 3 --no-tcp --no-loss \
    || fail "on-off trace link test"
ratio=$(j $T/onoff.json trace_delivery_ratio)
! checked on-off $T/onoff.json || ok "0.8 <= $ratio <= 1.05" || fail "on-off trace delivery ratio $ratio"

# Wi-Fi 802.11a at 10 m: some throughput, a sub-10 ms RTT, ns-3's radio energy
ltest $T/wifi.json --backend ns3 --link ns3=wifi,distance=10m --duration 1 --no-udp --no-loss \
    || fail "wifi link test"
tcp=$(j $T/wifi.json throughput_mbps)
e=$(j $T/wifi.json ns3_radio_energy_j)
echo "wifi 802.11a 10 m: tcp $tcp Mbit/s, rtt $(j $T/wifi.json rtt_ms) ms, ns-3 radio energy $e J"
! checked wifi $T/wifi.json || ok "$tcp > 5" || fail "wifi TCP $tcp Mbit/s"
ok "$e > 0" || fail "wifi radio energy $e"

# a device walking away (4 m/s from 30 m): the distance grows during the test
$B link test --backend ns3 --link ns3=wifi,distance=30m,speed=4 --duration 1 --no-udp --no-loss --json \
    > $T/walk.json || fail "wifi walking link test"
ok "$(j $T/walk.json ns3_distance_m) > 33" || fail "the device did not move: $(cat $T/walk.json)"

# LTE (LENA + EPC): the UE's traffic crosses the EPC; cells too big for real time are refused
$B link check --backend ns3 --link ns3=lte,ues=30 2> $T/err && fail "30 UEs accepted"
grep -q "real time" $T/err || fail "lte refusal: $(cat $T/err)"
ltest $T/lte.json --backend ns3 --link ns3=lte,distance=100m --duration 1 --no-udp --no-loss \
    || fail "lte link test"
tcp=$(j $T/lte.json throughput_mbps)
echo "lte 25 RBs 100 m: tcp $tcp Mbit/s, rtt $(j $T/lte.json rtt_ms) ms"
! checked lte $T/lte.json || ok "$tcp > 2" || fail "lte TCP $tcp Mbit/s"

# mecbed run over Wi-Fi (tiny model), valid flag and both energies in the JSON
cat > "$T/net.model" <<'M'
mecbed-model 1
name clins3_net
seed 3
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
output gap
M
run0=$(printf 'n4%04d' $(($$ % 10000)))
# --tdf 1: ns-3's Wi-Fi cannot be time-dilated, and the default edge is faster than this machine
$B run --model "$T/net.model" --policy offload --link-backend ns3 --link ns3=wifi,distance=20m --frames 2 --json \
    --tdf 1 --run-id $run0 > $T/run.json 2> $T/run.err || fail "run over ns3 wifi: $(cat $T/run.err)"
tail -1 $T/run.json > $T/run1.json
[ "$(j $T/run1.json output_match)" = True ] || fail "run output: $(cat $T/run1.json)"
for k in valid realtime_lag_max_ms ns3_radio_energy_mj radio_model_mj; do
    grep -q "\"$k\":" $T/run1.json || fail "run JSON lacks $k"
done
# the Wi-Fi link has no rate in its spec: probed before planning, and reported
grep -q '"probed_rate_mbps":[0-9]' $T/run1.json || fail "no probed rate for the Wi-Fi link: $(cat $T/run1.json)"
# and a time-dilated run over it is refused, saying why
$B run --model "$T/net.model" --policy offload --link-backend ns3 --link ns3=wifi,distance=20m --frames 1 \
    --tdf 2 > /dev/null 2> $T/run.err && fail "a dilated run over ns-3 Wi-Fi was accepted"
grep -q "cannot be time-dilated" $T/run.err || fail "dilated Wi-Fi refusal: $(cat $T/run.err)"

# clean-up after normal exits (other runs may come and go meanwhile: count only ours)
[ "$(nproc_ns3)" = "$procs_before" ] || fail "mecbed-ns3 processes left: $(helpers)"
ip netns list | grep -q "mecbed-$run0" && fail "namespaces left: $(ip netns list)"
ip -o link show | grep -q "mb$run0" && fail "interfaces left"

# SIGINT in the middle of a stream
run=$(printf 'n3%04d' $(($$ % 10000)))
$B run --model "$T/net.model" --policy offload --link-backend ns3 --link ns3=p2p,rate=10mbit,delay=5ms --frames 1000 \
    --fps 5 --run-id $run > $T/out.txt 2> $T/err.txt &
pid=$!
up=""
for i in $(seq 1 100); do
    ip netns pids mecbed-$run-edge0 2> /dev/null | grep -q . && { up=1; break; }
    sleep 0.1
done
[ -n "$up" ] || { kill -9 $pid; fail "the SIGINT run never started: $(cat $T/err.txt)"; }
helpers | grep -q "mecbed-$run-" || { kill -9 $pid; fail "no mecbed-ns3 for run $run: $(helpers; cat $T/err.txt)"; }
sleep 1
kill -INT $pid
for i in $(seq 1 100); do kill -0 $pid 2> /dev/null || break; sleep 0.1; done
kill -0 $pid 2> /dev/null && { kill -9 $pid; fail "still running 10 s after SIGINT"; }
wait $pid
sleep 0.2
helpers | grep -q "mecbed-$run-" && fail "mecbed-ns3 left after SIGINT"
ip netns list | grep -q "mecbed-$run" && fail "namespaces left after SIGINT"
ip -o link show | grep -q "mb$run" && fail "interfaces left after SIGINT"
if [ -n "$unchecked" ]; then
    echo "skip: everything else passed, but ns-3 fell behind real time twice, so these figures were not checked:$unchecked"
    exit 77
fi
echo "ok"
exit 0
