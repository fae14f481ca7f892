#!/bin/sh
# make bench: kernel and model benchmarks of the fast CPU backend, single
# thread, against the sgemm rate measured in the same run.
#   scripts/bench.sh [mecbed-bench options]     e.g. --models vgg16 --ops
#   make bench BENCH_ARGS="--cputime --best"     on a busy machine
#   BENCH_THREADS=N                              also an N-thread pass of the models
set -e
BUILD=${BUILD:-build}
make --no-print-directory BUILD="$BUILD" bench-build >/dev/null
bin="$BUILD/bench/mecbed-bench"
# shellcheck disable=SC2086  # BENCH_ARGS is a list of options
nice -n 5 "$bin" --threads 1 ${BENCH_ARGS:-} "$@"
if [ -n "${BENCH_THREADS:-}" ] && [ "$BENCH_THREADS" != 1 ]; then
    echo
    nice -n 5 "$bin" --threads "$BENCH_THREADS" --no-convs $(echo " ${BENCH_ARGS:-} " | sed 's/ --cputime / /') "$@"
fi
