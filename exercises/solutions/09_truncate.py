"""Solution · Lesson 09 · is ΔW low rank? Check: minituner check 09_truncate
"""

import torch


def truncate(dw: torch.Tensor, r: int) -> torch.Tensor:
    """[ΔW]_r = U_r Σ_r V_rᵀ, the closest rank-r matrix to ΔW (Eckart–Young).

    dw (out, in), r >= 1 -> (out, in). torch.linalg.svd(dw, full_matrices=False) gives U, S, Vh.
    """
    U, S, Vh = torch.linalg.svd(dw, full_matrices=False)  # (out, k), (k,), (k, in)
    return (U[:, :r] * S[:r]) @ Vh[:r]
