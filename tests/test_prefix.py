"""Prefix tuning and P-Tuning v2: K' = [P_k; K], V' = [P_v; V] at every layer, the base frozen."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minituner
from minituner import fingerprint, prefix_tuning, ptuning_v2
from minituner import functional as F
from minituner.methods.prefix import prefix_parameter_count
from minituner.methods.virtual_tokens import text_keys_values
from minituner.model import count_parameters
from minituner.train import train
from minituner.verify import inputs
from minituner.verify import prefix as checks

TOK = minituner.CharTokenizer()
METHODS = {
    "prefix": lambda base, k=4, **kw: prefix_tuning(base, k, **kw),
    "prefix_text": lambda base, k=4, **kw: prefix_tuning(base, k, init="text", init_text="the cat."[:k], **kw),
    "ptuning_v2": lambda base, k=4, **kw: ptuning_v2(base, k, **kw),
}


def test_each_layer_attends_over_the_concatenated_keys_and_values(tiny):
    residual, tol = checks.prefix_is_concatenation(tiny)
    assert residual <= tol
    attn, x = tiny.h[0].attn, torch.randn(2, 5, 16)
    pk, pv = torch.randn(3, 16), torch.randn(3, 16)
    with torch.no_grad():  # the check can fail: drop the prefix and the two differ
        assert (attn(x, prefix=(pk, pv)) - attn(x)).abs().max() > 100 * tol
        assert torch.allclose(attn(x, prefix=(pk, pv)), checks.attention_by_hand(attn, x, pk, pv), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 3), nh=st.integers(1, 3), Tq=st.integers(1, 6), past=st.integers(0, 5),
       k=st.integers(0, 6), hs=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_prefix_attention_for_any_shape(B, nh, Tq, past, k, hs, seed):
    """F.causal_attention with n_prefix = softmax over [P_k; K] with the mask written out (torch.softmax as oracle),
    including the cached case where Tk = past + Tq keys stand behind Tq queries."""
    g = torch.Generator().manual_seed(seed)
    Tk = past + Tq
    q = torch.randn(B, nh, Tq, hs, generator=g)
    k_ = torch.randn(B, nh, k + Tk, hs, generator=g)
    v = torch.randn(B, nh, k + Tk, hs, generator=g)
    allowed = torch.tensor([[j < k or j - k <= past + i for j in range(k + Tk)] for i in range(Tq)])  # (Tq, k + Tk)
    S = (q @ k_.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~allowed, float("-inf"))
    assert torch.allclose(F.causal_attention(q, k_, v, n_prefix=k), torch.softmax(S, -1) @ v, atol=1e-5)


def test_an_empty_prefix_is_the_base_exactly(tiny):
    assert checks.empty_prefix_is_base(tiny) == (0.0, 0.0)


def test_a_zero_prefix_is_not_a_no_op(tiny):
    residual, tol = checks.zero_prefix_takes_a_share(tiny)
    assert residual <= tol
    model = ptuning_v2(tiny, 4)
    with torch.no_grad():
        model.prefix.zero_()
        idx = inputs(4)
        assert (model(idx) - tiny(idx)).abs().max() > 1e-4


def test_real_tokens_are_numbered_from_k_as_peft_does(tiny):
    model = ptuning_v2(tiny, 5, seed=1)
    idx = inputs(2)
    T = idx.size(1)

    def by_hand(first):
        x = tiny.wte.weight[idx] + tiny.wpe.weight[first : first + T]  # (B, T, C)
        for block, prefix in zip(tiny.h, model.prefixes()):
            x = block(x, prefix=prefix)
        return tiny.ln_f(x) @ tiny.wte.weight.T  # (B, T, V)

    with torch.no_grad():
        out = model(idx)
        assert out.shape == (*idx.shape, TOK.vocab_size)  # prefix rows are never predicted, never in the loss
        assert torch.allclose(out, by_hand(5), atol=1e-6)  # k = 5 prefixes: real positions 5..T+4
        assert not torch.allclose(out, by_hand(0), atol=1e-4)


@pytest.mark.parametrize("k,hidden", [(1, 16), (4, 8), (6, 32)])
def test_fold_keeps_the_logits_and_leaves_2Lkd_parameters(tiny, k, hidden):
    model = prefix_tuning(tiny, k, encoder_hidden_size=hidden, seed=2)
    c = tiny.config
    d, L = c.n_embd, c.n_layer
    assert count_parameters(model)[0] == prefix_parameter_count(k, d, L, hidden) \
        == k * d + (d * hidden + hidden) + (hidden * 2 * L * d + 2 * L * d)
    idx = inputs(4)
    with torch.no_grad():
        before = model(idx)
        model.fold()
        assert not model.reparameterized and torch.allclose(model(idx), before, atol=1e-6)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["prefix"]
    assert count_parameters(model)[0] == prefix_parameter_count(k, c.n_embd, c.n_layer) == 2 * c.n_layer * k * c.n_embd
    P = model.prefix.detach().clone()
    assert model.fold() is model and torch.equal(model.prefix, P)  # folding twice changes nothing
    assert checks.folded_prefix_same_logits(tiny)[0] <= 1e-5


@pytest.mark.parametrize("k", [1, 3, 8])
def test_ptuning_v2_count_and_names(tiny, k):
    model = ptuning_v2(tiny, k)
    L, d = tiny.config.n_layer, tiny.config.n_embd
    assert count_parameters(model) == (2 * L * k * d, count_parameters(tiny)[1] + 2 * L * k * d)
    assert model.prefix.shape == (L, 2, k, d) and not model.reparameterized


@pytest.mark.parametrize("reparameterize", [True, False])
def test_text_init_starts_at_the_phrases_own_keys_and_values(tiny, reparameterize):
    phrase = "is the"
    model = prefix_tuning(tiny, 6, prefix_projection=reparameterize, init="text", init_text=phrase)
    x = tiny.wte.weight[torch.tensor(TOK.encode(phrase))] + tiny.wpe.weight[:6]  # (k, C)
    with torch.no_grad():
        for i, block in enumerate(tiny.h):  # by hand: layer i's keys and values of the phrase
            h = block.ln_1(x)
            assert torch.allclose(model.prefix_tensor()[i, 0], block.attn.k_proj(h), atol=1e-5)
            assert torch.allclose(model.prefix_tensor()[i, 1], block.attn.v_proj(h), atol=1e-5)
            x = block(x.unsqueeze(0))[0]
    assert torch.allclose(text_keys_values(tiny, torch.tensor(TOK.encode(phrase))), model.prefix_tensor(), atol=1e-5)


@pytest.mark.parametrize("name", list(METHODS))
def test_only_the_method_tensors_get_gradients(tiny, classify, name):
    model = METHODS[name](tiny)
    x, y, m = classify.train.batch(8, torch.Generator().manual_seed(0))
    F.cross_entropy(model(x), y, m).backward()
    assert all(p.grad is None for p in model.base.parameters())
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(not n.startswith("base.") for n in trained)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.values())


@pytest.mark.parametrize("name", list(METHODS))
def test_training_moves_every_trainable_tensor_and_never_the_base(tiny, classify, name):
    fp = fingerprint(tiny)
    model = METHODS[name](tiny)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    train(model, classify, steps=3, lr=1e-2, batch_size=8, weight_decay=0.1, progress=False)
    assert all(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
    assert fingerprint(tiny) == fp and fingerprint(model.base) == fp
    assert all(p.requires_grad for p in tiny.parameters())  # the caller's flags are untouched


@pytest.mark.parametrize("name", list(METHODS))
def test_generate_with_and_without_cache_gives_the_same_tokens(tiny, name):
    model = METHODS[name](tiny, seed=1)
    idx = inputs(3)[:, :18]
    a, b = model.generate(idx, 12, use_cache=True), model.generate(idx, 12, use_cache=False)
    assert a.shape == (3, 30) and torch.equal(a, b)
    with torch.no_grad():
        assert torch.equal(model(a[:, :-1])[:, 17:].argmax(-1), a[:, 18:])
    assert checks.prefix_cache_same_tokens(tiny) == (0.0, 0.0)


@pytest.mark.parametrize("name", list(METHODS))
def test_k_plus_T_may_not_exceed_block_size(tiny, name):
    k, bs = 4, tiny.config.block_size
    model = METHODS[name](tiny, k)
    assert model(torch.zeros(1, bs - k, dtype=torch.long)).shape == (1, bs - k, TOK.vocab_size)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, bs - k + 1, dtype=torch.long))


def test_seeds_reproduce(tiny):
    for make in (lambda s: prefix_tuning(tiny, 3, seed=s), lambda s: ptuning_v2(tiny, 3, seed=s)):
        a, b, c = (make(s).prefix_tensor() for s in (0, 0, 1))
        assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fn,kwargs,match", [
    (prefix_tuning, dict(num_virtual_tokens=0), "num_virtual_tokens"),
    (ptuning_v2, dict(num_virtual_tokens=96), "num_virtual_tokens"),
    (prefix_tuning, dict(init="vocab"), "'random', 'text'"),
    (prefix_tuning, dict(encoder_hidden_size=0), "encoder_hidden_size must be an integer >= 1"),
    (prefix_tuning, dict(prefix_projection=False, encoder_hidden_size=8), "needs prefix_projection=True"),
    (prefix_tuning, dict(num_virtual_tokens=8, encoder_hidden_size=4, init="text", init_text="the cat."), "encoder_hidden_size >= num_virtual_tokens"),
    (ptuning_v2, dict(num_virtual_tokens=4, init="text", init_text=""), "init_text is empty"),
    (ptuning_v2, dict(num_virtual_tokens=4, init="text", init_text="cat\t"), "unknown character"),
    (ptuning_v2, dict(num_virtual_tokens=4, init="text"), "init_text is needed"),
])
def test_bad_arguments_are_value_errors(tiny, fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(tiny, **kwargs)


@pytest.mark.parametrize("reparameterize,lr", [(True, 3e-3), (False, 3e-2)])
def test_prefix_from_text_learns_on_the_real_base(base, classify, reparameterize, lr):
    """Started from the base's own keys and values: the answer loss falls (rounded, not exact floats).
    The MLP form at 3e-3, the direct form (P-Tuning v2) at 3e-2: the rates lesson 05 uses."""
    model = prefix_tuning(base, 8, prefix_projection=reparameterize, init="text", init_text="he dog.\n")
    before = minituner.evaluate(model, classify.train)["loss"]
    train(model, classify, steps=20, lr=lr, batch_size=16, progress=False)  # loss ratio 0.58, 0.59 measured
    assert minituner.evaluate(model, classify.train)["loss"] < 0.8 * before
