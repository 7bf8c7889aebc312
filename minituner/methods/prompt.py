"""Prompt tuning (提示微调): train n_virtual tokens put before the input; the model stays frozen.

Article §3.2:  X = [x1, …, xm]  becomes  X' = [x'1, …, x'k; x1, …, xm],  Y = W X'
(the article's k is our n_virtual = num_virtual_tokens).
Lester et al. 2021: a soft prompt P ∈ R^{n_virtual×d} is prepended to the embedded input,
    h = f_θ([P; E(X)]),  θ frozen, only P trained.
The code is the ``prompt=`` slot of ``GPT.forward`` in model.py:
    x = torch.cat([(P + wpe[0:n]).expand(B, -1, -1), x], dim=1)   # (B, n_virtual + T, C)

Shapes: P (n_virtual, C) with C = d the model width; the frozen model sees (B, n_virtual + T, C)
and ``model(idx)`` returns logits for the T real positions only, (B, T, V), so they line up with
the targets and the task's answer mask: virtual positions never count in the loss. PEFT's call
``model(input_ids=idx, labels=idx)`` returns PEFT's (B, n_virtual + T, V), its loss as PEFT's.
Positions as PEFT on GPT-2: [P; X] is one sequence of inputs_embeds, so virtual token i
gets wpe[i] added (x'_i = P_i + wpe[i]) and the real tokens are numbered n..n+T-1
(tests/test_peft_equivalence.py checks it against PEFT's PromptTuningConfig).

Trainable parameters (closed form, checked by tests):  n_virtual · d.

Initialisation (Lester et al. compare these in their ablations; PEFT's ``PromptTuningInit``):
    "random"  N(0, σ²), σ the std of the base's token embeddings (P starts at their scale;
              PEFT's RANDOM is nn.Embedding's N(0, 1), far above the scale of our wte)
    "vocab"   n_virtual rows of the token embedding table drawn at random ("sampled vocab")
    "text"    the token embeddings of ``init_text``, repeated or cut to n_virtual tokens (as PEFT)

References: 1) Lester, Al-Rfou, Constant 2021, The Power of Scale for Parameter-Efficient
Prompt Tuning. 2) Hugging Face PEFT, ``PromptTuningConfig``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn as nn

from ..model import GPT
from ..tokenizer import SPECIALS
from .fields import INFERENCE_MODE, N_VIRTUAL, SEED, TASK_TYPE, MethodConfig, peft_config
from .options import ConfigError, option
from .peft_model import PeftModel, adapter_dtype
from .registry import Method, register
from .virtual_tokens import check_room, init_text_ids


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


def prompt_parameter_count(n_virtual: int, d: int) -> int:
    """Trainable parameters of prompt tuning: the soft prompt P, n_virtual · d."""
    return n_virtual * d


class PromptTuningModel(PeftModel):
    """A frozen GPT with a trainable soft prompt P (n_virtual, C) before every input."""

    def __init__(self, base: GPT, config: PromptTuningConfig, adapter_name: str = "default"):
        n = config.num_virtual_tokens
        check_room(n, base)
        ids = init_text_ids(config.init_text, n, base) if config.init == "text" else None
        super().__init__(base, config, adapter_name)
        wte = self.base.wte.weight.detach()  # (V, C)
        g = torch.Generator().manual_seed(config.seed)
        if config.init == "random":
            P = torch.randn(n, wte.size(1), generator=g) * wte.std().item()  # (n_virtual, C)
        elif config.init == "vocab":
            P = wte[torch.randint(len(SPECIALS), wte.size(0), (n,), generator=g)]  # no <pad>/<eos> rows
        else:
            P = wte[ids]  # (n_virtual, C): the phrase's own token embeddings
        self.prompt = nn.Parameter(P.to(wte.device, adapter_dtype(wte)).clone())  # x'1..x'k of the article

    @property
    def num_virtual_tokens(self) -> int:
        return self.prompt.size(0)

    def logits(self, idx, kv_cache=None):
        """idx (B, T) -> logits (B, T, V) of the real tokens, computed on X' = [P; X]."""
        return self.base(idx, prompt=self.prompt.to(self.dtype), kv_cache=kv_cache)  # (B, T, V)

    def causal_logits(self, input_ids):
        """PEFT's model(input_ids=...): logits of the k virtual and the T real positions, (B, k + T, V)."""
        top = []  # the last block's output, virtual rows included (GPT.forward drops them before ln_f)
        hook = self.base.h[-1].register_forward_hook(lambda module, args, out: top.append(out))
        try:
            real = self.logits(input_ids)  # (B, T, V)
        finally:
            hook.remove()
        virtual = self.base.ln_f(top[0][:, : self.num_virtual_tokens]) @ self.base.wte.weight.T  # (B, k, V)
        return torch.cat([virtual, real], dim=1)  # (B, k + T, V)

    def causal_loss(self, logits, labels):
        """PEFT's: k labels of -100 before the real ones, so the last virtual row predicts the first token."""
        ignore = labels.new_full((labels.size(0), self.num_virtual_tokens), -100)
        return super().causal_loss(logits, torch.cat([ignore, labels], dim=1))


register(Method("prompt", "prompt tuning (提示微调)", PromptTuningConfig, PromptTuningModel, order=3,
                grid={"num_virtual_tokens": [4, 16], "lr": [1e-2, 3e-2, 1e-1]}, memory="prompt"))
