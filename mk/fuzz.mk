# libFuzzer harnesses for every parser (fuzz/, docs/fuzzing.md).
#   make fuzz         build $(BUILD)/fuzz/fuzz_<parser> and seed corpora
#   make fuzz-smoke   run each harness FUZZ_SMOKE_RUNS inputs (20000) from its
#                     seed corpus with a fixed seed: deterministic, so make test
#                     fails or passes the same way on every machine
#                     (docs/fuzzing.md: running a harness for longer)
# The library is compiled a second time with clang-14 and
# -fsanitize=fuzzer-no-link,address,undefined into $(BUILD)/fuzz, so the
# ordinary build is untouched. Needs clang-14 and libclang-rt-14-dev
# (libFuzzer); tests/cli_fuzz_smoke.sh skips when they are missing.
FUZZ_CC      ?= clang-14
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_SMOKE_RUNS ?= 20000
FUZZ_SMOKE_SEED ?= 1
FUZZ_SMOKE_S    ?= 120
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -Iinclude -I$(BUILD)/gen -pthread -fPIC -MMD -MP $(FUZZ_SAN) \
                -fsanitize=fuzzer-no-link -Werror=implicit-function-declaration -Werror=int-conversion $(if $(WERROR),-Werror)
# Layers below the CLI, bottom last (the link order of the Makefile's LIBS).
FUZZ_MODULES := sweep runtime policies netem traces models kernels core
FUZZ_NAMES   := modelfile onnx npy trace topology sweepconf plan_json linkspec profile wire auth
FUZZ_BINS    := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_NAMES))

fuzz_lib = $(FUZZ_DIR)/lib/libmb_$(1).a
define fuzz_module_rules
$(1)_FOBJ := $$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$$($(1)_SRC))
$(FUZZ_DIR)/lib/libmb_$(1).a: $$($(1)_FOBJ)
	@mkdir -p $$(@D)
	@rm -f $$@
	ar rcs $$@ $$^
FUZZ_ALL_OBJ += $$($(1)_FOBJ)
endef
$(foreach m,$(FUZZ_MODULES),$(eval $(call fuzz_module_rules,$(m))))

FUZZ_LIBS := $(call fuzz_lib,sweep) $(call fuzz_lib,runtime) $(call fuzz_lib,policies) $(call fuzz_lib,netem) \
             $(call fuzz_lib,traces) $(call fuzz_lib,models) $(FUZZ_DIR)/lib/libmb_gen.a \
             $(call fuzz_lib,kernels) $(call fuzz_lib,core)

$(FUZZ_ALL_OBJ) $(FUZZ_DIR)/obj/gen/onnx.pb-c.o $(patsubst %,$(FUZZ_DIR)/obj/fuzz/fuzz_%.o,$(FUZZ_NAMES)): \
    | $(BUILD)/gen/onnx/onnx.pb-c.h

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -c $< -o $@

$(FUZZ_DIR)/obj/gen/onnx.pb-c.o: $(GEN_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -w -c $< -o $@

$(FUZZ_DIR)/lib/libmb_gen.a: $(FUZZ_DIR)/obj/gen/onnx.pb-c.o
	@mkdir -p $(@D)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/fuzz/fuzz_%.o $(FUZZ_LIBS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $< $(FUZZ_LIBS) $(LDLIBS)

# Seed corpora, made from the repository (zoo exports, sample traces,
# topologies, sweep configs, profiles, plans) by fuzz/make-corpus.sh with the
# ordinary build; the committed seeds in fuzz/corpus/ are added to them.
$(FUZZ_DIR)/wire_seeds: $(BUILD)/obj/fuzz/wire_seeds.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

$(FUZZ_DIR)/corpus/.done: fuzz/make-corpus.sh $(BUILD)/mecbed $(FUZZ_DIR)/wire_seeds $(wildcard fuzz/corpus/*/*)
	BUILD=$(BUILD) sh fuzz/make-corpus.sh $(FUZZ_DIR)/corpus
	@touch $@

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZ_BINS) $(FUZZ_DIR)/corpus/.done

# Each harness runs from the repository root (the profile harness reads the
# default node types); new inputs go to a fresh $(FUZZ_DIR)/work/<name>, the
# seeds stay as they are. A fixed seed and run count keep the smoke the same
# on every machine (a time budget would not: CI once found a new input that a
# faster machine did not reach); FUZZ_SMOKE_S only stops a runaway harness.
# A crash, leak or timeout fails the target.
fuzz-smoke: fuzz
	@set -e; for n in $(FUZZ_NAMES); do \
	    rm -rf $(FUZZ_DIR)/work/$$n; mkdir -p $(FUZZ_DIR)/work/$$n; \
	    dict=; [ -f fuzz/$$n.dict ] && dict=-dict=fuzz/$$n.dict; \
	    echo "fuzz-smoke: fuzz_$$n ($(FUZZ_SMOKE_RUNS) runs, seed $(FUZZ_SMOKE_SEED))"; \
	    $(FUZZ_DIR)/fuzz_$$n -seed=$(FUZZ_SMOKE_SEED) -runs=$(FUZZ_SMOKE_RUNS) \
	        -max_total_time=$(FUZZ_SMOKE_S) -timeout=20 -rss_limit_mb=2048 \
	        -print_final_stats=1 $$dict -artifact_prefix=$(FUZZ_DIR)/fuzz_$$n- \
	        $(FUZZ_DIR)/work/$$n $(FUZZ_DIR)/corpus/$$n > $(FUZZ_DIR)/smoke_$$n.log 2>&1 || \
	        { tail -n 40 $(FUZZ_DIR)/smoke_$$n.log; echo "fuzz-smoke: fuzz_$$n failed"; exit 1; }; \
	    grep -E 'stat::number_of_executed_units|cov:' $(FUZZ_DIR)/smoke_$$n.log | tail -n 2 | tr '\n' ' '; echo; \
	done
-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
