"""Prompt tuning (提示微调): train k virtual tokens put before the input; the model stays frozen.

Article §3.2:  X = [x1, …, xm]  becomes  X' = [x'1, …, x'k; x1, …, xm],  Y = W X'.
Lester et al. 2021: a soft prompt P ∈ R^{k×d} is prepended to the embedded input,
    h = f_θ([P; E(X)]),  θ frozen, only P trained.
The code is one line of model.py, the ``prompt=`` slot of ``GPT.forward``:
    x = torch.cat([P.expand(B, -1, -1), x], dim=1)   # (B, k + T, C)

Shapes: P (k, C) with C = d the model width; the frozen model sees (B, k + T, C) and
returns logits for the T real positions only, (B, T, V), so they line up with the
targets and the task's answer mask: virtual positions never count in the loss.

Positions: a virtual token is the whole input vector (no position embedding is added
to it); the real tokens keep positions 0..T-1, exactly where pretraining put them
(PEFT drops position ids and lets the base number [P; X] as one sequence, so on GPT-2
real tokens start at position k there). The attention length k + T may not exceed
``block_size``: model.py raises ValueError.

Trainable parameters (closed form, checked by tests):  k · d.
Weight decay: P is a trainable tensor like any other; train()'s ``weight_decay``
(0 by default, and in the lessons) applies to it when given.

Initialisation (Lester et al. compare these in their ablations; PEFT's ``PromptTuningInit``):
    "random"  N(0, σ²), σ the std of the base's token embeddings (P starts at their scale)
    "vocab"   k rows of the token embedding table drawn at random ("sampled vocab")
    "text"    the token embeddings of ``init_text``, one character per virtual token

References: 1) Lester, Al-Rfou, Constant 2021, The Power of Scale for Parameter-Efficient
Prompt Tuning. 2) Hugging Face PEFT, ``PromptTuningConfig``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ..model import GPT, LanguageModel
from ..tokenizer import SPECIALS, CharTokenizer

INITS = ("random", "vocab", "text")


def frozen_copy(base: GPT, method: str) -> GPT:
    """A deep copy of base with every tensor frozen: the method trains around it, never in it."""
    check_base(base, method)
    base = copy.deepcopy(base)
    base.requires_grad_(False)
    return base


def check_base(base, method: str) -> None:
    if not isinstance(base, GPT):
        raise TypeError(f"{method} needs a GPT (it uses GPT.forward's slots), got {type(base).__name__}")


def check_virtual_tokens(k: int, config, method: str) -> int:
    """k must leave room for at least one real token: 1 <= k < block_size."""
    if int(k) != k or not 1 <= k < config.block_size:
        raise ValueError(f"{method}: num_virtual_tokens must be an integer in 1..{config.block_size - 1} "
                         f"(k + T may not exceed block_size={config.block_size}), got {k}")
    return int(k)


def init_text_ids(init: str, init_text: str | None, k: int, tokenizer: CharTokenizer, method: str) -> torch.Tensor | None:
    """The ids of init_text when init == 'text' (exactly k characters the tokenizer knows), else None."""
    if init != "text":
        if init_text is not None:
            raise ValueError(f"{method}: init_text is only used with init='text', got init={init!r}")
        return None
    if init_text is None:
        raise ValueError(f"{method}: init='text' needs init_text, a phrase of exactly {k} characters")
    if len(init_text) != k:
        raise ValueError(f"{method}: init_text must have exactly num_virtual_tokens={k} characters "
                         f"(one per virtual token), got {len(init_text)}: {init_text!r}")
    try:
        return torch.tensor(tokenizer.encode(init_text))  # (k,)
    except ValueError as e:
        raise ValueError(f"{method}: init_text cannot be encoded: {e}") from None


def prompt_parameter_count(k: int, d: int) -> int:
    """Trainable parameters of prompt tuning: the soft prompt P, k · d."""
    return k * d


class PromptTuningModel(LanguageModel):
    """A frozen GPT with a trainable soft prompt P (k, C) before every input."""

    def __init__(self, base: GPT, prompt: torch.Tensor):
        super().__init__()
        self.base = base
        self.config = base.config
        self.prompt = nn.Parameter(prompt)  # (k, C): x'1..x'k of the article

    @property
    def num_virtual_tokens(self) -> int:
        return self.prompt.size(0)

    def forward(self, idx, kv_cache=None):
        """idx (B, T) -> logits (B, T, V) of the real tokens, computed on X' = [P; X]."""
        return self.base(idx, prompt=self.prompt, kv_cache=kv_cache)  # (B, T, V)


def prompt_tuning(base: GPT, num_virtual_tokens: int = 16, init: str = "random", init_text: str | None = None,
                  seed: int = 0, tokenizer: CharTokenizer | None = None) -> PromptTuningModel:
    """Prompt tuning: a trainable P (k, C) fed through the model's ``prompt=`` slot; base frozen.

    Returns a PromptTuningModel with exactly k · d trainable parameters. ``init`` is
    "random", "vocab" or "text" (then ``init_text`` has exactly k characters).
    """
    check_base(base, "prompt_tuning")
    k = check_virtual_tokens(num_virtual_tokens, base.config, "prompt_tuning")
    if init not in INITS:
        raise ValueError(f"prompt_tuning: init must be one of {', '.join(INITS)}, got {init!r}")
    tokenizer = tokenizer or CharTokenizer()
    ids = init_text_ids(init, init_text, k, tokenizer, "prompt_tuning")
    base = frozen_copy(base, "prompt_tuning")
    wte = base.wte.weight.detach()  # (V, C)
    g = torch.Generator().manual_seed(seed)
    if init == "random":
        P = torch.randn(k, wte.size(1), generator=g) * wte.std().item()  # (k, C)
    elif init == "vocab":
        P = wte[torch.randint(len(SPECIALS), wte.size(0), (k,), generator=g)]  # (k, C): no <pad>/<eos> rows
    else:
        P = wte[ids]  # (k, C): the phrase's own token embeddings
    return PromptTuningModel(base, P.to(wte.device, wte.dtype).clone())

