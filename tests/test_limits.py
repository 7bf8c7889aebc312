"""Sizes are bounded before any work: GPTConfig's parameter count (a formula checked numerically)
and pretraining's corpus, batch and steps (issue 24)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minituner import pretrain as pretraining
from minituner.model import GPT, GPTConfig


@settings(max_examples=20, deadline=None)
@given(vocab=st.integers(1, 60), block=st.integers(1, 40), layers=st.integers(1, 3), heads=st.integers(1, 4),
       head_size=st.integers(1, 6))
def test_n_parameters_is_what_a_gpt_holds(vocab, block, layers, heads, head_size):
    config = GPTConfig(vocab_size=vocab, block_size=block, n_layer=layers, n_head=heads, n_embd=heads * head_size)
    assert config.n_parameters() == sum(p.numel() for p in GPT(config).parameters())


def test_pretrain_checks_every_size_before_building_the_corpus(monkeypatch):
    def must_not_run(*a, **kw):
        raise AssertionError("the corpus was built")

    monkeypatch.setattr(pretraining, "make_corpus", must_not_run)
    small = GPTConfig(block_size=200)
    rows = pretraining.MAX_CORPUS_TOKENS // (small.block_size + 1)
    for kw, message in [(dict(n_train=rows + 1), "corpus of"),
                        (dict(n_train=rows, batch_size=pretraining.MAX_BATCH_TOKENS // small.block_size + 1), "per step"),
                        (dict(steps=pretraining.MAX_STEPS + 1), "steps="), (dict(lr=float("nan")), "lr")]:
        with pytest.raises(ValueError, match=message):
            pretraining.pretrain(config=small, progress=False, **kw)
    with pytest.raises(AssertionError, match="corpus was built"):  # at the bounds: accepted, on to the corpus
        pretraining.pretrain(config=small, n_train=rows, steps=pretraining.MAX_STEPS, progress=False,
                             batch_size=pretraining.MAX_BATCH_TOKENS // small.block_size)
