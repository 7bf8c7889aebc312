"""train() and evaluate(): the article's §4 steps 7 (train) and 8 (evaluate).

Accuracy is exact match of the greedy answer. It is computed in one batched,
teacher-forced pass: greedy decoding reproduces the answer exactly if and only
if, at every answer position, the argmax of the logits given the *correct*
earlier tokens is the correct next token (as long as all earlier tokens match,
greedy decoding's context *is* the correct context). tests/test_train.py checks
this against generate().
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .data import Dataset, Split
from .device import check_device
from .functional import cross_entropy
from .optim import AdamW


@dataclass
class History:
    """What a run did: a loss per step, (step, test loss, test accuracy) at each eval, seconds."""

    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float, float | None]] = field(default_factory=list)
    seconds: float = 0.0
    optimizer_state_bytes: int = 0


def lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up for `warmup` steps, then cosine decay to lr/10 (as nanoGPT)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def train(model, data: Dataset, steps: int = 300, lr: float = 1e-3, batch_size: int = 32,
          seed: int = 0, device: str = "cpu", weight_decay: float = 0.0, grad_clip: float = 1.0,
          warmup: int = 0, eval_every: int = 0, progress: bool = True) -> History:
    """Train the model's trainable tensors on data.train with AdamW; returns a History.

    Only tensors with requires_grad are given to the optimiser: that is how every method
    (freezing, prompts, prefixes, LoRA) decides what is trained. Weight decay, when given,
    applies to all of them alike (soft prompts and LoRA matrices included).
    A non-finite loss stops training with a RuntimeError naming the step.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    device = check_device(device)
    model.to(device)
    model.train()
    opt = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    hist = History(optimizer_state_bytes=opt.state_bytes())
    t0 = time.perf_counter()
    # progress=True shows a bar on a terminal (tqdm turns itself off when output is not a TTY)
    bar = tqdm(range(steps), desc=f"train {data.name}", disable=None if progress else True, leave=False)
    for step in bar:
        x, y, m = (t.to(device) for t in data.train.batch(batch_size, gen))
        loss = cross_entropy(model(x), y, m)
        if not torch.isfinite(loss):
            raise RuntimeError(f"the loss became {loss.item()} at step {step}: lower the learning rate "
                               f"(now {lr}) or keep gradient clipping on")
        opt.zero_grad()
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(opt.params, grad_clip)
        opt.lr = lr_at(step, steps, lr, warmup)
        opt.step()
        hist.losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            ev = evaluate(model, data.test, device=device)
            hist.evals.append((step + 1, ev["loss"], ev["accuracy"]))
    hist.seconds = time.perf_counter() - t0
    model.eval()
    return hist


@torch.no_grad()
def evaluate(model, split: Split, batch_size: int = 256, device: str = "cpu") -> dict:
    """Masked loss and exact-match accuracy of greedy answers over a whole split.

    Returns {"loss": mean loss per answer token, "accuracy": fraction of rows whose
    greedy answer is exactly right, "correct": a bool per row}.
    """
    was_training = model.training
    model.eval()
    total, count, correct = 0.0, 0.0, []
    for i in range(0, len(split), batch_size):
        x, y, m = (t[i : i + batch_size].to(device) for t in (split.x, split.y, split.mask))
        logits = model(x)  # (B, T, V)
        total += cross_entropy(logits, y, m).item() * m.sum().item()
        count += m.sum().item()
        hit = (logits.argmax(-1) == y) | (m == 0)  # (B, T): a position is right or does not count
        correct += hit.all(dim=1).tolist()
    model.train(was_training)
    return {"loss": total / count, "accuracy": sum(correct) / len(correct), "correct": correct}


@torch.no_grad()
def answer(model, tokenizer, prompt: str, max_new_tokens: int = 24) -> str:
    """The model's greedy answer to one prompt, up to and including the first '.'."""
    idx = torch.tensor([tokenizer.encode(prompt)])
    out = model.generate(idx, max_new_tokens, stop_id=tokenizer.stoi["."])
    return tokenizer.decode(out[0, idx.size(1):])
