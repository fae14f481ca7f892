#!/bin/sh
# mecbed link test on traces (issue 14): the one-way delay error is taken
# against the delay the trace's capacity allowed (a trace that starts slow
# makes every probe wait for capacity: that wait is reported, not an error),
# loss is counted over hundreds of datagrams, datagrams an outage holds are
# not lost, and a link spec reads a CSV log through its import keys. Needs
# root, /dev/net/tun and iproute2.
B=${BUILD:-build}/mecbed
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip > /dev/null; then
    echo "skip: mecbed link test needs root, /dev/net/tun and iproute2"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-link-trace.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
jnum() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\),*$/\1/p" "$1"; }
within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x >= lo && x <= hi) }'; }

# 0.1 Mbit/s for the first 30 s: a 92-byte probe waits 7.36 ms for capacity
printf '# mecbed-trace 1\n0 0.1\n30 10\nend 60\n' > $T/slow.trace
$B link test --link-backend emu --link trace=$T/slow.trace,delay=5ms --duration 1 --no-tcp --no-udp --no-loss \
    --json > $T/s.json || fail "slow trace link test"
w=$(jnum $T/s.json one_way_delay_capacity_wait_ms)
e=$(jnum $T/s.json one_way_delay_error_ms)
within "$w" 7.3 7.4 || fail "capacity wait $w ms, expected 7.36: $(cat $T/s.json)"
within "$e" -1 2 || fail "one-way delay error $e ms includes the wait for capacity"

# 1 s of 5 Mbit/s, then 2 s of nothing: the loss phase always meets an outage
$B trace gen onoff --rate 5mbit --on 1s --off 2s --duration 30s -o $T/oo.trace || fail gen
$B link test --link-backend emu --link trace=$T/oo.trace,delay=5ms --duration 2 --no-tcp --no-udp \
    --json > $T/o.json || fail "outage trace link test"
n=$(jnum $T/o.json loss_datagrams)
within "$n" 500 1000000 || fail "loss from $n datagrams"
within "$(jnum $T/o.json loss_rate)" 0 0 || fail "datagrams held by an outage counted as lost: $(cat $T/o.json)"
within "$(jnum $T/o.json loss_datagrams_received)" "$n" "$n" || fail "not all received"

# configured loss is still measured, over enough datagrams to mean something
$B link test --link-backend emu --link rate=20mbit,delay=2ms,loss=5% --duration 2 --no-tcp --no-udp \
    --json > $T/l.json || fail "lossy link test"
within "$(jnum $T/l.json loss_datagrams)" 5000 1000000 || fail "lossy: $(jnum $T/l.json loss_datagrams) datagrams"
within "$(jnum $T/l.json loss_rate)" 0.035 0.065 || fail "loss rate $(jnum $T/l.json loss_rate), configured 5 %"
r=$(jnum $T/l.json loss_emulator_random_drops)
within "$r" 1 1000000 || fail "emulator random drops $r"

# a 5G CSV log through link-spec import keys: delivery against its capacity
$B link test --link-backend emu --duration 2 --no-tcp --no-loss --json \
    --link "trace=tests/fixtures/5g-drive.csv,format=csv,up.column=UL_bitrate,down.column=DL_bitrate,unit=kbit/s,delay=5ms" \
    > $T/c.json || fail "csv trace link test"
within "$(jnum $T/c.json trace_delivery_ratio)" 0.97 1.01 || fail "csv trace delivery: $(cat $T/c.json)"
# delivery against the capacity of the time the sender kept the link busy: the
# unused capacity is counted (never negative) and the ratio is at least the plain one
within "$(jnum $T/c.json trace_idle_capacity_bytes)" 0 1e12 || fail "idle capacity: $(cat $T/c.json)"
awk -v b="$(jnum $T/c.json trace_delivery_ratio_busy)" -v r="$(jnum $T/c.json trace_delivery_ratio)" \
    'BEGIN { exit !(b >= r - 1e-9 && b <= 1.01) }' || fail "busy delivery ratio: $(cat $T/c.json)"
grep -q '"udp_sender_gso":[[:space:]]*true' $T/c.json || fail "UDP sender without GSO: $(cat $T/c.json)"
$B link check --link "rate=1mbit,column=DL_bitrate" 2> $T/err && fail "column without trace accepted"
grep -q "column= says how to read a trace file" $T/err || fail "error: $(cat $T/err)"
echo "cli_link_trace: ok"
