#!/bin/sh
# mecbed link test / check through the command line: JSON keys, configured
# beside measured, the trace-driven case, tc's rate-only mode and its error
# naming emu, backends and their errors from the registry, and no namespace
# or interface left behind. Needs root.
BUILD=${BUILD:-build}
B=$BUILD/mecbed
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip > /dev/null; then
    echo "skip: mecbed link test needs root, /dev/net/tun and iproute2"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-link.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
ip netns list | awk '/^mecbed-/ {print $1}' | sort > "$T/before" 2>/dev/null || true

$B link --help | grep -q "mecbed link test" || fail "link --help"
# the registry drives help and errors: every backend `run --help` lists has a
# summary line in `link --help`, and an unknown backend's error lists them
list=$($B run --help | sed -n 's/^  --[a-z-]*backend B  *link emulation: \(.*\) (the first is the default)$/\1/p')
[ -n "$list" ] || fail "run --help lists no link backends"
for b in $(echo "$list" | tr -d ','); do
    $B link --help | grep -q "^  *$b  *[a-zA-Z]" || fail "link --help lacks backend $b"
done
$B link check --backend carrier-pigeon --link rate=1mbit 2> $T/err && fail "unknown backend accepted"
grep -q "unknown link backend 'carrier-pigeon' ($list)" $T/err || fail "unknown backend error: $(cat $T/err)"
# another backend's key names the key and the backend that reads it
$B link check --backend emu --link ns3=wifi,rate=1mbit 2> $T/err && fail "emu accepted ns3="
grep -q "ns3=wifi: use --backend ns3" $T/err || fail "foreign key error: $(cat $T/err)"
$B link check --link rate=1mbit,colour=blue 2> $T/err && fail "unknown key accepted"
grep -q "unknown key 'colour'" $T/err || fail "unknown key error: $(cat $T/err)"
# the emu backend's write window (coalesce=): a time, and emu's alone
$B link check --link rate=1mbit,coalesce=250us > /dev/null || fail "coalesce=250us refused"
$B link check --link rate=1mbit,coalesce=0 > /dev/null || fail "coalesce=0 (no window) refused"
$B link check --link rate=1mbit,coalesce=5 2> /dev/null && fail "coalesce=5 (no unit) accepted"
$B link check --link rate=1mbit,coalesce=fast 2> $T/err && fail "coalesce=fast accepted"
grep -q "coalesce='fast'" $T/err || fail "coalesce error: $(cat $T/err)"
$B link check --backend tc --link rate=1mbit,coalesce=250us 2> $T/err && fail "tc accepted coalesce="
# TCP through GSO super-packets and merged writes: the rate still holds, in wire bytes
$B link test --backend emu --link rate=20mbit,delay=5ms,coalesce=1ms --duration 2 --no-udp --no-loss --json \
    > $T/co.json || fail "emu link test with coalesce="
tput=$(sed -n 's/^[[:space:]]*"throughput_mbps":[[:space:]]*\([-0-9.e+]*\),*$/\1/p' $T/co.json)
awk -v x="$tput" 'BEGIN { exit !(x >= 19 && x <= 20.2) }' || fail "TCP at 20 Mbit/s with coalesce=1ms: $tput"
$B link test --backend emu --link rate=20mbit,delay=10ms,loss=0.5% --duration 1 --json > $T/emu.json || fail "emu link test"
for k in throughput_mbps rtt_ms loss_rate configured_rate_mbps configured_rtt_ms configured_loss_rate udp_throughput_mbps emulator_cpu_percent; do
    grep -q "\"$k\":" $T/emu.json || fail "key $k missing: $(cat $T/emu.json)"
done
grep -q '"configured_rate_mbps":	20,' $T/emu.json || fail "configured rate"
grep -q '"configured_rtt_ms":	20,' $T/emu.json || fail "configured rtt"
# the measured values against the spec (measured at the receiving end): a
# link that ignored the rate, the delay or the loss fails here. Tolerances
# allow a busy machine: it can only add delay and take rate away.
inrange() { # FILE KEY LO HI
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]
lo,hi=float(sys.argv[3]),float(sys.argv[4])
sys.exit(0 if v is not None and lo <= v <= hi else "%s = %s, expected %g..%g" % (sys.argv[2], v, lo, hi))' "$@" \
        || fail "$(cat "$1")"
}
command -v python3 > /dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
inrange $T/emu.json throughput_mbps 12 21
inrange $T/emu.json udp_throughput_mbps 12 21
inrange $T/emu.json rtt_min_ms 19.9 40
inrange $T/emu.json rtt_ms 19.9 60
inrange $T/emu.json one_way_delay_ms 9.9 30
inrange $T/emu.json loss_rate 0 0.03
# a loss rate large enough to measure in one second: 10 % of ~800 datagrams
# (binomial sd ~1 %)
$B link test --link-backend emu --link rate=20mbit,delay=5ms,loss=10% --duration 1 --no-tcp --json > $T/loss.json \
    || fail "lossy link test"
inrange $T/loss.json loss_rate 0.05 0.16
# reordering (netem's words): a quarter of the datagrams skip the 10 ms
# delay and overtake those before them; the loss phase counts arrivals after
# a higher-numbered datagram (iperf3's count). A link that ignored reorder
# delivers in order: 0 here (and 0 on the plain links above).
$B link test --link "delay 10ms reorder 25%" --duration 1 --no-tcp --no-udp --json --quiet > $T/ro.json \
    || fail "reorder link test"
inrange $T/ro.json configured_reorder 0.25 0.25
inrange $T/ro.json loss_datagrams_out_of_order 50 1000000
inrange $T/ro.json loss_rate 0 0
inrange $T/emu.json loss_datagrams_out_of_order 0 0
inrange $T/loss.json loss_datagrams_out_of_order 0 0
# tc passes reorder to netem; on a kernel without netem it says so
if $B link check --link-backend tc --link "delay 10ms reorder 25%" 2> $T/err; then
    $B link check --link-backend tc --link delay=10ms > /dev/null 2>&1 || fail "tc: reorder accepted, delay refused"
else
    grep -q "no netem qdisc.*reorder" $T/err || fail "tc reorder error: $(cat $T/err)"
fi

# a trace: delivered bytes against the trace's capacity
$B link test --backend emu --link trace=traces/steps-wifi-4g-3g.trace,delay=5ms --duration 1 --no-tcp --no-loss --json > $T/tr.json || fail "trace link test"
grep -q '"trace_delivery_ratio":' $T/tr.json || fail "trace ratio missing"
inrange $T/tr.json trace_delivery_ratio 0.8 1.05

# tc: rate only works here; delay on a kernel without netem names emu
mkdir $T/tclog
$B link test --backend tc --link rate=10mbit --duration 1 --no-tcp --no-loss --log-dir $T/tclog > $T/tc.txt || fail "tc rate-only"
grep -q "backend tc" $T/tc.txt || fail "tc output: $(cat $T/tc.txt)"
# tc records a pcap per direction (captured where the shaped packets arrive)
sz=$(wc -c < $T/tclog/link0-device-edge0.up.pcap)
[ "$sz" -gt 100000 ] || fail "tc pcap too small ($sz bytes)"
if ! $B link check --backend tc --link rate=10mbit,delay=10ms 2> $T/err; then
    grep -q -- "--backend emu" $T/err || fail "tc delay error does not name emu: $(cat $T/err)"
fi
$B link check --backend tc --link trace=traces/outage-5s.trace 2> $T/err && fail "tc accepted a trace"
grep -q -- "--backend emu" $T/err || fail "tc trace error"
grep -q "^mecbed: --backend is deprecated here; use --link-backend$" $T/err || fail "no notice: $(cat $T/err)"
# --link-backend is the spelling that names the link emulator
$B link check --link-backend tc --link trace=traces/outage-5s.trace 2> $T/err && fail "--link-backend tc accepted a trace"
grep -q "deprecated" $T/err && fail "--link-backend printed a notice: $(cat $T/err)"
if [ -x "$BUILD/mecbed-ns3" ]; then   # built with libns3-dev: tests/cli_ns3.sh covers it
    $B link check --backend ns3 --link ns3=p2p,rate=1mbit > /dev/null || fail "ns3 p2p refused"
else
    $B link check --backend ns3 --link rate=1mbit 2> $T/err && fail "ns3 accepted while not built"
    grep -q "not built" $T/err || fail "ns3 error: $(cat $T/err)"
fi

# -R measures the downlink of an asymmetric link, -i samples the TCP phase,
# and phases are announced on stderr (never in the JSON on stdout)
$B link test --link up.rate=4mbit,down.rate=16mbit,rtt=10ms -R -i 0.5 --duration 2 --no-udp --no-loss --json \
    > $T/rev.json 2> $T/rev.err || fail "link test -R"
grep -q "TCP throughput" $T/rev.err || fail "no phase progress on stderr"
python3 - $T/rev.json <<'P' || fail "reverse / interval figures"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["direction"] == "down" and abs(r["configured_rate_mbps"] - 16) < 1e-9, r
assert 15.0 < r["throughput_mbps"] < 16.2, r["throughput_mbps"]
iv = r["intervals"]
assert len(iv) == 6 and abs(iv[-1]["end_s"] - 3.0) < 0.2, iv   # 1 s warm-up + 2 s, every 0.5 s
assert all(0 <= x["throughput_mbps"] < 16.5 for x in iv) and iv[-1]["throughput_mbps"] > 15, iv
P
$B link test --link up.rate=4mbit,down.rate=16mbit,rtt=10ms --duration 2 --no-udp --no-loss --json --quiet \
    > $T/fwd.json 2> $T/fwd.err || fail "link test forward"
[ -s $T/fwd.err ] && fail "--quiet still printed: $(cat $T/fwd.err)"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["direction"] == "up" and 3.7 < r["throughput_mbps"] < 4.05 and "intervals" not in r, r' $T/fwd.json ||
    fail "forward direction figures"
$B link test --link rate=1mbit -i 0 2>/dev/null && fail "--interval 0 accepted"

# the TCP phase's congestion control: asked for and reported (iperf3 -C), an unknown one refused
$B link test --link rate=10mbit --duration 0.5 --no-udp --no-loss -C reno --json > $T/cc.json 2>/dev/null ||
    fail "-C reno"
grep -q '"tcp_congestion":[[:space:]]*"reno"' $T/cc.json || fail "congestion not reported: $(cat $T/cc.json)"
$B link test --link rate=10mbit --duration 0.5 --no-udp --no-loss -C nosuch 2> $T/err && fail "-C nosuch accepted"
grep -q "congestion control 'nosuch'" $T/err || fail "-C nosuch error: $(cat $T/err)"

# bad input
$B link test --link rate=fast 2> $T/err && fail "bad spec accepted"
grep -q "rate=fast" $T/err || fail "bad spec error: $(cat $T/err)"
$B link test --backend emu --link trace=/nonexistent/t.trace 2> $T/err && fail "missing trace accepted"
grep -q "/nonexistent/t.trace" $T/err || fail "missing trace error: $(cat $T/err)"

# only namespaces of link tests: runs of other processes may come and go meanwhile
left=$(ip netns list | awk '/^mecbed-/ {print $1}' | sort | comm -13 "$T/before" - | while read -r ns; do
    id=${ns#mecbed-}; id=${id%%-*}; [ -e "/run/mecbed/$id.pid" ] && kill -0 "$(cat /run/mecbed/$id.pid)" 2>/dev/null || echo "$ns"; done)
[ -z "$left" ] || fail "namespaces left behind: $left"
echo "cli_link: ok"
