# experiments/multi-edge.conf: device / K edge nodes / cloud. Latency and
# edge-cloud (backbone) bytes vs K for tile (D3), mincut and offload.
if (!exists('W')) W = 1300
if (!exists('H')) H = 60 + 400 * words(models)
load 'experiments/plots/common.gp'
nm = words(models)
np = words(policies)
t1 = word(node_types, 1)
# edge<->cloud bytes: tile reports them itself (its bytes_backbone also counts the edge LAN)
bb(p) = strstrt(p, 'tile') == 1 ? column('m_edge_cloud_bytes') : column('bytes_backbone')
# the two-site policies plan against edge0 unless told server=cloud
metitle(p) = p eq 'tile' ? 'tile (D3, all K edges)' : strstrt(p, ':') == 0 ? p.' to edge0' : ptitle(p)
do for [T in terms] {
  eval setterm(T)
  set output out('latency-and-backbone-vs-k')
  set multiplot title "Three tiers: a phone, K Jetson Nano edge nodes on a 1 Gbit/s LAN, a cloud GPU (predicted)\n50 Mbit/s access link, 20 Mbit/s edge-cloud link" font ',12'
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
    gcol = 'latency_ms'
    gval(p) = column(gcol)
    load 'experiments/plots/same.gp'
    set title mname(m).', latency'.NOTE noenhanced
    set ylabel 'latency (ms)'
    set logscale y
    set yrange [Ylo / 1.15 : Yhi * 1.15]
    load 'experiments/plots/logy.gp'
    eval grid(mi, 1)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):'latency_ms' \
           lt pstyle(word(policies, i)) notitle
    gval(p) = bb(p) / 1000
    load 'experiments/plots/same.gp'
    set title mname(m).', edge-cloud traffic per frame'.NOTE noenhanced
    set ylabel 'edge <-> cloud bytes (kB)'
    unset logscale y
    set ytics autofreq
    set format y '%g'
    if (EMPTY) { set yrange [0 : 1] } else { set yrange [0 : *] }
    eval grid(mi, 2)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? column('x') : NaN):(bb(word(policies, i)) / 1000) \
           lt pstyle(word(policies, i)) notitle
    set autoscale y
  }
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title metitle(word(policies, i))
  eval unkeystrip
  unset multiplot
}
