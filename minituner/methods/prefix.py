"""Prefix tuning (前缀微调) and P-Tuning v2: trainable keys and values before every layer's own.

Article §3.2:  W becomes W' = [Wp; W],  Y = W'X.  In attention that is, at every layer l,
    K'_l = [P_k,l; K_l],   V'_l = [P_v,l; V_l],   P_k,l, P_v,l ∈ R^{k×d}
    head = softmax(Q K'ᵀ / sqrt(hs) + M) V'        (Li & Liang 2021)
and in code the ``prefixes=`` slot of ``GPT.forward``, two lines of model.py:
    k = torch.cat([prefix_k, k], dim=2)   # (B, nh, k + T, hs)      (the same for v)
Every query sees all k prefix rows (no causal mask on them); no query is made for them,
so the model predicts only the T real positions and virtual rows never count in the loss.
A prefix is not an input: it takes no position embedding, the real tokens keep positions
0..T-1, and the attention length k + T may not exceed ``block_size`` (model.py raises
ValueError). A prefix of zeros is *not* a no-op: a zero key scores 0, so it still takes
a share exp(0) / Σ of every softmax row and scales the real values' weights down.

Reparameterisation (Li & Liang 2021: training P directly was unstable for them):
    P = MLP(E) = W2 · tanh(W1 · E + b1) + b2,  E ∈ R^{k×d},  hidden size h,
    the MLP's output (k, 2·L·d) read as one (P_k, P_v) pair per layer.
After training ``fold()`` keeps only P = MLP(E) (the MLP is a training device, not a
model): the same logits, 2·L·k·d numbers to store.

P-Tuning v2 (Liu et al. 2022), ``ptuning_v2``: "deep prompt tuning", a prefix at every
layer trained directly, no reparameterisation. In code it *is* prefix tuning with
``reparameterize=False`` (its reference code feeds the prompts in as past keys and values,
as here). Prompt tuning (methods/prompt.py) puts its k vectors only before the first
layer's input, where they pass through every frozen layer; P-Tuning v2 gives each
layer its own keys and values, so it trains 2·L times as many numbers and reaches the
deep layers directly.

Trainable parameters (closed forms, checked by tests; L layers, width d, k, hidden h):
    direct (P-Tuning v2, or after fold()):  2·L·k·d
    reparameterised:                        k·d + (d·h + h) + (h·2·L·d + 2·L·d)
Weight decay: as for every trainable tensor, train()'s ``weight_decay`` (0 by default).
Learning rates (AdamW, the shipped base, lesson 05): the direct form moves prefixes of
size ~1 and wants 3e-2 to 1e-1 (at 3e-3 it barely moves); the MLP form moves weights
~10× smaller that multiply each other and wants 3e-3 to 1e-2 (at 3e-2 it leaves its
text init and diverges).

Initialisation:
    "random"  PEFT's defaults: E or P ~ N(0, 1), MLP weights and biases ~ U(±1/sqrt(fan_in))
    "text"    Li & Liang's init from real words (PEFT does not offer it): run the frozen
              base on ``init_text`` (k characters) and take each layer's own keys and
              values of it, so training starts from "the model has just read this phrase"
              (read at positions 0..k-1; the real tokens, too, start at position 0).
              With the MLP, W2 is solved by least squares so that MLP(E) equals those
              keys and values exactly at step 0 (this needs hidden >= k).

References: 1) Li & Liang 2021, Prefix-Tuning: Optimizing Continuous Prompts for Generation.
2) Liu et al. 2022, P-Tuning v2: Prompt Tuning Can Be Comparable to Fine-tuning Universally
Across Scales and Tasks. 3) Hugging Face PEFT, ``PrefixTuningConfig`` / ``PrefixEncoder``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..model import GPT, KVCache, LanguageModel, Linear
from ..tokenizer import CharTokenizer
from .prompt import check_base, check_virtual_tokens, frozen_copy, init_text_ids

INITS = ("random", "text")


def prefix_parameter_count(k: int, d: int, n_layer: int, hidden: int | None = None) -> int:
    """Trainable parameters: 2·L·k·d directly, or k·d + (d·h + h) + (h·2Ld + 2Ld) with the MLP."""
    if hidden is None:
        return 2 * n_layer * k * d
    return k * d + (d * hidden + hidden) + (hidden * 2 * n_layer * d + 2 * n_layer * d)


@torch.no_grad()
def text_keys_values(base: GPT, ids: torch.Tensor) -> torch.Tensor:
    """Each layer's own keys and values of a phrase: (L, 2, k, C), read from a KVCache."""
    cache = KVCache(base.config.n_layer)
    base(ids.view(1, -1).to(base.wte.weight.device), kv_cache=cache)
    k, C = ids.numel(), base.config.n_embd
    return torch.stack([torch.stack([t[0].transpose(0, 1).reshape(k, C) for t in (layer.k, layer.v)])
                        for layer in cache.layers])  # (nh, k, hs) -> (k, C) per tensor; (L, 2, k, C)


class PrefixTuningModel(LanguageModel):
    """A frozen GPT with a trainable key/value prefix (P_k, P_v), each (k, C), at every layer.

    Either ``prefix`` (L, 2, k, C) is the parameter (direct), or ``embedding`` E (k, C) and
    the MLP ``mlp_in`` (C -> h), ``mlp_out`` (h -> 2·L·C) make it (reparameterised).
    """

    def __init__(self, base: GPT, k: int, hidden: int | None):
        super().__init__()
        self.base = base
        self.config = c = base.config
        self.num_virtual_tokens, self.hidden = k, hidden
        if hidden is None:
            self.prefix = nn.Parameter(torch.zeros(c.n_layer, 2, k, c.n_embd))  # (L, 2, k, C)
        else:
            self.prefix = None
            self.embedding = nn.Parameter(torch.zeros(k, c.n_embd))  # E (k, C)
            self.mlp_in = Linear(c.n_embd, hidden)  # W1 (h, C), b1 (h,)
            self.mlp_out = Linear(hidden, 2 * c.n_layer * c.n_embd)  # W2 (2·L·C, h), b2 (2·L·C,)

    @property
    def reparameterized(self) -> bool:
        return self.prefix is None

    def prefix_tensor(self) -> torch.Tensor:
        """All prefixes as one (L, 2, k, C) tensor: [l, 0] is P_k of layer l, [l, 1] its P_v."""
        if not self.reparameterized:
            return self.prefix  # (L, 2, k, C)
        c, k = self.config, self.num_virtual_tokens
        flat = self.mlp_out(torch.tanh(self.mlp_in(self.embedding)))  # (k, 2·L·C): P = MLP(E)
        return flat.view(k, c.n_layer, 2, c.n_embd).permute(1, 2, 0, 3)  # (L, 2, k, C)

    def prefixes(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        P = self.prefix_tensor()  # (L, 2, k, C)
        return [(P[i, 0], P[i, 1]) for i in range(P.size(0))]  # [(P_k, P_v)] * L, each (k, C)

    def forward(self, idx, kv_cache=None):
        """idx (B, T) -> logits (B, T, V), every layer attending over K' = [P_k; K], V' = [P_v; V]."""
        return self.base(idx, prefixes=self.prefixes(), kv_cache=kv_cache)  # (B, T, V)

    @torch.no_grad()
    def fold(self) -> PrefixTuningModel:
        """Replace E and the MLP by the prefixes they make, P = MLP(E): same logits, 2·L·k·d
        parameters left. Folding a direct prefix changes nothing. Returns self."""
        if self.reparameterized:
            P = self.prefix_tensor().detach().clone()  # (L, 2, k, C)
            del self.embedding, self.mlp_in, self.mlp_out
            self.prefix = nn.Parameter(P)
            self.hidden = None
        return self


def _uniform_(t: torch.Tensor, fan_in: int, g: torch.Generator) -> None:
    """U(−1/sqrt(fan_in), 1/sqrt(fan_in)): torch's (and so PEFT's) default for a Linear."""
    bound = 1.0 / math.sqrt(fan_in)
    t.copy_((torch.rand(t.shape, generator=g) * 2 - 1) * bound)


def prefix_tuning(base: GPT, num_virtual_tokens: int = 8, reparameterize: bool = True, hidden: int | None = None,
                  init: str = "random", init_text: str | None = None, seed: int = 0,
                  tokenizer: CharTokenizer | None = None) -> PrefixTuningModel:
    """Prefix tuning: per layer P_k, P_v (k, C) through the ``prefixes=`` slot; base frozen.

    reparameterize=True makes the prefixes from E (k, C) by an MLP with ``hidden`` units
    (default: the width d), to be ``fold()``-ed after training; False trains them directly
    (that is P-Tuning v2). init "random" or "text" (``init_text`` of exactly k characters).
    """
    method = "prefix_tuning" if reparameterize else "ptuning_v2"
    check_base(base, method)
    c = base.config
    k = check_virtual_tokens(num_virtual_tokens, c, method)
    if init not in INITS:
        raise ValueError(f"{method}: init must be one of {', '.join(INITS)}, got {init!r}")
    if not reparameterize and hidden is not None:
        raise ValueError(f"{method}: hidden is the MLP's width; it needs reparameterize=True")
    hidden = (c.n_embd if hidden is None else hidden) if reparameterize else None
    if hidden is not None and (int(hidden) != hidden or hidden < 1):
        raise ValueError(f"{method}: hidden must be a positive integer, got {hidden}")
    if init == "text" and hidden is not None and hidden < k:
        raise ValueError(f"{method}: init='text' with the MLP needs hidden >= num_virtual_tokens "
                         f"(to start exactly at the phrase's keys and values), got hidden={hidden} < k={k}")
    ids = init_text_ids(init, init_text, k, tokenizer or CharTokenizer(), method)
    base = frozen_copy(base, method)
    model = PrefixTuningModel(base, k, hidden).to(base.wte.weight.device)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        target = text_keys_values(base, ids).cpu() if ids is not None else None  # (L, 2, k, C)
        if not model.reparameterized:
            P = target if target is not None else torch.randn(model.prefix.shape, generator=g)
            model.prefix.copy_(P)
            return model
        model.embedding.copy_(torch.randn(model.embedding.shape, generator=g))  # E ~ N(0, 1)
        for lin in (model.mlp_in, model.mlp_out):
            _uniform_(lin.weight, lin.in_features, g)
            _uniform_(lin.bias, lin.in_features, g)
        if target is not None:  # solve W2 (b2 = 0) so that MLP(E) = the phrase's keys and values
            H = torch.tanh(model.mlp_in(model.embedding)).double().cpu()  # (k, h), rank k when h >= k
            Y = target.permute(2, 0, 1, 3).reshape(k, -1).double()  # (k, 2·L·C), the layout MLP(E) is read in
            model.mlp_out.weight.copy_((torch.linalg.pinv(H) @ Y).T)  # W2 (2·L·C, h): min-norm solution
            model.mlp_out.bias.zero_()
    return model


def ptuning_v2(base: GPT, num_virtual_tokens: int = 8, init: str = "random", init_text: str | None = None,
               seed: int = 0, tokenizer: CharTokenizer | None = None) -> PrefixTuningModel:
    """P-Tuning v2 (Liu et al. 2022): deep prompt tuning, a trainable (P_k, P_v) at every layer,
    trained directly without reparameterisation; 2·L·k·d trainable parameters.

    Relation: it is ``prefix_tuning(..., reparameterize=False)`` exactly (same slot, same
    tensors); against prompt tuning, its prompts reach every layer, not only the input.
    """
    return prefix_tuning(base, num_virtual_tokens, reparameterize=False, init=init, init_text=init_text,
                         seed=seed, tokenizer=tokenizer)
