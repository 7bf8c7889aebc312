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

from typing import ClassVar

from .fields import INFERENCE_MODE, N_VIRTUAL, SEED, TASK_TYPE, MethodConfig, peft_config
from .options import ConfigError, option


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
    task_type: str | None = option(None, **TASK_TYPE)
    inference_mode: bool = option(False, **INFERENCE_MODE)

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
    """target_modules (targets.py): names matched as suffixes ("q_proj", "h.0.attn.q_proj"), a comma
    list, "all", "all-linear" (PEFT's), or a regular expression string (PEFT's: a full match)."""

    method: ClassVar[str] = "lora"
    INITS: ClassVar[tuple] = (True, False, "gaussian")
    r: int = option(8, "LoRA rank r", ge=1, le=4096, short="r")
    lora_alpha: float = option(8, "LoRA scale α: ΔW is scaled by α/r", gt=0, le=1e4, short="α")
    target_modules: tuple | str = option(("q_proj", "v_proj"), "the Linear layers that get an adapter: names "
                                         "(q_proj, k_proj, v_proj, o_proj, up_proj, down_proj) or all", regex=True)
    lora_dropout: float = option(0.0, "dropout on the LoRA path", ge=0, lt=1)
    use_rslora: bool = option(False, "rank-stabilised scale α/√r instead of α/r")
    seed: int = option(0, **SEED)
    task_type: str | None = option(None, **TASK_TYPE)
    inference_mode: bool = option(False, **INFERENCE_MODE)
    bias: str = option("none", "biases that train beside LoRA: none, all, or those of the targeted layers (lora_only)",
                       choices=("none", "all", "lora_only"), cli=False)
    modules_to_save: tuple | str | None = option(None, "modules trained whole beside LoRA and saved with it (e.g. ln_f)",
                                                 cli=False)
    init_lora_weights: bool | str = option(True, "True: A Kaiming-uniform, B = 0; 'gaussian': A ~ N(0, 1/r), B = 0; "
                                           "False: both random (ΔW ≠ 0 at step 0)", choices=INITS, cli=False)

    def check(self):
        if not self.target_modules:
            raise ConfigError(type(self).__name__, "target_modules", "must name at least one module, e.g. "
                              "('q_proj', 'v_proj') or 'all'")
        if self.target_modules == ("all",):
            self.target_modules = "all"
        if self.target_modules == ("all-linear",):
            self.target_modules = "all-linear"
