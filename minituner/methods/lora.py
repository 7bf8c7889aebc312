"""LoRA: a frozen W plus a trainable low-rank ΔW (Hu et al. 2021), the article's §3.2.

Article (column vectors):  Y = (W + ΔW) X,  ΔW = A B,  ΔW m×n, A m×r, B r×n, r ≪ m, n.
Paper and PEFT (our code):  h = W x + ΔW x = W x + B A x,  A r×in (random), B out×r (zero).
Row form, the line in ``LoRALinear.forward``:

    y = linear(x, W, b) + scale * (x @ A.T) @ B.T        scale = α / r   (α / √r with rsLoRA)

Names: the code uses the paper's and PEFT's names, so the article's letters swap places.
The article's A (m×r) is our ``lora_B`` (out×r); the article's B (r×n) is our ``lora_A``
(r×in): ΔW = A_article · B_article = lora_B · lora_A. tests/test_lora.py checks it numerically.

Shapes (in, out of the wrapped Linear; r the rank):
    lora_A (r, in)   random, seeded: uniform in ±1/√in (PEFT's Kaiming-uniform default)
    lora_B (out, r)  zeros, so ΔW = B·A = 0 and a fresh LoRA model equals its base exactly
Trainable count: r · (in + out) per targeted Linear, so
    Σ over targets = r · (in + out) · (targets per block) · n_layer.
The base's tensors are frozen (requires_grad False) and never written, except by
``merge``/``unmerge`` and the in-place switch, which the caller asks for.

Merging: W ← W + scale·B·A makes the adapter free at inference (the forward is a plain
``linear`` again); unmerging subtracts it. Switching adapters on merged weights is the
article's (W + ΔW) − ΔW + ΔW′, done in place; each switch rounds W once more in float32,
so ``merge(model, keep_copy=True)`` also offers the exact way: it keeps an untouched copy
of W_base and each switch sets W = W_base + ΔW′ (one rounding, whatever the number of
switches; the price is a second copy of every adapted W in memory).

Weight decay: lora_A and lora_B get train()'s ``weight_decay`` like any trained tensor
(0 by default); the frozen W is never seen by the optimiser.

References: 1) Hu et al. 2021, LoRA: Low-Rank Adaptation of Large Language Models.
2) Kalajdzievski 2023, rsLoRA (scale α/√r). 3) Hugging Face PEFT, ``peft.tuners.lora``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file

from .. import functional as F
from ..checkpoint import check_state, fingerprint, save_json, save_tensors
from ..model import Linear

ALL = "all"


class LoRALinear(Linear):
    """A frozen Linear (the same weight and bias tensors) plus named low-rank adapters.

    Each adapter `name` has lora_A[name] (r, in), lora_B[name] (out, r) and a scale;
    one adapter is active at a time. ``merged`` is the name whose ΔW is inside W, or None;
    ``w_base`` is the untouched copy of W that ``merge(..., keep_copy=True)`` keeps (else None).
    """

    def __init__(self, base: Linear):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias  # the very same tensors: nothing copied
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        self.scale, self.dropout, self.generators = {}, {}, {}
        self.active: str | None = None
        self.merged: str | None = None
        self.w_base: torch.Tensor | None = None
        self.enabled = True

    def add(self, name: str, r: int, alpha: float, dropout: float, use_rslora: bool, seed: int):
        g = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(self.in_features)  # PEFT's default: kaiming_uniform_(a=√5) on A
        A = (torch.rand(r, self.in_features, generator=g) * 2 - 1) * bound  # (r, in)
        self.lora_A[name] = nn.Parameter(A.to(self.weight))
        self.lora_B[name] = nn.Parameter(torch.zeros(self.out_features, r).to(self.weight))  # (out, r)
        self.scale[name] = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.dropout[name] = dropout
        self.generators[name] = g  # dropout masks come from here: the same seed, the same masks

    def delta_weight(self, name: str | None = None) -> torch.Tensor:
        """ΔW = scale · B · A, (out, in): the article's ΔW = A·B with its A = lora_B, its B = lora_A."""
        name = name or self.active
        return self.scale[name] * (self.lora_B[name] @ self.lora_A[name])  # (out, r) @ (r, in)

    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)  # (..., out): y = x Wᵀ + b, W possibly merged
        name = self.active
        if name is None or not self.enabled or self.merged is not None or name not in self.lora_A:
            return y
        A, B = self.lora_A[name], self.lora_B[name]
        p = self.dropout[name]
        if self.training and p > 0:  # dropout on the LoRA path only, with the adapter's own generator
            keep = torch.rand(x.shape, generator=self.generators[name]).to(x.device) >= p
            x = x * keep / (1 - p)
        return y + self.scale[name] * (x @ A.T) @ B.T  # (..., out): + (α/r)·x Aᵀ Bᵀ


# ---------------------------------------------------------------- putting adapters on a model


def lora_layers(model) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _linear_names(model) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, Linear)]


def _resolve(model, targets) -> list[str]:
    """Target names -> the full names of the Linear modules they match (by last name part)."""
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    names = _linear_names(model)
    if not targets:
        raise ValueError(f"LoRA needs at least one target module; e.g. ('q_proj', 'v_proj') or {ALL!r}")
    if list(targets) == [ALL]:
        return names
    kinds = sorted({n.rsplit(".", 1)[-1] for n in names})
    chosen = set()
    for t in targets:
        hit = [n for n in names if n == t or n.endswith("." + t)]
        if not hit:
            raise ValueError(f"unknown LoRA target {t!r}; the model's Linear modules are "
                             f"{', '.join(kinds)} (or full names such as {names[0]!r}), or {ALL!r}")
        chosen.update(hit)
    return [n for n in names if n in chosen]  # in the model's order


def _need_lora(model):
    if not hasattr(model, "lora_config"):
        raise ValueError("this model has no LoRA adapter: make one with lora(base, ...) or load_adapter(base, path)")


def _set_trainable(model, name: str):
    """Only the named adapter's lora_A and lora_B train; everything else is frozen."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in lora_layers(model).values():
        if name in layer.lora_A:
            layer.lora_A[name].requires_grad_(True)
            layer.lora_B[name].requires_grad_(True)


def add_adapter(model, name: str, r: int = 8, alpha: float = 16, targets=("q_proj", "v_proj"),
                dropout: float = 0.0, use_rslora: bool = False, seed: int = 0):
    """Add a fresh adapter `name` to a LoRA model (in place), make it active and the only trainable one."""
    _need_lora(model)
    if name in model.lora_config:
        raise ValueError(f"the model already has an adapter named {name!r}: {sorted(model.lora_config)}")
    if not isinstance(r, int) or r < 1:
        raise ValueError(f"LoRA rank r must be an integer >= 1, got {r!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
    if getattr(model, "lora_merged", False):
        raise ValueError("unmerge(model) before adding an adapter: W holds the active adapter's ΔW")
    modules = _resolve(model, targets)
    for n in modules:
        lin = model.get_submodule(n)
        if r > min(lin.in_features, lin.out_features):
            raise ValueError(f"LoRA rank r={r} is larger than min(in, out) = "
                             f"{min(lin.in_features, lin.out_features)} of {n} ({lin.in_features}→"
                             f"{lin.out_features}); a rank above that is no longer low (use r ≤ it)")
    for i, n in enumerate(modules):
        layer = model.get_submodule(n)
        if not isinstance(layer, LoRALinear):
            layer = LoRALinear(layer)
            parent, _, leaf = n.rpartition(".")
            setattr(model.get_submodule(parent), leaf, layer)
        layer.add(name, r, alpha, dropout, use_rslora, seed=seed * 100_003 + i)  # a seed per layer
    model.lora_config[name] = {"r": r, "alpha": alpha, "targets": modules, "dropout": dropout,
                               "use_rslora": use_rslora, "seed": seed}
    set_adapter(model, name)
    return model


def lora(base, r: int = 8, alpha: float = 16, targets=("q_proj", "v_proj"), dropout: float = 0.0,
         use_rslora: bool = False, seed: int = 0, name: str = "default"):
    """A copy of `base`, frozen, with LoRA on the named Linear modules; only lora_A, lora_B train.

    targets: last names ("q_proj", "v_proj"), a comma list as LLaMA-Factory writes it
    ("q_proj,v_proj"), full names ("h.0.attn.q_proj"), or "all" for every projection.
    Trainable: r · (in + out) per target. The base is not touched.
    """
    if lora_layers(base):
        raise ValueError("this model already has LoRA layers; use add_adapter(model, name, ...) to add another")
    model = copy.deepcopy(base)
    model.lora_config = {}
    model.lora_base_fingerprint = fingerprint(base)
    model.lora_merged = False
    return add_adapter(model, name, r=r, alpha=alpha, targets=targets, dropout=dropout,
                       use_rslora=use_rslora, seed=seed)


# ---------------------------------------------------------------- merge, switch, disable


@torch.no_grad()
def merge(model, keep_copy: bool = False):
    """W ← W + scale·B·A for the active adapter, in place: the forward becomes plain linear().

    keep_copy: keep an untouched copy of each adapted W_base, so that unmerge and every
    switch restore W exactly (W ← W_base + ΔW′) instead of subtracting in place.
    """
    _need_lora(model)
    if model.lora_merged:
        raise ValueError(f"already merged ({model.active_adapter!r}); unmerge(model) first")
    for layer in lora_layers(model).values():
        layer.w_base = layer.weight.detach().clone() if keep_copy else None
        if layer.active in layer.lora_A:
            layer.weight += layer.delta_weight()  # W ← W + ΔW
            layer.merged = layer.active
    model.lora_merged = True
    return model


@torch.no_grad()
def unmerge(model):
    """W ← W − scale·B·A: the inverse of merge, up to float rounding (exact with keep_copy)."""
    _need_lora(model)
    if not model.lora_merged:
        raise ValueError("the model is not merged; nothing to unmerge")
    for layer in lora_layers(model).values():
        if layer.w_base is not None:
            layer.weight.copy_(layer.w_base)  # W ← W_base, from the untouched copy
        elif layer.merged is not None:
            layer.weight -= layer.delta_weight(layer.merged)  # W ← (W + ΔW) − ΔW
        layer.merged, layer.w_base = None, None
    model.lora_merged = False
    return model


@torch.no_grad()
def set_adapter(model, name: str):
    """Make adapter `name` active (and the only trainable one).

    Unmerged: only the choice of A, B changes, exactly. Merged: the article's switch,
    W ← (W + ΔW) − ΔW + ΔW′ in place (each switch rounds W again); merged with
    keep_copy=True: the exact way, W ← W_base + ΔW′.
    """
    _need_lora(model)
    if name not in model.lora_config:
        raise ValueError(f"no adapter named {name!r}; the model has {sorted(model.lora_config)}")
    merged = model.lora_merged
    for layer in lora_layers(model).values():
        if merged:
            if layer.w_base is not None:
                layer.weight.copy_(layer.w_base)  # W ← W_base, from the untouched copy
            elif layer.merged is not None:
                layer.weight -= layer.delta_weight(layer.merged)  # − ΔW
            layer.merged = None
        layer.active = name
        if merged and name in layer.lora_A:
            layer.weight += layer.delta_weight(name)  # + ΔW′
            layer.merged = name
    model.active_adapter = name
    _set_trainable(model, name)
    return model


def delete_adapter(model, name: str):
    """Remove adapter `name` (unmerge it first if it is merged). Another one becomes active."""
    _need_lora(model)
    if name not in model.lora_config:
        raise ValueError(f"no adapter named {name!r}; the model has {sorted(model.lora_config)}")
    if len(model.lora_config) == 1:
        raise ValueError(f"{name!r} is the model's only adapter; use the base model instead")
    if model.lora_merged and model.active_adapter == name:
        unmerge(model)
    for layer in lora_layers(model).values():
        if name in layer.lora_A:
            del layer.lora_A[name], layer.lora_B[name]
            del layer.scale[name], layer.dropout[name], layer.generators[name]
    del model.lora_config[name]
    if model.active_adapter == name:
        set_adapter(model, next(iter(model.lora_config)))
    return model


@contextlib.contextmanager
def disabled(model):
    """Run the base alone, adapters kept: ``with disabled(model): model(x)`` equals base(x).

    A merged model is unmerged inside the block and merged again after it.
    """
    _need_lora(model)
    was_merged = model.lora_merged
    keep_copy = any(layer.w_base is not None for layer in lora_layers(model).values())
    if was_merged:
        unmerge(model)
    layers = lora_layers(model).values()
    for layer in layers:
        layer.enabled = False
    try:
        yield model
    finally:
        for layer in layers:
            layer.enabled = True
        if was_merged:
            merge(model, keep_copy=keep_copy)


def merge_and_unload(model):
    """A plain copy of the model with the active ΔW merged: the base's structure and cost, no LoRA."""
    plain = copy.deepcopy(model)
    if not plain.lora_merged:
        merge(plain)
    for n in lora_layers(plain):
        layer = plain.get_submodule(n)
        lin = Linear(layer.in_features, layer.out_features)
        lin.weight, lin.bias = layer.weight, layer.bias
        parent, _, leaf = n.rpartition(".")
        setattr(plain.get_submodule(parent), leaf, lin)
    for attr in ("lora_config", "lora_base_fingerprint", "lora_merged", "active_adapter"):
        delattr(plain, attr)
    for p in plain.parameters():
        p.requires_grad_(True)
    return plain


# ---------------------------------------------------------------- adapter files


def adapter_state(model, name: str | None = None) -> dict[str, torch.Tensor]:
    """{"h.0.attn.q_proj.lora_A": (r, in), "….lora_B": (out, r), …}: one adapter's tensors only."""
    name = name or model.active_adapter
    return {f"{n}.{ab}": getattr(layer, ab)[name]
            for n, layer in lora_layers(model).items() if name in layer.lora_A for ab in ("lora_A", "lora_B")}


def save_adapter(model, path, name: str | None = None) -> Path:
    """Write PATH.safetensors (the LoRA tensors only) and PATH.json (r, α, targets, base
    fingerprint), both atomically. Returns the .safetensors path."""
    _need_lora(model)
    name = name or model.active_adapter
    path = Path(path).with_suffix("")
    config = dict(model.lora_config[name], base_fingerprint=model.lora_base_fingerprint, name=name)
    save_tensors(adapter_state(model, name), path.with_suffix(".safetensors"), config)
    save_json(config, path.with_suffix(".json"))
    return path.with_suffix(".safetensors")


def load_adapter(model, path, name: str = "default"):
    """Load an adapter saved by save_adapter. No pickle: safetensors and JSON only.

    model: the plain base it was trained on (a LoRA copy is returned, the base untouched),
    or a LoRA model of that base (the adapter is added to it, in place, as `name`).
    A file made for another base, or with missing or extra tensors, is a ValueError.
    """
    path = Path(path).with_suffix("")
    config = json.loads(path.with_suffix(".json").read_text())
    has_lora = bool(lora_layers(model))
    base_fp = model.lora_base_fingerprint if has_lora else fingerprint(model)
    if config["base_fingerprint"] != base_fp:
        raise ValueError(f"{path}: this adapter was trained on the base with fingerprint "
                         f"{config['base_fingerprint']}, not on this model ({base_fp})")
    state = load_file(str(path.with_suffix(".safetensors")))
    r, expected = config["r"], {}
    for n in _resolve(model, config["targets"]):  # the shapes the config promises, checked before any change
        lin = model.get_submodule(n)
        expected[f"{n}.lora_A"] = torch.empty(r, lin.in_features)  # (r, in)
        expected[f"{n}.lora_B"] = torch.empty(lin.out_features, r)  # (out, r)
    check_state(expected, state, str(path.with_suffix(".safetensors")))
    kwargs = {k: config[k] for k in ("r", "alpha", "targets", "dropout", "use_rslora", "seed")}
    if has_lora:
        if model.lora_merged:
            raise ValueError("unmerge(model) before loading another adapter into it")
        model = add_adapter(model, name, **kwargs)
    else:
        model = lora(model, name=name, **kwargs)
    with torch.no_grad():
        for k, t in adapter_state(model, name).items():
            t.copy_(state[k])
    return model
