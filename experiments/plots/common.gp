# Shared by every experiment's plot script. mecbed sweep runs each script
# twice (term='png', term='svg') with these variables set:
#   dir       the results directory (results.csv, frames.csv; figures go here)
#   term      png or svg
#   quick     1 for a --quick run
#   xname     the experiment's x_name (what its variable x is)
#   xunit     x's unit (x_unit; '' for a count or a name): xlabel_text joins them
#   models, dags, policies, node_types, xs, variants: the axes, as word lists
# Rows are selected with string comparisons on named columns; NaN marks a row
# that is not in a series (set datafile missing NaN keeps lines joined).
#
# Each script draws its figures once per terminal in `terms`:
#   do for [T in terms] { eval setterm(T) ... set output out('name') ... }
# The svg pass also writes a PDF (pdfcairo) where gnuplot has it, so PNG, SVG
# and PDF come from the same commands.
#
# Text: the terminals are enhanced (for 10^{k} tick labels); every string that
# comes from the data (model, policy, trace names) is drawn `noenhanced`, so an
# underscore stays an underscore.
set datafile separator comma
set datafile columnheaders
set datafile missing NaN
csv = dir.'/results.csv'
if (!exists('xname')) xname = 'x'
if (!exists('xunit')) xunit = ''
xlabel_text = xunit eq '' ? xname : sprintf('%s (%s)', xname, xunit)
fr = dir.'/frames.csv'
havepdf = strstrt(GPVAL_TERMINALS, ' pdfcairo ') > 0
terms = (term eq 'svg' && havepdf) ? 'svg pdf' : term
# The PDF is the PNG scaled to a paper's text width: PDFW points wide (504 pt,
# 7 in, two-column full width; a PNG pixel was one point, a 17-22 in page),
# fonts, lines and points scaled with it, so the three show the same figure.
if (!exists('PDFW')) PDFW = 504.0
pk = PDFW / W < 1 ? PDFW / W : 1
# (each terminal pass starts from the default panel margins: a figure's GL
# must not leak into the next pass's first figure)
setterm(T) = gridreset.'; '.(T eq 'png' ? sprintf("set terminal pngcairo size %d,%d enhanced font 'DejaVu Sans,10'", W, H) : \
             T eq 'svg' ? sprintf("set terminal svg size %d,%d enhanced font 'DejaVu Sans,10' dynamic background '#ffffff'", W, H) : \
             sprintf("set terminal pdfcairo size %.3fin,%.3fin enhanced font 'DejaVu Sans,10' fontscale %.4f linewidth %.4f pointscale %.4f", \
                     W * pk / 72.0, H * pk / 72.0, pk, 2 * pk, 1.2 * pk))
out(name) = sprintf('%s/%s.%s', dir, name, T)

set grid lc rgb '#e4e4e4' lw 1
set border lc rgb '#444444'
# a little room above and below, so points on the extremes stay off the frame;
# no extension of a log axis to the next full decade (no empty decades)
set offsets 0, 0, graph 0.04, graph 0.04
set autoscale noextend
set style data linespoints
set pointsize 0.9
set key noenhanced

# ---- one style per policy, the same in every figure ----
# Okabe & Ito's colour-blind-safe palette, each colour with its own point
# type and dash type, so series stay apart in grey print and where they touch.
set linetype 1 lc rgb '#000000' lw 1.5 pt 5  ps 0.8 dt 1          # local: black, filled square
set linetype 2 lc rgb '#D55E00' lw 1.5 pt 9  ps 1.0 dt 1          # offload: vermillion, triangle
set linetype 3 lc rgb '#56B4E9' lw 2.0 pt 6  ps 1.3 dt (8, 4)     # layerwise: sky blue, open circle, dashed
set linetype 4 lc rgb '#0072B2' lw 1.5 pt 7  ps 0.8 dt 1          # mincut: blue, filled circle
set linetype 5 lc rgb '#E69F00' lw 2.0 pt 4  ps 1.3 dt (2, 3)     # cic: orange, open square, dotted
set linetype 6 lc rgb '#009E73' lw 1.5 pt 13 ps 1.0 dt 1          # tile: bluish green, diamond
set linetype 7 lc rgb '#CC79A7' lw 1.5 pt 11 ps 1.0 dt 1          # oplevel: reddish purple, triangle down
set linetype 8 lc rgb '#7f7f7f' lw 1.5 pt 8  ps 1.2 dt (6, 3, 2, 3) # dds: grey, open triangle, dash-dot
# a policy with options (e.g. mincut:server=cloud): its base colour, dashed, open points
array OI[8] = ['#000000', '#D55E00', '#56B4E9', '#0072B2', '#E69F00', '#009E73', '#CC79A7', '#7f7f7f']
array OPT[8] = [4, 8, 6, 6, 4, 12, 10, 8]
do for [i = 1:8] {
  set linetype 10 + i lc rgb OI[i] lw 1.5 pt OPT[i] ps 1.2 dt (5, 4)
}
known = 'local offload layerwise mincut cic tile oplevel dds'
base(p) = strstrt(p, ':') > 0 ? p[1:strstrt(p, ':') - 1] : p
widx(w, list) = sum [k = 1:words(list)] (word(list, k) eq w ? k : 0)
# the linetype of a policy; others (plugins) cycle through 21.. (gnuplot's defaults)
pstyle(p) = widx(base(p), known) > 0 ? widx(base(p), known) + (strstrt(p, ':') > 0 ? 10 : 0) : 20 + widx(p, policies)
# a policy's name in a legend: options in words where we know them
ptitle(p) = strstrt(p, ':server=') > 0 ? base(p).' to the '.p[strstrt(p, ':server=') + 8:] : p

# ---- names in words ----
mname(m) = m eq 'vgg16' ? 'VGG16' : m eq 'resnet18' ? 'ResNet-18' : m eq 'resnet50' ? 'ResNet-50' : \
           m eq 'resnet152' ? 'ResNet-152' : m eq 'mobilenetv2' ? 'MobileNetV2' : \
           m eq 'tiny_yolov2' ? 'Tiny YOLOv2' : m eq 'alexnet' ? 'AlexNet' : m eq 'googlenet' ? 'GoogLeNet' : \
           m eq 'densenet121' ? 'DenseNet-121' : m eq 'squeezenet' ? 'SqueezeNet' : m
nname(n) = n eq 'phone' ? 'phone' : n eq 'rpi4' ? 'Raspberry Pi 4' : n eq 'jetson-nano' ? 'Jetson Nano' : \
           n eq 'jetson-nano-5w' ? 'Jetson Nano (5 W)' : n eq 'edge-cpu' ? 'edge CPU server' : \
           n eq 'edge-gpu' ? 'edge GPU server' : n eq 'cloud-gpu' ? 'cloud GPU' : n eq 'this' ? 'this machine' : n
# node_types 'DEVICE/SERVER' -> 'phone device, edge CPU server'
tname(t) = strstrt(t, '/') > 0 ? nname(t[1:strstrt(t, '/') - 1]).' device, '.nname(t[strstrt(t, '/') + 1:]) : nname(t)
# a file path -> its name without folder and extension
basename(s) = strstrt(s, '/') > 0 ? basename(s[strstrt(s, '/') + 1:]) : s
stem(s) = strstrt(basename(s), '.') > 1 ? basename(s)[1:strstrt(basename(s), '.') - 1] : basename(s)

# the value same.gp compares (a script may redefine it)
gval(p) = column(gcol)

# rows of one model, policy and node types
sel(m, p, t) = strcol('model') eq m && strcol('policy') eq p && strcol('node_types') eq t && strcol('ok') eq '1'

# ---- panels and one shared legend ----
# A figure of GR x GC panels between screen margins GL, GRM (left, right), GB,
# GT (bottom, top) with gaps GX, GY, and a legend strip along the bottom:
#   eval grid(r, c)   before the plot of panel (r, c)
#   eval keystrip     then one `plot for [...] NaN with linespoints ... title`
#                     draws every series' style once, across the whole width
#   eval unkeystrip   before the next figure
# GL..GY are screen fractions; set them (or keep these) before the figure.
gridreset = 'GL = 0.08; GRM = 0.98; GB = 0.12; GT = 0.88; GX = 0.08; GY = 0.12'
eval gridreset
pw(c) = (GRM - GL - (c - 1) * GX) / c
ph(r) = (GT - GB - (r - 1) * GY) / r
grid(r, c) = sprintf('set lmargin at screen %g; set rmargin at screen %g; set tmargin at screen %g; set bmargin at screen %g', \
    GL + (c - 1) * (pw(GC) + GX), GL + (c - 1) * (pw(GC) + GX) + pw(GC), \
    GT - (r - 1) * (ph(GR) + GY), GT - (r - 1) * (ph(GR) + GY) - ph(GR))
keystrip = 'set lmargin at screen 0.01; set rmargin at screen 0.99; set bmargin at screen 0.0; set tmargin at screen 0.04;' . \
    'unset border; unset tics; unset grid; unset xlabel; unset ylabel; unset y2label; unset title; unset logscale; unset label;' . \
    'set xrange [0:1]; set yrange [0:1]; set y2range [0:1]; set key at screen 0.5, 0.005 center bottom horizontal maxrows 1 samplen 3 width 0 noenhanced'
unkeystrip = 'set border; set tics; set grid; unset key; set autoscale; set key noenhanced'
