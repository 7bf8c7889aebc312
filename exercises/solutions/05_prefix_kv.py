"""Solution · Lesson 05 · 前缀微调: prefix keys and values. Check: minituner check 05_prefix_kv

参考答案 · 第 05 课 · 前缀微调：键和值的前缀。检查：minituner check 05_prefix_kv --lang zh
"""

import torch


def prepend_prefix(prefix_k: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """K′ = [P_k; K] in every head (the same for V).

    prefix_k (nh, n, hs), k (B, nh, T, hs) -> (B, nh, n + T, hs).

    在每个注意力头里 K′ = [P_k; K]（V 也一样）。

    prefix_k (nh, n, hs)，k (B, nh, T, hs) -> (B, nh, n + T, hs)。
    """
    return torch.cat([prefix_k.expand(k.size(0), -1, -1, -1), k], dim=2)  # (B, nh, n + T, hs)


def prefix_params(n_virtual: int, d: int, n_layer: int) -> int:
    """Trainable parameters of prefix tuning without the MLP: a key and a value prefix (n_virtual, d) per layer.

    不带 MLP 的前缀微调的可训练参数个数：每层一个键前缀和一个值前缀，形状都是 (n_virtual, d)。
    """
    return 2 * n_layer * n_virtual * d
