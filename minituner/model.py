"""A tiny GPT in plain tensor math, with two slots for parameter-efficient methods.

Shape legend (used in every comment below):
    B batch, T tokens, C = n_embd channels, nh heads, hs = C // nh head size,
    V vocabulary, k virtual tokens (prompt or prefix length), r LoRA rank.

GPT-2's layout (Radford et al. 2019), pre-LayerNorm:
    x = wte[idx] + wpe[pos]
    for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    logits = ln_f(x) @ wteᵀ                    (head tied to the token embedding)

Every weight matrix is a ``Linear`` — the article's ``Y = WX`` (§1) — and
named as LoRA users meet it in the wild: ``h.{i}.attn.{q,k,v,o}_proj``,
``h.{i}.mlp.{up,down}_proj``.

The two slots, and all a method may pass in:
    prompt   (k, C) or (B, k, C) prompt tuning, X' = [x'1..x'k; x1..xm]  (article §3.2)
    prefixes [(pk, pv)] * n_layer, each (k, C) or (B, k, C)
                                prefix tuning / P-Tuning v2, K' = [P_k; K], V' = [P_v; V],
                                the article's W' = [Wp; W]  (§3.2)
Positions follow Hugging Face PEFT on GPT-2: with k virtual tokens first, the real
tokens are numbered k..k+T-1. Prefix tuning / P-Tuning v2: the prefixes are keys and
values already in the cache, so the base counts k past positions (transformers'
GPT2Model numbers from the cache's length). Prompt tuning: [P; X] is one sequence of
inputs_embeds, so the virtual tokens, too, get wpe[0..k-1] added: x'_i = P_i + wpe[i].
tests/test_peft_equivalence.py checks both against transformers + PEFT on the same
weights. The attention length k + T may not exceed ``block_size``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from . import functional as F
from .checks import refuse

MAX_CONFIG = {"vocab_size": 2**20, "block_size": 2**17, "n_layer": 2**10, "n_head": 2**10, "n_embd": 2**15}
MAX_PARAMETERS = 2**33  # 32 GiB of float32: far above GPT-2 XL (1.6e9), far below what would hang or crash


@dataclass
class GPTConfig:
    vocab_size: int = 35  # characters + <pad> + <eos> (see tokenizer.py)
    block_size: int = 96  # the most positions one sequence may hold (virtual ones included)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64  # C, the model width d

    def __post_init__(self):
        for name, most in MAX_CONFIG.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise refuse(TypeError, name, f"GPTConfig.{name} must be an int, got {type(value).__name__} {value!r:.40}")
            if not 1 <= value <= most:
                raise refuse(ValueError, name, f"GPTConfig.{name} must be an integer in 1..{most:,}, got {value:,}")
            setattr(self, name, int(value))
        if self.n_embd % self.n_head:
            raise refuse(ValueError, "n_embd", f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        n = self.n_parameters()
        if n > MAX_PARAMETERS:
            raise ValueError(f"this GPTConfig makes a model of {n:,} parameters ({4 * n / 2**30:.0f} GiB in float32), "
                             f"more than the {MAX_PARAMETERS:,} a GPT here may have; use a smaller config")

    def n_parameters(self) -> int:
        """The parameters a GPT of this config holds: wte (V, C) + wpe (block_size, C) + ln_f, and per
        block 12·C² + 13·C (q, k, v, o: 4·(C² + C); up, down: 8·C² + 5·C; two LayerNorms: 4·C)."""
        C = self.n_embd
        return (self.vocab_size + self.block_size) * C + 2 * C + self.n_layer * (12 * C * C + 13 * C)

    def to_dict(self) -> dict:
        return asdict(self)


class Linear(nn.Module):
    """y = x Wᵀ + b: the article's Y = WX (§1). weight (out, in), bias (out,)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)  # (..., out)

    def as_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) with forward(x) = x Wᵀ + b: what a fused product (CausalSelfAttention.qkv) needs."""
        return self.weight, self.bias


class Embedding(nn.Module):
    """A lookup table: row idx of weight (num, C), with a deterministic backward (F.embedding)."""

    def __init__(self, num: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num, dim))

    def forward(self, idx):
        return F.embedding(idx, self.weight)  # (..., C)


class LayerNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return F.layer_norm(x, self.weight, self.bias)


def shows_weight(layer: nn.Module) -> bool:
    """Whether a product with layer.as_weight() may stand in for calling layer: it has the method, and no
    forward hook (here or global) waits to see or change the call."""
    hooks = (layer._forward_hooks, layer._forward_pre_hooks, nn.modules.module._global_forward_hooks,
             nn.modules.module._global_forward_pre_hooks)
    return hasattr(layer, "as_weight") and not any(hooks)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        self.n_head = config.n_head
        self.q_proj, self.k_proj = Linear(C, C), Linear(C, C)
        self.v_proj, self.o_proj = Linear(C, C), Linear(C, C)

    def qkv(self, x):
        """q, k, v = x W_qᵀ + b_q, x W_kᵀ + b_k, x W_vᵀ + b_v, each (B, T, C).

        Three products, one per layer, as written. Under ``fused()``, when the three layers can each
        show their weight (``as_weight``: a Linear, or a LoRA layer whose ΔW rides inside it) and x has
        at least C rows, it is one product with the stacked weight [W_q; W_k; W_v] (3C, C), as GPT-2's
        c_attn: one large matmul is faster than three small ones, and the same numbers.
        """
        layers = (self.q_proj, self.k_proj, self.v_proj)
        C = x.size(-1)
        if F.FUSED and x.numel() >= C * C:
            parts = [layer.as_weight() if shows_weight(layer) else None for layer in layers]
            if all(part is not None for part in parts):
                return F.stacked_linear(x, parts).split(C, dim=-1)  # (B, T, 3C) -> 3 × (B, T, C)
        return tuple(layer(x) for layer in layers)  # 3 × (B, T, C)

    def forward(self, x, prefix=None, cache=None):
        B, T, C = x.shape
        nh, hs = self.n_head, C // self.n_head
        q, k, v = (t.view(B, T, nh, hs).transpose(1, 2) for t in self.qkv(x))  # 3 × (B, nh, T, hs)
        if cache is not None:  # the keys and values of earlier tokens, kept by generate()
            k, v = cache.extend(k, v)  # (B, nh, T_past + T, hs)
        n_prefix = 0
        if prefix is not None:  # prefix tuning: W' = [Wp; W], i.e. K' = [P_k; K], V' = [P_v; V]
            prefix_k, prefix_v = (p.view(*p.shape[:-1], nh, hs).transpose(-3, -2) for p in prefix)  # ([B,] nh, k, hs)
            n_prefix = prefix_k.size(-2)  # k may be 0: then K' = K and V' = V exactly
            k = torch.cat([prefix_k.expand(B, -1, -1, -1), k], dim=2)  # (B, nh, k + T, hs)
            v = torch.cat([prefix_v.expand(B, -1, -1, -1), v], dim=2)  # (B, nh, k + T, hs)
        y = F.causal_attention(q, k, v, n_prefix=n_prefix)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C): heads side by side again
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up_proj = Linear(config.n_embd, 4 * config.n_embd)
        self.down_proj = Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x):
        return self.down_proj(F.gelu(self.up_proj(x)))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, prefix=None, cache=None):
        x = x + self.attn(self.ln_1(x), prefix=prefix, cache=cache)  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class LayerCache:
    """The keys and values one attention layer has seen, so generation need not redo them."""

    def __init__(self):
        self.k = self.v = None

    def extend(self, k, v):
        if self.k is not None:
            k = torch.cat([self.k, k], dim=2)  # (B, nh, T_past + T, hs)
            v = torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class KVCache:
    """One LayerCache per block, plus how many positions it holds (virtual and real)."""

    def __init__(self, n_layer: int):
        self.layers = [LayerCache() for _ in range(n_layer)]
        self.n_virtual = 0  # prompt-tuning tokens already inside the cache
        self.n_real = 0  # real tokens already inside the cache

    @property
    def length(self) -> int:
        return self.n_virtual + self.n_real


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) numbers of elements; a tensor counts once even if shared."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def print_trainable_parameters(model) -> None:
    """Print PEFT's one line, 'trainable params: N || all params: M || trainable%: P', and return None as
    PEFT does (the numbers: model.get_nb_trainable_parameters() on a PeftModel, else count_parameters)."""
    counts = getattr(model, "get_nb_trainable_parameters", None)
    trainable, total = counts() if counts else count_parameters(model)
    print(f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}")


def check_token_ids(idx, vocab_size: int) -> None:
    """idx must be a 2-D integer tensor (B, T) with B, T >= 1 and every id in 0..V-1.

    Checked once at the top of GPT.forward: torch would index row V-1 for id -1 silently.
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"idx must be a torch.Tensor of token ids (B, T), got {type(idx).__name__}")
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"idx must hold integer token ids (torch.long), got dtype {idx.dtype}")
    if idx.dim() != 2 or idx.size(0) < 1 or idx.size(1) < 1:
        raise ValueError(f"idx must be a 2-D tensor (B, T) with B >= 1 rows and T >= 1 tokens, "
                         f"got shape {tuple(idx.shape)}")
    bad = (idx < 0) | (idx >= vocab_size)  # (B, T)
    if bool(bad.any()):
        raise ValueError(f"idx holds token id {idx[bad][0].item()}, outside the vocabulary 0..{vocab_size - 1}")


def check_generate(idx, max_new_tokens, temperature, top_k, config: GPTConfig, k: int) -> None:
    """generate()'s arguments, each refused with what is allowed; k: the virtual tokens (prompt, prefix)
    that take positions too."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if isinstance(idx, torch.Tensor) and idx.dim() == 2 and idx.size(1) == 0:
        raise ValueError("idx holds no tokens (an empty prompt); generation continues a text: give at least one token")
    check_token_ids(idx, config.vocab_size)
    if idx.size(1) + max_new_tokens > config.block_size - k:
        raise ValueError(f"{idx.size(1)} prompt tokens + max_new_tokens={max_new_tokens}"
                         f"{f' + {k} virtual tokens' if k else ''} exceed the context "
                         f"block_size={config.block_size}; use max_new_tokens <= "
                         f"{max(0, config.block_size - k - idx.size(1))} or a shorter prompt")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__} {temperature!r:.40}")
    if not (math.isfinite(temperature) and temperature >= 0):  # inf would sample uniform noise
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral):
            raise TypeError(f"top_k must be an int or None, got {type(top_k).__name__} {top_k!r:.40}")
        if not 1 <= top_k <= config.vocab_size:
            raise ValueError(f"top_k must be in 1..{config.vocab_size}, got {top_k}")
        if temperature == 0:  # transformers warns and ignores it; here it is an error
            raise ValueError(f"top_k={top_k} has no effect at temperature=0 (greedy decoding takes the most "
                             f"likely token); give temperature > 0 to sample from the top_k, or top_k=None")


class LanguageModel(nn.Module):
    """What train(), evaluate() and generate() need: ``model(idx, kv_cache=None) -> logits``
    and ``gpt_config``, the GPTConfig of the network inside (a method's model keeps its own
    config in ``.config``). GPT and every method's model share it."""

    @torch.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 0.0, top_k: int | None = None,
                 use_cache: bool = True, stop_id: int | None = None, generator: torch.Generator | None = None):
        """Continue idx (B, T) by max_new_tokens tokens; returns (B, T + new).

        temperature 0 is greedy (argmax); otherwise (finite, > 0) sample from
        softmax(logits / temperature), keeping the top_k most likely tokens when top_k is given
        (top_k with temperature 0 is an error: greedy decoding would ignore it). With use_cache the keys
        and values of earlier positions are kept (one new token per step); without it the
        whole sequence is run again each step: both give the same tokens (a test checks it).
        Generation stops early once every row has produced stop_id.
        """
        check_generate(idx, max_new_tokens, temperature, top_k, self.gpt_config, getattr(self, "num_virtual_tokens", 0))
        was_training = self.training
        self.eval()
        cache = KVCache(self.gpt_config.n_layer) if use_cache else None
        done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
        step_input = idx
        for _ in range(max_new_tokens):
            logits = self(step_input if use_cache else idx, kv_cache=cache)[:, -1, :]  # (B, V)
            if temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)  # (B, V)
                nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)  # (B, T + 1)
            step_input = nxt
            if stop_id is not None:
                done |= nxt.squeeze(1) == stop_id
                if bool(done.all()):
                    break
        self.train(was_training)
        return idx


class GPT(LanguageModel):
    def __init__(self, config: GPTConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.block_size, config.n_embd)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd)
        self.reset_parameters(seed)

    @property
    def gpt_config(self) -> GPTConfig:
        return self.config

    def reset_parameters(self, seed: int = 0):
        """GPT-2's init: N(0, 0.02) weights, zero biases, residual outputs scaled by 1/sqrt(2·n_layer)."""
        g = torch.Generator().manual_seed(seed)
        for name, p in self.named_parameters():
            with torch.no_grad():
                if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                    p.copy_(torch.randn(p.shape, generator=g) * std)

    def forward(self, idx, prompt=None, prefixes=None, kv_cache: KVCache | None = None):
        """idx (B, T) token ids -> logits (B, T, V) for the real tokens only.

        prompt (k, C), or (B, k, C) one per row: prompt tuning's virtual tokens, put before the token embeddings
        (inserted once: when kv_cache already holds them they are not inserted again).
        prefixes: one (P_k, P_v) pair of (k, C) or (B, k, C) tensors per block, prefix tuning.
        """
        check_token_ids(idx, self.config.vocab_size)
        B, T = idx.shape
        past = kv_cache.n_real if kv_cache is not None else 0
        insert_prompt = prompt is not None and (kv_cache is None or kv_cache.length == 0)
        k_virtual = (prompt.size(-2) if insert_prompt else 0) + (kv_cache.n_virtual if kv_cache else 0)
        k_prefix = prefixes[0][0].size(-2) if prefixes is not None else 0
        if prefixes is not None and len(prefixes) != self.config.n_layer:
            raise ValueError(f"prefixes needs one (P_k, P_v) pair per block: {self.config.n_layer}, got {len(prefixes)}")
        if max(k_virtual, k_prefix) + past + T > self.config.block_size:
            raise ValueError(
                f"{max(k_virtual, k_prefix)} virtual + {past + T} real positions exceed the context "
                f"block_size={self.config.block_size}; use a shorter text or fewer virtual tokens"
            )
        k = max(k_virtual, k_prefix)  # as PEFT on GPT-2: real tokens are numbered from k
        pos = torch.arange(k + past, k + past + T, device=idx.device)  # (T,) positions k+past..k+past+T-1
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        if insert_prompt:  # prompt tuning: X' = [x'1..x'k; x1..xm], x'_i = P_i + wpe[i]
            virtual = prompt + self.wpe(torch.arange(prompt.size(-2), device=idx.device))  # ([B,] k, C)
            x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)  # (B, k + T, C)
        for i, block in enumerate(self.h):
            prefix = prefixes[i] if prefixes is not None else None
            cache = kv_cache.layers[i] if kv_cache is not None else None
            x = block(x, prefix=prefix, cache=cache)  # (B, k + T, C)
        if kv_cache is not None:
            kv_cache.n_virtual += prompt.size(-2) if insert_prompt else 0
            kv_cache.n_real += T
        if insert_prompt:
            x = x[:, prompt.size(-2):, :]  # (B, T, C): the virtual positions are not predicted
        x = self.ln_f(x)
        return x @ self.wte.weight.T  # (B, T, V), the head tied to the token embedding
