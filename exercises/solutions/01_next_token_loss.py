"""Solution · Lesson 01 · pretraining's loss. Check: minituner check 01_next_token_loss

参考答案 · 第 01 课 · 预训练的损失。检查：minituner check 01_next_token_loss --lang zh
"""

import torch


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of the next tokens: (1 / B·T) Σ_t −log softmax(z_t)[y_t].

    logits (B, T, V), targets (B, T) long -> a 0-d tensor. Subtract max z before exp (stable).

    下一个 token 的平均负对数似然：(1 / B·T) Σ_t −log softmax(z_t)[y_t]。

    logits (B, T, V)，targets (B, T) long -> 一个 0 维张量。取 exp 之前先减去 max z（数值稳定）。
    """
    z = logits - logits.amax(dim=-1, keepdim=True)  # (B, T, V)
    logp = z - z.exp().sum(dim=-1, keepdim=True).log()  # (B, T, V)
    return -logp.gather(-1, targets.unsqueeze(-1)).mean()
