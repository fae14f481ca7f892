# experiments/bandwidth.conf: latency and device energy vs uplink, and where
# tiny YOLOv2's min cut sits.
if (!exists('W')) W = 1200
if (!exists('H')) H = 800
load 'experiments/plots/common.gp'
nm = words(models)
cols = nm > 2 ? 2 : nm
rows = int((nm + cols - 1) / cols)
t1 = word(node_types, 1)

# one figure per device type (the first gets the plain name)
dev(t) = strstrt(t, '/') > 0 ? t[1:strstrt(t, '/') - 1] : t
do for [t in node_types] {
do for [what in 'latency energy'] {
  set output out(what.'-vs-uplink'.(t eq t1 ? '' : '-'.dev(t)))
  set multiplot layout rows, cols title sprintf('%s vs uplink (device/edge = %s, RTT 20 ms; predicted by the cost model)', \
      what eq 'latency' ? 'Latency' : 'Device energy', t) font ',12'
  set logscale xy
  set xlabel 'uplink rate (Mbit/s)'
  set ylabel what eq 'latency' ? 'latency (ms)' : 'device energy (mJ)'
  col = what eq 'latency' ? 'latency_ms' : 'energy_mj'
  do for [i = 1:nm] {
    m = word(models, i)
    set title m
    plot for [p in policies] csv using (sel(m, p, t) ? column('x') : NaN):(column(col)) title p
  }
  unset multiplot
  unset logscale
}
}

# The DADS check: where tiny YOLOv2's min cut sits (ops before the cut on the
# device) as the uplink changes, for every device type of the sweep.
if (strstrt(models, 'tiny_yolov2') > 0) {
  set output out('tinyyolo-mincut-position')
  set multiplot layout 1, 1
  set title 'Tiny YOLOv2: where the DADS min cut lies vs uplink (0 = all on the edge, 31 = all on the device)'
  set logscale x
  set xlabel 'uplink rate (Mbit/s)'
  set ylabel 'ops on the device before the cut (of 31)'
  set yrange [-1:33]
  plot for [t in node_types] csv using (sel('tiny_yolov2', 'mincut', t) ? column('x') : NaN):(column('device_ops')) \
       title 'device/edge '.t lw 2, \
       for [t in node_types] csv using (sel('tiny_yolov2', 'mincut', t) ? column('x') : NaN):(column('device_ops')):(strcol('cut_after') eq '(all on device)' ? '' : strcol('cut_after')) \
       with labels offset 0,1 font ',8' notitle
  unset multiplot
}
