"""After the article: methods that train vectors only. BitFit (only the biases b of Y = WX + b)
and (IA)³ (l_k ⊙ K, l_v ⊙ V, l_ff ⊙ hidden, folded into W by diag(l))."""

from __future__ import annotations

import torch

from ..checkpoint import load_base
from ..methods.bitfit import BitFitConfig
from ..methods.ia3 import IA3Config
from ..model import count_parameters
from . import check, inputs


def perturb(model, seed: int, std: float = 0.1):
    """Move every trainable tensor by seeded noise, as training would (a fresh adapter is often a no-op)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * std)
    return model


def _build(config):
    from ..methods import get_peft_model

    base = load_base()
    return base, get_peft_model(base, config)


def _fresh_residual(config) -> float:
    """Largest |logit difference| between a fresh model of this config and its base."""
    base, model = _build(config)
    x = inputs()
    return (model(x) - base(x)).abs().max().item()


@check("BitFit", "fresh model = base: W₀ frozen, b starts at b₀")
def bitfit_fresh():
    return _fresh_residual(BitFitConfig()), 0.0


@check("BitFit", "trainable = 11d·L + d (q,k,v,o,up,down, ln_1, ln_2 biases; ln_f)")
def bitfit_count():
    base, model = _build(BitFitConfig())
    d, L = base.config.n_embd, base.config.n_layer
    trainable_names = {n.rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad}
    return float(abs(count_parameters(model)[0] - (11 * d * L + d)) + (trainable_names != {"bias"})), 0.0


@check("(IA)³", "l = 1: softmax(Q(l_k ⊙ Kᵀ)/√d)(l_v ⊙ V), (l_ff ⊙ h)W₂ = the base")
def ia3_fresh():
    return _fresh_residual(IA3Config()), 0.0


@check("(IA)³", "merge: W ← diag(l) W (k, v), W ← W diag(l) (down): the same logits")
def ia3_merge():
    _, model = _build(IA3Config())
    perturb(model, seed=1)
    x = inputs()
    return (model.merge_and_unload()(x) - model(x)).abs().max().item(), 1e-4


@check("(IA)³", "trainable = 6d·L (d keys + d values + 4d hidden per block)")
def ia3_count():
    base, model = _build(IA3Config())
    d, L = base.config.n_embd, base.config.n_layer
    return float(abs(count_parameters(model)[0] - 6 * d * L)), 0.0
