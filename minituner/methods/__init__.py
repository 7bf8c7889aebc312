"""Every fine-tuning method behind one entry point, as in Hugging Face PEFT:

    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8))    # a PeftModel; base untouched
    again = PeftModel.from_pretrained(base, "runs/x")              # after model.save_pretrained("runs/x")

Every module of this package is imported here, and each method's module registers it
(registry.py): METHODS, keyed by the command line's name, is the one list of methods. A new
method is one new file in this folder. The short forms (``lora(base, r=4)``, ...) are in shortcuts.py.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..model import GPT
from .bitfit import BitFitConfig, BitFitModel
from .config import (
    FreezeConfig,
    FullConfig,
    LoraConfig,
    MethodConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
)
from .dora import DoraConfig, DoraModel
from .freeze import FreezeModel
from .full import FullModel
from .ia3 import IA3Config, IA3Model
from .lora import LoraModel
from .lora_layer import LoRALinear
from .peft_model import PeftModel
from .prefix import PrefixTuningModel
from .prompt import PromptTuningModel
from .qlora import QLoraConfig, QLoraModel
from .registry import METHODS, MODELS, Method, ordered, register


def get_peft_model(base: GPT, config: MethodConfig, adapter_name: str = "default") -> PeftModel:
    """The model to train: config's method applied to a copy of base (a plain GPT: methods do not stack)."""
    if isinstance(base, PeftModel):
        raise ValueError(f"methods do not stack: this is already a {type(base).__name__} ({base.config.method}). "
                         "Apply the method to its base instead (model.base is a frozen copy of the GPT; "
                         "for LoRA, model.merge_and_unload() gives a plain GPT with ΔW inside)")
    if not isinstance(base, GPT):
        raise TypeError(f"get_peft_model needs a GPT, got {type(base).__name__}")
    if any(isinstance(m, LoRALinear) for m in base.modules()):
        raise ValueError("this GPT has LoRA layers inside (it is a LoraModel's .base); methods do not stack: "
                         "use lora_model.merge_and_unload() for a plain GPT, or add_adapter() for another LoRA")
    if type(config) not in MODELS:
        raise TypeError(f"config must be one of {', '.join(c.__name__ for c in MODELS)}, got {type(config).__name__}")
    model = MODELS[type(config)](base, config, adapter_name)
    if getattr(config, "inference_mode", False):  # PEFT's: the adapter built frozen
        model.set_inference_mode()
    return model


__all__ = ["METHODS", "Method", "register", "ordered", "get_peft_model", "PeftModel", "LoRALinear", "FullModel", "FreezeModel", "PromptTuningModel",
           "PrefixTuningModel", "LoraModel", "FullConfig", "FreezeConfig", "PromptTuningConfig",
           "PrefixTuningConfig", "LoraConfig", "MethodConfig",
           "BitFitConfig", "BitFitModel", "IA3Config", "IA3Model", "DoraConfig", "DoraModel", "QLoraConfig",
           "QLoraModel"]

for _module in pkgutil.iter_modules(__path__):  # every method file registers itself on import
    importlib.import_module(f"{__name__}.{_module.name}")
