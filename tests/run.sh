#!/bin/sh
# Runs every test: the cmocka unit-test binaries (build/tests/test_*) and the
# command-level tests (tests/cli_*.sh). A test exits 0 (pass), 77 (skipped,
# with the reason on its output) or anything else (fail). Ends with the
# summary line "N passed, N failed, N skipped".
BUILD=${BUILD:-build}
export BUILD
pass=0; fail=0; skip=0; failed=""
# TEST_TIMEOUT: seconds one test may take before it is stopped and failed
# (with everything it started: timeout(1) signals the test's process group),
# so one hung test fails alone instead of eating a CI run's time
limit=${TEST_TIMEOUT:-900}
log=$(mktemp -d "${TMPDIR:-/tmp}/mecbed-tests.XXXXXX")
child=""
# Ctrl-C or a TERM stops the running test (timeout passes the signal on to
# its group) and ends the whole run; it does not go on to the next test
stop_all() {
    [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child" 2>/dev/null
    rm -rf "$log"
    exit "$1"
}
trap 'rm -rf "$log"' EXIT
trap 'stop_all 130' INT
trap 'stop_all 143' TERM
run_one() {
    name=$1; shift
    start=$(date +%s)
    # in the background and waited for, so a signal to this script is
    # handled at once rather than after the test ends
    timeout -k 15 "$limit" "$@" >"$log/out" 2>&1 &
    child=$!
    wait "$child"
    rc=$?
    child=""
    secs=$(( $(date +%s) - start ))
    [ $rc -eq 124 ] && echo "timed out after ${limit} s (TEST_TIMEOUT)" >>"$log/out"
    case $rc in
    0) pass=$((pass+1)); echo "PASS  $name (${secs}s)";;
    77) skip=$((skip+1))
        # the test's own reason ("skip: ..."), else any line saying skip
        why=$(grep -i '^skip:' "$log/out" | tail -n 1)
        [ -n "$why" ] || why=$(grep -i skip "$log/out" | tail -n 1)
        echo "SKIP  $name: $why";;
    *) fail=$((fail+1)); failed="$failed $name"; echo "FAIL  $name (exit $rc)"; tail -n 40 "$log/out" | sed 's/^/      /';;
    esac
}
filter=${TESTS:-}
# TESTS_ONLY: a space-separated list of test names (test_x cli_y) to run
# instead of all of them (make test-sanitize)
only=${TESTS_ONLY:-}
selected() { [ -z "$only" ] || case " $only " in *" $1 "*) return 0;; *) return 1;; esac; }
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t")
    [ -n "$filter" ] && ! echo "$n" | grep -q "$filter" && continue
    selected "$n" || continue
    run_one "$n" "$t"
done
for t in tests/cli_*.sh; do
    [ -f "$t" ] || continue
    n=$(basename "$t" .sh)
    [ -n "$filter" ] && ! echo "$n" | grep -q "$filter" && continue
    selected "$n" || continue
    run_one "$n" sh "$t"
done
echo
[ -n "$failed" ] && echo "failed:$failed"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
