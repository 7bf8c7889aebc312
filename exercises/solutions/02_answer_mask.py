"""Solution · Lesson 02 · 全量微调: the answer-only loss. Check: minituner check 02_answer_mask
"""

import torch


def answer_mask(n_prompt: int, n_answer: int) -> torch.Tensor:
    """The loss mask of one row whose tokens are ids = prompt (n_prompt) + answer (n_answer).

    The model reads x = ids[:-1] and predicts y = ids[1:]; mask[t] = 1.0 where y[t] is an answer
    token, else 0.0. Returns a float tensor (n_prompt + n_answer - 1,).
    """
    return torch.tensor([0.0] * (n_prompt - 1) + [1.0] * n_answer)  # y[t] = ids[t + 1]


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """loss = Σ_t m_t · (−log softmax(z_t)[y_t]) / Σ_t m_t (article §4 step 4).

    logits (B, T, V), targets (B, T) long, mask (B, T) of 0/1 -> a 0-d tensor.
    """
    logp = torch.log_softmax(logits, dim=-1)  # (B, T, V)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (nll * mask).sum() / mask.sum()
