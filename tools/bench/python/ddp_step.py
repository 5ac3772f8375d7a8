#!/usr/bin/python3
"""Python reference for facetrain's data-parallel ViT step (`facetrain bench step` under mpirun -np N:
trainer/bench_step.cpp, trainer/vit_task.cpp, trainer/comm/gradient_sync.cpp): the ViT of vit_step.py trained
with PyTorch DistributedDataParallel over gloo on localhost, N processes (torch.multiprocessing.spawn), each with
its own random batch. Like facetrain's gradient buckets: 25 MB buckets, gradients as views into the buckets,
buffers not broadcast. Each step starts after a barrier; its time is the max over ranks (all_reduce MAX).
--world 1 still wraps the model in DDP on a 1-process group (as facetrain still runs its bucket sync on one
rank); --plain-single drops the wrapper (then it is vit_step.py's step). Cross-check only.
Prints ONE line (rank 0): step seconds (median of the slowest rank's time) and images/s over all ranks."""
import argparse
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

from common import blas_tag, env_tag, time_steps
from vit_step import add_model_args, build, vit_flops_per_image


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, a, port):
    torch.set_num_threads(a.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=a.world)
    use_ddp = a.world > 1 or not a.plain_single
    # As facetrain's buckets: gradients are views into the flat buckets; no per-forward buffer broadcast.
    wrap = (lambda m: DDP(m, bucket_cap_mb=a.bucket_cap_mb, broadcast_buffers=False,
                          gradient_as_bucket_view=True)) if use_ddp else None
    torch.manual_seed(0)  # same initial weights on every rank (DDP broadcasts rank 0's anyway)
    step = build(a, wrap=wrap, data_seed=1000 + rank)  # a different batch per rank, as bench_step.cpp

    def slowest(dt):
        t = torch.tensor([dt], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    med, best, cpu, cpu_step = time_steps(step, a.warmup, a.steps, before=dist.barrier, reduce=slowest)
    if rank == 0:
        images_per_s = a.batch * a.world / med
        gflops = 3 * vit_flops_per_image(a.image, a.patch, a.channels, a.width, a.depth, a.mlp_ratio, a.classes) \
            * images_per_s / a.world / 1e9
        print(f"{a.tag}ddp_step torch={torch.__version__} blas={blas_tag()} backend=gloo world={a.world} "
              f"wrapper={'ddp' if use_ddp else 'none'} threads={a.threads} {env_tag()} batch={a.batch} "
              f"width={a.width} depth={a.depth} heads={a.heads} all_tokens={int(a.all_tokens)} steps={a.steps} "
              f"step_s={med:.4f} min_s={best:.4f} images_per_s={images_per_s:.1f} gflops={gflops:.1f} "
              f"cpu_util_rank0={cpu:.2f} cpu_s_per_step_rank0={cpu_step:.4f}", flush=True)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--world", type=int, default=2, help="processes (ranks)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per process")
    p.add_argument("--batch", type=int, default=64, help="per rank")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--port", type=int, default=0, help="rendezvous port on 127.0.0.1; 0 = a free one")
    p.add_argument("--bucket-cap-mb", type=float, default=25.0, help="as distributed.bucket_cap_mb")
    p.add_argument("--plain-single", action="store_true", help="with --world 1: no DDP wrapper")
    add_model_args(p)
    p.add_argument("--tag", default="", help="free text echoed at the start of the line")
    a = p.parse_args()
    if a.steps < 1 or a.world < 1:
        p.error("--steps and --world must be >= 1")
    mp.spawn(worker, args=(a, a.port or free_port()), nprocs=a.world, join=True)


if __name__ == "__main__":
    main()
