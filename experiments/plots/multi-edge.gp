# experiments/multi-edge.conf: device / K edge nodes / cloud. Latency and
# edge-cloud (backbone) bytes vs K for tile (D3), mincut and offload.
if (!exists('W')) W = 1300
if (!exists('H')) H = 450 * words(models)
load 'experiments/plots/common.gp'
set output out('latency-and-backbone-vs-k')
set multiplot layout words(models), 2 title 'Three tiers: device, K edge nodes on a LAN, cloud (predicted)' font ',12'
set xlabel 'edge nodes K'
set xtics 1
t1 = word(node_types, 1)
# edge<->cloud bytes: tile reports them itself (its bytes_backbone also counts the edge LAN)
bb(p) = strstrt(p, 'tile') == 1 ? column('m_edge_cloud_bytes') : column('bytes_backbone')
do for [m in models] {
  set title m.': latency'
  set ylabel 'latency (ms)'
  set logscale y
  plot for [p in policies] csv using (sel(m, p, t1) ? column('x') : NaN):'latency_ms' title p
  set title m.': edge-cloud traffic per frame'
  set ylabel 'edge <-> cloud bytes (kB)'
  unset logscale y
  set yrange [0:*]
  plot for [p in policies] csv using (sel(m, p, t1) ? column('x') : NaN):(bb(p) / 1000) title p
  set autoscale y
}
unset multiplot
