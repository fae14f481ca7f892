# experiments/regress-measured.conf: the measured part of `make regress`.
# Predicted and measured latency of each policy (bars side by side), and in
# the title the offload/local ratio both ways, which regress.sh requires to
# agree within 2x (and in direction).
if (!exists('W')) W = 700
if (!exists('H')) H = 520
load 'experiments/plots/common.gp'
np = words(policies)
okrow(p) = strcol('policy') eq p && strcol('ok') eq '1'
array PRED[np]
array MEAS[np]
hi = 0
do for [i = 1:np] {
  PRED[i] = NaN
  MEAS[i] = NaN
  stats csv using (okrow(word(policies, i)) ? column('latency_ms') : NaN) nooutput
  if (STATS_records > 0) { PRED[i] = STATS_median }
  stats csv using (okrow(word(policies, i)) ? column('measured_ms') : NaN) nooutput
  if (STATS_records > 0) { MEAS[i] = STATS_median }
  hi = PRED[i] > hi ? PRED[i] : hi
  hi = MEAS[i] > hi ? MEAS[i] : hi
}
il = widx('local', policies)
io = widx('offload', policies)
ratio = (il > 0 && io > 0 && PRED[il] > 0 && MEAS[il] > 0) ? \
  sprintf('offload / local: predicted %.2f, measured %.2f (regress: within 2x, same side of 1)', \
          PRED[io] / PRED[il], MEAS[io] / MEAS[il]) : 'no local and offload pair to compare'
m1 = word(models, 1)
do for [T in terms] {
  eval setterm(T)
  set output out('predicted-vs-measured-latency')
  set multiplot title sprintf("%s, one emulated run per policy: predicted and measured latency\n%s", mname(m1), ratio) font ',12'
  GR = 1
  GC = 1
  GL = 0.12
  GRM = 0.97
  GB = 95.0 / H
  GT = 1 - 85.0 / H
  eval grid(1, 1)
  unset title
  set style fill solid 0.85 border lc rgb '#333333'
  set boxwidth 0.34
  set xrange [0.4 : np + 0.6]
  set yrange [0 : (hi > 0 ? hi : 1) * 1.2]
  set xtics ()
  do for [i = 1:np] { set xtics add (word(policies, i) i) }
  set xtics noenhanced
  set xlabel 'policy'
  set ylabel 'latency (ms)'
  set ytics autofreq
  set format y '%g'
  unset key
  plot for [i = 1:np] '+' using (i - 0.18):(PRED[i]) every ::0::0 with boxes lc rgb '#bbbbbb' notitle, \
       for [i = 1:np] '+' using (i + 0.18):(MEAS[i]) every ::0::0 with boxes lt pstyle(word(policies, i)) notitle, \
       for [i = 1:np] '+' using (i - 0.18):(PRED[i]):(sprintf('%.0f', PRED[i])) every ::0::0 with labels offset 0, 0.8 notitle, \
       for [i = 1:np] '+' using (i + 0.18):(MEAS[i]):(sprintf('%.0f', MEAS[i])) every ::0::0 with labels offset 0, 0.8 notitle
  eval keystrip
  plot NaN with boxes fs solid 0.85 lc rgb '#bbbbbb' title 'predicted (cost model)', \
       NaN with boxes fs solid 0.85 lc rgb '#555555' title 'measured (median of the frames; the policy''s colour)'
  eval unkeystrip
  unset multiplot
}
