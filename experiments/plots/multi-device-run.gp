# experiments/multi-device-run.conf: N devices sharing one edge node, measured
# (mecbed run --devices N). Per model two panels. Left: the devices' mean
# latency against N, solid with points: measured (each device's median
# frame, averaged), dashed: predicted (dds and dds:shares=equal: each plan
# under its share of the edge, DDS's model; mincut: the plan plus the
# first-come-first-served sharing model; docs/runtime.md, "Several
# devices"), dotted: the slowest device, measured. Right: the DDS advantage,
# each other policy's mean latency over dds's at the same N, measured (solid)
# and predicted (dashed); 1 is no gain.
if (!exists('W')) W = 160 + 2 * 520 * (words(models) > 1 ? words(models) : 1)
if (!exists('H')) H = 560
load 'experiments/plots/common.gp'
# policies in words: the equal-shares baseline is dds with an option
ptitle(p) = p eq 'dds:shares=equal' ? 'equal shares (dds:shares=equal)' : \
            p eq 'dds' ? 'dds (equilibrium shares)' : \
            strstrt(p, ':server=') > 0 ? base(p).' to the '.p[strstrt(p, ':server=') + 8:] : p
# and its own style (black, dashed, open triangles: no black policy, local, is in this figure)
set linetype 30 lc rgb '#000000' lw 1.5 pt 8 ps 1.2 dt (5, 4)
pstyle(p) = p eq 'dds:shares=equal' ? 30 : widx(base(p), known) > 0 ? widx(base(p), known) + (strstrt(p, ':') > 0 ? 10 : 0) : 20 + widx(p, policies)
nm = words(models)
np = words(policies)
nx = words(xs)
t1 = word(node_types, 1)
di = widx('dds', policies)
xlo = 1e300
xhi = 0
array XV[nx]
do for [k = 1:nx] {
  v = real(word(xs, k))
  XV[k] = v
  xlo = v < xlo ? v : xlo
  xhi = v > xhi ? v : xhi
}
# per model, policy and x: the mean measured and predicted latency
array MEAS[np * nx]
array PRED[np * nx]
do for [T in terms] {
  eval setterm(T)
  set output out('multi-device-measured')
  set multiplot title "N devices sharing one edge node, measured: dds and equal shares at their shares of the node, mincut first come, first served\nleft: solid measured mean per device, dashed predicted, dotted the slowest device; right: mean latency over dds's (the DDS advantage)" font ',12'
  GR = 1
  GC = 2 * nm
  GL = 0.3 / (nm + 1) < 0.07 ? 0.3 / (nm + 1) : 0.07
  GX = 0.07
  GB = 110.0 / H
  GT = 1 - 95.0 / H
  GY = 110.0 / H
  set xtics ()
  do for [k = 1:nx] { set xtics add (word(xs, k) XV[k]) }
  set xlabel xlabel_text noenhanced
  unset key
  do for [mi = 1:nm] {
    m = word(models, mi)
    unset logscale
    set autoscale
    gm = m
    gt = t1
    gcol = 'measured_ms'
    gval(p) = column(gcol)
    load 'experiments/plots/same.gp'
    # the predictions and the slowest device share the axis
    do for [c in 'latency_ms m_measured_max_ms'] {
      stats csv using (strcol('model') eq m && strcol('ok') eq '1' && column(c) > 0 ? column(c) : NaN) nooutput
      if (STATS_records > 0 && !EMPTY) {
        Ylo = STATS_min < Ylo ? STATS_min : Ylo
        Yhi = STATS_max > Yhi ? STATS_max : Yhi
      }
    }
    set title mname(m).NOTE noenhanced
    set ylabel 'latency per frame (ms)'
    set logscale x 2
    set xrange [xlo / 1.25 : xhi * 1.25]
    set yrange [0 : Yhi * 1.1]
    eval grid(1, 2 * mi - 1)
    plot for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('latency_ms')) \
           with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('m_measured_max_ms')) \
           with lines lt pstyle(word(policies, i)) lw 1 dt (1, 3) notitle, \
         for [i = 1:np] csv using (LEAD[i] == i && sel(m, word(policies, i), t1) ? real(strcol('x')) : NaN):(column('measured_ms')) \
           with linespoints lt pstyle(word(policies, i)) notitle
    # the DDS advantage: each policy's mean over dds's at each N
    do for [i = 1:np] {
      do for [k = 1:nx] {
        mv = NaN
        pv = NaN
        stats csv using (sel(m, word(policies, i), t1) && real(strcol('x')) == XV[k] ? \
                         (mv = column('measured_ms'), pv = column('latency_ms'), 1) : 1) nooutput
        MEAS[(i - 1) * nx + k] = mv
        PRED[(i - 1) * nx + k] = pv
      }
    }
    Rlo = 1
    Rhi = 1
    # one block per policy, a header line first (common.gp reads column heads):
    # x, measured ratio, predicted ratio (none for dds)
    set print $RAT
    do for [i = 1:np] {
      print 'x,measured,predicted'
      do for [k = 1:nx] {
        j = (i - 1) * nx + k
        d = (di - 1) * nx + k
        rm = di > 0 && i != di ? MEAS[j] / MEAS[d] : NaN
        rp = di > 0 && i != di ? PRED[j] / PRED[d] : NaN
        if (rm == rm) { Rlo = rm < Rlo ? rm : Rlo; Rhi = rm > Rhi ? rm : Rhi }
        if (rp == rp) { Rlo = rp < Rlo ? rp : Rlo; Rhi = rp > Rhi ? rp : Rhi }
        print sprintf('%g,%s,%s', XV[k], rm == rm ? sprintf('%.6g', rm) : '?', rp == rp ? sprintf('%.6g', rp) : '?')
      }
      print ''
      print ''
    }
    unset print
    set datafile missing '?'
    set title mname(m).": the DDS advantage\n(mean latency over dds's; above 1: dds is faster)" noenhanced
    set ylabel 'mean latency / dds mean latency'
    set yrange [(Rlo < 0.97 ? Rlo * 0.97 : 0.95) : (Rhi > 1.05 ? Rhi * 1.03 : 1.08)]
    eval grid(1, 2 * mi)
    set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#999999' dt (2, 2)
    plot for [i = 1:np] $RAT index (i - 1) using 1:3 with lines lt pstyle(word(policies, i)) lw 1 dt (5, 4) notitle, \
         for [i = 1:np] $RAT index (i - 1) using 1:2 with linespoints lt pstyle(word(policies, i)) notitle, \
         for [i = 1:np] $RAT index (i - 1) using 1:2:(sprintf('%.2fx', $2)) with labels offset 0, (i % 2 ? -1.3 : 1) font ',9' \
           tc rgb '#333333' notitle
    unset arrow 1
  }
  eval keystrip
  plot for [i = 1:np] NaN with linespoints lt pstyle(word(policies, i)) title ptitle(word(policies, i)).', measured', \
       NaN with lines lc rgb '#555555' lw 1 dt (5, 4) title 'predicted (dashed)', \
       NaN with lines lc rgb '#555555' lw 1 dt (1, 3) title 'slowest device (dotted)'
  eval unkeystrip
  unset multiplot
}
