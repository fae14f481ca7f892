#!/bin/sh
# Fails when a function in the library or command sources is longer than
# MAX lines (default 150): long functions are split by responsibility
# (docs/architecture.md). Generated code and tests are not checked. A
# function is counted from its opening brace at column 0 to the closing one.
cd "$(dirname "$0")/.." || exit 2
MAX=${MAX:-150}
exec awk -v max="$MAX" '
FNR == 1 { start = 0 }
/\(/ { last_paren = FNR; sig = $0 }
/^\{/ && !start { start = FNR; name = sig; next }
/^\}/ && start {
    n = FNR - start
    if (n > max) { printf "%s:%d: %d lines: %s\n", FILENAME, start, n, name; bad++ }
    start = 0
}
END {
    if (bad) { printf "check-funclen: %d function(s) over %d lines\n", bad, max; exit 1 }
    print "check-funclen: ok"
}
' $(find core kernels models traces netem policies runtime sweep cli \
    \( -name '*.c' -o -name '*.cu' -o -name '*.cc' \) | sort)
