"""Solution · Lesson 00 · Y = WX. Check: minituner check 00_linear

参考答案 · 第 00 课 · Y = WX。检查：minituner check 00_linear --lang zh
"""

import torch


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The article's Y = WX (§1) in row form: y = x Wᵀ + b.

    x (..., in), W (out, in), b (out,) -> y (..., out).

    原文的 Y = WX（§1）写成行向量的形式：y = x Wᵀ + b。

    x (..., in)，W (out, in)，b (out,) -> y (..., out)。
    """
    return x @ W.T + b  # (..., out)
