"""Solution · Lesson 01 · pretraining's loss. Check: minituner check 01_next_token_loss
"""

import torch


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the next tokens: (1 / B·T) Σ_t −log softmax(z_t)[y_t].

    logits (B, T, V), targets (B, T) long -> a 0-d tensor. Subtract max z before exp (stable).
    """
    z = logits - logits.amax(dim=-1, keepdim=True)  # (B, T, V)
    logp = z - z.exp().sum(dim=-1, keepdim=True).log()  # (B, T, V)
    return -logp.gather(-1, targets.unsqueeze(-1)).mean()
