#!/usr/bin/env python3
"""Writes a ViT with Hugging Face ViTModel names (google/vit-base-patch16-224-in21k's layout: no classifier,
a pooler the classifier does not use) and random weights as safetensors, by the format's definition (8-byte
header length, JSON header, raw little-endian tensors). Needs only torch (Debian's python3-torch).
Usage: write_hf_vit.py OUT.safetensors [--width 768 --depth 12 --heads 12 --patch 16 --image 224]"""
import argparse
import json
import struct

import torch

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--width", type=int, default=768)
ap.add_argument("--depth", type=int, default=12)
ap.add_argument("--patch", type=int, default=16)
ap.add_argument("--image", type=int, default=224)
ap.add_argument("--mlp", type=int, default=3072)
a = ap.parse_args()
torch.manual_seed(0)
w, tokens = a.width, (a.image // a.patch) ** 2 + 1
t = {
    "vit.embeddings.cls_token": torch.randn(1, 1, w) * 0.02,
    "vit.embeddings.position_embeddings": torch.randn(1, tokens, w) * 0.02,
    "vit.embeddings.patch_embeddings.projection.weight": torch.randn(w, 3, a.patch, a.patch) * 0.02,
    "vit.embeddings.patch_embeddings.projection.bias": torch.zeros(w),
    "vit.layernorm.weight": torch.ones(w),
    "vit.layernorm.bias": torch.zeros(w),
    "vit.pooler.dense.weight": torch.randn(w, w) * 0.02,
    "vit.pooler.dense.bias": torch.zeros(w),
}
for i in range(a.depth):
    p = "vit.encoder.layer.%d." % i
    for name, shape in [("attention.attention.query", (w, w)), ("attention.attention.key", (w, w)),
                        ("attention.attention.value", (w, w)), ("attention.output.dense", (w, w)),
                        ("intermediate.dense", (a.mlp, w)), ("output.dense", (w, a.mlp))]:
        t[p + name + ".weight"] = torch.randn(*shape) * 0.02
        t[p + name + ".bias"] = torch.zeros(shape[0])
    for name in ("layernorm_before", "layernorm_after"):
        t[p + name + ".weight"] = torch.ones(w)
        t[p + name + ".bias"] = torch.zeros(w)
header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
for name in sorted(t):
    data = t[name].contiguous().float().numpy().tobytes()
    header[name] = {"dtype": "F32", "shape": list(t[name].shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(a.out, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for b in blobs:
        f.write(b)
print(len(t), "tensors")
