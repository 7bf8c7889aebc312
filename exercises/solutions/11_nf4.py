"""Solution · Lesson 11 · QLoRA's NF4: quantise, then dequantise. Check: minituner check 11_nf4
"""

import torch


def nf4_roundtrip(w: torch.Tensor, code_book: torch.Tensor) -> torch.Tensor:
    """ŵ = q[code] · c per block of 64 values (w.numel() is a multiple of 64, taken in w's flat order).

    c = max |w| in the block (absmax); code = the index of the code-book value q (16,) nearest to
    w / c. Returns ŵ with w's shape.
    """
    blocks = w.reshape(-1, 64)  # (n_blocks, 64)
    c = blocks.abs().amax(dim=1, keepdim=True)  # (n_blocks, 1)
    codes = ((blocks / c)[..., None] - code_book).abs().argmin(dim=-1)  # (n_blocks, 64)
    return (code_book[codes] * c).reshape(w.shape)
