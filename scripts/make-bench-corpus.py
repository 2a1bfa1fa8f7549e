#!/usr/bin/env python3
"""Writes a large deterministic benchmark corpus: space-separated text, one document per
line, words drawn from the demo corpus (so frequencies look like text) plus random
Latin/Hebrew words (so there are many distinct words to render).

Usage: make-bench-corpus.py OUT.txt MEGABYTES
"""
import json
import random
import sys
from pathlib import Path

out, megabytes = sys.argv[1], float(sys.argv[2])
root = Path(__file__).resolve().parent.parent
rng = random.Random(1234)
vocab = []
for line in open(root / "data/demo/udhr.jsonl", encoding="utf-8"):
    d = json.loads(line)
    if d["lang"] in ("eng", "heb", "fra", "deu", "spa", "rus", "ell", "tur", "vie"):
        vocab.extend(d["text"].split())
latin = "abcdefghijklmnopqrstuvwxyz"
hebrew = "".join(chr(c) for c in range(0x5D0, 0x5EB))


def random_word():
    alphabet = hebrew if rng.random() < 0.3 else latin
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 12)))


target = int(megabytes * 1e6)
size = 0
with open(out, "w", encoding="utf-8") as f:
    while size < target:
        words = [rng.choice(vocab) if rng.random() < 0.8 else random_word() for _ in range(rng.randint(20, 200))]
        line = " ".join(words) + "\n"
        f.write(line)
        size += len(line.encode("utf-8"))
