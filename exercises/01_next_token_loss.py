"""Lesson 01 · pretraining's loss. Check: minituner check 01_next_token_loss

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the next tokens: (1 / B·T) Σ_t −log softmax(z_t)[y_t].

    logits (B, T, V), targets (B, T) long -> a 0-d tensor. Subtract max z before exp (stable).
    """
    raise NotImplementedError
