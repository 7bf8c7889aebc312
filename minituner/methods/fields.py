"""What every method's config shares: the MethodConfig base, the ``peft_config`` decorator (a dataclass
that refuses unknown names, and PEFT's names we do not take with what minituner does instead), and the
fields several configs hold (seed, num_virtual_tokens, PEFT's task_type and inference_mode).
Each method's config sits in the method's own file, named as in Hugging Face PEFT:

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

from .options import check_options

PEFT_ONLY = {  # PEFT's config fields minituner refuses, and what it does instead
    "prompt_tuning_init": "use init='random' | 'vocab' | 'text' (PEFT's RANDOM, SAMPLE_VOCAB, TEXT)",
    "prompt_tuning_init_text": "use init_text (with init='text')",
    "tokenizer_name_or_path": "init_text is encoded by the base's own tokenizer (a GPT-2 folder's BPE, else the "
                              "character tokenizer)",
    "fan_in_fan_out": "every weight is stored (out, in), so there is nothing to transpose",
    "use_dora": "DoRA is a method of its own: DoraConfig(r, lora_alpha, ...)",
    "layers_to_transform": "name the layers in target_modules ('h.0.attn.q_proj') or with a regular expression",
    "layers_pattern": "name the layers in target_modules ('h.0.attn.q_proj') or with a regular expression",
    "rank_pattern": "one r for every target; add a second adapter for another rank",
    "alpha_pattern": "one lora_alpha for every target; add a second adapter for another",
    "exclude_modules": "list the modules you want in target_modules",
    "peft_type": "the config class is the method",
    "base_model_name_or_path": "adapter_config.json records the base's fingerprint, checked on load",
    "revision": "adapter_config.json records the base's fingerprint, checked on load",
    "token_dim": "read from the base (model.gpt_config.n_embd)",
    "num_layers": "read from the base (model.gpt_config.n_layer)",
    "num_attention_heads": "read from the base (model.gpt_config.n_head)",
    "num_transformer_submodules": "read from the base: one decoder",
}


def peft_config(cls):
    """A dataclass whose constructor rejects unknown keyword names with a ValueError listing the accepted ones."""
    cls = dataclasses.dataclass(cls)
    init, names = cls.__init__, [f.name for f in dataclasses.fields(cls)]

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        unknown = sorted(set(kwargs) - set(names))
        peft_only = [k for k in unknown if k in PEFT_ONLY]
        if peft_only:
            raise ValueError(f"{cls.__name__}: PEFT's {peft_only[0]} is not taken here: {PEFT_ONLY[peft_only[0]]}")
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
        self.validate()

    def validate(self):
        """Each field inside its domain (type and range, from option() metadata), then ``check``; run when the
        config is made and again where it is used (get_peft_model, train, save_pretrained), so a field set
        after the config was made (``cfg.lora_dropout = 2.0``) is refused too. Returns the config."""
        check_options(self)
        self.check()
        return self

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
TASK_TYPE = dict(help="PEFT's task type: minituner's models are causal language models", choices=("CAUSAL_LM",),
                 cli=False)
INFERENCE_MODE = dict(help="build the adapter frozen, as PEFT (from_pretrained sets it unless is_trainable)", cli=False)
N_VIRTUAL = dict(help="virtual tokens k before the real ones", ge=1, le=4096, short="k")
