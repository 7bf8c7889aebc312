"""Article §3.2, LoRA: Y = (W + ΔW) X with ΔW = AB of rank r; merge, and switch by (W + ΔW) − ΔW + ΔW′.

Our code uses the paper's names: ΔW = scale · lora_B · lora_A (the article's A is lora_B,
its B is lora_A). Adapters here get nonzero lora_B from a seeded generator, standing in
for a trained adapter (a fresh one has ΔW = 0, which would make most checks trivial).
"""

from __future__ import annotations

import tempfile

import torch

from ..checkpoint import load_base
from ..data import make_task
from ..functional import cross_entropy
from ..methods import LoraConfig, PeftModel
from ..methods.lora import lora_layers
from ..methods.shortcuts import lora
from ..train import train
from . import check, inputs


def _fill_B(model, seed: int, std: float = 0.05):
    """Give the active adapter a nonzero lora_B (seeded), as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model.base).values():
            B = layer.lora_B[layer.active]
            B.copy_(torch.randn(B.shape, generator=g) * std)
    return model


@check("§3.2", "fresh LoRA: ΔW = B·A = 0, so (W + ΔW)X = WX exactly", source="added")
def fresh_equals_base():
    base = load_base()
    x = inputs()
    model = lora(base, r=4, lora_alpha=8, target_modules="all")
    return (model(x) - base(x)).abs().max().item(), 0.0


@check("§3.2", "ΔW = AB: article's A (m×r) = lora_B, its B (r×n) = lora_A", source="article")
def article_mapping():
    """The layer's output against the article's column form Y = (W + A·B) X (+ b), letters mapped."""
    model = _fill_B(lora(load_base(), r=4, lora_alpha=4, target_modules=("q_proj",)), seed=1)
    layer = model.base.h[0].attn.q_proj
    A_article, B_article = layer.lora_B["default"], layer.lora_A["default"]  # (m, r), (r, n)
    m, n = layer.weight.shape
    assert A_article.shape == (m, 4) and B_article.shape == (4, n)
    x = torch.randn(16, n, generator=torch.Generator().manual_seed(0))  # 16 tokens as rows
    X = x.T  # (n, 16): the article's X, tokens as columns
    Y = (layer.weight + layer.scale["default"] * A_article @ B_article) @ X + layer.base_layer.bias[:, None]  # (m, 16)
    return (layer(x).T - Y).abs().max().item(), 1e-5


@check("§3.2", "only A and B learn: ∂L/∂W is never computed", source="article")
def gradients_reach_only_lora():
    model, task = _fill_B(lora(load_base(), r=4, lora_alpha=8), seed=2), make_task("classify")
    x, y, m = task.train.batch(8, torch.Generator().manual_seed(0))
    cross_entropy(model(x), y, m).backward()
    wrong = 0
    for name, p in model.named_parameters():
        is_lora = ".lora_A." in name or ".lora_B." in name
        wrong += p.numel() if (p.grad is not None) != is_lora else 0
    return float(wrong), 0.0


@check("§3.2", "trainable = r·(in + out) · targets · layers", source="added")
def trainable_count():
    base = load_base()
    c, r = base.config, 4
    d, L = c.n_embd, c.n_layer
    worst = 0
    for targets, per_block in ((("q_proj", "v_proj"), 2 * (d + d)),
                               ("all", 4 * (d + d) + (d + 4 * d) + (4 * d + d))):
        model = lora(base, r=r, lora_alpha=8, target_modules=targets)
        counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
        worst = max(worst, abs(counted - r * per_block * L))
    return float(worst), 0.0


@check("§3.2", "merge: (W + ΔW)X with W ← W + ΔW equals WX + ΔWX", source="article")
def merged_equals_unmerged():
    model = _fill_B(lora(load_base(), r=4, lora_alpha=8, target_modules="all"), seed=3)
    x = inputs()
    before = model(x)
    model.merge_adapter()
    return (model(x) - before).abs().max().item(), 1e-4


@check("§3.2", "unmerge: (W + ΔW) − ΔW = W (float32 rounding)", source="article")
def merge_unmerge_restores_w():
    model = _fill_B(lora(load_base(), r=4, lora_alpha=8, target_modules="all"), seed=4)
    W = {n: layer.weight.detach().clone() for n, layer in lora_layers(model.base).items()}
    model.merge_adapter()
    model.unmerge_adapter()
    return max((layer.weight - W[n]).abs().max().item() for n, layer in lora_layers(model.base).items()), 1e-6


@check("§3.2", "switch: (W + ΔW) − ΔW + ΔW′ = W + ΔW′", source="article")
def switch_formula():
    base = load_base()
    model = _fill_B(lora(base, r=4, lora_alpha=8), seed=5)
    model.add_adapter("other", LoraConfig(r=8, lora_alpha=8))
    _fill_B(model, seed=6)
    model.set_adapter("default")
    model.merge_adapter()  # W + ΔW
    model.set_adapter("other")  # − ΔW + ΔW′, in place
    worst = 0.0
    for n, layer in lora_layers(model.base).items():
        expected = base.get_submodule(n).weight + layer.get_delta_weight("other")  # W + ΔW′
        worst = max(worst, (layer.weight - expected).abs().max().item())
    return worst, 1e-6


@check("§3.2", "a disabled adapter runs the base alone: WX", source="added")
def disabled_is_base():
    base = load_base()
    model = _fill_B(lora(base, r=4, lora_alpha=8), seed=7)
    x = inputs()
    with model.disable_adapter():
        return (model(x) - base(x)).abs().max().item(), 0.0


@check("§3.2", "adapter file round trip: same A, B, same logits", source="added")
def save_load_round_trip():
    base = load_base()
    model = _fill_B(lora(base, r=4, lora_alpha=8), seed=8)
    x = inputs()
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(f"{d}/adapter")
        loaded = PeftModel.from_pretrained(base, f"{d}/adapter")
    return (loaded(x) - model(x)).abs().max().item(), 0.0


@check("§3.2", "W is frozen: base tensors bit-identical after training", source="article")
def base_unchanged_by_training():
    model, task = lora(load_base(), r=4, lora_alpha=8), make_task("classify")
    before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train(model, task, steps=3, lr=1e-3, batch_size=8, weight_decay=0.1, progress=False)
    after = dict(model.named_parameters())
    return max((after[n] - t).abs().max().item() for n, t in before.items()), 0.0


@check("§3.2", "a LoRA update ΔW = BA moves every entry of W (rank ≤ r, not a subset)", source="added")
def delta_is_dense():
    """docs/errata.md 4: LoRA picks no "key subset" of W's entries. After a few training steps from a
    fresh adapter (ΔW = 0), the share of ΔW's entries still exactly 0, plus how far rank(ΔW) exceeds r:
    0 when ΔW is a dense m×n matrix of rank ≤ r."""
    r = 4
    model = lora(load_base(), r=r, lora_alpha=8, target_modules=("q_proj", "v_proj"))
    train(model, make_task("classify"), steps=3, lr=1e-2, batch_size=8, progress=False)
    worst = 0.0
    for layer in lora_layers(model.base).values():
        delta = layer.get_delta_weight("default")  # (out, in)
        untouched = (delta == 0).float().mean().item()
        worst = max(worst, untouched + max(0, torch.linalg.matrix_rank(delta).item() - r))
    return worst, 0.0
