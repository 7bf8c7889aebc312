"""The short forms the lessons use: one line each over get_peft_model (keywords as in the configs)."""

from __future__ import annotations

from .bitfit import BitFitConfig
from .dora import DoraConfig
from .freeze import FreezeConfig
from .full import FullConfig
from .ia3 import IA3Config
from .lora import LoraConfig
from .peft_model import PeftModel
from .prefix import PrefixTuningConfig
from .prompt import PromptTuningConfig
from .qlora import QLoraConfig
from .registry import get_peft_model


def full(base, **kw):
    return get_peft_model(base, FullConfig(**kw))


def freeze(base, trainable_layers: int = 1, **kw):
    return get_peft_model(base, FreezeConfig(trainable_layers, **kw))


def prompt_tuning(base, num_virtual_tokens: int = 16, **kw):
    return get_peft_model(base, PromptTuningConfig(num_virtual_tokens, **kw))


def prefix_tuning(base, num_virtual_tokens: int = 8, prefix_projection: bool = True, **kw):
    """Li & Liang's prefix tuning: with the MLP (prefix_projection=True) unless told otherwise."""
    return get_peft_model(base, PrefixTuningConfig(num_virtual_tokens, prefix_projection=prefix_projection, **kw))


def ptuning_v2(base, num_virtual_tokens: int = 8, **kw):
    """P-Tuning v2 (Liu et al. 2022) is prefix tuning without the projection: 2·L·n·d trainable."""
    return get_peft_model(base, PrefixTuningConfig(num_virtual_tokens, prefix_projection=False, **kw))


def lora(base, r: int = 8, lora_alpha: float = 8, **kw):
    return get_peft_model(base, LoraConfig(r, lora_alpha, **kw))


def bitfit(base, **kw):
    return get_peft_model(base, BitFitConfig(**kw))


def ia3(base, **kw):
    return get_peft_model(base, IA3Config(**kw))


def dora(base, r: int = 8, lora_alpha: float = 8, **kw):
    return get_peft_model(base, DoraConfig(r, lora_alpha, **kw))


def qlora(base, r: int = 8, lora_alpha: float = 8, **kw):
    return get_peft_model(base, QLoraConfig(r, lora_alpha, **kw))


def load_adapter(base, path, adapter_name: str = "default"):
    """Any method's saved model, rebuilt on its base: PeftModel.from_pretrained."""
    return PeftModel.from_pretrained(base, path, adapter_name)
