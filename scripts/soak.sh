#!/bin/sh
# Clean-up soak (`make soak`, not part of `make test`; docs/runtime.md):
#  1. SOAK_SIGNAL_RUNS (default 10) runs each of SIGINT and SIGTERM, sent at a
#     random moment: each run must remove everything it made by itself;
#  2. SOAK_RUNS (default 100) `mecbed run`s of a small model over an emulated
#     link, each SIGKILLed at a random moment (SOAK_MAX_DELAY seconds, default
#     3: set-up, node start and streaming all get hit), some with CPU caps
#     (--emulate cap) so that cgroups exist (every run removes the cgroups of
#     dead runs when it starts, so only the last killed run's can be left);
#  3. `mecbed clean`, then nothing of these runs may remain: network
#     namespace, interface (veth or TUN, with its qdiscs), cgroup, process,
#     owner file (/run/mecbed/<run>.pid) or temporary directory
#     (/tmp/mecbed-run-<run>-*);
#  4. one run of SOAK_FRAMES (default 10000) frames back to back: the
#     runner's resident memory, sampled every second, may grow by at most
#     SOAK_RSS_MAX_B bytes per frame (default 512: its per-frame record is
#     about 170 bytes) between 10 % and 90 % of the frames.
# Prints how many runs were killed in which phase, what was left before and
# after `mecbed clean`, and the time taken. Exit 0 when nothing is left, 1
# otherwise, 77 when it cannot run here (not root, no TUN or iproute2).
# Only this soak's runs are counted (their run ids share a prefix): other
# mecbed runs on the machine may come and go meanwhile.
BUILD=${BUILD:-build}
B=$(realpath "$BUILD/mecbed" 2>/dev/null)
N=${SOAK_RUNS:-100}
NSIG=${SOAK_SIGNAL_RUNS:-10}
[ "$NSIG" -le 49 ] || { echo "SOAK_SIGNAL_RUNS: at most 49"; exit 2; }
[ "$N" -le 899 ] || { echo "SOAK_RUNS: at most 899"; exit 2; }
MAXD=${SOAK_MAX_DELAY:-3}
fail() { echo "soak: FAIL: $*"; exit 1; }
[ -x "$B" ] || { echo "skip: $BUILD/mecbed not built"; exit 77; }
if [ "$(id -u)" != 0 ] || [ ! -c /dev/net/tun ] || ! command -v ip > /dev/null; then
    echo "skip: the soak needs root, /dev/net/tun and iproute2"
    exit 77
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-soak.XXXXXX")
pid=""
# stopped half way: stop the current run too
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
# a copy of the binary: a rebuild during the soak neither changes the runs
# nor hides their processes (/proc/PID/exe of a replaced file reads "(deleted)")
cp "$B" "$T/mecbed" || fail "copy $B"
B=$T/mecbed
MECBED_DATA=${MECBED_DATA:-$(pwd)}
export MECBED_DATA
start=$(date +%s)
# run ids: "s" + 2 hex digits of this shell's pid + a 3-digit counter
P=$(printf 's%02x' $(($$ % 256)))
cat > "$T/soak.mbm" <<'M'
mecbed-model 1
name soak_net
seed 3
Input x shape=1,3,32,32
Conv c1 x kernel=3,3 stride=2,2 pads=1,1,1,1 W=he(8x3x3x3)
Relu r1 c1
GlobalAveragePool gap r1
output gap
M

# a random delay in [0, MAXD] seconds, 3 decimals, skewed towards short ones
# (rand()^2: a third under MAXD / 10) so that set-up is hit as often as frames
rdelay() { awk -v s="$1" -v m="$MAXD" 'BEGIN { srand(s); r = rand(); printf "%.3f", r * r * m }'; }

# leftovers of the runs whose id starts with $1, one line per kind: "kind count"
leftovers() {
    p=$1
    echo "namespaces $(ip netns list 2>/dev/null | grep -c "^mecbed-$p")"
    # interfaces in this namespace (veths, TUN devices of the emulator), with
    # any qdisc on them
    echo "interfaces $(ip -o link show 2>/dev/null | grep -c ": mb$p")"
    echo "qdiscs $(tc qdisc show 2>/dev/null | grep -c " dev mb$p")"
    echo "cgroups $( (ls -d /sys/fs/cgroup/cpu/mecbed-$p* /sys/fs/cgroup/mecbed-$p* /sys/fs/cgroup/unified/mecbed-$p* \
        2>/dev/null) | wc -l)"
    echo "owner_files $(ls /run/mecbed/$p*.pid 2>/dev/null | wc -l)"
    echo "temp_dirs $(ls -d /tmp/mecbed-run-$p* 2>/dev/null | wc -l)"
    # processes of this mecbed binary other than the soak's own commands: the
    # runs and the nodes they spawn
    n=0
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/exe" 2>/dev/null)" = "$B" ] || continue
        grep -q "$p" "$d/cmdline" 2>/dev/null && { n=$((n + 1)); continue; }
        # a node: its network namespace is one of the soak's
        ns=$(ip netns identify "${d#/proc/}" 2>/dev/null)
        case "$ns" in mecbed-$p*) n=$((n + 1));; esac
    done
    echo "processes $n"
}
total() { awk '{ s += $2 } END { print s + 0 }'; }

# the phase a run is in: setup (no namespace yet), nodes (namespaces, no node
# serving yet), frames (the edge node is up: frames stream)
phase() {
    if ! ip netns list 2>/dev/null | grep -q "^mecbed-$1-"; then echo setup
    elif ip netns pids "mecbed-$1-edge0" 2>/dev/null | grep -q .; then echo frames
    else echo nodes; fi
}

# one run in the background: $1 run id, $2 i (varies policy and emulation)
start_run() {
    case $(($2 % 4)) in
    0) extra="--policy offload";;
    1) extra="--policy offload --emulate cap";;
    2) extra="--policy local";;
    *) extra="--policy mincut --emulate cap";;
    esac
    # shellcheck disable=SC2086
    "$B" run --model "$T/soak.mbm" $extra --link rate=20mbit,delay=5ms --frames 100000 --fps 20 --tdf 1 \
        --run-id "$1" > "$T/out.$1" 2>&1 &
    pid=$!
}

# 1. SIGINT and SIGTERM: each run cleans up by itself
sig_fail=0
for sig in INT TERM; do
    for i in $(seq 1 "$NSIG"); do
        base=900
        [ $sig = TERM ] && base=950
        id=$(printf '%s%03d' "$P" $((base + i)))
        start_run "$id" "$i"
        sleep "$(rdelay "$i$sig")"
        ph=$(phase "$id")
        kill -$sig $pid 2>/dev/null
        k=0
        while kill -0 $pid 2>/dev/null && [ $k -lt 150 ]; do sleep 0.1; k=$((k + 1)); done
        if kill -0 $pid 2>/dev/null; then
            echo "soak: run $id still alive 15 s after SIG$sig ($ph): killing it"
            kill -9 $pid
            sig_fail=$((sig_fail + 1))
        fi
        wait $pid 2>/dev/null
        sleep 0.2
        left=$(leftovers "$id" | total)
        if [ "$left" -ne 0 ]; then
            echo "soak: SIG$sig in phase $ph left: $(leftovers "$id" | awk '$2 { printf "%s ", $0 }')"
            sig_fail=$((sig_fail + 1))
        fi
        echo "$sig $ph" >> "$T/sigphases"
    done
done

# 2. SIGKILL at random moments
for i in $(seq 1 "$N"); do
    id=$(printf '%s%03d' "$P" "$i")
    start_run "$id" "$i"
    sleep "$(rdelay "$i")"
    echo "$(phase "$id")" >> "$T/phases"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
done
sleep 0.5
leftovers "$P" > "$T/before"

# 3. mecbed clean, then nothing of the soak's runs may remain
t0=$(date +%s.%N)
"$B" clean > "$T/clean.log" 2>&1 || fail "mecbed clean exited $?: $(tail -5 "$T/clean.log")"
t1=$(date +%s.%N)
sleep 0.2
leftovers "$P" > "$T/after"

echo "soak: $N runs SIGKILLed; phase at the kill: $(sort "$T/phases" | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')"
echo "soak: $NSIG runs each of SIGINT and SIGTERM (phases: $(sort "$T/sigphases" | uniq -c | \
    awk '{ printf "%s %s %s, ", $2, $3, $1 }')) cleaned up by themselves: $((2 * NSIG - sig_fail)) of $((2 * NSIG))"
echo "soak: left by the killed runs before clean: $(awk '{ printf "%s %s, ", $1, $2 }' "$T/before")"
echo "soak: mecbed clean removed $(grep -c '^removing' "$T/clean.log") items in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
echo "soak: left after clean: $(awk '{ printf "%s %s, ", $1, $2 }' "$T/after")"
[ "$(total < "$T/after")" -eq 0 ] || fail "mecbed clean left something (above)"
[ "$sig_fail" -eq 0 ] || fail "$sig_fail SIGINT/SIGTERM runs did not clean up by themselves"

# 4. memory over a long stream
FR=${SOAK_FRAMES:-10000}
id=$(printf '%s%03d' "$P" 999)
t0=$(date +%s)
"$B" run --model "$T/soak.mbm" --policy offload --link rate=100mbit,delay=1ms --frames "$FR" --tdf 1 --json \
    --run-id "$id" > "$T/long.json" 2> "$T/long.err" &
pid=$!
: > "$T/rss"
while kill -0 $pid 2>/dev/null; do
    echo "$(date +%s.%N) $(awk '/^VmRSS/ { print $2 }' /proc/$pid/status 2>/dev/null)" >> "$T/rss"
    sleep 1
done
wait $pid
rc=$?
pid=""
[ $rc -eq 0 ] || fail "the $FR-frame run exited $rc: $(tail -3 "$T/long.err")"
ok=$(tail -1 "$T/long.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok_frames"])')
[ "$ok" = "$FR" ] || fail "$ok of $FR frames ok: $(tail -3 "$T/long.err")"
# frames are back to back: time stands in for the frame count; growth
# between 10 % and 90 % of the frame loop's samples (the set-up before and
# the report after allocate once)
rss=$(awk -v fr="$FR" 'BEGIN { n = 0 } NF == 2 && $2 > 0 { t[n] = $1; r[n] = $2; n++ }
    END { if (n < 12) { print "too-short"; exit } a = int(n * 0.1); b = int(n * 0.8);
          per_s = fr / (t[n - 1] - t[0]);
          printf "%d %d %.0f", r[a], r[b], (r[b] - r[a]) * 1024 / ((t[b] - t[a]) * per_s) }' "$T/rss")
[ "$rss" != too-short ] || fail "the $FR-frame run was too short to sample ($(wc -l < "$T/rss") samples)"
set -- $rss
echo "soak: $FR frames in $(($(date +%s) - t0)) s: runner RSS $1 KB -> $2 KB over the middle 70 %, $3 bytes per frame"
[ "$3" -le "${SOAK_RSS_MAX_B:-512}" ] || fail "runner memory grows by $3 bytes per frame"
echo "soak: $(($(date +%s) - start)) s in all"
echo "soak: ok"
