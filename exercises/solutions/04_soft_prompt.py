"""Solution · Lesson 04 · 提示微调: the soft prompt. Check: minituner check 04_soft_prompt
"""

import torch


def prepend_prompt(P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """X′ = [P; X]: the same soft prompt before every row.

    P (k, C), X (B, T, C) -> (B, k + T, C).
    """
    return torch.cat([P.expand(X.size(0), -1, -1), X], dim=1)  # (B, k + T, C)


def prompt_params(n_virtual: int, d: int) -> int:
    """Trainable parameters of prompt tuning with n_virtual virtual tokens of width d.
    """
    return n_virtual * d
