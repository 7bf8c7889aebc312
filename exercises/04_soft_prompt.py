"""Lesson 04 · 提示微调: the soft prompt. Check: minituner check 04_soft_prompt

Write each function's body; the docstring states the formula and the shapes.

第 04 课 · 提示微调：软提示。检查：minituner check 04_soft_prompt --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def prepend_prompt(P: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """X′ = [P; X]: the same soft prompt before every row.

    P (k, C), X (B, T, C) -> (B, k + T, C).

    X′ = [P; X]：在每一行前面拼上同一个软提示。

    P (k, C)，X (B, T, C) -> (B, k + T, C)。
    """
    raise NotImplementedError


def prompt_params(n_virtual: int, d: int) -> int:
    """Trainable parameters of prompt tuning with n_virtual virtual tokens of width d.

    提示微调的可训练参数个数：n_virtual 个虚拟 token，每个的宽度为 d。
    """
    raise NotImplementedError
