# `make test-sanitize`: the whole tree built with AddressSanitizer and
# UndefinedBehaviorSanitizer in its own folder ($(SAN_BUILD), default
# build-san; the CUDA backend is left out: nvcc code cannot run here), then
# every unit test and the command-level tests that do not judge timing
# (a sanitized build runs 2-10x slower) run against it. Any report fails:
# sanitizer reports exit with status 86 (never a status a test expects)
# and are also written under $(SAN_BUILD)/san-logs, which must hold none
# (a report from a process whose exit status nobody checks, such as a node,
# is caught there; LeakSanitizer's notes such as "thread was not suspended"
# are not reports). .ci/run runs it after `make test`.
SAN_BUILD ?= build-san
SAN_FLAGS ?= address,undefined
# No timing judged in these (tests/cli_*.sh); the rest measure links, streams,
# time dilation or need a GPU, or (fuzz-smoke) build their own sanitized copy.
SAN_CLI_TESTS ?= cli_bad_inputs cli_clean cli_compare cli_conformance cli_fault_garbage cli_infer cli_models \
                 cli_onnx cli_onnx_checker cli_plan cli_plan_plugin cli_regress cli_run_remote \
                 cli_split_policies cli_sweep cli_trace
SAN_UNIT_TESTS = $(patsubst tests/%.c,%,$(TEST_SRC))
SAN_LOGS = $(SAN_BUILD)/san-logs

.PHONY: test-sanitize
test-sanitize:
	@$(MAKE) --no-print-directory BUILD=$(SAN_BUILD) SANITIZE=$(SAN_FLAGS) NVCC= all
	@rm -rf $(SAN_LOGS) && mkdir -p $(SAN_LOGS)
	@SANITIZE=$(SAN_FLAGS) NVCC= BUILD=$(SAN_BUILD) TESTS_ONLY="$(SAN_UNIT_TESTS) $(SAN_CLI_TESTS)" \
	 ASAN_OPTIONS=detect_leaks=1:exitcode=86:log_path=$(abspath $(SAN_LOGS))/asan \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=86:log_path=$(abspath $(SAN_LOGS))/ubsan \
	 tests/run.sh; rc=$$?; \
	 reports=$$(grep -l -e 'ERROR: ' -e 'runtime error' -e 'SUMMARY: ' $(SAN_LOGS)/* 2>/dev/null); \
	 if [ -n "$$reports" ]; then \
	   echo "test-sanitize: sanitizer reports:"; head -n 60 $$reports; exit 1; \
	 fi; \
	 [ $$rc -eq 0 ] && echo "test-sanitize: no sanitizer reports"; exit $$rc
