"""Lesson 05 · 前缀微调: prefix keys and values. Check: minituner check 05_prefix_kv

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def prepend_prefix(prefix_k: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """K′ = [P_k; K] in every head (the same for V).

    prefix_k (nh, n, hs), k (B, nh, T, hs) -> (B, nh, n + T, hs).
    """
    raise NotImplementedError


def prefix_params(n_virtual: int, d: int, n_layer: int) -> int:
    """Trainable parameters of prefix tuning without the MLP: a key and a value prefix (n_virtual, d) per layer.
    """
    raise NotImplementedError
