"""The short forms the lessons use: one line each over get_peft_model (keywords as in the configs)."""

from __future__ import annotations

from . import get_peft_model
from .config import FreezeConfig, FullConfig, LoraConfig, PrefixTuningConfig, PromptTuningConfig
from .peft_model import PeftModel


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


def load_adapter(base, path, adapter_name: str = "default"):
    """Any method's saved model, rebuilt on its base: PeftModel.from_pretrained."""
    return PeftModel.from_pretrained(base, path, adapter_name)
