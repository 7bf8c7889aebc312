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

``step`` is the formula above, line for line, one tensor at a time. Under ``minituner.fused()``
(``compare`` and ``sweep`` turn it on) the same update is written for all tensors at once. m and v
live in two flat buffers (each tensor's m and v are views into them); when every tensor got a
gradient and all share the same t (every step of train()), the update runs on the flat buffers:
the gradients are gathered with one ``cat``, m, v and the step are computed with a few
whole-buffer ops, and the step is added to the weights with one multi-tensor add, instead of about
ten small ops per tensor. That pays where tensors are many and small (the shipped base: 68
tensors, 208k numbers). Where many numbers train, each op's pass over all of them is the cost,
and the ``cat`` is one pass more than the multi-tensor ops need (at GPT-2-small's size the flat
update was slower than both the multi-tensor one and torch.optim.AdamW). So the flat buffers are
used up to FLAT_MAX trained numbers, the multi-tensor ops above (``torch._foreach_*``).
tests/test_optim.py holds all three ways equal to ``torch.optim.AdamW``.
"""

from __future__ import annotations

import math

import torch

from . import functional as F

FLAT_MAX = 1 << 20  # trained numbers up to which the flat-buffer update is used (see above)


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
        if len({(p.dtype, p.device) for p in self.params}) > 1:
            raise ValueError("AdamW needs every trained tensor on one device with one dtype, got "
                             f"{sorted({(str(p.dtype), str(p.device)) for p in self.params})}")
        self.t = [0] * len(self.params)  # each tensor's step count
        self.sizes = [p.numel() for p in self.params]
        self.m_flat = self.params[0].new_zeros(sum(self.sizes))  # (n,): every tensor's m, end to end
        self.v_flat = torch.zeros_like(self.m_flat)
        self.m = [m.view_as(p) for m, p in zip(self.m_flat.split(self.sizes), self.params)]  # views
        self.v = [v.view_as(p) for v, p in zip(self.v_flat.split(self.sizes), self.params)]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        live = [i for i, p in enumerate(self.params) if p.grad is not None]  # tensors that got a gradient
        for i in live:
            self.t[i] += 1
        if F.FUSED:
            return self._step_fused(live)
        b1, b2, lr, wd, eps = *self.betas, self.lr, self.weight_decay, self.eps
        for i in live:
            θ, g, m, v, t = self.params[i], self.params[i].grad, self.m[i], self.v[i], self.t[i]
            m.copy_(b1 * m + (1 - b1) * g)  # m ← β1·m + (1 − β1)·g
            v.copy_(b2 * v + (1 - b2) * g**2)  # v ← β2·v + (1 − β2)·g²
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)  # bias correction: m, v start at 0
            θ -= lr * wd * θ  # θ ← θ − lr·λ·θ
            θ -= lr * m_hat / (v_hat.sqrt() + eps)  # θ ← θ − lr·m̂ / (sqrt(v̂) + ε)

    def _step_fused(self, live):
        if len(live) == len(self.params) and len(set(self.t)) == 1 and self.m_flat.numel() <= FLAT_MAX:
            self._step_flat()
        else:
            self._step_each(live)

    def _step_flat(self):
        """The update on the flat buffers: one op per line of the formula for all tensors."""
        b1, b2, t = *self.betas, self.t[0]
        g = torch.cat([p.grad.reshape(-1) for p in self.params])  # (n,)
        self.m_flat.lerp_(g, 1 - b1)  # m ← β1·m + (1 − β1)·g, as m + (1 − β1)·(g − m)
        self.v_flat.mul_(b2).addcmul_(g, g, value=1 - b2)  # v ← β2·v + (1 − β2)·g²
        if self.weight_decay:
            torch._foreach_mul_(self.params, 1 - self.lr * self.weight_decay)  # θ ← θ − lr·λ·θ
        # θ ← θ − lr·m̂/(sqrt(v̂) + ε) with m̂ = m/c1, v̂ = v/c2 (c = 1 − βᵗ), written as
        # θ ← θ − (lr·sqrt(c2)/c1)·m/(sqrt(v) + ε·sqrt(c2)): the same number, two passes fewer
        c1, c2 = 1 - b1**t, 1 - b2**t
        step = self.v_flat.sqrt().add_(self.eps * math.sqrt(c2))
        torch.div(self.m_flat, step, out=step)  # (n,): m/(sqrt(v) + ε·sqrt(c2))
        torch._foreach_add_(self.params, [s.view_as(p) for s, p in zip(step.split(self.sizes), self.params)],
                            alpha=-self.lr * math.sqrt(c2) / c1)

    def _step_each(self, live):
        """The same update tensor by tensor (multi-tensor ops), each with its own t."""
        b1, b2 = self.betas
        params, grads = [self.params[i] for i in live], [self.params[i].grad for i in live]
        m, v = [self.m[i] for i in live], [self.v[i] for i in live]
        torch._foreach_lerp_(m, grads, 1 - b1)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
        torch._foreach_mul_(params, 1 - self.lr * self.weight_decay)
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(1 - b2 ** self.t[i]) for i in live])
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, m, denom, [-self.lr / (1 - b1 ** self.t[i]) for i in live])

    def state_bytes(self) -> int:
        """Bytes held by the moments m and v: 2 × (trainable elements) × element size."""
        return sum(t.numel() * t.element_size() for t in self.m + self.v)
