#!/bin/sh
# Install the Debian packages mecbed needs. Used by `make demo`, `make deps`
# and .ci/run. As root it installs what is missing; otherwise it prints the
# exact command to run. (python3: command tests read --json output with it;
# iperf3 and iputils-ping: programs run behind emulated links in the tests;
# clang-14 and libclang-rt-14-dev: the libFuzzer harnesses, make fuzz.)
set -e
PKGS="build-essential pkg-config libopenblas-dev libcmocka-dev libpcap-dev libcjson-dev libinih-dev
libprotobuf-c-dev protobuf-c-compiler libssl-dev libonnx-dev libonnx-testdata libprotobuf-dev gnuplot-nox iperf3 iputils-ping iproute2
ethtool tcpdump libns3-dev python3 clang-14 libclang-rt-14-dev"
[ -n "$MECBED_EXTRA_PKGS" ] && PKGS="$PKGS $MECBED_EXTRA_PKGS"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all Debian packages present"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
