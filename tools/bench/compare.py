#!/usr/bin/python3
"""Side-by-side step times: `facetrain bench step` against the Python references in tools/bench/python/,
same model, batch and thread count, interleaved over rounds (this machine is noisy: compare within one run,
quote medians). Prints a Markdown table of medians over rounds; raw lines go to --log.

  /usr/bin/python3 tools/bench/compare.py --facetrain build/bin/facetrain --rounds 3 [--only vit,scaling,dcgan,vae]

Cases (the issues' targets in brackets):
  vit      ViT 32x32x1, patch 4, width 192, depth 6, heads 3, MLP x4, batch 128, 1 rank x 1 thread
           [step <= 0.9x Python; >= 75 % of the plain matmul rate]
  scaling  the same ViT at 64 per rank: facetrain 1 vs 2 ranks, PyTorch DDP (gloo) 1 vs 2 processes
           [>= 95 % weak-scaling efficiency; >= 1.1x DDP's images/s]
  dcgan    seed-32 DCGAN 32x32x3, batch 64, 1 thread [step <= 0.9x Python]
  vae      ResNet VAE 64x64x3 + VGG16 perceptual (relu1_1, relu2_1, relu3_1), batch 64, 1 thread [<= 0.9x]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
PYDIR = os.path.join(HERE, "python")

VIT_SET = ["--set", "data.store=/nonexistent.h5", "--set", "model.vit.patch_size=4", "--set", "model.vit.width=192",
           "--set", "model.vit.depth=6", "--set", "model.vit.heads=3", "--set", "model.vit.mlp_ratio=4",
           "--image", "32", "--channels", "1", "--classes", "10"]


def cases(ft, steps):
    """name -> list of (label, command, parse key). Commands of one case run back to back in each round."""
    mpirun = ["mpirun", "--bind-to", "none"]
    few = max(2, steps // 3)  # VAE steps take seconds
    bench = lambda n, cfg, extra, k=steps: mpirun + ["-np", str(n), ft, "bench", "step", "--config",
                                                     os.path.join(ROOT, cfg), "--threads", "1", "--steps", str(k),
                                                     "--warmup", "2"] + extra
    py = lambda script, extra, k=steps: [PY, os.path.join(PYDIR, script), "--threads", "1", "--steps", str(k),
                                         "--warmup", "2"] + extra
    vit_cfg = "configs/vit-fashion-mnist.pbtxt"
    return {
        "vit": [
            ("facetrain", bench(1, vit_cfg, VIT_SET + ["--set", "data.batch_size=128"])),
            ("python (as facetrain: class-token-only last block)", py("vit_step.py", ["--batch", "128"])),
            ("python (stock: every token through every block)", py("vit_step.py", ["--batch", "128", "--all-tokens"])),
        ],
        "scaling": [
            ("facetrain 1 rank", bench(1, vit_cfg, VIT_SET + ["--set", "data.batch_size=64"])),
            ("facetrain 2 ranks", bench(2, vit_cfg, VIT_SET + ["--set", "data.batch_size=64"])),
            ("python DDP 1 process", py("ddp_step.py", ["--world", "1", "--batch", "64"])),
            ("python DDP 2 processes", py("ddp_step.py", ["--world", "2", "--batch", "64"])),
            ("python DDP 2 processes (stock: every token)", py("ddp_step.py", ["--world", "2", "--batch", "64",
                                                                                "--all-tokens"])),
        ],
        "dcgan": [
            ("facetrain", bench(1, "configs/dcgan-fashion-mnist.pbtxt",
                                ["--set", "data.store=/nonexistent.h5", "--set", "data.batch_size=64", "--image", "32",
                                 "--channels", "3", "--classes", "2"])),
            ("python (as facetrain: D-step fakes reused)", py("dcgan_step.py", ["--batch", "64"])),
            ("python (seed notebook: fakes regenerated)", py("dcgan_step.py", ["--batch", "64", "--regen-fakes"])),
        ],
        "vae": [
            ("facetrain", bench(1, "configs/vae-synth64.pbtxt",
                                ["--set", "data.store=/nonexistent.h5", "--set", "data.batch_size=64",
                                 "--set", "model.vae.perceptual.network=vgg16",
                                 "--set", "model.vae.perceptual.allow_random_features=true",
                                 "--image", "64", "--channels", "3", "--classes", "2"], few)),
            ("python", py("vae_step.py", ["--batch", "64", "--network", "vgg16"], few)),
        ],
    }


def run(cmd, log):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(" ".join(cmd) + "\n" + out.stdout + "\n")
    log.flush()
    if out.returncode != 0:
        sys.exit(f"compare.py: failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout[-2000:]}")
    fields = {}
    for line in out.stdout.splitlines():
        if re.match(r"^(bench_step|vit_step|dcgan_step|vae_step|ddp_step) ", line.strip()):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    if "step_s" not in fields:
        sys.exit(f"compare.py: no step_s in the output of {' '.join(cmd)}")
    return fields


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--facetrain", default=os.path.join(ROOT, "build/bin/facetrain"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="timed steps per run (VAE: a third)")
    p.add_argument("--only", default="vit,scaling,dcgan,vae")
    p.add_argument("--log", default="bench-compare.log")
    a = p.parse_args()
    table = cases(a.facetrain, a.steps)
    chosen = a.only.split(",")
    for c in chosen:
        if c not in table:
            sys.exit(f"compare.py: --only: unknown case '{c}' (vit, scaling, dcgan, vae)")
    results = {(c, label): [] for c in chosen for label, _ in table[c]}
    with open(a.log, "a") as log:
        for r in range(a.rounds):
            for c in chosen:
                for label, cmd in table[c]:
                    f = run(cmd, log)
                    results[(c, label)].append(f)
                    print(f"round {r + 1}/{a.rounds} {c:8s} {label}: step {float(f['step_s']):.4f} s", flush=True)
    med = lambda c, label, key: statistics.median(float(f.get(key, "nan")) for f in results[(c, label)])
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {a.rounds} rounds x {a.steps} steps, medians; "
          f"load average now {open('/proc/loadavg').read().split()[0]}\n")
    print("| case | run | step s | images/s | vs first row |")
    print("| --- | --- | --- | --- | --- |")
    for c in chosen:
        first = None
        for label, _ in table[c]:
            s, ips = med(c, label, "step_s"), med(c, label, "images_per_s")
            first = first or s
            print(f"| {c} | {label} | {s:.4f} | {ips:.1f} | {s / first:.2f}x |")
    if "vit" in chosen:
        g, m = med("vit", "facetrain", "gflops"), med("vit", "facetrain", "matmul_gflops")
        print(f"\nViT facetrain: {g:.1f} GFLOP/s beside a plain 1024^3 matmul at {m:.1f} GFLOP/s ({100 * g / m:.0f} %)")
    if "scaling" in chosen:
        f1, f2 = med("scaling", "facetrain 1 rank", "images_per_s"), med("scaling", "facetrain 2 ranks", "images_per_s")
        d1, d2 = (med("scaling", "python DDP 1 process", "images_per_s"),
                  med("scaling", "python DDP 2 processes", "images_per_s"))
        print(f"weak scaling 1 -> 2 ranks: facetrain {100 * f2 / (2 * f1):.0f} %, DDP {100 * d2 / (2 * d1):.0f} %; "
              f"facetrain / DDP images/s on 2 ranks: {f2 / d2:.2f}x (stock DDP ViT: "
              f"{f2 / med('scaling', 'python DDP 2 processes (stock: every token)', 'images_per_s'):.2f}x)")


if __name__ == "__main__":
    main()
