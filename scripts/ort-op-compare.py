#!/usr/bin/env python3
"""Per-conv-shape table mecbed vs ONNX Runtime, one model.

    ort-op-compare.py MECBED.json ORT.jsonl

MECBED.json: `mecbed infer --model M.onnx --repeats N --fold-bn --fuse --json`.
ORT.jsonl: `node scripts/bench-ort.js profile M.onnx 1 N PREFIX` (one line per
ORT node, median kernel us). ORT names a fused node after its last output
(`layer1.0.relu2`, `layer1.0.bn3`, `...downsample.1`); each is mapped to the
mecbed node of that name and from there back to the nearest Conv before it
in mecbed's op order (BatchNorm names, folded away in mecbed, are tried as
the conv before them: `bnK` -> `convK`, `.1` -> `.0`). Rows group convs by
(MACs, output bytes); ORT nodes that map to no mecbed conv are listed apart.
"""
import json
import re
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ort-op-compare.py MECBED.json ORT.jsonl")
    try:
        prof = json.load(open(sys.argv[1]))["profile"]
        ort = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"ort-op-compare.py: {e}")
    idx = {o["name"]: i for i, o in enumerate(prof)}
    # ms of the nodes fused into a conv (reported 0) stay with the conv
    rows, other = {}, []
    for n in ort:
        name = re.sub(r"_nchwc$", "", n["node"])
        cands = [name, re.sub(r"bn(\d+)$", r"conv\1", name), re.sub(r"\.1$", ".0", name),
                 re.sub(r"bn$", "conv", name)]
        i = next((idx[c] for c in cands if c in idx), None)
        while i is not None and i >= 0 and prof[i]["type"] != "Conv":
            if prof[i]["type"] not in ("Relu", "Clip", "Add", "BatchNormalization"):
                i = None
                break
            i -= 1
        if n["op"] != "Conv" or i is None or i < 0:
            other.append((n["node"], n["op"], n["us"] / 1000))
            continue
        c = prof[i]
        key = (c["macs"], c["bytes_out"])
        r = rows.setdefault(key, {"n": 0, "mb": 0.0, "ort": 0.0, "ex": c["name"]})
        r["n"] += 1
        r["mb"] += c["ms"]
        r["ort"] += n["us"] / 1000
    print("| conv (first of shape) | n | MMAC | out KB | mecbed ms | ORT ms | ratio | gap ms |")
    print("|---|---|---|---|---|---|---|---|")
    tmb = tort = 0.0
    for key, r in sorted(rows.items(), key=lambda kv: kv[1]["ort"] - kv[1]["mb"]):
        tmb += r["mb"]
        tort += r["ort"]
        print(f"| {r['ex']} | {r['n']} | {key[0]/1e6:.1f} | {key[1]/1024:.0f} | {r['mb']:.3f} | "
              f"{r['ort']:.3f} | {r['mb']/max(r['ort'],1e-9):.2f} | {r['mb']-r['ort']:+.3f} |")
    print(f"| all convs | {sum(r['n'] for r in rows.values())} | | | {tmb:.2f} | {tort:.2f} | "
          f"{tmb/max(tort,1e-9):.2f} | {tmb-tort:+.2f} |")
    mb_other = sum(o["ms"] for o in prof if o["type"] != "Conv")
    print(f"\nnon-conv: mecbed {mb_other:.2f} ms; ORT nodes not mapped to a conv: "
          + ", ".join(f"{a} ({b}) {c:.3f}" for a, b, c in other))


if __name__ == "__main__":
    main()
