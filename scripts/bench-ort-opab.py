#!/usr/bin/env python3
"""Per-op A/B of mecbed's cpu kernels under environment switches, interleaved.

    scripts/bench-ort-opab.py MODEL.onnx ROUNDS CONFIG [CONFIG ...]

Each CONFIG is VAR=VAL[,VAR=VAL...] (anything without '=' is a label: the
build's defaults). Per round, every CONFIG runs `mecbed infer --model MODEL
--repeats $REPS --fold-bn --fuse --json` once, in turn, so the configs share
the machine's noise. Prints the op sum and wall per round, then per node
group (type, MACs, output bytes) the sum of each node's minimum over the
rounds and its ratio to the first CONFIG, and the whole model's sum of
per-node minima (steadier than the wall on a busy machine). NODES="a b"
also prints those nodes alone. Environment: BUILD (build), REPS (10), TOP
(16 groups), THR (--threads). The companion of scripts/bench-ort.sh's
BENCH_ORT_AB (whole models against ORT) and bench-ort.js profile (per op
against ORT).
"""
import collections
import json
import os
import subprocess
import sys


def main():
    if len(sys.argv) < 4 or not sys.argv[2].isdigit():
        sys.exit(__doc__)
    model, rounds, cfgs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    if not os.path.isfile(model):
        sys.exit(f"bench-ort-opab.py: {model}: no such file")
    mecbed = os.path.join(os.environ.get("BUILD", "build"), "mecbed")
    if not os.access(mecbed, os.X_OK):
        sys.exit(f"bench-ort-opab.py: {mecbed} not built (make all; BUILD names the build folder)")
    reps = os.environ.get("REPS", "10")
    res = {c: [] for c in cfgs}
    for _ in range(rounds):
        for c in cfgs:
            env = dict(os.environ)
            for kv in c.split(","):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    env[k] = v
            cmd = [mecbed, "infer", "--model", model, "--repeats", reps, "--fold-bn", "--fuse", "--json"]
            if "THR" in os.environ:
                cmd += ["--threads", os.environ["THR"]]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"bench-ort-opab.py: {' '.join(cmd)} ({c}) failed:\n{p.stderr}")
            res[c].append(json.loads(p.stdout))
    print("load average:", open("/proc/loadavg").read().split()[:3])
    base = cfgs[0]
    print("config: op sum per round | wall per round")
    for c in cfgs:
        print(c, " ".join("%.2f" % j["total_ms"] for j in res[c]), "|",
              " ".join("%.2f" % j["wall_ms"] for j in res[c]))
    grp = collections.OrderedDict()
    for c in cfgs:
        for j in res[c]:
            for p in j["profile"]:
                if p["type"] == "Input":
                    continue
                key = (p["type"], p["macs"], p["bytes_out"])
                grp.setdefault(key, {}).setdefault(c, {}).setdefault(p["name"], []).append(p["ms"])
    rows = []
    for key, d in grp.items():
        tot = {c: sum(min(v) for v in d[c].values()) for c in cfgs}
        rows.append((key, len(d[base]), next(iter(d[base])), tot))
    rows.sort(key=lambda r: -r[3][base])
    print("| node (first of group) | n | " + " | ".join(cfgs) + " | ratio |")
    for key, n, name, tot in rows[:int(os.environ.get("TOP", "16"))]:
        print("| %s %s | %d | %s | %s |" % (name, key[0], n, " | ".join("%.3f" % tot[c] for c in cfgs),
              " ".join("%.2f" % (tot[c] / tot[base]) if tot[base] else "-" for c in cfgs[1:])))
    print("sum of per-node minima:", " ".join("%s %.2f" % (c, sum(r[3][c] for r in rows)) for c in cfgs))
    for nm in os.environ.get("NODES", "").split():
        vals = []
        for c in cfgs:
            ms = [p["ms"] for j in res[c] for p in j["profile"] if p["name"] == nm]
            vals.append(min(ms) if ms else float("nan"))
        print("%-22s %s  ratio %s" % (nm, " ".join("%.3f" % v for v in vals),
              " ".join("%.2f" % (v / vals[0]) for v in vals[1:])))


if __name__ == "__main__":
    main()
