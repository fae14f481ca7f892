# experiments/multi-device-run.conf: N devices sharing one edge node, measured
# (mecbed run --devices N). One panel per model: the devices' mean latency
# against N, solid with points: measured (each device's median frame,
# averaged), dashed: predicted by the policy's plan plus the sharing model
# (docs/runtime.md, "Several devices"), dotted: the slowest device, measured.
if (!exists('W')) W = 160 + 520 * (words(models) > 1 ? words(models) : 1)
if (!exists('H')) H = 520
load 'experiments/plots/common.gp'
nm = words(models)
np = words(policies)
t1 = word(node_types, 1)
xlo = 1e300
xhi = 0
do for [k = 1:words(xs)] {
  v = real(word(xs, k))
  xlo = v < xlo ? v : xlo
  xhi = v > xhi ? v : xhi
}
do for [T in terms] {
  eval setterm(T)
  set output out('multi-device-measured')
  set multiplot title "N devices sharing one edge node, measured (first come, first served at the node)\nsolid: measured mean per device, dashed: predicted, dotted: the slowest device" font ',12'
  GR = 1
  GC = nm
  GL = 0.3 / (nm + 1) < 0.1 ? 0.3 / (nm + 1) : 0.1
  GX = 0.10
  GB = 95.0 / H
  GT = 1 - 95.0 / H
  GY = 110.0 / H
  set xtics ()
  do for [k = 1:words(xs)] { set xtics add (word(xs, k) real(word(xs, k))) }
  set xlabel xlabel_text noenhanced
  unset key
  do for [mi = 1:nm] {
    m = word(models, mi)
    unset logscale
    set autoscale
    gm = m
    gt = t1
    gcol = 'measured_ms'
    gval(p) = column(gcol)
    load 'experiments/plots/same.gp'
    # the predictions and the slowest device share the axis
    do for [c in 'latency_ms m_measured_max_ms'] {
      stats csv using (strcol('model') eq m && strcol('ok') eq '1' && column(c) > 0 ? column(c) : NaN) nooutput
      if (STATS_records > 0 && !EMPTY) {
        Ylo = STATS_min < Ylo ? STATS_min : Ylo
        Yhi = STATS_max > Yhi ? STATS_max : Yhi
      }
    }
    set title mname(m).NOTE noenhanced
    set ylabel 'latency per frame (ms)'
    set logscale x 2
    set xrange [xlo / 1.25 : xhi * 1.25]
    set yrange [0 : Yhi * 1.1]
    eval grid(1, mi)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('latency_ms')) \
           with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('m_measured_max_ms')) \
           with lines lt pstyle(word(policies, i)) lw 1 dt (1, 3) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('measured_ms')) \
           with linespoints lt pstyle(word(policies, i)) notitle
  }
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title ptitle(word(policies, i)).', measured', \
       NaN with lines lc rgb '#555555' lw 1 dt (5, 4) title 'predicted (dashed)', \
       NaN with lines lc rgb '#555555' lw 1 dt (1, 3) title 'slowest device (dotted)'
  eval unkeystrip
  unset multiplot
}
