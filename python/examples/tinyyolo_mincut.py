#!/usr/bin/python3
"""The data of one figure, from Python: where the DADS min cut of tiny YOLOv2
lies as the uplink changes (experiments/bandwidth.conf's figure
"tinyyolo-mincut-position", drawn by experiments/plots/bandwidth.gp).

It reads the rates, links and device/edge node types from
experiments/bandwidth.conf, runs the same plan-mode points for tiny_yolov2
and mincut only (16 points, about a second), and prints per node types and
rate the ops on the device before the cut and the layer after which it cuts:
the series the figure plots. --csv FILE writes them; with pandas installed
(python3-pandas) it also prints the pivot table.

    python3 python/examples/tinyyolo_mincut.py [--csv cut.csv] [--conf experiments/bandwidth.conf]

The same figures are in the plan-mode regression baseline,
results/baseline/bandwidth.csv; tests/cli_python.sh checks that this script
reproduces them.
"""

import argparse
import configparser
import csv
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mecbed  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def figure_points(conf):
    """x values, link template and node types of the bandwidth experiment."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(conf)
    s = cp["sweep"]
    return s["x"].split(), s["links"].split()[0], s["node_types"].split(), s.get("profile", "default")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conf", default=os.path.join(ROOT, "experiments", "bandwidth.conf"))
    ap.add_argument("--csv", help="write the series here")
    a = ap.parse_args()
    xs, link, types, profile = figure_points(a.conf)
    with tempfile.TemporaryDirectory(prefix="mecbed-example-") as tmp:
        exp = os.path.join(tmp, "tinyyolo-cut.conf")
        with open(exp, "w") as f:
            f.write("[sweep]\nname = tinyyolo-cut\nmode = plan\nprofile = %s\nmodels = tiny_yolov2\n"
                    "policies = mincut\nx = %s\nlinks = %s\nnode_types = %s\n"
                    % (profile, " ".join(xs), link, " ".join(types)))
        res = mecbed.sweep(exp, out=os.path.join(tmp, "out"))
        rows = [{"node_types": r["node_types"], "uplink_mbps": float(r["x"]),
                 "device_ops": r["device_ops"], "cut_after": r["cut_after"],
                 "latency_ms": r["latency_ms"]} for r in res.records]
    rows.sort(key=lambda r: (r["node_types"], r["uplink_mbps"]))
    print("%-16s %12s %11s %-18s %11s" % ("device/edge", "uplink Mbit/s", "device ops", "cut after",
                                           "latency ms"))
    for r in rows:
        print("%-16s %12g %11d %-18s %11.1f" % (r["node_types"], r["uplink_mbps"], r["device_ops"],
                                                r["cut_after"], r["latency_ms"]))
    if a.csv:
        with open(a.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    try:
        df = mecbed.to_dataframe(rows)
        print()
        print(df.pivot(index="uplink_mbps", columns="node_types", values="device_ops"))
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
