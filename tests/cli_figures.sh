#!/bin/sh
# The shipped experiments' figures (experiments/plots/*.gp): every plan-mode
# experiment's --quick sweep draws its figures as PNG, SVG and (where gnuplot
# has pdfcairo) PDF without a plot error; titles name models in words, not zoo
# identifiers; coinciding series are named ("same values: ..."); log axes carry
# no 1e+06-style labels; the DADS figure labels the cut it moved to. The
# run-mode figures (dynamic, accuracy, intra-dp, regress-measured) are drawn
# from small hand-written result files, as `mecbed sweep` would call gnuplot:
# the deadline line, the error panels and the ratios are there; every shipped
# experiment has a figure script.
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ -x "$M" ] || { echo "skip: $M not built"; exit 77; }
command -v gnuplot >/dev/null || { echo "skip: gnuplot not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-cli-figures.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
export XDG_CACHE_HOME="$tmp/cache"
fail() { echo "FAIL: $*"; exit 1; }
pdf=0
gnuplot -e "print GPVAL_TERMINALS" 2>&1 | grep -qw pdfcairo && pdf=1

# has NAME.png, NAME.svg (valid XML) and NAME.pdf in DIR
drawn() {
    for t in png svg; do [ -s "$1/$2.$t" ] || fail "$1: no $2.$t"; done
    if [ $pdf = 1 ]; then
        head -c 5 "$1/$2.pdf" | grep -q '%PDF-' || fail "$1: no $2.pdf (gnuplot has pdfcairo)"
        # a page for a paper: 504 pt (7 in) wide at most, not one point per PNG pixel
        w=$(grep -a -o 'MediaBox \[ *0 0 [0-9.]*' "$1/$2.pdf" | head -n 1 | awk '{print $NF}')
        [ -n "$w" ] && awk "BEGIN { exit !($w <= 504.5) }" || fail "$1/$2.pdf: page $w pt wide (want <= 504)"
    fi
    if command -v python3 >/dev/null; then
        python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$1/$2.svg" 2>/dev/null ||
            fail "$1/$2.svg is not well-formed XML"
    fi
    grep -q 'e+0[0-9]<' "$1/$2.svg" && fail "$1/$2.svg: a tick label in 1e+0N form"
    return 0
}

for x in bandwidth multi-edge multi-device decision-time; do
    "$M" sweep "experiments/$x.conf" --quick --json --out "$tmp/$x" > "$tmp/$x.json" 2> "$tmp/$x.err" ||
        { tail -n 5 "$tmp/$x.err"; fail "$x --quick"; }
    grep -q '"plots_failed":0' "$tmp/$x.json" || fail "$x: a plot failed: $(cat "$tmp/$x"/plot-*.log 2>/dev/null | head -5)"
    ls "$tmp/$x"/plot-*.log >/dev/null 2>&1 && fail "$x: plot logs left: $(cat "$tmp/$x"/plot-*.log | head -5)"
done

B="$tmp/bandwidth"
for f in latency-vs-uplink energy-vs-uplink latency-vs-uplink-rpi4 energy-vs-uplink-rpi4 tinyyolo-mincut-position; do
    drawn "$B" $f
done
grep -q '>Tiny YOLOv2<' "$B/latency-vs-uplink.svg" || fail "bandwidth: the panel is not titled 'Tiny YOLOv2'"
grep -q '>tiny_yolov2<' "$B/latency-vs-uplink.svg" && fail "bandwidth: a zoo identifier as a title"
grep -q 'same values: ' "$B/latency-vs-uplink.svg" || fail "bandwidth: coinciding series not named"
grep -q 'phone device, edge CPU server' "$B/latency-vs-uplink.svg" || fail "bandwidth: node types not in words"
grep -q '>after pool5, [0-9]* kB up<' "$B/tinyyolo-mincut-position.svg" || fail "DADS figure: no label at the cut"
# one legend per figure: each policy's name once
n=$(grep -c '<text>mincut</text>' "$B/latency-vs-uplink.svg")
[ "$n" = 1 ] || fail "bandwidth: 'mincut' in $n legends (want one shared legend)"
# a model whose points all failed: its panels are empty and say so, the rest is drawn
if command -v python3 >/dev/null; then
    F="$tmp/bwfail"
    mkdir -p "$F"
    python3 - "$B/results.csv" "$F/results.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
m, ok = rows[0].index('model'), rows[0].index('ok')
for r in rows[1:]:
    if r[m] == 'mobilenetv2':
        r[ok] = '0'
csv.writer(open(sys.argv[2], 'w', newline='')).writerows(rows)
PY
    gnuplot -e "dir='$F'; term='svg'; quick=1; xname='x'; models='mobilenetv2 tiny_yolov2'; dags=''; policies='local offload mincut'; node_types='phone/edge-cpu'; xs='1 10 100'; variants=''" \
        experiments/plots/bandwidth.gp 2> "$tmp/fail.err" || fail "bandwidth.gp with failed points: $(grep -v warning "$tmp/fail.err" | head -3)"
    for f in latency-vs-uplink energy-vs-uplink tinyyolo-mincut-position; do [ -s "$F/$f.svg" ] || fail "failed points: no $f.svg"; done
    grep -q 'no successful point' "$F/latency-vs-uplink.svg" || fail "failed points: the empty panel does not say so"
fi
drawn "$tmp/multi-edge" latency-and-backbone-vs-k
grep -q 'offload to the cloud' "$tmp/multi-edge/latency-and-backbone-vs-k.svg" || fail "multi-edge: policy options not in words"
drawn "$tmp/multi-device" dds-vs-devices
drawn "$tmp/decision-time" decision-time-vs-ops

# run-mode figures from hand-written results, called as mecbed sweep calls gnuplot
plotvars() { # DIR TERM
    echo "dir='$1'; term='$2'; quick=1; xname='x'; models='vgg16'; dags=''; policies='local offload mincut'; node_types='phone/edge-cpu'; xs='traces/a.trace'; variants='static adaptive'"
}
D="$tmp/dyn"
mkdir -p "$D"
{
    echo "point,variant,x,frame,t_s,latency_ms,predicted_ms,plan,ok"
    for v in static adaptive; do
        p=0; [ $v = adaptive ] && p=1
        for i in 1 2 3 4 5 6; do
            echo "$p,$v,traces/a.trace,$i,$i.25,$((300 + i * 200 + p * 50)).5,600,0,1"
        done
    done
} > "$D/frames.csv"
{
    echo "point,x,t_s,rate_mbps"
    for i in 0 1 2 3 4 5 6 7; do echo "0,traces/a.trace,$i.00,$((2 + (i % 2) * 18))"; done
} > "$D/trace.csv"
echo "experiment,point,model,policy,ok" > "$D/results.csv"
for t in png svg; do
    gnuplot -e "$(plotvars "$D" $t)" experiments/plots/dynamic.gp 2> "$tmp/dyn.$t.err" ||
        fail "dynamic.gp ($t): $(head -5 "$tmp/dyn.$t.err")"
done
drawn "$D" latency-over-time
grep -q 'deadline: one frame period (1000 ms)' "$D/latency-over-time.svg" || fail "dynamic: no deadline line"
grep -q 'uplink trace a: mean' "$D/latency-over-time.svg" || fail "dynamic: the trace is not named by its stem"
grep -q 'traces/a.trace' "$D/latency-over-time.svg" && fail "dynamic: a raw path in the figure"

A="$tmp/acc"
mkdir -p "$A"
{
    echo "policy,ok,latency_ms,measured_ms,energy_mj,measured_energy_mj,rel_err,energy_rel_err"
    echo "local,1,100,101,500,505,0.01,0.01"
    echo "offload,1,1000,1040,4000,3800,0.04,-0.05"
    echo "mincut,1,200,198,900,930,-0.01,0.0333"
    echo "mincut,0,,,,,,"
} > "$A/results.csv"
for t in png svg; do
    gnuplot -e "$(plotvars "$A" $t)" experiments/plots/accuracy.gp 2> "$tmp/acc.$t.err" ||
        fail "accuracy.gp ($t): $(head -5 "$tmp/acc.$t.err")"
done
drawn "$A" predicted-vs-measured
grep -q 'signed error' "$A/predicted-vs-measured.svg" || fail "accuracy: no error panel"

# intra-dp (run mode): measured and predicted latency and energy per model
I="$tmp/idp"
mkdir -p "$I"
{
    echo "model,policy,node_types,x,ok,latency_ms,energy_mj,measured_ms,measured_energy_mj"
    for x in 5 10 20 50; do
        echo "tiny_yolov2,local,jetson-nano/edge-gpu,$x,1,111,830,114.9,850"
        echo "tiny_yolov2,layerwise,jetson-nano/edge-gpu,$x,1,111,830,$((115 - x / 5)).5,$((850 - x))"
        echo "tiny_yolov2,oplevel,jetson-nano/edge-gpu,$x,1,$((110 - x / 2)),820,$((112 - x / 2)).2,$((840 + x))"
    done
} > "$I/results.csv"
for t in png svg; do
    gnuplot -e "dir='$I'; term='$t'; quick=1; xname='uplink rate'; xunit='Mbit/s'; models='tiny_yolov2'; dags=''; policies='local layerwise oplevel'; node_types='jetson-nano/edge-gpu'; xs='5 10 20 50'; variants=''" \
        experiments/plots/intra-dp.gp 2> "$tmp/idp.$t.err" || fail "intra-dp.gp ($t): $(grep -v warning "$tmp/idp.$t.err" | head -5)"
done
drawn "$I" intra-dp-vs-uplink
grep -q '>Tiny YOLOv2, device energy<' "$I/intra-dp-vs-uplink.svg" || fail "intra-dp: no energy panel"
grep -q 'uplink rate (Mbit/s)' "$I/intra-dp-vs-uplink.svg" || fail "intra-dp: x label without its unit"
grep -q 'oplevel, measured' "$I/intra-dp-vs-uplink.svg" || fail "intra-dp: no legend"

# regress-measured (run mode): predicted and measured bars, the ratio in the title
R="$tmp/rm"
mkdir -p "$R"
printf 'model,policy,ok,latency_ms,measured_ms\nresnet18,local,1,240.1,251.3\nresnet18,offload,1,410.5,436.9\n' > "$R/results.csv"
for t in png svg; do
    gnuplot -e "dir='$R'; term='$t'; quick=1; xname='uplink rate'; xunit='Mbit/s'; models='resnet18'; dags=''; policies='local offload'; node_types=''; xs='18.88'; variants=''" \
        experiments/plots/regress-measured.gp 2> "$tmp/rm.$t.err" || fail "regress-measured.gp ($t): $(grep -v warning "$tmp/rm.$t.err" | head -5)"
done
drawn "$R" predicted-vs-measured-latency
grep -q 'predicted 1.71, measured 1.74' "$R/predicted-vs-measured-latency.svg" || fail "regress-measured: no ratios in the title"
# multi-device-run (run mode): measured and predicted mean latency vs N, and
# the DDS advantage (each policy's mean over dds's)
D="$tmp/mdr"
mkdir -p "$D"
{
    echo "model,policy,node_types,x,ok,latency_ms,measured_ms,m_measured_max_ms"
    for x in 1 2 4; do
        echo "tiny_yolov2,dds,rpi4/edge-cpu,$x,1,$((150 + x * 10)),$((151 + x * 10)),$((160 + x * 12))"
        echo "tiny_yolov2,dds:shares=equal,rpi4/edge-cpu,$x,1,$((150 + x * 14)),$((151 + x * 15)),$((160 + x * 16))"
        echo "tiny_yolov2,mincut,rpi4/edge-cpu,$x,1,$((140 + x * 10)),$((141 + x * 9)),$((150 + x * 11))"
    done
} > "$D/results.csv"
for t in png svg; do
    gnuplot -e "dir='$D'; term='$t'; quick=1; xname='devices'; xunit='N'; models='tiny_yolov2'; dags=''; policies='dds dds:shares=equal mincut'; node_types='rpi4/edge-cpu'; xs='1 2 4'; variants=''" \
        experiments/plots/multi-device-run.gp 2> "$tmp/mdr.$t.err" || fail "multi-device-run.gp ($t): $(grep -v warning "$tmp/mdr.$t.err" | head -5)"
done
drawn "$D" multi-device-measured
grep -q 'mincut, measured' "$D/multi-device-measured.svg" || fail "multi-device-run: no legend"
grep -q 'equal shares (dds:shares=equal), measured' "$D/multi-device-measured.svg" || fail "multi-device-run: equal shares not in words"
# equal shares at N = 4: (151 + 60) / (151 + 40) = 1.10x over dds, written on its point
grep -q '>1.10x<' "$D/multi-device-measured.svg" || fail "multi-device-run: the DDS advantage is not drawn"
grep -q 'devices (N)' "$D/multi-device-measured.svg" || fail "multi-device-run: x label without its unit"
# multi-edge-run (run mode): measured and predicted latency and edge-cloud bytes vs K
D="$tmp/mer"
mkdir -p "$D"
{
    echo "model,policy,node_types,x,ok,latency_ms,measured_ms,m_edge_cloud_bytes,m_edge_cloud_bytes_measured"
    for x in 1 2 3 4; do
        echo "tiny_yolov2,tile,-,$x,1,$((200 - x * 12)),$((204 - x * 12)),0,0"
        echo "tiny_yolov2,offload:server=cloud,-,$x,1,1306,1365,2161172,2281304"
    done
} > "$D/results.csv"
for t in png svg; do
    gnuplot -e "dir='$D'; term='$t'; quick=1; xname='edge nodes'; xunit='K'; models='tiny_yolov2'; dags=''; policies='tile offload:server=cloud'; node_types='-'; xs='1 2 3 4'; variants=''" \
        experiments/plots/multi-edge-run.gp 2> "$tmp/mer.$t.err" || fail "multi-edge-run.gp ($t): $(grep -v warning "$tmp/mer.$t.err" | head -5)"
done
drawn "$D" multi-edge-measured
grep -q 'tile (D3, all K edges), measured' "$D/multi-edge-measured.svg" || fail "multi-edge-run: no legend"
grep -q 'edge nodes (K)' "$D/multi-edge-measured.svg" || fail "multi-edge-run: x label without its unit"
# every shipped experiment names a figure script that exists
for c in experiments/*.conf; do
    p=$(sed -n 's/^plot *= *//p' "$c")
    [ -n "$p" ] || fail "$c: no plot = (every experiment has a figure)"
    [ -f "$p" ] || fail "$c: plot $p does not exist"
done

echo "figures: plan-mode experiments, dynamic, accuracy, intra-dp and regress-measured drawn as PNG, SVG$([ $pdf = 1 ] && echo ', PDF'); names, legends, deadline ok"
exit 0
