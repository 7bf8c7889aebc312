"""AdamW written out (Loshchilov & Hutter 2019), the article's §4 step 6.

For each trainable tensor θ with gradient g, at its step t (from 1; a tensor that got no
gradient this step is left alone and its t does not advance, as in torch.optim.AdamW):
    m ← β1·m + (1 − β1)·g                 first moment (a running mean of g)
    v ← β2·v + (1 − β2)·g²                second moment (a running mean of g²)
    m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ)  bias correction: m, v start at 0
    θ ← θ − lr·λ·θ                        decoupled weight decay
    θ ← θ − lr·m̂ / (sqrt(v̂) + ε)

State: m and v, two tensors the size of each trainable tensor — 2 × trainable × 4
bytes in float32. That is why parameter-efficient methods also save optimiser memory:
the optimiser only ever sees the tensors that require gradients.

The update runs on all tensors at once with PyTorch's multi-tensor ops (``torch._foreach_*``:
one call per line above for the whole list, not one per tensor), which is how
``torch.optim.AdamW`` does it by default; tests/test_optim.py holds the two equal.
"""

from __future__ import annotations

import math

import torch


class AdamW:
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("AdamW got no tensor that requires grad: nothing would be trained")
        if lr <= 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"need lr > 0, eps > 0, weight_decay >= 0 and 0 <= betas < 1; got "
                             f"lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = [0] * len(self.params)  # each tensor's step count
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        b1, b2 = self.betas
        live = [i for i, p in enumerate(self.params) if p.grad is not None]  # tensors that got a gradient
        for i in live:
            self.t[i] += 1
        params, grads = [self.params[i] for i in live], [self.params[i].grad for i in live]
        m, v = [self.m[i] for i in live], [self.v[i] for i in live]
        torch._foreach_lerp_(m, grads, 1 - b1)  # m ← β1·m + (1 − β1)·g, as m + (1 − β1)·(g − m)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)  # v ← β2·v + (1 − β2)·g²
        torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)  # θ ← θ − lr·λ·θ
        # θ ← θ − lr·m̂/(sqrt(v̂) + ε), with m̂ = m/(1 − β1ᵗ) and sqrt(v̂) = sqrt(v)/sqrt(1 − β2ᵗ)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(1 - b2 ** self.t[i]) for i in live])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, [-self.lr / (1 - b1 ** self.t[i]) for i in live])

    def state_bytes(self) -> int:
        """Bytes held by the moments m and v: 2 × (trainable elements) × element size."""
        return sum(t.numel() * t.element_size() for t in self.m + self.v)
