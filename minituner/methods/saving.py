"""save_pretrained and from_pretrained of every method's model (PeftModel takes them from ``Saving``).

    model.save_pretrained(dir)     dir/adapter_config.json (config with inference_mode=True, as PEFT
                                   writes it; the base's fingerprint) + dir/adapter_model.safetensors
    PeftModel.from_pretrained(base, dir, adapter_name="default", is_trainable=False)
                                   checked (sha256, method, base fingerprint, names and shapes), then
                                   as PEFT: frozen and in eval mode unless is_trainable=True
"""

from __future__ import annotations

from .. import __version__
from ..checkpoint import fingerprint, load_folder, save_folder
from ..model import GPT


class Saving:
    """The folder pair of a PeftModel; needs .config, .base_fingerprint, adapter_state_dict()."""

    def save_pretrained(self, path) -> str:
        """Write path/adapter_config.json and path/adapter_model.safetensors, as one atomic pair
        (the config with inference_mode=True, as PEFT writes it)."""
        if getattr(self, "adapters_disabled", False):  # inside, the tensors trained in place hold the base's values
            raise ValueError("save_pretrained inside `with model.disable_adapter():` would save the base, not what "
                             "was trained; save after the with block")
        config = self.config.to_dict() | ({"inference_mode": True} if hasattr(self.config, "inference_mode") else {})
        info = {"method": self.config.method, "config": config,
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

    @staticmethod
    def saved_config(info: dict, is_trainable: bool):
        """The saved config, with PEFT's inference_mode = not is_trainable where the config has it."""
        from .registry import by_config_name

        config_cls, d = by_config_name(info["method"])[0], dict(info["config"])
        if "inference_mode" in {f for f in config_cls.__dataclass_fields__}:
            d["inference_mode"] = not is_trainable
        return config_cls.from_dict(d)

    @classmethod
    def from_pretrained(cls, base: GPT, path, adapter_name: str = "default", is_trainable: bool = False):
        """The model saved in path, rebuilt on base (the GPT it was trained on), checked before use:
        the tensors' sha256, the method, the base's fingerprint, the tensor names and shapes.
        As PEFT: frozen and in eval mode, unless is_trainable=True (then trainable, in training mode)."""
        from . import get_peft_model

        if not isinstance(base, GPT):
            raise TypeError(f"from_pretrained needs the plain GPT the model was trained on, got {type(base).__name__}")
        if not isinstance(is_trainable, bool):
            raise TypeError(f"is_trainable must be True or False, got {is_trainable!r}")
        info, state = cls.read_saved(path, fingerprint(base), cls)
        if is_trainable and info["method"] in ("prompt_tuning", "prefix_tuning"):
            raise ValueError("is_trainable=True is refused for prompt and prefix tuning, as PEFT: their tensors "
                             "stay trainable anyway; call model.train() to train on")
        model = get_peft_model(base, cls.saved_config(info, is_trainable), adapter_name)
        model.load_adapter_state_dict(state, f"{path}/adapter_model.safetensors")
        if not is_trainable:
            model.set_inference_mode() if hasattr(model.config, "inference_mode") else model.requires_grad_(False)
            model.eval()
        return model
