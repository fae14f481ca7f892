"""The commands researchers script: plan, compare, run, sweep, and the
listings (policies, models), each a function returning Python data."""

import os

from .cli import call, call_json, options_to_args
from .results import load_results


def _net(link, topology):
    if (link is None) == (topology is None):
        raise ValueError("give exactly one of link= and topology=")
    return ["--link", link] if link is not None else ["--topology", str(topology)]


def policies(plugins=(), scan=True, names=()):
    """The policies mecbed can use: a dict with plugin_path (folders),
    policies (name, kind builtin|plugin, path, abi_version, summary,
    options [name, type, default, help]) and refused (path, error): the
    JSON of `mecbed policies --json`."""
    args = ["policies", "--json"] + options_to_args(policy_plugin=list(plugins), no_path=not scan)
    return call_json(args + list(names))


def models():
    """The model zoo as records (name, ops, params, macs, ...)."""
    return call_json(["models", "--json"])


def plan(model, policy, link=None, topology=None, policy_opts=None, plugins=(), verify=False,
         **opts):
    """Partition model with policy (`mecbed plan --json`): the plan as a dict
    (policy, model, sites, pred {latency_ms, energy_mj, bytes_up, ...},
    metrics, note, steps, profile, link, and verify with verify=True).
    policy_opts: "k=v,..." or a dict; plugins: .so paths or names; other
    keyword arguments are plan's options (device_type="rpi4",
    objective="energy", node_types="my.ini", ...)."""
    args = ["plan", "--model", model, "--policy", policy, "--json"] + _net(link, topology)
    args += options_to_args(policy_opt=policy_opts or None, policy_plugin=list(plugins),
                            verify=verify, **opts)
    return call_json(args)


def compare(model, link=None, topology=None, policies=None, rates=None, policy_opts=None,
            plugins=(), **opts):
    """Every policy (or those named) on one model (`mecbed compare --json`):
    records with policy, latency_ms, energy_mj, energy_system_mj,
    decision_us, bytes_*, cut_value_ms, note (and rate_mbps with rates=)."""
    args = ["compare", "--model", model, "--json"] + _net(link, topology)
    if policies:
        args += ["--policies", policies if isinstance(policies, str) else ",".join(policies)]
    if rates:
        args += ["--rates", rates if isinstance(rates, str) else ",".join(str(r) for r in rates)]
    args += options_to_args(policy_opt=policy_opts or None, policy_plugin=list(plugins), **opts)
    return call_json(args)


def infer(model, **opts):
    """Run a model with a per-op profile (`mecbed infer --json`)."""
    return call_json(["infer", "--model", model, "--json"] + options_to_args(**opts))


def run(model, policy, link=None, topology=None, frames=1, policy_opts=None, plugins=(),
        timeout=None, **opts):
    """Execute a plan for real over emulated links (`mecbed run --json`;
    needs root): the run report as a dict, measured and predicted."""
    args = ["run", "--model", model, "--policy", policy, "--frames", frames, "--json"]
    args += _net(link, topology)
    args += options_to_args(policy_opt=policy_opts or None, policy_plugin=list(plugins), **opts)
    return call_json(args, timeout=timeout)


class SweepResult:
    """A finished sweep: ``dir`` (its output folder), ``summary`` (the
    sweep's --json summary) and ``records`` (results.csv as records)."""

    def __init__(self, directory, summary):
        self.dir = directory
        self.summary = summary
        self._records = None

    @property
    def records(self):
        if self._records is None:
            self._records = load_results(self.dir)
        return self._records

    def file(self, name):
        """The path of one of the sweep's files (results.json, meta.json, ...)."""
        return os.path.join(self.dir, name)

    def __repr__(self):
        return "SweepResult(%r, %d points)" % (self.dir, self.summary.get("points", -1))


def sweep(experiment, quick=False, out=None, plugins=(), plots=False, check=True, cwd=None,
          **opts):
    """Run an experiment file (`mecbed sweep --json`). out: the output folder
    (default results/NAME/<timestamp> under cwd); plugins: --policy-plugin
    items; plots=False skips gnuplot. Returns a SweepResult. With check, a
    sweep whose points failed raises MecbedError (the results are still on
    disk: the error's stdout holds the summary)."""
    args = ["sweep", str(experiment), "--json"]
    args += options_to_args(quick=quick, out=out, policy_plugin=list(plugins), no_plots=not plots,
                            **opts)
    summary = call_json(args, check=check, cwd=cwd)
    d = summary.get("dir") or summary.get("out") or out
    if d and cwd and not os.path.isabs(d):
        d = os.path.join(cwd, d)
    return SweepResult(d, summary)
