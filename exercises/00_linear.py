"""Lesson 00 · Y = WX. Check: minituner check 00_linear

Write each function's body; the docstring states the formula and the shapes.

第 00 课 · Y = WX。检查：minituner check 00_linear --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The article's Y = WX (§1) in row form: y = x Wᵀ + b.

    x (..., in), W (out, in), b (out,) -> y (..., out).

    原文的 Y = WX（§1）写成行向量的形式：y = x Wᵀ + b。

    x (..., in)，W (out, in)，b (out,) -> y (..., out)。
    """
    raise NotImplementedError
