"""Lesson 00 · Y = WX. Check: minituner check 00_linear

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The article's Y = WX (§1) in row form: y = x Wᵀ + b.

    x (..., in), W (out, in), b (out,) -> y (..., out).
    """
    raise NotImplementedError
