#!/usr/bin/env python3
"""Synthetic easy tasks as prefix-LM documents: ShiftOut (0x0E), the prompt, ShiftIn (0x0F),
the answer. The prompt block is read both ways; the answer is what the model learns to write.

  repeat   "repeat: kq zmx"   -> "kq zmx"   (1-3 random words of 2-5 letters)
  reverse  "reverse: abcd"    -> "dcba"     (one random word of 3-6 letters)
  count    "count a: banana"  -> "3"        (occurrences of a letter in a random word)

Writes TRAIN.jsonl (documents: {"text", "task"}) and TEST.jsonl (unseen prompts:
{"text": the prompt up to and including ShiftIn, "task", "answer"}).
Usage: tasks.py TRAIN.jsonl TEST.jsonl [--train N] [--test N] [--seed S]  (standard library only)
"""
import argparse
import json
import random

ap = argparse.ArgumentParser()
ap.add_argument("train")
ap.add_argument("test")
ap.add_argument("--train-per-task", type=int, default=4000)
ap.add_argument("--test-per-task", type=int, default=100)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()
rng = random.Random(a.seed)
letters = "abcdefghijklmnopqrstuvwxyz"


def word(lo, hi):
    return "".join(rng.choice(letters) for _ in range(rng.randint(lo, hi)))


def example(task):
    if task == "repeat":
        s = " ".join(word(2, 5) for _ in range(rng.randint(1, 3)))
        return "repeat: " + s, s
    if task == "reverse":
        w = word(3, 6)
        return "reverse: " + w, w[::-1]
    w = word(3, 8)
    c = rng.choice(w) if rng.random() < 0.8 else rng.choice(letters)
    return f"count {c}: {w}", str(w.count(c))


tasks = ("repeat", "reverse", "count")
seen = set()
with open(a.train, "w") as f:
    for _ in range(a.train_per_task):
        for t in tasks:
            p, ans = example(t)
            seen.add(p)
            f.write(json.dumps({"text": "\x0e" + p + "\x0f" + ans, "task": t}) + "\n")
with open(a.test, "w") as f:
    for t in tasks:
        n = 0
        while n < a.test_per_task:
            p, ans = example(t)
            if p in seen:  # unseen prompts only
                continue
            seen.add(p)
            f.write(json.dumps({"text": "\x0e" + p + "\x0f", "task": t, "answer": ans}) + "\n")
            n += 1
