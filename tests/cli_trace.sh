#!/bin/sh
# mecbed trace gen|stats|convert: generated traces, round trips between
# formats, the shipped traces, and clear errors for bad input.
B=${BUILD:-build}/mecbed
T=$(mktemp -d "${TMPDIR:-/tmp}/mb-cli-trace.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*"; exit 1; }

$B trace --help | grep -q "mecbed trace gen" || fail "trace --help"
# seeded: the same seed gives the same file, another seed another one
$B trace gen markov --good 20mbit --bad 1mbit --good-dwell 2s --bad-dwell 1s --duration 60s --seed 5 -o $T/a || fail gen
$B trace gen markov --good 20mbit --bad 1mbit --good-dwell 2s --bad-dwell 1s --duration 60s --seed 5 -o $T/b || fail gen
$B trace gen markov --good 20mbit --bad 1mbit --good-dwell 2s --bad-dwell 1s --duration 60s --seed 6 -o $T/c || fail gen
cmp -s $T/a $T/b || fail "same seed, different traces"
cmp -s $T/a $T/c && fail "different seeds, same trace"

# on/off: 2 outages of 5 s in 30 s; mean 2/3 of the rate
$B trace gen onoff --rate 9mbit --on 10s --off 5s --duration 30s -o $T/o || fail onoff
$B trace stats --json $T/o > $T/o.json || fail stats
grep -q '"outages":	2' $T/o.json || fail "onoff outages: $(cat $T/o.json)"
grep -q '"outage_s":	10' $T/o.json || fail "onoff outage time"
grep -q '"mean_mbps":	6' $T/o.json || fail "onoff mean"

# native -> mahimahi -> native keeps the mean (to a packet)
$B trace gen constant --rate 12mbit --duration 10s -o $T/k || fail constant
$B trace convert $T/k -o $T/k.mm --to mahimahi || fail "convert to mahimahi"
$B trace stats $T/k.mm | grep -q "mahimahi trace (auto-detected), 10000 delivery opportunities, 10.000 s" || fail "mahimahi stats: $($B trace stats $T/k.mm)"
$B trace stats $T/k.mm | grep -q "mean 12.000 Mbit/s" || fail "mahimahi mean"
$B trace convert $T/k.mm -o $T/k.mets --to mets || fail "convert to mets"
[ "$(wc -l < $T/k.mets)" -eq 10 ] || fail "mets: one line a second"
head -1 $T/k.mets | grep -q '^12,Mbits/sec$' || fail "mets line: $(head -1 $T/k.mets)"

# the shipped traces read
for f in traces/*.trace; do
    $B trace stats "$f" > /dev/null || fail "shipped trace $f"
done

# errors name the file and the line
printf '0 1\n1 x\n' > $T/bad
$B trace stats $T/bad 2> $T/err && fail "bad trace accepted"
grep -q "$T/bad:2: expected 'seconds Mbit/s'" $T/err || fail "error: $(cat $T/err)"
$B trace gen steps --rates 1mbit --duration 5s -o $T/x 2> $T/err && fail "steps without --step"
grep -q -- "--step" $T/err || fail "steps error: $(cat $T/err)"
$B trace gen constant --rate 10mbps --duration 1s -o $T/x 2> $T/err && fail "mbps accepted"
grep -q "ambiguous" $T/err || fail "mbps error"
$B trace convert $T/k -o $T/x --to klingon 2> $T/err && fail "bad format accepted"
grep -q "unknown format 'klingon'" $T/err || fail "format error"
$B trace stats /nonexistent/t 2> $T/err && fail "missing file accepted"
grep -q "/nonexistent/t: No such file" $T/err || fail "missing file error"
echo "cli_trace: ok"
