#!/usr/bin/env python3
"""Compares two safetensors files tensor by tensor (standard library only): one line per tensor of the
first file, "same NAME ELEMENTS" or "differs NAME ELEMENTS" ("missing" when the second lacks it)."""
import json
import struct
import sys


def tensors(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        elements = 1
        for d in entry["shape"]:
            elements *= d
        out[name] = (data[begin:end], elements)
    return out


a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
for name, (data, elements) in sorted(a.items()):
    state = "missing" if name not in b else ("same" if b[name][0] == data else "differs")
    print(state, name, elements)
