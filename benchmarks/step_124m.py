"""Each method's training step at GPT-2-small's shape (124M parameters), on any device: time per
step and the memory one step holds, beside memory.estimate_memory's count for the same shape.

    python benchmarks/step_124m.py [--device cuda] [--batch-size 8] [--seq-len 256] [--out FILE]

On a GPU the memory is the allocator's peak over the timed steps (torch.cuda.max_memory_allocated:
weights, AdamW's state, gradients and activations at their largest); on the CPU, memory.measure_step's count of what the step
holds. The model is randomly initialised (nothing is downloaded): cost does not depend on the
weights' values. Float32 everywhere, AdamW, no gradient checkpointing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from minituner.device import check_device
from minituner.functional import cross_entropy
from minituner.memory import estimate_memory, gpt_shape, measure_step
from minituner.methods import shortcuts as m
from minituner.model import GPT, GPTConfig
from minituner.optim import AdamW
from minituner.report import markdown_table

GPT2_SMALL = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
METHODS = {  # name: (build, estimate_memory's method and keywords; None where it has no formula)
    "full": (lambda b: m.full(b), ("full", {})),
    "freeze (top 2 blocks)": (lambda b: m.freeze(b, trainable_layers=2), ("freeze", {"trainable_layers": 2})),
    "prompt tuning k=20": (lambda b: m.prompt_tuning(b, num_virtual_tokens=20), ("prompt", {"num_virtual_tokens": 20})),
    "P-Tuning v2 k=20": (lambda b: m.ptuning_v2(b, num_virtual_tokens=20), ("prefix", {"num_virtual_tokens": 20})),
    "LoRA r=8 q,v": (lambda b: m.lora(b, r=8, lora_alpha=16), ("lora", {"r": 8})),
    "BitFit": (lambda b: m.bitfit(b), None),
    "(IA)³": (lambda b: m.ia3(b), None),
    "DoRA r=8 q,v": (lambda b: m.dora(b, r=8, lora_alpha=16), None),
    "QLoRA r=8 q,v (NF4 base)": (lambda b: m.qlora(b, r=8, lora_alpha=16), None),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_method(name, build, estimate, base, batch, device, steps: int) -> dict:
    model = build(base).to(device)
    opt = AdamW(model.parameters(), lr=1e-5)
    x, y, mask = (t.to(device) for t in batch)

    def step():
        loss = cross_entropy(model(x), y, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step()  # warm-up: allocates AdamW's state and the kernels' workspaces
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    ms = 1000 * (time.perf_counter() - t0) / steps
    if device.type == "cuda":
        held = torch.cuda.max_memory_allocated(device)
    else:
        held = sum(measure_step(model.cpu(), batch).values())
    B, T = x.shape
    est = estimate_memory(gpt_shape(base.config), estimate[0], bits=32, batch_size=B, seq_len=T,
                          **estimate[1]).total if estimate else None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"method": name, "trainable": trainable, "ms / step": ms, "step memory MiB": held / 2**20,
            "estimate MiB": "" if est is None else est / 2**20}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="timed steps per method, after one warm-up step")
    p.add_argument("--out", default=None, help="also write the table as Markdown here")
    args = p.parse_args(argv)
    device = check_device(args.device)
    base = GPT(GPT2_SMALL, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(GPT2_SMALL.vocab_size, (args.batch_size, args.seq_len + 1), generator=gen)
    batch = (x[:, :-1], x[:, 1:], torch.ones(args.batch_size, args.seq_len))
    rows = []
    for name, (build, est) in METHODS.items():
        rows.append(one_method(name, build, est, base, batch, device, args.steps))
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the last method's model and state are gone: start the next from zero
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    text = (f"GPT-2-small shape ({sum(p.numel() for p in base.parameters()):,} parameters), float32, batch "
            f"{args.batch_size} × {args.seq_len} tokens, AdamW; {where}, torch {torch.__version__}; mean of "
            f"{args.steps} steps after one warm-up.\n\n" + markdown_table(rows))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
