#!/bin/sh
# Two hosts with different clocks, stood in for by two network namespaces
# joined by a veth pair: the node runs in host B inside its own time
# namespace (unshare --time), its CLOCK_MONOTONIC an hour ahead of the
# runner's; the runner runs in host A against the node's address= (docs/
# runtime.md "Real hosts"). The run must report the offset it estimated at
# HELLO (tightened by the transfers' causality) within its reported error
# bound, at most half the HELLO round trip, of the injected hour, and its
# timeline, with the node's events shifted by that estimate, must be
# consistent: every event ends after it starts, every transfer is received
# after it is sent, the node's work lies inside the frame. A run whose
# correction is missing or wrong has the node's events an hour away.
# Root, unshare with --time (util-linux >= 2.36) and a kernel with time
# namespaces (5.6+); else skipped.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
command -v ip >/dev/null || { echo "skip: iproute2 needed"; exit 77; }
[ -e /proc/self/ns/time ] || { echo "skip: this kernel has no time namespaces"; exit 77; }
OFF=3600
unshare --time --monotonic $OFF --boottime $OFF true 2>/dev/null ||
    { echo "skip: unshare --time does not work here"; exit 77; }
B=$B . "$(dirname "$0")/lib_node.sh"
node_setup mb-clihosts
A=mbhA$$
H=mbhB$$
hosts_down() {
    node_cleanup
    ip netns del $A 2>/dev/null
    ip netns del $H 2>/dev/null
}
trap hosts_down EXIT
ip netns add $A && ip netns add $H || { echo "cannot make network namespaces"; exit 1; }
ip link add mbha$$ netns $A type veth peer name mbhb$$ netns $H || { echo "cannot make a veth pair"; exit 1; }
ip -n $A addr add 10.231.7.1/24 dev mbha$$ && ip -n $H addr add 10.231.7.2/24 dev mbhb$$ &&
    ip -n $A link set mbha$$ up && ip -n $H link set mbhb$$ up &&
    ip -n $A link set lo up && ip -n $H link set lo up || { echo "cannot address the hosts"; exit 1; }
cat > "$dir/hosts.ini" <<T
[node device]
role = device
type = rpi4
address = 10.231.7.1:7611
[node edge]
role = edge
type = this
address = 10.231.7.2:7612
[link device edge]
spec = rate=1gbit,rtt=1ms
T
cat > "$dir/net.model" <<'M'
mecbed-model 1
name hosts_net
seed 5
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
Conv c2 r1 kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(32x16x3x3)
Relu r2 c2
Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(32x32x3x3)
Relu r3 c3
GlobalAveragePool gap r3
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x32) C=const(10,0)
output fc
M
node_key "$dir/run.key"
# host B: the node, its monotonic clock an hour ahead of host A's
ip netns exec $H unshare --time --monotonic $OFF --boottime $OFF \
    "$B" node --role edge --listen 10.231.7.2:7612 --key-file "$dir/run.key" --model "$dir/net.model" \
    --topology "$dir/hosts.ini" 2> "$dir/node.log" &
node_pid=$!
node_pids="$node_pids $node_pid"
# the node's clock really is an hour ahead (the stand-in works)
up_a=$(cut -d' ' -f1 /proc/uptime)
up_b=$(ip netns exec $H unshare --time --monotonic $OFF --boottime $OFF cat /proc/uptime | cut -d' ' -f1)
python3 -c "import sys; d = float(sys.argv[2]) - float(sys.argv[1]); sys.exit(0 if abs(d - $OFF) < 5 else 1)" \
    "$up_a" "$up_b" || { echo "time namespace did not offset the clock ($up_a vs $up_b)"; exit 1; }
fail=0
for policy in offload mincut; do
    # host A: the device (its runner); an rpi4 for the plan, so mincut splits
    ip netns exec $A "$B" run --model "$dir/net.model" --policy $policy --topology "$dir/hosts.ini" \
        --frames 3 --key-file "$dir/run.key" --json --timeline "$dir/tl-$policy.json" \
        > "$dir/out.json" 2> "$dir/err.txt" || {
        echo "$policy run failed:"; cat "$dir/err.txt"; tail -5 "$dir/node.log"; fail=1; continue; }
    python3 - "$dir/out.json" "$dir/tl-$policy.json.csv" $OFF $policy <<'P' || fail=1
import csv, json, sys
r = json.load(open(sys.argv[1]))
off_s, policy = float(sys.argv[3]), sys.argv[4]
assert r["backend"] == "real", r["backend"]
assert r["ok_frames"] == 3 and r["output_match"] is True, (r["ok_frames"], r["output_match"])
edge = [s for s in r["sites"] if s["name"] == "edge"][0]
est, rtt, bound = edge["clock_offset_ms"], edge["clock_rtt_ms"], edge["clock_error_bound_ms"]
assert rtt is not None and rtt > 0, "the node was taken for the runner's own clock: %r" % edge
# the node's clock is off_s ahead: add -off_s to it to get the runner's
err = est - (-off_s * 1e3)
print("%-7s offset %.3f ms estimated (injected %.0f ms), error %.3f ms, bound %.3f ms, HELLO round trip %.3f ms"
      % (policy, est, -off_s * 1e3, err, bound, rtt))
# the bound is half the HELLO round trip, or tighter after the transfers' causality
assert 0 <= bound <= rtt / 2 + 0.001, (bound, rtt)
assert abs(err) <= bound + 0.01, "offset error %.3f ms above its bound %.3f ms" % (err, bound)
ev = list(csv.DictReader(open(sys.argv[2])))
assert ev, "empty timeline"
node_ev = [e for e in ev if e["site"] == "edge"]
assert node_ev, "no node events in the timeline (policy %s)" % policy
for e in ev:
    assert float(e["end_ms"]) >= float(e["start_ms"]), e
# each frame: the node's events inside the device's span of the frame
frames = {}
for e in ev:
    f = frames.setdefault(e["frame"], {"dev": [], "node": []})
    (f["node"] if e["site"] == "edge" else f["dev"]).append(e)
for fr, f in frames.items():
    if not f["dev"] or not f["node"]:
        continue
    lo = min(float(e["start_ms"]) for e in f["dev"])
    hi = max(float(e["end_ms"]) for e in f["dev"])
    for e in f["node"]:
        assert lo - rtt <= float(e["start_ms"]) and float(e["end_ms"]) <= hi + rtt, \
            "frame %s: node event %s %s at %s..%s ms outside the device's %.3f..%.3f" % (
                fr, e["kind"], e["op_name"], e["start_ms"], e["end_ms"], lo, hi)
# every transfer: its receive ends after its send started (on the corrected clocks)
sends = {(e["frame"], e["step"]): e for e in ev if e["kind"] == "send"}
recvs = {(e["frame"], e["step"]): e for e in ev if e["kind"] == "recv"}
pairs = 0
for k, s in sends.items():
    if k in recvs:
        pairs += 1
        assert float(recvs[k]["start_ms"]) >= float(s["start_ms"]) - bound - 0.001, \
            "transfer %s received (%s ms) before it was sent (%s ms)" % (k, recvs[k]["start_ms"], s["start_ms"])
assert pairs > 0, "no transfer in the timeline"
print("%-7s timeline consistent: %d events, %d transfers, node events inside their frames" % (policy, len(ev), pairs))
P
done
for p in $node_pids; do kill -0 $p 2>/dev/null || { echo "node died"; tail -5 "$dir/node.log"; fail=1; }; done
exit $fail
