"""PEFT's merge verbs of a LoRA model (LoraModel takes them from this class), as loops over its layers.

    merge_adapter(adapter_names=None)   W ← W + ΔW of each named adapter (default: the active one);
                                        keep_copy=True keeps W_base, so every unmerge or switch is exact
    unmerge_adapter()                   W back to W_base: (W + ΔW) − ΔW, or the kept copy
    disable_adapter()                   a context in which the model is its base alone, WX (a merged
                                        model is unmerged inside, so it really is the base)
    merge_and_unload() / unload()       a plain GPT with the active ΔW inside W / without it
Neither verb changes the training mode (as PEFT). A merged model does not train its adapter: ΔW
sits in the frozen W, nothing of lora_A, lora_B reaches the loss (backward finds no gradient).
"""

from __future__ import annotations

import contextlib
import copy

from ..model import GPT
from .lora_layer import lora_layers


class LoraVerbs:
    """Merging, unmerging, disabling and unloading; needs LoraModel's .base, .merged, ._need, .adapter_tensors."""

    def merge_adapter(self, adapter_names: list[str] | None = None, keep_copy: bool = False):
        """W ← W + ΔW of the named adapters (PEFT's adapter_names; default the active one), in place."""
        names = [self.active_adapter] if adapter_names is None else list(adapter_names)
        for name in names:
            self._need(name)
        if self.merged:
            raise ValueError(f"already merged ({self.merged_adapters}); unmerge_adapter() first")
        for layer in lora_layers(self.base).values():
            for name in names:
                layer.merge(name, keep_copy)
        self.merged, self.merged_adapters = True, names

    def unmerge_adapter(self):
        if not self.merged:
            raise ValueError("the model is not merged; nothing to unmerge")
        for layer in lora_layers(self.base).values():
            layer.unmerge()
        self.merged, self.merged_adapters = False, []

    @contextlib.contextmanager
    def disable_adapter(self):
        """``with model.disable_adapter(): model(x)`` equals base(x); the adapters are frozen inside (as PEFT)."""
        layers = lora_layers(self.base).values()
        merged, keep_copy = list(self.merged_adapters), any(layer.w_base is not None for layer in layers)
        if merged:
            self.unmerge_adapter()
        grads = {p: p.requires_grad for name in self.peft_config for p in self.adapter_tensors(name).values()}
        for layer in layers:
            layer.enabled = False
        for p in grads:
            p.requires_grad_(False)
        try:
            with super().disable_adapter():
                yield self
        finally:
            for layer in layers:
                layer.enabled = True
            for p, g in grads.items():
                p.requires_grad_(g)
            if merged:
                self.merge_adapter(merged, keep_copy)

    def unload(self) -> GPT:
        """A copy of the GPT inside without the LoRA layers (W as it is now: with ΔW if merged, as PEFT)."""
        plain = copy.deepcopy(self.base)
        for n, layer in lora_layers(plain).items():
            parent, _, leaf = n.rpartition(".")
            setattr(plain.get_submodule(parent), leaf, layer.base_layer)
        return plain

    def merge_and_unload(self) -> GPT:
        """A plain GPT with the active ΔW merged into W; requires_grad as the model had it (frozen, as PEFT)."""
        plain = copy.deepcopy(self.base)
        for n, layer in lora_layers(plain).items():
            if not self.merged:
                layer.merge(self.active_adapter)
            parent, _, leaf = n.rpartition(".")
            setattr(plain.get_submodule(parent), leaf, layer.base_layer)
        return plain
