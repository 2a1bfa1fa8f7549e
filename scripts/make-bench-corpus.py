#!/usr/bin/env python3
"""Writes a large deterministic benchmark corpus: space-separated text, one document per
line.

Default: words drawn from the demo corpus (so frequencies look like text) plus 20% random
Latin/Hebrew words, so the vocabulary keeps growing with the corpus (a stress test for
rendering).

--zipf N: words drawn by a Zipf law (exponent 1, like text) over a fixed vocabulary of N
words (the demo corpus's words first, then random Latin/Hebrew words), so the vocabulary
stays bounded however large the corpus: what the streaming data preparation is measured on.

Usage: make-bench-corpus.py OUT.txt MEGABYTES [--zipf N]
Runs with any Python 3 (standard library only).
"""
import itertools
import json
import random
import sys
from pathlib import Path

args = sys.argv[1:]
zipf = 0
if "--zipf" in args:
    i = args.index("--zipf")
    zipf = int(args[i + 1])
    del args[i:i + 2]
if len(args) != 2:
    sys.exit(__doc__)
out, megabytes = args[0], float(args[1])
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
    if zipf:
        # Ranked vocabulary: distinct demo words by frequency, then random words.
        counts = {}
        for w in vocab:
            counts[w] = counts.get(w, 0) + 1
        ranked = sorted(counts, key=lambda w: (-counts[w], w))[:zipf]
        seen = set(ranked)
        while len(ranked) < zipf:
            w = random_word()
            if w not in seen:
                seen.add(w)
                ranked.append(w)
        cum = list(itertools.accumulate(1.0 / r for r in range(1, zipf + 1)))
        while size < target:
            lines = []
            for _ in range(1000):
                lines.append(" ".join(rng.choices(ranked, cum_weights=cum, k=rng.randint(20, 200))) + "\n")
            chunk = "".join(lines)
            f.write(chunk)
            size += len(chunk.encode("utf-8"))
    else:
        while size < target:
            words = [rng.choice(vocab) if rng.random() < 0.8 else random_word() for _ in range(rng.randint(20, 200))]
            line = " ".join(words) + "\n"
            f.write(line)
            size += len(line.encode("utf-8"))
