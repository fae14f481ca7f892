# experiments/decision-time.conf: decision time of mincut and cic vs graph
# size; zoo models as labelled points, generated DAGs as lines.
if (!exists('W')) W = 1100
if (!exists('H')) H = 700
load 'experiments/plots/common.gp'
set output out('decision-time-vs-ops')
set title 'Policy decision time vs graph size (median over re-plans at 11 uplink rates; offline init excluded)'
set logscale xy
set xlabel 'graph size (ops)'
set ylabel 'decision time (us)'
set key top left box opaque
isdag(s) = strstrt(s, 'dag') == 1
plot for [p in policies] csv using (strcol('policy') eq p && isdag(strcol('model')) && strcol('ok') eq '1' ? column('ops') : NaN):'decision_us' \
       with linespoints lw 2 title p.', generated DAGs', \
     for [p in policies] csv using (strcol('policy') eq p && !isdag(strcol('model')) && strcol('ok') eq '1' ? column('ops') : NaN):'decision_us' \
       with points pt 7 ps 1.2 title p.', zoo models', \
     csv using (strcol('policy') eq word(policies, 1) && !isdag(strcol('model')) ? column('ops') : NaN):'decision_us':(strcol('model')) \
       with labels offset 0,1 font ',8' notitle
