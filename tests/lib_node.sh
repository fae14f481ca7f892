# Sourced by the tests that run `mecbed node`s on loopback (cli_node_limits,
# cli_run_remote, cli_fault_garbage): the start-up they share. Not a test
# itself (tests/run.sh runs tests/cli_*.sh only).
#
#   . "$(dirname "$0")/lib_node.sh"
#   node_setup mb-limits        $dir: a fresh temporary folder; at exit the
#                               nodes are killed and $dir removed
#   set -- $(free_ports 2)      N free TCP ports on 127.0.0.1
#   loopback_topo "$dir/topo.ini" "rate=1gbit,rtt=1ms" $1 $2
#                               a device at port $1 and an edge at $2, joined
#                               by a link with that spec (sites by address=)
#   node_key "$dir/k"           a run key (mecbed keygen; exit 1 if it fails)
#   start_node LOG ARGS...      `mecbed node ARGS...` in the background, stderr
#                               into LOG ('-': the test's own stderr); its pid in
#                               $node_pid, killed at exit
# $B is the mecbed binary (default ${BUILD:-build}/mecbed); python3 is needed
# (the callers skip without it).

B=${B:-${BUILD:-build}/mecbed}
node_pids=""

node_cleanup() {
    for p in $node_pids; do kill "$p" 2>/dev/null; done
    [ -n "$dir" ] && rm -rf "$dir"
}

node_setup() { # PREFIX
    dir=$(mktemp -d "/tmp/$1.XXXXXX") || exit 1
    trap node_cleanup EXIT
    trap 'exit 130' INT TERM
}

free_ports() { # N
    python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

loopback_topo() { # FILE LINK_SPEC DEVICE_PORT EDGE_PORT
    cat > "$1" <<T
[node device]
role = device
type = this
address = 127.0.0.1:$3
[node edge]
role = edge
type = this
address = 127.0.0.1:$4
[link device edge]
spec = $2
T
}

node_key() { # FILE
    "$B" keygen -o "$1" || { echo "keygen failed"; exit 1; }
}

start_node() { # LOG ARGS...
    _log=$1
    shift
    if [ "$_log" = - ]; then
        "$B" node "$@" &
    else
        "$B" node "$@" 2> "$_log" &
    fi
    node_pid=$!
    node_pids="$node_pids $node_pid"
}
