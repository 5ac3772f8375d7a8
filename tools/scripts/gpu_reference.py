#!/usr/bin/env python3
"""Plain-PyTorch reference of `facetrain bench step`: the same model, batch and step, timed the same way.

Two models, as tools/scripts/gpu-check.sh runs them beside facetrain:
  vit    a stock ViT (pre-LayerNorm blocks, fused qkv, GELU MLP, class-token head), AdamW, cross-entropy on
         float32 logits, optional bf16 autocast. --attention sdpa uses F.scaled_dot_product_attention (what a
         PyTorch user writes, flash/efficient kernels on a GPU); --attention bmm spells it out as facetrain
         does (q k^T, float32 softmax, weights v).
  dcgan  the DCGAN paper's 64x64 G and D (pytorch/examples layout, D without sigmoid), Adam(0.5, 0.999), one
         step as facetrain's DcganTask: G(z) once, D on real and detached fake, D step; D frozen, D(fake)
         towards "real", G step.

The step time is the median over --steps timed steps after --warmup untimed ones; each step ends with a
device synchronisation (facetrain's step reads the loss back, which synchronises too).

FLOPs per image (2 per multiply-add, matmuls and convolutions only; elementwise work not counted):
  vit    3 x forward, the forward of models/vit.cpp's vit_flops_per_image() (every token through every block)
         -- the same count facetrain's bench step prints its GFLOP/s with.
  dcgan  3 G + 8 D forwards: G forward 1 (its backward 2); D forward on real and fake 2, their backward 4;
         G step: D forward 1, D backward 1 (input gradients only: D is frozen). facetrain prints no FLOP count
         for the DCGAN: gpu-check.sh applies this one to facetrain's images/s.

Prints one line: reference kind=... step_s=... images_per_s=... flops_per_image=... tflops=...
"""
import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# The ViT FLOP count has one Python spelling, shared with the CPU references (tools/bench/python).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "python"))
from vit_step import vit_flops_per_image  # noqa: E402


# --- ViT ---------------------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, width, heads, mode):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.heads, self.mode = heads, mode

    def forward(self, x):
        b, t, w = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.mode == 'sdpa':
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = (q @ k.transpose(-2, -1)) * (w // self.heads) ** -0.5
            out = torch.softmax(scores, -1, dtype=torch.float32).to(v.dtype) @ v
        return self.proj(out.transpose(1, 2).reshape(b, t, w))


class Block(nn.Module):
    def __init__(self, width, heads, hidden, mode):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads, mode)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Vit(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.patch = nn.Conv2d(a.channels, a.width, a.patch, stride=a.patch)
        tokens = (a.image // a.patch) ** 2 + 1
        self.cls = nn.Parameter(torch.zeros(1, 1, a.width))
        self.pos = nn.Parameter(torch.zeros(1, tokens, a.width))
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        hidden = round(a.width * a.mlp_ratio)
        self.blocks = nn.Sequential(*[Block(a.width, a.heads, hidden, a.attention) for _ in range(a.depth)])
        self.norm = nn.LayerNorm(a.width, eps=1e-6)
        self.head = nn.Linear(a.width, a.classes)

    def forward(self, images):
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1).to(x.dtype), x], 1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


# --- DCGAN paper64 -----------------------------------------------------------------------------------------
def dcgan_models(a):
    n = 0
    s = a.image
    while s > 4:
        s //= 2
        n += 1
    g_top, d_top = a.g_width << (n - 1), a.d_width << (n - 1)
    g = [nn.ConvTranspose2d(a.z, g_top, 4, 1, 0, bias=False), nn.BatchNorm2d(g_top), nn.ReLU(True)]
    for i in range(n):
        cin = a.g_width << (n - 1 - i)
        last = i == n - 1
        cout = a.channels if last else cin // 2
        g.append(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False))
        g += [nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(True)]
    d = []
    for i in range(n):
        cin = a.channels if i == 0 else a.d_width << (i - 1)
        cout = a.d_width << i
        d.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
        if i > 0:
            d.append(nn.BatchNorm2d(cout))
        d.append(nn.LeakyReLU(0.2, inplace=True))
    d.append(nn.Conv2d(d_top, 1, 4, 1, 0, bias=False))
    G, D = nn.Sequential(*g), nn.Sequential(*d)
    for m in list(G.modules()) + list(D.modules()):  # DCGAN init, as models/dcgan.cpp
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


def conv_flops(module, x):
    """Forward FLOPs of one sample through `module` (2 per multiply-add of every conv / transposed conv)."""
    total = [0.0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):  # each output element: in_channels * k * k multiply-adds
            total[0] += 2.0 * out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):  # each input element scatters to out_channels * k * k
            total[0] += 2.0 * inp[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        module.eval()
        module(x)
        module.train()
    for h in handles:
        h.remove()
    return total[0]


# --- timing ------------------------------------------------------------------------------------------------
def timed(step, steps, warmup, sync):
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        step()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('kind', choices=['vit', 'dcgan'])
    p.add_argument('--device', default='cuda', help='cuda | cpu (default cuda)')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=0, help='CPU threads (0: PyTorch default)')
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'], help='autocast of the forward')
    p.add_argument('--image', type=int, default=None, help='vit: 224, dcgan: 64')
    p.add_argument('--channels', type=int, default=3)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--patch', type=int, default=16)
    p.add_argument('--width', type=int, default=768)
    p.add_argument('--depth', type=int, default=12)
    p.add_argument('--heads', type=int, default=12)
    p.add_argument('--mlp-ratio', type=float, default=4.0)
    p.add_argument('--attention', default='sdpa', choices=['sdpa', 'bmm'])
    p.add_argument('--z', type=int, default=100)
    p.add_argument('--g-width', type=int, default=64)
    p.add_argument('--d-width', type=int, default=64)
    a = p.parse_args()
    if a.image is None:
        a.image = 224 if a.kind == 'vit' else 64
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.attention == 'sdpa' and not hasattr(F, 'scaled_dot_product_attention'):
        a.attention = 'bmm'  # PyTorch < 2.0 (Debian's 1.13 in --dry-run): no fused attention
    dev = torch.device(a.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('gpu_reference: --device cuda but torch.cuda.is_available() is False')
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if a.precision == 'bf16' else None

    def autocast():
        return torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None)

    if a.kind == 'vit':
        model = Vit(a).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        images = torch.randn(a.batch, a.channels, a.image, a.image, device=dev)
        labels = torch.randint(a.classes, (a.batch,), device=dev)

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
            loss.backward()
            opt.step()
            loss.item()

        flops = 3.0 * vit_flops_per_image(a.image, a.patch, a.channels, a.width, a.depth, a.mlp_ratio, a.classes)
        detail = f'attention={a.attention} patch={a.patch} width={a.width} depth={a.depth} heads={a.heads}'
    else:
        G, D = dcgan_models(a)
        G, D = G.to(dev), D.to(dev)
        g_f = conv_flops(G, torch.zeros(1, a.z, 1, 1, device=dev))
        d_f = conv_flops(D, torch.zeros(1, a.channels, a.image, a.image, device=dev))
        flops = 3.0 * g_f + 8.0 * d_f
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        real = torch.rand(a.batch, a.channels, a.image, a.image, device=dev) * 2 - 1
        ones = torch.ones(a.batch, device=dev)
        zeros = torch.zeros(a.batch, device=dev)
        bce = F.binary_cross_entropy_with_logits

        def step():
            opt_d.zero_grad(set_to_none=True)
            with autocast():
                fake = G(torch.randn(a.batch, a.z, 1, 1, device=dev))
                d_real = D(real).view(-1).float()
                d_fake = D(fake.detach()).view(-1).float()
            d_loss = bce(d_real, ones) + bce(d_fake, zeros)
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            for q in D.parameters():
                q.requires_grad_(False)
            with autocast():
                d_out = D(fake).view(-1).float()
            g_loss = bce(d_out, ones)
            g_loss.backward()
            for q in D.parameters():
                q.requires_grad_(True)
            opt_g.step()
            d_loss.item(), g_loss.item()

        detail = f'g_width={a.g_width} d_width={a.d_width} g_flops={g_f:.0f} d_flops={d_f:.0f}'

    step_s = timed(step, a.steps, a.warmup, sync)
    ips = a.batch / step_s
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'cpu'
    print(f'reference kind={a.kind} torch={torch.__version__} device={dev.type} device_name="{name}" '
          f'precision={a.precision} image={a.image} batch={a.batch} steps={a.steps} {detail} '
          f'step_s={step_s:.4f} images_per_s={ips:.1f} flops_per_image={flops:.6g} tflops={flops * ips / 1e12:.4g}')


if __name__ == '__main__':
    main()
