"""Article §3.2, prompt tuning: X' = [x'1..x'k; x1..xm], Y = W X'.

Each check takes an optional model (the tests pass a small random GPT); ``minituner
verify`` runs them on the shipped base. The soft prompt here is drawn from the
vocabulary with a seed, standing in for a trained one.
"""

from __future__ import annotations

import torch

from ..checkpoint import load_base
from ..methods.shortcuts import prompt_tuning
from . import check, inputs


def head(base, x: torch.Tensor) -> torch.Tensor:
    """The frozen blocks, final LayerNorm and tied head on embeddings x (B, T, C) -> (B, T, V)."""
    for block in base.h:
        x = block(x)  # (B, T, C)
    return base.ln_f(x) @ base.wte.weight.T  # (B, T, V)


@check("§3.2", "prompt tuning: f([P; X]) = the base run on [P; X] built by hand", source="article")
@torch.no_grad()
def prompt_is_concatenation(base=None):
    """As PEFT on GPT-2: P_i gets wpe[i], the real tokens positions k..k+T-1; only the T real rows are predicted."""
    model = prompt_tuning(base or load_base(), num_virtual_tokens=8, init="vocab", seed=1)
    idx = inputs(4)  # (B, T)
    B, T = idx.shape
    P, k, base = model.prompt, model.num_virtual_tokens, model.base
    x = base.wte.weight[idx] + base.wpe.weight[k : k + T]  # (B, T, C): X, positions k..k+T-1
    x_prime = torch.cat([(P + base.wpe.weight[:k]).expand(B, k, -1), x], dim=1)  # (B, k + T, C): X' = [P; X]
    by_hand = head(base, x_prime)[:, k:]  # (B, T, V): the virtual rows predict nothing
    return (model(idx) - by_hand).abs().max().item(), 1e-5


@check("§3.2", "prompt tuning with k = 0 virtual tokens is the base, exactly", source="added")
@torch.no_grad()
def empty_prompt_is_base(base=None):
    base = base or load_base()
    idx = inputs(4)
    empty = torch.zeros(0, base.config.n_embd)  # (0, C)
    return (base(idx, prompt=empty) - base(idx)).abs().max().item(), 0.0


@check("§3.2", "prompt tuning: generate() with the KV cache = without it (same tokens)", source="added")
def prompt_cache_same_tokens(base=None):
    """Greedy continuations of real prompts; the residual counts the tokens that differ."""
    model = prompt_tuning(base or load_base(), num_virtual_tokens=8, init="vocab", seed=1)
    idx = inputs(4)[:, :20]  # (B, 20): the start of each description
    cached = model.generate(idx, 12, use_cache=True)
    uncached = model.generate(idx, 12, use_cache=False)
    return float((cached != uncached).sum().item()), 0.0
