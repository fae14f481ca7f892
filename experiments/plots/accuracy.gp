# experiments/accuracy.conf: predicted vs measured latency and device energy,
# one point per (model, policy, uplink), with the y = x line (and +-25 %);
# below, the signed error of each prediction.
if (!exists('W')) W = 1200
if (!exists('H')) H = 1000
load 'experiments/plots/common.gp'
np = words(policies)
okrow(p) = strcol('policy') eq p && strcol('ok') eq '1'
array PC[2] = ['latency_ms', 'energy_mj']
array MC[2] = ['measured_ms', 'measured_energy_mj']
array EC[2] = ['rel_err', 'energy_rel_err']
array UN[2] = ['ms', 'mJ']
array WN[2] = ['latency', 'device energy']
# each panel's range: both axes the same, from the smallest to the largest
# value predicted or measured
array LO[2]
array HI[2]
array ELO[2]
array EHI[2]
do for [k = 1:2] {
  lo = 1e300
  hi = -1e300
  elo = 0
  ehi = 0
  stats csv using (strcol('ok') eq '1' && column(PC[k]) > 0 && column(MC[k]) > 0 ? \
      (lo = column(PC[k]) < lo ? column(PC[k]) : lo, lo = column(MC[k]) < lo ? column(MC[k]) : lo, \
       hi = column(PC[k]) > hi ? column(PC[k]) : hi, hi = column(MC[k]) > hi ? column(MC[k]) : hi, \
       elo = 100 * column(EC[k]) < elo ? 100 * column(EC[k]) : elo, ehi = 100 * column(EC[k]) > ehi ? 100 * column(EC[k]) : ehi, 1) : 1) nooutput
  LO[k] = lo
  HI[k] = hi
  # the error axis: at least +-5 %, symmetric, so the sign reads at a glance
  e = (-elo > ehi ? -elo : ehi) * 1.15
  EHI[k] = e > 5 ? e : 5
}
do for [T in terms] {
  eval setterm(T)
  set output out('predicted-vs-measured')
  set multiplot title "Cost model vs emulated runs: every (model, policy, uplink) point, median of its measured frames\ntop: measured against predicted (grey: y = x, dotted: +-25 %); bottom: signed error of the prediction" font ',12'
  GR = 2
  GC = 2
  GL = 0.09
  GB = 90.0 / H
  GT = 1 - 80.0 / H
  GY = 110.0 / H
  GX = 0.1
  unset key
  do for [k = 1:2] {
    set title WN[k]
    set logscale xy
    set xrange [LO[k] / 1.3 : HI[k] * 1.3]
    set yrange [LO[k] / 1.3 : HI[k] * 1.3]
    Ylo = LO[k]
    Yhi = HI[k]
    load 'experiments/plots/logy.gp'
    set xtics autofreq
    set format x '%g'
    if (HI[k] / LO[k] > 1000) { set format x '10^{%L}' }
    set xlabel sprintf('predicted %s (%s)', WN[k], UN[k])
    set ylabel sprintf('measured %s (%s)', WN[k], UN[k])
    eval grid(1, k)
    plot x with lines lc rgb '#999999' lw 1 dt 1 notitle, \
         1.25 * x with lines lc rgb '#bbbbbb' dt (2, 3) notitle, 0.8 * x with lines lc rgb '#bbbbbb' dt (2, 3) notitle, \
         for [i = 1:np] csv using (okrow(word(policies, i)) ? column(PC[k]) : NaN):(column(MC[k])) \
           with points lt pstyle(word(policies, i)) notitle
    set title WN[k].': signed error, (measured - predicted) / predicted'
    unset logscale y
    set yrange [-EHI[k] : EHI[k]]
    set ytics autofreq
    set format y '%g'
    set ylabel 'error (%)'
    eval grid(2, k)
    plot 0 with lines lc rgb '#999999' notitle, \
         for [i = 1:np] csv using (okrow(word(policies, i)) ? column(PC[k]) : NaN):(100 * column(EC[k])) \
           with points lt pstyle(word(policies, i)) notitle
    unset logscale
    set autoscale
  }
  eval keystrip
  plot for [i = 1:np] NaN with points lt pstyle(word(policies, i)) title ptitle(word(policies, i))
  eval unkeystrip
  unset multiplot
}
