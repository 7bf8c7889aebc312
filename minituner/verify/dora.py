"""After the article: DoRA, W′ = m · (W₀ + BA) / ‖W₀ + BA‖_c (Liu et al. 2024), one norm per output row."""

from __future__ import annotations

from ..checkpoint import load_base
from ..methods.dora import DoraConfig
from ..methods.lora import lora_layers
from ..model import count_parameters
from . import check, inputs
from .vectors import perturb

CONFIG = DoraConfig(r=4, lora_alpha=8, target_modules=("q_proj", "v_proj", "up_proj"))


def _model():
    from ..methods import get_peft_model

    base = load_base()
    return base, get_peft_model(base, CONFIG)


@check("DoRA", "m = ‖W₀‖_c, B = 0: W′ = W₀, so the model is the base")
def dora_fresh():
    base, model = _model()
    x = inputs()
    return (model(x) - base(x)).abs().max().item(), 1e-4  # W₀·(‖W₀‖/‖W₀‖) rounds once per entry: float32 noise


@check("DoRA", "‖W′[i, :]‖ = m_i: the magnitude is the length of each row")
def dora_magnitude():
    _, model = _model()
    perturb(model, seed=2)
    worst = 0.0
    for layer in lora_layers(model.base).values():
        W = layer.dora_weight("default")  # (out, in)
        worst = max(worst, (W.norm(dim=1) - layer.magnitude["default"].abs()).abs().max().item())
    return worst, 1e-5


@check("DoRA", "merge: W ← W′ gives the same logits; unmerge restores W₀ exactly")
def dora_merge():
    _, model = _model()
    perturb(model, seed=3)
    x = inputs()
    before = model(x)
    w0 = {n: layer.weight.detach().clone() for n, layer in lora_layers(model.base).items()}
    model.merge_adapter()
    merged = (model(x) - before).abs().max().item()
    model.unmerge_adapter()
    restored = max((layer.weight - w0[n]).abs().max().item() for n, layer in lora_layers(model.base).items())
    return max(merged, restored), 1e-4


@check("DoRA", "trainable = r·(in + out) + out per target")
def dora_count():
    base, model = _model()
    d, L, r = base.config.n_embd, base.config.n_layer, CONFIG.r
    per_block = 2 * (r * 2 * d + d) + (r * (d + 4 * d) + 4 * d)  # q, v (d→d), up (d→4d)
    return float(abs(count_parameters(model)[0] - per_block * L)), 0.0
