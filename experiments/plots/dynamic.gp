# experiments/dynamic.conf: per-frame latency over time for every variant
# (static, adaptive), with the uplink trace's rate on the second axis; one
# panel per trace. frames.csv and trace.csv carry the point's variant and x.
if (!exists('W')) W = 1200
if (!exists('H')) H = 450 * words(xs)
load 'experiments/plots/common.gp'
tr = dir.'/trace.csv'
set key below horizontal
set output out('latency-over-time')
set multiplot layout words(xs), 1 title 'Per-frame latency over a varying uplink (measured over emulated links)' font ',12'
set xlabel 'time since the links came up (s)'
set ylabel 'frame latency (ms)'
set y2label 'uplink trace rate (Mbit/s)'
set logscale y
set ytics nomirror
set y2tics
set y2range [0:*]
do for [xi = 1:words(xs)] {
  xv = word(xs, xi)
  set title 'trace '.xv
  # trace.csv has the trace once per point: draw the first point's copy
  stats tr using (strcol('x') eq xv ? column('point') : NaN) nooutput
  p0 = STATS_min
  plot for [v in variants] fr using (strcol('x') eq xv && strcol('variant') eq v ? column('t_s') : NaN):'latency_ms' \
         with linespoints pt 7 ps 0.5 title 'measured, '.v, \
       for [v in variants] fr using (strcol('x') eq xv && strcol('variant') eq v ? column('t_s') : NaN):'predicted_ms' \
         with steps dt 2 title 'predicted by the plan in force, '.v, \
       tr using (strcol('x') eq xv && column('point') == p0 ? column('t_s') : NaN):'rate_mbps' \
         axes x1y2 with steps lc rgb '#888888' lw 2 title 'uplink rate of the trace'
}
unset multiplot
