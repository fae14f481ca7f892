#!/bin/sh
# Link emulation fidelity table (make bench-net). Each row is one
# `mecbed link test --json` between two fresh namespaces: configured values
# beside measured ones. Needs root. BENCH_NET_DURATION=S per phase (default 3).
B=${BUILD:-build}/mecbed
D=${BENCH_NET_DURATION:-3}
# TCP congestion control of the TCP column (BENCH_NET_CC): cubic, Linux's default; a machine
# whose default is bbr gets about 422 Mbit/s of a 500 Mbit/s, 20 ms link from it (docs/link-emulation.md)
CC=${BENCH_NET_CC:-cubic}
if [ "$(id -u)" != 0 ]; then
    echo "bench-net: needs root (network namespaces); run: sudo make bench-net" >&2
    exit 1
fi
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mb-bench-net.XXXXXX")
trap 'rm -rf "$OUT"' EXIT INT TERM

# value of a top-level JSON number (cJSON prints "key":<tab>value)
val() { awk -v k="\"$1\":" '$1 == k { v = $2; sub(/,$/, "", v); print v }' "$2"; }
f1() { awk -v x="$1" 'BEGIN { if (x == "" || x == "null") print "-"; else printf "%.2f", x }'; }
err() { awk -v m="$1" -v c="$2" 'BEGIN { if (m == "" || m == "null" || c + 0 == 0) print "-"; else printf "%+.1f %%", (m - c) / c * 100 }'; }

row() { # backend spec
    f=$OUT/r.json
    if ! nice -n 5 $B link test --link-backend "$1" --link "$2" --duration "$D" -C "$CC" --json > $f 2> $OUT/err; then
        echo "| $1 | \`$2\` | failed: $(head -c 120 $OUT/err) |"
        return
    fi
    cr=$(val configured_rate_mbps $f); tcp=$(val throughput_mbps $f); udp=$(val udp_throughput_mbps $f)
    cd=$(val configured_delay_ms $f); owd=$(val one_way_delay_ms $f); oerr=$(val one_way_delay_error_ms $f)
    rtt=$(val rtt_ms $f); rl=$(val rtt_load_ms $f)
    cl=$(val configured_loss_rate $f); l=$(val loss_rate $f); cpu=$(val emulator_cpu_percent $f)
    tr=$(val trace_delivery_ratio $f); l50=$(val emulator_late_p50_us $f); l99=$(val emulator_late_p99_us $f)
    trb=$(val trace_delivery_ratio_busy $f)
    cf=$(val emulator_cpu_fwd_percent $f); cfw=$(val emulator_cpu_fwd_write_percent $f)
    cr2=$(val emulator_cpu_rev_percent $f); crw=$(val emulator_cpu_rev_write_percent $f)
    off=$(val udp_offered_mbps $f)
    # the UDP sender could not offer the rate: its figure measures the sender, not the link
    slim=$(awk -v o="$off" -v c="$cr" 'BEGIN { if (c + 0 > 0 && o != "" && o != "null" && o < c) printf ", sender-limited: offered %.1f", o }')
    trs="-"; [ -n "$tr" ] && trs=$(awk -v x="$tr" -v b="$trb" 'BEGIN { printf "%.2f %%", x * 100; if (b != "" && b != "null") printf " (busy %.2f %%)", b * 100 }')
    # per direction: total (in TUN writes, i.e. the receiver's stack)
    cpud="-"; [ -n "$cf" ] && cpud=$(awk -v a="$cf" -v b="$cfw" -v c="$cr2" -v d="$crw" 'BEGIN { printf "%.1f (%.1f) / %.1f (%.1f)", a, b, c, d }')
    late="-"; [ -n "$l50" ] && late="$l50 / $l99"
    echo "| $1 | \`$2\` | $(f1 $cr) | $(f1 $tcp) ($(err "$tcp" "$cr")) | $(f1 $udp) ($(err "$udp" "$cr")$slim) | $(f1 $cd) | $(f1 $owd) ($(awk -v x="$oerr" 'BEGIN{printf "%+.2f", x}')) | $(f1 $rtt) | $(f1 $rl) | $(awk -v x="$cl" 'BEGIN{printf "%.3f", x}') | $(awk -v x="$l" 'BEGIN{printf "%.3f", x}') | $trs | $(f1 $cpu) | $cpud | $late | $(cut -d' ' -f1 /proc/loadavg) |"
}

echo "mecbed link fidelity, $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(nproc) cores, ${D} s per phase, TCP $CC, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Throughput at the IP layer (tc's tbf also counts the 14-byte Ethernet header: expect -0.9 %)."
echo
echo "| backend | link | rate Mbit/s | TCP Mbit/s (err) | UDP Mbit/s (err) | delay ms | one-way ms (err) | RTT idle ms | RTT load ms | loss cfg | loss | trace delivered/capacity | emu CPU % | emu CPU % data / ACK direction (in writes) | emu timer p50/p99 us | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for r in 1 10 50 100 200 500 1000; do row emu "rate=${r}mbit,delay=10ms"; done
# without the emu backend's write window (coalesce=, default 125us, docs/link-emulation.md):
# every packet at its own time, one wake-up each
for r in 100 1000; do row emu "rate=${r}mbit,delay=10ms,coalesce=0"; done
for r in 1 10 50 100 200; do row tc "rate=${r}mbit"; done
for d in 1ms 5ms 25ms 50ms; do row emu "rate=50mbit,delay=$d"; done
row emu "rate=20mbit,delay=10ms,jitter=2ms:normal"
for l in 0.5% 2% 10%; do row emu "rate=20mbit,delay=10ms,loss=$l"; done
row emu "rate=20mbit,delay=10ms,loss=ge:2%:20%:50%"
row emu "trace=traces/lte-markov.trace,delay=20ms"
row emu "trace=traces/steps-wifi-4g-3g.trace,delay=20ms"
row emu "trace=traces/5g-nr-lte.trace,delay=20ms"
# a 5G trace whose first 15 s hold NR peaks of 420-484 Mbit/s and an LTE fallback (the UDP phase
# runs from about 2 s to 2 s + BENCH_NET_DURATION): mecbed trace gen, written to the temp dir
$B trace gen 5g --min 100mbit --max 500mbit --duration 60s --seed 6 -o "$OUT/5g-peaks.trace" > /dev/null &&
    row emu "trace=$OUT/5g-peaks.trace,delay=20ms"
# A real cellular trace of your own (e.g. Mahimahi's traces/Verizon-LTE-short.up from
# github.com/ravinet/mahimahi): MECBED_BENCH_TRACE=path make bench-net
S=${MECBED_BENCH_TRACE:-}
[ -n "$S" ] && [ -f "$S" ] && row emu "trace=$S,delay=20ms"
echo
echo "one-way: median of idle probes a -> b (both namespaces share the monotonic clock); err = measured - delay - the probe's transmission time at the rate."
echo "5g-peaks.trace: mecbed trace gen 5g --min 100mbit --max 500mbit --duration 60s --seed 6 (1-s rates 23-484 Mbit/s, p50 435 in its first 15 s)."
echo "trace delivered/capacity: bytes delivered in the UDP phase against the trace's capacity over the same window (shifted by the delay); busy: against the capacity of the time the sender kept the bottleneck queue non-empty."
echo "emu CPU: both emulator threads in the TCP phase, % of one core; per direction the data (a -> b) and the ACK thread, and in parentheses the part inside their TUN writes, where the receiving namespace's network stack runs (a NIC's receive path on a real host)."
echo "emu timer: how late the emulator wrote packets after their computed delivery time (median / p99, microseconds)."
echo "loss cfg for Gilbert-Elliott is the stationary mean p/(p+r)*loss_bad; RTT load: median during the TCP phase (queue of 1000 packets: bufferbloat, as on real LTE)."
