#!/usr/bin/env python3
"""Reads an ilt model.safetensors with nothing but json and numpy, as other tools would.

Usage: check_safetensors.py MODEL.safetensors CONFIG.json
Checks: header layout, every tensor's dtype/shape/offsets, data finite, expected names.
"""
import json
import struct
import sys

import numpy as np

path, config_path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8 : 8 + n])
body = data[8 + n :]
meta = header.pop("__metadata__", {})
assert meta.get("format") == "ilt", meta
tensors = {}
end = 0
for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    assert info["dtype"] == "F32", (name, info["dtype"])
    a, b = info["data_offsets"]
    assert a == end, f"{name}: gap or overlap at {a}"
    end = b
    arr = np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"])
    assert np.isfinite(arr).all(), name
    tensors[name] = arr
assert end == len(body), "trailing bytes"
config = json.load(open(config_path))["model"]
latent = config["latent"]
assert tensors["latent.blocks.0.qkv.weight"].shape == (3 * latent["dim"], latent["dim"])
assert tensors["head.weight"].shape == (256, config["bytes_decoder"]["dim"])
total = sum(t.size for t in tensors.values())
assert total == json.load(open(config_path))["parameters"], (total, "parameters in config.json")
print(f"safetensors: {len(tensors)} tensors, {total} parameters read with numpy")
