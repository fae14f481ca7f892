# Which policies draw the same series in one panel. Set before `load`:
#   gm, gt   the panel's model and node types
#   gcol     the column drawn (e.g. 'latency_ms'); or define gval(p), the
#            value drawn for policy p on the current row (default column(gcol))
# Sets, for i = 1..words(policies):
#   LEAD[i]  the first policy whose series equals policy i's at every x (to 4
#            significant digits, what a reader can see); i where none does
#   SAME     a line for the panel, e.g. 'mincut = layerwise, cic, tile'
#            ('' where no two series coincide)
#   NOTE     SAME as a second title line, or a note that no point succeeded
#   EMPTY    1 where no point of the panel succeeded
#   Ylo, Yhi the smallest positive and the largest value of the panel's series
#   Ymm      the largest of the series' smallest values (the lowest an axis may
#            be cut and still show a part of every series)
# Only the first policy of a group is drawn; SAME names the others.
np = words(policies)
array SIG[np]
array LEAD[np]
Ylo = 1e300
Yhi = -1e300
Ymm = -1e300
do for [i = 1:np] {
  s = ''
  smin = 1e300
  stats csv using (sel(gm, word(policies, i), gt) ? (s = s.sprintf('%.4g;', gval(word(policies, i))), \
                   smin = (gval(word(policies, i)) < smin) ? gval(word(policies, i)) : smin, \
                   Ylo = (gval(word(policies, i)) > 0 && gval(word(policies, i)) < Ylo) ? gval(word(policies, i)) : Ylo, \
                   Yhi = (gval(word(policies, i)) > Yhi) ? gval(word(policies, i)) : Yhi, 1) : 1) nooutput
  SIG[i] = s
  Ymm = (smin < 1e300 && smin > Ymm) ? smin : Ymm
  LEAD[i] = i
  do for [j = 1:i - 1] {
    if (LEAD[i] == i && LEAD[j] == j && s ne '' && SIG[j] eq s) { LEAD[i] = j }
  }
}
SAME = ''
do for [i = 1:np] {
  g = ''
  do for [j = i + 1:np] {
    if (LEAD[j] == i) { g = g.(g eq '' ? '' : ', ').ptitle(word(policies, j)) }
  }
  if (g ne '') { SAME = SAME.(SAME eq '' ? '' : '; ').ptitle(word(policies, i)).' = '.g }
}
# NOTE: the panel title's second line (SAME, or that nothing succeeded)
NOTE = SAME eq '' ? '' : "\n(same values: ".SAME.')'
# a panel without a valid row (its points failed) still gets a usable range
EMPTY = Yhi < Ylo
if (EMPTY) { Ylo = 1; Yhi = 10; Ymm = 1; NOTE = "\n(no successful point: see results.csv)" }
