"""Lesson 09 · is ΔW low rank? Check: minituner check 09_truncate

Write each function's body; the docstring states the formula and the shapes.

第 09 课 · ΔW 是低秩的吗？检查：minituner check 09_truncate --lang zh

写出每个函数的函数体；文档字符串里写明了公式和形状。
"""

import torch


def truncate(dw: torch.Tensor, r: int) -> torch.Tensor:
    """[ΔW]_r = U_r Σ_r V_rᵀ, the closest rank-r matrix to ΔW (Eckart–Young).

    dw (out, in), r >= 1 -> (out, in). torch.linalg.svd(dw, full_matrices=False) gives U, S, Vh.

    [ΔW]_r = U_r Σ_r V_rᵀ，即与 ΔW 最接近的秩为 r 的矩阵（Eckart–Young 定理）。

    dw (out, in)，r >= 1 -> (out, in)。torch.linalg.svd(dw, full_matrices=False) 给出 U、S、Vh。
    """
    raise NotImplementedError
