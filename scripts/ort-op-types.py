#!/usr/bin/env python3
"""Where mecbed's time differs from ONNX Runtime's, per op type, over models.

    ort-op-types.py [--shapes] NAME MECBED.json ORT.jsonl [NAME MECBED.json ORT.jsonl ...]

Each model: `mecbed infer --model MODEL.onnx --json` (the `profile` array,
per-node ms, nodes fused into another report 0; convs with their window) and
`node scripts/bench-ort.js profile MODEL.onnx T RUNS PREFIX` (one line per
ORT node, median kernel us). scripts/bench-ort.sh runs it with
BENCH_ORT_OPS=1.

ORT fuses differently (its NCHWc transformer folds a BatchNormalization that
follows a Concat into a conv, Relu and Add into the conv before them) and
names a fused node after its last output. So each ORT node is charged to the
mecbed node of that name (`_nchwc` and `_bn` dropped; the name of a BatchNorm
mecbed folded away tried as the conv before it), walked back through the nodes mecbed fused (0 ms) to
the one mecbed timed. The class is that node's: its op type, and for Conv
the kind of conv (depthwise, 1x1, stride 2, KxK stride 1; the stem, with 4
or fewer input channels, apart). ORT nodes with no mecbed
counterpart (its layout reorders) get a class of their own.

Prints, summed over the models: per class, mecbed ms, ORT ms, their ratio,
the gap, and the model contributing most to the gap. With --shapes, per
shape instead: nodes of one class with the same MACs and output bytes (a
ResNet stage's repeated blocks), named after the first of them.
"""
import collections
import json
import re
import sys

FUSED_THROUGH = ("Relu", "Clip", "Add", "BatchNormalization", "Sigmoid", "HardSwish", "LeakyRelu", "Mul")


def conv_kind(o):
    """A conv's kind from the window fields `mecbed infer --json` gives convs."""
    ks, st, group, cin = o.get("kernel"), o.get("stride", [1, 1]), o.get("group", 1), o.get("in_channels", 0)
    if ks is None:
        return "Conv"
    if group > 1 and cin == group:
        return "Conv depthwise"
    if 0 < cin <= 4:
        return "Conv stem (<= 4 input channels)"
    if max(st) > 1:
        return "Conv stride 2+"
    if ks == [1, 1]:
        return "Conv 1x1"
    return "Conv %dx%d stride 1" % (ks[0], ks[1])


def charge(name, idx, prof):
    """The index of the mecbed node an ORT node named `name` stands for, or None."""
    # "fused classifier.0" (FusedGemm), "blocks.0.attn.scores/MatmulTransposeFusion//..."
    name = re.sub(r"_nchwc$", "", re.sub(r"^fused ", "", name).split("/")[0])
    # a BatchNorm mecbed folded away is named after the conv before it: torchvision's
    # "bn2" after "conv2", "downsample.1" after "downsample.0", "conv.3" after "conv.2"
    prev = re.sub(r"\.(\d+)$", lambda m: "." + str(int(m.group(1)) - 1), name) if re.search(r"\.[1-9]\d*$", name) else name
    cands = [name, re.sub(r"_bn$", "", name), re.sub(r"bn(\d+)$", r"conv\1", name), prev, re.sub(r"bn$", "conv", name)]
    i = next((idx[c] for c in cands if c in idx), None)
    # walk back over what mecbed fused into the node before it (reported 0 ms)
    while i is not None and i > 0 and prof[i]["ms"] == 0 and prof[i]["type"] in FUSED_THROUGH:
        i -= 1
    return i


def classify(node):
    return conv_kind(node) if node["type"] == "Conv" else node["type"]


def shape_key(node):
    """--shapes: nodes of one kind with the same work and output, e.g. ResNet's repeated blocks."""
    return (classify(node), node["macs"], node["bytes_out"])


def load(model, mb_path, ort_path):
    try:
        prof = json.load(open(mb_path))["profile"]
        ort = [json.loads(line) for line in open(ort_path) if line.strip()]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"ort-op-types.py: {model}: {e}")
    return prof, ort


def tally(models, key):
    """Per group (key(node)): mecbed ms, ORT ms charged to it, node count, first node, gap by model."""
    tot = collections.defaultdict(lambda: {"mb": 0.0, "ort": 0.0, "n": 0, "first": "", "by_model": collections.Counter()})
    for model, mb_path, ort_path in models:
        prof, ort = load(model, mb_path, ort_path)
        idx = {o["name"]: i for i, o in enumerate(prof)}
        types = {o["type"] for o in prof}
        for o in prof:
            if o["ms"] > 0:
                r = tot[key(o)]
                r["mb"] += o["ms"]
                r["n"] += 1
                r["first"] = r["first"] or o["name"]
                r["by_model"][model] += o["ms"]
        for n in ort:
            i = charge(n["node"], idx, prof)
            # an ORT node named after no mecbed node (its Gelu fusion names its own
            # nodes "Gelu_token_N") goes to mecbed's op type of that name, if any
            if i is not None:
                k = key(prof[i])
            else:
                k = n["op"] if n["op"] in types else f"{n['op']} (ORT only)"
            r = tot[k]
            r["ort"] += n["us"] / 1000
            r["first"] = r["first"] or n["node"]
            r["by_model"][model] -= n["us"] / 1000
    return tot


def main():
    args = sys.argv[1:]
    shapes = bool(args) and args[0] == "--shapes"
    args = args[1:] if shapes else args
    if not args or len(args) % 3:
        sys.exit(__doc__)
    tot = tally([args[k:k + 3] for k in range(0, len(args), 3)], shape_key if shapes else classify)
    head = "| node (first of shape) | kind | MMAC | out KB " if shapes else "| op class "
    print(head + "| mecbed nodes | mecbed ms | ORT ms | ratio | gap ms | most of the gap in |")
    print("|---" * (4 if shapes else 1) + "|---|---|---|---|---|---|")
    smb = sort = 0.0
    for key, r in sorted(tot.items(), key=lambda kv: kv[1]["ort"] - kv[1]["mb"]):
        smb += r["mb"]
        sort += r["ort"]
        ratio = f"{r['mb'] / r['ort']:.2f}" if r["ort"] > 0 and r["mb"] > 0 else "-"
        worst, gap = max(r["by_model"].items(), key=lambda kv: abs(kv[1]), default=("", 0.0))
        if not shapes:
            label = key
        elif isinstance(key, tuple):
            label = f"{r['first']} | {key[0]} | {key[1] / 1e6:.1f} | {key[2] / 1024:.0f}"
        else:
            label = f"{r['first']} | {key} | | "
        print(f"| {label} | {r['n']} | {r['mb']:.2f} | {r['ort']:.2f} | {ratio} | {r['mb'] - r['ort']:+.2f} | "
              f"{worst} ({gap:+.2f}) |")
    print("| all " + "| " * (3 if shapes else 0) + f"| {sum(r['n'] for r in tot.values())} | {smb:.2f} | {sort:.2f} | "
          f"{smb / max(sort, 1e-9):.2f} | {smb - sort:+.2f} | |")


if __name__ == "__main__":
    main()
