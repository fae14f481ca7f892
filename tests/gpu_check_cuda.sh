#!/bin/sh
# One-shot verification of the CUDA backend on a machine with a GPU (not run
# by `make test`: tests/run.sh runs test_* and cli_*). Builds, runs the GPU
# tests, compute-sanitizer's memcheck (when installed) and the benchmark,
# and leaves every log under ${OUT:-.}/cuda-check/. docs/cuda.md.
#   sh tests/gpu_check_cuda.sh            (BUILD=build-gpu by default)
BUILD=${BUILD:-build-gpu}
DEST=${OUT:-$PWD}/cuda-check
mkdir -p "$DEST"
export BUILD
(nvidia-smi; nvcc --version || /usr/local/cuda/bin/nvcc --version) >"$DEST/gpu.txt" 2>&1
head -n 12 "$DEST/gpu.txt"
if ! make -j"$(nproc)" BUILD="$BUILD" all >"$DEST/build.log" 2>&1; then
    tail -n 40 "$DEST/build.log"
    echo "build failed"
    exit 1
fi
rc=0
step() { # name, command...
    name=$1
    shift
    "$@" >"$DEST/$name.log" 2>&1
    r=$?
    echo "$name: exit $r"
    [ $r -eq 0 ] || { tail -n 25 "$DEST/$name.log"; rc=1; }
}
# build/mecbed must not load the CUDA libraries: only libmecbed-cuda.so does
step mecbed_links_no_cuda sh -c "! ldd '$BUILD/mecbed' | grep -E 'libcudart|libcublas'"
step test_kernels_cuda "$BUILD/tests/test_kernels_cuda"
step test_kernels_support "$BUILD/tests/test_kernels_support"
grep -E "ops checked|max \|" "$DEST/test_kernels_cuda.log"
step cli_cuda sh tests/cli_cuda.sh
tail -n 8 "$DEST/cli_cuda.log"
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$CS" ]; then
    step memcheck "$CS" --tool memcheck --error-exitcode 9 "$BUILD/tests/test_kernels_cuda"
    tail -n 3 "$DEST/memcheck.log"
fi
step bench "$BUILD/bench/mecbed-bench-cuda" --repeats 5
cat "$DEST/bench.log"
exit $rc
