#!/usr/bin/env python3
"""Scores generated answers against TEST.jsonl: exact match per task, one row per task and
arm. Usage: score.py TEST.jsonl OUT.md ARM=GENERATED.jsonl[:META.json] ...  (standard library only)
GENERATED.jsonl: ilt-generate --json output, one line per test prompt, in order."""
import json
import sys

test = [json.loads(l) for l in open(sys.argv[1])]
rows = []
for spec in sys.argv[3:]:
    arm, path = spec.split("=", 1)
    gen = [json.loads(l) for l in open(path)]
    assert len(gen) == len(test), f"{path}: {len(gen)} answers for {len(test)} prompts"
    per = {}
    for t, g in zip(test, gen):
        ok, n = per.get(t["task"], (0, 0))
        per[t["task"]] = (ok + (g["text"] == t["answer"]), n + 1)
    for task, (ok, n) in per.items():
        rows.append((task, arm, ok, n))
with open(sys.argv[2], "w") as f:
    f.write("| task | arm | exact match | prompts |\n|---|---|---|---|\n")
    for task, arm, ok, n in sorted(rows):
        f.write(f"| {task} | {arm} | {100.0 * ok / n:.1f}% | {n} |\n")
print(open(sys.argv[2]).read(), end="")
