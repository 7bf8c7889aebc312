"""LoraModel: a frozen GPT whose targeted Linear layers are LoRALinear, and PEFT's verbs over them.

The formula and the layer are in lora_layer.py:  h = W x + (α/r)·B A x,  the article's
Y = (W + ΔW) X with ΔW = AB (its A is our lora_B, its B our lora_A).
Trainable count:  r · (in + out) per targeted Linear;  Σ = r · (in + out) · (targets per block) · n_layer.

Every verb is a loop over the layers (``lora_layers``):
    merge_adapter()    W ← W + ΔW of the active adapter (keep_copy=True keeps W_base); unmerge_adapter() undoes it
    set_adapter(name)  unmerged: only the choice of A, B changes, exactly; merged: unmerge then
                       merge, i.e. the article's (W + ΔW) − ΔW + ΔW′ in place (each switch rounds
                       W once more in float32), or W_base + ΔW′ from the kept copy (one rounding)
    disable_adapter()  a context in which the model is its base alone, WX
    merge_and_unload() a plain GPT with ΔW inside W: the base's structure and cost
A merged model (eval mode) cannot train: ΔW sits in the frozen W; its forward says to unmerge first.
"""

from __future__ import annotations

import contextlib
import copy

import torch

from ..model import GPT
from .config import LoraConfig
from .lora_layer import inject, lora_layers
from .peft_model import PeftModel
from .registry import Method, ranks, register


class LoraModel(PeftModel):
    """A frozen copy of a GPT (``.base``) with named LoRA adapters; one is active and trains."""

    def __init__(self, base: GPT, config: LoraConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        self.merged = False  # True while the active adapter's ΔW sits inside W
        self.peft_config: dict[str, LoraConfig] = {}  # adapter name -> its config, as in PEFT
        self.add_adapter(adapter_name, config)

    def add_adapter(self, name: str, config: LoraConfig):
        """A fresh adapter `name` on config.target_modules; it becomes active and the only trainable one."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"an adapter name is a non-empty string without dots, got {name!r}")
        if name in self.peft_config:
            raise ValueError(f"the model already has an adapter named {name!r}: {self.list_adapters()}")
        if self.merged:
            raise ValueError("unmerge_adapter() before adding an adapter: W holds the active adapter's ΔW")
        inject(self.base, name, config)
        self.peft_config[name] = config
        self.set_adapter(name)

    def list_adapters(self) -> list[str]:
        return list(self.peft_config)

    def _need(self, name: str) -> None:
        if name not in self.peft_config:
            raise ValueError(f"no adapter named {name!r}; the model has {self.list_adapters()}")

    def set_adapter(self, name: str):
        """Make adapter `name` active and the only trainable one (merged: the switch, see above)."""
        self._need(name)
        self.requires_grad_(False)
        for layer in lora_layers(self.base).values():
            if self.merged:  # the switch: − ΔW (or back to W_base), then + ΔW′
                layer.unmerge(drop_copy=False)
                layer.merge(name)
            layer.active = name
            if name in layer.lora_A:
                layer.lora_A[name].requires_grad_(True)
                layer.lora_B[name].requires_grad_(True)
        self.active_adapter, self.config = name, self.peft_config[name]

    def delete_adapter(self, name: str):
        """Remove adapter `name` (unmerged first if it is merged); another one becomes active."""
        self._need(name)
        if len(self.peft_config) == 1:
            raise ValueError(f"{name!r} is the model's only adapter; use the base model instead")
        if self.merged and self.active_adapter == name:
            self.unmerge_adapter()
        for layer in lora_layers(self.base).values():
            layer.remove(name)
        del self.peft_config[name]
        if self.active_adapter == name:
            self.set_adapter(self.list_adapters()[0])

    def merge_adapter(self, keep_copy: bool = False):
        """W ← W + ΔW of the active adapter, in place; merging is for inference: eval mode too."""
        if self.merged:
            raise ValueError(f"already merged ({self.active_adapter!r}); unmerge_adapter() first")
        for layer in lora_layers(self.base).values():
            layer.merge(self.active_adapter, keep_copy)
        self.merged = True
        self.eval()

    def unmerge_adapter(self):
        if not self.merged:
            raise ValueError("the model is not merged; nothing to unmerge")
        for layer in lora_layers(self.base).values():
            layer.unmerge()
        self.merged = False

    @contextlib.contextmanager
    def disable_adapter(self):
        """``with model.disable_adapter(): model(x)`` equals base(x); a merged model is unmerged inside."""
        layers = lora_layers(self.base).values()
        was_merged, keep_copy = self.merged, any(layer.w_base is not None for layer in layers)
        if was_merged:
            self.unmerge_adapter()
        for layer in layers:
            layer.enabled = False
        try:
            yield self
        finally:
            for layer in layers:
                layer.enabled = True
            if was_merged:
                self.merge_adapter(keep_copy)

    def merge_and_unload(self) -> GPT:
        """A plain GPT with the active ΔW merged into W (all its tensors trainable, as a loaded base)."""
        plain = copy.deepcopy(self.base)
        for n, layer in lora_layers(plain).items():
            if not self.merged:
                layer.merge(self.active_adapter)
            parent, _, leaf = n.rpartition(".")
            setattr(plain.get_submodule(parent), leaf, layer.base_layer)
        return plain.requires_grad_(True)

    def forward(self, idx, kv_cache=None):
        if self.merged and self.training and torch.is_grad_enabled():
            raise ValueError("this LoRA model is merged (ΔW sits in the frozen W, so lora_A and lora_B no "
                             "longer reach the loss): call model.unmerge_adapter() before training it")
        return self.base(idx, kv_cache=kv_cache)  # (B, T, V)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The active adapter's tensors: {"h.0.attn.q_proj.lora_A": (r, in), "….lora_B": (out, r), …}."""
        name, layers = self.active_adapter, lora_layers(self.base).items()
        return {f"{n}.{ab}": getattr(layer, ab)[name] for n, layer in layers if name in layer.lora_A
                for ab in ("lora_A", "lora_B")}

    def load_adapter(self, path, adapter_name: str):
        """Add the LoRA adapter saved in path (trained on the same base) as adapter_name; it becomes active."""
        info, state = self.read_saved(path, self.base_fingerprint, LoraModel)
        previous = self.active_adapter
        self.add_adapter(adapter_name, LoraConfig.from_dict(info["config"]))
        try:
            self.load_adapter_state_dict(state, f"{path}/adapter_model.safetensors")
        except ValueError:  # nothing half-added
            self.delete_adapter(adapter_name)
            self.set_adapter(previous)
            raise


register(Method("lora", "LoRA", LoraConfig, LoraModel, order=6, grid={**ranks(4, 8), "lr": [3e-3, 1e-2]},
                memory="lora", note="q,v"))
