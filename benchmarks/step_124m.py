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
from minituner.methods import get_peft_model, ordered
from minituner.model import GPT, GPTConfig
from minituner.optim import AdamW
from minituner.report import markdown_table

GPT2_SMALL = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
SETTING = {"num_virtual_tokens": 20, "trainable_layers": 2, "r": 8, "lora_alpha": 16}  # where a method takes them


def setting(method) -> dict:
    """SETTING's values for the config fields this method has."""
    return {k: v for k, v in SETTING.items() if k in {f.name for f in method.fields()}}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_method(method, base, batch, device, steps: int) -> dict:
    model = get_peft_model(base, method.make_config(**setting(method))).to(device)
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
    counted = {k: v for k, v in setting(method).items() if k != "lora_alpha"}  # α scales ΔW; no memory
    bits = 4 if method.memory == "qlora" else 32  # QLoRA's base is NF4, the rest float32
    est = estimate_memory(gpt_shape(base.config), method.key, bits=bits, batch_size=B, seq_len=T,
                          **counted).total if method.memory else None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    label = ", ".join([method.label, *(f"{k}={v}" for k, v in setting(method).items())])
    return {"method": label, "trainable": trainable, "ms / step": ms, "step memory MiB": held / 2**20,
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
    for method in ordered():
        rows.append(one_method(method, base, batch, device, args.steps))
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
