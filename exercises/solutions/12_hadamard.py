"""Solution · Lesson 12 · intrinsic dimension: Fastfood's Hadamard and d90. Check: minituner check 12_hadamard
"""

import torch


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """H x over the last axis (..., L), L a power of 2; H = [[H', H'], [H', −H']] (Sylvester), unscaled.
    """
    L = x.shape[-1]
    if L == 1:
        return x.clone()
    a, b = hadamard(x[..., : L // 2]), hadamard(x[..., L // 2:])
    return torch.cat([a + b, a - b], dim=-1)


def d90(ds: list[int], scores: list[float], full_score: float, share: float = 0.9):
    """The smallest d whose score reaches share · full_score (Li et al.'s d_int90); None if none does.
    """
    return next((d for d, s in sorted(zip(ds, scores)) if s >= share * full_score), None)
