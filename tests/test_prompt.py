"""Prompt tuning: X' = [P; X] through the frozen model, only P trains, the base never moves."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minituner
from minituner import fingerprint, prompt_tuning
from minituner import functional as F
from minituner.methods.prompt import prompt_parameter_count
from minituner.model import GPT, GPTConfig, count_parameters
from minituner.train import train
from minituner.verify import inputs
from minituner.verify import prompt as checks

TOK = minituner.CharTokenizer()


def by_hand(base, idx, P, peft_positions=True):
    """The base run on [P + wpe[0..k-1]; wte[X] + wpe[k..k+T-1]] built by hand (PEFT on GPT-2),
    or with peft_positions=False on [P; wte[X] + wpe[0..T-1]]; logits of the real rows."""
    B, T = idx.shape
    k = P.size(0) if peft_positions else 0
    x = base.wte.weight[idx] + base.wpe.weight[k : k + T]  # (B, T, C)
    virtual = P + base.wpe.weight[:k] if peft_positions else P  # (k, C)
    x = torch.cat([virtual.expand(B, -1, -1), x], dim=1)  # (B, k + T, C)
    return checks.head(base, x)[:, P.size(0):]  # (B, T, V)


def test_forward_is_the_base_on_the_concatenation_built_by_hand(tiny):
    residual, tol = checks.prompt_is_concatenation(tiny)
    assert residual <= tol
    model = prompt_tuning(tiny, 5, init="vocab", seed=3)
    idx = inputs(4)
    with torch.no_grad():
        assert torch.allclose(model(idx), by_hand(model.base, idx, model.prompt), atol=1e-6)
        # the other convention (real tokens from 0, no wpe on P) is a different function
        assert not torch.allclose(model(idx), by_hand(model.base, idx, model.prompt, peft_positions=False), atol=1e-4)


_G = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=24, n_layer=2, n_head=2, n_embd=8), seed=1)


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 3), T=st.integers(1, 12), k=st.integers(0, 12), seed=st.integers(0, 10_000))
def test_prompt_slot_is_concatenation_for_any_shape(B, T, k, seed):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(TOK.vocab_size, (B, T), generator=g)
    P = torch.randn(k, 8, generator=g)
    with torch.no_grad():
        out = _G(idx, prompt=P)
        assert out.shape == (B, T, TOK.vocab_size)  # virtual rows are never predicted
        assert torch.allclose(out, by_hand(_G, idx, P), atol=1e-5)


def test_an_empty_prompt_is_the_base_exactly(tiny):
    assert checks.empty_prompt_is_base(tiny) == (0.0, 0.0)


def test_virtual_positions_never_count_in_the_loss(tiny, classify):
    """train()'s loss on a prompt model = −log p(answer) averaged over the answer tokens of the real rows."""
    model = prompt_tuning(tiny, 7, seed=0)
    x, y, m = classify.train.x[:6], classify.train.y[:6], classify.train.mask[:6]
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (*x.shape, TOK.vocab_size)
        logp = torch.log_softmax(by_hand(model.base, x, model.prompt), dim=-1)  # (B, T, V)
        nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (B, T)
        expected = nll[m.bool()].mean()
        assert torch.allclose(F.cross_entropy(logits, y, m), expected, atol=1e-6)


def test_k_plus_T_may_not_exceed_block_size(tiny):
    k, bs = 10, tiny.config.block_size
    model = prompt_tuning(tiny, k)
    assert model(torch.zeros(1, bs - k, dtype=torch.long)).shape == (1, bs - k, TOK.vocab_size)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, bs - k + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size"):  # generation may not run past it either
        model.generate(torch.zeros(1, bs - k - 1, dtype=torch.long), 3)


@pytest.mark.parametrize("use_cache", [True, False])
def test_generate_works_and_the_cache_changes_nothing(tiny, use_cache):
    assert checks.prompt_cache_same_tokens(tiny) == (0.0, 0.0)
    model = prompt_tuning(tiny, 4, init="vocab", seed=2)
    idx = inputs(2)[:, :15]
    out = model.generate(idx, 10, use_cache=use_cache)
    assert out.shape == (2, 25) and torch.equal(out[:, :15], idx)
    with torch.no_grad():  # each generated token is the argmax of the uncached forward on what came before
        logits = model(out[:, :-1])
        assert torch.equal(logits[:, 14:].argmax(-1), out[:, 15:])


@pytest.mark.parametrize("k", [1, 4, 16])
def test_trainable_count_is_k_times_d(tiny, k):
    model = prompt_tuning(tiny, k)
    assert count_parameters(model) == (prompt_parameter_count(k, tiny.config.n_embd), count_parameters(tiny)[1] + k * tiny.config.n_embd)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["prompt"]


def test_only_the_prompt_gets_gradients(tiny, classify):
    model = prompt_tuning(tiny, 4)
    x, y, m = classify.train.batch(8, torch.Generator().manual_seed(0))
    F.cross_entropy(model(x), y, m).backward()
    assert model.prompt.grad is not None and model.prompt.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.base.parameters())


@pytest.mark.parametrize("init", ["random", "vocab", "text"])
def test_training_moves_p_and_leaves_the_base_bit_identical(tiny, classify, init):
    fp = fingerprint(tiny)
    flags = [p.requires_grad for p in tiny.parameters()]
    model = prompt_tuning(tiny, 6, init=init, init_text="it is " if init == "text" else None)
    assert model.base is not tiny and fingerprint(model.base) == fp
    P0 = model.prompt.detach().clone()
    train(model, classify, steps=3, lr=0.1, batch_size=8, weight_decay=0.1, progress=False)
    assert not torch.equal(model.prompt, P0)
    assert fingerprint(tiny) == fp and fingerprint(model.base) == fp
    assert [p.requires_grad for p in tiny.parameters()] == flags  # the caller's model is untouched


def test_inits(tiny):
    wte = tiny.wte.weight
    text = prompt_tuning(tiny, 6, init="text", init_text="the ca")
    assert torch.equal(text.prompt.detach(), wte[torch.tensor(TOK.encode("the ca"))])
    vocab = prompt_tuning(tiny, 50, init="vocab", seed=0)
    rows = {tuple(r.tolist()) for r in wte[2:]}  # the rows of real characters, no <pad>/<eos>
    assert all(tuple(r.tolist()) in rows for r in vocab.prompt.detach())
    big = prompt_tuning(tiny, 64, init="random", seed=0).prompt.detach()
    assert 0.7 < big.std().item() / wte.std().item() < 1.3  # starts at the scale of real tokens
    for init in ("random", "vocab"):
        a, b, c = (prompt_tuning(tiny, 4, init=init, seed=s).prompt for s in (0, 0, 1))
        assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_virtual_tokens=0), "num_virtual_tokens"),
    (dict(num_virtual_tokens=96), "num_virtual_tokens"),
    (dict(num_virtual_tokens=2.5), "num_virtual_tokens"),
    (dict(init="zeros"), "'random', 'vocab', 'text'"),
    (dict(num_virtual_tokens=4, init="text"), "init_text is needed"),
    (dict(num_virtual_tokens=4, init="text", init_text=""), "init_text is empty"),
    (dict(num_virtual_tokens=4, init="text", init_text="CAT!"), "unknown character 'C'"),
    (dict(num_virtual_tokens=4, init_text="the "), "only used with it"),
])
def test_bad_arguments_are_value_errors(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        prompt_tuning(tiny, **kwargs)


def test_a_non_gpt_is_refused(tiny):
    with pytest.raises(TypeError, match="needs a GPT"):
        prompt_tuning(tiny.h[0].attn.q_proj, 2)
    with pytest.raises(ValueError, match="methods do not stack"):
        prompt_tuning(prompt_tuning(tiny, 2), 2)


def test_prompt_tuning_learns_the_task_on_the_real_base(base, classify):
    """A short run on the shipped base: the answer loss falls (rounded, not exact floats)."""
    model = prompt_tuning(base, 8, init="vocab", seed=0)
    before = minituner.evaluate(model, classify.train)["loss"]
    train(model, classify, steps=20, lr=0.1, batch_size=16, progress=False)  # loss ratio 0.51 measured
    assert minituner.evaluate(model, classify.train)["loss"] < 0.8 * before
