"""Lesson 07 · switching LoRA adapters. Check: minituner check 07_lora_switch

Write each function's body; the docstring states the formula and the shapes.

第 07 课 · 切换 LoRA 适配器。检查：minituner check 07_lora_switch --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def switch(W_merged, A1, B1, A2, B2, alpha: float, r: int) -> torch.Tensor:
    """(W + ΔW) − ΔW + ΔW′: take adapter 1 out of a merged weight and put adapter 2 in.

    W_merged (out, in) = W + (α/r) B1 A1; A1, A2 (r, in); B1, B2 (out, r) -> (out, in).

    (W + ΔW) − ΔW + ΔW′：从已合并的权重中取出适配器 1，再换上适配器 2。

    W_merged (out, in) = W + (α/r) B1 A1；A1、A2 (r, in)；B1、B2 (out, r) -> (out, in)。
    """
    raise NotImplementedError
