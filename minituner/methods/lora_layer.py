"""LoRALinear: a frozen Linear plus trainable low-rank ΔW's (Hu et al. 2021), the article's §3.2.

Article (column vectors):  Y = (W + ΔW) X,  ΔW = A B,  ΔW m×n, A m×r, B r×n, r ≪ m, n.
Paper and PEFT (our code):  h = W x + ΔW x = W x + B A x,  A r×in (random), B out×r (zero).
Row form, the line in ``LoRALinear.forward`` (base_layer(x) = linear(x, W, b); x_A is x, dropped
out on this path when lora_dropout > 0):

    y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T        scale = α / r   (α / √r with rsLoRA)

Names: the code uses the paper's and PEFT's names, so the article's letters swap places.
The article's A (m×r) is our ``lora_B`` (out×r); the article's B (r×n) is our ``lora_A``
(r×in): ΔW = A_article · B_article = lora_B · lora_A (α is PEFT's ``lora_alpha``).

Shapes (in, out of the wrapped Linear; r the rank), and PEFT's init_lora_weights:
    lora_A (r, in)   True: uniform in ±1/√in (PEFT's Kaiming-uniform); "gaussian": N(0, 1/r)
    lora_B (out, r)  zeros, so ΔW = B·A = 0 and a fresh LoRA model equals its base exactly
                     (False: B uniform in ±1/√r too, as torch's Linear: ΔW ≠ 0 from the start)
Trainable count: r · (in + out) per targeted Linear. Under ``minituner.fused()``, ``as_weight`` folds W + ΔW
into one weight (and lets the attention stack it with k's).

Merging: W ← W + scale·B·A makes the adapter free at inference; unmerging subtracts it, (W + ΔW) − ΔW,
or restores W ← W_base exactly from the untouched copy ``merge(keep_copy=True)`` kept. A switch on merged
weights is unmerge then merge: the article's (W + ΔW) − ΔW + ΔW′ in place, or W_base + ΔW′ from the copy.

References: 1) Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models.
2) Kalajdzievski 2023, rsLoRA (scale α/√r). 3) Hugging Face PEFT, ``peft.tuners.lora``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import functional as F
from ..model import Linear
from .targets import resolve_targets

IN_WEIGHT_FACTOR = 4  # as_weight: N·in·out in one product beats 3·N·r·(in + out) in thin, slow ones of width r


class LoRALinear(nn.Module):
    """``base_layer`` (a frozen Linear, the very same tensors) plus named low-rank adapters: each `name` has
    lora_A[name] (r, in), lora_B[name] (out, r) and a scale; one adapter is active at a time. ``merged_adapters``
    are those whose ΔW is inside W, in order; ``w_base`` the untouched W ``merge(keep_copy=True)`` keeps (or None).
    """

    def __init__(self, base_layer: Linear):
        super().__init__()
        self.base_layer = base_layer
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        self.scale, self.dropout, self.generators = {}, {}, {}
        self.active: str | None = None
        self.merged_adapters: list[str] = []
        self.w_base: torch.Tensor | None = None
        self.enabled = True

    @property
    def weight(self) -> nn.Parameter:
        return self.base_layer.weight  # W (out, in)

    @property
    def merged(self) -> bool:
        return bool(self.merged_adapters)

    def add(self, name: str, r: int, alpha: float, dropout: float, use_rslora: bool, seed: int, init=True):
        g = torch.Generator().manual_seed(seed)
        if init == "gaussian":
            A = torch.randn(r, self.in_features, generator=g) / r  # (r, in), PEFT's normal_(std=1/r)
        else:  # PEFT's default: kaiming_uniform_(a=√5) on A, i.e. U(±1/√in)
            A = (torch.rand(r, self.in_features, generator=g) * 2 - 1) / math.sqrt(self.in_features)  # (r, in)
        B = torch.zeros(self.out_features, r) if init else (torch.rand(self.out_features, r, generator=g) * 2 - 1) / math.sqrt(r)
        self.lora_A[name] = nn.Parameter(A.to(self.weight))
        self.lora_B[name] = nn.Parameter(B.to(self.weight))  # (out, r)
        self.scale[name] = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.dropout[name], self.generators[name] = dropout, g  # masks from the adapter's own generator: same seed, same masks

    def remove(self, name: str):
        if name in self.lora_A:
            del self.lora_A[name], self.lora_B[name], self.scale[name], self.dropout[name], self.generators[name]

    def get_delta_weight(self, name: str) -> torch.Tensor:
        """ΔW = scale · B · A, (out, in): the article's ΔW = A·B with its A = lora_B, its B = lora_A."""
        return self.scale[name] * (self.lora_B[name] @ self.lora_A[name])  # (out, r) @ (r, in)

    @torch.no_grad()
    def merge(self, name: str, keep_copy: bool = False):
        """W ← W + ΔW of adapter `name` (keep_copy: first keep W_base, so unmerge is exact)."""
        if keep_copy and self.w_base is None:
            self.w_base = self.weight.detach().clone()
        if name in self.lora_A:
            self.weight.add_(self.get_delta_weight(name))  # W ← W + ΔW
            self.merged_adapters.append(name)

    @torch.no_grad()
    def unmerge(self, drop_copy: bool = True):
        """W ← W − ΔW for each merged adapter, last first, in float32; or W ← W_base when a copy was kept."""
        if self.w_base is not None:
            self.weight.copy_(self.w_base)  # W ← W_base, from the untouched copy
        else:
            for name in reversed(self.merged_adapters):
                self.weight.sub_(self.get_delta_weight(name))  # W ← (W + ΔW) − ΔW
        self.merged_adapters = []
        self.w_base = None if drop_copy else self.w_base

    @property
    def live(self) -> str | None:  # the adapter forward adds: the active one, unless disabled, merged or absent here
        return self.active if self.active in self.lora_A and self.enabled and not self.merged else None

    def as_weight(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(W + s·B·A, b) when the live adapter's ΔW rides inside the weight (the base a plain Linear, no
        dropout, a small layer: in·out <= IN_WEIGHT_FACTOR·3·r·(in + out)); (W, b) with none; else None."""
        name, plain = self.live, type(self.base_layer) is Linear
        if name is None or not plain:
            return self.base_layer.as_weight() if plain else None
        A, B = self.lora_A[name], self.lora_B[name]  # (r, in), (out, r)
        (r, n_in), n_out = A.shape, B.size(0)
        small = n_in * n_out <= IN_WEIGHT_FACTOR * 3 * r * (n_in + n_out)  # folding pays: see IN_WEIGHT_FACTOR
        if (self.training and self.dropout[name] > 0) or not small:
            return None
        return torch.addmm(self.weight, B, A, alpha=self.scale[name]), self.base_layer.bias  # W + s·B·A (out, in)

    def forward(self, x):
        name = self.live
        if name is None:  # no adapter adds here (none active, disabled or merged): the frozen Linear alone
            return self.base_layer(x)
        if F.FUSED and (folded := self.as_weight()) is not None:  # minituner.fused(): ΔW rides inside W
            return F.linear(x, *folded)  # (..., out): x (W + s·B·A)ᵀ + b, one product
        A, B, scale = self.lora_A[name], self.lora_B[name], self.scale[name]  # (r, in), (out, r)
        x_A, p = x, self.dropout[name]
        if self.training and p > 0:  # dropout on the LoRA path only, masks from the adapter's own generator
            x_A = x * (torch.rand(x.shape, generator=self.generators[name]).to(x.device) >= p) / (1 - p)
        y = self.base_layer(x) + scale * (x_A @ A.T) @ B.T  # (..., out): linear(x, W, b) + (α/r)·x Aᵀ Bᵀ
        return y


def lora_layers(model) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def inject(model, name: str, config) -> None:
    """Put adapter `name` (a LoraConfig) on config.target_modules, wrapping each in a LoRALinear once."""
    modules, r = resolve_targets(model, config.target_modules), config.r
    for n in modules:
        lin = model.get_submodule(n)
        if r > min(lin.in_features, lin.out_features):
            raise ValueError(f"LoRA rank r={r} is larger than min(in, out) = {min(lin.in_features, lin.out_features)} of "
                             f"{n} ({lin.in_features}→{lin.out_features}); a rank above that is no longer low (use r ≤ it)")
    for i, n in enumerate(modules):
        layer = model.get_submodule(n)
        if not isinstance(layer, LoRALinear):
            layer = LoRALinear(layer)
            parent, _, leaf = n.rpartition(".")
            setattr(model.get_submodule(parent), leaf, layer)
        layer.add(name, r, config.lora_alpha, config.lora_dropout, config.use_rslora,
                  seed=config.seed * 100_003 + i, init=config.init_lora_weights)  # a seed per layer
