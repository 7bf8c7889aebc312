"""Solution · Lesson 06 · LoRA (低秩适配): forward and merge. Check: minituner check 06_lora

参考答案 · 第 06 课 · LoRA（低秩适配）：前向计算与合并。检查：minituner check 06_lora --lang zh
"""

import torch


def lora_forward(x, W, b, A, B, alpha: float, r: int) -> torch.Tensor:
    """y = x Wᵀ + b + (α/r) · (x Aᵀ) Bᵀ: the frozen layer plus the low-rank path.

    x (..., in), W (out, in), b (out,), A (r, in), B (out, r) -> (..., out).

    y = x Wᵀ + b + (α/r) · (x Aᵀ) Bᵀ：冻结的原层加上一条低秩支路。

    x (..., in)，W (out, in)，b (out,)，A (r, in)，B (out, r) -> (..., out)。
    """
    return x @ W.T + b + (alpha / r) * (x @ A.T) @ B.T  # (..., out)


def lora_merge(W, A, B, alpha: float, r: int) -> torch.Tensor:
    """W + ΔW with ΔW = (α/r) · B A: after merging, the layer costs what the base costs.

    W (out, in), A (r, in), B (out, r) -> (out, in).

    W + ΔW，其中 ΔW = (α/r) · B A：合并之后，这一层的计算开销与基座模型的相同。

    W (out, in)，A (r, in)，B (out, r) -> (out, in)。
    """
    return W + (alpha / r) * B @ A  # (out, in)
