# experiments/multi-device.conf: N devices sharing one edge server (DDS).
# Per-device mean latency for the equilibrium, equal shares and fixed-speed
# min cut; rounds to equilibrium and server utilisation.
if (!exists('W')) W = 1300
if (!exists('H')) H = 420 * words(models)
load 'experiments/plots/common.gp'
set output out('dds-vs-devices')
set multiplot layout words(models), 2 title 'N devices sharing one edge server (predicted)' font ',12'
set xlabel 'devices N'
set logscale x 2
t1 = word(node_types, 1)
do for [m in models] {
  set title m.': mean per-device latency'
  set ylabel 'latency (ms)'
  unset y2tics
  unset y2label
  set ytics mirror
  plot csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_mean_ms' lw 2 title 'dds equilibrium', \
       csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_equal_mean_ms' title 'equal shares', \
       csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_fixed_mean_ms' title 'fixed-speed mincut'
  set title m.': rounds to equilibrium and server utilisation'
  set ylabel 'best-response rounds'
  set y2label 'server utilisation (share in use)'
  set ytics nomirror
  set y2tics
  set y2range [0:1.05]
  plot csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_rounds' title 'rounds', \
       csv using (sel(m, 'dds', t1) ? column('x') : NaN):'m_server_util' axes x1y2 title 'server utilisation'
}
unset multiplot
