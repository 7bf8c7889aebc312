"""Lesson 02 · 全量微调: the answer-only loss. Check: minituner check 02_answer_mask

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def answer_mask(n_prompt: int, n_answer: int) -> torch.Tensor:
    """The loss mask of one row whose tokens are ids = prompt (n_prompt) + answer (n_answer).

    The model reads x = ids[:-1] and predicts y = ids[1:]; mask[t] = 1.0 where y[t] is an answer
    token, else 0.0. Returns a float tensor (n_prompt + n_answer - 1,).
    """
    raise NotImplementedError


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """loss = Σ_t m_t · (−log softmax(z_t)[y_t]) / Σ_t m_t (article §4 step 4).

    logits (B, T, V), targets (B, T) long, mask (B, T) of 0/1 -> a 0-d tensor.
    """
    raise NotImplementedError
