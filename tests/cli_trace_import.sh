#!/bin/sh
# Trace importers against an independent computation (awk, from the rules in
# docs/traces.md): for every format, `mecbed trace stats --json` gives the
# time-weighted mean and the plain mean of the samples that awk computes from
# the file itself. Then the edge cases of issue 14: outages of exactly
# 100 ms, opportunities on bin edges, a one-row-per-second two-column log,
# the per-second 5G CSV log (tests/fixtures/5g-drive.csv, constructed in the
# format of public 5G drive-test logs: Timestamp,...,DL_bitrate,UL_bitrate in
# kbit/s, with a repeated second, skipped seconds and a missing value), the
# import options and their errors. Public traces in ../shared/traces are
# compared too when present.
B=${BUILD:-build}/mecbed
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-trace-import.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }
F=tests/fixtures/5g-drive.csv

# a JSON number of `mecbed trace stats --json`
jnum() { sed -n "s/^[[:space:]]*\"$2\":[[:space:]]*\([-0-9.e+]*\),*$/\1/p" "$1"; }
# |a - b| <= 1e-9 * max(1, |b|)
close_to() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1; exit !(a != "" && d <= 1e-9 * m) }'; }
check() { # file, json key, expected, what
    close_to "$(jnum "$1" "$2")" "$3" || fail "$4: $2 $(jnum "$1" "$2"), independent computation $3"
}

# ---- awk: the documented rules, written again ----
# twocol: repeated times merged (mean); sample i covers (t[i-1], t[i]]; the
# first sample an interval as long as the second's
awk_twocol() {
    awk '!/^#/ && NF == 2 { all += $2; rows++
             if (n && $1 == t[n]) { s[n] += $2; c[n]++ } else { n++; t[n] = $1; s[n] = $2; c[n] = 1 } }
         END { for (i = 1; i <= n; i++) r[i] = s[i] / c[i]
               d = n > 1 ? t[2] - t[1] : 1; cap = r[1] * d
               for (i = 2; i <= n; i++) cap += r[i] * (t[i] - t[i-1])
               printf "%.17g %.17g %.17g\n", cap / (t[n] - t[1] + d), all / rows, t[n] - t[1] + d }' "$1"
}
# mahimahi: packets x 1500 B x 8 / last timestamp (ms), in Mbit/s
awk_mahimahi() { awk '{ n++; last = $1 } END { printf "%.17g\n", n * 12 / last }' "$1"; }
# mets: one value a second, in Mbits/sec or Kbits/sec
awk_mets() { awk -F, '{ v = $1; if ($2 ~ /^Kbits/) v /= 1000; s += v; n++ } END { printf "%.17g\n", s / n }' "$1"; }
# native: segments start_s rate_mbit up to 'end'
awk_native() {
    awk '/^#/ { next } $1 == "end" { end = $2; next } { n++; t[n] = $1; r[n] = $2 }
         END { t[n+1] = end; for (i = 1; i <= n; i++) cap += r[i] * (t[i+1] - t[i]); printf "%.17g\n", cap / end }' "$1"
}
# csv (the fixture): seconds from the H.M.S of column 1, DL_bitrate (column
# 13, kbit/s); rows in one second averaged, seconds without a value take the
# previous second's rate, "-" is no value
awk_csv() {
    awk -F, 'NR == 1 { next } $13 == "-" { next }
         { split($1, a, "_"); split(a[2], h, "."); sec = h[1] * 3600 + h[2] * 60 + h[3]
           all += $13; rows++
           if (!(sec in s)) { order[++k] = sec }; s[sec] += $13; c[sec]++ }
         END { first = order[1]; last = order[k]
               for (x = first; x <= last; x++) { if (x in s) v = s[x] / c[x]; tot += v }
               printf "%.17g %.17g %d\n", tot / (last - first + 1) / 1000, all / rows / 1000, last - first + 1 }' "$1"
}

# ---- every format against awk ----
$B trace gen walk --min 1mbit --max 20mbit --sigma 3mbit --dt 250ms --duration 20s --seed 4 -o $T/w.native || fail gen
$B trace stats --json $T/w.native > $T/j || fail "native stats"
check $T/j mean_mbps "$(awk_native $T/w.native)" native

$B trace convert $T/w.native -o $T/w.twocol --to twocol || fail "to twocol"
$B trace stats --json $T/w.twocol > $T/j || fail "twocol stats"
set -- $(awk_twocol $T/w.twocol)
check $T/j mean_mbps "$1" twocol
check $T/j sample_mean_mbps "$2" "twocol plain"
check $T/j duration_s "$3" "twocol span"
# the converted two-column file carries the same capacity as the native one
check $T/j mean_mbps "$(awk_native $T/w.native)" "native -> twocol"

$B trace convert $T/w.native -o $T/w.mm --to mahimahi || fail "to mahimahi"
$B trace stats --json $T/w.mm > $T/j || fail "mahimahi stats"
check $T/j mean_mbps "$(awk_mahimahi $T/w.mm)" mahimahi

printf '3.5,Mbits/sec\n800,Kbits/sec\n0,Mbits/sec\n12.25,Mbits/sec\n' > $T/m.csv
$B trace stats --json $T/m.csv > $T/j || fail "mets stats"
check $T/j mean_mbps "$(awk_mets $T/m.csv)" mets
grep -q '"format":	"mets"' $T/j || fail "mets detected: $(cat $T/j)"

$B trace stats --json --column DL_bitrate --unit kbit/s $F > $T/j || fail "csv stats"
set -- $(awk_csv $F)
check $T/j mean_mbps "$1" "csv time-weighted"
check $T/j sample_mean_mbps "$2" "csv plain"
check $T/j duration_s "$3" "csv span"
grep -q '"format":	"csv"' $T/j || fail "csv format: $(cat $T/j)"
grep -q '"format_auto_detected":	true' $T/j || fail "csv auto-detected"
# the fixture's bookkeeping: 31 rows, one without a value; seconds 5 (x2) and 22 (x3); 10, 11, 17 without
check $T/j rows 30 "csv rows"
check $T/j duplicate_rows 3 "csv duplicates"
check $T/j gap_seconds 3 "csv gaps"
check $T/j missing_values 1 "csv missing"
# 5G rates: the busiest second carries 457 Mbit/s
awk -v m="$(jnum $T/j max_mbps)" 'BEGIN { exit !(m > 457 && m < 458) }' || fail "csv peak $(jnum $T/j max_mbps)"

# the public traces, when this machine has them: twocol and mets against awk
S=${MECBED_SHARED_TRACES:-../shared/traces}
if [ -d "$S" ]; then
    for f in "$S"/norway-3g/*; do
        $B trace stats --json "$f" > $T/j || fail "stats $f"
        set -- $(awk_twocol "$f")
        check $T/j mean_mbps "$1" "$f"
        check $T/j sample_mean_mbps "$2" "$f plain"
    done
    for f in "$S"/nyu-mets/*.csv; do
        $B trace stats --json "$f" > $T/j || fail "stats $f"
        check $T/j mean_mbps "$(awk_mets "$f")" "$f"
    done
    for f in "$S"/mahimahi/*; do
        $B trace stats --json "$f" > $T/j || fail "stats $f"
        check $T/j mean_mbps "$(awk_mahimahi "$f")" "$f"
        # binning conserves every opportunity (a Verizon trace lost 329 packets before)
        $B trace convert "$f" -o $T/bin.native --to native --bin 100ms || fail "bin $f"
        $B trace stats --json $T/bin.native > $T/j2 || fail "stats binned $f"
        awk -v a="$(jnum $T/j2 mean_mbps)" -v b="$(awk_mahimahi "$f")" \
            'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }' || fail "binned $f: $(jnum $T/j2 mean_mbps) vs $(awk_mahimahi "$f")"
    done
else
    echo "note: $S absent: public traces not compared"
fi

# ---- issue 14's edge cases ----
printf '50\n69519\n69619\n69620\n' > $T/o
$B trace stats --json $T/o > $T/j || fail "outage stats"
check $T/j outages 2 "outage of exactly 100 ms"
check $T/j outage_s 69.569 "outage time"
printf '0\n600\n1000\n' > $T/e
$B trace convert $T/e -o $T/e.native --to native --bin 100ms || fail "bin edges"
$B trace stats --json $T/e.native > $T/j || fail "bin stats"
check $T/j mean_mbps 0.036 "opportunity on a bin edge"
# a one-row-per-second log: 384 rows, 384 s, the mean of the rows
awk 'BEGIN { for (i = 1; i <= 384; i++) print i, i % 7 + 1 }' > $T/sec
$B trace stats --json $T/sec > $T/j || fail "per-second twocol"
check $T/j duration_s 384 "first sample kept"
check $T/j mean_mbps "$(awk '{ s += $2 } END { printf "%.17g", s / NR }' $T/sec)" "per-second mean"
# a repeated time: the mean by default, the last with --duplicates last, refused with error
printf '0 1\n1 2\n1 4\n2 6\n' > $T/dup
$B trace stats --json $T/dup > $T/j || fail "twocol duplicate refused"
check $T/j mean_mbps "$(awk_twocol $T/dup | cut -d' ' -f1)" "twocol duplicate mean"
check $T/j mean_mbps 3.3333333333333335 "twocol duplicate mean (by hand: 1, 3, 6 over 1 s each)"
$B trace stats --json --duplicates last $T/dup > $T/j || fail "--duplicates last"
check $T/j mean_mbps 3.6666666666666665 "twocol duplicate last"
$B trace stats --duplicates error $T/dup 2> $T/err && fail "duplicates=error accepted"
grep -q "$T/dup:3: time 1 s is not after the previous sample (1 s) and duplicates=error" $T/err || fail "dup error: $(cat $T/err)"

# ---- CSV options ----
$B trace stats --json --column DL_bitrate --unit kbit/s --gaps zero $F > $T/j || fail "--gaps zero"
check $T/j outages 2 "gaps as outages (10-11, 17)"
$B trace stats --column DL_bitrate --unit kbit/s --gaps error $F 2> $T/err && fail "gaps=error accepted"
grep -q "$F:13: 2 seconds without a row before this one, and gaps=error" $T/err || fail "gap error: $(cat $T/err)"
$B trace stats --column DL_bitrate --unit kbit/s --duplicates error $F 2> $T/err && fail "csv duplicates=error"
grep -q "$F:8: a second row in the same second (line 7)" $T/err || fail "csv dup error: $(cat $T/err)"
$B trace stats --json --column UL_bitrate --unit kbit/s --time-column Timestamp --format csv $F > $T/j || fail "UL column"
grep -q '"format_auto_detected":	false' $T/j || fail "given format reported as detected"
# numeric timestamps in ms, a unit in the column name, ';' separators
printf 'time_ms;rate (Mbit/s)\n1000;10\n2000;20\n2000;40\n4000;5\n' > $T/ms.csv
$B trace stats --json --time-unit ms $T/ms.csv > $T/j || fail "ms csv"
check $T/j duration_s 4 "ms csv span"
check $T/j mean_mbps 18.75 "ms csv mean (10, 30, 30 held, 5 over 4 s)"
$B trace stats $T/ms.csv 2> $T/err && fail "ms read as seconds"
grep -q "are the timestamps milliseconds? (give --time-unit ms" $T/err || fail "ms hint: $(cat $T/err)"

# Unix timestamps (seconds, fractions) and ISO date-times with zones
printf 'epoch,tput_mbps\n1575552000.2,8\n1575552001.7,4\n1575552001.9,6\n1575552003.0,2\n' > $T/ep.csv
$B trace stats --json --unit Mbit/s $T/ep.csv > $T/j || fail "epoch csv: $($B trace stats --unit Mbit/s $T/ep.csv 2>&1)"
check $T/j duration_s 4 "epoch csv span"
check $T/j mean_mbps 5 "epoch csv mean (8, 5, 5 held, 2)"
printf 'when,rate\n2024-03-01T10:00:59.5+01:00,1\n2024-03-01T09:01:00Z,3\n2024-03-01 09:01:01,5\n' > $T/iso.csv
$B trace stats --json --unit Mbit/s $T/iso.csv > $T/j || fail "iso csv: $($B trace stats --unit Mbit/s $T/iso.csv 2>&1)"
check $T/j duration_s 3 "iso csv span (09:00:59 .. 09:01:01 UTC)"
check $T/j mean_mbps 3 "iso csv mean"
printf 'when,rate\n2024-03-01T10:00:59,1\n2024-03-01T10:00:58,3\n' > $T/back.csv
$B trace stats --unit Mbit/s $T/back.csv 2> $T/err && fail "csv going back accepted"
grep -q "$T/back.csv:3: timestamp '2024-03-01T10:00:58' is before the previous row's" $T/err || fail "back error: $(cat $T/err)"
printf 'when,rate\n2024-03-01T10:00:59,1\nyesterday,3\n' > $T/bad.csv
$B trace stats --unit Mbit/s $T/bad.csv 2> $T/err && fail "bad timestamp accepted"
grep -q "$T/bad.csv:3: timestamp 'yesterday' is not a date-time like the rows above" $T/err || fail "ts error: $(cat $T/err)"

# ---- errors say what the content was taken for ----
$B trace stats $F 2> $T/err && fail "csv without --column"
grep -q "which column holds the rate? give --column.*columns: Timestamp, Longitude.*(parsed as csv, auto-detected; use --format)" $T/err || fail "csv column error: $(cat $T/err)"
$B trace stats --column DL_bitrate $F 2> $T/err && fail "csv without --unit"
grep -q "in what unit is column 'DL_bitrate'? give --unit" $T/err || fail "unit error: $(cat $T/err)"
$B trace stats --column Nope --unit kbit/s $F 2> $T/err && fail "unknown column"
grep -q "$F:1: no column 'Nope' (columns: Timestamp" $T/err || fail "unknown column error: $(cat $T/err)"
$B trace stats --unit furlong/s $F 2> $T/err && fail "unknown unit"
grep -q "unit=furlong/s: unknown or ambiguous throughput unit" $T/err || fail "unit error: $(cat $T/err)"
$B trace stats --unit MBps $F 2> $T/err && fail "MBps accepted"
printf '1.5,2.5\n' > $T/num.csv
$B trace stats $T/num.csv 2> $T/err && fail "numeric pair accepted as METS"
grep -q "unknown unit '2.5'.*(parsed as mets, auto-detected; use --format)" $T/err || fail "mets guess: $(cat $T/err)"
$B trace stats --column DL_bitrate $T/sec 2> $T/err && fail "--column on a twocol file"
grep -q "column applies to format csv only (format is twocol) (parsed as twocol, auto-detected" $T/err || fail "column on twocol: $(cat $T/err)"
$B trace stats --format klingon $F 2> $T/err && fail "bad format"
grep -q "unknown format 'klingon' (auto, native, mahimahi, twocol, mets, csv)" $T/err || fail "format list: $(cat $T/err)"
$B trace convert $F -o $T/x --to csv --column DL_bitrate --unit kbit/s 2> $T/err && fail "csv written"
grep -q "csv is an import format" $T/err || fail "csv write error: $(cat $T/err)"

# ---- a generated 5G trace: seeded, peaks above 400 Mbit/s, handover outages ----
$B trace gen 5g --duration 60s --seed 3 -o $T/g1 || fail "gen 5g"
$B trace gen 5g --duration 60s --seed 3 -o $T/g2 || fail "gen 5g"
cmp -s $T/g1 $T/g2 || fail "5g: same seed, different traces"
$B trace stats --json $T/g1 > $T/j || fail "5g stats"
awk -v m="$(jnum $T/j max_mbps)" -v p="$(jnum $T/j p5_mbps)" 'BEGIN { exit !(m > 400 && m <= 900 && p < 100) }' ||
    fail "5g: max $(jnum $T/j max_mbps), p5 $(jnum $T/j p5_mbps) Mbit/s"
check $T/j mean_mbps "$(awk_native $T/g1)" "5g mean"
$B trace gen 5g --duration 60s --seed 3 --off 300ms -o $T/g3 || fail "gen 5g --off"
$B trace stats --json --window 100ms $T/g3 > $T/j || fail "5g --off stats"
awk -v n="$(jnum $T/j outages)" -v s="$(jnum $T/j outage_s)" 'BEGIN { exit !(n >= 1 && s >= 0.3 * n - 1e-9) }' ||
    fail "5g handovers: $(jnum $T/j outages) outages, $(jnum $T/j outage_s) s"
$B trace gen 5g --duration 10s --min 500mbit --max 100mbit -o $T/x 2> $T/err && fail "5g min > max accepted"
grep -q "needs --min < --max" $T/err || fail "5g error: $(cat $T/err)"
for f in traces/5g-*.trace; do
    $B trace stats --json "$f" > $T/j || fail "shipped $f"
    awk -v m="$(jnum $T/j max_mbps)" 'BEGIN { exit !(m > 400) }' || fail "$f: peak $(jnum $T/j max_mbps)"
done

# ---- the same options in link specs (read by plan's cost model) ----
$B trace convert --column DL_bitrate --unit kbit/s $F -o $T/5g.native --to native || fail "csv -> native"
$B trace stats --json $T/5g.native > $T/j2 || fail "converted 5G stats"
check $T/j2 mean_mbps "$(awk_csv $F | cut -d' ' -f1)" "csv -> native"
$B plan --model resnet18 --policy layerwise --link "trace=$F,format=csv,column=DL_bitrate,unit=kbit/s,rtt=20ms" \
    > /dev/null || fail "plan with a CSV trace"
$B plan --model resnet18 --policy layerwise --link "trace=$F,rtt=20ms" 2> $T/err && fail "plan: CSV without column"
grep -q "link device -> edge0: $F:1: which column holds the rate?" $T/err || fail "plan error: $(cat $T/err)"
echo "cli_trace_import: ok"
