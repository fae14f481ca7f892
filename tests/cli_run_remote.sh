#!/bin/sh
# mecbed run against nodes that already run elsewhere (address= for every
# site): no namespaces, no root needed. Two edge nodes and a cloud on
# loopback, the device on this process; a three-tier plan and a tile plan
# run over real TCP and match the unsplit model.
B=${BUILD:-build}/mecbed
command -v python3 >/dev/null || { echo "skip: python3 needed to read the JSON"; exit 77; }
B=$B . "$(dirname "$0")/lib_node.sh"
node_setup mb-cliremote
set -- $(free_ports 5)
cat > "$dir/topo.ini" <<T
[node device]
role = device
type = this
address = 127.0.0.1:$1
[node edge0]
role = edge
type = this
address = 127.0.0.1:$2
[node edge1]
role = edge
type = this
address = 127.0.0.1:$3
[node cloud]
role = cloud
type = this
address = 127.0.0.1:$4
[link device edge0]
spec = rate=100mbit,rtt=1ms
[link device edge1]
spec = rate=100mbit,rtt=1ms
[link edge0 cloud]
spec = rate=1gbit,rtt=1ms
[link edge1 cloud]
spec = rate=1gbit,rtt=1ms
T
cat > "$dir/net.model" <<'M'
mecbed-model 1
name remote_net
seed 9
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
Conv c2 r1 kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(32x16x3x3)
Relu r2 c2
Conv c3 r2 kernel=3,3 pads=1,1,1,1 W=he(32x32x3x3)
Add s3 c3,r2
GlobalAveragePool gap s3
Flatten fl gap axis=1
Gemm fc fl trans_b=1 B=he(10x32) C=const(10,0)
output fc
M
# one key for the nodes and the runner; each node serves the model file it is given
node_key "$dir/run.key"
[ "$(stat -c %a "$dir/run.key")" = 600 ] || { echo "key file is not mode 600"; exit 1; }
for p in $2 $3; do
    start_node - --role edge --listen 127.0.0.1:$p --key-file "$dir/run.key" --model "$dir/net.model" \
        --topology "$dir/topo.ini"
done
# the cloud finds it in a model directory instead (other files there are skipped)
mkdir "$dir/models" && cp "$dir/net.model" "$dir/models/remote.mbm" && echo junk > "$dir/models/junk.model"
start_node - --role cloud --listen 127.0.0.1:$4 --key-file "$dir/run.key" --models "$dir/models"
fail=0
for policy in offload tile mincut; do
    if ! $B run --model "$dir/net.model" --policy $policy --topology "$dir/topo.ini" --frames 3 --json \
        --key-file "$dir/run.key" \
        > "$dir/out.json" 2> "$dir/err.txt"; then
        echo "$policy failed:"; cat "$dir/err.txt"; fail=1; continue
    fi
    python3 - "$dir/out.json" $policy <<'P' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
assert r["backend"] == "real", r["backend"]
assert r["ok_frames"] == 3 and r["output_match"] is True, r
print("%-8s measured %.2f ms predicted %.2f ms over loopback" % (sys.argv[2], r["measured_ms"], r["predicted_ms"]))
P
done
# nodes keep serving after each session
for p in $node_pids; do kill -0 $p 2>/dev/null || { echo "node $p died"; fail=1; }; done
# without the key, or with another one, the nodes refuse the runner (and keep serving)
$B run --model "$dir/net.model" --policy offload --topology "$dir/topo.ini" > /dev/null 2> "$dir/err.txt" \
    && { echo "a run without --key-file against remote nodes succeeded"; fail=1; }
grep -q -- "--key-file" "$dir/err.txt" || { echo "missing key not explained:"; cat "$dir/err.txt"; fail=1; }
$B keygen -o "$dir/other.key"
$B run --model "$dir/net.model" --policy offload --topology "$dir/topo.ini" --key-file "$dir/other.key" \
    > /dev/null 2> "$dir/err.txt" && { echo "a run with the wrong key succeeded"; fail=1; }
grep -q "authentication" "$dir/err.txt" || { echo "wrong key not reported as such:"; cat "$dir/err.txt"; fail=1; }
$B run --model "$dir/net.model" --policy offload --topology "$dir/topo.ini" --insecure-no-auth \
    > /dev/null 2> "$dir/err.txt" && { echo "an unauthenticated run succeeded"; fail=1; }
grep -q "authentication" "$dir/err.txt" || { echo "no key not reported as such:"; cat "$dir/err.txt"; fail=1; }
# a model the nodes were not given is refused without naming their files or hashes
sed 's/seed 9/seed 10/' "$dir/net.model" > "$dir/other.model"
$B run --model "$dir/other.model" --policy offload --topology "$dir/topo.ini" --key-file "$dir/run.key" \
    > /dev/null 2> "$dir/err.txt" && { echo "a model the nodes do not serve ran"; fail=1; }
grep -q "not available on this node" "$dir/err.txt" || { echo "unknown model not explained:"; cat "$dir/err.txt"; fail=1; }
grep -q "net.model\|$dir" "$dir/err.txt" && { echo "the refusal names a node file:"; cat "$dir/err.txt"; fail=1; }
for p in $node_pids; do kill -0 $p 2>/dev/null || { echo "node $p died after refusals"; fail=1; }; done
# the nodes still serve the legitimate runner right after the refusals
$B run --model "$dir/net.model" --policy offload --topology "$dir/topo.ini" --frames 1 --key-file "$dir/run.key" \
    > /dev/null 2> "$dir/err.txt" || { echo "legitimate run after refusals failed:"; cat "$dir/err.txt"; fail=1; }
# a node whose topology puts the device elsewhere refuses the PLAN (its data would go there)
cat > "$dir/two.ini" <<T
[node device]
role = device
type = this
address = 127.0.0.1:$1
[node edgex]
role = edge
type = this
address = 127.0.0.1:$5
[link device edgex]
spec = rate=100mbit,rtt=1ms
T
sed "s/127.0.0.1:$1\$/127.0.0.1:1/" "$dir/two.ini" > "$dir/two-other.ini"
start_node - --role edge --listen 127.0.0.1:$5 --key-file "$dir/run.key" --model "$dir/net.model" \
    --topology "$dir/two-other.ini"
$B run --model "$dir/net.model" --policy offload --topology "$dir/two.ini" --key-file "$dir/run.key" \
    > /dev/null 2> "$dir/err.txt" && { echo "a PLAN outside the node's topology was accepted"; fail=1; }
grep -q "places elsewhere" "$dir/err.txt" || { echo "PLAN outside the topology not explained:"; cat "$dir/err.txt"; fail=1; }
# a node without a key does not start
$B node --role edge --listen 127.0.0.1:0 2> "$dir/err.txt" && { echo "a node without a key started"; fail=1; }
grep -q "insecure-no-auth" "$dir/err.txt" || { echo "keyless node refusal not explained"; fail=1; }
# a key file others can read is refused
cp "$dir/run.key" "$dir/open.key"; chmod 644 "$dir/open.key"
$B node --role edge --listen 127.0.0.1:0 --key-file "$dir/open.key" 2> "$dir/err.txt" \
    && { echo "a world-readable key was accepted"; fail=1; }
grep -q "chmod 600" "$dir/err.txt" || { echo "open key file not explained"; cat "$dir/err.txt"; fail=1; }
# a device without address= is refused with a clear message
sed 's/^address = 127.0.0.1:'$1'$//' "$dir/topo.ini" > "$dir/bad.ini"
$B run --model "$dir/net.model" --policy offload --topology "$dir/bad.ini" --key-file "$dir/run.key" 2>&1 | grep -q "device's address" \
    || { echo "missing device address not explained"; fail=1; }
exit $fail
