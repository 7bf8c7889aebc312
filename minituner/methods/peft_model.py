"""PeftModel: the one shape every method's model has, as in Hugging Face PEFT.

    model = get_peft_model(base, config)        # a copy of base inside, as model.base
    model(idx) -> logits (B, T, V)              # the LanguageModel interface, like GPT
    model.print_trainable_parameters()
    model.save_pretrained(dir)                  # dir/adapter_config.json + adapter_model.safetensors
    again = PeftModel.from_pretrained(base, dir)

The base passed in is never modified: every method works on a deep copy (frozen unless the
method trains it). ``.config`` is the method's config; the GPT's own is ``.base.config``.
What is saved is ``adapter_state_dict()``: by default the tensors that train, named as in the
model; a method overrides it when its saved names should differ (LoRA).
"""

from __future__ import annotations

import copy

import torch

from .. import __version__
from ..checkpoint import check_state, fingerprint, load_folder, save_folder
from ..model import GPT, LanguageModel
from ..report import print_trainable_parameters


class PeftModel(LanguageModel):
    """A copy of a GPT (``.base``), frozen, plus what the method trains; ``.config`` says how."""

    def __init__(self, base: GPT, config, adapter_name: str = "default"):
        super().__init__()
        self.active_adapter = adapter_name  # the name PEFT gives it; only LoRA holds several
        self.base_fingerprint = fingerprint(base)  # of the base as given: a save refuses any other
        self.base = copy.deepcopy(base)  # train the copy: the base's tensors stay as they are
        self.base.requires_grad_(False)
        self.config = config

    @property
    def gpt_config(self):
        return self.base.config

    def forward(self, idx, kv_cache=None):
        return self.base(idx, kv_cache=kv_cache)  # (B, T, V)

    def print_trainable_parameters(self) -> str:
        return print_trainable_parameters(self)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Exactly what save_pretrained writes: every trainable tensor, by its name in the model."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def load_adapter_state_dict(self, state: dict[str, torch.Tensor], what: str = "state") -> None:
        """Copy state into the model's tensors; a ValueError for a missing, extra or misshapen tensor."""
        mine = self.adapter_state_dict()
        check_state(mine, state, what)
        for name, t in mine.items():
            t.copy_(state[name])

    def save_pretrained(self, path) -> str:
        """Write path/adapter_config.json and path/adapter_model.safetensors, as one atomic pair."""
        info = {"method": self.config.method, "config": self.config.to_dict(),
                "base_fingerprint": self.base_fingerprint, "minituner_version": __version__}
        return str(save_folder(path, info, self.adapter_state_dict()))

    @staticmethod
    def read_saved(path, base_fingerprint: str, model_cls: type) -> tuple[dict, dict]:
        """(info, tensors) saved in path, checked: tensors' sha256 (load_folder), method, base fingerprint."""
        from .registry import by_config_name

        info, state = load_folder(path)
        method = info["method"]
        if not isinstance(method, str):
            raise ValueError(f"{path}: 'method' must be a method's name (a string), got {method!r}")
        if not issubclass(by_config_name(method)[1], model_cls):
            raise ValueError(f"{path} holds a {method!r} model, not a {model_cls.__name__}; "
                             f"load it with PeftModel.from_pretrained(base, path)")
        if info["base_fingerprint"] != base_fingerprint:
            raise ValueError(f"{path} was trained on the base with fingerprint {info['base_fingerprint']}, "
                             f"not on this one ({base_fingerprint}); load it onto that base")
        return info, state

    @classmethod
    def from_pretrained(cls, base: GPT, path, adapter_name: str = "default") -> PeftModel:
        """The model saved in path, rebuilt on base (the GPT it was trained on), checked before use:
        the tensors' sha256, the method, the base's fingerprint, the tensor names and shapes."""
        from . import get_peft_model
        from .registry import by_config_name

        if not isinstance(base, GPT):
            raise TypeError(f"from_pretrained needs the plain GPT the model was trained on, got {type(base).__name__}")
        info, state = cls.read_saved(path, fingerprint(base), cls)
        model = get_peft_model(base, by_config_name(info["method"])[0].from_dict(info["config"]), adapter_name)
        model.load_adapter_state_dict(state, f"{path}/adapter_model.safetensors")
        return model
