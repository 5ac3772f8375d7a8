"""Shared helpers for facetrain's Python reference benches (cross-checks only): thread/BLAS identification,
the optimizer step as facetrain does it, and step timing."""
import argparse
import os
import time

import torch


def blas_tag():
    """Which BLAS implementation is mapped into this process (reference / openblas-pthread / openblas-openmp)."""
    libs = set()
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if path.startswith("/") and ("blas" in path or "lapack" in path):
            real = os.path.realpath(path)
            libs.add(os.path.basename(os.path.dirname(real)) + "/" + os.path.basename(real))
    if any(l.startswith("openblas-pthread/libopenblas") for l in libs):
        return "openblas-pthread"
    if any(l.startswith("openblas-openmp/libopenblas") for l in libs):
        return "openblas-openmp"
    return "reference" if any(l.startswith("blas/") for l in libs) else "+".join(sorted(libs)) or "none"


def env_tag():
    return " ".join(f"{k}={os.environ.get(k, 'unset')}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))


def median(values):
    """Upper median (v[n // 2] of the sorted list), the one facetrain's `bench step` reports."""
    return sorted(values)[len(values) // 2]


def clip_and_step(parameters, optimizer, clip_norm):
    """trainer/optim.cpp synced_optimizer_step (minus the sync): the global gradient norm is computed every
    step (clip_grad_norm_ with float max when clipping is off, for the logs), then the optimizer steps."""
    torch.nn.utils.clip_grad_norm_(parameters, clip_norm if clip_norm > 0 else torch.finfo(torch.float32).max)
    optimizer.step()


def time_steps(step, warmup, steps, before=None, reduce=None):
    """Runs step() warmup+steps times; returns (median_s, min_s, cpu_util, cpu_s_per_step) over the timed steps.
    before(): called untimed before each step (DDP: a barrier, so that every rank starts together).
    reduce(dt): maps this process's step time to the reported one (DDP: the max over ranks).
    cpu_util = process CPU seconds / wall seconds (all threads; >1 means several busy threads)."""
    ts = []
    for i in range(warmup + steps):
        if i == warmup:
            c0 = os.times()
        if before is not None:
            before()
        t = time.perf_counter()
        step()
        dt = time.perf_counter() - t
        if reduce is not None:
            dt = reduce(dt)
        if i >= warmup:
            ts.append(dt)
    c1 = os.times()
    cpu_s = c1.user - c0.user + c1.system - c0.system
    return median(ts), min(ts), cpu_s / sum(ts), cpu_s / steps


def parser(doc, batch, batch_help=None):
    """The flags every reference bench takes (each script adds its model's own before parse())."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (per process)")
    p.add_argument("--batch", type=int, default=batch, help=batch_help)
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--tag", default="", help="free text echoed at the start of the line")
    # What a PyTorch 2.x user has beyond LibTorch 1.13's eager loop (compare.py's "2.x eager"/"2.x compiled" peers).
    p.add_argument("--optimizer-impl", choices=("loop", "fused"), default="loop",
                   help="loop: one kernel chain per parameter (LibTorch's C++ optimizers); fused: PyTorch >= 2.4's "
                        "fused CPU kernel (fused=True)")
    p.add_argument("--compile", action="store_true", help="torch.compile (inductor) every module the step runs")
    return p


def parse(p):
    """Parses, checks --steps, sets the thread count and the model-init seed."""
    a = p.parse_args()
    if a.steps < 1:
        p.error("--steps must be >= 1")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    return a


def optimizer(cls, params, a, **kw):
    """torch.optim.<cls> as --optimizer-impl asks: a per-parameter loop (foreach=False) or fused=True."""
    return cls(params, fused=True, **kw) if a.optimizer_impl == "fused" else cls(params, foreach=False, **kw)


def classifier_step(model, forward, a, data_seed, label_smoothing=0.0):
    """One step of a classifier as trainer/classifier_task.cpp: AdamW (a.lr, a.weight_decay; --optimizer-impl
    loop is LibTorch's per-parameter C++ AdamW), cross-entropy on a random batch drawn after
    torch.manual_seed(data_seed), the global gradient norm clipped to a.grad_clip. forward: the module the
    step calls (compiled, or wrapped in DDP); the optimizer sees the model's own parameters."""
    params = list(model.parameters())
    opt = optimizer(torch.optim.AdamW, params, a, lr=a.lr, betas=(0.9, 0.999), weight_decay=a.weight_decay)
    torch.manual_seed(data_seed)
    x = torch.randn(a.batch, a.channels, a.image, a.image)
    y = torch.randint(0, a.classes, (a.batch,))

    def step():
        opt.zero_grad(set_to_none=False)  # LibTorch 1.13's zero_grad() zeroes, it does not free
        torch.nn.functional.cross_entropy(forward(x), y, label_smoothing=label_smoothing).backward()
        clip_and_step(params, opt, a.grad_clip)

    return step


def compiled(module, a):
    """The module under torch.compile (default mode, inductor) with --compile, else the module itself. The
    first warm-up steps pay the compilation; only the timed steps are reported."""
    return torch.compile(module) if a.compile else module


def peer_fields(a):
    return f"optimizer_impl={a.optimizer_impl} compiled={int(a.compile)}"


def report(name, a, model, timing, images_per_step=None, gflop_per_step=0.0):
    """Prints the one key=value line (tools/bench/compare.py reads step_s, images_per_s, gflops).
    model: the script's own key=value fields; timing: time_steps()'s result; images_per_step: all ranks'."""
    med, best, cpu, cpu_step = timing
    images = a.batch if images_per_step is None else images_per_step
    gflops = f" gflops={gflop_per_step / med:.1f}" if gflop_per_step else ""
    print(f"{a.tag}{name} torch={torch.__version__} blas={blas_tag()} threads={a.threads} {env_tag()} "
          f"batch={a.batch} {model} {peer_fields(a)} steps={a.steps} step_s={med:.4f} min_s={best:.4f} "
          f"images_per_s={images / med:.1f}{gflops} cpu_util={cpu:.2f} cpu_s_per_step={cpu_step:.4f}", flush=True)
