#!/usr/bin/python3
"""Tables and curves of the language-model experiments (ablation/, hebrew/).

Reads, for each run OUT/runs/RUN (RUN = ARM-sSEED): train.log (parameters), run/metrics.jsonl
(per-record model_flops and text_bytes; validation bpb by step) and eval.json (ilt-eval on the
whole validation split). Writes OUT/results.md and OUT/curves.png (validation bpb against
training FLOPs, one line per arm: the mean over seeds, seeds faint).
Usage: report.py OUT [--title T] [--command C] RUN...   (Debian's python3-matplotlib)
"""
import argparse
import collections
import datetime
import json
import os
import platform
import re
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("runs", nargs="+")
ap.add_argument("--title", default="")
ap.add_argument("--command", default="")
a = ap.parse_args()
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def load(run):
    d = os.path.join(a.out, "runs", run)
    log = open(os.path.join(d, "train.log"), errors="replace").read()
    m = re.search(r"ilt-train: (\S+) parameters", log)
    rows = [json.loads(l) for l in open(os.path.join(d, "run", "metrics.jsonl"))]
    flops = text = 0.0
    at_step = {0: (0.0, 0.0)}
    wall = 0.0
    for r in rows:
        if r["split"] == "train":
            flops += r.get("model_flops", 0.0)
            text += r.get("text_bytes", 0.0)
            wall = max(wall, r.get("elapsed", 0.0))
            at_step[r["step"]] = (flops, text)
    curve = []
    for r in rows:
        if r["split"] == "validation" and r["step"] in at_step:
            curve.append((at_step[r["step"]][0], r["bpb"]))
    ev = json.load(open(os.path.join(d, "eval.json")))
    arm, seed = run.rsplit("-s", 1)
    flags_path = os.path.join(d, "flags")
    flags = open(flags_path).read().strip() if os.path.exists(flags_path) else "?"
    return {"flags": flags, "run": run, "arm": arm, "seed": seed, "params": m.group(1) if m else "?", "flops": flops,
            "text": text, "wall": wall, "curve": curve, "eval": ev}


def at_flops(curve, x):
    """Validation bpb at training FLOPs x (linear between evaluations; None past the run)."""
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / max(x1 - x0, 1e-30)
    return curve[-1][1] if curve and abs(curve[-1][0] - x) < 1e-9 * max(x, 1) else None


runs = [load(r) for r in a.runs]
arms = list(dict.fromkeys(r["arm"] for r in runs))
seeds = sorted(set(r["seed"] for r in runs))


def pct(x):
    return f"{100 * x:.1f}%"


commit = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
L = [f"# {a.title or 'Experiment'}: results", "",
     f"Made {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC by `{a.command}` at commit `{commit}`, "
     f"on {os.cpu_count()} cores ({cpu}). Seeds: {', '.join(seeds)}. `make report` rebuilds this file "
     f"and `curves.png` from the runs.", "",
     f"ilt-train flags of run {runs[0]['run']} (the others differ in --config and --seed only): "
     f"`{runs[0]['flags']}`", "",
     "## Runs", "",
     "Training FLOPs: model FLOPs of the forward and backward passes (3x forward) with the encoders "
     "counted on every word occurrence. Validation: the whole held-out split (`ilt-eval`); bpb = bits "
     "per text byte (an ILT's numerator includes one end-of-word symbol per word); exact match = the "
     "next word written right by greedy decoding from the gold context.", "",
     "| arm | seed | parameters | training FLOPs | text bytes seen | wall time | validation bpb | next-word exact match |",
     "|---|---|---|---|---|---|---|---|"]
for r in runs:
    o = r["eval"]["overall"]
    L.append(f"| {r['arm']} | {r['seed']} | {r['params']} | {r['flops']:.3g} | {r['text'] / 1e6:.1f} MB | "
             f"{r['wall'] / 60:.1f} min | {o['bpb']:.3f} | {pct(o['exact_match'])} |")

# Equal-FLOPs comparison against the byte-level baseline, per seed.
common = min(r["flops"] for r in runs)
L += ["", f"## At equal training FLOPs ({common:.3g}, the smallest run's total)", "",
      "Validation bpb read off each run's curve (evaluations on the first batches of the split, "
      "interpolated) at the same FLOPs; the ratio is to the byte-level baseline of the same seed.", "",
      "| arm | " + " | ".join(f"seed {s}: bpb" for s in seeds) + " | ratio to bytes-lm (per seed) |",
      "|---|" + "---|" * len(seeds) + "---|"]
base = {r["seed"]: at_flops(r["curve"], common) for r in runs if r["arm"] == "bytes-lm"}
for arm in arms:
    vals, ratios = [], []
    for s in seeds:
        r = next((x for x in runs if x["arm"] == arm and x["seed"] == s), None)
        v = at_flops(r["curve"], common) if r else None
        vals.append(f"{v:.3f}" if v is not None else "-")
        if v is not None and base.get(s):
            ratios.append(f"{v / base[s]:.3f}")
    L.append(f"| {arm} | " + " | ".join(vals) + f" | {', '.join(ratios) or '-'} |")

# By language tag (mean over seeds).
tags = sorted({t for r in runs for t in r["eval"].get("by_tag", {})})
if tags:
    L += ["", "## By language (validation bpb / next-word exact match, mean over seeds)", "",
          "| arm | " + " | ".join(tags) + " |", "|---|" + "---|" * len(tags)]
    for arm in arms:
        cells = []
        for t in tags:
            v = [r["eval"]["by_tag"][t] for r in runs if r["arm"] == arm and t in r["eval"].get("by_tag", {})]
            cells.append(f"{sum(x['bpb'] for x in v) / len(v):.3f} / {pct(sum(x['exact_match'] for x in v) / len(v))}"
                         if v else "-")
        L.append(f"| {arm} | " + " | ".join(cells) + " |")
open(os.path.join(a.out, "results.md"), "w").write("\n".join(L) + "\n")

fig, ax = plt.subplots(figsize=(7, 4.5))
colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
for i, arm in enumerate(arms):
    rs = [r for r in runs if r["arm"] == arm]
    for r in rs:
        ax.plot([x for x, _ in r["curve"]], [y for _, y in r["curve"]], color=colors[i % len(colors)], alpha=0.3, lw=1)
    n = min(len(r["curve"]) for r in rs)
    xs = [sum(r["curve"][k][0] for r in rs) / len(rs) for k in range(n)]
    ys = [sum(r["curve"][k][1] for r in rs) / len(rs) for k in range(n)]
    ax.plot(xs, ys, color=colors[i % len(colors)], lw=2, label=arm)
ax.set_xlabel("training FLOPs")
ax.set_ylabel("validation bits per text byte")
ax.set_xscale("log")
ax.grid(alpha=0.3)
ax.legend()
ax.set_title(a.title)
fig.tight_layout()
fig.savefig(os.path.join(a.out, "curves.png"), dpi=110)
print("\n".join(L))
