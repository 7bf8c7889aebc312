"""Lesson 05 · 前缀微调: prefix keys and values. Check: minituner check 05_prefix_kv

Write each function's body; the docstring states the formula and the shapes.

第 05 课 · 前缀微调：键和值的前缀。检查：minituner check 05_prefix_kv --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def prepend_prefix(prefix_k: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """K′ = [P_k; K] in every head (the same for V).

    prefix_k (nh, n, hs), k (B, nh, T, hs) -> (B, nh, n + T, hs).

    在每个注意力头里 K′ = [P_k; K]（V 也一样）。

    prefix_k (nh, n, hs)，k (B, nh, T, hs) -> (B, nh, n + T, hs)。
    """
    raise NotImplementedError


def prefix_params(n_virtual: int, d: int, n_layer: int) -> int:
    """Trainable parameters of prefix tuning without the MLP: a key and a value prefix (n_virtual, d) per layer.

    不带 MLP 的前缀微调的可训练参数个数：每层一个键前缀和一个值前缀，形状都是 (n_virtual, d)。
    """
    raise NotImplementedError
