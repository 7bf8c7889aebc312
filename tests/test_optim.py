"""AdamW's update against torch.optim.AdamW, on both of its paths, as train() drives it."""

import copy

import pytest
import torch

from minituner.functional import fused
from minituner.optim import AdamW


@pytest.mark.parametrize("on", [False, True], ids=["as-written", "fused"])
@pytest.mark.parametrize("drop_ln_f", [False, True], ids=["flat-buffers", "tensor-by-tensor"])
def test_adamw_matches_torch(tiny, drop_ln_f, on):
    """30 steps in float64 (in float32 a rounding difference in g is amplified where v ≈ 0),
    with the lr changed every step as train() does (warm-up, cosine). Every tensor has a
    gradient: the flat-buffer path. Or ln_f gets none every third step: it is left alone,
    moments and step count too, as torch does, and the update goes tensor by tensor. Both under
    fused(); without it, the docstring's lines, one tensor at a time."""
    ours = tiny.double()
    theirs = copy.deepcopy(ours)
    opt_a = AdamW(ours.parameters(), lr=3e-3, weight_decay=0.1)
    opt_b = torch.optim.AdamW(theirs.parameters(), lr=3e-3, weight_decay=0.1, eps=1e-8)
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        x = torch.randint(0, tiny.config.vocab_size, (4, 12), generator=g)
        opt_a.lr = opt_b.param_groups[0]["lr"] = 3e-3 * (step + 1) / 30
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            model(x)[:, :-1].logsumexp(-1).mean().backward()
            if drop_ln_f and step % 3 == 0:
                model.ln_f.weight.grad = model.ln_f.bias.grad = None
            with fused(on):
                opt.step()
    for (n, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert (a - b).abs().max() < 1e-6, n
    assert opt_a.state_bytes() == 2 * 8 * sum(p.numel() for p in tiny.parameters())  # m and v, float64


def test_adamw_rejects_nothing_to_train(tiny):
    with pytest.raises(ValueError, match="no tensor that requires grad"):
        AdamW([p.requires_grad_(False) for p in tiny.parameters()])


def test_adamw_rejects_mixed_dtypes(tiny):
    with pytest.raises(ValueError, match="one device with one dtype"):
        AdamW([tiny.wte.weight, tiny.wpe.weight.detach().double().requires_grad_()])
