#!/usr/bin/python3
"""Python reference for facetrain's data-parallel classifier step (`facetrain bench step` under mpirun -np N:
bench/step_bench.cpp, trainer/classifier_task.cpp, comm/gradient_sync.cpp): the ViT of vit_step.py, or with
--model cnn the CNN of cnn_step.py (seed 002's discriminator as a classifier), trained
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

from common import parse, parser, report, time_steps
import cnn_step
import vit_step

MODELS = {"vit": vit_step, "cnn": cnn_step}


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
    model = MODELS[a.model]
    step = model.build(a, wrap=wrap, data_seed=1000 + rank)  # a different batch per rank, as bench/step_bench.cpp

    def slowest(dt):
        t = torch.tensor([dt], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    timing = time_steps(step, a.warmup, a.steps, before=dist.barrier, reduce=slowest)
    if rank == 0:  # images over all ranks; GFLOP/s per rank; cpu_* are rank 0's (barrier included)
        report("ddp_step", a, f"backend=gloo world={a.world} wrapper={'ddp' if use_ddp else 'none'} "
               f"{model.model_fields(a)}", timing, images_per_step=a.batch * a.world,
               gflop_per_step=model.train_gflop_per_image(a) * a.batch)
    dist.destroy_process_group()


def main():
    # The model's own flags depend on --model: read it first.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", choices=sorted(MODELS), default="vit")
    chosen = pre.parse_known_args()[0].model
    p = parser(__doc__, batch=64, batch_help="per rank")
    p.add_argument("--model", choices=sorted(MODELS), default="vit", help="vit_step.py's ViT or cnn_step.py's CNN")
    p.add_argument("--world", type=int, default=2, help="processes (ranks)")
    p.add_argument("--port", type=int, default=0, help="rendezvous port on 127.0.0.1; 0 = a free one")
    p.add_argument("--bucket-cap-mb", type=float, default=25.0, help="as distributed.bucket_cap_mb")
    p.add_argument("--plain-single", action="store_true", help="with --world 1: no DDP wrapper")
    MODELS[chosen].add_model_args(p)
    a = parse(p)
    if a.world < 1:
        p.error("--world must be >= 1")
    mp.spawn(worker, args=(a, a.port or free_port()), nprocs=a.world, join=True)


if __name__ == "__main__":
    main()
