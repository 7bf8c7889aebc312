"""Article §1: Y = WX. A linear layer is a matrix product, and the tiny GPT is a stack of them."""

from __future__ import annotations

import torch

from .. import functional as F
from ..checkpoint import load_base
from ..data import make_task
from . import check


@check("§1", "Y = WX (a layer's output is its matrix times the input)", source="article")
def y_equals_wx():
    """Every Linear of the base, applied to real activations, against the article's column form."""
    base = load_base()
    task = make_task("classify")
    x = base.wte(task.val.x[:4]) + base.wpe(torch.arange(task.val.x.size(1)))  # (B, T, C)
    worst = 0.0
    for mod in base.modules():
        if hasattr(mod, "in_features"):
            inp = x if mod.in_features == x.size(-1) else F.gelu(base.h[0].mlp.up_proj(x))
            X = inp.reshape(-1, mod.in_features).T  # (in, N): tokens as columns, as the article writes X
            Y = mod.weight @ X + mod.bias[:, None]  # (out, N): Y = WX (+ b)
            worst = max(worst, (mod(inp).reshape(-1, mod.out_features).T - Y).abs().max().item())
    return worst, 1e-5


@check("§1", "model = stack of W: Σ matrix sizes = parameter count", source="article")
def parameter_count():
    """The analytic count of the GPT's tensors against PyTorch's own count."""
    base = load_base()
    c = base.config
    d, L, V, T = c.n_embd, c.n_layer, c.vocab_size, c.block_size
    per_block = (4 * d * d + 4 * d) + (2 * 4 * d * d + 4 * d + d) + 2 * 2 * d  # attention, MLP, two LayerNorms
    analytic = V * d + T * d + L * per_block + 2 * d  # wte (tied head), wpe, blocks, ln_f
    return abs(analytic - sum(p.numel() for p in base.parameters())), 0
