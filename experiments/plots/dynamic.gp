# experiments/dynamic.conf: per-frame latency over time for every variant
# (static, adaptive), with the uplink trace's rate behind it on the second
# axis and the frame deadline (one frame period); one panel per trace.
# frames.csv and trace.csv carry the point's variant and x.
if (!exists('W')) W = 1200
if (!exists('H')) H = 100 + 400 * words(xs)
load 'experiments/plots/common.gp'
tr = dir.'/trace.csv'
nx = words(xs)
nv = words(variants)
# one colour per variant: measured solid with points, predicted dashed
array VC[4] = ['#0072B2', '#D55E00', '#009E73', '#CC79A7']
array VP[4] = [7, 9, 5, 13]
do for [v = 1:4] {
  set linetype 40 + v lc rgb VC[v] lw 1.5 pt VP[v] ps 0.7 dt 1
  set linetype 50 + v lc rgb VC[v] lw 1.2 dt (6, 4)
}
vstyle(v) = widx(v, variants) > 4 ? 40 : 40 + widx(v, variants)
# the deadline: a frame is late when it takes longer than one frame period,
# the spacing of the frames' release times
frow(xv, v) = strcol('x') eq xv && strcol('variant') eq v
do for [T in terms] {
  eval setterm(T)
  set output out('latency-over-time')
  set multiplot title "Per-frame latency over a varying uplink, measured over emulated links\nlines with points: measured; dashed: predicted by the plan in force; grey: the trace's uplink rate (right axis)" font ',12'
  GR = nx
  GC = 1
  GL = 0.08
  GRM = 0.92
  GB = 95.0 / H
  GT = 1 - 85.0 / H
  GY = 100.0 / H
  do for [xi = 1:nx] {
    xv = word(xs, xi)
    # trace.csv has the trace once per point: draw the first point's copy
    stats tr using (strcol('x') eq xv ? column('point') : NaN) nooutput
    p0 = STATS_min
    stats tr using (strcol('x') eq xv && column('point') == p0 ? column('rate_mbps') : NaN) nooutput
    rmean = STATS_mean
    rmax = STATS_max
    stats fr using (frow(xv, word(variants, 1)) ? column('t_s') : NaN) nooutput
    period = STATS_records > 1 ? (STATS_max - STATS_min) / (STATS_records - 1) : 0
    deadline = 1000 * period
    stats fr using (strcol('x') eq xv && strcol('ok') eq '1' ? column('latency_ms') : NaN) nooutput
    Ylo = STATS_min
    Yhi = STATS_max
    stats fr using (strcol('x') eq xv ? column('predicted_ms') : NaN) nooutput
    Ylo = STATS_min < Ylo ? STATS_min : Ylo
    Yhi = STATS_max > Yhi ? STATS_max : Yhi
    Yhi = deadline > Yhi ? deadline : Yhi
    set title sprintf('uplink trace %s: mean %.1f Mbit/s over the run, peak %.1f', stem(xv), rmean, rmax) noenhanced
    set xlabel 'time since the links came up (s)'
    set ylabel 'frame latency (ms)'
    set y2label 'uplink rate (Mbit/s)' tc rgb '#808080'
    set logscale y
    set yrange [Ylo / 1.2 : Yhi * 1.2]
    load 'experiments/plots/logy.gp'
    set ytics nomirror
    set y2tics tc rgb '#808080'
    set y2range [0 : rmax * 1.6]
    set xrange [*:*]
    unset label
    if (deadline > 0) {
      set arrow 1 from graph 0, first deadline to graph 1, first deadline nohead lc rgb '#000000' lw 1.5 dt (10, 3, 2, 3) front
    }
    eval grid(xi, 1)
    plot tr using (strcol('x') eq xv && column('point') == p0 ? column('t_s') : NaN):'rate_mbps' \
           axes x1y2 with fillsteps fs transparent solid 0.18 noborder lc rgb '#808080' notitle, \
         tr using (strcol('x') eq xv && column('point') == p0 ? column('t_s') : NaN):'rate_mbps' \
           axes x1y2 with steps lc rgb '#b0b0b0' lw 1 notitle, \
         for [v in variants] fr using (frow(xv, v) ? column('t_s') : NaN):'predicted_ms' \
           with steps lt vstyle(v) + 10 notitle, \
         for [v in variants] fr using (frow(xv, v) && strcol('ok') eq '1' ? column('t_s') : NaN):'latency_ms' \
           with linespoints lt vstyle(v) notitle
    unset arrow 1
  }
  unset y2tics
  unset y2label
  eval keystrip
  plot for [v in variants] NaN with linespoints lt vstyle(v) title 'measured, '.v, \
       for [v in variants] NaN with lines lt vstyle(v) + 10 title 'predicted, '.v, \
       NaN with lines lc rgb '#000000' lw 1.5 dt (10, 3, 2, 3) title sprintf('deadline: one frame period (%.0f ms)', deadline), \
       NaN with filledcurves fs transparent solid 0.18 noborder lc rgb '#808080' title 'uplink rate'
  eval unkeystrip
  unset multiplot
}
