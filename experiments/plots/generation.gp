# experiments/generation.conf: time per output token and device energy per
# token of each generation policy vs the device-edge round trip.
if (!exists('W')) W = 1200
if (!exists('H')) H = 560
load 'experiments/plots/common.gp'
np = words(policies)
okp(p) = strcol('policy') eq p && strcol('ok') eq '1'
# generation policies: their own styles (Okabe & Ito colours, as common.gp's)
array GC_[8] = ['#000000', '#D55E00', '#0072B2', '#009E73', '#009E73', '#E69F00', '#CC79A7', '#CC79A7']
array GD_[8] = [1, 1, 1, 1, 2, 1, 2, 1]
array GP_[8] = [5, 9, 7, 13, 12, 4, 11, 10]
gknown = 'device edge pipeline galaxy:edges=2 galaxy:edges=4 pd-device speculative:a=0.6 speculative:a=0.8'
gidx(p) = widx(p, gknown) > 0 ? widx(p, gknown) : 1 + (widx(p, policies) - 1) % 8
gtitle(p) = p eq 'device' ? 'device only' : p eq 'edge' ? 'edge only' : p eq 'pipeline' ? 'pipeline (EdgeShard cut)' : \
            strstrt(p, 'galaxy:edges=') == 1 ? 'Galaxy, '.p[14:].' edge nodes' : p eq 'pd-device' ? 'P/D-Device' : \
            strstrt(p, 'speculative:a=') == 1 ? 'speculative, a = '.p[15:] : p
do for [T in terms] {
  eval setterm(T)
  set output out('generation-vs-rtt')
  set multiplot layout 1, 2 title sprintf("%s: predicted per output token vs round trip (50 Mbit/s, phone and edge CPU servers)", \
      word(models, 1) eq "gpt2" ? "GPT-2 small" : word(models, 1)) font ",12"
  set xlabel xlabel_text noenhanced
  set logscale x
  # a tick at every round trip computed
  set xtics ()
  do for [k = 1:words(xs)] { set xtics add (word(xs, k) real(word(xs, k))) }
  set xrange [real(word(xs, 1)) / 1.15 : real(word(xs, words(xs))) * 1.15]
  set key top left font ',9' noenhanced
  do for [what in 'tpot energy'] {
    col = what eq 'tpot' ? 'm_tpot_ms' : 'm_energy_per_token_mj'
    set ylabel what eq 'tpot' ? 'time per output token, TPOT (ms)' : 'device energy per token (mJ)'
    set title what eq 'tpot' ? 'TPOT' : 'device energy (compute, idle, radio)'
    plot for [i = 1:np] csv using (okp(word(policies, i)) ? column('x') : NaN):(column(col)) \
           with linespoints lc rgb GC_[gidx(word(policies, i))] dt GD_[gidx(word(policies, i))] \
           pt GP_[gidx(word(policies, i))] lw 1.6 title gtitle(word(policies, i))
    unset key
  }
  unset multiplot
  unset logscale
  set xtics autofreq
  set autoscale x
}
