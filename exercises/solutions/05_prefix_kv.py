"""Solution · Lesson 05 · 前缀微调: prefix keys and values. Check: minituner check 05_prefix_kv
"""

import torch


def prepend_prefix(prefix_k: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """K′ = [P_k; K] in every head (the same for V).

    prefix_k (nh, n, hs), k (B, nh, T, hs) -> (B, nh, n + T, hs).
    """
    return torch.cat([prefix_k.expand(k.size(0), -1, -1, -1), k], dim=2)  # (B, nh, n + T, hs)


def prefix_params(n_virtual: int, d: int, n_layer: int) -> int:
    """Trainable parameters of prefix tuning without the MLP: a key and a value prefix (n_virtual, d) per layer.
    """
    return 2 * n_layer * n_virtual * d
