"""After the article: QLoRA's NF4 base (Dettmers et al. 2023) with LoRA on top, checked on the shipped base."""

from __future__ import annotations

import torch

from ..analysis import linear_weights
from ..checkpoint import load_base
from ..data import make_task
from ..functional import cross_entropy
from ..methods.qlora import QLoraConfig
from ..quant import dequantize_nf4, error_bound, nf4_code_book, quantize_nf4
from ..train import train
from . import check, inputs
from .vectors import perturb

# QLoRA, Appendix E: the 16 values of the NF4 data type as the paper lists them.
PAPER_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
             -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
             0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
             0.7229568362236023, 1.0]


def _model(**kw):
    from ..methods import get_peft_model

    return get_peft_model(load_base(), QLoraConfig(r=4, lora_alpha=16, **kw))


@check("QLoRA", "NF4 code book: N(0, 1) quantiles scaled to [−1, 1], exact 0 (Appendix E)")
def nf4_values():
    return (nf4_code_book() - torch.tensor(PAPER_NF4)).abs().max().item(), 3e-7


@check("QLoRA", "|W − Ŵ| ≤ c·g/2 + |c − ĉ| on every matrix of the base (blocks of 64, 8-bit scales)")
def nf4_round_trip():
    worst = 0.0
    for w in linear_weights(load_base()).values():
        state = quantize_nf4(w)
        worst = max(worst, ((w - dequantize_nf4(state)).abs() - error_bound(w, state)).max().item())
    return max(worst, 0.0), 1e-7


@check("QLoRA", "fresh: B = 0, so the model is the NF4 base Ŵ X (merge_and_unload agrees)")
def qlora_fresh():
    model = _model()
    x = inputs()
    return (model(x) - model.merge_and_unload()(x)).abs().max().item(), 1e-5


@check("QLoRA", "only A, B get ∂L; the packed 4-bit W is unchanged by training")
def qlora_frozen_codes():
    model, task = _model(), make_task("classify")
    perturb(model, seed=4)
    codes = {n: b.clone() for n, b in model.named_buffers()}
    x, y, m = task.train.batch(8, torch.Generator().manual_seed(0))
    cross_entropy(model(x), y, m).backward()
    wrong = sum(p.numel() for n, p in model.named_parameters() if (p.grad is not None) != (".lora_" in n))
    train(model, task, steps=2, lr=1e-2, batch_size=8, progress=False)
    moved = sum(int(not torch.equal(b, codes[n])) for n, b in model.named_buffers())
    return float(wrong + moved), 0.0


@check("QLoRA", "base bytes: NF4 / fp32 = (4 + 8/64 + 32/(64·256)) / 32 bits per weight")
def qlora_bytes():
    b = _model().base_bytes()
    return abs(b["nf4"] / b["fp32"] - (4 + 8 / 64 + 32 / (64 * 256)) / 32), 2e-3
