"""Lesson 11 · QLoRA's NF4: quantise, then dequantise. Check: minituner check 11_nf4

Write each function's body; the docstring states the formula and the shapes.
"""

import torch


def nf4_roundtrip(w: torch.Tensor, code_book: torch.Tensor) -> torch.Tensor:
    """ŵ = q[code] · c per block of 64 values (w.numel() is a multiple of 64, taken in w's flat order).

    c = max |w| in the block (absmax); code = the index of the code-book value q (16,) nearest to
    w / c. Returns ŵ with w's shape.
    """
    raise NotImplementedError
