"""Prefix tuning (前缀微调) and P-Tuning v2: trainable keys and values before every layer's own.

Article §3.2:  W becomes W' = [Wp; W],  Y = W'X.  In attention that is, at every layer l,
    K'_l = [P_k,l; K_l],   V'_l = [P_v,l; V_l],   P_k,l, P_v,l ∈ R^{n×d}   (n = num_virtual_tokens)
    head = softmax(Q K'ᵀ / sqrt(hs) + M) V'        (Li & Liang 2021)
and in code the ``prefixes=`` slot of ``GPT.forward``, two lines of model.py:
    k = torch.cat([prefix_k, k], dim=2)   # (B, nh, n + T, hs)      (the same for v)
Every query sees all n prefix rows (no causal mask on them); no query is made for them,
so the model predicts only the T real positions and virtual rows never count in the loss.
A prefix is not an input: it takes no position embedding, but the real tokens are numbered
from n, as PEFT on GPT-2 counts the prefixes as n past positions (model.py). A prefix of zeros is *not* a
no-op: a zero key scores 0, so it still takes a share exp(0) / Σ of every softmax row.

Reparameterisation (prefix_projection=True; Li & Liang 2021: training P directly was unstable):
    P = MLP(E) = W2 · tanh(W1 · E + b1) + b2,  E ∈ R^{n×d},  hidden size h = encoder_hidden_size,
    the MLP's output (n, 2·L·d) read as one (P_k, P_v) pair per layer.
After training ``fold()`` keeps only P = MLP(E) (the MLP is a training device, not a
model): the same logits, 2·L·n·d numbers to store (the config becomes prefix_projection=False).

P-Tuning v2 (Liu et al. 2022): "deep prompt tuning", a prefix at every layer trained
directly. In code it *is* prefix tuning with prefix_projection=False. Prompt tuning puts
its vectors only before the first layer's input; P-Tuning v2 gives each layer its own
keys and values, so it trains 2·L times as many numbers and reaches the deep layers directly.

Trainable parameters (closed forms, checked by tests; L layers, width d, n, hidden h):
    direct (P-Tuning v2, or after fold()):  2·L·n·d
    reparameterised:                        n·d + (d·h + h) + (h·2·L·d + 2·L·d)

Initialisation:
    "random"  PEFT's defaults: E or P ~ N(0, 1), MLP weights and biases ~ U(±1/sqrt(fan_in))
    "text"    Li & Liang's init from real words (PEFT does not offer it): each layer's own
              keys and values of ``init_text`` as the frozen base reads it. With the MLP, W2
              is solved by least squares so that MLP(E) equals them at step 0 (needs h >= n).

References: 1) Li & Liang 2021, Prefix-Tuning: Optimizing Continuous Prompts for Generation.
2) Liu et al. 2022, P-Tuning v2: Prompt Tuning Can Be Comparable to Fine-tuning Universally
Across Scales and Tasks. 3) Hugging Face PEFT, ``PrefixTuningConfig`` / ``PrefixEncoder``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn as nn

from ..model import GPT, Linear
from .fields import N_VIRTUAL, peft_config
from .options import ConfigError, option
from .peft_model import PeftModel, adapter_dtype
from .prompt import PromptTuningConfig
from .registry import Method, register
from .virtual_tokens import check_room, init_text_ids, text_keys_values, uniform_


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


def prefix_parameter_count(n_virtual: int, d: int, n_layer: int, hidden: int | None = None) -> int:
    """Trainable parameters: 2·L·n·d directly, or n·d + (d·h + h) + (h·2Ld + 2Ld) with the MLP."""
    if hidden is None:
        return 2 * n_layer * n_virtual * d
    return n_virtual * d + (d * hidden + hidden) + (hidden * 2 * n_layer * d + 2 * n_layer * d)


class PrefixTuningModel(PeftModel):
    """A frozen GPT with a trainable key/value prefix (P_k, P_v), each (n, C), at every layer.

    Either ``prefix`` (L, 2, n, C) is the parameter (direct), or ``embedding`` E (n, C) and
    the MLP ``mlp_in`` (C -> h), ``mlp_out`` (h -> 2·L·C) make it (reparameterised).
    """

    def __init__(self, base: GPT, config: PrefixTuningConfig, adapter_name: str = "default"):
        n, c = config.num_virtual_tokens, base.config
        check_room(n, base)
        hidden = (config.encoder_hidden_size or c.n_embd) if config.prefix_projection else None
        if config.init == "text" and hidden is not None and hidden < n:
            raise ValueError(f"init='text' with the MLP needs encoder_hidden_size >= num_virtual_tokens "
                             f"(to start exactly at the phrase's keys and values), got {hidden} < {n}")
        ids = init_text_ids(config.init_text, config.num_virtual_tokens, base) if config.init == "text" else None
        super().__init__(base, config, adapter_name)
        self.num_virtual_tokens = n
        g = torch.Generator().manual_seed(config.seed)
        target = text_keys_values(self.base, ids).cpu() if ids is not None else None  # (L, 2, n, C)
        if hidden is None:
            P = target if target is not None else torch.randn(c.n_layer, 2, n, c.n_embd, generator=g)
            self.prefix = nn.Parameter(P)  # (L, 2, n, C)
        else:
            self.prefix = None
            self.embedding = nn.Parameter(torch.randn(n, c.n_embd, generator=g))  # E (n, C) ~ N(0, 1)
            self.mlp_in = Linear(c.n_embd, hidden)  # W1 (h, C), b1 (h,)
            self.mlp_out = Linear(hidden, 2 * c.n_layer * c.n_embd)  # W2 (2·L·C, h), b2 (2·L·C,)
            with torch.no_grad():
                for lin in (self.mlp_in, self.mlp_out):
                    uniform_(lin.weight, lin.in_features, g)
                    uniform_(lin.bias, lin.in_features, g)
                if target is not None:  # solve W2 (b2 = 0) so that MLP(E) = the phrase's keys and values
                    H = torch.tanh(self.mlp_in(self.embedding)).double()  # (n, h), rank n when h >= n
                    Y = target.permute(2, 0, 1, 3).reshape(n, -1).double()  # (n, 2·L·C), as MLP(E) is read
                    self.mlp_out.weight.copy_((torch.linalg.pinv(H) @ Y).T)  # W2 (2·L·C, h): min-norm
                    self.mlp_out.bias.zero_()
        wte, dtype = self.base.wte.weight, self.base.wte.weight.dtype
        self.to(wte.device, adapter_dtype(wte)).base.to(dtype)  # the prefixes float32 beside a bfloat16 base

    @property
    def reparameterized(self) -> bool:
        return self.prefix is None

    def prefix_tensor(self) -> torch.Tensor:
        """All prefixes as one (L, 2, n, C) tensor: [l, 0] is P_k of layer l, [l, 1] its P_v."""
        if not self.reparameterized:
            return self.prefix  # (L, 2, n, C)
        c, n = self.base.config, self.num_virtual_tokens
        flat = self.mlp_out(torch.tanh(self.mlp_in(self.embedding)))  # (n, 2·L·C): P = MLP(E)
        return flat.view(n, c.n_layer, 2, c.n_embd).permute(1, 2, 0, 3)  # (L, 2, n, C)

    def prefixes(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        P = self.prefix_tensor().to(self.dtype)  # (L, 2, n, C), in the base's dtype
        return [(P[i, 0], P[i, 1]) for i in range(P.size(0))]  # [(P_k, P_v)] * L, each (n, C)

    def logits(self, idx, kv_cache=None):
        """idx (B, T) -> logits (B, T, V), every layer attending over K' = [P_k; K], V' = [P_v; V]."""
        return self.base(idx, prefixes=self.prefixes(), kv_cache=kv_cache)  # (B, T, V)

    @torch.no_grad()
    def fold(self) -> PrefixTuningModel:
        """Replace E and the MLP by the prefixes they make, P = MLP(E): same logits, 2·L·n·d
        parameters left, saved as a direct prefix. Folding a direct prefix changes nothing. Returns self."""
        if self.reparameterized:
            P = self.prefix_tensor().detach().clone()  # (L, 2, n, C)
            del self.embedding, self.mlp_in, self.mlp_out
            self.prefix = nn.Parameter(P)
            self.config = dataclasses.replace(self.config, prefix_projection=False, encoder_hidden_size=None)
        return self


register(Method("prefix", "prefix tuning (前缀微调)", PrefixTuningConfig, PrefixTuningModel, order=4,
                fixed={"prefix_projection": True}, grid={"num_virtual_tokens": [8], "lr": [3e-3, 1e-2, 3e-2]},
                note="MLP reparam"))
register(Method("ptuning-v2", "P-Tuning v2", PrefixTuningConfig, PrefixTuningModel, order=5,
                fixed={"prefix_projection": False, "encoder_hidden_size": None},
                defaults={"init": "text", "init_text": "the animal that is "},  # a real sentence start
                grid={"num_virtual_tokens": [8], "lr": [1e-2, 3e-2, 1e-1]}, memory="prefix", note="per layer, text init"))
