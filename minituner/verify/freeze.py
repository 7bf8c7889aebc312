"""Article §4 step 5: freezing. A frozen tensor gets no gradient, no optimiser state, no change."""

from __future__ import annotations

import torch

from ..checkpoint import load_base
from ..data import make_task
from ..functional import cross_entropy
from ..methods.shortcuts import freeze
from ..optim import AdamW
from ..train import train
from . import check


def _frozen_top_block():
    """The base with only its top block (and ln_f) trainable, and the classify task."""
    return freeze(load_base(), trainable_layers=1), make_task("classify")


@check("§4 step 5", "frozen θ after training = θ before (bit-identical)", source="article")
def frozen_unchanged():
    """Train the top block a few steps; the largest change of any frozen element must be 0."""
    model, task = _frozen_top_block()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train(model, task, steps=3, lr=1e-3, batch_size=8, weight_decay=0.1, progress=False)
    after = dict(model.named_parameters())
    return max((after[n] - t).abs().max().item() for n, t in before.items()), 0.0


@check("§4 step 5", "∂L/∂θ_frozen is never computed (grad is None)", source="added")
def frozen_no_gradient():
    """One backward pass: count the elements of frozen tensors that received a gradient."""
    model, task = _frozen_top_block()
    x, y, m = task.train.batch(8, torch.Generator().manual_seed(0))
    cross_entropy(model(x), y, m).backward()
    leaked = sum(p.numel() for p in model.parameters() if not p.requires_grad and p.grad is not None)
    missing = sum(p.numel() for p in model.parameters() if p.requires_grad and p.grad is None)
    return float(leaked + missing), 0.0


@check("§4 step 6", "optimiser state = 2 × trainable × 4 bytes (m and v, float32)", source="added")
def optimizer_state():
    """AdamW keeps m and v only for the tensors that require grad."""
    model, _ = _frozen_top_block()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return float(abs(AdamW(model.parameters()).state_bytes() - 2 * trainable * 4)), 0.0
