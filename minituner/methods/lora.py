"""LoraModel: a frozen GPT whose targeted Linear layers are LoRALinear, and PEFT's verbs over them.

The formula and the layer are in lora_layer.py:  h = W x + (α/r)·B A x,  the article's
Y = (W + ΔW) X with ΔW = AB (its A is our lora_B, its B our lora_A).
Trainable count:  r · (in + out) per targeted Linear;  Σ = r · (in + out) · (targets per block) · n_layer.

Adapters, as PEFT: ``add_adapter(name, config)`` adds a frozen adapter and keeps the active one;
``set_adapter(name)`` makes `name` active and the only trainable adapter (unmerged: only the
choice of A, B changes, exactly; merged: unmerge then merge, the article's (W + ΔW) − ΔW + ΔW′ in
place, or W_base + ΔW′ from the kept copy); ``load_adapter(dir, name)`` adds a saved one, frozen
and in eval mode unless is_trainable=True. The merge verbs are in lora_verbs.py.
``bias`` ("all", "lora_only") and ``modules_to_save`` train base tensors in place (``in_place``):
only the first adapter may ask for them (PEFT keeps a copy per adapter; we train the copy we have).
"""

from __future__ import annotations

import torch

from ..checkpoint import check_state
from ..model import GPT
from .config import LoraConfig
from .lora_layer import inject, lora_layers
from .lora_verbs import LoraVerbs
from .peft_model import PeftModel
from .registry import Method, ranks, register
from .targets import module_names, resolve_targets


class LoraModel(LoraVerbs, PeftModel):
    """A frozen copy of a GPT (``.base``) with named LoRA adapters; the active one trains."""

    def __init__(self, base: GPT, config: LoraConfig, adapter_name: str = "default"):
        super().__init__(base, config, adapter_name)
        self.merged, self.merged_adapters = False, []  # adapters whose ΔW sits inside W
        self.peft_config: dict[str, LoraConfig] = {}  # adapter name -> its config, as in PEFT
        self.add_adapter(adapter_name, config)
        self.set_adapter(adapter_name)
        targets = resolve_targets(self.base, config.target_modules)
        biases = {"none": [], "all": [n for n, _ in self.base.named_parameters() if n.endswith(".bias")],
                  "lora_only": [f"{t}.base_layer.bias" for t in targets]}[config.bias]
        saved = [f"{m}.{n}" for m in module_names(self.base, config.modules_to_save or ()) for n, _ in
                 self.base.get_submodule(m).named_parameters() if "lora_" not in n]
        self.in_place = list(dict.fromkeys(biases + saved))
        for n in self.in_place:
            self.base.get_parameter(n).requires_grad_(True)

    def add_adapter(self, name: str, config: LoraConfig):
        """A fresh adapter `name` on config.target_modules, frozen; the active adapter stays (as PEFT)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"an adapter name is a non-empty string without dots, got {name!r}")
        if name in self.peft_config:
            raise ValueError(f"the model already has an adapter named {name!r}: {self.list_adapters()}")
        if self.merged:
            raise ValueError("unmerge_adapter() before adding an adapter: W holds the active adapter's ΔW")
        if self.peft_config and (config.bias != "none" or config.modules_to_save):
            raise ValueError(f"bias={config.bias!r}, modules_to_save={config.modules_to_save!r}: only the first "
                             "adapter may train base tensors (minituner trains them in place, PEFT keeps copies)")
        inject(self.base, name, config)
        self.peft_config[name] = config
        self.set_requires_grad(name, False)

    def list_adapters(self) -> list[str]:
        return list(self.peft_config)

    def _need(self, name: str) -> None:
        if name not in self.peft_config:
            raise ValueError(f"no adapter named {name!r}; the model has {self.list_adapters()}")

    def adapter_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """Adapter `name`'s tensors: {"h.0.attn.q_proj.lora_A": (r, in), "….lora_B": (out, r), …}."""
        return {f"{n}.{ab}": getattr(layer, ab)[name] for n, layer in lora_layers(self.base).items()
                if name in layer.lora_A for ab in ("lora_A", "lora_B")}

    def set_requires_grad(self, adapter_names, requires_grad: bool = True):
        """PEFT's: turn gradients of the named adapters' tensors on (or off)."""
        for name in [adapter_names] if isinstance(adapter_names, str) else adapter_names:
            self._need(name)
            for t in self.adapter_tensors(name).values():
                t.requires_grad_(requires_grad)

    def set_adapter(self, name: str, inference_mode: bool = False):
        """Make adapter `name` active and the only trainable one (frozen with inference_mode; merged: the switch)."""
        self._need(name)
        for other in self.peft_config:
            self.set_requires_grad(other, other == name and not inference_mode)
        merged = self.merged
        if merged:  # the switch: − ΔW (or back to W_base), then + ΔW′
            for layer in lora_layers(self.base).values():
                layer.unmerge(drop_copy=False)
        for layer in lora_layers(self.base).values():
            layer.active = name
            if merged:
                layer.merge(name)
        self.merged_adapters = [name] if merged else []
        self.active_adapter, self.config = name, self.peft_config[name]

    def delete_adapter(self, name: str):
        """Remove adapter `name` (not while merged, as PEFT); the first other one becomes active if it was."""
        self._need(name)
        if len(self.peft_config) == 1:
            raise ValueError(f"{name!r} is the model's only adapter; use the base model instead")
        if name in self.merged_adapters:
            raise ValueError(f"cannot delete adapter {name!r} while it is merged; unmerge_adapter() first")
        for layer in lora_layers(self.base).values():
            layer.remove(name)
        del self.peft_config[name]
        if self.active_adapter == name:
            self.set_adapter(self.list_adapters()[0])

    def adapter_state_dict(self, adapter_name: str | None = None) -> dict[str, torch.Tensor]:
        """Adapter `adapter_name`'s tensors (default: the active one), and the base tensors trained in place."""
        name = adapter_name or self.active_adapter
        first = name == next(iter(self.peft_config))
        return self.adapter_tensors(name) | ({f"base.{n}": self.base.get_parameter(n) for n in self.in_place}
                                             if first else {})

    def load_adapter(self, path, adapter_name: str, is_trainable: bool = False):
        """Add the adapter saved in path (trained on the same base) as adapter_name. As PEFT: the active
        adapter stays; the new one is frozen and the model goes to eval mode, unless is_trainable=True."""
        info, state = self.read_saved(path, self.base_fingerprint, LoraModel)
        self.add_adapter(adapter_name, self.saved_config(info, is_trainable))
        try:
            with torch.no_grad():
                mine = self.adapter_state_dict(adapter_name)
                check_state(mine, state, f"{path}/adapter_model.safetensors")
                for n, t in mine.items():
                    t.copy_(state[n])
        except ValueError:  # nothing half-added
            self.delete_adapter(adapter_name)
            raise
        self.set_requires_grad(adapter_name, is_trainable)
        if not is_trainable:
            self.eval()


register(Method("lora", "LoRA", LoraConfig, LoraModel, order=6, grid={**ranks(4, 8), "lr": [3e-3, 1e-2]},
                memory="lora", note="q,v"))
