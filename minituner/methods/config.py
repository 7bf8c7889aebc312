"""One config per method, named as in Hugging Face PEFT, so a PEFT user reads them at once.

    LoraConfig(r=8, lora_alpha=8, target_modules=("q_proj", "v_proj"), lora_dropout=0.0, use_rslora=False)
    PromptTuningConfig(num_virtual_tokens=16, init="random", init_text=None)
    PrefixTuningConfig(num_virtual_tokens=8, prefix_projection=False, encoder_hidden_size=None, init, init_text)
    FreezeConfig(trainable_layers=1, train_embeddings=False, train_head=False)
    FullConfig()

Defaults are PEFT's where PEFT has the option (r 8, lora_alpha 8, prefix_projection False:
P-Tuning v2 is PrefixTuningConfig without the projection). PEFT has no default num_virtual_tokens;
ours (16, 8) fit the 96-token context. ``seed`` is ours: every random init (and LoRA's dropout
masks) comes from it. ``init`` is PEFT's prompt_tuning_init ("vocab" = SAMPLE_VOCAB). Values are
checked here; what needs the base (n_virtual < block_size, r ≤ min(in, out)) when the model is built.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar


def peft_config(cls):
    """A dataclass whose constructor rejects unknown keyword names with a ValueError listing the accepted ones."""
    cls = dataclasses.dataclass(cls)
    init, names = cls.__init__, [f.name for f in dataclasses.fields(cls)]

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ValueError(f"{cls.__name__} got unknown argument(s) {', '.join(unknown)}; "
                             f"accepted: {', '.join(names) or 'none'}")
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls


class MethodConfig:
    """What every config shares: its ``method`` name, ``to_dict()`` and ``from_dict()`` (JSON-safe)."""

    method: ClassVar[str]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        return cls(**d)  # unknown names: the ValueError of peft_config


def _integer(name: str, v, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")


@peft_config
class FullConfig(MethodConfig):
    method: ClassVar[str] = "full"


@peft_config
class FreezeConfig(MethodConfig):
    """Train the top ``trainable_layers`` blocks (and ln_f), optionally the embeddings or the tied head."""

    method: ClassVar[str] = "freeze"
    trainable_layers: int = 1
    train_embeddings: bool = False
    train_head: bool = False

    def __post_init__(self):
        _integer("trainable_layers", self.trainable_layers, 0)
        if self.trainable_layers == 0 and not (self.train_embeddings or self.train_head):
            raise ValueError("trainable_layers=0 with train_embeddings=False and train_head=False leaves "
                             "nothing to train; allow at least one block or one of the two flags")


@peft_config
class PromptTuningConfig(MethodConfig):
    method: ClassVar[str] = "prompt_tuning"
    INITS: ClassVar[tuple] = ("random", "vocab", "text")
    num_virtual_tokens: int = 16
    init: str = "random"
    init_text: str | None = None
    seed: int = 0

    def __post_init__(self):
        _integer("num_virtual_tokens", self.num_virtual_tokens, 1)
        _integer("seed", self.seed, 0)
        if self.init not in self.INITS:
            raise ValueError(f"init must be one of {', '.join(self.INITS)}, got {self.init!r}")
        if (self.init == "text") != (self.init_text is not None):
            raise ValueError(f"init='text' needs init_text (a phrase of num_virtual_tokens={self.num_virtual_tokens} characters) "
                             f"and init_text is only used with init='text'; got init={self.init!r}, init_text={self.init_text!r}")
        if self.init_text is not None and len(self.init_text) != self.num_virtual_tokens:
            raise ValueError(f"init_text must have exactly num_virtual_tokens={self.num_virtual_tokens} characters "
                             f"(one per virtual token), got {len(self.init_text)}: {self.init_text!r}")


@peft_config
class PrefixTuningConfig(PromptTuningConfig):
    """prefix_projection=True: Li & Liang's MLP (hidden size encoder_hidden_size, default the width d);
    False: the prefixes are trained directly, which is P-Tuning v2."""

    method: ClassVar[str] = "prefix_tuning"
    INITS: ClassVar[tuple] = ("random", "text")
    num_virtual_tokens: int = 8
    prefix_projection: bool = False
    encoder_hidden_size: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.encoder_hidden_size is not None:
            if not self.prefix_projection:
                raise ValueError("encoder_hidden_size is the MLP's width; it needs prefix_projection=True")
            _integer("encoder_hidden_size", self.encoder_hidden_size, 1)


@peft_config
class LoraConfig(MethodConfig):
    """target_modules: last names ("q_proj"), full names ("h.0.attn.q_proj"), a comma list, or "all"."""

    method: ClassVar[str] = "lora"
    r: int = 8
    lora_alpha: float = 8
    target_modules: tuple | str = ("q_proj", "v_proj")
    lora_dropout: float = 0.0
    use_rslora: bool = False
    seed: int = 0

    def __post_init__(self):
        _integer("LoRA rank r", self.r, 1)
        _integer("seed", self.seed, 0)
        a = self.lora_alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0:
            raise ValueError(f"lora_alpha must be a finite number > 0 (the scale is lora_alpha / r), got {a!r}")
        p = self.lora_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {p!r}")
        t = self.target_modules
        if isinstance(t, str) and t != "all":
            t = tuple(s.strip() for s in t.split(",") if s.strip())
        if not isinstance(t, str):
            t = tuple(t)
            if not t or not all(isinstance(s, str) for s in t):
                raise ValueError(f"target_modules must name at least one module, e.g. ('q_proj', 'v_proj') or 'all', got {self.target_modules!r}")
        self.target_modules = t
