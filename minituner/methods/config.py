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
checked here, each field against the domain its ``option()`` states (options.py), then the
checks that tie fields together (``check``); what needs the base (n_virtual < block_size,
r ≤ min(in, out)) when the model is built. The command line's options are these fields.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

from .options import ConfigError, check_options, option


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
    """What every config shares: its ``method`` name, the checks, ``to_dict()`` and ``from_dict()`` (JSON-safe)."""

    method: ClassVar[str]

    def __post_init__(self):
        check_options(self)  # each field inside its domain: type and range, from option() metadata
        self.check()

    def check(self) -> None:
        """What ties fields together (a ConfigError naming one of them); each field alone is already checked."""

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise ValueError(f"a {cls.__name__} is read from a JSON object, got {type(d).__name__}")
        return cls(**d)  # unknown names: the ValueError of peft_config


SEED = dict(help="seed of every random init (and of LoRA's dropout masks)", ge=0, le=2**32 - 1, cli=False)
N_VIRTUAL = dict(help="virtual tokens k before the real ones", ge=1, le=4096, short="k")


@peft_config
class FullConfig(MethodConfig):
    method: ClassVar[str] = "full"


@peft_config
class FreezeConfig(MethodConfig):
    """Train the top ``trainable_layers`` blocks (and ln_f), optionally the embeddings or the tied head."""

    method: ClassVar[str] = "freeze"
    trainable_layers: int = option(1, "top blocks left trainable (the rest frozen)", ge=0, le=1024, short="layers")
    train_embeddings: bool = option(False, "also train the token and position embeddings")
    train_head: bool = option(False, "also train the head (tied to the token embedding)")

    def check(self):
        if self.trainable_layers == 0 and not (self.train_embeddings or self.train_head):
            raise ConfigError("FreezeConfig", "trainable_layers", "=0 with train_embeddings=False and train_head=False "
                              "leaves nothing to train; allow at least one block or one of the two flags")


@peft_config
class PromptTuningConfig(MethodConfig):
    method: ClassVar[str] = "prompt_tuning"
    INITS: ClassVar[tuple] = ("random", "vocab", "text")
    num_virtual_tokens: int = option(16, **N_VIRTUAL)
    init: str = option("random", "how the virtual tokens start (PEFT's prompt_tuning_init)", choices=INITS)
    init_text: str | None = option(None, "the text the virtual tokens start from, with init text (repeated or cut to k tokens, as PEFT)")
    seed: int = option(0, **SEED)

    def check(self):
        if (self.init == "text") != (self.init_text is not None):
            raise ConfigError(type(self).__name__, "init_text", f"is needed with init='text' and only used with it; got "
                              f"init={self.init!r}, init_text={self.init_text!r}")
        if self.init_text == "":
            raise ConfigError(type(self).__name__, "init_text", "is empty; give the text the virtual tokens start from")


@peft_config
class PrefixTuningConfig(PromptTuningConfig):
    """prefix_projection=True: Li & Liang's MLP (hidden size encoder_hidden_size, default the width d);
    False: the prefixes are trained directly, which is P-Tuning v2."""

    method: ClassVar[str] = "prefix_tuning"
    INITS: ClassVar[tuple] = ("random", "text")
    num_virtual_tokens: int = option(8, **N_VIRTUAL)
    init: str = option("random", "how the prefixes start: random, or the base's own keys and values of init_text",
                       choices=INITS)
    prefix_projection: bool = option(False, "reparameterise the prefixes through an MLP (Li & Liang)", cli=False)
    encoder_hidden_size: int | None = option(None, "the MLP's hidden width (default: the model width)",
                                             ge=1, le=65536)

    def check(self):
        super().check()
        if self.encoder_hidden_size is not None and not self.prefix_projection:
            raise ConfigError("PrefixTuningConfig", "encoder_hidden_size",
                              "is the MLP's width; it needs prefix_projection=True")


@peft_config
class LoraConfig(MethodConfig):
    """target_modules: last names ("q_proj"), full names ("h.0.attn.q_proj"), a comma list, or "all"."""

    method: ClassVar[str] = "lora"
    r: int = option(8, "LoRA rank r", ge=1, le=4096, short="r")
    lora_alpha: float = option(8, "LoRA scale α: ΔW is scaled by α/r", gt=0, le=1e4, short="α")
    target_modules: tuple | str = option(("q_proj", "v_proj"), "the Linear layers that get an adapter: names "
                                         "(q_proj, k_proj, v_proj, o_proj, up_proj, down_proj) or all")
    lora_dropout: float = option(0.0, "dropout on the LoRA path", ge=0, lt=1)
    use_rslora: bool = option(False, "rank-stabilised scale α/√r instead of α/r")
    seed: int = option(0, **SEED)

    def check(self):
        if not self.target_modules:
            raise ConfigError(type(self).__name__, "target_modules", "must name at least one module, e.g. "
                              "('q_proj', 'v_proj') or 'all'")
        if self.target_modules == ("all",):
            self.target_modules = "all"
