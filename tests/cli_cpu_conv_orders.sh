#!/bin/sh
# The direct AVX-512 conv's loop orders (kernels/cpu/cpu_conv_direct.c) on
# the kernel tests: pixel tiles of 1 and 3 blocks (the default is up to 16,
# more than the tests' small maps hold, so a tile boundary inside a task is
# only reached this way), weights always packed, never packed, and no weight
# prefetch; then the 1x1 K split (kernels/cpu/README.md, "1x1 layers with
# K split"): switched off (the old sgemm bars), chunks of 16 and 40 input
# channels on maps of any size (so the tests' small 1x1 layers get several
# chunks), input
# packing and prefetch forced on every 1x1 layer or off, and every 1x1
# layer on the direct kernel with weights always packed; the small-map
# kernel over output channels (cpu_conv_oc.c) forced on every conv it can
# run (also with K chunks of 4 KiB of packed weights) and off; and the
# depthwise kernel on its padded-copy path only (MECBED_CPU_DW=copy); the
# direct kernel's k-major tile packing (dc_kpack) off, and on for every conv
# with taps > 1 with one 32-pixel block per tile; the old output-channel
# blocks (14, 8, 4, 2, 1: MECBED_CPU_DC_EVEN=0), and the even blocks with
# weights always packed by the scalar loop. Each run holds
# tiles and threads bit-exact to the whole op and
# every conv to the reference backend (tests/test_kernels_cpu.c). Then
# pooling's padded-copy path (MECBED_CPU_POOL_FAST=0, kernels/cpu/
# cpu_pool2d.c) against the reference and tiles, and its fast path without
# software prefetch. Last, the thread pool claiming one task at a time
# (MECBED_CPU_POOL_CHUNK=0, the layout before chunked claims) or chunks from one
# shared counter (MECBED_CPU_POOL_AFFINE=0), and the oc
# kernel with its task counts as oc_split makes them (MECBED_CPU_CONV_OC_BALANCE=0).
set -eu
BUILD=${BUILD:-build}
T="$BUILD/tests/test_kernels_cpu"
[ -x "$T" ] || { echo "skip: $T not built"; exit 77; }
for cfg in MECBED_CPU_DC_TILE=1 MECBED_CPU_DC_TILE=3 "MECBED_CPU_DC_TILE=2 MECBED_CPU_DC_PACK_PX=1" \
    "MECBED_CPU_DC_PACK_PX=100000 MECBED_CPU_DC_PACK_PX_BIGK=100000" MECBED_CPU_DC_WPF=0 \
    MECBED_CPU_1X1_KBLOCK=off "MECBED_CPU_1X1_KBLOCK=16 MECBED_CPU_DC_X1_PX=1" \
    "MECBED_CPU_1X1_KBLOCK=40 MECBED_CPU_DC_X1_PX=1 MECBED_CPU_DC_XPACK=2 MECBED_CPU_DC_XPF=2 MECBED_CPU_DC_TILE=3" \
    "MECBED_CPU_DC_XPACK=0 MECBED_CPU_DC_XPF=0" "MECBED_CPU_1X1_GEMM_BIG=100000 MECBED_CPU_DC_XPACK_PX=0" \
    MECBED_CPU_POOL_FAST=0 MECBED_CPU_POOL_PF=0 MECBED_CPU_DW=copy MECBED_CPU_POOL_CHUNK=0 MECBED_CPU_POOL_AFFINE=0 \
    MECBED_CPU_CONV_OC=1 "MECBED_CPU_CONV_OC=1 MECBED_CPU_CONV_OC_WKB=4" "MECBED_CPU_CONV_OC=1 MECBED_CPU_CONV_OC_BALANCE=0" \
    MECBED_CPU_CONV_OC=0 \
    MECBED_CPU_DC_KPACK=0 "MECBED_CPU_DC_KPACK=1 MECBED_CPU_DC_KPACK_KB=1" MECBED_CPU_DC_EVEN=0 \
    "MECBED_CPU_DC_FASTPACK=0 MECBED_CPU_DC_PACK_PX=1"; do
    # shellcheck disable=SC2086  # the assignments
    if ! out=$(env $cfg timeout 120 "$T" 2>&1); then
        echo "$out" | tail -n 30
        echo "FAIL: test_kernels_cpu with $cfg"
        exit 1
    fi
done
echo ok
