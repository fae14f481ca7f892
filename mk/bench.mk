# Benchmarks of the fast CPU backend (kernels/cpu). `make bench` (Makefile)
# runs scripts/bench.sh, which builds these with `make bench-build`.
BENCH_BIN := $(BUILD)/bench/mecbed-bench

.PHONY: bench-build
bench-build: $(BENCH_BIN)

$(BENCH_BIN): $(BUILD)/obj/bench/bench_main.o $(LIBS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# The CPU backend's loops are written to vectorise; -O3 lets GCC do so fully
# (at -O2 it only vectorises loops it deems very cheap).
$(BUILD)/obj/kernels/cpu/%.o: CFLAGS += -O3
