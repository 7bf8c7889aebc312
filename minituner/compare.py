"""The main job: every method of the article side by side on one base (`minituner compare`).

Each method starts from the same shipped base, trains on the same task with the same
data order (one seed) and its own learning rate (stated in the table), then is
evaluated on the held-out split, which needs what pretraining taught. A from-scratch
row (same shape, random init, all trainable) is the floor: the article's reason to
fine-tune at all.

Memory: on a GPU, the allocator's peak. On the CPU there is no per-run allocator peak, so
the column counts what one training step must hold: weights, gradients of the trainable
tensors, AdamW's two moments, and every tensor autograd saves for the backward pass
(measured with saved-tensor hooks, each storage counted once).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .checkpoint import load_base
from .data import TASKS, make_task
from .functional import cross_entropy
from .methods.shortcuts import freeze, full, lora, prefix_tuning, prompt_tuning, ptuning_v2
from .model import GPT
from .report import count_parameters, markdown_table, plot_losses, save_figure
from .train import evaluate, train

PHRASE = "the animal that is "  # a real sentence start: text init for soft prompts and prefixes


@dataclass
class Method:
    name: str
    build: callable  # base -> model to train
    lr: float
    note: str


def methods(seed: int = 0) -> list[Method]:
    """The rows of the comparison, each with the hyperparameters that suit it (see the lessons)."""
    return [
        Method("from scratch", lambda b: full(GPT(b.config, seed=seed + 1)), 1e-3, "random init, all trainable"),
        Method("full (全量微调)", full, 2e-4, "all trainable"),
        Method("freeze (冻结)", lambda b: freeze(b, trainable_layers=1), 1e-3, "top block + ln_f"),
        Method("prompt tuning (提示微调)", lambda b: prompt_tuning(b, num_virtual_tokens=4), 0.03, "k=4"),
        Method("prefix tuning (前缀微调)", lambda b: prefix_tuning(b, num_virtual_tokens=8), 1e-2,
               "k=8, MLP reparam"),
        Method("P-Tuning v2", lambda b: ptuning_v2(b, num_virtual_tokens=8, init="text", init_text=PHRASE[:8]), 2e-2,
               "k=8 per layer, text init"),
        Method("LoRA", lambda b: lora(b, r=4, lora_alpha=16, target_modules=("q_proj", "v_proj"), seed=seed), 3e-3,
               "r=4, α=16, q,v"),
    ]


def step_memory_bytes(model, batch) -> int:
    """Bytes one training step holds on the CPU: weights, grads, AdamW moments, saved activations."""
    seen, saved = set(), 0

    def pack(t):
        nonlocal saved
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key not in seen:
            seen.add(key)
            saved += key[1]
        return t

    x, y, m = batch
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = cross_entropy(model(x), y, m)
    loss.backward()
    model.zero_grad(set_to_none=True)
    trainable, total = count_parameters(model)
    return 4 * total + 4 * trainable * 3 + saved  # weights + grads + (m, v), float32


def adapter_bytes(model, name: str) -> int | str:
    """Bytes of what must be saved to keep this fine-tune: the LoRA file itself, else the trainable tensors."""
    if name == "LoRA":
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(Path(d) / "adapter")
            return sum(p.stat().st_size for p in (Path(d) / "adapter").iterdir())
    return 4 * count_parameters(model)[0]


def compare(task: str = "classify", steps: int = 250, batch_size: int = 16, seed: int = 0,
            device: str = "cpu", out="runs/compare", progress: bool = True) -> list[dict]:
    """Train every method; write table.md, losses.png and tradeoff.png into `out`; return the rows."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; the tasks are {', '.join(TASKS)}")
    out = Path(out)
    base, data = load_base(), make_task(task)
    rows, curves = [], {}
    for meth in methods(seed):
        torch.manual_seed(seed)
        model = meth.build(base)
        trainable, total = count_parameters(model)
        mem = step_memory_bytes(model, data.train.batch(batch_size, torch.Generator().manual_seed(seed)))
        start_loss = evaluate(model, data.train)["loss"]
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        hist = train(model, data, steps=steps, lr=meth.lr, batch_size=batch_size, seed=seed, device=device,
                     progress=progress)
        if device.startswith("cuda"):
            mem = torch.cuda.max_memory_allocated()
        model.to("cpu")
        ev_train, ev_test = evaluate(model, data.train), evaluate(model, data.test)
        curves[meth.name.split(" (")[0]] = hist.losses  # plot labels in English: the default font has no CJK
        rows.append({
            "method": meth.name, "setting": meth.note, "lr": meth.lr,
            "trainable params": trainable, "trainable %": 100 * trainable / total,
            "optimizer state bytes": hist.optimizer_state_bytes,
            "train loss before": start_loss, "train loss": ev_train["loss"], "test loss": ev_test["loss"],
            "train acc": ev_train["accuracy"], "test acc": ev_test["accuracy"],
            "train s": hist.seconds, "step memory bytes": mem,
            "saved bytes": adapter_bytes(model, meth.name),
        })
        if progress:
            print(f"{meth.name:28s} test acc {ev_test['accuracy']:.3f}  ({hist.seconds:.1f} s)")
    out.mkdir(parents=True, exist_ok=True)
    header = (f"Task `{task}`, {steps} steps, batch {batch_size}, seed {seed}, device {device}; "
              f"base: {count_parameters(base)[1]:,} parameters.\n\n")
    from .checkpoint import atomic_write

    atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(header + markdown_table(rows) + "\n"))
    plot_losses(curves, f"Every method on `{task}` from one base", out / "losses.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.scatter(r["trainable %"], r["test acc"], s=40)
        ax.annotate(r["method"].split(" (")[0], (r["trainable %"], r["test acc"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (% of the model, log scale)")
    ax.set_ylabel("held-out exact-match accuracy")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.set_title("What each method trains, and what it buys")
    save_figure(fig, out / "tradeoff.png")
    return rows
