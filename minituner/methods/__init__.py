"""Every fine-tuning method behind one entry point, as in Hugging Face PEFT:

    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8))    # a PeftModel; base untouched
    again = PeftModel.from_pretrained(base, "runs/x")              # after model.save_pretrained("runs/x")

METHODS maps a config's ``method`` to its (config class, model class); a new method is one
new file and one line here. The short forms (``lora(base, r=4)``, ...) are in shortcuts.py.
"""

from __future__ import annotations

from ..model import GPT
from .config import (
    FreezeConfig,
    FullConfig,
    LoraConfig,
    MethodConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
)
from .freeze import FreezeModel
from .full import FullModel
from .lora import LoraModel
from .lora_layer import LoRALinear
from .peft_model import PeftModel
from .prefix import PrefixTuningModel
from .prompt import PromptTuningModel

METHODS: dict[str, tuple[type, type]] = {
    "full": (FullConfig, FullModel),
    "freeze": (FreezeConfig, FreezeModel),
    "prompt_tuning": (PromptTuningConfig, PromptTuningModel),
    "prefix_tuning": (PrefixTuningConfig, PrefixTuningModel),
    "lora": (LoraConfig, LoraModel),
}


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
    if not isinstance(config, MethodConfig) or config.method not in METHODS:
        raise TypeError(f"config must be one of {', '.join(c.__name__ for c, _ in METHODS.values())}, "
                        f"got {type(config).__name__}")
    return METHODS[config.method][1](base, config, adapter_name)


__all__ = ["METHODS", "get_peft_model", "PeftModel", "LoRALinear", "FullModel", "FreezeModel", "PromptTuningModel",
           "PrefixTuningModel", "LoraModel", "FullConfig", "FreezeConfig", "PromptTuningConfig",
           "PrefixTuningConfig", "LoraConfig", "MethodConfig"]
