"""(IA)³: learned vectors that rescale keys, values and the MLP's hidden activations
(Infused Adapter by Inhibiting and Amplifying Inner Activations; Liu et al. 2022, T-Few, §3.3).

Paper's notation, three vectors per block, initialised to ones:
    attention   softmax( Q (l_k ⊙ Kᵀ) / √d_k ) (l_v ⊙ V)        l_k, l_v ∈ R^d
    MLP         (l_ff ⊙ γ(W₁ x)) W₂                              l_ff ∈ R^{4d}
Article's notation (§1, Y = WX): each scaled layer becomes Y' = diag(l) (W X + b) for the
keys and values (its output rescaled), and Y' = W diag(l) X + b for the MLP's down_proj (its
input, the hidden activation, rescaled). With l = 1 both are Y = WX + b: a fresh model
equals the base exactly.

Merging: diag(l) is linear, so it folds into W at no cost at inference:
    output side  W ← diag(l) W (each row i times l_i),  b ← l ⊙ b
    input side   W ← W diag(l) (each column j times l_j)
Shapes: ``ia3_l`` (out,) on k_proj and v_proj (output side), (in,) = (4d,) on down_proj.
Trainable count (closed form, defaults, d = n_embd, L = n_layer):
    per block d (keys) + d (values) + 4d (MLP hidden) = 6d;  total 6d·L
(1,536 with d = 64, L = 4: 0.74% of the shipped base). A save holds the vectors only.
PEFT's GPT-2 default scales c_attn (q, k and v together) and mlp.c_proj; ours k, v and down_proj.

Names follow PEFT's IA3Config: ``target_modules`` are the layers scaled, and those also in
``feedforward_modules`` are scaled on their input (the MLP) instead of their output.

References: 1) Liu et al. 2022, Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper
than In-Context Learning (NeurIPS).  2) Hugging Face PEFT, ``peft.tuners.ia3``.
"""

from __future__ import annotations

import contextlib
import copy
from typing import ClassVar

import torch
import torch.nn as nn

from ..model import GPT
from .fields import INFERENCE_MODE, TASK_TYPE, MethodConfig, peft_config
from .options import ConfigError, option
from .peft_model import PeftModel, adapter_dtype
from .registry import Method, register
from .targets import replace_module, resolve_targets


@peft_config
class IA3Config(MethodConfig):
    method: ClassVar[str] = "ia3"
    target_modules: tuple | str = option(("k_proj", "v_proj", "down_proj"), "the Linear layers scaled by a vector",
                                         regex=True)
    feedforward_modules: tuple | str = option(("down_proj",), "those of target_modules scaled on their input (the MLP)",
                                              regex=True)
    task_type: str | None = option(None, **TASK_TYPE)
    inference_mode: bool = option(False, **INFERENCE_MODE)

    def check(self):  # both lists: checked here; a regular expression once it meets the model
        if isinstance(self.target_modules, tuple) and isinstance(self.feedforward_modules, tuple) \
                and not set(self.feedforward_modules) <= set(self.target_modules):
            raise ConfigError("IA3Config", "feedforward_modules", f"must be some of target_modules; got "
                              f"target_modules={self.target_modules}, feedforward_modules={self.feedforward_modules}")


class IA3Linear(nn.Module):
    """``base_layer`` (frozen) with a learned scale vector: on its output, or (feedforward) on its input."""

    def __init__(self, base_layer, feedforward: bool):
        super().__init__()
        self.base_layer, self.feedforward = base_layer, feedforward
        n = base_layer.in_features if feedforward else base_layer.out_features
        self.ia3_l = nn.Parameter(torch.ones(n, device=base_layer.weight.device, dtype=adapter_dtype(base_layer.weight)))  # l = 1
        self.enabled, self.kept = True, None  # kept: (W, b) before merge_adapter folded l in

    def forward(self, x):
        if not self.enabled or self.kept is not None:
            return self.base_layer(x)  # (..., out): the base, or l already folded into W
        if self.feedforward:
            return self.base_layer((x * self.ia3_l).to(x.dtype))  # (..., out): (l_ff ⊙ h) W₂ᵀ + b
        return (self.base_layer(x) * self.ia3_l).to(x.dtype)  # (..., out): l ⊙ (x Wᵀ + b)

    @torch.no_grad()
    def fold(self, lin):
        """Fold diag(l) into lin's W (and b on the output side), in place."""
        if self.feedforward:
            lin.weight.mul_(self.ia3_l)  # W diag(l): column j times l_j
        else:
            lin.weight.mul_(self.ia3_l[:, None])  # diag(l) W: row i times l_i
            lin.bias.mul_(self.ia3_l)
        return lin


def ia3_layers(model) -> dict[str, IA3Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, IA3Linear)}


class IA3Model(PeftModel):
    """A frozen copy of a GPT (``.base``) whose targeted Linears are IA3Linear; only the l's train.
    PEFT's verbs: merge_adapter / unmerge_adapter (W, b kept, so unmerging is exact), disable_adapter,
    unload, merge_and_unload."""

    def __init__(self, base: GPT, config: IA3Config, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        targets = resolve_targets(self.base, config.target_modules)
        feedforward = set(resolve_targets(self.base, config.feedforward_modules, "feedforward_modules")) if config.feedforward_modules else set()
        if not feedforward <= set(targets):
            raise ConfigError("IA3Config", "feedforward_modules", f"must be some of target_modules; "
                              f"{sorted(feedforward - set(targets))} are not")
        for n in targets:
            replace_module(self.base, n, IA3Linear(self.base.get_submodule(n), n in feedforward))
        self.merged = False

    def trained_tensors(self) -> dict[str, torch.Tensor]:
        return {f"base.{n}.ia3_l": layer.ia3_l for n, layer in ia3_layers(self.base).items()}

    @torch.no_grad()
    def merge_adapter(self):
        if self.merged:
            raise ValueError("already merged; unmerge_adapter() first")
        for layer in ia3_layers(self.base).values():
            layer.kept = (layer.base_layer.weight.clone(), layer.base_layer.bias.clone())
            layer.fold(layer.base_layer)
        self.merged = True

    @torch.no_grad()
    def unmerge_adapter(self):
        if not self.merged:
            raise ValueError("the model is not merged; nothing to unmerge")
        for layer in ia3_layers(self.base).values():
            layer.base_layer.weight.copy_(layer.kept[0])
            layer.base_layer.bias.copy_(layer.kept[1])
            layer.kept = None
        self.merged = False

    @contextlib.contextmanager
    def disable_adapter(self):
        """The base alone inside (a merged model unmerged first); the vectors frozen inside, as PEFT."""
        if self.adapters_disabled:  # an inner block: already the base, and the outer block restores it
            yield self
            return
        merged, layers = self.merged, ia3_layers(self.base).values()
        if merged:
            self.unmerge_adapter()
        grads = [layer.ia3_l.requires_grad for layer in layers]
        for layer in layers:
            layer.enabled = False
            layer.ia3_l.requires_grad_(False)
        try:
            with super().disable_adapter():
                yield self
        finally:
            for layer, g in zip(layers, grads):
                layer.enabled = True
                layer.ia3_l.requires_grad_(g)
            if merged:
                self.merge_adapter()

    def unload(self, merge: bool = False) -> GPT:
        """A plain GPT without the IA3 layers (W as it is now, as PEFT); merge=True folds every diag(l) in."""
        plain = copy.deepcopy(self.base)
        for n, layer in ia3_layers(plain).items():
            merge_now = merge and layer.kept is None
            replace_module(plain, n, layer.fold(layer.base_layer) if merge_now else layer.base_layer)
        return plain

    def merge_and_unload(self) -> GPT:
        """A plain GPT with every diag(l) folded into its W (frozen, as PEFT leaves it)."""
        return self.unload(merge=True)


register(Method("ia3", "(IA)³", IA3Config, IA3Model, order=8, grid={"lr": [3e-3, 1e-2, 3e-2]},
                note="k, v and MLP hidden scaled"))
