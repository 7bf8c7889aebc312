"""Solution · Lesson 11 · QLoRA's NF4: quantise, then dequantise. Check: minituner check 11_nf4

参考答案 · 第 11 课 · QLoRA 的 NF4：先量化，再反量化。检查：minituner check 11_nf4 --lang zh
"""

import torch


def nf4_roundtrip(w: torch.Tensor, code_book: torch.Tensor) -> torch.Tensor:
    """ŵ = q[code] · c per block of 64 values (w.numel() is a multiple of 64, taken in w's flat order).

    c = max |w| in the block (absmax); code = the index of the code-book value q (16,) nearest to
    w / c. Returns ŵ with w's shape.

    每 64 个值为一块，逐块计算 ŵ = q[code] · c（w.numel() 是 64 的倍数，按 w 展平后的顺序分块）。

    c = 块内的 max |w|（absmax）；code = 码本 q (16,) 中最接近 w / c 的那个值的下标。
    返回与 w 形状相同的 ŵ。
    """
    blocks = w.reshape(-1, 64)  # (n_blocks, 64)
    c = blocks.abs().amax(dim=1, keepdim=True)  # (n_blocks, 1)
    codes = ((blocks / c)[..., None] - code_book).abs().argmin(dim=-1)  # (n_blocks, 64)
    return (code_book[codes] * c).reshape(w.shape)
