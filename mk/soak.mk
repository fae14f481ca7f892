# Clean-up soak (scripts/soak.sh): 100 `mecbed run`s SIGKILLed at random
# moments, then `mecbed clean` must leave nothing; SIGINT/SIGTERM runs must
# clean up by themselves. Needs root; not part of `make test` (about 5
# minutes). SOAK_RUNS, SOAK_SIGNAL_RUNS, SOAK_MAX_DELAY change its size.
.PHONY: soak
soak: $(BUILD)/mecbed
	@BUILD=$(BUILD) scripts/soak.sh
