"""Article §3.2's hypothesis, a low-dimensional "本质模型" behind an over-parameterised one, measured as
Li et al. (2018) and Aghajanyan et al. (2021) do: θ = θ₀ + P θ_d with the Fastfood map P (intrinsic.py)."""

from __future__ import annotations

import torch

from ..checkpoint import load_base
from ..data import make_task
from ..functional import cross_entropy
from ..intrinsic import Fastfood, IntrinsicModel
from . import check, inputs


@check("§3.2", "θ = θ₀ + Pθ_d with θ_d = 0 is the base, exactly", source="added")
def zero_theta_is_base():
    base = load_base()
    x = inputs()
    return (IntrinsicModel(base, 64)(x) - base(x)).abs().max().item(), 0.0


@check("§3.2", "Fastfood's butterfly equals P = H G Π H B / (‖G‖√D) multiplied out", source="added")
def fastfood_equals_dense():
    f = Fastfood(24, 1000, seed=3)  # d padded to L = 32, 32 blocks, the last one cut
    return (f(torch.eye(24)).T - f.dense()).abs().max().item(), 1e-5


@check("§3.2", "Fastfood keeps length: ‖P eᵢ‖ = 1 when L divides D", source="added")
def fastfood_unit_columns():
    P = Fastfood(50, 4096, seed=4)(torch.eye(50)).T  # (D, d), L = 64
    return (P.norm(dim=0) - 1).abs().max().item(), 1e-5


@check("§3.2", "gradients reach θ_d only, as ∂ℒ/∂θ_d = Pᵀ ∂ℒ/∂θ", source="added")
def gradient_is_projected():
    base, task = load_base(), make_task("classify")
    x, y, m = task.train.batch(8, torch.Generator().manual_seed(0))
    model = IntrinsicModel(base, 32, seed=5)
    cross_entropy(model(x), y, m).backward()
    full = base.requires_grad_(True)  # a fresh load: the full gradient at θ₀ on the same batch
    cross_entropy(full(x), y, m).backward()
    g = torch.cat([p.grad.flatten() for p in full.parameters()])  # (D,) in named_parameters' order
    frozen = sum(p.grad is not None for p in model.base.parameters())
    expected = model.projection(torch.eye(32)) @ g  # (d,): Pᵀ g, row i = (P eᵢ)ᵀ g
    return float((model.theta_d.grad - expected).abs().max() / expected.abs().max()) + frozen, 1e-4
