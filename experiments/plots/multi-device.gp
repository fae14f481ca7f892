# experiments/multi-device.conf: N devices sharing one edge server (DDS).
# Per-device mean latency for the equilibrium, equal shares and fixed-speed
# min cut; rounds to equilibrium and server utilisation.
if (!exists('W')) W = 1300
if (!exists('H')) H = 80 + 380 * words(models)
load 'experiments/plots/common.gp'
nm = words(models)
t1 = word(node_types, 1)
# the three allocations: the equilibrium drawn solid, the baselines dashed and
# dotted with open points over it, so each stays visible where they coincide
set linetype 31 lc rgb '#0072B2' lw 2.5 pt 7 ps 0.9 dt 1
set linetype 32 lc rgb '#D55E00' lw 1.5 pt 8 ps 1.4 dt (8, 4)
set linetype 33 lc rgb '#009E73' lw 1.5 pt 4 ps 1.6 dt (2, 3)
set linetype 34 lc rgb '#000000' lw 1.5 pt 5 ps 0.9 dt 1
set linetype 35 lc rgb '#56B4E9' lw 2.0 pt 6 ps 1.2 dt (6, 3)
array MC[3] = ['m_mean_ms', 'm_equal_mean_ms', 'm_fixed_mean_ms']
array MT[3] = ['DDS equilibrium', 'equal shares', 'fixed-speed mincut']
do for [T in terms] {
  eval setterm(T)
  set output out('dds-vs-devices')
  set multiplot title "N phones sharing one edge CPU server (DDS resource game), predicted\nthe phones' uplinks are 3G, 4G, Wi-Fi and 100 Mbit/s in turn" font ',12'
  GR = nm
  GC = 2
  GB = 95.0 / H
  GT = 1 - 95.0 / H
  GY = 100.0 / H
  GX = 0.12
  GRM = 0.93
  set xlabel xlabel_text noenhanced
  set logscale x 2
  xmax = 1
  do for [k = 1:words(xs)] { xmax = real(word(xs, k)) > xmax ? real(word(xs, k)) : xmax }
  set xrange [0.85 : xmax * 1.15]
  do for [mi = 1:nm] {
    m = word(models, mi)
    nok = 0
    stats csv using (sel(m, 'dds', t1) ? (nok = nok + 1, 1) : 1) nooutput
    set title mname(m).', mean latency per device'.(nok ? '' : "\n(no successful point: see results.csv)") noenhanced
    set ylabel 'latency (ms)'
    unset y2tics
    unset y2label
    set ytics mirror autofreq
    if (nok) { set yrange [*:*] } else { set yrange [0 : 1] }
    eval grid(mi, 1)
    plot for [k = 1:3] csv using (sel(m, 'dds', t1) ? column('x') : NaN):(column(MC[k])) lt 30 + k notitle
    set title mname(m).', best-response rounds and server utilisation' noenhanced
    rmax = 0
    stats csv using (sel(m, 'dds', t1) ? (rmax = column('m_rounds') > rmax ? column('m_rounds') : rmax, 1) : 1) nooutput
    set ylabel 'rounds to the equilibrium'
    set yrange [0 : rmax + 1]
    set ytics nomirror 1
    set y2label 'server utilisation (share in use)'
    set y2tics 0.2
    set y2range [0 : 1.05]
    eval grid(mi, 2)
    plot csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_rounds' lt 34 notitle, \
         csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_server_util' axes x1y2 lt 35 notitle
  }
  unset y2tics
  unset y2label
  eval keystrip
  plot for [k = 1:3] NaN with linespoints lt 30 + k title MT[k], \
       NaN with linespoints lt 34 title 'rounds (left)', NaN with linespoints lt 35 title 'server utilisation (right)'
  eval unkeystrip
  unset multiplot
}
