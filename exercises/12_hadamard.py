"""Lesson 12 · intrinsic dimension: Fastfood's Hadamard and d90. Check: minituner check 12_hadamard

Write each function's body; the docstring states the formula and the shapes.

第 12 课 · 内在维度：Fastfood 的 Hadamard 变换与 d90。检查：minituner check 12_hadamard --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """H x over the last axis (..., L), L a power of 2; H = [[H', H'], [H', −H']] (Sylvester), unscaled.

    沿最后一维 (..., L) 计算 H x，L 是 2 的幂；H = [[H', H'], [H', −H']]（Sylvester 构造），不做缩放。
    """
    raise NotImplementedError


def d90(ds: list[int], scores: list[float], full_score: float, share: float = 0.9):
    """The smallest d whose score reaches share · full_score (Li et al.'s d_int90); None if none does.

    得分达到 share · full_score 的最小 d（即 Li 等人的 d_int90）；没有任何 d 达到时返回 None。
    """
    raise NotImplementedError
