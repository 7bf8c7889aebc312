"""q, k and v in one product (CausalSelfAttention.qkv, functional.stacked_linear), as GPT-2's c_attn:
the numbers and gradients of three separate Linears, for every registered method, and a forward hook on
q_proj, k_proj or v_proj still sees (and may change) every call."""

import pytest
import torch

import minituner.model as model_module
from minituner import functional as F
from minituner.functional import cross_entropy
from minituner.methods import METHODS, get_peft_model, ordered


def test_stacked_linear_is_the_separate_linears_and_gradcheck_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    parts = [(torch.randn(o, 4, dtype=torch.float64, generator=g, requires_grad=True),
              torch.randn(o, dtype=torch.float64, generator=g, requires_grad=True)) for o in (3, 4, 2)]
    y = F.stacked_linear(x, parts)  # (2, 5, 9)
    torch.testing.assert_close(y, torch.cat([F.linear(x, W, b) for W, b in parts], dim=-1), rtol=0, atol=1e-12)
    tensors = [x, *(t for part in parts for t in part)]
    assert torch.autograd.gradcheck(lambda x, *wb: F.stacked_linear(x, list(zip(wb[0::2], wb[1::2]))), tensors)


@pytest.mark.parametrize("frozen", ["x", "weights", "one part"])
def test_stacked_linear_gives_the_separate_gradients_of_what_trains_only(frozen):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, dtype=torch.float64, generator=g)
    parts = [(torch.randn(3, 4, dtype=torch.float64, generator=g), torch.randn(3, dtype=torch.float64, generator=g))
             for _ in range(2)]
    trains = [frozen != "x", *(frozen not in ("weights", "one part") or (i == 2 and frozen == "one part")
                               for i in range(1, 5))]

    def leaves():
        return [t.clone().requires_grad_(r) for t, r in zip([x, *(t for p in parts for t in p)], trains)]

    a, b = leaves(), leaves()
    F.stacked_linear(a[0], [(a[1], a[2]), (a[3], a[4])]).square().sum().backward()
    torch.cat([F.linear(b[0], b[1], b[2]), F.linear(b[0], b[3], b[4])], -1).square().sum().backward()
    for s, t in zip(a, b):
        assert (s.grad is None) == (t.grad is None)
        if t.grad is not None:
            torch.testing.assert_close(s.grad, t.grad, rtol=0, atol=1e-12)


def logits_and_grads(model, batch):
    x, y, m = batch
    model.train()
    model.zero_grad(set_to_none=True)
    loss = cross_entropy(model(x), y, m)
    loss.backward()
    return model(x).detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("key", [m.key for m in ordered()])
def test_every_method_gives_the_numbers_of_three_separate_products(key, tiny, classify, monkeypatch):
    model = get_peft_model(tiny, METHODS[key].make_config())
    with torch.no_grad():  # every trainable tensor away from its start, so each adapter's path matters
        g = torch.Generator().manual_seed(3)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)
    batch = classify.train.batch(4, torch.Generator().manual_seed(0))
    assert batch[0].numel() >= tiny.config.n_embd  # rows enough for the stacked product
    with F.fused():
        stacked = logits_and_grads(model, batch)
        monkeypatch.setattr(model_module, "shows_weight", lambda layer: False)  # three products, always
        separate = logits_and_grads(model, batch)
    torch.testing.assert_close(stacked[0], separate[0], rtol=1e-5, atol=1e-5)
    assert stacked[1].keys() == separate[1].keys() and stacked[1]
    for name in stacked[1]:
        torch.testing.assert_close(stacked[1][name], separate[1][name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("target", ["q_proj", "k_proj", "v_proj"])
def test_a_forward_hook_sees_and_changes_every_call(base, classify, target):
    x = classify.train.batch(4, torch.Generator().manual_seed(0))[0]
    with torch.no_grad():
        before = base(x)
    layer = getattr(base.h[0].attn, target)
    seen = []
    handle = layer.register_forward_hook(lambda module, inputs, y: seen.append(y.shape) or y * 0)
    try:
        with torch.no_grad():
            changed = base(x)
    finally:
        handle.remove()
    assert seen == [(*x.shape, base.config.n_embd)]
    assert (changed - before).abs().max() > 1e-2
    with torch.no_grad():
        torch.testing.assert_close(base(x), before, rtol=0, atol=0)
