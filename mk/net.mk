# netem: `make bench-net` measures the link emulators' fidelity (root needed):
# throughput at 1-200 Mbit/s, delay, loss, a trace, CPU use at 100 Mbit/s.
# BENCH_NET_DURATION=S sets the seconds per throughput phase (default 3).
bench-net: $(BUILD)/mecbed
	@BUILD=$(BUILD) scripts/bench-net.sh
