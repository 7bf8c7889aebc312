"""Where a training step's time goes: torch.profiler over a few steps of one method.

    python benchmarks/profile_step.py [--method full] [--steps 20] [--hf]

Prints the profiler's table of operators by self CPU time (one line per aten op:
calls, self time, share), for minituner's step or, with --hf, transformers + PEFT's.
The step is the one bench_methods.py times: forward, masked loss, backward, AdamW.
"""

from __future__ import annotations

import argparse

import torch
from bench_methods import METHODS, hf_method, ours, step_fn

import minituner


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=METHODS, default="full")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--hf", action="store_true", help="profile transformers + PEFT instead")
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args(argv)
    base, task = minituner.load_base(), minituner.make_task("classify")
    batch = task.train.batch(args.batch_size, torch.Generator().manual_seed(0))
    model = hf_method(args.method, base.config) if args.hf else ours(args.method, base)
    step = step_fn(model, batch, args.hf)
    for _ in range(3):
        step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
