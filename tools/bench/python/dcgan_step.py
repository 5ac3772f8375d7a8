#!/usr/bin/python3
"""Python reference for facetrain's DCGAN training step, seed32 architecture (models/dcgan.h, models/dcgan.cpp
DcganArch::kSeed; step of trainer/dcgan_task.cpp): D = stride-2 4x4 convs (BN from the second), LeakyReLU 0.2,
Linear to 1 logit; G = Linear z -> (4w,4,4), stride-2 4x4 transposed convs (BN but the last), ReLU, tanh.
BCE-with-logits, Adam 2e-4 betas (0.5, 0.999), global grad norm computed every step. Step as facetrain: D step
on real + detached fakes, then G step (D frozen) reusing the SAME fakes; --regen-fakes draws new z for the G step
(as the seed notebook). Random images in [-1, 1]. Cross-check only. Prints ONE line: step seconds (median)
and images/s."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import clip_and_step, compiled, optimizer, parse, parser, report, time_steps


def num_layers(image):
    """Stride-2 layers: log2(image / 4) (image = 4 * 2^n, n >= 1)."""
    assert image >= 8 and image & (image - 1) == 0, "image must be 4 * 2^n, n >= 1"
    return image.bit_length() - 3


class Discriminator(nn.Module):
    def __init__(self, image, channels, width, slope=0.2, outputs=1):
        super().__init__()
        n, self.slope = num_layers(image), slope
        self.convs = []
        for i in range(n):
            conv = [nn.Conv2d(channels if i == 0 else width << (i - 1), width << i, 4, 2, 1, bias=False)]
            if i > 0:  # no BatchNorm on the first conv (seed 002)
                conv.append(nn.BatchNorm2d(width << i))
            self.convs.append(nn.Sequential(*conv))
            self.add_module(f"conv{i + 1}", self.convs[-1])
        self.fc = nn.Linear((width << (n - 1)) * 4 * 4, outputs)  # outputs > 1: a classifier (cnn_step.py)

    def forward(self, x):
        for conv in self.convs:
            # In place, as dcgan.cpp: neither conv nor BN backward reads its output.
            x = F.leaky_relu(conv(x), self.slope, inplace=True)
        return self.fc(x.flatten(1))


class Generator(nn.Module):
    def __init__(self, image, channels, z, width):
        super().__init__()
        n = num_layers(image)
        self.z, self.top = z, width << (n - 1)
        self.fc = nn.Linear(z, self.top * 4 * 4)
        self.t_convs = []
        for i in range(n):
            last, cin = i == n - 1, width << (n - 1 - i)
            cout = channels if last else cin // 2
            layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)] + ([] if last else [nn.BatchNorm2d(cout)])
            self.t_convs.append(nn.Sequential(*layers))
            self.add_module(f"t_conv{i + 1}", self.t_convs[-1])

    def forward(self, z):
        x = self.fc(z).view(-1, self.top, 4, 4)  # no activation after fc, as the seed
        for i, t_conv in enumerate(self.t_convs):
            x = t_conv(x)
            x = torch.relu_(x) if i + 1 < len(self.t_convs) else torch.tanh_(x)
        return x


def init_dcgan_weights(module):
    """dcgan.cpp init_dcgan_weights: conv/convT/linear weights N(0, 0.02), BN gamma N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0 if isinstance(m, nn.BatchNorm2d) else 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits.view(-1), torch.full((logits.shape[0],), target))


def main():
    p = parser(__doc__, batch=64)
    p.add_argument("--image", type=int, default=32, help="4 * 2^n")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--g-width", type=int, default=32, help="generator base width (seed conv_dim)")
    p.add_argument("--d-width", type=int, default=32, help="discriminator base width (seed conv_dim)")
    p.add_argument("--z", type=int, default=100)
    p.add_argument("--label-smoothing", type=float, default=0.0, help="real label = 1 - this in D's real loss")
    p.add_argument("--regen-fakes", action="store_true", help="G step draws new z (seed notebook) instead of reusing")
    a = parse(p)
    D, G = Discriminator(a.image, a.channels, a.d_width), Generator(a.image, a.channels, a.z, a.g_width)
    init_dcgan_weights(D)
    init_dcgan_weights(G)
    d_params, g_params = list(D.parameters()), list(G.parameters())
    d_opt = optimizer(torch.optim.Adam, d_params, a, lr=2e-4, betas=(0.5, 0.999))
    g_opt = optimizer(torch.optim.Adam, g_params, a, lr=2e-4, betas=(0.5, 0.999))
    D, G = compiled(D, a), compiled(G, a)
    real = torch.rand(a.batch, a.channels, a.image, a.image) * 2 - 1

    def step():
        # D step: real and detached fakes in separate forwards (per-batch BatchNorm statistics, as the seed).
        d_opt.zero_grad(set_to_none=False)
        fake = G(torch.randn(a.batch, a.z))
        d_loss = bce(D(real), 1.0 - a.label_smoothing) + bce(D(fake.detach()), 0.0)
        d_loss.backward()
        clip_and_step(d_params, d_opt, 0.0)
        # G step: D frozen (no D weight gradients are computed), G pushed towards "real".
        if a.regen_fakes:
            fake = G(torch.randn(a.batch, a.z))
        g_opt.zero_grad(set_to_none=False)
        for q in d_params:
            q.requires_grad_(False)
        bce(D(fake), 1.0).backward()
        for q in d_params:
            q.requires_grad_(True)
        clip_and_step(g_params, g_opt, 0.0)

    report("dcgan_step", a, f"image={a.image} channels={a.channels} g_width={a.g_width} d_width={a.d_width} "
           f"z={a.z} regen_fakes={int(a.regen_fakes)}", time_steps(step, a.warmup, a.steps))


if __name__ == "__main__":
    main()
