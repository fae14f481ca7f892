# experiments/bandwidth.conf: latency and device energy vs uplink, and where
# tiny YOLOv2's min cut sits.
if (!exists('W')) W = 1200
if (!exists('H')) H = 800
load 'experiments/plots/common.gp'
nm = words(models)
cols = nm > 2 ? 2 : nm
rows = int((nm + cols - 1) / cols)
t1 = word(node_types, 1)
np = words(policies)
# the x range: the measured rates, a little room either side
xlo = 1e300
xhi = 0
do for [k = 1:words(xs)] {
  v = real(word(xs, k))
  xlo = v < xlo ? v : xlo
  xhi = v > xhi ? v : xhi
}
# from the decade below the lowest rate, so its tick is labelled
xlo0 = 10.0**floor(log10(xlo))
# a y axis this many times the local latency (energy) shows every crossing;
# offload's seconds at 0.13 Mbit/s would otherwise take three more decades
# (higher where a series would otherwise not be seen at all)
capx = 10

# one figure per device type (the first gets the plain name)
dev(t) = strstrt(t, '/') > 0 ? t[1:strstrt(t, '/') - 1] : t
do for [T in terms] {
eval setterm(T)
do for [t in node_types] {
do for [what in 'latency energy'] {
  set output out(what.'-vs-uplink'.(t eq t1 ? '' : '-'.dev(t)))
  set multiplot title sprintf("%s vs uplink, predicted by the cost model\n%s, RTT 20 ms; axis cut at %dx local or above, series above it leave the top", \
      what eq 'latency' ? 'Latency' : 'Device energy', tname(t), capx) font ',12'
  GR = rows
  GC = cols
  GB = 95.0 / H
  GT = 1 - 95.0 / H
  GY = 115.0 / H
  set logscale xy
  set xrange [xlo0 : xhi * 1.25]
  set xlabel xlabel_text noenhanced
  set ylabel what eq 'latency' ? 'latency (ms)' : 'device energy (mJ)'
  col = what eq 'latency' ? 'latency_ms' : 'energy_mj'
  unset key
  do for [mi = 1:nm] {
    m = word(models, mi)
    gm = m
    gt = t
    gcol = col
    load 'experiments/plots/same.gp'
    lmax = -1
    stats csv using (sel(m, 'local', t) ? (lmax = column(col) > lmax ? column(col) : lmax, 1) : 1) nooutput
    # cut at capx x local, or just above the lowest point of the highest series
    cut = capx * lmax > 1.5 * Ymm ? capx * lmax : 1.5 * Ymm
    Yhi = (lmax > 0 && Yhi > cut) ? cut : Yhi
    set yrange [Ylo / 1.15 : Yhi * 1.15]
    load 'experiments/plots/logy.gp'
    set title mname(m).NOTE noenhanced
    eval grid(int((mi - 1) / cols) + 1, (mi - 1) % cols + 1)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t) ? column('x') : NaN):(column(col)) \
           lt pstyle(word(policies, i)) notitle
  }
  # the shared legend, below the panels: every policy once, in its style
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title ptitle(word(policies, i))
  eval unkeystrip
  unset multiplot
  unset logscale
  set autoscale y
  set format y '%g'
}
}

# The DADS check: where tiny YOLOv2's min cut sits (ops before the cut on the
# device) as the uplink changes, for every device type of the sweep. The cut
# is a discrete choice made at each measured rate: steps, not slopes; a label
# where the cut moves (the layer it follows and the bytes it sends).
if (strstrt(models, 'tiny_yolov2') > 0) {
  set output out('tinyyolo-mincut-position')
  nops = 0
  stats csv using (strcol('model') eq 'tiny_yolov2' ? (nops = column('ops') > nops ? column('ops') : nops, 1) : 1) nooutput
  set multiplot title "Tiny YOLOv2: where the min cut (DADS) lies vs uplink, predicted\nsteps: the cut chosen at each computed rate (points), held until the next" font ',12'
  GR = 1
  GC = 1
  GL = 0.16
  GRM = 0.97
  GB = 95.0 / H
  GT = 1 - 70.0 / H
  eval grid(1, 1)
  unset title
  set logscale x
  set xrange [xlo0 : xhi * 1.25]
  set xlabel xlabel_text noenhanced
  set ylabel 'ops on the device, before the cut'
  set yrange [-2 : nops + 3]
  set ytics 5, 5, nops - 3
  set ytics add (sprintf('%d (all on the device)', nops) nops, '0 (all on the server)' 0)
  nt = words(node_types)
  # labels left of the middle run right, the others left (none leaves the frame)
  xmid = sqrt(xlo * xhi)
  # a label where the cut moves: `prev` carries the last drawn row's series and cut
  prev = ''
  cutlab(t) = (lab = t.'|'.strcol('cut_after'), L = (lab ne prev) ? \
      (strcol('cut_after') eq '(all on device)' ? 'all on the device' : \
       sprintf('after %s, %.0f kB up', strcol('cut_after'), column('bytes_up') / 1000)) : '', prev = lab, L)
  plot for [k = 1:nt] csv using (sel('tiny_yolov2', 'mincut', word(node_types, k)) ? column('x') : NaN):(column('device_ops')) \
         with steps lt (k == 1 ? 4 : 2) lw 2 dt k notitle, \
       for [k = 1:nt] csv using (sel('tiny_yolov2', 'mincut', word(node_types, k)) ? column('x') : NaN):(column('device_ops')) \
         with points lt (k == 1 ? 4 : 2) pt (k == 1 ? 7 : 9) ps 1.2 notitle, \
       for [k = 1:nt] csv using (sel('tiny_yolov2', 'mincut', word(node_types, k)) && column('x') <= xmid ? column('x') : NaN):(column('device_ops')): \
         (sel('tiny_yolov2', 'mincut', word(node_types, k)) ? cutlab(word(node_types, k).'<') : '') with labels left offset 0.8, (k % 2 == 1 ? 1.0 : -1.0) font ',9' \
         tc lt (k == 1 ? 4 : 2) noenhanced notitle, \
       for [k = 1:nt] csv using (sel('tiny_yolov2', 'mincut', word(node_types, k)) && column('x') > xmid ? column('x') : NaN):(column('device_ops')): \
         (sel('tiny_yolov2', 'mincut', word(node_types, k)) ? cutlab(word(node_types, k).'>') : '') with labels right offset -0.8, (k % 2 == 1 ? 1.0 : -1.0) font ',9' \
         tc lt (k == 1 ? 4 : 2) noenhanced notitle
  eval keystrip
  plot for [k = 1:nt] NaN with linespoints lt (k == 1 ? 4 : 2) pt (k == 1 ? 7 : 9) ps 1.2 lw 2 dt k title tname(word(node_types, k))
  eval unkeystrip
  unset multiplot
  unset logscale
  set autoscale
  set ytics autofreq
}
}
