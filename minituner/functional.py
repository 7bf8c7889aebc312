"""The tensor math of the tiny GPT, written out: no nn.Linear, no fused kernels.

Shapes: B batch, T tokens, C channels (= d, the model width), nh heads,
hs = C // nh head size, V vocabulary, P prefix (virtual) positions, N = B·T rows.

Each op comes twice where speed asks for it:
- the plain forward (``layer_norm_plain``, ``gelu_plain``, ``causal_attention_plain``,
  ``cross_entropy_plain``): the formula as a reader writes it; autograd derives its backward;
- the op the model uses (``layer_norm``, ``gelu``, ``causal_attention``, ``cross_entropy``,
  ``embedding``): the same forward inside an autograd ``Function`` whose backward is derived
  by hand (the formula is in its docstring). Autograd would keep every intermediate of the
  plain forward and replay a node for each; the hand-written backward keeps the one or two
  tensors the formula needs and does the work in a few large ops (as llm.c does in C).
tests/test_functional.py checks each forward against PyTorch's own op and each backward
with ``torch.autograd.gradcheck`` in float64 against autograd of the plain forward.

Fusions (``fused()``, off unless asked): the bias inside the matmul (``addmm``), q, k and v as
one product (``stacked_linear``), LoRA's ΔW folded into W (``LoRALinear.as_weight``) and AdamW's
flat buffers give the same numbers (to the last bits) faster. Off, the line a lesson quotes is the
line that runs; ``minituner compare`` and ``sweep`` turn them on (tests hold both ways equal).
"""

from __future__ import annotations

import contextlib
import functools
import math

import torch

FUSED = False  # the fused equivalents above: read at every call, set only through fused()


@contextlib.contextmanager
def fused(on: bool = True):
    """Within the block, run the fused equivalents (on=True) or the lines as written (on=False)."""
    global FUSED
    before, FUSED = FUSED, bool(on)
    try:
        yield
    finally:
        FUSED = before


# ---------------------------------------------------------------- linear and embedding


def linear(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """The article's ``Y = WX`` (§1), in the row-vector form code uses.

    Article (column vectors): Y = W X with X (in, N) and W (out, in).
    Code (rows are tokens):   y = x Wᵀ + b with x (..., in), W (out, in), b (out,).
    Both are the same numbers: (W X)ᵀ = Xᵀ Wᵀ. Under ``fused()`` the bias rides inside the
    matmul (``addmm``: b + x Wᵀ in one op) on the 2-D view x (N, in).
    """
    if b is None:
        return x @ W.T  # (..., out)
    if FUSED:
        y = torch.addmm(b, x.reshape(-1, x.size(-1)), W.T)  # (N, out) = b + x Wᵀ
        return y.view(*x.shape[:-1], W.size(0))  # (..., out)
    y = x @ W.T + b  # (..., out)
    return y


class _StackedLinear(torch.autograd.Function):
    """Several Linears that read the same x, as one product (GPT-2's c_attn holds q, k, v so).

    forward:  y = x Wᵀ + b with W = [W_1; …; W_n] (Σ out_i, in), b = [b_1; …; b_n]
    backward (G = ∂L/∂y, G_i its columns of W_i):
        ∂L/∂x = G W     ∂L/∂W_i = G_iᵀ x     ∂L/∂b_i = Σ_rows G_i
    One large product instead of n small ones, each way. The stacked W is made again in the
    backward rather than kept, so the step keeps what n separate Linears keep: x and the W_i.
    """

    @staticmethod
    def forward(ctx, x, *weights_and_biases):
        Ws, bs = weights_and_biases[0::2], weights_and_biases[1::2]
        x2 = x.reshape(-1, x.size(-1))  # (N, in)
        need_x, need_W = any(ctx.needs_input_grad[1::2]), ctx.needs_input_grad[0]  # for ∂L/∂W_i, for ∂L/∂x
        ctx.save_for_backward(x2 if need_x else None, *(W if need_W else None for W in Ws))
        ctx.sizes = [W.size(0) for W in Ws]
        ctx.x_shape = x.shape
        y = torch.addmm(torch.cat(bs), x2, torch.cat(Ws).T)  # (N, Σ out_i)
        return y.view(*x.shape[:-1], y.size(1))  # (..., Σ out_i)

    @staticmethod
    def backward(ctx, g):
        x2, *Ws = ctx.saved_tensors
        g2 = g.reshape(-1, g.size(-1))  # (N, Σ out_i)
        sizes = ctx.sizes
        dx = (g2 @ torch.cat(Ws)).view(ctx.x_shape) if ctx.needs_input_grad[0] else None  # (..., in)
        dW = (g2.T @ x2).split(sizes) if any(ctx.needs_input_grad[1::2]) else [None] * len(Ws)  # (out_i, in) each
        db = g2.sum(0).split(sizes) if any(ctx.needs_input_grad[2::2]) else [None] * len(Ws)  # (out_i,) each
        return dx, *(t for pair in zip(dW, db) for t in pair)


def stacked_linear(x: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """x [W_1; …; W_n]ᵀ + [b_1; …; b_n] for parts [(W_i (out_i, in), b_i (out_i,))]: (..., in) -> (..., Σ out_i),
    the columns of part i equal to ``linear(x, W_i, b_i)`` (``_StackedLinear``)."""
    return _StackedLinear.apply(x, *(t for W, b in parts for t in (W, b)))


class _Embedding(torch.autograd.Function):
    """Row lookup with a deterministic backward.

    forward:  y[n] = W[idx[n]]                       idx (...,) ids, W (num, C) -> (..., C)
    backward: ∂L/∂W[r] = Σ_{n: idx[n] = r} g[n]     (rows added into their id's row)
    ``W[idx]``'s own backward (an accumulating index_put) may add a row's contributions in a
    different order from run to run on several threads, so float sums differ in the last bits
    and same-seed runs drift apart. Here ``index_add_`` adds them in the order of the ids
    (serially on the CPU), so the same seed gives the same bits.
    """

    @staticmethod
    def forward(ctx, idx, W):
        ctx.save_for_backward(idx)
        ctx.num = W.size(0)
        return W[idx]  # (..., C)

    @staticmethod
    def backward(ctx, g):
        if not ctx.needs_input_grad[1]:
            return None, None
        (idx,) = ctx.saved_tensors
        g2 = g.reshape(-1, g.size(-1))  # (N, C)
        dW = torch.zeros(ctx.num, g2.size(1), dtype=g.dtype, device=g.device)  # (num, C)
        return None, dW.index_add_(0, idx.reshape(-1), g2)


def embedding(idx: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """W[idx]: row idx of the table W (num, C) for every id, (...,) -> (..., C)."""
    return _Embedding.apply(idx, W)


# ---------------------------------------------------------------- layer norm


def layer_norm_plain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
    """LayerNorm over the last dimension (Ba et al. 2016).

    y = (x − mean(x)) / sqrt(var(x) + eps) · weight + bias, var is the biased variance.
    x (..., C), weight (C,), bias (C,) -> (..., C)
    """
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


class _LayerNorm(torch.autograd.Function):
    """LayerNorm with its backward written out; saves x̂ and 1/σ (and the weight).

    forward:  μ = mean(x), σ = sqrt(var(x) + eps), x̂ = (x − μ)/σ, y = x̂ ⊙ w + b
    backward (g = ∂L/∂y, sums over the C channels of one row, means written ⟨·⟩):
        ∂L/∂b = Σ_rows g          ∂L/∂w = Σ_rows g ⊙ x̂          ĝ = g ⊙ w
        ∂L/∂x = (ĝ − ⟨ĝ⟩ − x̂ ⊙ ⟨ĝ ⊙ x̂⟩) / σ
    (x̂ depends on x directly and through μ and σ: the two means are those two paths.)
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xhat = x - x.mean(dim=-1, keepdim=True)  # (..., C): x − μ
        rstd = (xhat * xhat).mean(dim=-1, keepdim=True).add_(eps).rsqrt_()  # (..., 1): 1/σ
        xhat.mul_(rstd)  # (..., C): x̂
        ctx.save_for_backward(xhat, rstd, weight)
        return torch.addcmul(bias, xhat, weight)  # (..., C): b + x̂ ⊙ w

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved_tensors
        C = g.size(-1)
        dw = db = dx = None
        if ctx.needs_input_grad[1]:
            dw = (g * xhat).reshape(-1, C).sum(0)  # (C,)
        if ctx.needs_input_grad[2]:
            db = g.reshape(-1, C).sum(0)  # (C,)
        if ctx.needs_input_grad[0]:
            ghat = g * weight  # (..., C)
            dx = ghat - ghat.mean(-1, keepdim=True)  # (..., C)
            dx.sub_(xhat * (ghat * xhat).mean(-1, keepdim=True)).mul_(rstd)
        return dx, dw, db, None


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5):
    """``layer_norm_plain``'s numbers with a hand-written backward (``_LayerNorm``)."""
    return _LayerNorm.apply(x, weight, bias, eps)


# ---------------------------------------------------------------- GELU

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


def gelu_plain(x: torch.Tensor) -> torch.Tensor:
    """GELU in GPT-2's tanh form (Hendrycks & Gimpel 2016).

    gelu(x) = 0.5 · x · (1 + tanh(sqrt(2/π) · (x + 0.044715 · x³)))
    """
    return 0.5 * x * (1.0 + torch.tanh(_GELU_C * (x + _GELU_A * x**3)))


class _GELU(torch.autograd.Function):
    """GELU with its backward written out; saves x and s.

    0.5·(1 + tanh(u)) = σ(2u) (σ the logistic sigmoid), so with v = 2u = 2c·(x + a·x³),
    c = sqrt(2/π), a = 0.044715:
    forward:  y = x · s,  s = σ(v)
    backward: ∂y/∂x = s + x · s·(1 − s) · 2c·(1 + 3a·x²),  ∂L/∂x = g ⊙ ∂y/∂x
    The same numbers as the tanh form; σ costs a third of tanh on the CPU, and keeping s
    spares the backward a second one.
    """

    @staticmethod
    def forward(ctx, x):
        s = (x * x).mul_(2 * _GELU_C * _GELU_A).add_(2 * _GELU_C).mul_(x).sigmoid_()  # σ(2c·(x + a·x³))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        dv = (x * x).mul_(6 * _GELU_C * _GELU_A).add_(2 * _GELU_C)  # ∂v/∂x = 2c·(1 + 3a·x²)
        return (1.0 - s).mul_(s).mul_(x).mul_(dv).add_(s).mul_(g)  # (s + x·s·(1 − s)·∂v/∂x) ⊙ g


def gelu(x: torch.Tensor) -> torch.Tensor:
    """``gelu_plain``'s numbers with a hand-written backward (``_GELU``)."""
    return _GELU.apply(x)


# ---------------------------------------------------------------- softmax and attention


class _Softmax(torch.autograd.Function):
    """softmax with its backward written out, so autograd keeps one tensor, not five.

    forward:  y = exp(x − max x) / Σ exp(x − max x)
    backward: ∂L/∂x = y ⊙ (g − Σ_j g_j y_j), with g = ∂L/∂y (the softmax Jacobian
              diag(y) − y yᵀ applied to g).
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


def causal_mask(Tq: int, Tk: int, n_prefix: int = 0, device=None) -> torch.Tensor:
    """The mask M as booleans (Tq, P + Tk): True where query i may look.

    Query i sees every prefix row and token j only if j <= Tk − Tq + i.
    """
    rows = torch.arange(Tq, device=device).unsqueeze(1) + (Tk - Tq)  # (Tq, 1)
    cols = torch.arange(Tk, device=device).unsqueeze(0)  # (1, Tk)
    return torch.cat([torch.ones(Tq, n_prefix, dtype=torch.bool, device=device), cols <= rows], dim=1)


@functools.lru_cache(maxsize=64)
def _mask_bias(Tq: int, Tk: int, n_prefix: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """M as an additive bias (Tq, P + Tk): 0 where seen, −inf where not. Built once per shape."""
    bias = torch.zeros(Tq, n_prefix + Tk, dtype=dtype, device=device)
    return bias.masked_fill_(~causal_mask(Tq, Tk, n_prefix, device), float("-inf"))


def causal_attention_plain(q, k, v, n_prefix: int = 0) -> torch.Tensor:
    """Scaled dot-product attention with a causal mask and an optional prefix.

    Attention(Q, K, V) = softmax(Q Kᵀ / sqrt(hs) + M) V   (Vaswani et al. 2017)

    q: (B, nh, Tq, hs), the queries of the newest Tq tokens;
    k, v: (B, nh, P + Tk, hs), where the first P = n_prefix rows are a prefix
    (prefix tuning's [P_k; K], [P_v; V]) and the last Tk rows are the tokens,
    whose newest Tq rows belong to the queries (Tk > Tq when a cache holds the past).
    Mask M (``causal_mask``): query i sees every prefix row and token j only if j <= Tk − Tq + i.
    Returns (B, nh, Tq, hs).
    """
    Tq, hs = q.size(-2), q.size(-1)
    att = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, Tq, P + Tk)
    att = att.masked_fill(~causal_mask(Tq, k.size(-2) - n_prefix, n_prefix, q.device), float("-inf"))
    return torch.softmax(att, dim=-1) @ v  # (B, nh, Tq, hs)


class _CausalAttention(torch.autograd.Function):
    """Attention with its backward written out; saves q, k, v and the probabilities p.

    forward (s = 1/sqrt(hs), per batch and head):
        S = s·Q Kᵀ + M,   p = softmax(S) (row-wise),   Y = p V
    backward (G = ∂L/∂Y):
        ∂L/∂V = pᵀ G        ∂L/∂p = G Vᵀ
        ∂L/∂S = p ⊙ (∂L/∂p − D),  D_i = Σ_j (∂L/∂p)_ij p_ij = G_i · Y_i
                                                   (softmax's Jacobian; 0 where masked)
        ∂L/∂Q = s·(∂L/∂S) K  ∂L/∂K = s·(∂L/∂S)ᵀ Q
    D by its second form: Σ_j (G_i · V_j) p_ij = G_i · Σ_j p_ij V_j = G_i · Y_i, a sum over the
    hs channels of one row instead of over its P + Tk keys (FlashAttention's D, Dao et al. 2022).
    Heads ride in the batch dimension (B·nh) so each product is one bmm; the scale and
    the mask go into the first one (``baddbmm``: M + s·Q Kᵀ). The forward's softmax is
    torch's (one pass over the scores instead of four); its backward is the formula above.
    """

    @staticmethod
    def forward(ctx, q, k, v, n_prefix):
        B, nh, Tq, hs = q.shape
        L = k.size(-2)  # P + Tk keys
        scale = 1.0 / math.sqrt(hs)
        q3, k3, v3 = q.reshape(B * nh, Tq, hs), k.reshape(B * nh, L, hs), v.reshape(B * nh, L, hs)
        bias = _mask_bias(Tq, L - n_prefix, n_prefix, q.dtype, q.device)  # (Tq, L)
        scores = torch.baddbmm(bias, q3, k3.transpose(1, 2), alpha=scale)  # (B·nh, Tq, L): M + s·Q Kᵀ
        p = torch.softmax(scores, dim=-1)  # (B·nh, Tq, L): torch's one-pass softmax (the formula: _Softmax)
        y = torch.bmm(p, v3).view(B, nh, Tq, hs).transpose(1, 2).contiguous()  # (B, Tq, nh, hs): heads side by side
        ctx.save_for_backward(q3, k3, v3, p, y)  # y is also the output projection's input: kept once
        ctx.scale, ctx.shapes = scale, (q.shape, k.shape)
        return y.transpose(1, 2)  # (B, nh, Tq, hs), a view: y.transpose(1, 2).reshape(B, Tq, C) copies nothing

    @staticmethod
    def backward(ctx, g):
        q3, k3, v3, p, y = ctx.saved_tensors
        q_shape, k_shape = ctx.shapes
        g3 = g.reshape(q3.shape)  # (B·nh, Tq, hs)
        dq = dk = dv = None
        if ctx.needs_input_grad[2]:
            dv = torch.bmm(p.transpose(1, 2), g3).view(k_shape)  # (B, nh, L, hs)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            D = (g * y.transpose(1, 2)).sum(dim=-1).reshape(-1, q3.size(1), 1)  # (B·nh, Tq, 1): G·Y per row
            dS = torch.bmm(g3, v3.transpose(1, 2))  # (B·nh, Tq, L): ∂L/∂p
            dS.sub_(D).mul_(p)  # ∂L/∂S = p ⊙ (∂L/∂p − D)
            if ctx.needs_input_grad[0]:
                dq = torch.bmm(dS, k3).mul_(ctx.scale).view(q_shape)  # (B, nh, Tq, hs)
            if ctx.needs_input_grad[1]:
                dk = torch.bmm(dS.transpose(1, 2), q3).mul_(ctx.scale).view(k_shape)  # (B, nh, L, hs)
        return dq, dk, dv, None


def causal_attention(q, k, v, n_prefix: int = 0) -> torch.Tensor:
    """``causal_attention_plain``'s numbers with a hand-written backward (``_CausalAttention``).

    q (B, nh, Tq, hs), k and v (B, nh, P + Tk, hs) -> (B, nh, Tq, hs).
    """
    return _CausalAttention.apply(q, k, v, n_prefix)


# ---------------------------------------------------------------- the loss


def _check_mask(mask: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mask = mask.to(dtype)
    n = mask.sum()
    if n == 0:
        raise ValueError("the loss mask keeps no position: there is nothing to learn from")
    return mask, n


def cross_entropy_plain(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None):
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
    mask, n = _check_mask(mask, nll.dtype)
    return (nll * mask).sum() / n


class _CrossEntropy(torch.autograd.Function):
    """The masked mean NLL with its backward written out; saves the softmax p and the weights.

    forward (row t, weight w_t = m_t / Σ m):  loss = Σ_t w_t·(log Σ_j exp z_tj − z_t,y_t)
    backward: ∂loss/∂z_tj = w_t·(p_tj − [j = y_t]),  p_t = softmax(z_t)
    """

    @staticmethod
    def forward(ctx, logits, targets, weights):
        logp = torch.log_softmax(logits, dim=-1)  # (B, T, V): z − log Σ_j exp z_j, in one pass
        nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
        ctx.save_for_backward(logp.exp_(), targets, weights)  # p = softmax(z)
        return (nll * weights).sum()

    @staticmethod
    def backward(ctx, g):
        p, targets, weights = ctx.saved_tensors
        w = (weights * g).unsqueeze(-1)  # (B, T, 1): the loss's gradient per row
        dz = p * w  # (B, T, V)
        return dz.scatter_add_(-1, targets.unsqueeze(-1), -w), None, None


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """−log softmax(z_t)[y_t] at every position, no reduction: logits (B, T, V), targets (B, T) -> (B, T).
    The same numbers as ``_CrossEntropy``'s forward before its weighted sum."""
    return -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None):
    """``cross_entropy_plain``'s numbers with a hand-written backward (``_CrossEntropy``).

    logits (B, T, V), targets (B, T) long, mask (B, T) of 0/1 (None: every position) -> scalar.
    """
    if mask is None:
        weights = torch.full(targets.shape, 1.0 / targets.numel(), dtype=logits.dtype, device=logits.device)
    else:
        mask, n = _check_mask(mask, logits.dtype)
        weights = mask / n  # (B, T)
    return _CrossEntropy.apply(logits, targets, weights)
