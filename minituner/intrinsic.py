"""Intrinsic dimension (内在维度 / 本质维度): train d numbers instead of all D, through a fixed random map.

The article's §3.2 hypothesis: an over-parameterised model hides a low-dimensional "本质模型".
Li et al. (2018) and Aghajanyan et al. (2021) measure it by training in a random d-dimensional
subspace of the D-dimensional parameter space (θ the flat vector of all D numbers):

    θ = θ₀ + P θ_d          θ₀ (D,) the frozen start, θ_d (d,) trained from 0, P (D, d) fixed

and call d90 the smallest d whose validation score reaches 90% of full fine-tuning's.
P is the structured Fastfood transform (Le et al. 2013), never written as a D × d matrix:
θ_d is padded with zeros to L = 2^⌈log₂ d⌉ numbers and sent through n = ⌈D / L⌉ blocks,

    P_b = H G_b Π_b H B_b / (‖G_b‖ √D)      (L, L), b = 1 … n;   P = [P_1; …; P_n] cut to D rows

H the L × L Walsh–Hadamard matrix (entries ±1, applied as the O(L log L) butterfly),
B_b a random ±1 diagonal, Π_b a random permutation, G_b a N(0, 1) diagonal. Each block maps a
unit θ_d to length √(L/D) (‖H G Π H B eᵢ‖² = L ‖G‖² exactly), so when L divides D every column of P
has length 1 and E‖P θ_d‖² = ‖θ_d‖²: a step of θ_d moves θ by as much, spread over all D numbers.
(1/(‖G‖√D) is the scale of Aghajanyan et al.'s code; the papers write it 1/(σ√D), σ from G.)

References: 1) Li, Farkhoor, Liu & Yosinski 2018, Measuring the Intrinsic Dimension of Objective Landscapes
2) Aghajanyan, Zettlemoyer & Gupta 2021, Intrinsic Dimensionality Explains the Effectiveness of Language
Model Fine-Tuning  3) Le, Sarlós & Smola 2013, Fastfood: Approximating Kernel Expansions in Loglinear Time
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
import torch.nn as nn
from torch.func import functional_call

from .dataset import Split
from .model import GPT, LanguageModel


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """H x over the last axis (..., L), L a power of 2; H = [[H', H'], [H', −H']] (Sylvester), unscaled.

    The butterfly: log₂ L rounds, each adding and subtracting pairs that sit h apart (h = 1, 2, 4, …)."""
    L = x.shape[-1]
    if L & (L - 1):
        raise ValueError(f"the Walsh–Hadamard transform needs a power-of-2 length, got {L}")
    lead, h = x.shape[:-1], 1
    while h < L:
        pairs = x.reshape(*lead, L // (2 * h), 2, h)  # (..., L/2h, 2, h): the two halves of each 2h-group
        a, b = pairs[..., 0, :], pairs[..., 1, :]  # (..., L/2h, h)
        x = torch.stack((a + b, a - b), dim=-2).reshape(*lead, L)  # (..., L)
        h *= 2
    return x


class Fastfood(nn.Module):
    """The map θ_d (..., d) -> P θ_d (..., D) of the module docstring; its random parts are seeded buffers."""

    def __init__(self, d: int, D: int, seed: int = 0):
        super().__init__()
        for name, v in (("d", d), ("D", D)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Fastfood needs a positive int {name}, got {v!r}")
        if d > D:
            raise ValueError(f"the subspace dimension d ({d}) must not exceed the parameter count D ({D})")
        self.d, self.D = d, D
        self.L = 1 << (d - 1).bit_length()  # 2^⌈log₂ d⌉
        self.n = math.ceil(D / self.L)  # blocks
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("B", torch.randint(0, 2, (self.n, self.L), generator=g).float() * 2 - 1)  # ±1
        self.register_buffer("Pi", torch.stack([torch.randperm(self.L, generator=g) for _ in range(self.n)]))
        self.register_buffer("G", torch.randn(self.n, self.L, generator=g))  # (n, L)
        self.register_buffer("scale", 1 / (self.G.norm(dim=1, keepdim=True) * math.sqrt(D)))  # (n, 1)

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        if theta_d.shape[-1] != self.d:
            raise ValueError(f"θ_d must end in {self.d} numbers, got shape {tuple(theta_d.shape)}")
        lead = theta_d.shape[:-1]
        x = nn.functional.pad(theta_d, (0, self.L - self.d)).unsqueeze(-2)  # (..., 1, L): zeros after d
        x = hadamard(self.B * x)  # (..., n, L): H B, one block per row
        x = torch.gather(x, -1, self.Pi.expand(*lead, -1, -1))  # (..., n, L): Π
        x = hadamard(self.G * x) * self.scale  # (..., n, L): H G, then 1/(‖G‖√D)
        return x.reshape(*lead, self.n * self.L)[..., : self.D]  # (..., D): the blocks stacked, cut to D

    def dense(self) -> torch.Tensor:
        """P (D, d) multiplied out of its factors as matrices: slow, for checking forward() at small sizes."""
        H = torch.ones(1, 1)
        while H.shape[0] < self.L:
            H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)])  # Sylvester: [[H, H], [H, −H]]
        perm = torch.eye(self.L)  # row i of Π picks entry Pi[i]
        blocks = [self.scale[b] * H @ torch.diag(self.G[b]) @ perm[self.Pi[b]] @ H @ torch.diag(self.B[b])
                  for b in range(self.n)]  # n × (L, L)
        return torch.cat(blocks)[: self.D, : self.d]  # (D, d): zero padding drops the columns past d


class IntrinsicModel(LanguageModel):
    """A frozen copy of a GPT (``.base``, θ₀) run at θ = θ₀ + P θ_d; ``theta_d`` (d,) is the only parameter.

    Each forward projects θ_d to the D numbers of every base parameter (in named_parameters' order; the
    head is tied to wte, so it moves with it) and runs the base on θ₀ + Pθ_d through functional_call:
    the base's tensors are never written, and gradients reach θ_d only. Trainable count: d."""

    def __init__(self, base: GPT, d: int, seed: int = 0):
        super().__init__()
        self.base = copy.deepcopy(base).requires_grad_(False)
        self.shapes = {n: p.shape for n, p in self.base.named_parameters()}
        self.projection = Fastfood(d, sum(p.numel() for p in self.base.parameters()), seed)
        self.theta_d = nn.Parameter(torch.zeros(d))

    @property
    def gpt_config(self):
        return self.base.config

    def parameters_at(self) -> dict[str, torch.Tensor]:
        """{name: θ₀ + (P θ_d) reshaped}: every base parameter where θ_d puts it."""
        moved = self.projection(self.theta_d).split([s.numel() for s in self.shapes.values()])  # D -> per tensor
        base = dict(self.base.named_parameters())
        return {n: base[n] + m.view(s) for (n, s), m in zip(self.shapes.items(), moved, strict=True)}

    def forward(self, idx, kv_cache=None):
        return functional_call(self.base, self.parameters_at(), (idx,), {"kv_cache": kv_cache})  # (B, T, V)

    @torch.no_grad()
    def merged(self) -> GPT:
        """A plain GPT holding θ₀ + P θ_d (to read its ΔW, or to run it without the projection)."""
        model = copy.deepcopy(self.base)
        model.load_state_dict(self.parameters_at())
        return model


def job(init: str, kind: str, size: int, lr: float, steps: int, batch_size: int, seed: int,
        init_seed: int | None = None, eval_rows: int = 0) -> dict:
    """One run of lesson 12 (in a worker process): on the shipped base (init "pretrained") or a GPT of its
    shape with random weights (init "random"), train kind "full" (size 0), "intrinsic" (d = size) or
    "lora" (r = size, α = 4r, q and v) on classify; then score validation and test once. seed: the batches
    and the random GPT; init_seed (default seed): the projection P or LoRA's A; eval_rows > 0 scores only the
    first that many rows of each split (a quick preset), 0 all of them.
    Returns the row, plus the (out, in) ΔW and, for LoRA, lora_A (r, in) of every q and v matrix."""
    from .checkpoint import load_base
    from .data import make_task
    from .methods.lora import lora_layers
    from .methods.registry import low_rank
    from .methods.shortcuts import full, lora
    from .model import count_parameters
    from .train import evaluate, train

    if init not in ("pretrained", "random") or kind not in ("full", "intrinsic", "lora"):
        raise ValueError(f"init is 'pretrained' or 'random', kind 'full', 'intrinsic' or 'lora'; got {init!r}, {kind!r}")
    base, task, init_seed = load_base(), make_task("classify"), seed if init_seed is None else init_seed
    if init == "random":
        base = GPT(base.config, seed=seed + 1)
    builders = {"full": lambda: full(base), "intrinsic": lambda: IntrinsicModel(base, size, seed=init_seed),
                "lora": lambda: lora(base, **low_rank(size), target_modules=("q_proj", "v_proj"),
                                     seed=init_seed)}
    model = builders[kind]()
    train(model, task, steps=steps, lr=lr, batch_size=batch_size, seed=seed, progress=False)
    if kind == "lora":  # ΔW = (α/r)·B·A exactly, and A itself (Hu et al. §7 look at both)
        layers = lora_layers(model.base)
        delta = {n: layer.get_delta_weight("default").detach() for n, layer in layers.items()}
        a = {n: layer.lora_A["default"].detach().clone() for n, layer in layers.items()}
    else:
        tuned, a = model.merged() if kind == "intrinsic" else model.base, {}
        delta = {n: (tuned.get_submodule(n).weight - m.weight).detach()  # (out, in)
                 for n, m in base.named_modules() if n.endswith(("q_proj", "v_proj"))}
    return {"init": init, "kind": kind, "size": size, "lr": lr, "trainable": count_parameters(model)[0],
            "val": evaluate(model, head(task.val, eval_rows))["accuracy"],
            "test": evaluate(model, head(task.test, eval_rows))["accuracy"],
            "ΔW": delta, "lora_A": a}


def head(split: Split, rows: int) -> Split:
    """The first `rows` rows of a split (all of it for rows = 0)."""
    return replace(split, x=split.x[:rows], y=split.y[:rows], mask=split.mask[:rows],
                   examples=split.examples[:rows]) if rows else split


def d90(ds: list[int], scores: list[float], full_score: float, share: float = 0.9) -> int | None:
    """The smallest d whose score reaches share · full_score (Li et al.'s d_int90); None if none does."""
    return next((d for d, s in sorted(zip(ds, scores)) if s >= share * full_score), None)

