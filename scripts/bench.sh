#!/bin/sh
# make bench: kernel and model benchmarks of the fast CPU backend, single
# thread, against the sgemm rate measured in the same run. Extra arguments go
# to mecbed-bench (see --help), e.g. scripts/bench.sh --models vgg16 --ops.
# BENCH_THREADS=N also runs an N-thread pass of the models.
set -e
BUILD=${BUILD:-build}
make --no-print-directory BUILD="$BUILD" bench-build >/dev/null
bin="$BUILD/bench/mecbed-bench"
nice -n 5 "$bin" --threads 1 "$@"
if [ -n "${BENCH_THREADS:-}" ] && [ "$BENCH_THREADS" != 1 ]; then
    echo
    nice -n 5 "$bin" --threads "$BENCH_THREADS" --no-convs "$@"
fi
