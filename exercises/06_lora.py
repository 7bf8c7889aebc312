"""Lesson 06 · LoRA (低秩适配): forward and merge. Check: minituner check 06_lora

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def lora_forward(x, W, b, A, B, alpha: float, r: int) -> torch.Tensor:
    """y = x Wᵀ + b + (α/r) · (x Aᵀ) Bᵀ: the frozen layer plus the low-rank path.

    x (..., in), W (out, in), b (out,), A (r, in), B (out, r) -> (..., out).
    """
    raise NotImplementedError


def lora_merge(W, A, B, alpha: float, r: int) -> torch.Tensor:
    """W + ΔW with ΔW = (α/r) · B A: after merging, the layer costs what the base costs.

    W (out, in), A (r, in), B (out, r) -> (out, in).
    """
    raise NotImplementedError
