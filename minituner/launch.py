"""Starting several processes for data-parallel fine-tuning (the loop's side is distributed.py).

    spawn(fn, nproc, args, backend)    fn(*args) in nproc processes joined in one process group on
                                       127.0.0.1, what torchrun does, from Python (`finetune --nproc`)
    backend_for(nproc, batch_size)     gloo on CPUs, nccl on GPUs, refused before anything starts
    torchrun --nproc_per_node 2 -m minituner.launch --method lora --steps 50
                                       the shipped base fine-tuned on a mini-world task
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import torch
import torch.distributed as dist

from .checkpoint import load_base
from .checks import refuse
from .data import make_task
from .distributed import init
from .i18n import _
from .methods import METHODS, get_peft_model, ordered
from .train import train


def backend_for(nproc: int, batch_size: int, device="cpu") -> str:
    """The torch.distributed backend for nproc processes on device: 'gloo' on CPUs (at most one process
    per core), 'nccl' on GPUs (device 'cuda', process r on cuda:r, at most one process per GPU).
    The batch must split evenly. Anything else: a ValueError saying what is allowed."""
    if isinstance(nproc, bool) or not isinstance(nproc, int):
        raise refuse(TypeError, "nproc", f"nproc must be an int, got {type(nproc).__name__} {nproc!r}")
    if nproc < 1:
        raise refuse(ValueError, "nproc", f"nproc must be >= 1 (the number of processes), got {nproc}")
    dev = torch.device(device)
    if dev.type == "cpu":
        cores = os.cpu_count() or 1
        if nproc > cores:
            raise refuse(ValueError, "nproc", f"nproc {nproc} is more than this machine's {cores} CPU cores; each process "
                             f"trains on one core, so use at most {cores}")
        backend = "gloo"
    elif dev.type == "cuda":
        if dev.index is not None:
            raise refuse(ValueError, "device", f"with several processes give device 'cuda', not {str(device)!r}: "
                         "process r uses cuda:r")
        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise refuse(ValueError, "nproc", f"nproc {nproc} is more than the {gpus} GPU(s) this machine has (nccl takes one "
                             f"process per GPU); use at most {gpus}, or device cpu")
        backend = "nccl"
    else:
        raise refuse(ValueError, "device", f"torch.distributed has no backend for {dev.type!r}; use device cpu (gloo) or "
                     "cuda (nccl)")
    if batch_size % nproc:
        raise refuse(ValueError, "batch_size", f"batch_size {batch_size} must split evenly over {nproc} processes: use a "
                     f"multiple of {nproc}")
    return backend


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a local process group)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn, args, backend: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)  # one core per process: W processes share the machine
    if backend == "nccl":
        torch.cuda.set_device(rank)  # process r on GPU r
    init(backend)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def spawn(fn, nproc: int = 2, args=(), backend: str = "gloo") -> None:
    """Run fn(*args) in nproc processes joined in a process group on 127.0.0.1 (what torchrun does,
    from Python: for `minituner finetune --nproc`, tests and notebooks): gloo on CPUs, or nccl with
    process r on GPU r. fn must be importable (a module-level function)."""
    torch.multiprocessing.spawn(_worker, args=(nproc, free_port(), fn, args, backend), nprocs=nproc, join=True)


SMALL = {"r": 4, "lora_alpha": 16, "num_virtual_tokens": 4}  # each method's small setting, where it has the field


def build(key: str, base):
    """The model registered method `key` trains on base, at SMALL's setting (the lesson compares their all-reduces)."""
    if key not in METHODS:
        raise ValueError(f"unknown method {key!r}; choose one of {', '.join(METHODS)}")
    fields = {f.name for f in METHODS[key].fields()}
    return get_peft_model(base, METHODS[key].make_config(**{k: v for k, v in SMALL.items() if k in fields}))


def main(argv=None) -> int:
    """``torchrun --nproc_per_node W -m minituner.launch --method lora``: fine-tune the shipped base."""
    p = argparse.ArgumentParser(prog="python -m minituner.launch", description=main.__doc__)
    p.add_argument("--method", default="lora", choices=[m.key for m in ordered()])
    p.add_argument("--task", default="classify")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=16, help="the whole batch, split over the processes")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rank, world = init()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    model = build(args.method, load_base())
    hist = train(model, make_task(args.task), steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                 seed=args.seed, device=device, progress=False)
    if rank == 0:
        print(_("{method}: {world} processes, batch {batch} ({each} each), loss {first:.4f} -> {last:.4f}, "
                "{bytes:,} bytes all-reduced per step, {seconds:.1f} s").format(
            method=args.method, world=world, batch=args.batch_size, each=args.batch_size // world,
            first=hist.losses[0], last=hist.losses[-1], bytes=hist.allreduce_bytes, seconds=hist.seconds))
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
