"""Lesson 12 · intrinsic dimension: Fastfood's Hadamard and d90. Check: minituner check 12_hadamard

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """H x over the last axis (..., L), L a power of 2; H = [[H', H'], [H', −H']] (Sylvester), unscaled.
    """
    raise NotImplementedError


def d90(ds: list[int], scores: list[float], full_score: float, share: float = 0.9):
    """The smallest d whose score reaches share · full_score (Li et al.'s d_int90); None if none does.
    """
    raise NotImplementedError
