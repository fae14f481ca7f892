# experiments/decision-time.conf: decision time of mincut and cic vs graph
# size; zoo models as labelled points, generated DAGs as lines.
if (!exists('W')) W = 1100
if (!exists('H')) H = 700
load 'experiments/plots/common.gp'
np = words(policies)
isdag(s) = strstrt(s, 'dag') == 1
okp(p) = strcol('policy') eq p && strcol('ok') eq '1'
# the figure's extremes, for the ranges and tick labels
Ylo = 1e300
Yhi = -1e300
Xlo = 1e300
Xhi = -1e300
stats csv using (strcol('ok') eq '1' && column('decision_us') > 0 ? (Ylo = column('decision_us') < Ylo ? column('decision_us') : Ylo, \
                 Yhi = column('decision_us') > Yhi ? column('decision_us') : Yhi, \
                 Xlo = column('ops') < Xlo ? column('ops') : Xlo, Xhi = column('ops') > Xhi ? column('ops') : Xhi, 1) : 1) nooutput
do for [T in terms] {
  eval setterm(T)
  set output out('decision-time-vs-ops')
  set multiplot title "Policy decision time vs graph size\nmedian over re-plans at 11 uplink rates; offline init excluded; lines: generated CNN-like DAGs, filled points: zoo models" font ',12'
  GR = 1
  GC = 1
  GL = 0.1
  GRM = 0.97
  GB = 90.0 / H
  GT = 1 - 75.0 / H
  eval grid(1, 1)
  unset title
  set logscale xy
  set xlabel xlabel_text noenhanced
  set ylabel 'decision time (µs)'
  set xrange [Xlo / 1.4 : Xhi * 1.4]
  set yrange [Ylo / 1.3 : Yhi * 1.3]
  load 'experiments/plots/logy.gp'
  unset key
  # zoo names once, under the first policy's points, written upwards: models
  # of similar size sit side by side instead of on top of each other
  plot for [i = 1:np] csv using (okp(word(policies, i)) && isdag(strcol('model')) ? column('ops') : NaN):'decision_us' \
         with linespoints lt pstyle(word(policies, i)) pt 6 ps 1.0 notitle, \
       for [i = 1:np] csv using (okp(word(policies, i)) && !isdag(strcol('model')) ? column('ops') : NaN):'decision_us' \
         with points lt pstyle(word(policies, i)) pt 7 ps 1.3 notitle, \
       csv using (okp(word(policies, 1)) && !isdag(strcol('model')) ? column('ops') : NaN):'decision_us':(mname(strcol('model'))) \
         with labels right rotate by 90 offset 0, -0.9 font ',9' noenhanced notitle
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) pt 6 title word(policies, i).', generated DAGs', \
       for [i = 1:np] NaN with points lt pstyle(word(policies, i)) pt 7 ps 1.3 title word(policies, i).', zoo models'
  eval unkeystrip
  unset multiplot
}
