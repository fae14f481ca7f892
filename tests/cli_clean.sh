#!/bin/sh
# A run killed with SIGKILL leaves its namespaces; `mecbed clean` removes them
# (and the processes inside) but keeps live runs. A run stopped with SIGINT
# cleans up after itself. Needs root.
B=${BUILD:-build}/mecbed
fail() { echo "FAIL: $*"; exit 1; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip > /dev/null; then
    echo "skip: mecbed clean needs root, /dev/net/tun and iproute2"
    exit 77
fi
$B clean --help | grep -q "mecbed clean" || fail "clean --help"
run_of() { # namespaces of the link test with pid $1
    f=$(grep -l "^$1\$" /run/mecbed/*.pid 2>/dev/null | head -1)
    [ -n "$f" ] && basename "$f" .pid
}
for sig in KILL INT; do
    $B link test --backend emu --link rate=10mbit,delay=5ms --duration 20 > /dev/null 2>&1 &
    pid=$!
    run=""
    for i in $(seq 50); do run=$(run_of $pid); [ -n "$run" ] && ip netns list | grep -q "mecbed-$run-edge0" && break; sleep 0.1; done
    [ -n "$run" ] || fail "run did not start"
    sleep 0.5
    kill -$sig $pid
    wait $pid 2>/dev/null
    sleep 0.2
    left=$(ip netns list | grep -c "^mecbed-$run-")
    if [ $sig = KILL ]; then
        [ "$left" -eq 2 ] || fail "expected the killed run's 2 namespaces, found $left"
        $B clean --dry-run | grep -q "would remove namespace mecbed-$run-device" || fail "dry run"
        [ "$(ip netns list | grep -c "^mecbed-$run-")" -eq 2 ] || fail "dry run removed something"
        $B clean > /dev/null || fail "mecbed clean"
        [ "$(ip netns list | grep -c "^mecbed-$run-")" -eq 0 ] || fail "mecbed clean left namespaces"
    else
        [ "$left" -eq 0 ] || fail "SIGINT left $left namespaces"
    fi
    [ ! -e /run/mecbed/$run.pid ] || fail "owner file left"
    ip -o link | grep -q "mb$run" && fail "interfaces left"
done
echo "cli_clean: ok"
