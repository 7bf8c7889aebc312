"""DoRA: LoRA split into a magnitude and a direction (Liu et al. 2024, Weight-Decomposed Low-Rank Adaptation).

Paper's notation (Eq. 5):  W′ = m · (W₀ + BA) / ‖W₀ + BA‖_c
    W₀ frozen, B (out, r) zeros and A (r, in) random as in LoRA (BA scaled by α/r), m a trainable
    magnitude, ‖·‖_c the norm of each weight vector. The paper writes W ∈ R^{d×k} and m ∈ R^{1×k}
    with one norm per column; in our (out, in) layout y = x Wᵀ that is one norm per output unit,
    i.e. per row of W (PEFT's choice too):   m (out,),  ‖V‖_c = ‖V[i, :]‖₂ for each row i.
Article's notation (§3.2): Y = (W + ΔW) X becomes Y = diag(m / ‖W + ΔW‖_c) (W + ΔW) X + b, ΔW = AB:
the direction of each row moves by the low-rank ΔW, its length is learned separately, in m.

Initial values: m = ‖W₀‖_c and B = 0, so W′ = ‖W₀‖_c · W₀ / ‖W₀‖_c = W₀: a fresh model equals
the base (up to one float rounding of norm and division). The gradient flows through the norm
too (the paper's §4.3 detaches it to save memory; we keep the exact gradient).
Merging: W ← W′ (a copy of W₀ is kept so unmerge and switches restore it exactly).
Trainable count: r · (in + out) + out per targeted Linear; on q_proj and v_proj with d = n_embd:
    (r · 2d + d) · 2 · L       (4,608 with r = 4, d = 64, L = 4; LoRA alone has 4,096).
lora_dropout is refused: dropout on x would no longer feed W′ as one matrix.

References: 1) Liu et al. 2024, DoRA: Weight-Decomposed Low-Rank Adaptation (ICML).
2) Salimans & Kingma 2016, Weight Normalization (the m · v / ‖v‖ split).  3) PEFT ``use_dora=True``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from .. import functional as F
from ..model import Linear
from .fields import peft_config
from .lora import LoraConfig, LoRALinear, LoraModel, lora_layers
from .options import ConfigError
from .registry import Method, ranks, register
from .targets import replace_module, resolve_targets


@peft_config
class DoraConfig(LoraConfig):
    """LoraConfig's fields (PEFT: LoraConfig(use_dora=True)); lora_dropout must stay 0."""

    method: ClassVar[str] = "dora"

    def check(self):
        super().check()
        if self.lora_dropout:
            raise ConfigError("DoraConfig", "lora_dropout", f"must be 0 here (got {self.lora_dropout}): W′ is built "
                              "as one matrix")


class DoRALinear(LoRALinear):
    """A LoRALinear whose adapters also hold a magnitude m (out,): y = x W′ᵀ + b."""

    def __init__(self, base_layer: Linear):
        super().__init__(base_layer)
        self.magnitude = nn.ParameterDict()

    def add(self, name: str, r: int, alpha: float, dropout: float, use_rslora: bool, seed: int, init=True):
        super().add(name, r, alpha, dropout, use_rslora, seed, init)
        self.magnitude[name] = nn.Parameter(self.weight.detach().to(self.lora_A[name].dtype).norm(dim=1))  # (out,) m = ‖W₀‖_c

    def remove(self, name: str):
        super().remove(name)
        if name in self.magnitude:
            del self.magnitude[name]

    def dora_weight(self, name: str) -> torch.Tensor:
        """W′ = m · (W₀ + ΔW) / ‖W₀ + ΔW‖_c, (out, in); ΔW = (α/r)·B·A from LoRALinear."""
        V = self.weight + super().get_delta_weight(name)  # (out, in) W₀ + ΔW
        return self.magnitude[name][:, None] * V / V.norm(dim=1, keepdim=True)  # (out, 1) * (out, in) / (out, 1)

    def get_delta_weight(self, name: str) -> torch.Tensor:
        """What merging adds to W₀: W′ − W₀ (out, in)."""
        return self.dora_weight(name) - self.weight

    def merge(self, name: str, keep_copy: bool = True):
        super().merge(name, keep_copy=True)  # W′ − W₀ depends on W₀: keep it, so unmerge is exact

    def as_weight(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(W′, b) for the live adapter, (W, b) with none: forward(x) = x W′ᵀ + b."""
        if self.live is None:
            return self.base_layer.as_weight() if type(self.base_layer) is Linear else None
        return self.dora_weight(self.live).to(self.weight.dtype), self.base_layer.bias

    def forward(self, x):
        name = self.live
        if name is None:
            return self.base_layer(x)  # (..., out)
        return F.linear(x, self.dora_weight(name).to(x.dtype), self.base_layer.bias)  # (..., out): x W′ᵀ + b


class DoraModel(LoraModel):
    """LoraModel with DoRALinear layers: the same verbs (merge, switch, disable, merge_and_unload)."""

    def add_adapter(self, name: str, config: DoraConfig):
        for n in resolve_targets(self.base, config.target_modules):  # wrap once; inject() then fills them
            layer = self.base.get_submodule(n)
            if not isinstance(layer, DoRALinear):
                replace_module(self.base, n, DoRALinear(layer))
        super().add_adapter(name, config)

    def adapter_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """LoRA's lora_A and lora_B of adapter `name`, and its magnitudes: "….magnitude" (out,)."""
        return super().adapter_tensors(name) | {f"{n}.magnitude": layer.magnitude[name]
                                                for n, layer in lora_layers(self.base).items() if name in layer.magnitude}


register(Method("dora", "DoRA", DoraConfig, DoraModel, order=9, grid={**ranks(8), "lr": [3e-3, 1e-2]}, note="q,v"))
