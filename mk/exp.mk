# Experiments: `make regress` re-runs the plan-mode experiments'
# quick sizes with the pinned profiles and compares predicted latency,
# energy, bytes and chosen plans with results/baseline/ (docs/experiments.md);
# as root it also runs a short measured regression (ratios between two
# policies). `make regress-update` rewrites the baseline deliberately.
# REGRESS_NODE_TYPES=FILE plans with extra node types (what the test of the
# regression itself uses to perturb a constant).
REGRESS_EXPERIMENTS ?= bandwidth multi-edge multi-device

regress: $(BUILD)/mecbed
	@BUILD=$(BUILD) MECBED_SWEEP_NODE_TYPES=$(REGRESS_NODE_TYPES) experiments/regress.sh check $(REGRESS_EXPERIMENTS)

regress-update: $(BUILD)/mecbed
	@BUILD=$(BUILD) experiments/regress.sh update $(REGRESS_EXPERIMENTS)
