# Shared by every experiment's plot script. mecbed sweep runs each script
# twice (term='png', term='svg') with these variables set:
#   dir       the results directory (results.csv, frames.csv; figures go here)
#   term      png or svg
#   quick     1 for a --quick run
#   xname     the experiment's x_name
#   models, dags, policies, node_types, xs, variants: the axes, as word lists
# Rows are selected with string comparisons on named columns; NaN marks a row
# that is not in a series (set datafile missing NaN keeps lines joined).
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
csv = dir.'/results.csv'
fr = dir.'/frames.csv'
if (term eq 'png') { set terminal pngcairo size W,H noenhanced font 'DejaVu Sans,10' } \
else { set terminal svg size W,H noenhanced font 'DejaVu Sans,10' dynamic }
out(name) = sprintf('%s/%s.%s', dir, name, term)
set grid lc rgb '#dddddd'
# a little room above and below, so points on the extremes stay off the frame
set offsets 0, 0, graph 0.04, graph 0.04
set key outside right top box opaque samplen 2
set style data linespoints
set pointsize 0.8
# rows of one model, policy and node types
sel(m, p, t) = strcol('model') eq m && strcol('policy') eq p && strcol('node_types') eq t && strcol('ok') eq '1'
