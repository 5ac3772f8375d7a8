#!/usr/bin/python3
"""Python reference for facetrain's CNN classifier step (model.cnn: the seed-32 DCGAN discriminator of
dcgan_step.py with one logit per class, trainer/classifier_task.cpp): cross-entropy, AdamW (lr 2e-3, weight
decay 0.05, as configs/cnn-fashion-mnist-32.pbtxt), global-norm clip 1.0, a random batch. PyTorch's default
init, as facetrain's. ddp_step.py --model cnn runs it data-parallel. Cross-check only. Prints ONE line: step
seconds (median) and images/s."""
from common import classifier_step, compiled, parse, parser, report, time_steps
from dcgan_step import Discriminator, num_layers


def add_model_args(p):
    p.add_argument("--image", type=int, default=32, help="4 * 2^n")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=2)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv (model.cnn.width)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--grad-clip", type=float, default=1.0, help="global norm clip; 0 = norm computed, no clip")


def model_fields(a):
    return f"model=cnn image={a.image} channels={a.channels} width={a.width} classes={a.classes}"


def train_gflop_per_image(a):
    """3x the forward count, as models/dcgan.cpp discriminator_flops_per_image and `bench step`."""
    flops, side = 0, a.image
    for i in range(num_layers(a.image)):
        side //= 2
        flops += 2 * (a.channels if i == 0 else a.width << (i - 1)) * 16 * (a.width << i) * side * side
    flops += 2 * (a.width << (num_layers(a.image) - 1)) * 16 * a.classes
    return 3 * flops / 1e9


def build(a, wrap=None, data_seed=1000):
    """One-step closure (the contract of vit_step.build): wrap(model) -> the module the step calls."""
    model = Discriminator(a.image, a.channels, a.width, outputs=a.classes)
    forward = compiled(wrap(model) if wrap is not None else model, a)
    return classifier_step(model, forward, a, data_seed)


def main():
    p = parser(__doc__, batch=64)
    add_model_args(p)
    a = parse(p)
    report("cnn_step", a, model_fields(a), time_steps(build(a), a.warmup, a.steps),
           gflop_per_step=train_gflop_per_image(a) * a.batch)


if __name__ == "__main__":
    main()
