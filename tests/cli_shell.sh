#!/bin/sh
# mecbed shell: ping and iperf3 run behind an emulated link (rate 10 Mbit/s,
# RTT 40 ms) see what the spec says; COMMAND's exit status is the shell's;
# the summary counts what crossed the link, with the radio energy from the
# packet logs; nested shells compose; a SIGTERMed session and an ordinary one leave no namespace,
# interface or process behind. Needs root, /dev/net/tun, ping and iperf3.
B=${BUILD:-build}/mecbed
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip >/dev/null; then
    echo "skip: mecbed shell needs root, /dev/net/tun and iproute2"; exit 77
fi
for p in ping iperf3 python3; do
    command -v $p >/dev/null || { echo "skip: $p not installed (scripts/deps.sh installs it)"; exit 77; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-shell.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

$B shell --help | grep -q "MECBED_PEER" || fail "shell --help does not explain MECBED_PEER"
$B shell -- true 2>/dev/null && fail "shell without --link accepted"
$B shell --link rate=10mbit --peer-port 5201 -- true 2>/dev/null && fail "--peer-port without --peer accepted"

# ping: RTT 40 ms; iperf3 from the device to a server at the peer: ~10 Mbit/s
$B shell --link rate=10mbit,rtt=40ms --peer 'iperf3 -s' --peer-port 5201 --radio lte --summary-json "$T/sum.json" \
    -- sh -c 'ping -c 5 -i 0.2 -q "$MECBED_PEER" && iperf3 -c "$MECBED_PEER" -t 3 -J > "'"$T"'/iperf.json"; echo "peer=$MECBED_PEER self=$MECBED_SELF"; exit 7' \
    > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 7 ] || { cat "$T/err"; fail "exit status $rc, expected COMMAND's 7"; }
grep -q "peer=10.201.0.2 self=10.201.0.1" "$T/out" || { cat "$T/out"; fail "MECBED_PEER/MECBED_SELF not set"; }
grep -q "Server listening" "$T/out" && fail "the peer's output went to stdout"
python3 - "$T/out" "$T/iperf.json" "$T/sum.json" <<'PY' || { cat "$T/err"; fail "measured link differs from its spec"; }
import json, re, sys
out = open(sys.argv[1]).read()
m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/", out)
assert m, out
avg = float(m.group(2))
assert 39.5 <= avg <= 46, f"ping RTT {avg} ms for rtt=40ms"
ip = json.load(open(sys.argv[2]))
mbps = ip["end"]["sum_received"]["bits_per_second"] / 1e6
assert 8.5 <= mbps <= 10.2, f"iperf3 {mbps:.2f} Mbit/s through a 10 Mbit/s link"
s = json.load(open(sys.argv[3]))
assert s["exit_status"] == 7 and s["backend"] == "emu"
up = [l for l in s["links"] if l["from"] == "device"][0]
assert up["out_bytes"] >= ip["end"]["sum_received"]["bytes"], (up, ip["end"]["sum_received"]["bytes"])
assert up["drop_loss"] == 0
r = s["radio"]
# LTE (Huang et al.): transferring ~3 s at ~10 Mbit/s up costs several joules
assert r["model"] == "lte" and 3000 < r["active_mj"] < 40000 and r["total_mj"] >= r["active_mj"], r
print(f"shell: ping {avg:.1f} ms, iperf3 {mbps:.2f} Mbit/s, radio {r['total_mj']:.0f} mJ")
PY

# netem's words, duplicate and corrupt in the emulator: with every packet
# duplicated each way ping sees a duplicate per echo; with every packet
# corrupted nothing gets through (checksums)
$B shell --quiet --link "delay 5ms duplicate 100%" --summary-json "$T/dup.json" -- ping -c 5 -i 0.1 -q "10.201.0.2" > "$T/dup" 2>&1
grep -q "5 received, +1[0-9] duplicates" "$T/dup" || { cat "$T/dup"; fail "duplicate 100%: expected 15 duplicates"; }
python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["links"]; assert all(x["duplicated"] >= 5 for x in l), l' "$T/dup.json" ||
    fail "duplicated packets not counted"
$B shell --quiet --link "corrupt 100%" -- ping -c 3 -i 0.1 -W 1 -q "10.201.0.2" > "$T/cor" 2>&1
grep -q "3 packets transmitted, 0 received" "$T/cor" || { cat "$T/cor"; fail "corrupt 100%: packets got through"; }
# reorder needs a delay to overtake (netem's rule); with reorder 100% every
# packet skips the 20 ms delay: ping's RTT is far below 40 ms, and the
# summary counts the packets that skipped it
$B shell --quiet --link "reorder 25%" -- true 2>"$T/reo" && fail "reorder without a delay accepted"
grep -q "reorder needs a delay" "$T/reo" || fail "reorder refused without a reason: $(cat "$T/reo")"
$B shell --quiet --link "delay 20ms reorder 100%" --summary-json "$T/reo.json" -- ping -c 5 -i 0.1 -q "10.201.0.2" > "$T/reo" 2>&1
python3 - "$T/reo" "$T/reo.json" <<'PY' || { cat "$T/reo"; fail "reorder 100%: packets did not skip the delay"; }
import json, re, sys
m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/", open(sys.argv[1]).read())
assert m and float(m.group(2)) < 20, m and m.group(0)
l = json.load(open(sys.argv[2]))["links"]
assert all(x["reordered"] >= 5 for x in l), l
PY

# shells nest (Mahimahi's mm-delay inside mm-link): the inner link runs from
# a new namespace to the outer shell's, so the command crosses both: RTT
# 40 + 10 ms to the outer shell's peer, iperf3 at the inner 5 Mbit/s; the
# inner shell's routes leave the outer namespaces when it ends
$B shell --quiet --link rate=50mbit,delay=20ms --peer 'iperf3 -s' --peer-port 5201 -- sh -c '
    '"$B"' shell --quiet --link "delay 5ms rate 5mbit" -- sh -c "ping -c 5 -i 0.2 -q \$MECBED_PEER; iperf3 -c \$MECBED_PEER -t 2 -J > '"$T"'/nest-iperf.json" || exit 9
    peer_ns=${MECBED_UPSTREAM%%=*}
    ip -n "$peer_ns" route | grep "^10\.202\." && exit 8
    '"$B"' shell --quiet --topology x.conf -- true 2> '"$T"'/nest-topo; [ $? -eq 2 ] || exit 7
    exit 0' > "$T/nest" 2>&1
rc=$?
[ $rc -eq 0 ] || { cat "$T/nest"; fail "nested shells: status $rc"; }
python3 - "$T/nest" "$T/nest-iperf.json" <<'PY' || { cat "$T/nest"; fail "nested shells do not compose"; }
import json, re, sys
m = re.search(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/", open(sys.argv[1]).read())
assert m and 49.5 <= float(m.group(2)) <= 57, m and m.group(0)
mbps = json.load(open(sys.argv[2]))["end"]["sum_received"]["bits_per_second"] / 1e6
assert 4.0 <= mbps <= 5.1, mbps
print(f"nested shells: ping {m.group(2)} ms, iperf3 {mbps:.2f} Mbit/s")
PY
grep -q "takes --link only" "$T/nest-topo" || fail "nested --topology: $(cat "$T/nest-topo")"
# a shell started by the outer shell's peer (not in its COMMAND) says why it cannot nest
$B shell --quiet --link delay=1ms --peer "$B shell --link delay=1ms -- true 2> $T/peer-err; echo \$? > $T/peer-rc" -- sleep 1
[ "$(cat "$T/peer-rc")" = 2 ] && grep -q "is not in that namespace" "$T/peer-err" || fail "shell in the peer: $(cat "$T/peer-err")"

# SIGTERM ends a session: the command is stopped, everything removed
$B shell --link rate=5mbit --quiet --summary-json "$T/term.json" -- sleep 30 &
pid=$!
sleep 2
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "SIGTERMed session exited $rc, expected 143"
sleep 0.5
pgrep -f "^sleep 30$" >/dev/null && fail "the command survived its session"
# (other runs may be going on: look for this session's own run id)
for f in sum term; do
    run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$T/$f.json") || fail "no run id in $f.json"
    ip netns list | grep -q "mecbed-$run" && fail "namespaces of run $run left behind"
    ip -o link show | grep -q "mb$run" && fail "interfaces of run $run left behind"
done
[ -n "$(ls /tmp | grep '^mecbed-shell-')" ] && ! pgrep -f "mecbed shell" >/dev/null && fail "temporary log folder left behind"
echo "PASS: shell: ping, iperf3, exit status, summary and radio energy, netem words, nesting, clean-up"
