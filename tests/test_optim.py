"""AdamW's multi-tensor update against torch.optim.AdamW, as train() drives it."""

import copy

import pytest
import torch

from minituner.optim import AdamW


def test_adamw_matches_torch_with_a_changing_lr_and_missing_gradients(tiny):
    """train() sets opt.lr every step (warm-up, cosine); a tensor with no gradient this step
    (here: ln_f, cut off every third step) is left alone, moments and all, as torch does.
    float64: in float32 a rounding difference in g is amplified where v ≈ 0 (m/sqrt(v) ≈ ±1)."""
    ours = tiny.double()
    theirs = copy.deepcopy(ours)
    opt_a = AdamW(ours.parameters(), lr=3e-3, weight_decay=0.1)
    opt_b = torch.optim.AdamW(theirs.parameters(), lr=3e-3, weight_decay=0.1, eps=1e-8)
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        x = torch.randint(0, tiny.config.vocab_size, (4, 12), generator=g)
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            model(x)[:, :-1].logsumexp(-1).mean().backward()
            if step % 3 == 0:
                model.ln_f.weight.grad = model.ln_f.bias.grad = None
            lr = 3e-3 * (step + 1) / 30
            opt_a.lr = lr
            for group in opt_b.param_groups:
                group["lr"] = lr
            opt.step()
    for (n, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert (a - b).abs().max() < 1e-6, n


def test_adamw_rejects_nothing_to_train(tiny):
    with pytest.raises(ValueError, match="no tensor that requires grad"):
        AdamW([p.requires_grad_(False) for p in tiny.parameters()])
