"""Solution · Lesson 00 · Y = WX. Check: minituner check 00_linear
"""

import torch


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The article's Y = WX (§1) in row form: y = x Wᵀ + b.

    x (..., in), W (out, in), b (out,) -> y (..., out).
    """
    return x @ W.T + b  # (..., out)
