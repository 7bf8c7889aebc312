"""The tensor math of the tiny GPT, written out: no nn.Linear, no fused kernels.

Shapes: B batch, T tokens, C channels (= d, the model width), nh heads,
hs = C // nh head size, V vocabulary, P prefix (virtual) positions.

Each function states its formula; tests/test_functional.py checks each one
against PyTorch's own implementation as the oracle.
"""

from __future__ import annotations

import math

import torch


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """The article's ``Y = WX`` (§1), in the row-vector form code uses.

    Article (column vectors): Y = W X with X (in, N) and W (out, in).
    Code (rows are tokens):   y = x Wᵀ + b with x (..., in), W (out, in), b (out,).
    Both are the same numbers: (W X)ᵀ = Xᵀ Wᵀ.
    """
    y = x @ W.T  # (..., out)
    if b is not None:
        y = y + b
    return y


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
    """LayerNorm over the last dimension (Ba et al. 2016).

    y = (x − mean(x)) / sqrt(var(x) + eps) · weight + bias, var is the biased variance.
    x (..., C), weight (C,), bias (C,) -> (..., C)
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU in GPT-2's tanh form (Hendrycks & Gimpel 2016).

    gelu(x) = 0.5 · x · (1 + tanh(sqrt(2/π) · (x + 0.044715 · x³)))
    """
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


class _Softmax(torch.autograd.Function):
    """softmax with its backward written out, so autograd keeps one tensor, not five.

    forward:  y = exp(x − max x) / Σ exp(x − max x)
    backward: ∂L/∂x = y ⊙ (g − Σ_j g_j y_j), with g = ∂L/∂y (the softmax Jacobian
              diag(y) − y yᵀ applied to g). Attention's softmax is the largest tensor of a
              step, so this halves its cost; tests check both directions against torch's.
    """

    @staticmethod
    def forward(ctx, x, dim):
        y = x - x.amax(dim=dim, keepdim=True)
        y.exp_()
        y /= y.sum(dim=dim, keepdim=True)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(dim=ctx.dim, keepdim=True)), None


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """softmax(x)_i = exp(x_i − max x) / Σ_j exp(x_j − max x); the max keeps exp finite."""
    return _Softmax.apply(x, dim)


def causal_attention(q, k, v, n_prefix: int = 0) -> torch.Tensor:
    """Scaled dot-product attention with a causal mask and an optional prefix.

    Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(hs) + M) V   (Vaswani et al. 2017)

    q: (B, nh, Tq, hs), the queries of the newest Tq tokens;
    k, v: (B, nh, P + Tk, hs), where the first P = n_prefix rows are a prefix
    (prefix tuning's [P_k; K], [P_v; V]) and the last Tk rows are the tokens,
    whose newest Tq rows belong to the queries (Tk > Tq when a cache holds the past).
    Mask M: query i sees every prefix row and token j only if j <= Tk − Tq + i.
    Returns (B, nh, Tq, hs).
    """
    Tq, hs = q.size(-2), q.size(-1)
    Tk = k.size(-2) - n_prefix
    att = (q * (1.0 / math.sqrt(hs))) @ k.transpose(-2, -1)  # (B, nh, Tq, P + Tk)
    rows = torch.arange(Tq, device=q.device).unsqueeze(1) + (Tk - Tq)  # (Tq, 1)
    cols = torch.arange(Tk, device=q.device).unsqueeze(0)  # (1, Tk)
    seen = torch.cat([torch.ones(Tq, n_prefix, dtype=torch.bool, device=q.device), cols <= rows], dim=1)  # (Tq, P + Tk)
    att.masked_fill_(~seen, float("-inf"))  # in place: matmul keeps q and k, not att, for its backward
    return softmax(att, dim=-1) @ v  # (B, nh, Tq, hs)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None):
    """Mean negative log-likelihood of the targets, over the positions the mask keeps.

    loss = Σ_t m_t · (−log softmax(z_t)[y_t]) / Σ_t m_t   (article §4 step 4)
    log softmax(z)[y] = z_y − max z − log Σ_j exp(z_j − max z)
    logits (B, T, V), targets (B, T) long, mask (B, T) of 0/1 (None: every position).
    With the tasks' masks only answer tokens count: the prompt is given, not learned.
    """
    z = logits - logits.amax(dim=-1, keepdim=True)  # (B, T, V)
    logp = z - torch.log(torch.exp(z).sum(dim=-1, keepdim=True))  # (B, T, V)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    if mask is None:
        return nll.mean()
    mask = mask.to(nll.dtype)
    n = mask.sum()
    if n == 0:
        raise ValueError("the loss mask keeps no position: there is nothing to learn from")
    return (nll * mask).sum() / n
