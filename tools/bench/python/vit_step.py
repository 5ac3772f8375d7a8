#!/usr/bin/python3
"""Python reference for facetrain's ViT training step (models/vit.h, models/vit.cpp, trainer/vit_task.cpp):
conv patch embedding, class token, learned position embedding, pre-LN blocks (fused qkv attention, GELU MLP),
final LayerNorm (eps 1e-6), linear head on the class token; cross-entropy, AdamW, global grad-norm clip.
Like facetrain, the last block computes only the class-token row after attention (--all-tokens: every row).
Random N(0,1) images (what `facetrain bench step` feeds a mean/std-normalised model). Cross-check only.
Prints ONE line: step seconds (median) and images/s."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import classifier_step, compiled, parse, parser, report, time_steps


def affine(x, weight, bias):
    """y = x W^T + b on the last dim as ONE 2-D addmm (bias fused into the GEMM), as vit.cpp's affine()."""
    x2 = x.reshape(-1, x.shape[-1])
    y = torch.addmm(bias, x2, weight.t()) if bias is not None else x2.mm(weight.t())
    return y.view(*x.shape[:-1], y.shape[1])


def trunc_normal_linear(layer):
    # vit.cpp init_linear: truncated normal std 0.02 in [-0.04, 0.04], zero bias.
    nn.init.trunc_normal_(layer.weight, 0.0, 0.02, -0.04, 0.04)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class Attention(nn.Module):
    def __init__(self, width, heads, sdpa=False):
        super().__init__()
        self.heads, self.scale, self.sdpa = heads, (width // heads) ** -0.5, sdpa
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        trunc_normal_linear(self.qkv)
        trunc_normal_linear(self.proj)

    def forward(self, x, cls_only=False):
        b, t, w = x.shape
        h, hd = self.heads, w // self.heads
        W, B = self.qkv.weight, self.qkv.bias
        if not cls_only:
            # One GEMM, then one copy to (3, B*heads, T, hd) so bmm reads contiguous matrices; unbind (not
            # qkv[i]) because its backward is one stack instead of three full-size zero tensors.
            q, k, v = affine(x, W, B).view(b, t, 3, h, hd).permute(2, 0, 3, 1, 4).reshape(3, b * h, t, hd).unbind(0)
        else:
            # Class-token query only: k, v for every token (rows w..3w of the fused weight), q for token 0.
            k, v = affine(x, W.narrow(0, w, 2 * w), B.narrow(0, w, 2 * w)).view(b, t, 2, h, hd) \
                .permute(2, 0, 3, 1, 4).reshape(2, b * h, t, hd).unbind(0)
            q = affine(x[:, 0], W.narrow(0, 0, w), B.narrow(0, 0, w)).view(b * h, 1, hd)
        rows = q.shape[1]
        if self.sdpa:
            # PyTorch 2.x's fused attention (flash-attention CPU kernel): what a 2.x user writes.
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = torch.bmm(q, k.transpose(1, 2)).mul_(self.scale)  # bmm keeps its inputs, not its output
            weights = torch.softmax(scores, -1, dtype=torch.float)
            out = torch.bmm(weights, v)
        out = out.view(b, h, rows, hd).transpose(1, 2).reshape(b, rows, w)
        return affine(out, self.proj.weight, self.proj.bias)


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, hidden), nn.Linear(hidden, width)
        trunc_normal_linear(self.fc1)
        trunc_normal_linear(self.fc2)

    def forward(self, x):
        return affine(F.gelu(affine(x, self.fc1.weight, self.fc1.bias)), self.fc2.weight, self.fc2.bias)


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio, eps, sdpa=False):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width, eps=eps), Attention(width, heads, sdpa)
        self.norm2, self.mlp = nn.LayerNorm(width, eps=eps), Mlp(width, int(round(width * mlp_ratio)))

    def forward(self, x, cls_only=False):
        residual = x[:, :1] if cls_only else x
        x = residual + self.attn(self.norm1(x), cls_only)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels, width, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, width, patch, patch)
        nn.init.trunc_normal_(self.proj.weight, 0.0, 0.02, -0.04, 0.04)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, width, g, g) -> (B, g*g, width)


class ViT(nn.Module):
    """Parameter names as facetrain's (timm's): patch_embed.proj, cls_token, pos_embed, blocks.N.*, norm, head."""

    def __init__(self, image, patch, channels, classes, width, depth, heads, mlp_ratio, eps=1e-6, all_tokens=False, sdpa=False):
        super().__init__()
        assert image % patch == 0 and width % heads == 0
        self.all_tokens = all_tokens
        self.patch_embed = PatchEmbed(channels, width, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, width))
        nn.init.trunc_normal_(self.cls_token, 0.0, 0.02, -0.04, 0.04)
        nn.init.trunc_normal_(self.pos_embed, 0.0, 0.02, -0.04, 0.04)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio, eps, sdpa) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=eps)
        self.head = nn.Linear(width, classes)
        trunc_normal_linear(self.head)

    def forward(self, images):
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, -1), x], dim=1) + self.pos_embed
        for i, block in enumerate(self.blocks):
            # Only the class token of the last block's output is read: computing just that row after
            # attention gives the same logits (vit.cpp VitImpl::forward).
            x = block(x, cls_only=not self.all_tokens and i == len(self.blocks) - 1)
        return self.head(self.norm(x)[:, 0])


def vit_flops_per_image(image, patch, channels, width, depth, mlp_ratio, classes):
    """vit.cpp vit_flops_per_image: forward GEMM FLOPs (2 per MAC), every token through every block (the
    standard count, also with the class-token-only last block), plus patch embedding and head."""
    n = (image // patch) ** 2
    t, h = n + 1, int(round(width * mlp_ratio))
    embed = 2 * n * (channels * patch * patch) * width
    block = 2 * (t * width * 3 * width + 2 * t * t * width + t * width * width + 2 * t * width * h)
    return embed + depth * block + 2 * width * classes


def add_model_args(p):
    p.add_argument("--image", type=int, default=32)
    p.add_argument("--patch", type=int, default=4)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=192)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=3)
    p.add_argument("--mlp-ratio", type=float, default=4.0)
    p.add_argument("--all-tokens", action="store_true",
                   help="last block computes every token (timm/HF) instead of facetrain's class-token row only")
    p.add_argument("--attention", choices=("bmm", "sdpa"), default="bmm",
                   help="bmm: two batched matmuls and a softmax (as LibTorch 1.13 has); sdpa: PyTorch 2.x's "
                        "F.scaled_dot_product_attention")
    # Optimizer defaults of configs/vit-fashion-mnist*.pbtxt (AdamW betas 0.9/0.999, eps 1e-8 as LibTorch).
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--grad-clip", type=float, default=1.0, help="global norm clip; 0 = norm computed, no clip")
    p.add_argument("--label-smoothing", type=float, default=0.0)


def model_fields(a):
    return (f"width={a.width} depth={a.depth} heads={a.heads} all_tokens={int(a.all_tokens)} "
            f"attention={a.attention}")


def train_gflop_per_image(a):
    """3x the forward count (forward + backward), the convention of `bench step`."""
    return 3 * vit_flops_per_image(a.image, a.patch, a.channels, a.width, a.depth, a.mlp_ratio, a.classes) / 1e9


def build(a, wrap=None, data_seed=1000):
    """One-step closure for args from add_model_args (+ --batch): model, AdamW, a random batch drawn after
    torch.manual_seed(data_seed) (bench/step_bench.cpp: 1000 + rank). wrap(model) -> the module the step calls
    (ddp_step.py: the DDP wrapper); the optimizer and clipping see the model's own parameters."""
    model = ViT(a.image, a.patch, a.channels, a.classes, a.width, a.depth, a.heads, a.mlp_ratio,
                all_tokens=a.all_tokens, sdpa=a.attention == "sdpa")
    forward = compiled(wrap(model) if wrap is not None else model, a)
    return classifier_step(model, forward, a, data_seed, a.label_smoothing)


def main():
    p = parser(__doc__, batch=128)
    add_model_args(p)
    a = parse(p)
    step = build(a)
    report("vit_step", a, model_fields(a), time_steps(step, a.warmup, a.steps),
           gflop_per_step=train_gflop_per_image(a) * a.batch)


if __name__ == "__main__":
    main()
