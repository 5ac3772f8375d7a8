#!/usr/bin/python3
"""Side-by-side step times: `facetrain bench step` (both LibTorch builds) against the same models in Python
PyTorch (tools/bench/python/): Debian's 1.13, and the torch wheel's 2.x eager and under torch.compile. Same
model, batch and thread count, interleaved over rounds (this machine is noisy: compare within one run, quote
medians). Prints a Markdown table of medians over rounds with each row's ratio to the peers the issue names;
raw lines go to --log. Beside every table it names where the figures came from: the CPU (its name and the
vector units that decide the kernels) and the BLAS with its kernels for each build that has rows in it
(facetrain's own start-up line; the Python peers' torch.__config__ and OpenBLAS's openblas_get_corename), since
Debian's OpenBLAS runs generic kernels on CPUs it does not know and a figure without its kernels misleads.

  /usr/bin/python3 tools/bench/compare.py --rounds 3 [--only vit,scaling,cnn,dcgan,vae,bf16,sync,loader,faces]
                                          [--steps 6]

Rows: facetrain 1.13 (build/), facetrain 2.x (build-torch2/, tools/scripts/build-libtorch2.sh; skipped with a
line when missing), Python 1.13 (/usr/bin/python3), Python 2.x eager (the wheel in .venv-torch/: fused
optimizer, and for the ViT F.scaled_dot_product_attention), Python 2.x compiled (the same under
torch.compile, inductor). Before running it installs what the peers need: Debian's python3-torch and
python3-torchvision (apt-get, as root), and torchvision beside the pinned torch wheel in .venv-torch/.

Cases (issue #17's targets in brackets):
  vit      ViT 32x32x1, patch 4, width 192, depth 6, heads 3, MLP x4, batch 128, 1 rank x 1 thread
           [step <= 0.85x Python 2.x eager, <= 1.0x compiled; >= 80 % of the plain matmul rate]
  scaling  the same ViT at 64 per rank: facetrain 1 vs 2 ranks, PyTorch 2.x DDP (gloo) 1 vs 2 processes
           [>= 1.1x DDP's images/s on 2 ranks]
  cnn      seed 002's discriminator as a classifier (model.cnn, 32x32x3, 2 classes, a 0.68 MB gradient), batch
           64 per rank: facetrain 1 vs 2 ranks, PyTorch 2.x DDP (gloo) 1 vs 2 processes [weak scaling >= 95 %]
  dcgan    seed-32 DCGAN 32x32x3, batch 64, 1 thread [<= 0.85x eager, <= 1.0x compiled]; and on 2 ranks,
           facetrain's weak scaling of it (its discriminator is the 0.67 MB sync of the issue)
  vae      ResNet VAE 64x64x3 + VGG16 perceptual (relu1_1, relu2_1, relu3_1), batch 64 [as dcgan]
  bf16     the vit case under bf16 autocast (distributed.precision=bf16), both facetrain builds
Data-path cases (facetrain 1.13 only: no Python peer; the target is an absolute figure or a ratio to MPI):
  sync     `mpirun -np 2 facetrain bench allreduce --max-bytes 1048576`: the gradient-sync path against plain
           MPI_Allreduce, 1 kB .. 1 MB [buckets <= 256 kB at >= 80 % of its bus bandwidth]
  loader   `facetrain bench loader --generate 3000 --size 224 --threads 1`: augmented 224x224x3 images/s and
           images per CPU-second [>= 6,000 per core]
  faces    tools/bench/ingest_faces.sh 1000: `ingest --face-crop` images/s on 2 cores, faces found, false
           positives [>= 1,000 images/s]
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
PYDIR = os.path.join(HERE, "python")
PY113 = "/usr/bin/python3"
VENV = os.path.join(ROOT, ".venv-torch")
PY2 = os.path.join(VENV, "bin", "python")
FT113 = os.path.join(ROOT, "build", "bin", "facetrain")
FT2 = os.path.join(ROOT, "build-torch2", "bin", "facetrain")

VIT_SET = ["--set", "data.store=/nonexistent.h5", "--set", "model.vit.patch_size=4", "--set", "model.vit.width=192",
           "--set", "model.vit.depth=6", "--set", "model.vit.heads=3", "--set", "model.vit.mlp_ratio=4",
           "--image", "32", "--channels", "1", "--classes", "10"]
DCGAN_SET = ["--set", "data.store=/nonexistent.h5", "--set", "data.batch_size=64", "--image", "32", "--channels", "3",
             "--classes", "2"]
VAE_SET = ["--set", "data.store=/nonexistent.h5", "--set", "data.batch_size=64",
           "--set", "model.vae.perceptual.network=vgg16", "--set", "model.vae.perceptual.allow_random_features=true",
           "--image", "64", "--channels", "3", "--classes", "2"]
CNN_SET = ["--set", "data.store=/nonexistent.h5", "--set", "data.batch_size=64", "--image", "32", "--channels", "3",
           "--classes", "2"]
# What a PyTorch 2.x user writes for speed: the fused optimizer kernel (and SDPA for the ViT); then compiled.
EAGER2 = ["--optimizer-impl", "fused"]
COMPILED2 = EAGER2 + ["--compile"]

FT113_ROW, FT2_ROW = "facetrain (LibTorch 1.13)", "facetrain (LibTorch 2.x)"
PY113_ROW, EAGER_ROW, COMPILED_ROW = "Python 1.13, same model", "Python 2.x eager", "Python 2.x compiled"


STEP_CASES = ("vit", "scaling", "cnn", "dcgan", "vae", "bf16")


def cases(steps, have_ft2, work):
    """name -> list of (label, command[, parser]). Commands of one case run back to back in each round."""
    mpirun = ["mpirun", "--bind-to", "none"]
    few = max(2, steps // 3)  # VAE steps take seconds
    # torch.compile: the first steps compile (twice for the DCGAN: D with and without weight gradients)
    bench = lambda ft, n, cfg, extra, k=steps: mpirun + ["-np", str(n), ft, "bench", "step", "--config",
                                                         os.path.join(ROOT, cfg), "--threads", "1", "--steps", str(k),
                                                         "--warmup", "2"] + extra
    py = lambda interp, script, extra, k=steps, warm=2: [interp, os.path.join(PYDIR, script), "--threads", "1",
                                                         "--steps", str(k), "--warmup", str(warm)] + extra
    fts = [(FT113_ROW, FT113)] + ([(FT2_ROW, FT2)] if have_ft2 else [])
    vit_cfg = "configs/vit-fashion-mnist.pbtxt"
    vit128 = VIT_SET + ["--set", "data.batch_size=128"]
    vit64 = VIT_SET + ["--set", "data.batch_size=64"]
    t = {
        "vit": [(label, bench(ft, 1, vit_cfg, vit128)) for label, ft in fts] + [
            (PY113_ROW, py(PY113, "vit_step.py", ["--batch", "128"])),
            (EAGER_ROW, py(PY2, "vit_step.py", ["--batch", "128", "--attention", "sdpa"] + EAGER2)),
            (EAGER_ROW + ", bmm attention as facetrain", py(PY2, "vit_step.py", ["--batch", "128"] + EAGER2)),
            (COMPILED_ROW, py(PY2, "vit_step.py", ["--batch", "128", "--attention", "sdpa"] + COMPILED2, warm=3)),
        ],
        "scaling": [(f"{label} {n} rank{'s' if n > 1 else ''}", bench(ft, n, vit_cfg, vit64))
                    for label, ft in fts for n in (1, 2)] + [
            (f"DDP 2.x {n} process{'es' if n > 1 else ''}",
             py(PY2, "ddp_step.py", ["--world", str(n), "--batch", "64"] + EAGER2)) for n in (1, 2)],
        "cnn": [(f"{label} {n} rank{'s' if n > 1 else ''}", bench(ft, n, "configs/cnn-fashion-mnist-32.pbtxt", CNN_SET))
                for label, ft in fts for n in (1, 2)] + [
            (f"DDP 2.x {n} process{'es' if n > 1 else ''}",
             py(PY2, "ddp_step.py", ["--model", "cnn", "--world", str(n), "--batch", "64"] + EAGER2)) for n in (1, 2)],
        "dcgan": [(label, bench(ft, 1, "configs/dcgan-fashion-mnist.pbtxt", DCGAN_SET)) for label, ft in fts] + [
            (f"{label} 2 ranks", bench(ft, 2, "configs/dcgan-fashion-mnist.pbtxt", DCGAN_SET)) for label, ft in fts] + [
            (PY113_ROW, py(PY113, "dcgan_step.py", ["--batch", "64"])),
            (EAGER_ROW, py(PY2, "dcgan_step.py", ["--batch", "64"] + EAGER2)),
            (COMPILED_ROW, py(PY2, "dcgan_step.py", ["--batch", "64"] + COMPILED2, warm=4)),
        ],
        "vae": [(label, bench(ft, 1, "configs/vae-synth64.pbtxt", VAE_SET, few)) for label, ft in fts] + [
            (PY113_ROW, py(PY113, "vae_step.py", ["--batch", "64", "--network", "vgg16"], few)),
            (EAGER_ROW, py(PY2, "vae_step.py", ["--batch", "64", "--network", "vgg16"] + EAGER2, few)),
            (COMPILED_ROW, py(PY2, "vae_step.py", ["--batch", "64", "--network", "vgg16"] + COMPILED2, few, warm=3)),
        ],
        "sync": [("facetrain (LibTorch 1.13), 2 ranks", mpirun + ["-np", "2", FT113, "bench", "allreduce", "--max-bytes",
                                                                 "1048576"], sync_fields)],
        "loader": [("facetrain (LibTorch 1.13), 1 worker", [FT113, "bench", "loader", os.path.join(work, "loader224.h5"),
                                                           "--generate", "3000", "--size", "224", "--threads", "1"],
                    loader_fields)],
        "faces": [("facetrain (LibTorch 1.13), 2 cores", ["bash", os.path.join(HERE, "ingest_faces.sh"), "1000",
                                                         os.path.join(work, "faces")], faces_fields)],
        "bf16": [(label + ", bf16", bench(ft, 1, vit_cfg, vit128 + ["--set", "distributed.precision=bf16"]))
                 for label, ft in fts],
    }
    return t


def ensure_peers():
    """Installs what the Python peers need, saying what; exits with one line when it cannot."""
    def works(interp, code):
        return subprocess.run([interp, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    if not works(PY113, "import torch, torchvision"):
        print("compare.py: installing Debian's python3-torch python3-torchvision (the 1.13 peers)", flush=True)
        apt_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], env=apt_env)  # a fresh machine has no package lists yet
        if subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-torch",
                           "python3-torchvision"], env=apt_env).returncode:
            sys.exit("compare.py: apt-get install python3-torch python3-torchvision failed (root? apt-get update?)")
    if not works(PY2, "import torch, torchvision"):
        version = re.search(r'FACETRAIN_TORCH_VERSION:-([0-9.]+)',
                            open(os.path.join(ROOT, "tools/scripts/build-libtorch2.sh")).read()).group(1)
        print(f"compare.py: installing torch=={version} and torchvision into {VENV} (the 2.x peers)", flush=True)
        if not os.path.exists(PY2):
            subprocess.run([PY113, "-m", "venv", VENV], check=True)
        if subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                           f"torch=={version}", "torchvision"]).returncode:
            sys.exit(f"compare.py: pip install torch=={version} torchvision into {VENV} failed (PyPI unreachable?)")


def peer_env():
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # torch.compile's kernels must link the wheel's libtorch, not Debian's (python/inductor_cxx.sh says why).
    lib = subprocess.run([PY2, "-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    env.update(CXX=os.path.join(PYDIR, "inductor_cxx.sh"), FACETRAIN_BENCH_TORCH_LIB=lib)
    return env


def step_fields(stdout):
    """The key=value line of `bench step` and of the Python peers."""
    fields = {}
    for line in stdout.splitlines():
        if re.match(r"^(bench_step|vit_step|cnn_step|dcgan_step|vae_step|ddp_step) ", line.strip()):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return fields if "step_s" in fields else None


def sync_fields(stdout):
    """`bench allreduce` rows: bytes | MPI ms algbw busbw | sync ms algbw busbw | ratio % | ...."""
    fields = {}
    for m in re.finditer(r"^\s*(\d+)\s+\|[^|]*\|[^|]*\|\s*(\d+)%", stdout, re.M):
        fields[f"ratio_{m.group(1)}"] = m.group(2)
    return fields or None


def loader_fields(stdout):
    """`bench loader`'s augmented row: images/s min max MB/s cpu/wall images/cpu-s."""
    m = re.search(r"^\+ flip/rotate/shift/shear/zoom\s+(\d+)\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+(\d+)", stdout, re.M)
    return {"images_per_s": m.group(1), "images_per_cpu_s": m.group(2)} if m else None


def faces_fields(stdout):
    """ingest_faces.sh rows: set mode images images/s CPU-ms/img [found of N]."""
    fields = {}
    for m in re.finditer(r"^(faces|no-faces)\s+(plain|face-crop)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+(?:(\d+) of)?", stdout, re.M):
        key = f"{m.group(1)}_{m.group(2)}"
        fields[key + "_images_per_s"] = m.group(4)
        fields[key + "_cpu_ms"] = m.group(5)
        if m.group(6):
            fields[key + "_found"] = m.group(6)
            fields[key + "_count"] = m.group(3)
    return fields if "faces_face-crop_found" in fields else None


# The vector units that decide which BLAS kernels fit (launcher/blas_restart.h) and whether bf16 has units.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def cpu_line():
    """'CPU: AMD EPYC, 2 cores; avx2 fma (no avx512f avx512_bf16 ...)' from /proc/cpuinfo."""
    name, flags = "unknown CPU", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            if key.strip() == "flags" and not flags:
                flags = set(value.split())
    have = [f for f in CPU_FLAGS if f in flags]
    lack = [f for f in CPU_FLAGS if f not in flags]
    return (f"CPU: {name}, {os.cpu_count()} cores; {' '.join(have) or 'no avx2'}"
            + (f" (no {' '.join(lack)})" if lack else ""))


def facetrain_blas(ft, env, log):
    """The BLAS and kernels facetrain's start-up line names (after its restart onto fitting kernels, if any)."""
    cmd = [ft, "bench", "step", "--config", os.path.join(ROOT, "configs/cnn-fashion-mnist-32.pbtxt"), "--threads",
           "1", "--steps", "1", "--warmup", "0"] + CNN_SET
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    log.write(" ".join(cmd) + "\n" + out + "\n")
    m = re.search(r"^\[rank 0\] cpu .*?, blas (.*?), matmul ", out, re.M)
    return m.group(1) if m else "unknown (no start-up line naming the BLAS)"


# A Python peer's BLAS: OpenBLAS (Debian's python3-torch) answers through the library mapped into the process;
# the wheel's MKL through torch's build configuration.
PY_BLAS = r"""
import ctypes, re, torch
for line in open("/proc/self/maps"):
    if "libopenblas" in line:
        lib = ctypes.CDLL(line.split()[-1])
        lib.openblas_get_corename.restype = lib.openblas_get_config.restype = ctypes.c_char_p
        version = lib.openblas_get_config().decode().split()[1]
        print(f"OpenBLAS {version}, {lib.openblas_get_corename().decode()} kernels")
        break
else:
    show = torch.__config__.show()
    m = re.search(r"Math Kernel Library[^\n]*|BLAS_INFO=\S+", show)
    print(m.group(0).strip() if m else "unknown")
"""


def python_blas(interp, env):
    out = subprocess.run([interp, "-c", PY_BLAS], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout.strip()
    return out or "unknown"


def where(blas, labels):
    """The line beside a table: the CPU, and the BLAS of each build with rows in it (labels: row labels)."""
    builds = [b for b in blas if any(label.startswith(b) for label in labels)]
    return cpu_line() + "\nBLAS: " + "; ".join(f"{b}: {blas[b]}" for b in builds)


def run(cmd, env, log, parse=step_fields):
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.write(" ".join(cmd) + "\n" + out.stdout + "\n")
    log.flush()
    if out.returncode != 0:
        sys.exit(f"compare.py: failed ({out.returncode}): {' '.join(cmd)}\n{out.stdout[-2000:]}")
    fields = parse(out.stdout)
    if fields is None:
        sys.exit(f"compare.py: could not read the figures in the output of {' '.join(cmd)}\n{out.stdout[-2000:]}")
    return fields


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=6, help="timed steps per run (VAE: a third)")
    p.add_argument("--only", default="vit,scaling,cnn,dcgan,vae,bf16,sync,loader,faces")
    p.add_argument("--work", default="/tmp/facetrain-compare",
                   help="the loader's 224-px store and the face-crop JPEG folders (made once, kept)")
    p.add_argument("--log", default="bench-compare.log")
    a = p.parse_args()
    if not os.access(FT113, os.X_OK):
        sys.exit(f"compare.py: {FT113} is missing (bash tools/scripts/build.sh)")
    have_ft2 = os.access(FT2, os.X_OK)
    if not have_ft2:
        print(f"compare.py: {FT2} is missing (bash tools/scripts/build-libtorch2.sh): no LibTorch 2.x rows")
    ensure_peers()
    env = peer_env()
    os.makedirs(a.work, exist_ok=True)
    table = cases(a.steps, have_ft2, a.work)
    chosen = a.only.split(",")
    for c in chosen:
        if c not in table:
            sys.exit(f"compare.py: --only: unknown case '{c}' ({', '.join(table)})")
    results = {(c, entry[0]): [] for c in chosen for entry in table[c]}
    with open(a.log, "a") as log:
        # Row labels start with these names (DDP's rows are the wheel's Python 2.x).
        blas = {FT113_ROW: facetrain_blas(FT113, env, log)}
        if have_ft2:
            blas[FT2_ROW] = facetrain_blas(FT2, env, log)
        blas[PY113_ROW.split(",")[0]] = python_blas(PY113, env)
        blas["Python 2.x"] = blas["DDP 2.x"] = python_blas(PY2, env)
        print(where(blas, list(blas)), flush=True)
        for r in range(a.rounds):
            for c in chosen:
                for label, cmd, *parse in table[c]:
                    f = run(cmd, env, log, *parse)
                    results[(c, label)].append(f)
                    what = f"step {float(f['step_s']):.4f} s" if "step_s" in f else "done"
                    print(f"round {r + 1}/{a.rounds} {c:8s} {label}: {what}", flush=True)

    def med(c, label, key):
        return statistics.median(float(f.get(key, "nan")) for f in results[(c, label)])

    def has(c, label):
        return (c, label) in results

    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {a.rounds} rounds x {a.steps} steps, medians; "
          f"load average now {open('/proc/loadavg').read().split()[0]}\n")
    if any(c in STEP_CASES for c in chosen):
        print(where(blas, [label for c in chosen if c in STEP_CASES for label, *_ in table[c]]) + "\n")
        print("| case | run | step s | images/s | vs Python 2.x eager | vs Python 2.x compiled |")
        print("| --- | --- | --- | --- | --- | --- |")
    for c in [c for c in chosen if c in STEP_CASES]:
        eager = med(c, EAGER_ROW, "step_s") if has(c, EAGER_ROW) else None
        comp = med(c, COMPILED_ROW, "step_s") if has(c, COMPILED_ROW) else None
        for label, *_ in table[c]:
            s, ips = med(c, label, "step_s"), med(c, label, "images_per_s")
            single = c not in ("scaling", "cnn") and "2 ranks" not in label
            ratio = lambda ref: f"{s / ref:.2f}x" if ref and single else ""
            print(f"| {c} | {label} | {s:.4f} | {ips:.1f} | {ratio(eager)} | {ratio(comp)} |")
    fts = [FT113_ROW] + ([FT2_ROW] if have_ft2 else [])
    if "vit" in chosen:
        for ft in fts:
            g, m = med("vit", ft, "gflops"), med("vit", ft, "matmul_gflops")
            print(f"\nViT {ft}: {g:.1f} GFLOP/s beside a plain 1024^3 matmul at {m:.1f} GFLOP/s ({100 * g / m:.0f} %)")
    for c, what in (("scaling", "ViT"), ("cnn", "CNN")):
        if c not in chosen:
            continue
        d1, d2 = med(c, "DDP 2.x 1 process", "images_per_s"), med(c, "DDP 2.x 2 processes", "images_per_s")
        print(f"\n{what}: PyTorch 2.x DDP (gloo) weak scaling 1 -> 2 processes: {100 * d2 / (2 * d1):.0f} %")
        for ft in fts:
            f1, f2 = med(c, f"{ft} 1 rank", "images_per_s"), med(c, f"{ft} 2 ranks", "images_per_s")
            print(f"{what}: {ft}: weak scaling {100 * f2 / (2 * f1):.0f} %, images/s on 2 ranks {f2 / d2:.2f}x DDP's; "
                  f"gradient buckets overlapped {results[(c, f'{ft} 2 ranks')][-1].get('buckets_overlapped')}"
                  f" of {results[(c, f'{ft} 2 ranks')][-1].get('buckets')}")
    if "dcgan" in chosen:
        for ft in fts:
            f1, f2 = med("dcgan", ft, "images_per_s"), med("dcgan", f"{ft} 2 ranks", "images_per_s")
            print(f"DCGAN {ft}: weak scaling 1 -> 2 ranks {100 * f2 / (2 * f1):.0f} %")
    if "bf16" in chosen and "vit" in chosen:
        for ft in fts:
            print(f"ViT bf16 autocast vs fp32, {ft}: {med('vit', ft, 'step_s') / med('bf16', ft + ', bf16', 'step_s'):.2f}x "
                  f"faster")

    if "sync" in chosen:
        label = table["sync"][0][0]
        print("\n" + where(blas, [label]))
        sizes = sorted(int(k[6:]) for k in results[("sync", label)][0] if k.startswith("ratio_"))
        print("Gradient sync vs MPI_Allreduce bus bandwidth, 2 ranks (median ratio over rounds): " +
              ", ".join(f"{n // 1024} kB {med('sync', label, f'ratio_{n}'):.0f} %" for n in sizes))
    if "loader" in chosen:
        label = table["loader"][0][0]
        print("\n" + where(blas, [label]))
        print(f"Loader, 224x224x3 augmented, 1 worker: {med('loader', label, 'images_per_s'):.0f} images/s, "
              f"{med('loader', label, 'images_per_cpu_s'):.0f} images per CPU-second (target 6,000)")
    if "faces" in chosen:
        label = table["faces"][0][0]
        f0 = results[("faces", label)][0]
        print("\n" + where(blas, [label]))
        print(f"ingest --face-crop, 178x218 JPEGs to 64x64, 2 cores: "
              f"{med('faces', label, 'faces_face-crop_images_per_s'):.0f} images/s with drawn faces "
              f"({f0['faces_face-crop_found']} of {f0['faces_face-crop_count']} found; "
              f"{med('faces', label, 'faces_face-crop_cpu_ms'):.2f} CPU ms per image), "
              f"{med('faces', label, 'no-faces_face-crop_images_per_s'):.0f} images/s on face-free ones "
              f"({f0['no-faces_face-crop_found']} false positives in {f0['no-faces_face-crop_count']}; "
              f"{med('faces', label, 'no-faces_face-crop_cpu_ms'):.2f} CPU ms); without --face-crop "
              f"{med('faces', label, 'faces_plain_images_per_s'):.0f} images/s (target 1,000 with it)")


if __name__ == "__main__":
    main()
