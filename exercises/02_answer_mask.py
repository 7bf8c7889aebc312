"""Lesson 02 · 全量微调: the answer-only loss. Check: minituner check 02_answer_mask

Write each function's body; the docstring states the formula and the shapes.

第 02 课 · 全量微调：只在答案上计算的损失。检查：minituner check 02_answer_mask --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def answer_mask(n_prompt: int, n_answer: int) -> torch.Tensor:
    """The loss mask of one row whose tokens are ids = prompt (n_prompt) + answer (n_answer).

    The model reads x = ids[:-1] and predicts y = ids[1:]; mask[t] = 1.0 where y[t] is an answer
    token, else 0.0. Returns a float tensor (n_prompt + n_answer - 1,).

    一行样本的损失掩码，这一行的 token 是 ids = prompt (n_prompt) + answer (n_answer)，
    即 n_prompt 个提示 token 后面接 n_answer 个答案 token。

    模型读入 x = ids[:-1]，预测 y = ids[1:]；y[t] 是答案 token 时 mask[t] = 1.0，否则为 0.0。
    返回一个浮点张量 (n_prompt + n_answer - 1,)。
    """
    raise NotImplementedError


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """loss = Σ_t m_t · (−log softmax(z_t)[y_t]) / Σ_t m_t (article §4 step 4).

    logits (B, T, V), targets (B, T) long, mask (B, T) of 0/1 -> a 0-d tensor.

    loss = Σ_t m_t · (−log softmax(z_t)[y_t]) / Σ_t m_t（原文 §4 第 4 步）。

    logits (B, T, V)，targets (B, T) long，mask (B, T)，元素为 0/1 -> 一个 0 维张量。
    """
    raise NotImplementedError
