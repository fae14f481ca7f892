# Tick marks of a log y axis from Ylo to Yhi: 10^{k} labels where the axis
# spans more than three decades, plain numbers in 1-2-5 steps (finer on
# shorter axes) where it spans under two, so a short axis still has labels;
# gnuplot's own in between.
set ytics autofreq
set format y '%g'
if (Ylo > 0 && Yhi / Ylo > 1000) {
  set format y '10^{%L}'
} else {
  if (Ylo > 0 && Yhi / Ylo < 100) {
    set ytics ()
    r = Yhi / Ylo
    steps = r < 3 ? '1 1.2 1.5 2 2.5 3 4 5 6 8' : r < 10 ? '1 1.5 2 3 4 5 7' : r < 30 ? '1 2 3 5' : '1 2 5'
    do for [e = floor(log10(Ylo)):ceil(log10(Yhi))] {
      do for [f in steps] {
        v = real(f) * 10.0**e
        if (v >= Ylo / 1.2 && v <= Yhi * 1.2) { set ytics add (sprintf('%g', v) v) }
      }
    }
  }
}
