#!/usr/bin/env python3
"""Largest relative difference between two ilt model.safetensors (json + numpy only).

Usage: compare_weights.py A.safetensors B.safetensors TOLERANCE
Per tensor: max |a - b| / max(max |a|, 1e-12); exits 1 when the largest is above TOLERANCE.
"""
import json
import struct
import sys

import numpy as np


def load(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n :]
    return {k: np.frombuffer(body[v["data_offsets"][0] : v["data_offsets"][1]], dtype="<f4") for k, v in header.items()}


a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
if a.keys() != b.keys():
    sys.exit(f"tensor names differ: {sorted(a.keys() ^ b.keys())}")
worst, name = 0.0, ""
for k in a:
    d = float(np.abs(a[k] - b[k]).max()) / max(float(np.abs(a[k]).max()), 1e-12)
    if d > worst:
        worst, name = d, k
print(f"largest relative difference {worst:.3g} ({name}); tolerance {tol:g}")
sys.exit(0 if worst <= tol else 1)
