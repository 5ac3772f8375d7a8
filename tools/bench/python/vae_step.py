#!/usr/bin/python3
"""Python reference for facetrain's VAE training step (models/vae.h, models/vae.cpp, models/perceptual.cpp,
trainer/vae_task.cpp): ResNet VAE (VaeResDown blocks with 2x2 average pooling to a 4x4 map, 4x4 conv heads to
mu/logvar, reparameterisation, VaeResUp blocks with nearest upsampling, 3x3 conv out, tanh), loss =
MSE reconstruction + kl_weight * KL + perceptual_weight * VGG feature loss; Adam, global grad norm computed
every step. The VGG is torchvision's vgg16/vgg19 `features` cut after the deepest requested layer, frozen, with
RANDOM weights (timing only). Random images in [-1, 1]. Cross-check only. Prints ONE line: step seconds
(median) and images/s."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from common import clip_and_step, compiled, optimizer, parse, parser, report, time_steps

# vae.h: CNN-VAE calls F.rrelu(x), which outside training is a leaky ReLU of slope (1/8 + 1/3) / 2.
LEAKY_SLOPE = (1.0 / 8.0 + 1.0 / 3.0) / 2.0


def conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1)


class VaeRes(nn.Module):
    """VaeResDown (resample = 2x2 average pool) / VaeResUp (resample = nearest x scale):
    x -> act(BN2(conv2(resample(act(BN1(conv1(x)))))) + conv3(resample(x)))."""

    def __init__(self, cin, cout, resample):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout // 2), nn.BatchNorm2d(cout // 2)
        self.conv2, self.bn2 = conv3x3(cout // 2, cout), nn.BatchNorm2d(cout)
        self.conv3 = conv3x3(cin, cout)
        self.resample = resample

    def forward(self, x):
        skip = self.conv3(self.resample(x))
        # In place, as vae.cpp: BatchNorm/add backward do not read their outputs; leaky_relu's reads its result.
        h = F.leaky_relu(self.bn1(self.conv1(x)), LEAKY_SLOPE, inplace=True)
        h = self.bn2(self.conv2(self.resample(h))) + skip
        return F.leaky_relu(h, LEAKY_SLOPE, inplace=True)


def down():
    return lambda x: F.avg_pool2d(x, 2, 2)


def up(scale):
    return lambda x: F.interpolate(x, scale_factor=scale, mode="nearest")


class Vae(nn.Module):
    def __init__(self, image, channels, latent, base_width, max_multiplier=8):
        super().__init__()
        assert image >= 8 and image & (image - 1) == 0 and base_width % 2 == 0
        n = image.bit_length() - 3  # log2(image / 4) down blocks to a 4x4 map
        w = [base_width * min(1 << i, max_multiplier) for i in range(n)]  # VaeOptions::widths()
        self.latent = latent
        self.encoder = nn.ModuleList([VaeRes(channels if i == 0 else w[i - 1], w[i], down()) for i in range(n)])
        self.conv_mu, self.conv_logvar = nn.Conv2d(w[-1], latent, 4), nn.Conv2d(w[-1], latent, 4)
        # Mirror: 1x1 latent -> 4x4 at the widest width, then x2 blocks back to base_width / 2 at full size.
        self.decoder = nn.ModuleList([VaeRes(latent, w[-1], up(4))] +
                                     [VaeRes(w[i], w[i - 1], up(2)) for i in range(n - 1, 0, -1)] +
                                     [VaeRes(w[0], base_width // 2, up(2))])
        self.conv_out = conv3x3(base_width // 2, channels)

    def forward(self, images):
        h = images
        for block in self.encoder:
            h = block(h)
        mu, logvar = self.conv_mu(h).flatten(1), self.conv_logvar(h).flatten(1)
        std = torch.exp(0.5 * logvar)
        h = (mu + torch.randn_like(std) * std).view(-1, self.latent, 1, 1)  # training: reparameterise
        for block in self.decoder:
            h = block(h)
        return torch.tanh(self.conv_out(h)), mu, logvar


def kl_divergence(mu, logvar):
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def vgg_layer_index(network, name):
    """perceptual.cpp vgg_layer_index: convB_C / reluB_C / poolB -> index in torchvision's `features`."""
    names, block, conv = [], 1, 1
    for c in torchvision.models.vgg.cfgs["D" if network == "vgg16" else "E"]:
        if c == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    if name not in names:
        raise SystemExit(f"--layers: unknown {network} layer '{name}' (known: {', '.join(names)})")
    return names.index(name)


class PerceptualLoss(nn.Module):
    """sum over layers of mse(vgg_l(input), vgg_l(target)); inputs in [-1, 1] mapped to [0, 1] and ImageNet-
    normalised in one affine; target features without autograd; VGG frozen and in eval mode."""

    def __init__(self, network, layers):
        super().__init__()
        self.indices = [vgg_layer_index(network, n) for n in layers]
        vgg = getattr(torchvision.models, network)(weights=None).features  # random weights: timing only
        self.features = vgg[:max(self.indices) + 1]  # layers past the deepest requested one never run
        for q in self.features.parameters():
            q.requires_grad_(False)
        self.features.eval()
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        self.register_buffer("scale", (0.5 / std).view(1, 3, 1, 1))
        self.register_buffer("shift", ((0.5 - mean) / std).view(1, 3, 1, 1))

    def features_of(self, images):
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        h, out = torch.addcmul(self.shift, x, self.scale), {}
        for i, layer in enumerate(self.features):
            if isinstance(layer, nn.ReLU):
                # In place unless the conv output before it was asked for (as VggFeaturesImpl::forward).
                h = torch.relu(h) if i - 1 in self.indices else torch.relu_(h)
            else:
                h = layer(h)
            if i in self.indices:
                out[i] = h
        return [out[i] for i in self.indices]

    def forward(self, inp, target):
        with torch.no_grad():
            target_features = self.features_of(target.detach())
        return sum(F.mse_loss(f, t) for f, t in zip(self.features_of(inp), target_features))


def main():
    p = parser(__doc__, batch=64)
    p.add_argument("--image", type=int, default=64, help="4 * 2^n")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--base-width", type=int, default=32)
    p.add_argument("--reconstruction", choices=("mse", "l1"), default="mse")
    p.add_argument("--kl-weight", type=float, default=0.0005)
    p.add_argument("--perceptual-weight", type=float, default=0.1, help="0 disables the VGG term")
    p.add_argument("--network", choices=("vgg16", "vgg19"), default="vgg16")
    p.add_argument("--layers", default="relu1_1,relu2_1,relu3_1", help="comma-separated VGG layer names")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam lr (configs/vae-synth64, vae-celeba64)")
    a = parse(p)
    layers = [s for s in a.layers.split(",") if s]
    perceptual = PerceptualLoss(a.network, layers) if a.perceptual_weight > 0 else None
    model = Vae(a.image, a.channels, a.latent, a.base_width)
    params = list(model.parameters())
    opt = optimizer(torch.optim.Adam, params, a, lr=a.lr, betas=(0.9, 0.999), weight_decay=0.0)
    model = compiled(model, a)
    perceptual = compiled(perceptual, a) if perceptual is not None else None
    images = torch.rand(a.batch, a.channels, a.image, a.image) * 2 - 1
    reconstruction = F.mse_loss if a.reconstruction == "mse" else F.l1_loss

    def step():
        opt.zero_grad(set_to_none=False)
        recon, mu, logvar = model(images)
        loss = reconstruction(recon, images) + a.kl_weight * kl_divergence(mu, logvar)
        if perceptual is not None:
            loss = loss + a.perceptual_weight * perceptual(recon, images)
        loss.backward()
        clip_and_step(params, opt, 0.0)

    report("vae_step", a, f"image={a.image} channels={a.channels} latent={a.latent} base_width={a.base_width} "
           f"perceptual={a.network if perceptual is not None else 'none'}:{'+'.join(layers)}:{a.perceptual_weight:g}",
           time_steps(step, a.warmup, a.steps))


if __name__ == "__main__":
    main()
