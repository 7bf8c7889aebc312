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

from .bitfit import BitFitConfig, BitFitModel
from .dora import DoraConfig, DoraModel
from .fields import MethodConfig
from .freeze import FreezeConfig, FreezeModel
from .full import FullConfig, FullModel
from .ia3 import IA3Config, IA3Model
from .lora import LoraConfig, LoRALinear, LoraModel
from .peft_model import PeftModel
from .prefix import PrefixTuningConfig, PrefixTuningModel
from .prompt import PromptTuningConfig, PromptTuningModel
from .qlora import QLoraConfig, QLoraModel
from .registry import METHODS, MODELS, Method, get_peft_model, ordered, register

__all__ = ["METHODS", "MODELS", "Method", "register", "ordered", "get_peft_model", "PeftModel", "LoRALinear", "FullModel", "FreezeModel", "PromptTuningModel",
           "PrefixTuningModel", "LoraModel", "FullConfig", "FreezeConfig", "PromptTuningConfig",
           "PrefixTuningConfig", "LoraConfig", "MethodConfig",
           "BitFitConfig", "BitFitModel", "IA3Config", "IA3Model", "DoraConfig", "DoraModel", "QLoraConfig",
           "QLoraModel"]

for _module in pkgutil.iter_modules(__path__):  # every method file registers itself on import
    importlib.import_module(f"{__name__}.{_module.name}")
