# experiments/accuracy.conf: predicted vs measured latency and device energy,
# one point per (model, policy, uplink), with the y = x line (and +-25 %).
if (!exists('W')) W = 1300
if (!exists('H')) H = 600
load 'experiments/plots/common.gp'
set output out('predicted-vs-measured')
set multiplot layout 1, 2 title 'Cost model vs emulated runs (median of the measured frames)' font ',12'
set logscale xy
set style data points
set key top left inside box opaque
okrow(p) = strcol('policy') eq p && strcol('ok') eq '1'
do for [what in 'latency energy'] {
  pc = what eq 'latency' ? 'latency_ms' : 'energy_mj'
  mc = what eq 'latency' ? 'measured_ms' : 'measured_energy_mj'
  u = what eq 'latency' ? 'ms' : 'mJ'
  set title what eq 'latency' ? 'latency' : 'device energy'
  set xlabel sprintf('predicted %s (%s)', what, u)
  set ylabel sprintf('measured %s (%s)', what, u)
  plot for [p in policies] csv using (okrow(p) ? column(pc) : NaN):(column(mc)) pt 7 ps 1 title p, \
       x with lines lc rgb '#444444' title 'y = x', \
       1.25*x with lines dt 3 lc rgb '#aaaaaa' title '+-25 %', 0.8*x with lines dt 3 lc rgb '#aaaaaa' notitle
}
unset multiplot
