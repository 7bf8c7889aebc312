"""Full fine-tuning and freezing: what trains, what does not move, and the base left alone."""

import itertools

import pytest
import torch

import minituner
from minituner import fingerprint, freeze, full
from minituner.model import count_parameters
from minituner.optim import AdamW
from minituner.train import train


def closed_form(config, N, train_embeddings=False, train_head=False, bottom=False):
    """freeze.py's docstring formula: N·(12d² + 13d) + [N > 0 and not bottom]·2d + [emb or head]·V·d + [emb]·T·d."""
    d, V, T = config.n_embd, config.vocab_size, config.block_size
    return (N * (12 * d * d + 13 * d) + (2 * d if N and not bottom else 0)
            + (V * d if train_embeddings or train_head else 0) + (T * d if train_embeddings else 0))


# Every valid (trainable_layers, train_embeddings, train_head) for the 2-block tiny model.
SETTINGS = [(N, e, h) for N, e, h in itertools.product(range(3), (False, True), (False, True)) if N or e or h]
BOTTOM = [(N, e, h, b) for N, e, h in SETTINGS for b in (False, True)]


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def train_a_little(model, data, steps=3):
    return train(model, data, steps=steps, lr=1e-3, batch_size=8, seed=0, progress=False)


def test_full_is_a_trainable_copy_and_the_base_never_moves(tiny, classify):
    tiny.requires_grad_(False)  # even a base handed over frozen comes back fully trainable
    fp = fingerprint(tiny)
    model = full(tiny)
    assert model is not tiny and all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in tiny.parameters())  # the base's flags are untouched
    c = tiny.config
    d = c.n_embd
    analytic = c.vocab_size * d + c.block_size * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d
    assert count_parameters(model) == (analytic, analytic)
    before = snapshot(model)
    train_a_little(model, classify)
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert changed == list(before)  # every tensor moved
    assert fingerprint(tiny) == fp


@pytest.mark.parametrize("N,emb,head,bottom", BOTTOM)
def test_trainable_count_matches_the_closed_form(tiny, N, emb, head, bottom):
    model = freeze(tiny, trainable_layers=N, train_embeddings=emb, train_head=head, bottom=bottom)
    trainable, total = count_parameters(model)
    assert trainable == closed_form(tiny.config, N, emb, head, bottom)
    assert total == count_parameters(tiny)[1]


def test_the_top_blocks_train_and_the_bottom_ones_freeze(tiny):
    names = {n for n, p in freeze(tiny, trainable_layers=1).base.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("h.1.", "ln_f.")) for n in names)
    assert {"ln_f.weight", "ln_f.bias", "h.1.attn.q_proj.weight", "h.1.mlp.down_proj.bias"} <= names
    both = {n for n, p in freeze(tiny, trainable_layers=2).base.named_parameters() if p.requires_grad}
    assert both == {n for n, _ in tiny.named_parameters()} - {"wte.weight", "wpe.weight"}
    low = {n for n, p in freeze(tiny, trainable_layers=1, bottom=True).base.named_parameters() if p.requires_grad}
    assert low == {n.replace("h.1.", "h.0.") for n in names if n.startswith("h.1.")}  # the bottom block, ln_f frozen


def test_train_head_trains_the_tied_wte_and_embeddings_add_wpe(tiny):
    head = freeze(tiny, trainable_layers=0, train_head=True)
    assert [n for n, p in head.base.named_parameters() if p.requires_grad] == ["wte.weight"]
    emb = freeze(tiny, trainable_layers=0, train_embeddings=True)
    assert [n for n, p in emb.base.named_parameters() if p.requires_grad] == ["wte.weight", "wpe.weight"]
    x = torch.randint(2, tiny.config.vocab_size, (2, 5))  # token 0 never appears in the input
    with torch.no_grad():
        head.base.wte.weight[0] = 0.0  # so this row acts only as the head's row for token 0
    logits = head(x)  # (2, 5, V)
    assert torch.all(logits[..., 0] == 0) and torch.all(logits[..., 1:] != 0)  # the head *is* wte


@pytest.mark.parametrize("N,emb,head", SETTINGS)
def test_after_training_frozen_tensors_are_bit_identical_and_trainable_ones_moved(tiny, classify, N, emb, head):
    fp = fingerprint(tiny)
    model = freeze(tiny, trainable_layers=N, train_embeddings=emb, train_head=head)
    before = snapshot(model)
    train_a_little(model, classify)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert not torch.equal(p, before[n]), f"{n} is trainable but did not change"
        else:
            assert torch.equal(p, before[n]), f"{n} is frozen but changed"
    assert fingerprint(tiny) == fp
    assert all(p.requires_grad for p in tiny.parameters())  # the base's own flags are untouched


def test_frozen_tensors_get_no_gradient(tiny, classify):
    model = freeze(tiny, trainable_layers=1)
    x, y, m = classify.train.batch(4, torch.Generator().manual_seed(0))
    minituner.functional.cross_entropy(model(x), y, m).backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("N", [1, 2])
def test_the_optimiser_holds_state_only_for_trainable_tensors(tiny, classify, N):
    model = freeze(tiny, trainable_layers=N)
    trainable = closed_form(tiny.config, N)
    assert AdamW(model.parameters()).state_bytes() == 2 * trainable * 4
    assert train_a_little(model, classify, steps=1).optimizer_state_bytes == 2 * trainable * 4
    assert 2 * trainable * 4 < AdamW(full(tiny).parameters()).state_bytes()


@pytest.mark.parametrize("N", [-1, 3, 10])
def test_a_depth_outside_0_to_n_layer_is_refused_naming_the_depth(tiny, N):
    with pytest.raises(ValueError, match=r"trainable_layers must be an integer.*got " + str(N)):
        freeze(tiny, trainable_layers=N)


@pytest.mark.parametrize("N", [1.0, "1", True, None])
def test_a_depth_that_is_not_an_integer_is_refused(tiny, N):
    with pytest.raises(ValueError, match="integer"):
        freeze(tiny, trainable_layers=N)


def test_nothing_to_train_is_refused(tiny):
    with pytest.raises(ValueError, match="nothing to train"):
        freeze(tiny, trainable_layers=0)


def test_freezing_the_real_base_leaves_it_unchanged(base, classify):
    fp = fingerprint(base)
    model = freeze(base, trainable_layers=1)
    train_a_little(model, classify, steps=2)
    assert fingerprint(model) != fp and fingerprint(base) == fp
