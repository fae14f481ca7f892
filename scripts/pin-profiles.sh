#!/bin/sh
# Re-measure the pinned profiles (policies/profiles/MODEL.csv) that plan mode
# and `make regress` use: `mecbed profile --repeats 7`, one thread, cpu
# kernels, every zoo model or the ones named. Per-op times are only as good as
# the machine is quiet: it refuses when the 1-minute load average is above
# PIN_MAX_LOAD (default 0.5), and prints the load before and after each model.
# After it: `make regress-update`, and say in the commit why the profiles moved.
#
#   scripts/pin-profiles.sh [MODEL ...]
set -eu
BUILD=${BUILD:-build}
M="$BUILD/mecbed"
[ "${1:-}" != --help ] && [ "${1:-}" != -h ] || { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; }
[ -x "$M" ] || { echo "pin-profiles: $M not built (make all)" >&2; exit 1; }
load() { cut -d' ' -f1 /proc/loadavg; }
max=${PIN_MAX_LOAD:-0.5}
if awk -v l="$(load)" -v m="$max" 'BEGIN { exit !(l > m) }'; then
    echo "pin-profiles: load average $(load) > $max: the profiles would describe a busy machine (PIN_MAX_LOAD overrides)" >&2
    exit 1
fi
[ $# -gt 0 ] || set -- $(ls policies/profiles/ | sed -n 's/\.csv$//p')
for m in "$@"; do
    before=$(load)
    "$M" profile --model "$m" --repeats 7 --out "policies/profiles/$m.csv" >/dev/null
    echo "$m: $(sed -n 's/.*whole_ms=\([0-9.]*\).*/whole_ms \1/p' "policies/profiles/$m.csv"), load $before -> $(load)"
done
