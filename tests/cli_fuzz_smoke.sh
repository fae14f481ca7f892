#!/bin/sh
# make fuzz-smoke: every libFuzzer harness (fuzz/) built with clang-14 and
# ASan/UBSan runs a fixed number of inputs (fixed seed) from its seed corpus; a crash, leak, timeout or
# broken invariant fails. Skipped (77) without clang-14 or libFuzzer
# (Debian: clang-14 libclang-rt-14-dev, installed by scripts/deps.sh).
B=${BUILD:-build}
if ! command -v clang-14 >/dev/null 2>&1; then
    echo "skip: clang-14 not installed"
    exit 77
fi
if ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 &&
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "skip: libFuzzer (libclang-rt-14-dev) not installed"
    exit 77
fi
make --no-print-directory -s BUILD="$B" fuzz-smoke || { echo "FAIL: make fuzz-smoke"; exit 1; }
