"""Article §3.2, prefix tuning: W' = [Wp; W], i.e. K' = [P_k; K], V' = [P_v; V] at every layer.

Each check takes an optional model (the tests pass a small random GPT); ``minituner
verify`` runs them on the shipped base. Prefixes are drawn with a seed, standing in for
trained ones. The attention by hand uses ``torch.softmax`` as the oracle.
"""

from __future__ import annotations

import math

import torch

from .. import functional as F
from ..checkpoint import load_base
from ..methods.shortcuts import prefix_tuning, ptuning_v2
from . import check, inputs


def heads(t: torch.Tensor, nh: int) -> torch.Tensor:
    """(B, T, C) -> (B, nh, T, hs)."""
    B, T, C = t.shape
    return t.view(B, T, nh, C // nh).transpose(1, 2)  # (B, nh, T, hs)


def attention_by_hand(attn, x: torch.Tensor, pk: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    """One attention layer over K' = [P_k; K], V' = [P_v; V], written out: x (B, T, C) -> (B, T, C)."""
    B, T, C = x.shape
    k, nh = pk.size(0), attn.n_head
    Q = x @ attn.q_proj.weight.T + attn.q_proj.bias  # (B, T, C)
    K = torch.cat([pk.expand(B, k, C), x @ attn.k_proj.weight.T + attn.k_proj.bias], dim=1)  # (B, k + T, C)
    V = torch.cat([pv.expand(B, k, C), x @ attn.v_proj.weight.T + attn.v_proj.bias], dim=1)  # (B, k + T, C)
    S = heads(Q, nh) @ heads(K, nh).transpose(-2, -1) / math.sqrt(C // nh)  # (B, nh, T, k + T)
    seen = torch.cat([torch.ones(T, k, dtype=torch.bool), torch.ones(T, T, dtype=torch.bool).tril()], dim=1)
    A = torch.softmax(S.masked_fill(~seen, float("-inf")), dim=-1) @ heads(V, nh)  # (B, nh, T, hs)
    return A.transpose(1, 2).reshape(B, T, C) @ attn.o_proj.weight.T + attn.o_proj.bias  # (B, T, C)


@check("§3.2", "prefix tuning: attention(Q, [P_k; K], [P_v; V]) = the same by hand, every layer", source="article")
@torch.no_grad()
def prefix_is_concatenation(base=None):
    model = ptuning_v2(base or load_base(), num_virtual_tokens=6, seed=1)
    idx = inputs(4)  # (B, T)
    x = model.base.wte(idx) + model.base.wpe(torch.arange(6, 6 + idx.size(1)))  # (B, T, C): positions k..k+T-1
    worst = 0.0
    for block, (pk, pv) in zip(model.base.h, model.prefixes()):
        h = block.ln_1(x)  # (B, T, C): this layer's attention input
        worst = max(worst, (block.attn(h, prefix=(pk, pv)) - attention_by_hand(block.attn, h, pk, pv)).abs().max().item())
        x = block(x, prefix=(pk, pv))  # (B, T, C)
    return worst, 1e-5


@check("§3.2", "prefix tuning with k = 0 (P_k, P_v empty) is the base, exactly", source="added")
@torch.no_grad()
def empty_prefix_is_base(base=None):
    base = base or load_base()
    idx = inputs(4)
    empty = torch.zeros(0, base.config.n_embd)  # (0, C)
    return (base(idx, prefixes=[(empty, empty)] * base.config.n_layer) - base(idx)).abs().max().item(), 0.0


@check("§3.2", "a zero prefix is no no-op: each row's weights shrink by Z / (Z + k)", source="added")
@torch.no_grad()
def zero_prefix_takes_a_share(base=None):
    """k zero keys score 0 and zero values add nothing, so softmax([0]*k, s) · [0; V] = (softmax(s) · V) · Z / (Z + k),
    Z = Σ_j exp(s_j) over the positions a query sees. Checked on the first layer's real queries."""
    base, k = base or load_base(), 4
    idx = inputs(4)  # (B, T)
    x = base.wte(idx) + base.wpe(torch.arange(idx.size(1)))  # (B, T, C)
    attn, h = base.h[0].attn, base.h[0].ln_1(x)
    q, key, v = (heads(p(h), attn.n_head) for p in (attn.q_proj, attn.k_proj, attn.v_proj))  # (B, nh, T, hs)
    zeros = torch.zeros_like(key[:, :, :k])  # (B, nh, k, hs)
    with_zeros = F.causal_attention(q, torch.cat([zeros, key], 2), torch.cat([zeros, v], 2), n_prefix=k)
    T = q.size(2)
    s = (q @ key.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    share = 1.0 / (1.0 + k * torch.exp(-torch.logsumexp(s, dim=-1, keepdim=True)))  # (B, nh, T, 1): Z / (Z + k)
    return (with_zeros - F.causal_attention(q, key, v) * share).abs().max().item(), 1e-5


@check("§3.2", "prefix tuning: fold() P = MLP(E) into plain prefixes, same logits", source="added")
@torch.no_grad()
def folded_prefix_same_logits(base=None):
    model = prefix_tuning(base or load_base(), num_virtual_tokens=6, seed=1)
    idx = inputs(4)
    before = model(idx)  # (B, T, V) through the MLP
    return (model.fold()(idx) - before).abs().max().item(), 1e-5


@check("§3.2", "prefix tuning: generate() with the KV cache = without it (same tokens)", source="added")
def prefix_cache_same_tokens(base=None):
    """Greedy continuations of real prompts; the residual counts the tokens that differ."""
    model = prefix_tuning(base or load_base(), num_virtual_tokens=6, seed=1)
    idx = inputs(4)[:, :20]  # (B, 20)
    return float((model.generate(idx, 12, use_cache=True) != model.generate(idx, 12, use_cache=False)).sum().item()), 0.0


@check("§3.2", "prefix tuning adds no rows to any W: same weights, same output shape", source="added")
@torch.no_grad()
def no_rows_added_to_w(base=None):
    """docs/errata.md 5: W' = [Wp; W] read as algebra would make W taller and Y longer. Every tensor of
    the base keeps its name, shape and values, the logits keep their shape (B, T, V), and what trains is
    one (P_k, P_v) pair of k rows per layer. Returns the number of mismatches."""
    base = base or load_base()
    model = ptuning_v2(base, num_virtual_tokens=6, seed=1)
    idx = inputs(4)
    ours, theirs = base.state_dict(), model.base.state_dict()
    mismatches = len(set(ours) ^ set(theirs)) + sum(not torch.equal(t, theirs[n]) for n, t in ours.items() if n in theirs)
    mismatches += model(idx).shape != base(idx).shape
    C = base.config.n_embd
    mismatches += sum((pk.shape, pv.shape) != ((6, C), (6, C)) for pk, pv in model.prefixes())
    return float(mismatches), 0.0
