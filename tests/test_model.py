"""The tiny GPT: gradients, causality, the cache, and the rule of no shortcuts."""

import re
from pathlib import Path

import pytest
import torch

import minituner
from minituner.model import GPT, GPTConfig


def test_gradcheck_through_one_block_in_float64():
    # width 8, 2 heads: finite differences cost two forwards per weight, so the block is as small as it can be
    block = GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=1, n_head=2, n_embd=8), seed=0).h[0].double()
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: block(t), (x,), eps=1e-6, atol=1e-5)
    names = [n for n, _ in block.named_parameters()]

    def f(*ps):  # the block as a function of its weights: gradients w.r.t. every W, b, γ, β
        return torch.func.functional_call(block, dict(zip(names, ps)), (x.detach(),))

    ps = tuple(p.detach().clone().requires_grad_() for p in block.parameters())
    assert torch.autograd.gradcheck(f, ps, eps=1e-6, atol=1e-5)


def test_causality_future_tokens_do_not_change_the_past(tiny):
    idx = torch.randint(2, tiny.config.vocab_size, (2, 20))
    changed = idx.clone()
    changed[:, 12:] = torch.randint(2, tiny.config.vocab_size, (2, 8))
    a, b = tiny(idx), tiny(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=0, atol=0)
    assert (a[:, 12:] - b[:, 12:]).abs().max() > 1e-4


@pytest.mark.parametrize("temperature,top_k", [(0.0, None), (0.8, 5)])
def test_cached_and_uncached_generation_agree(tiny, temperature, top_k):
    idx = torch.randint(2, tiny.config.vocab_size, (3, 7))
    outs = [tiny.generate(idx, 15, temperature=temperature, top_k=top_k, use_cache=c,
                          generator=torch.Generator().manual_seed(1)) for c in (True, False)]
    assert outs[0].shape == (3, 22)
    assert torch.equal(outs[0], outs[1])


def test_context_limit_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="exceed the context"):
        tiny(torch.zeros(1, tiny.config.block_size + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="virtual"):
        tiny(torch.zeros(1, 90, dtype=torch.long), prompt=torch.zeros(10, tiny.config.n_embd))


def test_head_is_tied_to_the_token_embedding(tiny):
    x = torch.randint(0, tiny.config.vocab_size, (1, 4))
    h = tiny.wte(x) + tiny.wpe(torch.arange(4))
    for block in tiny.h:
        h = block(h)
    torch.testing.assert_close(tiny(x), tiny.ln_f(h) @ tiny.wte.weight.T)


def test_bad_config_is_a_value_error():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=4)


def test_no_shortcut_modules_in_the_package():
    """The package writes its tensor math out (DESIGN.md): none of these may appear."""
    banned = re.compile(r"nn\.(Linear|Embedding|LayerNorm|MultiheadAttention)\(|scaled_dot_product_attention"
                        r"|F\.cross_entropy|functional\.cross_entropy\(|pickle\.load|weights_only=False")
    root = Path(minituner.__file__).parent
    hits = [f"{p.name}:{n}" for p in root.rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1)
            if banned.search(line)]
    assert not hits, hits


def test_base_writes_fluent_facts_both_ways(base):
    tok = minituner.CharTokenizer()
    world = minituner.make_world(0)
    food = world.facts["cat"]["food"]
    assert minituner.answer(base, tok, "the cat eats") == f" {food}."
    assert minituner.answer(base, tok, f"the animal that eats {food} is the") == " cat."
    assert minituner.evaluate(base, minituner.make_fact_probe())["accuracy"] > 0.9


def test_pretrained_base_beats_a_random_model_on_held_out_text(base):
    corpus = minituner.make_corpus(n_train=1, n_test=64, length=base.config.block_size + 1)
    random_loss = minituner.evaluate(GPT(base.config, seed=1), corpus.test)["loss"]
    base_loss = minituner.evaluate(base, corpus.test)["loss"]
    assert base_loss < 0.5 < random_loss
