#!/bin/sh
# Fails on an include that goes upward (a module including a public header
# of a layer above it) or sideways into another module's private header.
# The layers and which public headers each owns: scripts/layers.txt.
# Tests and benchmarks may include anything (they are white-box).
cd "$(dirname "$0")/.." || exit 2
exec awk '
FNR == 1 { fileno++ }
fileno == 1 {
    if ($0 ~ /^#/ || $0 !~ /:/) next
    mod = $1; sub(/:$/, "", mod)
    level[mod] = ++nlevels
    for (i = 2; i <= NF; i++) owner[$i] = mod
    next
}
FNR == 1 {
    path = FILENAME
    if (path ~ /^include\/mecbed\//) {
        h = path; sub(/^include\/mecbed\//, "", h); sub(/\.h$/, "", h)
        mymod = owner[h]
        if (mymod == "") { printf "%s: public header not listed in scripts/layers.txt\n", path; bad++ }
    } else {
        mymod = path; sub(/\/.*/, "", mymod)
    }
    dir = path; sub(/\/[^\/]*$/, "", dir)
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
    inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
    if (inc ~ /^mecbed\//) {
        h = inc; sub(/^mecbed\//, "", h); sub(/\.h$/, "", h)
        m = owner[h]
        if (m == "") { printf "%s:%d: %s is not a public header listed in scripts/layers.txt\n", FILENAME, FNR, inc; bad++ }
        else if (mymod != "" && level[m] > level[mymod]) {
            printf "%s:%d: %s (layer %s) includes %s of layer %s above it\n", FILENAME, FNR, mymod, mymod, inc, m; bad++
        }
        next
    }
    # a private header: it must sit in the same module folder
    target = dir "/" inc
    while (target ~ /[^\/]+\/\.\.\//) sub(/[^\/]+\/\.\.\//, "", target)
    tmod = target; sub(/\/.*/, "", tmod)
    if (path ~ /^include\//) { printf "%s:%d: a public header includes private %s\n", FILENAME, FNR, inc; bad++ }
    else if (tmod != mymod && inc !~ /^onnx\/onnx\.pb-c\.h$/ && inc !~ /^ns3\//) {
        printf "%s:%d: %s includes %s, private to %s/\n", FILENAME, FNR, path, inc, tmod; bad++
    }
}
END {
    if (bad) { printf "check-layers: %d violation(s); see scripts/layers.txt\n", bad; exit 1 }
    print "check-layers: ok"
}
' scripts/layers.txt $(find include core kernels models traces netem policies runtime sweep cli \
    -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh' -o -name '*.cc' | sort)
