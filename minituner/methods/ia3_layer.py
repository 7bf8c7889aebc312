"""IA3Linear: a frozen Linear whose output (keys, values) or input (the MLP's hidden) a learned vector l scales.

    output side   y = l ⊙ (x Wᵀ + b)        folded: W ← diag(l) W, b ← l ⊙ b
    input side    y = (l ⊙ x) Wᵀ + b        folded: W ← W diag(l)
The formulas, in the paper's and the article's notation, are in ia3.py.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class IA3Linear(nn.Module):
    """``base_layer`` (frozen) with a learned scale vector: on its output, or (feedforward) on its input."""

    def __init__(self, base_layer, feedforward: bool):
        super().__init__()
        self.base_layer, self.feedforward = base_layer, feedforward
        n = base_layer.in_features if feedforward else base_layer.out_features
        self.ia3_l = nn.Parameter(torch.ones(n).to(base_layer.weight))  # l = 1: the layer as it was
        self.enabled, self.kept = True, None  # kept: (W, b) before merge_adapter folded l in

    def forward(self, x):
        if not self.enabled or self.kept is not None:
            return self.base_layer(x)  # (..., out): the base, or l already folded into W
        if self.feedforward:
            return self.base_layer(x * self.ia3_l)  # (..., out): (l_ff ⊙ h) W₂ᵀ + b
        return self.base_layer(x) * self.ia3_l  # (..., out): l ⊙ (x Wᵀ + b)

    @torch.no_grad()
    def fold(self, lin):
        """Fold diag(l) into lin's W (and b on the output side), in place."""
        if self.feedforward:
            lin.weight.mul_(self.ia3_l)  # W diag(l): column j times l_j
        else:
            lin.weight.mul_(self.ia3_l[:, None])  # diag(l) W: row i times l_i
            lin.bias.mul_(self.ia3_l)
        return lin


def ia3_layers(model) -> dict[str, IA3Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, IA3Linear)}
