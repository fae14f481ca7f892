# experiments/intra-dp.conf: operator-level splits (Intra-DP) against
# layer-wise partitioning and local, measured over emulated links. One column
# per model (the loop variable is not r: logy.gp sets r); top: latency, bottom: device energy, vs the uplink rate; solid
# lines with points: measured (median of the point's frames), dashed: what
# the cost model predicted for the same plan.
if (!exists('W')) W = 160 + 420 * (words(models) > 2 ? words(models) : 2)
if (!exists('H')) H = 820
load 'experiments/plots/common.gp'
nm = words(models)
np = words(policies)
t1 = word(node_types, 1)
array MC[2] = ['measured_ms', 'measured_energy_mj']
array PC[2] = ['latency_ms', 'energy_mj']
array YL[2] = ['latency (ms)', 'device energy (mJ)']
array WN[2] = ['latency', 'device energy']
# the x range: the measured rates, a little room either side (log axis)
xlo = 1e300
xhi = 0
do for [k = 1:words(xs)] {
  v = real(word(xs, k))
  xlo = v < xlo ? v : xlo
  xhi = v > xhi ? v : xhi
}
do for [T in terms] {
  eval setterm(T)
  set output out('intra-dp-vs-uplink')
  set multiplot title sprintf("Operator-level splits (Intra-DP) vs layer-wise partitioning, measured over emulated links\n%s, RTT 20 ms; solid: measured (median of the frames), dashed: predicted", tname(t1)) font ',12'
  GR = 2
  GC = nm
  GL = 0.3 / (nm + 1) < 0.1 ? 0.3 / (nm + 1) : 0.1
  GX = 0.06
  GB = 95.0 / H
  GT = 1 - 95.0 / H
  GY = 110.0 / H
  set xtics ()
  do for [k = 1:words(xs)] { set xtics add (word(xs, k) real(word(xs, k))) }
  set xlabel xlabel_text noenhanced
  unset key
  do for [mi = 1:nm] {
    m = word(models, mi)
    do for [row = 1:2] {
      # the panel's statistics over the whole data (no range of the last panel)
      unset logscale
      set autoscale
      gm = m
      gt = t1
      gcol = MC[row]
      gval(p) = column(gcol)
      load 'experiments/plots/same.gp'
      # the predictions share the axis
      stats csv using (strcol('model') eq m && strcol('ok') eq '1' && column(PC[row]) > 0 ? column(PC[row]) : NaN) nooutput
      if (STATS_records > 0 && !EMPTY) {
        Ylo = STATS_min < Ylo ? STATS_min : Ylo
        Yhi = STATS_max > Yhi ? STATS_max : Yhi
      }
      set title mname(m).', '.WN[row].NOTE noenhanced
      set ylabel YL[row]
      set logscale xy
      set xrange [xlo / 1.25 : xhi * 1.25]
      set yrange [Ylo / 1.1 : Yhi * 1.1]
      load 'experiments/plots/logy.gp'
      eval grid(row, mi)
      plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column(PC[row])) \
             with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
           for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column(MC[row])) \
             with linespoints lt pstyle(word(policies, i)) notitle
    }
  }
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title ptitle(word(policies, i)).', measured', \
       NaN with lines lc rgb '#555555' lw 1 dt (5, 4) title 'predicted (dashed, the policy''s colour)'
  eval unkeystrip
  unset multiplot
}
