#!/usr/bin/env python3
"""Reference outputs from the libraries themselves, for tests/models/reference_test.cpp: a timm
VisionTransformer and a torchvision MobileNetV2 (random weights, eval mode) with their logits on one fixed
input, and timm's resample_abs_pos_embed of a 14x14 position grid to 4x4. Runs in the test-only environment
that has timm and torchvision (.venv-torch). Usage: make_reference.py OUT_DIR"""
import sys

import timm
import torch
import torchvision
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

out = sys.argv[1]
torch.manual_seed(0)
x = torch.randn(2, 3, 32, 32)

vit = timm.models.vision_transformer.VisionTransformer(
    img_size=32, patch_size=4, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2, num_classes=3).eval()
for p in vit.parameters():  # timm zero-initialises some tensors; random values test every mapping
    torch.nn.init.normal_(p, std=0.2)
with torch.no_grad():
    save_file({"input": x, "logits": vit(x)}, out + "/timm_vit_io.safetensors")
save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, out + "/timm_vit.safetensors")

net = torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=4).eval()
with torch.no_grad():
    for m in net.modules():  # BatchNorm statistics other than 0/1, so eval-mode normalisation is checked too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    save_file({"input": x, "logits": net(x)}, out + "/torchvision_mobilenet_v2_io.safetensors")
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, out + "/torchvision_mobilenet_v2.safetensors")

big = timm.models.vision_transformer.VisionTransformer(
    img_size=224, patch_size=16, embed_dim=48, depth=1, num_heads=3, mlp_ratio=2, num_classes=3)
torch.nn.init.normal_(big.pos_embed, std=1.0)
save_file({k: v.contiguous() for k, v in big.state_dict().items()}, out + "/timm_vit224.safetensors")
save_file({"pos_embed": resample_abs_pos_embed(big.pos_embed.detach(), new_size=[4, 4], num_prefix_tokens=1)},
          out + "/timm_pos_embed_4x4.safetensors")
print("reference: timm", timm.__version__, "torchvision", torchvision.__version__, "torch", torch.__version__)
