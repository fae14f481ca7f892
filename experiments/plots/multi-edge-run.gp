# experiments/multi-edge-run.conf: device / K edge nodes / cloud, measured
# (mecbed run over experiments/topologies/tier{K}.ini). Per model: latency
# (left) and edge-cloud (backbone) bytes per frame (right) vs K for tile (D3,
# all K edges) and the baselines planned against the cloud; solid with
# points: measured (latency: median frame; bytes: what the link emulator
# carried, headers and control messages included), dashed: predicted (the
# plan's latency; its payload on the edge-cloud link).
if (!exists('W')) W = 1300
if (!exists('H')) H = 60 + 400 * words(models)
load 'experiments/plots/common.gp'
nm = words(models)
np = words(policies)
t1 = word(node_types, 1)
metitle(p) = p eq 'tile' ? 'tile (D3, all K edges)' : strstrt(p, ':') == 0 ? p.' to edge0' : ptitle(p)
do for [T in terms] {
  eval setterm(T)
  set output out('multi-edge-measured')
  set multiplot title "Three tiers measured: a phone, K Jetson Nano edge nodes on a 1 Gbit/s LAN, a cloud GPU\nsolid: measured, dashed: predicted; 50 Mbit/s access link, 20 Mbit/s edge-cloud link" font ',12'
  GR = nm
  GC = 2
  GB = 95.0 / H
  GT = 1 - 95.0 / H
  GY = 110.0 / H
  set xlabel xlabel_text noenhanced
  set xtics 1
  set xrange [0.85 : words(xs) + 0.15]
  do for [mi = 1:nm] {
    m = word(models, mi)
    gm = m
    gt = t1
    gcol = 'measured_ms'
    gval(p) = column(gcol)
    load 'experiments/plots/same.gp'
    # the predictions share the axis
    if (!EMPTY) {
      stats csv using (strcol('model') eq m && strcol('ok') eq '1' && column('latency_ms') > 0 ? column('latency_ms') : NaN) nooutput
      Ylo = STATS_min < Ylo ? STATS_min : Ylo
      Yhi = STATS_max > Yhi ? STATS_max : Yhi
    }
    set title mname(m).', latency'.NOTE noenhanced
    set ylabel 'latency per frame (ms)'
    set logscale y
    if (EMPTY) { set yrange [1 : 10] } else { set yrange [Ylo / 1.15 : Yhi * 1.15] }
    load 'experiments/plots/logy.gp'
    eval grid(mi, 1)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):'latency_ms' \
           with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):'measured_ms' \
           with linespoints lt pstyle(word(policies, i)) notitle
    gval(p) = column('m_edge_cloud_bytes_measured') / 1000
    load 'experiments/plots/same.gp'
    set title mname(m).', edge-cloud traffic per frame'.NOTE noenhanced
    set ylabel 'edge <-> cloud bytes (kB)'
    unset logscale y
    set ytics autofreq
    set format y '%g'
    if (EMPTY) { set yrange [0 : 1] } else { set yrange [0 : *] }
    eval grid(mi, 2)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):(column('m_edge_cloud_bytes') / 1000) \
           with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):(column('m_edge_cloud_bytes_measured') / 1000) \
           with linespoints lt pstyle(word(policies, i)) notitle
    set autoscale y
  }
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title metitle(word(policies, i)).', measured', \
       NaN with lines lc rgb '#555555' lw 1 dt (5, 4) title 'predicted (dashed)'
  eval unkeystrip
  unset multiplot
}
