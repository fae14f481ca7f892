#!/bin/sh
# SIGINT and SIGTERM in the middle of a stream: mecbed run stops the frame
# loop, tears everything down (links, namespaces, node processes, cgroups)
# and exits with 130.
B=${BUILD:-build}/mecbed
[ "$(id -u)" = 0 ] || { echo "skip: needs root (namespaces, TUN)"; exit 77; }
[ -c /dev/net/tun ] || { echo "skip: no /dev/net/tun"; exit 77; }
dir=$(mktemp -d /tmp/mb-clisig.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/net.model" <<'M'
mecbed-model 1
name clisig_net
seed 3
Input x shape=1,3,64,64
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(16x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
output gap
M
fail=0
for sig in INT TERM; do
    run=$(printf '%s%05d' $(echo $sig | cut -c1 | tr 'IT' 'it') $(($$ % 100000)))
    $B run --model "$dir/net.model" --policy offload --link rate=5mbit,rtt=20ms --frames 1000 --fps 5 \
        --run-id $run > "$dir/out.txt" 2> "$dir/err.txt" &
    pid=$!
    up=""
    for i in $(seq 1 100); do
        ip netns pids mecbed-$run-edge0 2>/dev/null | grep -q . && { up=1; break; }
        sleep 0.1
    done
    [ -n "$up" ] || { echo "$sig: the run never started"; cat "$dir/err.txt"; kill -9 $pid; fail=1; continue; }
    sleep 1
    kill -$sig $pid
    for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then echo "$sig: still running 10 s after the signal"; kill -9 $pid; fail=1; fi
    wait $pid
    rc=$?
    [ $rc -eq 130 ] || { echo "$sig: exit status $rc, expected 130"; cat "$dir/err.txt"; fail=1; }
    grep -q "torn down" "$dir/err.txt" || { echo "$sig: no teardown message"; fail=1; }
    ip netns list | grep -q "mecbed-$run" && { echo "$sig: namespaces left behind"; fail=1; }
    ip -o link show | grep -q "mb$run" && { echo "$sig: interfaces left behind"; fail=1; }
    ls /sys/fs/cgroup/cpu 2>/dev/null | grep -q "mecbed-$run" && { echo "$sig: cgroups left behind"; fail=1; }
done
exit $fail
